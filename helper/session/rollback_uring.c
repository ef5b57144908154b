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
 * The rings are set up at the first rollback and kept for the helper's
 * life: one per CPU of rb_two_cpus (ring 0 for the calling thread, 1 for
 * the second), never used by two threads at once. */
#include "session/rollback_int.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "images/pagestore_chain.h"

#define ENTRIES 128u
#define PIECE_MAX (16u << 20) /* bytes per read: len is 32 bits */

struct ring {
	int fd; /* 0: not set up yet (fd 0 is never a ring's), -1: unavailable */
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static struct ring rings[2];

static int setup(struct ring *g)
{
	struct io_uring_params pa;
	memset(&pa, 0, sizeof(pa));
	int fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &pa);
	if (fd < 0)
		return -1;
	size_t sqsz = pa.sq_off.array + pa.sq_entries * sizeof(unsigned);
	size_t cqsz = pa.cq_off.cqes + pa.cq_entries * sizeof(struct io_uring_cqe);
	bool one = pa.features & IORING_FEAT_SINGLE_MMAP;
	if (one && cqsz > sqsz)
		sqsz = cqsz;
	uint8_t *sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	uint8_t *cq = one || sq == MAP_FAILED ? sq
		      : mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	void *sqes = cq == MAP_FAILED ? MAP_FAILED
		     : mmap(NULL, pa.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sqes == MAP_FAILED) {
		if (sq != MAP_FAILED)
			munmap(sq, sqsz);
		if (!one && cq != MAP_FAILED)
			munmap(cq, cqsz);
		close(fd);
		return -1;
	}
	g->sq_tail = (unsigned *)(sq + pa.sq_off.tail);
	g->sq_mask = (unsigned *)(sq + pa.sq_off.ring_mask);
	g->sq_array = (unsigned *)(sq + pa.sq_off.array);
	g->cq_head = (unsigned *)(cq + pa.cq_off.head);
	g->cq_tail = (unsigned *)(cq + pa.cq_off.tail);
	g->cq_mask = (unsigned *)(cq + pa.cq_off.ring_mask);
	g->cqes = (struct io_uring_cqe *)(cq + pa.cq_off.cqes);
	g->sqes = sqes;
	g->fd = fd;
	return 0;
}

struct piece {
	pgs_reader *store;
	uint64_t at, n; /* its pages, in the store's file */
	uint8_t *dst;
	size_t got;     /* bytes read */
};

struct batch {
	struct ring *g;
	pgs_reader *rd;
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
	unsigned todo = b->n, done = 0, sub = 0;
	while (done < todo) {
		long r = syscall(__NR_io_uring_enter, g->fd, todo - sub, todo - done, IORING_ENTER_GETEVENTS, NULL, 0);
		if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
			/* the ring is broken: closing it cancels what is still
			 * in flight, and it is not used again */
			if (!b->failed)
				fp_fail(err, errno, "io_uring_enter: %s", strerror(errno));
			b->failed = 1;
			close(g->fd);
			g->fd = -1;
			return -1;
		}
		if (r > 0)
			sub += (unsigned)r;
		unsigned h = *g->cq_head, t = __atomic_load_n(g->cq_tail, __ATOMIC_ACQUIRE);
		for (; h != t; h++, done++) {
			const struct io_uring_cqe *q = &g->cqes[h & *g->cq_mask];
			struct piece *p = &b->pc[q->user_data];
			if (q->res < 0 && !b->failed) {
				b->failed = 1;
				fp_fail(err, -q->res, "reading a snapshot's page store: %s", strerror(-q->res));
			}
			p->got = q->res > 0 ? (size_t)q->res : 0;
		}
		__atomic_store_n(g->cq_head, h, __ATOMIC_RELEASE);
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

static int queue(void *arg, pgs_reader *store, uint64_t at, uint64_t n, fp_error *err)
{
	struct batch *b = arg;
	while (n) {
		uint64_t take = n < PIECE_MAX / CR_PAGE_SIZE ? n : PIECE_MAX / CR_PAGE_SIZE;
		if (b->n == ENTRIES && flush(b, err))
			return -1;
		struct ring *g = b->g;
		unsigned t = *g->sq_tail, i = t & *g->sq_mask;
		struct io_uring_sqe *s = &g->sqes[i];
		memset(s, 0, sizeof(*s));
		s->opcode = IORING_OP_READ;
		s->fd = pgs_plain_fd(store);
		s->off = at * CR_PAGE_SIZE;
		s->addr = (uint64_t)(uintptr_t)b->cur;
		s->len = (uint32_t)(take * CR_PAGE_SIZE);
		s->user_data = b->n;
		g->sq_array[i] = i;
		b->pc[b->n++] = (struct piece){ store, at, take, b->cur, 0 };
		__atomic_store_n(g->sq_tail, t + 1, __ATOMIC_RELEASE);
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

int rb_uring_read(struct rb_proc *p, pgs_reader *rd, unsigned ring, const struct fp_range *r, size_t n,
		  const size_t *off, uint8_t *dst, fp_error *err)
{
	struct ring *g = &rings[ring & 1];
	if (!g->fd && setup(g))
		g->fd = -1;
	if (g->fd < 0)
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
