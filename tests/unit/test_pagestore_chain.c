/* Incremental snapshots' page data: a pagemap with PE_PARENT entries is
 * resolved through `parent` links into the flat pagemap and page data a
 * restorer needs. A chain of three levels (zstd, plain, zstd) with pages
 * rewritten, added and dropped at each level gives every page from the
 * right level; a broken chain (a page its parent lacks, a missing parent)
 * is an error that says so, never a wrong page. The same chain resolved
 * over its parent's resolution (pgs_chain_open_over) gives the same pages;
 * a moved level makes a kept resolution not intact. A chain longer than
 * the levels a reader keeps open reads right too. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_io.h"
#include "images/pagestore.h"
#include "images/pagestore_chain.h"
#include "paths.h"

#define PS 4096u
#define PID 4242u
#define BASE 0x7f0000000000ull

static char root[256];

static void fill(uint8_t *p, int level, unsigned page)
{
	for (unsigned k = 0; k < PS; k += 4) {
		uint32_t v = (uint32_t)level << 24 | page << 12 | k;
		memcpy(p + k, &v, 4);
	}
}

struct run {
	unsigned first, n;
	uint32_t flags;
};

/* Level dir `name` (parent link to `parent` if not NULL) with the runs
 * given; PRESENT runs get level's pattern. */
static int make_level(const char *name, const char *parent, int level, const struct run *r, size_t nr, bool zstd)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	mkdir(path, 0700);
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (parent)
		CHECK(symlinkat(parent, fd, "parent") == 0);
	cr_pagemap_entry pe[16];
	memset(pe, 0, sizeof(pe));
	fp_error e;
	pgs_opts o = { .compress = zstd ? PGS_COMPRESS_ZSTD : PGS_COMPRESS_NONE, .chunk_pages = 2 };
	pgs_writer *w = pgs_writer_open(fd, 1, &o, &e);
	CHECKF(w != NULL, "%s", e.msg);
	uint8_t page[PS];
	for (size_t i = 0; i < nr; i++) {
		pe[i].vaddr = BASE + (uint64_t)r[i].first * PS;
		pe[i].nr_pages = r[i].n;
		pe[i].has_flags = true;
		pe[i].flags = r[i].flags;
		if (r[i].flags & CR_PE_PRESENT)
			for (unsigned k = 0; k < r[i].n; k++) {
				fill(page, level, r[i].first + k);
				CHECK(pgs_writer_add(w, page, 1, &e) == 0);
			}
	}
	CHECKF(pgs_writer_close(w, NULL, &e) == 0, "%s", e.msg);
	cr_pagemap_head h = { .pages_id = 1 };
	CHECKF(cr_write_pagemap(fd, PID, &h, pe, nr, &e) == 0, "%s", e.msg);
	return fd;
}

static int resolve(int fd, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **r, fp_error *e)
{
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t n = 0;
	if (cr_read_pagemap(fd, PID, &h, &pe, &n, e))
		return -1;
	CHECK(pgs_chain_has_parent(pe, n));
	int rc = pgs_chain_open(fd, PID, h.pages_id, pe, n, flat, nflat, r, e);
	free(pe);
	return rc;
}

/* The chain whose top is fd, read as a restorer would. */
static pgs_reader *reader_of(int fd)
{
	cr_pagemap_entry *flat = NULL;
	size_t nflat = 0;
	pgs_reader *r = NULL;
	fp_error e;
	CHECKF(resolve(fd, &flat, &nflat, &r, &e) == 0, "%s", e.msg);
	free(flat);
	return r;
}

struct located {
	unsigned calls;
	uint64_t next; /* the flat page of the next piece's first */
	bool wrong;
};

/* pgs_locate's pieces, read from their store's file, must hold the
 * pattern of page first + k of the deep chain below (level = page, or 0
 * past its top). */
static int check_piece(void *arg, pgs_reader *store, uint64_t at, uint64_t n, fp_error *err)
{
	(void)err;
	struct located *l = arg;
	l->calls++;
	uint8_t got[PS], want[PS];
	for (uint64_t k = 0; k < n; k++, l->next++) {
		if (pread(pgs_plain_fd(store), got, PS, (off_t)((at + k) * PS)) != PS)
			return l->wrong = true, 0;
		fill(want, l->next >= 1 && l->next <= 10 ? (int)l->next : 0, (unsigned)l->next);
		l->wrong |= memcmp(got, want, PS) != 0;
	}
	return 0;
}

static int count_store(void *arg, pgs_reader *store, fp_error *err)
{
	(void)err;
	unsigned *n = arg;
	*n += pgs_plain_fd(store) >= 0;
	return 0;
}

/* A chain longer than the levels a reader keeps open (16 here: the file
 * limit is lowered first): deep/0 has pages 0-63, deep/k (k = 1..40)
 * rewrites page k alone. Every page read from the top comes from its
 * level, levels closed and opened again on the way; batched reads and
 * the walk over the stores are refused (1), and allowed for a chain of
 * 11 levels, where each piece pgs_locate gives is the right page. */
