/* An incremental snapshot's page store written while the pre-copy copies
 * its pages (dump_incr_int.h).
 *
 * Writing the pages into the page cache costs about as much as copying them
 * out of the process (~0.25-0.4 ms a MiB each here), and both are the
 * kernel's work on one CPU per thread. Done one after the other, they were
 * most of an incremental snapshot's wall time (1 GiB at 1%: copy 2.6 ms,
 * write 4.3-5 ms). Here two threads follow the copy: one writes each piece
 * of the pre-copy's buffer as soon as its copy is complete, one takes the
 * hash chain (pagehash.h) over it, in the buffer's order. That is the
 * order of the pages in the store (ascending addresses) when the stop finds
 * the same pages to dump: the pages written since the parent, and those
 * the last stop read in full (untracked memory), which the pre-copy copies
 * too to give them their places (pc->plan). The usual case: the process
 * did not map, unmap or first touch memory between the pre-copy and the
 * stop.
 *
 * The stop reads the pages written again since the pre-copy beside their
 * places, copies those that changed over them (pc->patch lists them) and
 * says whether the image's pages are exactly the places
 * (pc->store_layout). After the resume, dump_incr_store_finish waits for
 * the threads, writes the patched places over the file, keeps the chain as
 * far as the first of them and hashes the rest again from the buffer, and
 * renames the file into pages-<id>.img. When the layout differs (new
 * pages, pages gone), the file is removed and the pages are written as
 * before, from the buffer: what the threads did is lost work, never wrong
 * data. Misses in a row make the next snapshots skip it (SKIP_MAX).
 *
 * Only for stores without compression (the sessions' incremental
 * snapshots); FP_DUMP_STORE_BESIDE=0 turns it off (A/B). */
#include "dump/dump_int.h"
#include "dump/dump_vmflags.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/pagehash.h"
#include "images/pagestore.h"

/* Pieces of at most this much per write: the thread looks at `stop` in
 * between (~0.3 ms of writing). */
#define PIECE (1u << 20)

/* The two threads that follow the copy: one writes the buffer into the
 * file, one takes the hash chain over it (as the store's usual writer
 * hashes beside its writing: one after the other they took ~90 ms for a
 * python3 step of 188 MiB, the write alone ~35). */
enum { WRITER, HASHER, FOLLOWERS };

struct follower {
	struct dump_store *s;
	pthread_t th;
	bool running;
	uint64_t done; /* bytes written, or hashed (the thread's; read after the join) */
	double ms;     /* the thread's time, start to end */
};

