/* pagehash-<id>.fph: every link of a page store's hash chain (pagehash.h). */
#include "images/pagehash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/pagestore.h"

#define MAGIC "FPPGHASH"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the entries are written as they are in memory");

void pgh_name(char *buf, size_t len, uint32_t pages_id)
{
	snprintf(buf, len, "pagehash-%u.fph", pages_id);
}

uint64_t pgh_add(pgh_list *l, const void *pages, size_t npages)
{
	const uint8_t *b = pages;
	if (!l->failed && l->n + npages > l->cap) {
		uint64_t cap = l->cap ? l->cap : 4096;
		while (cap < l->n + npages)
			cap *= 2;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (v)
			l->v = v, l->cap = cap;
		else
			l->failed = true;
	}
	uint64_t h = l->h;
	for (size_t i = 0; i < npages; i++) {
		h = fp_hash64(b + i * PGS_PAGE_SIZE, PGS_PAGE_SIZE, h);
		if (!l->failed)
			l->v[l->n + i] = h;
	}
	l->n += npages;
	l->h = h;
	return h;
}

void pgh_reset(pgh_list *l)
{
	l->n = 0;
	l->h = 0;
	l->failed = false;
}

bool pgh_truncate(pgh_list *l, uint64_t n)
{
	if (l->failed || n > l->n)
		return false;
	l->n = n;
	l->h = n ? l->v[n - 1] : 0;
	return true;
}

void pgh_free(pgh_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void header(uint8_t h[PGH_HDR_SIZE], uint64_t n)
{
	memset(h, 0, PGH_HDR_SIZE);
	memcpy(h, MAGIC, 8);
	uint32_t ver = 1, ps = PGS_PAGE_SIZE;
	memcpy(h + 8, &ver, 4);
	memcpy(h + 12, &ps, 4);
	memcpy(h + 16, &n, 8);
}

int pgh_write(int dirfd, uint32_t pages_id, const pgh_list *l, fp_error *err)
{
	if (l->failed)
		return 0;
	char name[64];
	pgh_name(name, sizeof(name), pages_id);
	uint8_t h[PGH_HDR_SIZE];
	header(h, l->n);
	img_afile f;
	if (img_afile_open(&f, dirfd, name, err) < 0)
		return -1;
	if (img_afile_write(&f, h, sizeof(h), err) < 0 ||
	    (l->n && img_afile_write(&f, l->v, (size_t)l->n * sizeof(uint64_t), err) < 0)) {
		img_afile_abort(&f);
		return -1;
	}
	return img_afile_commit(&f, false, err);
}

static int open_checked(int dirfd, uint32_t pages_id, uint64_t *n, char *name, size_t nlen, fp_error *err)
{
	pgh_name(name, nlen, pages_id);
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", name, strerror(errno));
	struct stat st;
	uint8_t h[PGH_HDR_SIZE], want[PGH_HDR_SIZE];
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || img_pread_all(fd, h, sizeof(h), 0) != sizeof(h)) {
		close(fd);
		return fp_fail_code(err, FP_EXIT_FAIL, EIO, "%s is not a regular file with a header (damaged)", name);
	}
	memcpy(n, h + 16, 8);
	header(want, *n);
	if (memcmp(h, want, sizeof(h)) || *n > ((uint64_t)st.st_size - PGH_HDR_SIZE) / 8 ||
	    (uint64_t)st.st_size != PGH_HDR_SIZE + *n * 8) {
		close(fd);
		return fp_fail_code(err, FP_EXIT_FAIL, EIO, "%s is damaged (bad header or size)", name);
	}
	return fd;
}

int pgh_tail(int dirfd, uint32_t pages_id, uint64_t *npages, uint64_t *last, fp_error *err)
{
	char name[64];
	int fd = open_checked(dirfd, pages_id, npages, name, sizeof(name), err);
	if (fd < 0)
		return -1;
	*last = 0;
	int rc = 0;
	if (*npages && img_pread_all(fd, last, 8, PGH_HDR_SIZE + (*npages - 1) * 8) != 8)
		rc = fp_fail(err, EIO, "cannot read %s: %s", name, strerror(errno));
	close(fd);
	return rc;
}

int pgh_load(int dirfd, uint32_t pages_id, uint64_t npages, uint64_t **v, fp_error *err)
{
	char name[64];
	uint64_t n;
	int fd = open_checked(dirfd, pages_id, &n, name, sizeof(name), err);
	if (fd < 0)
		return -1;
	if (n != npages) {
		close(fd);
		return fp_fail_code(err, FP_EXIT_FAIL, EIO, "%s has hashes of %llu pages, the store holds %llu (damaged)",
				    name, (unsigned long long)n, (unsigned long long)npages);
	}
	size_t len = (size_t)n * 8;
	uint64_t *b = malloc(len ? len : 1);
	size_t got = b ? img_pread_all(fd, b, len, PGH_HDR_SIZE) : 0;
	close(fd);
	if (!b)
		return fp_fail(err, ENOMEM, "out of memory");
	if (got != len) {
		free(b);
		return fp_fail(err, errno ? errno : EIO, "cannot read %s: %s", name, errno ? strerror(errno) : "short read");
	}
	*v = b;
	return 0;
}

uint64_t pgh_check(const uint64_t *v, uint64_t first, uint64_t n, const void *data)
{
	const uint8_t *b = data;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = first + i;
		if (fp_hash64(b + i * PGS_PAGE_SIZE, PGS_PAGE_SIZE, k ? v[k - 1] : 0) != v[k])
			return i + 1;
	}
	return 0;
}