static void deep_chain(void)
{
	char d[512];
	snprintf(d, sizeof(d), "%s/deep", root);
	mkdir(d, 0700);
	const struct run base[] = { { 0, 64, CR_PE_PRESENT } };
	close(make_level("deep/0", NULL, 0, base, 1, false));
	int top = -1, mid = -1;
	for (int k = 1; k <= 40; k++) {
		char name[32], parent[32];
		snprintf(name, sizeof(name), "deep/%d", k);
		snprintf(parent, sizeof(parent), "../%d", k - 1);
		const struct run lk[] = { { 0, (unsigned)k, CR_PE_PARENT }, { (unsigned)k, 1, CR_PE_PRESENT },
					  { (unsigned)k + 1, 63 - (unsigned)k, CR_PE_PARENT } };
		int fd = make_level(name, parent, k, lk, 3, false);
		if (k == 10)
			mid = fd;
		else if (k == 40)
			top = fd;
		else
			close(fd);
	}
	fp_error e;
	pgs_reader *r = reader_of(top);
	if (r) {
		CHECK(pgs_total_pages(r) == 64);
		uint8_t got[PS], want[PS];
		for (unsigned pass = 0; pass < 2; pass++) /* the second after every level was closed once */
			for (unsigned pg = 0; pg < 64; pg++) {
				CHECKF(pgs_read(r, pg, 1, got, &e) == 0, "%s", e.msg);
				fill(want, pg <= 40 ? (int)pg : 0, pg);
				CHECKF(!memcmp(got, want, PS), "deep chain: page %u should come from level %u", pg, pg <= 40 ? pg : 0);
			}
		struct located l = { 0 };
		unsigned stores = 0;
		CHECK(pgs_locate(r, 0, 64, check_piece, &l, &e) == 1);
		CHECK(pgs_stores(r, 0, count_store, &stores, &e) == 1);
		/* its top levels alone are within bounds */
		CHECK(pgs_stores(r, 3, count_store, &stores, &e) == 0 && stores == 3);
		pgs_close(r);
	}
	if ((r = reader_of(mid))) {
		struct located l = { 0 };
		unsigned stores = 0;
		CHECK(pgs_locate(r, 0, 64, check_piece, &l, &e) == 0 && l.calls > 0 && !l.wrong);
		CHECK(pgs_stores(r, 0, count_store, &stores, &e) == 0 && stores == 11);
		pgs_close(r);
	}
	close(top), close(mid);
}

