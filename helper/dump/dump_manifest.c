/* forkpoint.manifest: written last, it marks a snapshot directory complete.
 *
 *   forkpoint-snapshot 1
 *   tool forkpoint 0.1.0
 *   kernel 6.18.0
 *   created 1763860000
 *   compress zstd
 *   pids 1234 1240
 *   pause_ms 1.250
 *   total_ms 40.112
 *   prestop_ms 1.100                   (pre-copy dumps: their first, short stop)
 *   pages 1 25600 0123456789abcdef     (pages id, page count, chain hash of contents)
 *   file core-1234.img 1796 0123456789abcdef   (name, size, fp_hash64 of the bytes)
 *   ...
 *   end 0123456789abcdef               (fp_hash64 of every line above)
 *
 * Page contents are hashed page by page (pgh_add, which also keeps every
 * link of that chain in pagehash-<id>.fph for checks page by page), so the same line
 * holds for pages-<id>.fpz and the pages-<id>.img that decompress makes. A
 * pages-<id>.fpz is also hashed as a file, so that a restore checks it
 * without decoding it (images/img_verify.c); a plain pages-<id>.img only
 * by its pages line ("-"). */
#include "dump/dump_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/img_verify.h"
#include "images/pagestore.h"

#define FP_TOOL_VERSION "0.1.0"

struct sbuf {
	char *p;
	size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static int sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if (b->p && b->n + (size_t)n < b->cap) {
			b->n += (size_t)n;
			return 0;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
}

static bool is_pages_file(const char *name)
{
	size_t l = strlen(name);
	return !strncmp(name, "pages-", 6) && ((l > 4 && !strcmp(name + l - 4, ".img")) || (l > 4 && !strcmp(name + l - 4, ".fpz")));
}

static bool skip_name(const char *name)
{
	return name[0] == '.' || !strcmp(name, FP_MANIFEST_NAME) || !strcmp(name, FP_DUMP_LOG_NAME) ||
	       !strcmp(name, "restore.log") || !strcmp(name, "parent");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of the snapshot's files. */
static int list_files(int dirfd, char ***names, size_t *n, fp_error *err)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return fp_fail(err, errno, "cannot list the snapshot directory: %s", strerror(errno));
	}
	rewinddir(d);
	char **v = NULL;
	size_t k = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (skip_name(e->d_name))
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 64;
			char **nv = realloc(v, cap * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
		}
		v[k] = strdup(e->d_name);
		if (v[k])
			k++;
	}
	closedir(d);
	qsort(v, k, sizeof(*v), cmp_str);
	*names = v;
	*n = k;
	return 0;
}

int dump_manifest_write(int dirfd, const struct dump_manifest_info *mi, uint64_t *bytes_total, fp_error *err)
{
	struct sbuf b = { 0 };
	struct utsname u;
	uname(&u);
	sb_printf(&b, "forkpoint-snapshot 1\ntool forkpoint %s\nkernel %s\ncreated %lld\ncompress %s\npids", FP_TOOL_VERSION,
		  u.release, (long long)time(NULL), mi->compress);
	for (size_t i = 0; i < mi->npids; i++)
		sb_printf(&b, " %d", (int)mi->pids[i]);
	sb_printf(&b, "\npause_ms %.3f\ntotal_ms %.3f\n", mi->pause_ms, mi->total_ms);
	if (mi->prestop_ms > 0)
		sb_printf(&b, "prestop_ms %.3f\n", mi->prestop_ms);
	for (size_t i = 0; i < mi->npages_ids; i++)
		sb_printf(&b, "pages %u %" PRIu64 " %016" PRIx64 "\n", mi->pages_ids[i], mi->pages_n[i], mi->pages_hash[i]);
	char **names;
	size_t n;
	if (list_files(dirfd, &names, &n, err)) {
		free(b.p);
		return -1;
	}
	int rc = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		uint64_t size = 0, h = 0;
		if (is_pages_file(names[i]) && strstr(names[i], ".img")) {
			/* Covered by the pages line; hashing it again would read
			 * every page a second time. A compressed store is hashed
			 * as a file: its bytes are a fraction of the pages, and
			 * a restore can then check it without decoding it. */
			if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
				rc = fp_fail(err, errno, "cannot stat %s: %s", names[i], strerror(errno));
				break;
			}
			size = (uint64_t)st.st_size;
			sb_printf(&b, "file %s %" PRIu64 " -\n", names[i], size);
		} else {
			if ((rc = img_hash_file(dirfd, names[i], &size, &h, err)))
				break;
			sb_printf(&b, "file %s %" PRIu64 " %016" PRIx64 "\n", names[i], size, h);
		}
		total += size;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!rc && !b.p)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc) {
		sb_printf(&b, "end %016" PRIx64 "\n", fp_hash64(b.p, b.n, 0));
		/* Its rename makes the snapshot whole against a killed dumper;
		 * an fsync (here it costs a journal commit of every page just
		 * written) only when durability was asked for, like the rest. */
		rc = img_write_atomic(dirfd, FP_MANIFEST_NAME, b.p, b.n, mi->fsync, err);
		total += b.n;
	}
	free(b.p);
	if (!rc && bytes_total)
		*bytes_total = total;
	return rc;
}

/* ---- verification ------------------------------------------------------ */

/* An incremental snapshot is only whole with its parents: they are
 * verified (and decompressed) with it. */
