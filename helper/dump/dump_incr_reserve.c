/* Each tracked process's next page store, made ahead of its snapshot: a
 * file of about the last store's size, filled with zeros by a thread after
 * the reply to `snap` (fp_track_reserve), which the next snapshot renames
 * into its directory and writes its pages over (dump_incr_store.c).
 *
 * Writing a store into a new file allocates its page cache then, in the
 * snapshot. That cost 2.0-2.1 ms for 2,621 pages (1% of 1 GiB), against
 * 0.8-1.1 ms to write the same pages over a file whose page cache is
 * there; and in this VM, whose host takes back the memory the guest frees
 * (free page reporting), 20-25 ms whenever the new pages were such memory:
 * 2 snapshots in 8 of a session waited 20 ms for their store
 * (scratch programs and a 1 GiB, 1% session, 2026-12-07). The zeros here
 * pay that allocation between the snapshots (2.3 ms for 12.8 MiB), on a
 * thread at SCHED_IDLE: on a CPU that neither the processes nor the
 * helper's other work want.
 *
 * A snapshot that comes while its reserve still fills stops the thread
 * and uses the zeros written so far. Waiting for it instead made a python3
 * step of 188 MiB snap in 282 ms instead of 72 (the zeros then cost the
 * host's faults, at ~10 us a page); hence also the bound of 64 MiB. A file
 * is taken by one snapshot, out of the tracking before it is renamed. The
 * snapshot may write more pages than the file holds (the write extends
 * it) or fewer (dump_incr_store_finish cuts the zeros off). The files
 * live in the session's directory, under .store-reserve/, one per process
 * ("PID.filling" until full, then "PID"); fp_track_reserve_free removes
 * them when the session ends, and a helper's first reserve removes those a
 * crashed helper left. FP_DUMP_STORE_RESERVE=0 turns it off (A/B). */
#include "dump/dump_int.h"
#include "config.h"
#include "fp_fault_pause.h"
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESERVE_DIR ".store-reserve"
#define RESERVE_MIN_PAGES 64u          /* below: the new file costs little */
#define RESERVE_MAX (64ull << 20)      /* per process: the background work, disk and page cache it holds */

struct fp_store_reserve {
	pid_t pid;         /* the tracked process */
	pid_t owner;       /* the helper whose thread fills it */
	int dirfd, fd;     /* the reserve directory; the file, read-write */
	const char *dir;   /* its path (the tracking's reserve_dir) */
	char name[32];     /* "PID.filling", "PID" once full (the thread's until it ends) */
	uint64_t bytes;    /* zeros to write */
	_Atomic uint64_t filled; /* zeros written, from the start */
	pthread_t th;
	bool started;
	_Atomic bool done; /* the thread ended */
	_Atomic bool cancel;
	bool failed;       /* a write failed: the file is not used */
};

static bool reserve_on(void)
{
	static _Atomic int on = -1;
	if (on < 0)
		on = !fp_env_off("FP_DUMP_STORE_RESERVE");
	return on;
}

static uint8_t zeros[1u << 20]; /* never written: the kernel's zero page behind it */

/* At SCHED_IDLE: it takes a CPU that nothing else wants (the process's
 * step, a rollback, a snapshot's threads come first). */
static void *fill(void *arg)
{
	struct fp_store_reserve *r = arg;
	struct sched_param sp = { 0 };
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	while (r->filled < r->bytes && !r->cancel) {
		uint64_t at = r->filled;
		size_t n = r->bytes - at < sizeof(zeros) ? (size_t)(r->bytes - at) : sizeof(zeros);
		ssize_t w = pwrite(r->fd, zeros, n, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r->failed = true;
			break;
		}
		r->filled = at + (uint64_t)w;
		static _Atomic bool held;
		if (!at && !held) { /* a test's hold, once: a rollback comes while it fills */
			held = true;
			fp_fault_pause("reserve-fill-held", r->dir);
		}
	}
	char full[sizeof(r->name)];
	snprintf(full, sizeof(full), "%d", (int)r->pid);
	if (!r->failed && r->filled == r->bytes && renameat(r->dirfd, r->name, r->dirfd, full) == 0)
		memcpy(r->name, full, sizeof(full));
	r->done = true;
	return NULL;
}

/* The thread told to stop after its current write (~0.25 ms), and ended;
 * false when it is not this process's (a fork of the helper holds the
 * record, not the thread). */
static bool reserve_join(struct fp_store_reserve *r)
{
	if (r->started && r->owner == getpid()) {
		r->cancel = true;
		pthread_join(r->th, NULL);
		r->started = false;
	}
	return r->done;
}

static void reserve_free(struct fp_store_reserve *r, bool unlink_it)
{
	if (!r)
		return;
	reserve_join(r);
	if (r->fd >= 0)
		close(r->fd);
	if (unlink_it && r->dirfd >= 0)
		unlinkat(r->dirfd, r->name, 0);
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r);
}

/* The directory, made on the helper's first reserve without what a helper
 * before this one left there (it crashed, or was killed). */
