/* The zstd page store: random and sequential reads match what was written,
 * decompression produces the exact plain pages file, --compress none writes
 * the plain file directly, and corrupt or truncated stores give errors, never
 * a wrong page. Set FP_PGS_BENCH=1 to print compression throughput (not
 * asserted: speed belongs to bench/). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/pagestore.h"

#define PS 4096u

static char dir[256];
static int dfd = -1;

/* Pages that look like a process: zero pages, text-like pages, pointer-like
 * pages and random (incompressible) runs, so both codecs get used. */
static uint8_t *make_pages(size_t n)
{
	uint8_t *p = malloc(n * PS);
	unsigned seed = 99;
	for (size_t i = 0; i < n; i++) {
		uint8_t *pg = p + i * PS;
		int kind = (i / 37) % 4;
		if (i >= 600 && i < 900)
			kind = 3; /* a long random run: whole stored chunks */
		switch (kind) {
		case 0:
			memset(pg, 0, PS);
			break;
		case 1:
			for (unsigned k = 0; k < PS; k++)
				pg[k] = (uint8_t)("the quick brown fox "[(k + i) % 20]);
			break;
		case 2:
			for (unsigned k = 0; k < PS; k += 8) {
				uint64_t v = 0x7f0000000000ull + i * 64 + k;
				memcpy(pg + k, &v, 8);
			}
			break;
		default:
			for (unsigned k = 0; k < PS; k++) {
				seed = seed * 1103515245u + 12345u;
				pg[k] = (uint8_t)(seed >> 16);
			}
		}
		memcpy(pg, &i, sizeof(i)); /* every page distinct */
	}
	return p;
}

static int write_store(uint32_t id, const uint8_t *pages, size_t n, const pgs_opts *o,
		       pgs_stats *st)
{
	fp_error e = { 0 };
	pgs_writer *w = pgs_writer_open(dfd, id, o, &e);
	CHECKF(w != NULL, "%s", e.msg);
	if (!w)
		return -1;
	/* odd-sized pieces: partial chunks, exact chunks, and spans of several */
	static const size_t pieces[] = { 1, 7, 300, 256, 255, 2, 512 };
	size_t done = 0, k = 0;
	while (done < n) {
		size_t take = pieces[k++ % 7];
		if (take > n - done)
			take = n - done;
		if (pgs_writer_add(w, pages + done * PS, take, &e) < 0) {
			CHECKF(0, "%s", e.msg);
			pgs_writer_abort(w);
			return -1;
		}
		done += take;
	}
	int rc = pgs_writer_close(w, st, &e);
	CHECKF(rc == 0, "%s", e.msg);
	return rc;
}

static void check_reads(uint32_t id, const uint8_t *pages, size_t n, bool compressed)
{
	fp_error e = { 0 };
	pgs_reader *r = pgs_open(dfd, id, &e);
	CHECKF(r != NULL, "%s", e.msg);
	if (!r)
		return;
	CHECK(pgs_total_pages(r) == n && pgs_is_compressed(r) == compressed);
	uint8_t *buf = malloc(n * PS);
	unsigned seed = 3;
	int bad = 0;
	for (int i = 0; i < 400; i++) {
		seed = seed * 1103515245u + 12345u;
		uint64_t first = (seed >> 8) % n;
		seed = seed * 1103515245u + 12345u;
		uint64_t cnt = 1 + (seed >> 8) % (i % 10 == 0 ? n - first : (n - first < 20 ? n - first : 20));
		if (pgs_read(r, first, cnt, buf, &e) < 0 ||
		    memcmp(buf, pages + first * PS, cnt * PS) != 0)
			bad++;
	}
	CHECKF(bad == 0, "%d random reads wrong", bad);
	CHECK(pgs_read(r, 0, n, buf, &e) == 0 && memcmp(buf, pages, n * PS) == 0);
	CHECK(pgs_read(r, n - 1, 2, buf, &e) < 0 && strstr(e.msg, "holds") != NULL);
	CHECK(pgs_read(r, n, 0, buf, &e) == 0);
	/* sequential */
	const void *p;
	uint64_t first, cnt, expect = 0;
	int rc;
	bad = 0;
	while ((rc = pgs_next(r, &p, &first, &cnt, &e)) > 0) {
		if (first != expect || memcmp(p, pages + first * PS, cnt * PS) != 0)
			bad++;
		expect = first + cnt;
	}
	CHECK(rc == 0 && expect == n && bad == 0);
	/* chunk by chunk, in reverse (as parallel decoders take them): the
	 * chunks cover every page once */
	size_t nc = pgs_chunk_count(r);
	CHECK(compressed ? nc > 0 : nc == 0);
	uint64_t covered = 0;
	bad = 0;
	for (size_t i = nc; i-- > 0;) {
		if (pgs_chunk(r, i, &p, &first, &cnt, &e) < 0 || first + cnt > n ||
		    memcmp(p, pages + first * PS, cnt * PS) != 0)
			bad++;
		covered += cnt;
	}
	CHECKF(bad == 0 && (!compressed || covered == n), "%d chunks wrong, %llu of %zu pages covered", bad,
	       (unsigned long long)covered, n);
	CHECK(pgs_chunk(r, nc, &p, &first, &cnt, &e) < 0);
	free(buf);
	pgs_close(r);
}

