/* Rollback in place: file locks (rollback_int.h).
 *
 * A rollback leaves the locks the processes hold as they are now. A lock
 * taken since SNAP would stay held by a process that, back at SNAP, does
 * not know it holds it (another process waits on it for good); a lock
 * released since SNAP would be missing while the process, back at SNAP,
 * goes on as its holder (two writers of one file). So the processes' locks
 * must be SNAP's (filelocks.img), or the rollback is a full restore, which
 * takes SNAP's locks back, and says why.
 *
 * The live locks are read as the dump reads them (dump_locks.c): the
 * "lock:" lines of an fd's fdinfo are the locks held through it (POSIX
 * ones of this process on the fd's file, flock and OFD ones of its open
 * file description). The fds read are SNAP's and those the rollback closes
 * or opens again. Up to MANY_FDS of them per process are read one by one
 * (~10 us each). Where the BPF fd iterator is loaded (dump_fdfiles_bpf.c),
 * it says of each fd whether its inode has any lock, anyone's: only those
 * fds (and those SNAP's locks name) are read, usually none. Without it,
 * above MANY_FDS, one read of /proc/locks (5-12 ms here: it waits for an
 * RCU grace period; made beside the comparison of the fds,
 * rb_locks_start) first tells whether the process can hold any lock at
 * all: when no line names its pid and no OFD lock (which /proc/locks shows
 * without a pid) exists anywhere, and SNAP held none, nothing more is
 * read.
 *
 * Locks are compared as sets of (kind, type, start, length, inode; the
 * holder for POSIX ones): SNAP's through the inode of the fd it names, as
 * it is now (that fd must then be SNAP's file, not one the rollback opens
 * again). A lock on a file one of whose fds the rollback closes or opens
 * again also makes it a full restore: closing any fd of a file drops the
 * process's POSIX locks on it. */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump/dump_attrs.h"
#include "dump/dump_int.h"
#include "images/criu_io.h"
#include "procfs.h"

#define MANY_FDS 64

struct live_lock {
	cr_file_lock e;
	uint64_t ino;
	bool matched;
};

struct lockset {
	struct live_lock *l;
	size_t n, cap;
};

static int add_lock(struct lockset *s, const cr_file_lock *e, uint64_t ino, fp_error *err)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct live_lock *o = &s->l[i];
		if (o->e.flag == e->flag && o->e.type == e->type && o->e.start == e->start && o->e.len == e->len &&
		    o->ino == ino && (e->flag != CR_FL_POSIX || o->e.pid == e->pid))
			return 0; /* the same lock, seen through another fd */
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct live_lock *n = realloc(s->l, cap * sizeof(*n));
		if (!n)
			return fp_fail(err, ENOMEM, "out of memory");
		s->l = n;
		s->cap = cap;
	}
	s->l[s->n++] = (struct live_lock){ .e = *e, .ino = ino };
	return 0;
}

/* fd's fdinfo: its inode (0: the fd is not open) and the locks held
 * through it, added to s. */
static int read_fd(pid_t pid, int fd, uint64_t *ino, struct lockset *s, fp_error *err)
{
	char path[64];
	*ino = 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	/* whole: an fd with many locks has one line each */
	int e = 0;
	char *buf = fp_slurp(path, NULL, &e);
	if (!buf)
		return e == ENOMEM ? fp_fail(err, ENOMEM, "out of memory") : 0; /* not open */
	const char *i = strstr(buf, "\nino:");
	if (i)
		*ino = strtoull(i + 5, NULL, 10);
	int rc = 0;
	for (const char *l = strstr(buf, "\nlock:"); l && !rc; l = strstr(l + 1, "\nlock:")) {
		cr_file_lock lk;
		uint64_t lino;
		rc = dump_lock_parse(l + 6, pid, fd, &lk, &lino, err) || add_lock(s, &lk, lino, err) ? -1 : 0;
	}
	free(buf);
	return rc;
}

/* The fds of p to read: SNAP's, and those an op closes or opens again
 * (*reopened: those), ascending, without repeats. */
static int *fds_to_read(const struct rb_proc *p, size_t *n, fp_error *err)
{
	int *v = malloc((p->nfdi + p->nfops + 1) * sizeof(int));
	if (!v) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < p->nfdi; i++)
		v[k++] = (int)p->fdi[i].fd;
	for (size_t i = 0; i < p->nfops; i++)
		if (p->fops[i].kind == RB_CLOSE || p->fops[i].kind == RB_REOPEN)
			v[k++] = p->fops[i].fd;
	for (size_t i = 1; i < k; i++) /* short lists: insertion sort */
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || v[u - 1] != v[i])
			v[u++] = v[i];
	*n = u;
	return v;
}

