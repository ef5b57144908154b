/* img_verify: an image directory checked against its forkpoint.manifest
 * (see img_verify.h for what is checked and why it is cheap). */
#include "images/img_verify.h"
#include "fp_clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/criu_msgs.h"
#include "images/hash64.h"
#include "images/pagehash.h"
#include "images/pagestore.h"
#include "images/pagestore_chain.h"

#define HASH_BLOCK (64u << 10)
#define MANIFEST_MAX (16u << 20)
#define BAD(err, ...) fp_fail_code(err, FP_EXIT_FAIL, EIO, __VA_ARGS__)

struct mf_file {
	char name[256];
	uint64_t size, hash;
	bool hashed; /* "-": a page file, covered by its pages line */
};

struct mf_pages {
	uint32_t id;
	uint64_t n, hash;
};

struct manifest {
	struct mf_file *files;
	size_t nfiles;
	struct mf_pages *pages;
	size_t npages;
};

static void mf_free(struct manifest *m)
{
	free(m->files);
	free(m->pages);
	memset(m, 0, sizeof(*m));
}

uint64_t img_pages_hash(uint64_t h, const void *pages, size_t npages)
{
	const uint8_t *b = pages;
	for (size_t i = 0; i < npages; i++)
		h = fp_hash64(b + i * PGS_PAGE_SIZE, PGS_PAGE_SIZE, h);
	return h;
}

/* Opens an image file for reading: a regular file, never through a link. */
static int open_regular(int dirfd, const char *name, struct stat *st, fp_error *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return BAD(err, "%s is a symbolic link; image files must be regular files (refused)", name);
		return fp_fail_code(err, FP_EXIT_FAIL, errno, "cannot open %s: %s", name, strerror(errno));
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return BAD(err, "%s is not a regular file (refused)", name);
	}
	return fd;
}

int img_hash_file(int dirfd, const char *name, uint64_t *size, uint64_t *hash, fp_error *err)
{
	struct stat st;
	int fd = open_regular(dirfd, name, &st, err);
	if (fd < 0)
		return -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	/* On the heap, not in thread-local storage: a 1 MiB __thread array is
	 * zeroed at the start of every process and thread linked with the
	 * library (256 page faults, most of `forkpoint exec`'s start-up). */
	enum { BUF = 1 << 20 };
	uint8_t *buf = malloc(BUF);
	if (!buf) {
		close(fd);
		return fp_fail(err, ENOMEM, "out of memory hashing %s", name);
	}
	uint64_t h = 0, sz = 0;
	size_t fill = 0;
	for (;;) {
		ssize_t r = read(fd, buf + fill, BUF - fill);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return fp_fail(err, e, "cannot read %s: %s", name, strerror(e));
		}
		fill += (size_t)r;
		sz += (uint64_t)r;
		/* Fixed 64 KiB blocks, whatever read returned: the hash is of
		 * the bytes alone. */
		size_t done = 0;
		while (fill - done >= HASH_BLOCK || (r == 0 && done < fill)) {
			size_t take = fill - done < HASH_BLOCK ? fill - done : HASH_BLOCK;
			h = fp_hash64(buf + done, take, h);
			done += take;
		}
		memmove(buf, buf + done, fill - done);
		fill -= done;
		if (r == 0)
			break;
	}
	close(fd);
	free(buf);
	*size = sz;
	*hash = h;
	return 0;
}

static bool name_ok(const char *n)
{
	return n[0] && n[0] != '.' && !strchr(n, '/');
}