static int reserve_dir(struct fp_track *t, const char *session_dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", session_dir, RESERVE_DIR) >= (int)sizeof(path))
		return -1;
	if (!t->reserve_dir[0]) {
		fp_rm_rf(path, NULL);
		snprintf(t->reserve_dir, sizeof(t->reserve_dir), "%s", path);
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

static struct fp_store_reserve **find(struct fp_track *t, pid_t pid)
{
	for (size_t i = 0; i < t->nreserve; i++)
		if (t->reserve[i]->pid == pid)
			return &t->reserve[i];
	return NULL;
}

static void drop_at(struct fp_track *t, size_t i, bool unlink_it)
{
	reserve_free(t->reserve[i], unlink_it);
	t->reserve[i] = t->reserve[--t->nreserve];
}

/* Its thread runs and was not told to stop. */
static bool filling(const struct fp_store_reserve *r)
{
	return r->started && !r->cancel && !r->done;
}

/* The filling goes on where it stopped (fp_track_reserve_pause), up to
 * bytes at least; false when it is over (failed). Not for one filling. */
static bool resume(struct fp_store_reserve *r, uint64_t bytes)
{
	if (r->started && r->owner == getpid()) {
		pthread_join(r->th, NULL); /* told to stop: ends after its write */
		r->started = false;
	}
	if (!r->done || r->failed || r->owner != getpid())
		return !r->failed;
	if (r->bytes < bytes)
		r->bytes = bytes;
	if (r->filled >= r->bytes)
		return true;
	r->cancel = false;
	r->done = false;
	r->started = pthread_create(&r->th, NULL, fill, r) == 0;
	r->done = !r->started;
	return true;
}

static void start_one(struct fp_track *t, const char *session_dir, pid_t pid, uint64_t bytes)
{
	struct fp_store_reserve **have = find(t, pid);
	if (have && filling(*have))
		return;
	if (have && resume(*have, bytes))
		return;
	if (have)
		drop_at(t, (size_t)(have - t->reserve), true);
	if (t->nreserve == FP_RESERVES)
		return;
	struct fp_store_reserve *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->pid = pid;
	r->owner = getpid();
	r->bytes = bytes;
	r->fd = -1;
	snprintf(r->name, sizeof(r->name), "%d", (int)pid);
	if ((r->dirfd = reserve_dir(t, session_dir)) < 0) {
		free(r);
		return;
	}
	r->dir = t->reserve_dir;
	unlinkat(r->dirfd, r->name, 0);
	snprintf(r->name, sizeof(r->name), "%d.filling", (int)pid);
	unlinkat(r->dirfd, r->name, 0);
	r->fd = openat(r->dirfd, r->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	r->started = r->fd >= 0 && pthread_create(&r->th, NULL, fill, r) == 0;
	if (!r->started) {
		reserve_free(r, true);
		return;
	}
	t->reserve[t->nreserve++] = r;
}

void fp_track_reserve(struct fp_track *t, const char *session_dir)
{
	if (!reserve_on() || !t->active || !session_dir)
		return;
	/* the processes gone from the tracking first (their slots); the
	 * others' fillings go on (after a rollback: not after a snapshot,
	 * which took its own) */
	for (size_t i = 0; i < t->nreserve;) {
		bool tracked = false;
		for (size_t k = 0; k < t->n && !tracked; k++)
			tracked = t->procs[k].pid == t->reserve[i]->pid;
		if (tracked && (filling(t->reserve[i]) || resume(t->reserve[i], 0)))
			i++;
		else
			drop_at(t, i, true);
	}
	for (size_t k = 0; k < t->n; k++) {
		const struct fp_track_proc *tp = &t->procs[k];
		/* a snapshot that writes its store after the stop makes its own */
		if (tp->store_skip || tp->store_pages < RESERVE_MIN_PAGES)
			continue;
		uint64_t bytes = (tp->store_pages + tp->store_pages / 8 + RESERVE_MIN_PAGES) * CR_PAGE_SIZE;
		start_one(t, session_dir, tp->pid, bytes < RESERVE_MAX ? bytes : RESERVE_MAX);
	}
}

int dump_reserve_take(struct fp_track *t, pid_t pid, int dirfd, const char *name, uint64_t *bytes)
{
	struct fp_store_reserve **have = t ? find(t, pid) : NULL;
	if (!have)
		return -1;
	struct fp_store_reserve *r = *have;
	size_t i = (size_t)(have - t->reserve);
	t->reserve[i] = t->reserve[--t->nreserve];
	/* Still filling (the snapshot came before its thread got the CPU it
	 * needs): stopped where it is, its zeros so far used all the same. */
	bool done = reserve_join(r);
	int fd = -1;
	if (done && !r->failed && r->filled && renameat(r->dirfd, r->name, dirfd, name) == 0) {
		fd = r->fd;
		r->fd = -1;
		*bytes = r->filled;
	}
	reserve_free(r, fd < 0);
	return fd;
}

void fp_track_reserve_pause(struct fp_track *t)
{
	for (size_t i = 0; i < t->nreserve; i++)
		t->reserve[i]->cancel = true; /* resume joins the thread */
}

void fp_track_reserve_free(struct fp_track *t)
{
	while (t->nreserve)
		drop_at(t, t->nreserve - 1, true);
	if (t->reserve_dir[0])
		rmdir(t->reserve_dir);
	t->reserve_dir[0] = '\0';
}