static bool file_equals(const char *name, const uint8_t *data, size_t len)
{
	uint8_t *d;
	size_t n;
	fp_error e;
	if (img_read_file(dfd, name, (size_t)1 << 34, &d, &n, &e) < 0)
		return false;
	bool same = n == len && memcmp(d, data, len) == 0;
	free(d);
	return same;
}

static void check_corruption(uint32_t id, const uint8_t *pages, size_t n)
{
	char name[64];
	pgs_store_name(name, sizeof(name), id);
	uint8_t *orig;
	size_t len;
	fp_error e = { 0 };
	CHECK(img_read_file(dfd, name, (size_t)1 << 34, &orig, &len, &e) == 0);
	uint8_t *buf = malloc(n * PS);

	/* a flipped byte inside the first chunk's data: open works, reading
	 * that chunk fails naming it, other chunks still read */
	orig[64 + 100] ^= 0x40;
	CHECK(img_write_atomic(dfd, name, orig, len, false, &e) == 0);
	pgs_reader *r = pgs_open(dfd, id, &e);
	CHECKF(r != NULL, "%s", e.msg);
	if (r) {
		CHECK(pgs_read(r, 0, 1, buf, &e) < 0);
		CHECKF(strstr(e.msg, "chunk 0 (pages 0..") != NULL && strstr(e.msg, "corrupt"),
		       "%s", e.msg);
		CHECK(pgs_read(r, n - 1, 1, buf, &e) == 0 &&
		      memcmp(buf, pages + (n - 1) * PS, PS) == 0);
		pgs_close(r);
	}
	CHECK(pgs_verify(dfd, id, &e) < 0);
	CHECK(pgs_decompress(dfd, id, false, &e) < 0 && strstr(e.msg, "decompress"));
	char plain[64];
	pgs_plain_name(plain, sizeof(plain), id);
	CHECK(faccessat(dfd, plain, F_OK, 0) < 0); /* no half-written plain file */
	orig[64 + 100] ^= 0x40;

	/* truncations: refused at open */
	size_t cuts[] = { 0, 10, 64, 100, len / 2, len - 48, len - 47, len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		CHECK(img_write_atomic(dfd, name, orig, cuts[i], false, &e) == 0);
		r = pgs_open(dfd, id, &e);
		CHECKF(r == NULL, "truncated to %zu accepted", cuts[i]);
		pgs_close(r);
	}
	CHECK(img_write_atomic(dfd, name, orig, len - 1, false, &e) == 0);
	CHECK(pgs_open(dfd, id, &e) == NULL && strstr(e.msg, name) != NULL);

	/* random flips anywhere: an error or the right pages, never wrong ones */
	uint8_t *mut = malloc(len);
	unsigned seed = 11;
	int wrong = 0, detected = 0;
	for (int round = 0; round < 300; round++) {
		memcpy(mut, orig, len);
		seed = seed * 1103515245u + 12345u;
		size_t at = (round % 3 == 0) ? len - 1 - (seed >> 8) % 600 : (seed >> 8) % len;
		mut[at] ^= (uint8_t)(1u << (seed & 7));
		img_write_atomic(dfd, name, mut, len, false, &e);
		r = pgs_open(dfd, id, &e);
		if (!r) {
			detected++;
			continue;
		}
		if (pgs_read(r, 0, n, buf, &e) < 0)
			detected++;
		else if (memcmp(buf, pages, n * PS) != 0)
			wrong++;
		pgs_close(r);
	}
	CHECKF(wrong == 0, "%d corrupt stores returned wrong pages", wrong);
	CHECK(detected > 250);
	free(mut);
	CHECK(img_write_atomic(dfd, name, orig, len, false, &e) == 0);
	CHECK(pgs_verify(dfd, id, &e) == 0);
	free(orig);
	free(buf);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Throughput on file data from /usr (code and data, like a process image). */
static void bench(void)
{
	size_t want = 256u << 20, got = 0;
	uint8_t *data = malloc(want);
	FILE *ls = popen("find /usr/lib/x86_64-linux-gnu /usr/bin -type f -size +100k 2>/dev/null",
			 "r");
	char path[4096];
	while (ls && got < want && fgets(path, sizeof(path), ls)) {
		path[strcspn(path, "\n")] = 0;
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r;
		while (got < want && (r = read(fd, data + got, want - got)) > 0)
			got += (size_t)r;
		close(fd);
	}
	if (ls)
		pclose(ls);
	size_t n = got / PS;
	int levels[] = { -1, 1, 3 };
	for (int i = 0; i < 3; i++) {
		pgs_opts o = { .compress = PGS_COMPRESS_ZSTD, .level = levels[i] };
		pgs_stats st;
		fp_error e;
		double t0 = now();
		pgs_writer *w = pgs_writer_open(dfd, 100, &o, &e);
		if (!w || pgs_writer_add(w, data, n, &e) < 0 || pgs_writer_close(w, &st, &e) < 0) {
			printf("bench failed: %s\n", e.msg);
			break;
		}
		double t1 = now();
		pgs_reader *r = pgs_open(dfd, 100, &e);
		const void *p;
		uint64_t f, c;
		while (r && pgs_next(r, &p, &f, &c, &e) > 0)
			;
		pgs_close(r);
		double t2 = now();
		printf("bench: level %d: %zu MiB -> %.1f MiB (ratio %.2f): compress %.0f MB/s, "
		       "decompress+verify %.0f MB/s\n",
		       levels[i], n * PS >> 20, (double)st.bytes_out / 1048576.0,
		       (double)st.bytes_in / (double)st.bytes_out,
		       (double)st.bytes_in / (t1 - t0) / 1e6, (double)st.bytes_in / (t2 - t1) / 1e6);
	}
	double t0 = now();
	uint64_t h = fp_hash64(data, n * PS, 0);
	double t1 = now();
	printf("bench: hash64 %.0f MB/s (%016llx)\n", (double)(n * PS) / (t1 - t0) / 1e6,
	       (unsigned long long)h);
	free(data);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fp-test-pgs.%d", (int)getpid());
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(dir, &e) == 0, "%s", e.msg);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 1;

	/* hash: the standard XXH64 values */
	CHECK(fp_hash64("", 0, 0) == 0xef46db3751d8e999ull);
	CHECK(fp_hash64("abc", 3, 0) == 0x44bc2cf5ad770999ull);

	size_t n = 1000; /* not a multiple of the chunk size */
	uint8_t *pages = make_pages(n);

	pgs_stats st = { 0 };
	CHECK(write_store(1, pages, n, NULL, &st) == 0);
	CHECK(st.pages == n && st.chunks == 4 && st.bytes_out < st.bytes_in);
	struct stat sb;
	CHECK(fstatat(dfd, "pages-1.fpz", &sb, 0) == 0 && (sb.st_mode & 0777) == 0600 &&
	      (uint64_t)sb.st_size == st.bytes_out);
	CHECK(faccessat(dfd, "pages-1.img", F_OK, 0) < 0); /* CRIU never sees a store */
	check_reads(1, pages, n, true);
	CHECKF(pgs_verify(dfd, 1, &e) == 0, "%s", e.msg);

	/* decompress gives exactly CRIU's plain file */
	CHECKF(pgs_decompress(dfd, 1, false, &e) == 0, "%s", e.msg);
	CHECK(file_equals("pages-1.img", pages, n * PS));
	CHECK(fstatat(dfd, "pages-1.img", &sb, 0) == 0 && (sb.st_mode & 0777) == 0600);
	CHECKF(pgs_decompress(dfd, 1, true, &e) == 0, "%s", e.msg);
	CHECK(faccessat(dfd, "pages-1.fpz", F_OK, 0) < 0);
	CHECK(file_equals("pages-1.img", pages, n * PS));
	CHECK(pgs_decompress(dfd, 1, true, &e) == 0); /* already plain: nothing to do */
	check_reads(1, pages, n, false);              /* the reader reads plain files too */

	/* --compress none */
	pgs_opts none = { .compress = PGS_COMPRESS_NONE };
	CHECK(write_store(2, pages, n, &none, &st) == 0 && st.bytes_out == n * PS);
	CHECK(file_equals("pages-2.img", pages, n * PS));
	CHECK(faccessat(dfd, "pages-2.fpz", F_OK, 0) < 0);

	/* small chunks, another level */
	pgs_opts small = { .compress = PGS_COMPRESS_ZSTD, .level = -1, .chunk_pages = 1 };
	CHECK(write_store(3, pages, 50, &small, &st) == 0 && st.chunks == 50);
	check_reads(3, pages, 50, true);
	pgs_opts huge = { .chunk_pages = PGS_MAX_CHUNK_PAGES + 1 };
	CHECK(pgs_writer_open(dfd, 4, &huge, &e) == NULL);

	/* parallel compression: the same file, byte for byte, whatever the
	 * number of threads (chunks are independent frames, written in order) */
	for (unsigned th = 2; th <= 4; th++) {
		pgs_opts par = { .compress = PGS_COMPRESS_ZSTD, .level = 1, .threads = th, .chunk_pages = 16 };
		pgs_opts one = par;
		one.threads = 1;
		CHECK(write_store(10, pages, n, &one, &st) == 0);
		CHECK(write_store(11, pages, n, &par, &st) == 0 && st.pages == n);
		check_reads(11, pages, n, true);
		CHECKF(pgs_verify(dfd, 11, &e) == 0, "%s", e.msg);
		int f1 = openat(dfd, "pages-10.fpz", O_RDONLY | O_CLOEXEC), f2 = openat(dfd, "pages-11.fpz", O_RDONLY | O_CLOEXEC);
		struct stat s1, s2;
		bool same = f1 >= 0 && f2 >= 0 && fstat(f1, &s1) == 0 && fstat(f2, &s2) == 0 && s1.st_size == s2.st_size;
		if (same) {
			uint8_t *b1 = malloc((size_t)s1.st_size), *b2 = malloc((size_t)s2.st_size);
			same = b1 && b2 && pread(f1, b1, (size_t)s1.st_size, 0) == s1.st_size &&
			       pread(f2, b2, (size_t)s2.st_size, 0) == s2.st_size && !memcmp(b1, b2, (size_t)s1.st_size);
			free(b1);
			free(b2);
		}
		CHECKF(same, "%u threads wrote a different file", th);
		close(f1);
		close(f2);
		/* zero-copy filling through pgs_writer_buf/commit, in odd pieces */
		pgs_writer *zw = pgs_writer_open(dfd, 12, &par, &e);
		size_t done = 0;
		while (zw && done < n) {
			size_t room;
			uint8_t *b = pgs_writer_buf(zw, &room, &e);
			size_t take = room > 3 ? room - 3 : room;
			if (take > n - done)
				take = n - done;
			memcpy(b, pages + done * PS, take * PS);
			CHECK(pgs_writer_commit(zw, take, &e) == 0);
			done += take;
		}
		CHECK(zw && pgs_writer_close(zw, NULL, &e) == 0);
		check_reads(12, pages, n, true);
		/* an aborted threaded writer joins its threads and leaves nothing */
		zw = pgs_writer_open(dfd, 13, &par, &e);
		CHECK(zw && pgs_writer_add(zw, pages, 100, &e) == 0);
		pgs_writer_abort(zw);
		CHECK(faccessat(dfd, "pages-13.fpz", F_OK, 0) < 0);
	}

	/* an empty store is valid */
	CHECK(write_store(5, pages, 0, NULL, &st) == 0);
	pgs_reader *r = pgs_open(dfd, 5, &e);
	CHECK(r && pgs_total_pages(r) == 0);
	pgs_close(r);

	/* an aborted writer leaves nothing behind */
	pgs_writer *w = pgs_writer_open(dfd, 6, NULL, &e);
	CHECK(w && pgs_writer_add(w, pages, 10, &e) == 0);
	pgs_writer_abort(w);
	CHECK(faccessat(dfd, "pages-6.fpz", F_OK, 0) < 0);

	/* missing */
	CHECK(pgs_open(dfd, 77, &e) == NULL && e.errnum == ENOENT && strstr(e.msg, "pages-77"));
	CHECK(pgs_decompress(dfd, 77, false, &e) < 0 && e.errnum == ENOENT);

	/* a plain file that is not whole pages */
	CHECK(img_write_atomic(dfd, "pages-8.img", pages, 5000, false, &e) == 0);
	CHECK(pgs_open(dfd, 8, &e) == NULL && strstr(e.msg, "whole number of pages"));

	CHECK(write_store(9, pages, n, NULL, &st) == 0);
	check_corruption(9, pages, n);

	if (getenv("FP_PGS_BENCH"))
		bench();

	free(pages);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	close(dfd);
	return fp_test_done();
}
