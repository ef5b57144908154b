/* The fds a session's last snapshot read, carried to its next one (issue
 * 16: the fd table's changes since the last snapshot are known without
 * walking /proc/PID/fd).
 *
 * A snapshot keeps, with its write tracking, what it read of every fd the
 * shim's shortcut took and the check after the resume confirmed
 * (dump_fdshort.c): the fd's path, stat, mount, flags, and the slot's seq.
 * Every wrapped call that touches an fd adds 2 to its slot's seq, so an fd
 * whose seq in the table is still the carried one was opened, closed,
 * dup'ed over or fcntl'ed by no wrapper since: the next snapshot's look
 * takes its record instead of reading /proc, and the fd list from the
 * table instead of listing /proc/PID/fd. Changed fds (another seq, or not
 * carried) are read from /proc one by one.
 *
 * What moves without a wrapped call is read again, not carried: the
 * offset (read, write, lseek) and the status flags of the open file
 * description (a raw fcntl, or another process sharing it) are read at
 * the stop through the copy of the fd the look takes (lseek, F_GETFL).
 * The rest is checked: the copy must be the carried inode before the stop,
 * /proc's fd count the table's, and after the resume every fd taken this
 * way is compared with /proc (kcmp, fdinfo) as any fd of the shortcut; a
 * difference is said in dump.log and the snapshot is taken again from
 * /proc (dump_fdshort_verify), and nothing is carried from that one.
 *
 * The carry is only for the session's next snapshot of the same process
 * (pid and start time) whose parent is the one it came from, with the
 * shim's table at the same address. A rollback in place to that snapshot
 * keeps it true: the rollback writes the table's written pages back with
 * the rest of the memory (the seqs are the snapshot's again) and puts the
 * fds back as the snapshot has them (the description of a reopened fd is
 * a new one: told apart by kcmp at the next snapshot, as any fd). The
 * rollback itself uses the marks of dump_fdmark.c. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump/dirty_tracker.h"
#include "dump/shim_reader.h"

struct dump_fdcarry {
	struct dump_fdcarry *next; /* another process's */
	pid_t pid;
	unsigned long long start_time;
	uint64_t addr;         /* the shim's table in the target */
	char parent[PATH_MAX]; /* the snapshot it was read for */
	struct dump_fd_look *rec; /* sorted by fd */
	size_t n;
	uint8_t *use; /* per rec: carried into this dump's look */
};

void dump_fdcarry_free(struct dump_fdcarry *k)
{
	while (k) {
		struct dump_fdcarry *next = k->next;
		for (size_t i = 0; i < k->n; i++)
			free(k->rec[i].link);
		free(k->rec);
		free(k->use);
		free(k);
		k = next;
	}
}

static struct dump_fdcarry *carry_of(const struct fp_track *t, pid_t pid)
{
	struct dump_fdcarry *k = t ? t->fdcarry : NULL;
	while (k && k->pid != pid)
		k = k->next;
	return k;
}

