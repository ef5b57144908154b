/* Per-page hashes of a page store (images/pagehash.h): a reader given them
 * returns intact pages, plain or compressed, and refuses exactly the page
 * whose bytes changed, whatever else it reads; a pagehash file of another
 * page count, a bad header or a changed entry is refused; its last link is
 * the manifest's chain hash of the pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/img_verify.h"
#include "images/pagehash.h"
#include "images/pagestore.h"

#define PS 4096u
#define N 700u

static int dfd = -1;

static void write_store(uint32_t id, const uint8_t *pages, bool plain)
{
	fp_error e = { 0 };
	pgs_opts o = { .compress = plain ? PGS_COMPRESS_NONE : PGS_COMPRESS_ZSTD };
	pgs_writer *w = pgs_writer_open(dfd, id, &o, &e);
	CHECKF(w != NULL, "%s", e.msg);
	pgh_list l = { 0 };
	for (size_t i = 0; w && i < N; i += 100) { /* in pieces, as a dump adds them */
		CHECK(pgs_writer_add(w, pages + i * PS, 100, &e) == 0);
		pgh_add(&l, pages + i * PS, 100);
	}
	CHECK(w && pgs_writer_close(w, NULL, &e) == 0);
	CHECK(l.n == N && l.h == img_pages_hash(0, pages, N)); /* the manifest's pages line */
	CHECKF(pgh_write(dfd, id, &l, &e) == 0, "%s", e.msg);
	uint64_t n = 0, last = 0;
	CHECKF(pgh_tail(dfd, id, &n, &last, &e) == 0 && n == N && last == l.h, "%s", e.msg);
	pgh_free(&l);
}

/* 0 if page k reads back as pages[k] through a checking reader. */
static int read_page(uint32_t id, uint64_t k, const uint8_t *pages, fp_error *e)
{
	pgs_reader *r = pgs_open(dfd, id, e);
	if (!r)
		return -1;
	static uint8_t buf[3 * PS];
	int rc = pgs_check_pages(r, dfd, id, e);
	uint64_t first = k ? k - 1 : k, n = k + 1 < N ? 3 : 2; /* with its neighbours */
	if (!rc)
		rc = pgs_read(r, first, n, buf, e);
	if (!rc && memcmp(buf, pages + first * PS, n * PS))
		rc = fp_fail(e, EIO, "wrong bytes returned");
	pgs_close(r);
	return rc;
}

static void flip(const char *name, off_t at)
{
	int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
	uint8_t b = 0;
	CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1);
	b ^= 0x40;
	CHECK(pwrite(fd, &b, 1, at) == 1);
	close(fd);
}

int main(void)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "/tmp/fp-test-pgh.%d", (int)getpid());
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(dir, &e) == 0, "%s", e.msg);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 1;
	uint8_t *pages = malloc((size_t)N * PS);
	unsigned seed = 7;
	for (size_t i = 0; i < (size_t)N * PS; i++)
		pages[i] = (i / PS) % 3 ? (uint8_t)(rand_r(&seed) >> 8) : (uint8_t)(i / PS);

	write_store(1, pages, true);
	write_store(2, pages, false);
	for (uint64_t k = 0; k < N; k += 97) {
		CHECKF(read_page(1, k, pages, &e) == 0, "plain page %llu: %s", (unsigned long long)k, e.msg);
		CHECKF(read_page(2, k, pages, &e) == 0, "compressed page %llu: %s", (unsigned long long)k, e.msg);
	}

	/* a flipped byte in page 300 of the plain store: that page is refused,
	 * its neighbours' reads that do not include it are not */
	flip("pages-1.img", 300 * PS + 17);
	CHECK(read_page(1, 300, pages, &e) < 0 && strstr(e.msg, "page 300"));
	CHECK(read_page(1, 299, pages, &e) < 0); /* reads 298..300 */
	CHECKF(read_page(1, 302, pages, &e) == 0, "%s", e.msg);
	/* an unchecked reader returns the wrong byte: what the hashes are for */
	pgs_reader *r = pgs_open(dfd, 1, &e);
	static uint8_t one[PS];
	CHECK(r && pgs_read(r, 300, 1, one, &e) == 0 && memcmp(one, pages + 300 * PS, PS));
	pgs_close(r);
	flip("pages-1.img", 300 * PS + 17);
	CHECKF(read_page(1, 300, pages, &e) == 0, "%s", e.msg);

	/* a changed entry: the pages it links are refused */
	char name[64];
	pgh_name(name, sizeof(name), 1);
	flip(name, PGH_HDR_SIZE + 8 * 500 + 3);
	CHECK(read_page(1, 500, pages, &e) < 0);
	CHECK(read_page(1, 501, pages, &e) < 0); /* h_500 seeds page 501 too */
	CHECKF(read_page(1, 100, pages, &e) == 0, "%s", e.msg);
	flip(name, PGH_HDR_SIZE + 8 * 500 + 3);

	/* another store's hashes (other count), a bad header, none at all */
	pgs_writer *w = pgs_writer_open(dfd, 3, &(pgs_opts){ .compress = PGS_COMPRESS_NONE }, &e);
	CHECK(w && pgs_writer_add(w, pages, 10, &e) == 0 && pgs_writer_close(w, NULL, &e) == 0);
	char n3[64];
	pgh_name(n3, sizeof(n3), 3);
	CHECK(linkat(dfd, name, dfd, n3, 0) == 0);
	CHECK(read_page(3, 5, pages, &e) < 0 && strstr(e.msg, "700"));
	CHECK(unlinkat(dfd, n3, 0) == 0);
	CHECK(read_page(3, 5, pages, &e) < 0 && e.errnum == ENOENT);
	flip(name, 2);
	CHECK(read_page(1, 5, pages, &e) < 0);
	uint64_t n = 0, last = 0;
	CHECK(pgh_tail(dfd, 1, &n, &last, &e) < 0);

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(pages);
	return fp_test_done();
}
