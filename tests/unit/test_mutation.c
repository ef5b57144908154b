/* Mutated images are refused before any process exists, or restore a state
 * that passes the target's full self-check: never silently wrong.
 *
 * ct_files (fds at offsets, a pipe with data, file mappings, memory) is
 * dumped four times by forkpoint: A and B (zstd) and C and D (plain), with a
 * verification in between so each pair holds two states of one process.
 * Then, from a seeded generator (FP_MUTATION_SEED, default fixed), each
 * mutation copies one base and changes it:
 *   truncate  a file cut to a shorter length (0 included)
 *   flip      one byte changed in a file (every file, manifest included)
 *   store     one byte changed inside the page data (a zstd chunk or a page)
 *   swap      a file replaced by the same file of the pair's other snapshot
 *   pagemap   an entry deleted, resized, duplicated, moved out of order or
 *             misaligned, and the manifest resealed (recomputed) so that only
 *             the structural checks stand in the way
 * Verdicts come from fp_restore_check_ex, which creates nothing; every
 * image it accepts is restored for real and must pass the target's check,
 * and a sample of refused ones also goes through fp_restore, which must
 * fail with no process made. FP_MUTATIONS sets the count (default 400;
 * 150 under the sanitizers). Pagemap edits that stay structurally valid
 * (an entry moved to other mapped pages) are not made: only the manifest
 * can tell them, and a resealed manifest is a forgery, not damage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_test.h"
#include "target_ctl.h"
#include "common/paths.h"
#include "dump/dump.h"
#include "images/criu_io.h"
#include "images/hash64.h"
#include "images/img_verify.h"
#include "images/pagestore.h"
#include "restore/restore.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_MUTATIONS 150
#else
#define DEFAULT_MUTATIONS 400
#endif

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static char work[] = "/tmp/fp-test-mutation.XXXXXX";
static char bases[4][600];
static pid_t tpid;

#define MAXF 64
static char names[MAXF][128]; /* the files of base A (same names in all) */
static size_t nnames;

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	static char buf[1 << 16];
	ssize_t n = 0;
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

static int copy_dir(const char *from, const char *to)
{
	fp_rm_rf(to, NULL);
	if (mkdir(to, 0700) < 0)
		return -1;
	DIR *d = opendir(from);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	char a[1024], b[1024];
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
		rc = copy_file(a, b);
	}
	closedir(d);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void list_names(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) && nnames < MAXF)
		if (e->d_name[0] != '.' && strcmp(e->d_name, FP_DUMP_LOG_NAME))
			snprintf(names[nnames++], sizeof(names[0]), "%s", e->d_name);
	if (d)
		closedir(d);
	qsort(names, nnames, sizeof(names[0]), cmp_name);
}

static off_t fsize(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? -1 : st.st_size;
}

static int flip_at(const char *path, off_t off)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	unsigned char c;
	int rc = -1;
	if (fd >= 0 && pread(fd, &c, 1, off) == 1) {
		c ^= (unsigned char)(1 + below(255));
		rc = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The manifest recomputed for the directory as it now is. */
static int reseal(const char *dir)
{
	char path[1024], line[512];
	snprintf(path, sizeof(path), "%s/%s", dir, FP_MANIFEST_NAME);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *out = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&out, &len);
	while (fgets(line, sizeof(line), f)) {
		char name[256], hs[32];
		uint64_t size, h;
		if (!strncmp(line, "end ", 4))
			break;
		if (sscanf(line, "file %255s %" SCNu64 " %31s", name, &size, hs) == 3) {
			if (!strcmp(hs, "-"))
				fprintf(o, "file %s %lld -\n", name, (long long)fsize(strcat(strcat(strcpy(path, dir), "/"), name)));
			else if (img_hash_file(dfd, name, &size, &h, NULL) == 0)
				fprintf(o, "file %s %" PRIu64 " %016" PRIx64 "\n", name, size, h);
		} else {
			fputs(line, o);
		}
	}
	fclose(f);
	fflush(o);
	fprintf(o, "end %016" PRIx64 "\n", fp_hash64(out, len, 0));
	fclose(o);
	snprintf(path, sizeof(path), "%s/%s", dir, FP_MANIFEST_NAME);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	int rc = fd >= 0 && write(fd, out, len) == (ssize_t)len ? 0 : -1;
	if (fd >= 0)
		close(fd);
	close(dfd);
	free(out);
	return rc;
}

