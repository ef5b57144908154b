/* Page buffers of rollbacks in place (rollback_int.h), kept by the session
 * helper from one rollback to the next. Fresh memory costs a page fault per
 * 4 KiB page here (1.5 µs, machine-limits.md), more than copying the page:
 * a rollback that writes back 10 MiB spent more on faulting in its two
 * buffers than on moving the pages. So the buffers stay mapped between
 * rollbacks, as transparent huge pages where the kernel gives them (THP is
 * `madvise` here), and only what exceeds RB_BUF_KEEP is given back after a
 * rollback. */
#include "session/rollback_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define RB_BUF_SLOTS 96
#define RB_BUF_ALIGN (2u << 20)
#define RB_BUF_KEEP (256u << 20)

static struct {
	uint8_t *p;
	size_t cap;
} bufs[RB_BUF_SLOTS];

uint8_t *rb_buf_get(unsigned slot, size_t len, fp_error *err)
{
	if (slot >= RB_BUF_SLOTS) {
		fp_fail(err, E2BIG, "a rollback in place of more than %d processes is not supported",
			RB_BUF_SLOTS / RB_SLOTS_PER_PROC);
		return NULL;
	}
	if (len > bufs[slot].cap) {
		if (bufs[slot].p)
			munmap(bufs[slot].p, bufs[slot].cap);
		bufs[slot].p = NULL;
		bufs[slot].cap = 0;
		size_t cap = (len + RB_BUF_ALIGN - 1) & ~(size_t)(RB_BUF_ALIGN - 1);
		void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			fp_fail(err, ENOMEM, "out of memory (%zu MiB of pages)", cap >> 20);
			return NULL;
		}
		madvise(p, cap, MADV_HUGEPAGE);
		bufs[slot].p = p;
		bufs[slot].cap = cap;
	}
	return bufs[slot].p;
}

struct fill {
	void *p;
	size_t len;
	int advice;
};

/* A range unmapped meanwhile (a buffer remapped, a store's file removed)
 * makes this fail, which is harmless: it only faults in what is there. */
static void *populate(void *arg)
{
	struct fill f = *(struct fill *)arg;
	free(arg);
	madvise(f.p, f.len, f.advice);
	return NULL;
}

void rb_populate_later(void *p, size_t len, int advice)
{
	struct fill *f = malloc(sizeof(*f));
	pthread_attr_t at;
	pthread_t th;
	if (!f || pthread_attr_init(&at)) {
		free(f);
		return;
	}
	*f = (struct fill){ p, len, advice };
	if (pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) || pthread_create(&th, &at, populate, f))
		free(f);
	pthread_attr_destroy(&at);
}

/* The first rollback of a session made its read-ahead buffer then, and
 * its pages cost it 20-30 ms more than the next ones (1 GiB at 1%: 817
 * page faults in the helper during that rollback against 14-29 later;
 * here the zeroing of each 2 MiB page of fresh memory is 512 pages the
 * host backs anew). Made and faulted in after a snapshot's reply instead,
 * on a thread of their own, for a rollback to that snapshot. */
void rb_bufs_warm(unsigned slot, size_t len)
{
	if (slot >= RB_BUF_SLOTS || !len || (bufs[slot].p && bufs[slot].cap >= len))
		return;
	size_t kept = len; /* all of them within what rb_bufs_trim keeps */
	for (unsigned i = 0; i < RB_BUF_SLOTS; i++)
		kept += i == slot ? 0 : bufs[i].cap;
	if (kept > RB_BUF_KEEP)
		return;
	fp_error e;
	if (rb_buf_get(slot, len, &e))
		rb_populate_later(bufs[slot].p, bufs[slot].cap, MADV_POPULATE_WRITE);
}

void rb_bufs_trim(void)
{
	size_t kept = 0;
	for (unsigned i = 0; i < RB_BUF_SLOTS; i++) {
		if (!bufs[i].p)
			continue;
		if (kept + bufs[i].cap <= RB_BUF_KEEP) {
			kept += bufs[i].cap;
			continue;
		}
		munmap(bufs[i].p, bufs[i].cap);
		bufs[i].p = NULL;
		bufs[i].cap = 0;
	}
}

uint8_t *rb_old_buf(struct rb_ctx *c, struct rb_proc *p, size_t len, fp_error *err)
{
	if (len && c->pool && !c->pool_lent && c->pool_len >= len) {
		c->pool_lent = true;
		return c->pool;
	}
	return rb_buf_get(rb_slot(c, p, RB_SLOT_OLD), len ? len : 1, err);
}

unsigned rb_slot(const struct rb_ctx *c, const struct rb_proc *p, unsigned which)
{
	return (unsigned)(p - c->procs) * RB_SLOTS_PER_PROC + which;
}