/* "a POSIX lock on fd 4 (bytes 5-14)" */
static void describe(char *out, size_t len, const cr_file_lock *e)
{
	const char *k = e->flag == CR_FL_POSIX ? "a POSIX" : e->flag == CR_FL_FLOCK ? "a flock" : "an OFD";
	const char *rw = e->type == F_WRLCK ? "write" : "read";
	if (e->len)
		snprintf(out, len, "%s %s lock on fd %d (bytes %llu-%llu)", k, rw, (int)e->fd,
			 (unsigned long long)e->start, (unsigned long long)(e->start + e->len - 1));
	else
		snprintf(out, len, "%s %s lock on fd %d (from byte %llu to the end)", k, rw, (int)e->fd,
			 (unsigned long long)e->start);
}

static bool op_on(const struct rb_proc *p, int fd)
{
	for (size_t i = 0; i < p->nfops; i++)
		if (p->fops[i].fd == fd && (p->fops[i].kind == RB_CLOSE || p->fops[i].kind == RB_REOPEN))
			return true;
	return false;
}

/* /proc/locks read whole (NULL with err). */
static char *read_proc_locks(fp_error *err)
{
	int e = 0;
	char *t = fp_slurp("/proc/locks", NULL, &e);
	if (!t)
		fp_fail(err, e, "cannot read /proc/locks: %s", strerror(e));
	return t;
}

/* The read at the stop runs beside the fd comparison (rb_diff), which for
 * the processes that need it (many fds) takes as long or longer: the read
 * waits for an RCU grace period unless something read the file in the last
 * few ms. */
struct rb_locks_read {
	pthread_t th;
	char *text;
	fp_error err;
};

static void *reader(void *arg)
{
	struct rb_locks_read *r = arg;
	r->text = read_proc_locks(&r->err);
	return NULL;
}

static bool many_fds(const struct rb_proc *p)
{
	return p->nfdi + p->nfops > MANY_FDS;
}

/* Many fds, and no word from the fd iterator on which inodes have locks:
 * /proc/locks is read. */
static bool needs_proc_locks(struct rb_proc *p)
{
	size_t n;
	return many_fds(p) && !rb_kfiles(p, &n);
}

void rb_locks_start(struct rb_ctx *c)
{
	bool any = false;
	for (size_t i = 0; i < c->nprocs; i++)
		any |= needs_proc_locks(&c->procs[i]);
	struct rb_locks_read *r = any ? calloc(1, sizeof(*r)) : NULL;
	if (r && pthread_create(&r->th, NULL, reader, r)) {
		free(r);
		r = NULL;
	}
	c->locks_rd = r;
}

/* The text read beside the diff, or read now. */
static char *locks_text(struct rb_ctx *c, fp_error *err)
{
	struct rb_locks_read *r = c->locks_rd;
	if (!r)
		return read_proc_locks(err);
	pthread_join(r->th, NULL);
	c->locks_rd = NULL;
	char *t = r->text;
	if (!t)
		*err = r->err;
	free(r);
	return t;
}

void rb_locks_free(struct rb_ctx *c)
{
	if (c->locks_rd)
		free(locks_text(c, &(fp_error){ 0 }));
}

/* /proc/locks: whether a line names one of the processes (hold[i]) and
 * whether any OFD lock exists. */
static int proc_locks(struct rb_ctx *c, bool *hold, bool *ofd, fp_error *err)
{
	char *text = locks_text(c, err);
	if (!text)
		return -1;
	*ofd = false;
	for (char *line = text, *next; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		char kind[16];
		long pid;
		/* "1: POSIX  ADVISORY  WRITE 8828 fe:00:109 0 EOF", blocked
		 * waiters as "1: -> POSIX ..." */
		if (sscanf(line, "%*d: %15s", kind) != 1 || !strcmp(kind, "->"))
			continue;
		if (!strcmp(kind, "OFDLCK"))
			*ofd = true;
		if (sscanf(line, "%*d: %*s %*s %*s %ld", &pid) != 1)
			continue;
		for (size_t i = 0; i < c->nprocs; i++)
			if (c->procs[i].pid == (pid_t)pid)
				hold[i] = true;
	}
	free(text);
	return 0;
}