static const char *edit_pagemap(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t n = 0;
	fp_error err;
	const char *what = NULL;
	if (cr_read_pagemap(dfd, (uint32_t)tpid, &h, &pe, &n, &err) < 0 || n < 2) {
		close(dfd);
		free(pe);
		return NULL;
	}
	cr_pagemap_entry *v = calloc(n + 1, sizeof(*v));
	memcpy(v, pe, n * sizeof(*v));
	size_t i = below(n), m = n;
	switch (below(7)) {
	case 0:
		what = "last entry deleted";
		m--;
		break;
	case 1:
		what = "an entry deleted";
		memmove(&v[i], &v[i + 1], (n - i - 1) * sizeof(*v));
		m--;
		break;
	case 2:
		what = "an entry one page longer";
		v[i].nr_pages++;
		break;
	case 3:
		what = "an entry shorter";
		v[i].nr_pages = v[i].nr_pages > 1 ? v[i].nr_pages - 1 - below(v[i].nr_pages - 1) : 2;
		break;
	case 4:
		what = "an entry duplicated";
		memmove(&v[i + 1], &v[i], (n - i) * sizeof(*v));
		m++;
		break;
	case 5:
		what = "two entries swapped";
		i = below(n - 1);
		cr_pagemap_entry t = v[i];
		v[i] = v[i + 1];
		v[i + 1] = t;
		break;
	default:
		what = "an entry misaligned";
		v[i].vaddr += 1 + below(4095);
		break;
	}
	/* Written raw: the writer would refuse what the test wants to plant. */
	char name[64];
	snprintf(name, sizeof(name), "pagemap-%d.img", (int)tpid);
	cr_imgw w;
	cr_imgw_init(&w, name, CR_PAGEMAP_MAGIC);
	cr_imgw_msg(&w, &cr_pagemap_head_desc, &h);
	for (size_t k = 0; k < m; k++)
		cr_imgw_msg(&w, &cr_pagemap_entry_desc, &v[k]);
	if (cr_imgw_commit(&w, dfd, &err) < 0)
		what = NULL;
	cr_imgw_free(&w);
	free(v);
	free(pe);
	close(dfd);
	return what && reseal(dir) == 0 ? what : NULL;
}

/* Applies mutation kind k to dir (a copy of base b); a description, or
 * NULL if this draw does not apply. */
