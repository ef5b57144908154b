/* Rollback in place: SNAP's pages read through io_uring (rollback_int.h).
 *
 * The pages to write back lie one by one in the stores (the pages written
 * since SNAP are scattered over the process, mostly in the full
 * snapshot's store): one pread per page cost ~3-4.5 us here, most of it
 * the system call itself on this virtual machine, so 2,630 pages (1 GiB,
 * 1% written) took 7.5-8.7 ms on one CPU. Queued in an io_uring and
 * submitted a batch at a time (a read that hits the page cache completes
 * during the submission), the same reads took 3.4-4.8 ms. The pages are
 * proven as pgs_read proves them (pgs_check_read against the per-page
 * hashes), after they are read. Where io_uring is missing or refused, or
 * a store is compressed, the caller reads with pread as before.
 *
 * The rings (liburing's) are set up at the first rollback and kept for the
 * helper's life: one per CPU of rb_two_cpus (ring 0 for the calling thread,
 * 1 for the second), never used by two threads at once. */
#include "session/rollback_int.h"
#include "config.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/pagestore_chain.h"

#define ENTRIES 128u
#define PIECE_MAX (16u << 20) /* bytes per read: len is 32 bits */
#define MAPPED_SLOTS 512u     /* a power of two, over the levels a chain keeps open */

struct ring {
	int state; /* 0: not set up yet, 1: ready, -1: unavailable */
	struct io_uring u;
};

static struct ring rings[2];

struct piece {
	pgs_reader *store;
	uint64_t at, n; /* its pages, in the store's file */
	uint8_t *dst;
	size_t got;     /* bytes read */
};

struct batch {
	struct ring *g;
	pgs_reader *rd;
	/* stores looked up in rollback_map.c, by the reader's address (a
	 * long chain's pages come from many stores in turn), with their
	 * mappings (NULL: none) and lengths */
	struct { pgs_reader *s; const uint8_t *b; uint64_t l; } mc[MAPPED_SLOTS];
	struct piece pc[ENTRIES];
	unsigned n;     /* queued, not submitted yet */
	uint8_t *cur;   /* where the next piece goes (rb_snap_walk's order) */
	int failed;     /* a read failed: err says why, the rest only drained */
};

/* Submits the queued reads and waits for all of them; then each one is
 * finished (a short read by pread) and proven. */
static int flush(struct batch *b, fp_error *err)
{
	struct ring *g = b->g;
	unsigned todo = b->n, done = 0;
	bool submitted = false;
	while (done < todo) {
		int r = submitted ? io_uring_wait_cqe_nr(&g->u, &(struct io_uring_cqe *){ NULL }, 1)
				  : io_uring_submit_and_wait(&g->u, todo);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			/* the ring is broken: tearing it down cancels what is
			 * still in flight, and it is not used again */
			if (!b->failed)
				fp_fail(err, -r, "io_uring: %s", strerror(-r));
			b->failed = 1;
			io_uring_queue_exit(&g->u);
			g->state = -1;
			return -1;
		}
		if (r >= 0)
			submitted = true;
		unsigned head, seen = 0;
		struct io_uring_cqe *q;
		io_uring_for_each_cqe(&g->u, head, q) {
			struct piece *p = &b->pc[io_uring_cqe_get_data64(q)];
			if (q->res < 0 && !b->failed) {
				b->failed = 1;
				fp_fail(err, -q->res, "reading a snapshot's page store: %s", strerror(-q->res));
			}
			p->got = q->res > 0 ? (size_t)q->res : 0;
			seen++;
		}
		io_uring_cq_advance(&g->u, seen);
		done += seen;
	}
	b->n = 0;
	for (unsigned i = 0; i < todo && !b->failed; i++) {
		struct piece *p = &b->pc[i];
		size_t len = p->n * CR_PAGE_SIZE;
		while (p->got < len) { /* short: the rest as pgs_read would */
			ssize_t r = pread(pgs_plain_fd(p->store), p->dst + p->got, len - p->got,
					  (off_t)(p->at * CR_PAGE_SIZE + p->got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				b->failed = 1;
				return fp_fail(err, r ? errno : EIO, "reading a snapshot's page store: %s",
					       r ? strerror(errno) : "unexpected end of file (truncated)");
			}
			p->got += (size_t)r;
		}
		if (pgs_check_read(p->store, p->at, p->n, p->dst, err)) {
			b->failed = 1;
			return -1;
		}
	}
	return b->failed ? -1 : 0;
}