static int with_parents(const char *dir, bool keep, int (*fn)(const char *, bool, fp_error *), fp_error *err)
{
	char cur[PATH_MAX];
	snprintf(cur, sizeof(cur), "%s", dir);
	for (int depth = 0;; depth++) {
		if (depth > 4096)
			return fp_fail(err, ELOOP, "%s: the chain of parent snapshots is too deep (a loop of `parent` links?)", dir);
		if (fn(cur, keep, err))
			return depth ? fp_wrap(err, "parent snapshot %s of %s", cur, dir) : -1;
		char next[PATH_MAX + 8];
		snprintf(next, sizeof(next), "%s/parent", cur);
		struct stat st;
		if (lstat(next, &st) < 0)
			return 0;
		if (!realpath(next, cur))
			return fp_fail(err, errno,
				       "%s is an incremental snapshot but its parent %s is missing (%s): it cannot be restored",
				       dir, next, strerror(errno));
	}
}

static int verify_one(const char *dir, bool keep, fp_error *err);
static int decompress_one(const char *dir, bool keep_store, fp_error *err);

int fp_dump_verify(const char *dir, fp_error *err)
{
	return with_parents(dir, false, verify_one, err);
}

int fp_dump_decompress(const char *dir, bool keep_store, fp_error *err)
{
	return with_parents(dir, keep_store, decompress_one, err);
}

static int verify_one(const char *dir, bool keep, fp_error *err)
{
	(void)keep;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return fp_fail(err, errno, "cannot open snapshot %s: %s", dir, strerror(errno));
	struct img_verify_info vi;
	int rc = img_verify(dirfd, dir, IMG_VERIFY_FULL, &vi, err);
	close(dirfd);
	if (!rc && vi.trust != IMG_TRUST_VERIFIED)
		rc = fp_fail(err, ENOENT, "%s has no %s: written by CRIU, it carries no checksums to verify", dir,
			     FP_MANIFEST_NAME);
	return rc;
}

static int decompress_one(const char *dir, bool keep_store, fp_error *err)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return fp_fail(err, errno, "cannot open snapshot %s: %s", dir, strerror(errno));
	if (faccessat(dirfd, FP_MANIFEST_NAME, F_OK, 0) < 0) {
		close(dirfd);
		return fp_fail(err, ENOENT, "%s has no %s: it is not a complete snapshot", dir, FP_MANIFEST_NAME);
	}
	char **names;
	size_t n;
	if (list_files(dirfd, &names, &n, err)) {
		close(dirfd);
		return -1;
	}
	int rc = 0, done = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned id;
		char tail[8];
		if (!rc && sscanf(names[i], "pages-%u.%7s", &id, tail) == 2 && !strcmp(tail, "fpz")) {
			rc = pgs_decompress(dirfd, id, !keep_store, err);
			done++;
		}
		free(names[i]);
	}
	free(names);
	if (!rc)
		rc = img_sync_dir(dirfd, err);
	close(dirfd);
	(void)done;
	return rc;
}

/* The manifest, written last, then the directory renamed into place
 * (dump_int.h). */
int dump_publish(struct dump_ctx *c, const char *final, const char *parent, fp_error *err)
{
	if (c->o->fsync && img_sync_dir(c->dirfd, err))
		return -1;
	size_t nids = c->nprocs + c->nshm; /* shared memory objects have pages files too */
	pid_t *pids = calloc(c->nprocs, sizeof(pid_t));
	uint32_t *ids = calloc(nids, sizeof(uint32_t));
	uint64_t *np = calloc(nids, sizeof(uint64_t)), *hs = calloc(nids, sizeof(uint64_t));
	int rc = 0;
	if (!pids || !ids || !np || !hs)
		rc = fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nprocs && !rc; i++) {
		pids[i] = c->procs[i].pid;
		ids[i] = c->procs[i].pages_id;
		np[i] = c->procs[i].npages;
		hs[i] = c->procs[i].pages_hash;
	}
	for (size_t i = 0; i < c->nshm && !rc; i++) {
		ids[c->nprocs + i] = c->shm[i].pages_id;
		np[c->nprocs + i] = c->shm[i].npages;
		hs[c->nprocs + i] = c->shm[i].hash;
	}
	c->st->total_ms = (double)(dump_now_ns() - c->t0) / 1e6;
	struct dump_manifest_info mi = {
		.compress = c->o->compress == FP_DUMP_NONE ? "none" : "zstd",
		.pause_ms = c->o->leave_running ? c->st->pause_ms : c->st->total_ms,
		.total_ms = c->st->total_ms,
		.prestop_ms = c->st->prestop_ms,
		.pids = pids,
		.npids = c->nprocs,
		.pages_ids = ids,
		.pages_n = np,
		.pages_hash = hs,
		.npages_ids = nids,
		.fsync = c->o->fsync,
	};
	if (!rc)
		rc = dump_manifest_write(c->dirfd, &mi, &c->st->bytes_written, err);
	free(pids), free(ids), free(np), free(hs);
	if (rc)
		return -1;
	if (c->log)
		fflush(c->log);
	/* rename(2) replaces an empty directory, so an existing empty DIR is fine. */
	if (rename(c->tmpdir, final) < 0)
		return fp_fail(err, errno, "cannot move the finished snapshot into place (%s -> %s): %s", c->tmpdir, final,
			       strerror(errno));
	c->tmpdir[0] = '\0';
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd >= 0) {
		if (c->o->fsync)
			fsync(pfd);
		close(pfd);
	}
	return 0;
}