int main(void)
{
	/* a reader keeps a 32nd of this many levels open, at least 16: the
	 * deep chain is longer */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur > 512) {
		rl.rlim_cur = 512;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(root, sizeof(root), "/tmp/fp-test-chain.XXXXXX");
	if (!mkdtemp(root))
		SKIP("no temporary directory");
	deep_chain();
	/* L0: pages 0-9, all present */
	const struct run l0[] = { { 0, 10, CR_PE_PRESENT } };
	int f0 = make_level("l0", NULL, 0, l0, 1, true);
	/* L1: 2-3 rewritten, 20-21 new, the rest in L0 */
	const struct run l1[] = { { 0, 2, CR_PE_PARENT }, { 2, 2, CR_PE_PRESENT }, { 4, 6, CR_PE_PARENT },
				  { 20, 2, CR_PE_PRESENT } };
	int f1 = make_level("l1", "../l0", 1, l1, 4, false);
	/* L2: page 3 dropped, 5 rewritten, the rest in the parents */
	const struct run l2[] = { { 0, 3, CR_PE_PARENT }, { 4, 1, CR_PE_PARENT }, { 5, 1, CR_PE_PRESENT },
				  { 6, 4, CR_PE_PARENT }, { 20, 2, CR_PE_PARENT } };
	int f2 = make_level("l2", "../l1", 2, l2, 5, true);

	cr_pagemap_entry *flat = NULL;
	size_t nflat = 0;
	pgs_reader *r = NULL;
	fp_error e;
	CHECKF(resolve(f2, &flat, &nflat, &r, &e) == 0, "%s", e.msg);
	if (r) {
		CHECK(nflat == 3);
		CHECK(nflat == 3 && flat[0].vaddr == BASE && flat[0].nr_pages == 3 && flat[1].vaddr == BASE + 4 * PS &&
		      flat[1].nr_pages == 6 && flat[2].vaddr == BASE + 20 * PS && flat[2].nr_pages == 2);
		for (size_t i = 0; i < nflat; i++)
			CHECK(cr_pagemap_flags(&flat[i]) == CR_PE_PRESENT);
		CHECK(pgs_total_pages(r) == 11);
		/* page -> level it must come from */
		const unsigned pages[11] = { 0, 1, 2, 4, 5, 6, 7, 8, 9, 20, 21 };
		const int level[11] = { 0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 1 };
		uint8_t got[11 * PS], want[PS];
		CHECKF(pgs_read(r, 0, 11, got, &e) == 0, "%s", e.msg);
		for (int i = 0; i < 11; i++) {
			fill(want, level[i], pages[i]);
			CHECKF(!memcmp(got + i * PS, want, PS), "page %u should come from level %d", pages[i], level[i]);
		}
		/* the chunk interface, from another reader (a restorer's thread) */
		pgs_reader *r2 = pgs_dup(r, f2, 1, &e);
		CHECKF(r2 != NULL, "%s", e.msg);
		const void *cp;
		uint64_t first, n, seen = 0;
		for (size_t c = 0; r2 && c < pgs_chunk_count(r2); c++) {
			CHECK(pgs_chunk(r2, c, &cp, &first, &n, &e) == 0);
			CHECK(first == seen && !memcmp(cp, got + first * PS, n * PS));
			seen += n;
		}
		CHECK(seen == 11);
		pgs_close(r2);
		/* sequentially */
		seen = 0;
		int rc;
		while ((rc = pgs_next(r, &cp, &first, &n, &e)) > 0) {
			CHECK(first == seen && !memcmp(cp, got + first * PS, n * PS));
			seen += n;
		}
		CHECK(rc == 0 && seen == 11);
		pgs_close(r);
		free(flat);
	}

	/* resolved over the parent's resolution (a session helper keeps
	 * them): the same pages from the same levels, L2's pagemap read alone */
	cr_pagemap_entry *f1flat = NULL, *over = NULL, *pe2 = NULL;
	size_t nf1 = 0, nover = 0, npe2 = 0;
	pgs_reader *r1 = NULL, *ro = NULL;
	cr_pagemap_head h2;
	CHECKF(resolve(f1, &f1flat, &nf1, &r1, &e) == 0, "%s", e.msg);
	CHECKF(cr_read_pagemap(f2, PID, &h2, &pe2, &npe2, &e) == 0, "%s", e.msg);
	CHECKF(r1 && pgs_chain_open_over(f2, PID, h2.pages_id, pe2, npe2, r1, f1flat, nf1, &over, &nover, &ro, &e) == 0,
	       "%s", e.msg);
	if (ro) {
		CHECK(nover == 3 && over[0].nr_pages == 3 && over[1].vaddr == BASE + 4 * PS && over[2].nr_pages == 2);
		const unsigned pages[11] = { 0, 1, 2, 4, 5, 6, 7, 8, 9, 20, 21 };
		const int level[11] = { 0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 1 };
		uint8_t got[11 * PS], want[PS];
		CHECK(pgs_total_pages(ro) == 11);
		CHECKF(pgs_read(ro, 0, 11, got, &e) == 0, "%s", e.msg);
		for (int i = 0; i < 11; i++) {
			fill(want, level[i], pages[i]);
			CHECKF(!memcmp(got + i * PS, want, PS), "over the parent: page %u should come from level %d", pages[i],
			       level[i]);
		}
		CHECK(pgs_chain_intact(ro) == 1);
		/* a level moved away (rm keeps a parent under another name) */
		char a[512], b[512];
		snprintf(a, sizeof(a), "%s/l1", root);
		snprintf(b, sizeof(b), "%s/l1-moved", root);
		CHECK(rename(a, b) == 0);
		CHECK(pgs_chain_intact(ro) == 0 && pgs_chain_intact(r1) == 0);
		CHECK(rename(b, a) == 0);
		CHECK(pgs_chain_intact(ro) == 1);
		/* a page the parent's resolution lacks */
		const cr_pagemap_entry hole = { .vaddr = BASE + 3 * PS, .nr_pages = 1, .has_flags = true, .flags = CR_PE_PARENT };
		cr_pagemap_entry *x = NULL;
		size_t nx = 0;
		pgs_reader *rx = NULL;
		CHECK(pgs_chain_open_over(f2, PID, h2.pages_id, &hole, 1, ro, over, nover, &x, &nx, &rx, &e) < 0);
		CHECKF(strstr(e.msg, "does not have it") != NULL, "%s", e.msg);
		pgs_close(ro);
	}
	pgs_close(r1);
	free(f1flat);
	free(over);
	free(pe2);

	/* a page marked as in the parent that the parent does not have */
	const struct run bad[] = { { 3, 1, CR_PE_PARENT } }; /* L2 dropped page 3 */
	int f3 = make_level("l3", "../l2", 3, bad, 1, true);
	CHECK(resolve(f3, &flat, &nflat, &r, &e) < 0);
	CHECKF(strstr(e.msg, "does not have it") != NULL, "%s", e.msg);
	/* a parent that is gone */
	char p0[512];
	snprintf(p0, sizeof(p0), "%s/l0", root);
	CHECK(fp_rm_rf(p0, NULL) == 0);
	CHECK(resolve(f2, &flat, &nflat, &r, &e) < 0);
	CHECKF(strstr(e.msg, "parent") != NULL, "%s", e.msg);

	close(f0), close(f1), close(f2), close(f3);
	fp_rm_rf(root, NULL);
	return fp_test_done();
}