/* store's mapping (rollback_map.c), looked up once per batch (open
 * addressing; a full table looks it up each time) */
static const uint8_t *mapped(struct batch *b, pgs_reader *store, uint64_t *len)
{
	unsigned h = (unsigned)(((uintptr_t)store >> 4) * 0x9E3779B1u) & (MAPPED_SLOTS - 1);
	for (unsigned k = 0; k < MAPPED_SLOTS; k++, h = (h + 1) & (MAPPED_SLOTS - 1)) {
		if (b->mc[h].s == store)
			return *len = b->mc[h].l, b->mc[h].b;
		if (!b->mc[h].s) {
			const uint8_t *m = rb_map_get(pgs_plain_fd(store), len);
			b->mc[h].s = store, b->mc[h].b = m, b->mc[h].l = *len;
			return m;
		}
	}
	return rb_map_get(pgs_plain_fd(store), len);
}

static int queue(void *arg, pgs_reader *store, uint64_t at, uint64_t n, fp_error *err)
{
	struct batch *b = arg;
	uint64_t mlen = 0;
	const uint8_t *m = mapped(b, store, &mlen);
	if (m && at + n <= mlen / CR_PAGE_SIZE && !rb_map_copy(b->cur, m + at * CR_PAGE_SIZE, n * CR_PAGE_SIZE)) {
		if (pgs_check_read(store, at, n, b->cur, err))
			return -1;
		b->cur += n * CR_PAGE_SIZE;
		return 0;
	}
	while (n) {
		uint64_t take = n < PIECE_MAX / CR_PAGE_SIZE ? n : PIECE_MAX / CR_PAGE_SIZE;
		if (b->n == ENTRIES && flush(b, err))
			return -1;
		struct io_uring_sqe *s = io_uring_get_sqe(&b->g->u);
		if (!s) /* ENTRIES reads at most are queued at a time */
			return fp_fail(err, EBUSY, "io_uring: no free submission entry (internal error)");
		io_uring_prep_read(s, pgs_plain_fd(store), b->cur, (unsigned)(take * CR_PAGE_SIZE), at * CR_PAGE_SIZE);
		io_uring_sqe_set_data64(s, b->n);
		b->pc[b->n++] = (struct piece){ store, at, take, b->cur, 0 };
		b->cur += take * CR_PAGE_SIZE;
		at += take;
		n -= take;
	}
	return 0;
}

static int locate(void *arg, uint64_t first, uint64_t n, uint8_t *dst, fp_error *err)
{
	struct batch *b = arg;
	b->cur = dst;
	return pgs_locate(b->rd, first, n, queue, b, err);
}

static bool uring_off(void)
{
	return fp_env_flag("FP_ROLLBACK_NO_URING");
}

int rb_uring_read(struct rb_proc *p, pgs_reader *rd, unsigned ring, const struct fp_range *r, size_t n,
		  const size_t *off, uint8_t *dst, fp_error *err)
{
	struct ring *g = &rings[ring & 1];
	if (!g->state)
		g->state = uring_off() || io_uring_queue_init(ENTRIES, &g->u, 0) ? -1 : 1;
	if (g->state < 0)
		return 1;
	struct batch b = { .g = g, .rd = rd };
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = rb_snap_walk(p, r[i].start, r[i].end - r[i].start, dst + off[i], locate, &b, err);
	/* what is queued is read (or drained) before dst is given back */
	fp_error fe;
	if (b.n && flush(&b, rc ? &fe : err) && !rc)
		rc = -1;
	return rc;
}