static const struct dump_fd_look *find(const struct dump_fdcarry *k, int fd, size_t *at)
{
	size_t lo = 0, hi = k->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->rec[mid].fd == fd) {
			*at = mid;
			return &k->rec[mid];
		}
		if (k->rec[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct dump_fdcarry *usable(struct dump_ctx *c, pid_t pid, const char **why)
{
	struct dump_fdcarry *k = carry_of(c->o->track, pid);
	*why = NULL;
	if (!k)
		return NULL;
	if (getenv("FORKPOINT_NO_FD_SHORTCUT") || c->o->while_stopped)
		*why = "the shortcut is off";
	else if (!c->incr || strcmp(k->parent, c->parent_dir))
		*why = "not an incremental snapshot on the one they were read for";
	else if (fp_track_start_time(pid) != k->start_time)
		*why = "another process";
	return *why ? NULL : k;
}

int dump_fdcarry_list(struct dump_ctx *c, pid_t pid, int **out, size_t *nout)
{
	int64_t t0 = dump_now_ns();
	const char *why;
	struct dump_fdcarry *k = usable(c, pid, &why);
	if (!k) {
		if (why)
			dlog(c, "no fds carried from the last snapshot: %s", why);
		return 0;
	}
	/* The table, then the seqs of its fds (before any of them is read
	 * from /proc): an fd is carried when both say the carried seq. */
	dump_shim_fds_read(c, pid);
	const struct fp_shim_copy *cp = dump_shim_fds_of(c, pid);
	const struct fp_shim_table *t = cp ? cp->t : NULL;
	if (t && t->fd_hwm && t->fd_hwm <= FP_SHIM_MAX_FDS)
		dump_fdshort_begin(c, pid, (int)t->fd_hwm - 1);
	char path[64];
	struct stat dst;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!t || cp->addr != k->addr || !dump_fdshort_seq_ok(c, pid) || t->fd_overflow || t->fd_unrecorded ||
	    t->fd_hwm > FP_SHIM_MAX_FDS || stat(path, &dst)) {
		dlog(c, "no fds of %d carried from the last snapshot: the shim's table %s", pid, !t ? "was not read" :
			cp->addr != k->addr ? "moved" : t->fd_overflow ? "overflowed" :
			t->fd_unrecorded ? "missed fd changes (a signal handler's)" : "or /proc/PID/fd unreadable");
		return -1;
	}
	int *fds = malloc((t->fd_hwm ? t->fd_hwm : 1) * sizeof(int));
	free(k->use);
	k->use = calloc(k->n ? k->n : 1, 1);
	if (!fds || !k->use) {
		free(fds);
		return -1;
	}
	size_t n = 0, carried = 0;
	for (uint32_t fd = 0; fd < t->fd_hwm; fd++) {
		const struct fp_shim_fd *sl = &t->fds[fd];
		if (!sl->used || sl->origin == FP_ORIGIN_SHIM)
			continue;
		fds[n++] = (int)fd;
		size_t at;
		const struct dump_fd_look *r = find(k, (int)fd, &at);
		if (r && !(r->seq & 1) && sl->seq == r->seq && dump_fdshort_seq(c, pid, (int)fd) == r->seq) {
			k->use[at] = 1;
			carried++;
		}
	}
	/* An fd no wrapper saw (a raw open, SCM_RIGHTS) or one closed behind
	 * the table: the count differs, /proc is listed. */
	if ((size_t)dst.st_size != n) {
		dlog(c, "no fds of %d carried from the last snapshot: /proc/%d/fd has %lld fds, the shim's table %zu", pid, pid,
		     (long long)dst.st_size, n);
		free(fds);
		memset(k->use, 0, k->n);
		return -1;
	}
	*out = fds;
	*nout = n;
	dlog(c, "fds of %d listed from the shim's table: %zu, %zu of them carried from the last snapshot (no wrapper "
		"touched them since), in %.3f ms", pid, n, carried, (double)(dump_now_ns() - t0) / 1e6);
	return 1;
}

const struct dump_fd_look *dump_fdcarry_get(const struct dump_ctx *c, pid_t pid, int fd)
{
	const struct dump_fdcarry *k = carry_of(c->o->track, pid);
	size_t at;
	const struct dump_fd_look *r = k && k->use ? find(k, fd, &at) : NULL;
	return r && k->use[at] ? r : NULL;
}

/* What p's snapshot can carry to the next, or NULL. */
static struct dump_fdcarry *carry_made(struct dump_ctx *c, pid_t pid, const char *final)
{
	uint64_t addr;
	uint32_t n = dump_fdshort_slots(c, pid, &addr);
	struct dump_fdcarry *k = n ? calloc(1, sizeof(*k)) : NULL;
	if (!k || !(k->rec = malloc(n * sizeof(*k->rec)))) {
		free(k);
		return NULL;
	}
	for (uint32_t fd = 0; fd < n; fd++) {
		struct dump_fd_look *r = &k->rec[k->n];
		if (!dump_fdshort_taken(c, pid, (int)fd, r))
			continue;
		if (!(r->link = strdup(r->link))) {
			dump_fdcarry_free(k);
			return NULL;
		}
		k->n++;
	}
	if (!k->n) {
		dump_fdcarry_free(k);
		return NULL;
	}
	k->pid = pid;
	k->addr = addr;
	k->start_time = fp_track_start_time(pid);
	snprintf(k->parent, sizeof(k->parent), "%s", final);
	dlog(c, "%zu fds of %d kept for the next snapshot (the shim's table says which ones it can take as they are)",
	     k->n, pid);
	return k;
}

void dump_fdcarry_keep(struct dump_ctx *c, const char *final)
{
	struct fp_track *t = c->o->track;
	if (!t)
		return;
	dump_fdcarry_free(t->fdcarry);
	t->fdcarry = NULL;
	for (size_t i = 0; t->active && i < c->nprocs; i++) {
		struct dump_fdcarry *k = carry_made(c, c->procs[i].pid, final);
		if (k) {
			k->next = t->fdcarry;
			t->fdcarry = k;
		}
	}
}