static int mf_parse(char *text, size_t len, const char *dir, struct manifest *m, fp_error *err)
{
	char *end = NULL;
	for (char *p = text; (p = strstr(p, "\nend ")); p++)
		end = p;
	if (strncmp(text, "forkpoint-snapshot 1\n", 21) || !end || strlen(text) != len)
		return BAD(err, "%s/%s is not a forkpoint manifest, or it is truncated: the snapshot is damaged", dir,
			   FP_MANIFEST_NAME);
	char *hend;
	uint64_t want = strtoull(end + 5, &hend, 16);
	if (fp_hash64(text, (size_t)(end + 1 - text), 0) != want || (*hend && strcmp(hend, "\n")))
		return BAD(err, "%s/%s is corrupt (its checksum does not match): the snapshot is damaged", dir,
			   FP_MANIFEST_NAME);
	end[1] = '\0';
	size_t cap = 0;
	for (char *p = text; *p; p++)
		cap += *p == '\n';
	m->files = calloc(cap + 1, sizeof(*m->files));
	m->pages = calloc(cap + 1, sizeof(*m->pages));
	if (!m->files || !m->pages)
		return fp_fail(err, ENOMEM, "out of memory");
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[256], hs[32];
		unsigned id;
		uint64_t a, size;
		if (!strncmp(l, "pages ", 6)) {
			if (sscanf(l, "pages %u %" SCNu64 " %31s", &id, &a, hs) != 3)
				return BAD(err, "%s/%s: bad line '%.80s'", dir, FP_MANIFEST_NAME, l);
			m->pages[m->npages++] = (struct mf_pages){ id, a, strtoull(hs, NULL, 16) };
		} else if (!strncmp(l, "file ", 5)) {
			if (sscanf(l, "file %255s %" SCNu64 " %31s", name, &size, hs) != 3 || !name_ok(name))
				return BAD(err, "%s/%s: bad line '%.80s'", dir, FP_MANIFEST_NAME, l);
			struct mf_file *f = &m->files[m->nfiles++];
			snprintf(f->name, sizeof(f->name), "%s", name);
			f->size = size;
			f->hashed = strcmp(hs, "-") != 0;
			f->hash = f->hashed ? strtoull(hs, NULL, 16) : 0;
		}
	}
	return 0;
}

static const struct mf_file *mf_find(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (!strcmp(m->files[i].name, name))
			return &m->files[i];
	return NULL;
}

/* pages-<id>.img or .fpz of a pages line: the manifest covers it. */
static bool is_listed_pages(const struct manifest *m, const char *name)
{
	unsigned id;
	char tail[8];
	int used = 0;
	if (sscanf(name, "pages-%u.%4s%n", &id, tail, &used) != 2 || name[used] ||
	    (strcmp(tail, "img") && strcmp(tail, "fpz")))
		return false;
	for (size_t i = 0; i < m->npages; i++)
		if (m->pages[i].id == id)
			return true;
	return false;
}

static bool is_pages_name(const char *name)
{
	unsigned id;
	char tail[8];
	int used = 0;
	return sscanf(name, "pages-%u.%4s%n", &id, tail, &used) == 2 && !name[used] &&
	       (!strcmp(tail, "img") || !strcmp(tail, "fpz"));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* Image files the manifest does not list would be read by a restorer
 * (CRIU reads any X-<id>.img it is pointed to): refused. */
static int check_unlisted(int dirfd, const char *dir, const struct manifest *m, fp_error *err)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return fp_fail(err, errno, "cannot list %s: %s", dir, strerror(errno));
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		if (n[0] == '.' || !(ends_with(n, ".img") || ends_with(n, ".fpz")))
			continue;
		if (!mf_find(m, n) && !is_listed_pages(m, n))
			rc = BAD(err, "%s/%s is not in the snapshot's manifest (added after the dump?): the snapshot is "
				      "damaged; remove the file, or restore with --no-verify",
				 dir, n);
	}
	closedir(d);
	return rc;
}

static int check_file(int dirfd, const char *dir, const struct mf_file *f, enum img_verify_depth depth,
		      uint64_t *hashed, fp_error *err)
{
	uint64_t size, h = 0;
	if (depth == IMG_VERIFY_SIZES) {
		struct stat st;
		int fd = open_regular(dirfd, f->name, &st, err);
		if (fd < 0)
			return fp_wrap(err, "snapshot %s is damaged", dir);
		close(fd);
		size = (uint64_t)st.st_size;
	} else {
		if (img_hash_file(dirfd, f->name, &size, &h, err))
			return fp_wrap(err, "snapshot %s is damaged", dir);
		*hashed += size;
	}
	if (size != f->size)
		return BAD(err, "%s/%s has %" PRIu64 " bytes, the manifest says %" PRIu64 ": the snapshot is damaged (a "
				"truncated, replaced or changed file)",
			   dir, f->name, size, f->size);
	if (depth == IMG_VERIFY_FULL && h != f->hash)
		return BAD(err, "%s/%s does not match its checksum in the manifest: the snapshot is damaged (a corrupt, "
				"or replaced file)",
			   dir, f->name);
	return 0;
}