/* 1: p's locks are SNAP's (sl: SNAP's locks of every process); 0 with why. */
static int diff_proc(struct rb_proc *p, const cr_file_lock *sl, size_t nsl, bool skip, char *why, size_t len,
		     fp_error *err)
{
	size_t snap_n = 0;
	for (size_t i = 0; i < nsl; i++)
		snap_n += sl[i].pid == (int32_t)p->pid;
	if (skip && !snap_n)
		return 1;
	size_t nfd, nkf;
	int *fds = fds_to_read(p, &nfd, err);
	if (!fds)
		return -1;
	/* with the iterator's word, only the fds whose inode has a lock
	 * (anyone's) and those SNAP's locks name are read */
	const struct dump_kfile *kf = rb_kfiles(p, &nkf);
	if (kf) {
		size_t keep = 0;
		for (size_t i = 0; i < nfd; i++) {
			const struct dump_kfile *k = dump_fdfile_find(kf, nkf, fds[i]);
			bool named = false;
			for (size_t j = 0; j < nsl && !named; j++)
				named = sl[j].pid == (int32_t)p->pid && sl[j].fd == (int32_t)fds[i];
			if (!k || k->locked || named)
				fds[keep++] = fds[i];
		}
		nfd = keep;
	}
	uint64_t *ino = calloc(nfd ? nfd : 1, sizeof(*ino));
	struct lockset live = { 0 };
	int rc = ino ? 1 : fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < nfd && rc == 1; i++)
		if (read_fd(p->pid, fds[i], &ino[i], &live, err))
			rc = -1;
	/* SNAP's locks, each on the inode of the fd it names, as it is now */
	for (size_t i = 0; i < nsl && rc == 1; i++) {
		const cr_file_lock *e = &sl[i];
		if (e->pid != (int32_t)p->pid)
			continue;
		uint64_t at = 0;
		for (size_t k = 0; k < nfd; k++)
			if (fds[k] == e->fd)
				at = ino[k];
		struct live_lock *m = NULL;
		for (size_t k = 0; k < live.n && !m && at && !op_on(p, e->fd); k++) {
			struct live_lock *o = &live.l[k];
			if (!o->matched && o->e.flag == e->flag && o->e.type == e->type && o->e.start == e->start &&
			    o->e.len == e->len && o->ino == at)
				m = o;
		}
		if (!m) {
			char d[128];
			describe(d, sizeof(d), e);
			snprintf(why, len, "process %d held %s at the snapshot, and does not hold it now", (int)p->pid, d);
			rc = 0;
		} else {
			m->matched = true;
		}
	}
	for (size_t k = 0; k < live.n && rc == 1; k++) {
		const struct live_lock *o = &live.l[k];
		if (!o->matched) {
			char d[128];
			describe(d, sizeof(d), &o->e);
			snprintf(why, len, "process %d holds %s, which it did not hold at the snapshot", (int)p->pid, d);
			rc = 0;
		}
	}
	/* a close or reopen of any fd of a locked file drops POSIX locks */
	for (size_t k = 0; k < nfd && rc == 1; k++) {
		if (!op_on(p, fds[k]) || !ino[k])
			continue;
		for (size_t j = 0; j < live.n && rc == 1; j++)
			if (live.l[j].ino == ino[k]) {
				snprintf(why, len,
					 "process %d holds a lock on the file of fd %d, which the rollback closes or "
					 "opens again",
					 (int)p->pid, fds[k]);
				rc = 0;
			}
	}
	free(live.l);
	free(ino);
	free(fds);
	return rc;
}

int rb_diff_locks(struct rb_ctx *c, char *why, size_t len, fp_error *err)
{
	cr_file_lock *sl = NULL;
	size_t nsl = 0;
	if (cr_read_file_locks(c->snap_dirfd, &sl, &nsl, err)) {
		fp_wrap(err, "SNAP's file locks");
		return -1;
	}
	bool *skip = calloc(c->nprocs ? c->nprocs : 1, sizeof(*skip));
	int rc = skip ? 1 : fp_fail(err, ENOMEM, "out of memory");
	bool many = false;
	for (size_t i = 0; i < c->nprocs; i++)
		many |= needs_proc_locks(&c->procs[i]);
	if (rc == 1 && many) {
		bool *hold = calloc(c->nprocs, sizeof(*hold)), ofd = false;
		if (!hold || proc_locks(c, hold, &ofd, err))
			rc = -1;
		for (size_t i = 0; rc == 1 && i < c->nprocs; i++)
			skip[i] = needs_proc_locks(&c->procs[i]) && !hold[i] && !ofd;
		free(hold);
	}
	for (size_t i = 0; rc == 1 && i < c->nprocs; i++)
		rc = diff_proc(&c->procs[i], sl, nsl, skip[i], why, len, err);
	free(skip);
	free(sl);
	return rc;
}
