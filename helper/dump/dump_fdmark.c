/* Where the shim's fd table stood at each of the session's last snapshots
 * (issue 16: the fds created or closed since a snapshot are listed for a
 * rollback in place from the table; helper/session/rollback_fdtab.c).
 *
 * A snapshot whose stop took fds through the shim's shortcut and checked
 * them against /proc after the resume (dump_fdshort.c) knows, per fd, the
 * seq of its slot then and the file's identity. Every wrapped call that
 * touches an fd adds 2 to its slot's seq, so at a rollback to that
 * snapshot an fd whose seq is still the marked one is the snapshot's file,
 * opened, closed or dup'ed over by no wrapper since.
 *
 * That holds only along one line of states: a rollback to an earlier
 * snapshot puts the table's memory back, and the seqs then count up again
 * from there and may meet a later snapshot's values for other files. So
 * the marks are kept for the snapshots of the current line only
 * (fp_fdmark_rolled_back), at most FP_FDMARKS of them, the newest: one
 * per process of a snapshot whose stop took its fds from its table. */
#include "dump/dump_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump/dirty_tracker.h"
#include "dump/dump_fdmark.h"

static void mark_free(struct fp_fdmark *m)
{
	if (m)
		free(m->fd);
	free(m);
}

void fp_fdmarks_free(struct fp_track *t)
{
	for (size_t i = 0; i < t->nfdmarks; i++)
		mark_free(t->fdmarks[i]);
	t->nfdmarks = 0;
}

static enum fp_fdmark_kind kind_of(const struct stat *st)
{
	return S_ISREG(st->st_mode) ? FP_FDM_REG : dump_fd_fixed_chr(st) ? FP_FDM_FIXED : FP_FDM_OTHER;
}

static void keep_one(struct dump_ctx *c, struct fp_track *t, pid_t pid, const char *final)
{
	uint64_t addr;
	uint32_t n = dump_fdshort_slots(c, pid, &addr);
	struct fp_fdmark *m = n ? calloc(1, sizeof(*m)) : NULL;
	if (!m || !(m->fd = malloc(n * sizeof(*m->fd)))) {
		mark_free(m);
		return;
	}
	for (uint32_t fd = 0; fd < n; fd++) {
		struct dump_fd_look r;
		if (!dump_fdshort_taken(c, pid, (int)fd, &r) || (r.seq & 1))
			continue;
		m->fd[m->n++] = (struct fp_fdmark_fd){ .fd = (int32_t)fd, .seq = r.seq, .dev = (uint64_t)r.st.st_dev,
						       .ino = (uint64_t)r.st.st_ino, .kind = (uint8_t)kind_of(&r.st) };
	}
	if (!m->n) {
		mark_free(m);
		return;
	}
	m->pid = pid;
	m->addr = addr;
	m->start_time = fp_track_start_time(pid);
	snprintf(m->snap, sizeof(m->snap), "%s", final);
	if (t->nfdmarks == FP_FDMARKS) {
		mark_free(t->fdmarks[0]);
		memmove(&t->fdmarks[0], &t->fdmarks[1], (FP_FDMARKS - 1) * sizeof(t->fdmarks[0]));
		t->nfdmarks--;
	}
	t->fdmarks[t->nfdmarks++] = m;
	dlog(c, "the shim's table at this snapshot marked for a rollback to it: %zu fds of %d", m->n, pid);
}

void dump_fdmark_keep(struct dump_ctx *c, const char *final)
{
	struct fp_track *t = c->o->track;
	if (!t)
		return;
	/* a snapshot taken again under the same name replaces its marks */
	size_t k = 0;
	for (size_t i = 0; i < t->nfdmarks; i++) {
		if (!strcmp(t->fdmarks[i]->snap, final))
			mark_free(t->fdmarks[i]);
		else
			t->fdmarks[k++] = t->fdmarks[i];
	}
	t->nfdmarks = k;
	for (size_t i = 0; i < c->nprocs; i++)
		keep_one(c, t, c->procs[i].pid, final);
}

const struct fp_fdmark *fp_fdmark_find(const struct fp_track *t, pid_t pid, const char *snap_dir)
{
	for (size_t i = 0; t && i < t->nfdmarks; i++) {
		const struct fp_fdmark *m = t->fdmarks[i];
		if (m->pid == pid && !strcmp(m->snap, snap_dir))
			return fp_track_start_time(pid) == m->start_time ? m : NULL;
	}
	return NULL;
}

const struct fp_fdmark_fd *fp_fdmark_fd(const struct fp_fdmark *m, int fd)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->fd[mid].fd == fd)
			return &m->fd[mid];
		if (m->fd[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void fp_fdmark_rolled_back(struct fp_track *t, const char *snap_dir)
{
	size_t keep = 0;
	for (size_t i = 0; i < t->nfdmarks; i++)
		if (!strcmp(t->fdmarks[i]->snap, snap_dir))
			keep = i + 1;
	for (size_t i = keep; i < t->nfdmarks; i++)
		mark_free(t->fdmarks[i]);
	t->nfdmarks = keep;
}