/* A plain pages file: its pages hashed where they lie (mapped). */
static int hash_plain(int fd, const char *name, uint64_t npages, uint64_t *out, fp_error *err)
{
	uint64_t h = 0;
	const uint64_t win = 1024; /* pages per window: 4 MiB */
	for (uint64_t at = 0; at < npages; at += win) {
		uint64_t n = npages - at < win ? npages - at : win;
		size_t len = (size_t)n * PGS_PAGE_SIZE;
		void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)(at * PGS_PAGE_SIZE));
		if (p == MAP_FAILED)
			return fp_fail(err, errno, "cannot map %s: %s", name, strerror(errno));
		h = img_pages_hash(h, p, (size_t)n);
		munmap(p, len);
	}
	*out = h;
	return 0;
}

/* An .fpz whose manifest predates file hashes: every chunk decoded. */
static int hash_store_contents(int dirfd, uint32_t id, uint64_t *n, uint64_t *out, fp_error *err)
{
	pgs_reader *r = pgs_open(dirfd, id, err);
	if (!r)
		return -1;
	uint64_t h = 0, seen = 0;
	int rc;
	const void *pg;
	uint64_t first, k;
	while ((rc = pgs_next(r, &pg, &first, &k, err)) > 0) {
		h = img_pages_hash(h, pg, (size_t)k);
		seen += k;
	}
	pgs_close(r);
	*n = seen;
	*out = h;
	return rc;
}

/* IMG_VERIFY_READS: 1 if the store's pages can be proven as they are read
 * (its pagehash file is listed, and agrees with the pages line), 0 if it
 * has none (checked in full then), -1 if it is there but disagrees. */
static int pages_by_reads(int dirfd, const char *dir, const struct manifest *m, const struct mf_pages *pl,
			  fp_error *err)
{
	char name[64];
	pgh_name(name, sizeof(name), pl->id);
	if (!mf_find(m, name))
		return 0;
	uint64_t n, last;
	if (pgh_tail(dirfd, pl->id, &n, &last, err))
		return fp_wrap(err, "snapshot %s is damaged", dir);
	if (n != pl->n || last != pl->hash)
		return BAD(err, "%s/%s does not match the manifest's pages line: the snapshot is damaged", dir, name);
	return 1;
}