static const char *mutate(const char *dir, int b, int k, char *desc, size_t len)
{
	const char *file = names[below(nnames)];
	char path[1024], other[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	off_t sz = fsize(path);
	switch (k) {
	case 0: {
		off_t to = sz > 0 ? (off_t)below((uint64_t)sz) : 0;
		if (sz <= 0 || truncate(path, to) < 0)
			return NULL;
		snprintf(desc, len, "truncate %s %lld -> %lld", file, (long long)sz, (long long)to);
		return file;
	}
	case 1: {
		off_t at = (off_t)below((uint64_t)sz);
		if (sz <= 0 || flip_at(path, at) < 0)
			return NULL;
		snprintf(desc, len, "flip %s at %lld", file, (long long)at);
		return file;
	}
	case 2: {
		static char store[64];
		pgs_store_name(store, sizeof(store), 1);
		snprintf(path, sizeof(path), "%s/%s", dir, store);
		if (fsize(path) < 0) {
			pgs_plain_name(store, sizeof(store), 1);
			snprintf(path, sizeof(path), "%s/%s", dir, store);
		}
		sz = fsize(path);
		/* Inside the chunks, not the index: the case a restore used to
		 * meet only after the process existed. */
		off_t at = 64 + (off_t)below((uint64_t)(sz > 4096 ? sz / 2 : 1));
		if (sz <= 64 || flip_at(path, at) < 0)
			return NULL;
		snprintf(desc, len, "flip page data %s at %lld", store, (long long)at);
		return store;
	}
	case 3:
		snprintf(other, sizeof(other), "%s/%s", bases[b ^ 1], file);
		if (copy_file(other, path) < 0)
			return NULL;
		snprintf(desc, len, "swap %s from snapshot %c", file, 'A' + (b ^ 1));
		return file;
	default: {
		const char *what = edit_pagemap(dir);
		if (!what)
			return NULL;
		snprintf(desc, len, "pagemap: %s (manifest resealed)", what);
		return "pagemap";
	}
	}
}

static bool pid_exists(pid_t p)
{
	return kill(p, 0) == 0 || errno != ESRCH;
}

/* A real restore of dir must give a process that passes its check. */
static int restore_and_check(struct tc_target *t, const char *dir, const char *desc)
{
	char log[700];
	snprintf(log, sizeof(log), "%s/restore.log", work);
	struct fp_restore_opts o = { .dir = dir, .engine = FP_RESTORE_NATIVE, .exact_pids = true, .log_path = log };
	struct fp_restore_result r;
	fp_error err;
	if (fp_restore(&o, &r, &err) < 0) {
		CHECKF(!pid_exists(tpid), "%s: a failed restore left pid %d", desc, (int)tpid);
		return 0; /* refused late, but refused: counted by the caller */
	}
	tc_adopt(t, r.pid, true);
	int v = tc_verify(t, 20000);
	CHECKF(v == 0, "%s: restored, and the target's check says: %s", desc, v < 0 ? t->err : t->line);
	kill(r.pid, SIGKILL);
	int st;
	fp_restore_wait(r.pid, 10000, &st, &err);
	CHECK(tc_wait_gone(r.pid, 10000) == 0);
	return 1;
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("needs root (restores with the image's pids)");
	const char *s = getenv("FP_MUTATION_SEED");
	rng_state = s ? strtoull(s, NULL, 0) : 20261205;
	const char *c = getenv("FP_MUTATIONS");
	long total = c ? atol(c) : DEFAULT_MUTATIONS;
	if (!mkdtemp(work))
		return 1;
	char bin[512], fdir[700], dirarg[720];
	fp_test_build_path(bin, sizeof(bin), "tests/targets/ct_files");
	snprintf(fdir, sizeof(fdir), "%s/files", work);
	snprintf(dirarg, sizeof(dirarg), "--dir=%s", fdir);
	const char *args[] = { dirarg, "--quiet-stdio", NULL };
	struct tc_target t;
	if (tc_start(&t, bin, args, TC_SETSID) < 0 || tc_wait_ready(&t, 20000) < 0) {
		fprintf(stderr, "ct_files: %s\n", t.err);
		return 1;
	}
	tpid = t.pid;
	for (int i = 0; i < 4; i++) {
		snprintf(bases[i], sizeof(bases[i]), "%s/base-%c", work, 'A' + i);
		struct fp_dump_opts o = { .pid = tpid, .dir = bases[i], .leave_running = i < 3,
					  .compress = i < 2 ? FP_DUMP_ZSTD : FP_DUMP_NONE };
		struct fp_dump_stats st;
		fp_error err;
		if (fp_dump(&o, &st, &err) < 0) {
			fprintf(stderr, "dump %c: %s\n", 'A' + i, err.msg);
			tc_cleanup(&t);
			return 1;
		}
		if (i % 2 == 0)
			CHECK(tc_verify(&t, 20000) == 0); /* the pair's second state differs */
	}
	waitpid(tpid, NULL, 0);
	CHECK(tc_wait_gone(tpid, 10000) == 0);
	list_names(bases[0]);
	CHECK(nnames >= 8);

	long refused = 0, restored = 0, late = 0, skipped = 0;
	unsigned per_kind[5] = { 0 }, flipped[MAXF] = { 0 };
	char mdir[700], desc[512];
	snprintf(mdir, sizeof(mdir), "%s/mut", work);
	/* Control: every intact base restores and passes. */
	for (int b = 0; b < 4; b++)
		CHECKF(restore_and_check(&t, bases[b], "intact base") == 1, "intact base %c was not restored", 'A' + b);
	for (long i = 0; i < total; i++) {
		int b = (int)below(4), k = (int)below(5);
		if (copy_dir(bases[b], mdir) < 0) {
			CHECKF(0, "cannot copy %s", bases[b]);
			break;
		}
		const char *file = mutate(mdir, b, k, desc, sizeof(desc));
		if (!file) {
			skipped++;
			i--;
			if (skipped > total)
				break;
			continue;
		}
		per_kind[k]++;
		for (size_t f = 0; k == 1 && f < nnames; f++)
			flipped[f] += !strcmp(names[f], file);
		fp_error err;
		if (fp_restore_check_ex(mdir, true, NULL, 0, &err) < 0) {
			refused++;
			CHECKF(!pid_exists(tpid), "%s: pid %d exists after a check", desc, (int)tpid);
			if (i % 16 == 0) { /* the whole restore refuses it too */
				struct fp_restore_opts o = { .dir = mdir, .engine = FP_RESTORE_AUTO, .exact_pids = true };
				struct fp_restore_result r;
				CHECKF(fp_restore(&o, &r, &err) < 0, "%s: checked bad, restored as pid %d", desc, (int)r.pid);
				CHECKF(!pid_exists(tpid), "%s: a refused restore made pid %d", desc, (int)tpid);
			}
			continue;
		}
		/* Accepted: only a no-op (a swap of identical files) should be;
		 * whatever it is, the restored state must pass. */
		printf("accepted: %s\n", desc);
		if (restore_and_check(&t, mdir, desc))
			restored++;
		else
			late++;
	}
	for (size_t f = 0; f < nnames; f++)
		CHECKF(flipped[f] > 0 || total < 200, "no byte flip hit %s (raise FP_MUTATIONS)", names[f]);
	CHECKF(late == 0, "%ld mutations were refused only after processes existed", late);
	printf("seed %" PRIu64 ": %ld mutations (truncate %u, flip %u, page data %u, swap %u, pagemap %u): %ld refused "
	       "before any process, %ld accepted and restored with a passing self-check, %ld late refusals\n",
	       (uint64_t)(s ? strtoull(s, NULL, 0) : 20261205), total, per_kind[0], per_kind[1], per_kind[2], per_kind[3], per_kind[4],
	       refused, restored, late);
	CHECK(refused + restored + late == total);
	tc_cleanup(&t);
	if (!getenv("FP_KEEP_TMP"))
		fp_rm_rf(work, NULL);
	return fp_test_done();
}