struct dump_store {
	int dirfd, fd;
	char tmp[64];
	const uint8_t *buf; /* the pre-copy's buffer (pc->dirty, which the
			       settling may take meanwhile; it stays mapped
			       until the dump's end, and the store goes
			       before it may move) */
	uint64_t total;     /* bytes it fills */
	uint64_t reserved;  /* the file's zeros when it was a reserve (dump_incr_reserve.c) */
	struct follower f[FOLLOWERS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t ready; /* (mu) bytes of buf copied, from its start */
	bool stop;      /* (mu) end before the end */
	bool hold;      /* (mu) not yet: a snapshot that replies early takes
			   both CPUs for its copy and stop first, and the
			   followers start after its reply (dump_incr_store_go) */
	pgh_list ph;    /* the hasher's chain */
	int werr;       /* the writer's errno of a failed write */
};

static bool store_on(void)
{
	static _Atomic int on = -1;
	if (on < 0)
		on = !fp_env_off("FP_DUMP_STORE_BESIDE");
	return on;
}

static bool stopped(struct dump_store *s)
{
	pthread_mutex_lock(&s->mu);
	bool stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

/* One piece [at, at+n) written (1), or failed (0). */
static bool write_piece(struct dump_store *s, uint64_t at, size_t n)
{
	while (n) {
		ssize_t w = pwrite(s->fd, s->buf + at, n, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->werr = w < 0 ? errno : EIO;
			return false;
		}
		at += (uint64_t)w;
		n -= (size_t)w;
	}
	return true;
}

static void *follow(void *arg)
{
	struct follower *f = arg;
	struct dump_store *s = f->s;
	bool writer = f == &s->f[WRITER];
	int64_t t0 = dump_now_ns();
	for (bool stop = false; !stop && f->done < s->total;) {
		pthread_mutex_lock(&s->mu);
		while ((s->ready <= f->done || s->hold) && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		uint64_t upto = s->ready;
		stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		/* in pieces: the stop may need the buffer (stop) */
		while (!stop && f->done < upto) {
			size_t n = upto - f->done > PIECE ? PIECE : (size_t)(upto - f->done);
			if (writer && !write_piece(s, f->done, n))
				stop = true;
			else if (!writer)
				pgh_add(&s->ph, s->buf + f->done, n / CR_PAGE_SIZE);
			if (!stop)
				f->done += n;
			stop = stop || stopped(s);
		}
	}
	f->ms = (double)(dump_now_ns() - t0) / 1e6;
	return NULL;
}

bool dump_incr_store_wanted(const struct dump_ctx *c)
{
	return store_on() && c->o->compress == FP_DUMP_NONE;
}

bool dump_incr_store_start(struct dump_ctx *c, struct dump_precopy *pc, uint64_t bytes)
{
	if (!dump_incr_store_wanted(c) || !pc->dirty || !bytes || pc->store)
		return false;
	struct dump_store *s = calloc(1, sizeof(*s));
	if (!s)
		return false;
	s->dirfd = c->dirfd;
	s->buf = pc->dirty;
	s->total = bytes;
	snprintf(s->tmp, sizeof(s->tmp), ".pages-beside-%d.tmp", (int)pc->pid);
	unlinkat(c->dirfd, s->tmp, 0);
	s->fd = dump_reserve_take(c->o->track, pc->pid, c->dirfd, s->tmp, &s->reserved);
	if (s->fd >= 0)
		dlog(c, "%d: the page store written over its reserve (%" PRIu64 " pages of page cache made before)", pc->pid,
		     s->reserved / CR_PAGE_SIZE);
	else
		s->fd = openat(c->dirfd, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		dlog(c, "%d: the page store is written after the stop (%s: %s)", pc->pid, s->tmp, strerror(errno));
		free(s);
		return false;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->hold = dump_early_reply_wanted(c, bytes);
	for (int k = 0; k < FOLLOWERS; k++) {
		s->f[k].s = s;
		s->f[k].running = pthread_create(&s->f[k].th, NULL, follow, &s->f[k]) == 0;
	}
	pc->store = s;
	if (!s->f[WRITER].running || !s->f[HASHER].running) {
		dump_incr_store_drop(pc);
		return false;
	}
	return true;
}

void dump_incr_store_ready(struct dump_precopy *pc, uint64_t upto)
{
	struct dump_store *s = pc->store;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (upto > s->ready) {
		s->ready = upto;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

static void go(struct dump_store *s)
{
	pthread_mutex_lock(&s->mu);
	s->hold = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void dump_incr_store_go(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->npre; i++)
		if (c->pre[i].store)
			go(c->pre[i].store);
}

static void join(struct dump_store *s, bool stop)
{
	pthread_mutex_lock(&s->mu);
	s->hold = false;
	if (stop)
		s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (int k = 0; k < FOLLOWERS; k++)
		if (s->f[k].running) {
			pthread_join(s->f[k].th, NULL);
			s->f[k].running = false;
		}
}

void dump_incr_store_drop(struct dump_precopy *pc)
{
	struct dump_store *s = pc->store;
	if (!s)
		return;
	join(s, true);
	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp[0])
		unlinkat(s->dirfd, s->tmp, 0);
	pgh_free(&s->ph);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	pc->store = NULL;
	free(pc->patch);
	pc->patch = NULL;
	pc->npatch = 0;
	pc->store_layout = false;
}

/* A process whose pages change from one stop to the next (python3
 * replacing objects allocates new pages) misses every time, and each miss
 * writes its pages twice; one that maps memory now and then misses now and
 * then. After m misses in a row, 2^(m-1) - 1 snapshots (at most
 * SKIP_MAX) write their store after the stop only; a store used resets. */
#define SKIP_MAX 15u

void dump_incr_store_take(struct dump_precopy *pc, struct fp_track_proc *tp)
{
	pc->store_skip = tp->store_skip;
	pc->store_misses = tp->store_misses;
	pc->untracked_known = tp->untracked_known;
	pc->untracked = tp->untracked;
	pc->nuntracked = tp->nuntracked;
	tp->untracked = NULL;
	tp->nuntracked = 0;
}

void dump_incr_store_give(struct dump_precopy *pc, struct fp_track_proc *tp)
{
	tp->store_pages = pc->pre_pages;
	if (pc->store_missed && pc->untracked_known) {
		/* the first incremental snapshot has no places for the pages
		 * its stop reads in full (untracked): its miss says nothing */
		tp->store_misses = pc->store_misses + 1;
		tp->store_skip = tp->store_misses > 5 ? SKIP_MAX : (1u << (tp->store_misses - 1)) - 1;
		if (tp->store_skip > SKIP_MAX)
			tp->store_skip = SKIP_MAX;
	} else if (pc->store_used) {
		tp->store_misses = 0;
		tp->store_skip = 0;
	} else {
		tp->store_misses = pc->store_misses;
		tp->store_skip = pc->store_skip ? pc->store_skip - 1 : 0;
	}
	tp->untracked_known = pc->untracked_made;
	free(tp->untracked);
	tp->untracked = pc->stop_full;
	tp->nuntracked = pc->nstop_full;
	pc->stop_full = NULL;
	pc->nstop_full = 0;
}

/* A page read in full at one stop (written only after the pre-copy) and
 * copied before the next one (written before it) is written at every
 * snapshot, on either side of the pre-copy: it keeps its place for as long
 * as it is in the images. Dropping it when it was copied before the stop
 * made its place come and go, a miss one snapshot in two for a process
 * whose thread writes a page now and then (e2e/snap_incr_store: its store
 * used in 3 of 6 snapshots in 3 of 20 runs). */
int dump_incr_store_still_untracked(struct dump_precopy *pc, size_t *cap, uint64_t a, uint64_t stop)
{
	for (size_t k = fp_ranges_find(pc->untracked, pc->nuntracked, a); k < pc->nuntracked; k++) {
		const struct fp_range *u = &pc->untracked[k];
		if (u->start >= stop)
			break;
		uint64_t s = u->start > a ? u->start : a, e = u->end < stop ? u->end : stop;
		if (s < e && fp_ranges_push(&pc->stop_full, &pc->nstop_full, cap, s, e))
			return -1;
	}
	return 0;
}

void dump_incr_store_drop_all(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->npre; i++)
		dump_incr_store_drop(&c->pre[i]);
}

/* The patches over the thread's file, and the chain from the first one. */
static int complete(struct dump_store *s, struct dump_precopy *pc, fp_error *err)
{
	uint64_t first = s->total;
	for (size_t i = 0; i < pc->npatch; i++) {
		uint64_t off = pc->patch[i].start, len = pc->patch[i].end - pc->patch[i].start;
		if (off < first)
			first = off;
		for (uint64_t o = 0; o < len;) {
			ssize_t w = pwrite(s->fd, s->buf + off + o, (size_t)(len - o), (off_t)(off + o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return fp_fail(err, w < 0 ? errno : EIO, "writing the pages read at the stop into %s: %s", s->tmp,
					       w < 0 ? strerror(errno) : "short write");
			o += (uint64_t)w;
		}
	}
	uint64_t from = first / CR_PAGE_SIZE;
	if (!pgh_truncate(&s->ph, from)) {
		pgh_reset(&s->ph);
		from = 0;
	}
	pgh_add(&s->ph, s->buf + from * CR_PAGE_SIZE, (size_t)(s->total / CR_PAGE_SIZE - from));
	return 0;
}

int dump_incr_store_finish(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	struct dump_store *s = pc ? pc->store : NULL;
	if (!s)
		return 0;
	int64_t t0 = dump_now_ns();
	join(s, false);
	const char *why = NULL;
	if (!pc->store_layout)
		why = "the pages at the stop are not the pre-copy's (new or gone ones)";
	else if (s->werr)
		why = strerror(s->werr);
	else if (s->f[WRITER].done != s->total || s->f[HASHER].done != s->total || p->npages * CR_PAGE_SIZE != s->total)
		why = "its pages are not the image's";
	if (why) {
		dlog(c, "%d: the page store written beside the pre-copy is not used (%s): written again", p->pid, why);
		pc->store_missed = !pc->store_layout;
		dump_incr_store_drop(pc);
		return 0;
	}
	double waited = (double)(dump_now_ns() - t0) / 1e6;
	if (complete(s, pc, err)) {
		dump_incr_store_drop(pc);
		return -1;
	}
	if (s->reserved > s->total && ftruncate(s->fd, (off_t)s->total) < 0) {
		dlog(c, "%d: the page store written beside the pre-copy is not used (cutting its reserve's zeros off: "
			"%s): written again", p->pid, strerror(errno));
		dump_incr_store_drop(pc);
		return 0;
	}
	char name[64];
	pgs_plain_name(name, sizeof(name), p->pages_id);
	if (close(s->fd) < 0 || renameat(s->dirfd, s->tmp, s->dirfd, name) < 0) {
		int e = errno;
		s->fd = -1;
		dump_incr_store_drop(pc);
		return fp_fail(err, e, "cannot put the page store %s in place: %s", name, strerror(e));
	}
	s->fd = -1;
	s->tmp[0] = '\0';
	pgh_free(&p->ph);
	p->ph = s->ph; /* the chain is the image's now */
	memset(&s->ph, 0, sizeof(s->ph));
	p->pages_hash = p->ph.h;
	dlog(c, "%d: page store written beside the pre-copy: %" PRIu64 " pages in %.3f ms, waited %.3f ms for it, "
		"%zu piece(s) read at the stop written over their place, %.3f ms to complete",
	     p->pid, s->total / CR_PAGE_SIZE, s->f[WRITER].ms > s->f[HASHER].ms ? s->f[WRITER].ms : s->f[HASHER].ms, waited, pc->npatch, (double)(dump_now_ns() - t0) / 1e6 - waited);
	c->st->bytes_pages += s->total;
	dump_incr_store_drop(pc);
	pc->store_used = true;
	return 1;
}