static int check_pages(int dirfd, const char *dir, const struct manifest *m, const struct mf_pages *pl,
		       enum img_verify_depth depth, bool *per_page, uint64_t *hashed, fp_error *err)
{
	if (depth == IMG_VERIFY_READS) {
		int br = pages_by_reads(dirfd, dir, m, pl, err);
		if (br < 0)
			return -1;
		if (!br)
			*per_page = false;
		depth = br ? IMG_VERIFY_SIZES : IMG_VERIFY_FULL;
	}
	char fpz[64], img[64];
	pgs_store_name(fpz, sizeof(fpz), pl->id);
	pgs_plain_name(img, sizeof(img), pl->id);
	struct stat st;
	const struct mf_file *fl = mf_find(m, fpz);
	if (fstatat(dirfd, fpz, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!fl)
			return BAD(err, "%s/%s is not in the manifest: the snapshot is damaged", dir, fpz);
		if (fl->hashed) {
			if (check_file(dirfd, dir, fl, depth, hashed, err))
				return -1;
		} else {
			int fd = open_regular(dirfd, fpz, &st, err);
			if (fd < 0)
				return fp_wrap(err, "snapshot %s is damaged", dir);
			close(fd);
			if ((uint64_t)st.st_size != fl->size)
				return BAD(err, "%s/%s has %lld bytes, the manifest says %" PRIu64 ": the snapshot is damaged",
					   dir, fpz, (long long)st.st_size, fl->size);
			uint64_t n = 0, h = 0;
			if (depth == IMG_VERIFY_FULL) {
				if (hash_store_contents(dirfd, pl->id, &n, &h, err))
					return fp_wrap(err, "snapshot %s is damaged", dir);
				*hashed += n * PGS_PAGE_SIZE;
				if (h != pl->hash)
					return BAD(err, "the pages in %s/%s do not match the manifest: the snapshot is damaged",
						   dir, fpz);
			}
		}
		/* The index (checked by its own hash) must hold the pages the
		 * manifest counted. */
		pgs_reader *r = pgs_open(dirfd, pl->id, err);
		if (!r)
			return fp_wrap(err, "snapshot %s is damaged", dir);
		uint64_t have = pgs_total_pages(r);
		pgs_close(r);
		if (have != pl->n)
			return BAD(err, "%s/%s holds %" PRIu64 " pages, the manifest says %" PRIu64 ": the snapshot is damaged",
				   dir, fpz, have, pl->n);
		/* `decompress --keep` leaves both, and CRIU reads the plain one. */
		if (fstatat(dirfd, img, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
	} else if (errno != ENOENT) {
		return fp_fail(err, errno, "cannot stat %s/%s: %s", dir, fpz, strerror(errno));
	}
	int fd = open_regular(dirfd, img, &st, err);
	if (fd < 0)
		return err && err->errnum == ENOENT
			       ? BAD(err, "%s has no page data for pages %u (neither %s nor %s): the snapshot is damaged", dir,
				     pl->id, fpz, img)
			       : fp_wrap(err, "snapshot %s is damaged", dir);
	int rc = 0;
	if ((uint64_t)st.st_size != pl->n * PGS_PAGE_SIZE) {
		rc = BAD(err, "%s/%s has %lld bytes, the manifest says %" PRIu64 " pages (%" PRIu64 " bytes): the snapshot "
			      "is damaged (truncated or replaced)",
			 dir, img, (long long)st.st_size, pl->n, pl->n * PGS_PAGE_SIZE);
	} else if (depth == IMG_VERIFY_FULL) {
		uint64_t h = 0;
		rc = hash_plain(fd, img, pl->n, &h, err);
		*hashed += pl->n * PGS_PAGE_SIZE;
		if (!rc && h != pl->hash)
			rc = BAD(err, "the pages in %s/%s do not match the manifest's checksum: the snapshot is damaged "
				      "(a corrupt or replaced pages file)",
				 dir, img);
	}
	close(fd);
	return rc;
}

/* No manifest: CRIU's own images are accepted unverified, nothing else. */
static int no_manifest(int dirfd, const char *dir, struct img_verify_info *info, fp_error *err)
{
	const char *how = "restore it with --no-verify to skip this check, at your own risk";
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	bool store = false;
	if (d) {
		rewinddir(d);
		struct dirent *e;
		while ((e = readdir(d)))
			store |= is_pages_name(e->d_name) && ends_with(e->d_name, ".fpz");
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
	if (store)
		return BAD(err, "%s has no %s but holds forkpoint's page store: an interrupted dump, or its manifest "
				"was removed, so the image cannot be proven complete (%s)",
			   dir, FP_MANIFEST_NAME, how);
	cr_inventory inv;
	fp_error e2;
	if (cr_read_inventory(dirfd, &inv, &e2))
		return fp_fail_code(err, FP_EXIT_FAIL, e2.errnum, "%s is not an image directory: %s", dir, e2.msg);
	bool criu = inv.has_lsmtype || (inv.dump_criu_run_id && inv.dump_criu_run_id[0]);
	cr_inventory_free(&inv);
	if (!criu)
		return BAD(err, "%s has no %s: an interrupted dump, or its manifest was removed, so the image cannot "
				"be proven complete (%s)",
			   dir, FP_MANIFEST_NAME, how);
	if (info)
		info->trust = IMG_TRUST_CRIU;
	return 0;
}

int img_verify(int dirfd, const char *dir, enum img_verify_depth depth, struct img_verify_info *info,
	       fp_error *err)
{
	double t0 = fp_mono_ms_f();
	if (info)
		memset(info, 0, sizeof(*info));
	struct stat st;
	int fd = openat(dirfd, FP_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return no_manifest(dirfd, dir, info, err);
	if (fd < 0)
		return BAD(err, "cannot open %s/%s: %s", dir, FP_MANIFEST_NAME,
			   errno == ELOOP ? "it is a symbolic link (refused)" : strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MANIFEST_MAX) {
		close(fd);
		return BAD(err, "%s/%s is not a manifest (not a regular file, or too big)", dir, FP_MANIFEST_NAME);
	}
	size_t len = (size_t)st.st_size;
	char *text = malloc(len + 1);
	size_t got = text ? img_pread_all(fd, text, len, 0) : 0;
	close(fd);
	if (!text)
		return fp_fail(err, ENOMEM, "out of memory");
	text[got] = '\0';
	struct manifest m = { 0 };
	uint64_t hashed = got;
	int rc = mf_parse(text, got, dir, &m, err);
	if (!rc && !m.npages)
		rc = BAD(err, "%s/%s lists no page data: the snapshot is damaged", dir, FP_MANIFEST_NAME);
	if (!rc)
		rc = check_unlisted(dirfd, dir, &m, err);
	bool per_page = depth == IMG_VERIFY_READS;
	for (size_t i = 0; !rc && i < m.nfiles; i++) {
		const char *n = m.files[i].name;
		enum img_verify_depth d = depth;
		if (depth == IMG_VERIFY_READS) /* a pagehash file: bound by pages_by_reads */
			d = !strncmp(n, "pagehash-", 9) && ends_with(n, ".fph") ? IMG_VERIFY_SIZES : IMG_VERIFY_FULL;
		if (!is_pages_name(n))
			rc = check_file(dirfd, dir, &m.files[i], d, &hashed, err);
	}
	for (size_t i = 0; !rc && i < m.npages; i++)
		rc = check_pages(dirfd, dir, &m, &m.pages[i], depth, &per_page, &hashed, err);
	mf_free(&m);
	free(text);
	if (info) {
		info->bytes_hashed = hashed;
		info->ms = fp_mono_ms_f() - t0;
		info->per_page = per_page && !rc;
	}
	return rc;
}

/* The pages a snapshot's PE_PARENT entries name live in its parent (the
 * `parent` link, CRIU's own), and that one's in its own: each member must
 * be proven before a restore reads any page of the chain. */
int img_verify_chain(int dirfd, const char *dir, enum img_verify_depth depth, struct img_verify_info *info,
		     fp_error *err)
{
	struct img_verify_info top, vi;
	if (img_verify(dirfd, dir, depth, &top, err))
		return -1;
	int cur = dirfd, rc = 0;
	for (unsigned level = 1; !rc; level++) {
		int fd = openat(cur, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			break;
		char at[64], name[PATH_MAX] = "";
		snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
		ssize_t nl = fd >= 0 ? readlink(at, name, sizeof(name) - 1) : -1;
		name[nl > 0 ? nl : 0] = '\0';
		if (fd < 0)
			rc = BAD(err, "cannot open the parent snapshot of %s (level %u): %s", dir, level, strerror(errno));
		else if (level > PGS_CHAIN_MAX_DEPTH)
			rc = BAD(err, "%s has more than %d parent snapshots (a loop of `parent` links?)", dir,
				 PGS_CHAIN_MAX_DEPTH);
		else if (img_verify(fd, name, depth, &vi, err))
			rc = fp_wrap(err, "in the parent snapshot chain of %s", dir);
		else {
			top.bytes_hashed += vi.bytes_hashed;
			top.ms += vi.ms;
			top.per_page &= vi.per_page;
			if (vi.trust == IMG_TRUST_CRIU)
				top.trust = IMG_TRUST_CRIU;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
	}
	if (cur != dirfd && cur >= 0)
		close(cur);
	if (info && !rc)
		*info = top;
	return rc;
}
