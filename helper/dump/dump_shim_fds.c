/* The shim's fd table against what the dump read from /proc (issue 16: the
 * table is a shortcut, never a second source of truth).
 *
 * The table is copied right after the look lists /proc/PID/fd (before the
 * stop, without stopping anything) and compared after the resume with
 * what the stop read. The process runs between the look and the stop, so
 * an fd only counts as a disagreement when /proc said the same thing at
 * the look and at the stop and the table, read in between, said otherwise:
 * an fd open at both but not in the table (opened by a raw system call,
 * passed in by SCM_RIGHTS, a libc-internal open), one in the table but open
 * at neither, or a close-on-exec flag that differs. The dump always keeps
 * what /proc says; the disagreement goes to dump.log and to the
 * statistics (`snap --json`: shim_checked, shim_disagree, shim_note). */
#include "dump/dump_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "dump/shim_reader.h"

/* Each process's copy (at most one per pid). */
struct dump_shimfds {
	struct fp_shim_copy **cp;
	size_t n;
};

static size_t index_of(const struct dump_shimfds *h, pid_t pid)
{
	size_t i = 0;
	while (h && i < h->n && h->cp[i]->pid != pid)
		i++;
	return i;
}

static void copy_free(struct fp_shim_copy *cp)
{
	fp_shim_copy_free(cp);
	free(cp);
}

const struct fp_shim_copy *dump_shim_fds_of(const struct dump_ctx *c, pid_t pid)
{
	size_t i = index_of(c->shimfds, pid);
	return c->shimfds && i < c->shimfds->n ? c->shimfds->cp[i] : NULL;
}

void dump_shim_fds_read(struct dump_ctx *c, pid_t pid)
{
	if (!c->shimfds && !(c->shimfds = calloc(1, sizeof(*c->shimfds))))
		return;
	struct dump_shimfds *h = c->shimfds;
	size_t at = index_of(h, pid);
	if (at < h->n) { /* read again: the copy is the latest */
		copy_free(h->cp[at]);
		h->cp[at] = h->cp[--h->n];
	}
	uint64_t addr = 0;
	fp_error le;
	bool known = fp_shim_locate(pid, &addr, NULL, 0, &le) == 1;
	struct fp_shim_copy *cp = calloc(1, sizeof(*cp));
	struct fp_shim_copy **more = realloc(h->cp, (h->n + 1) * sizeof(*more));
	if (more)
		h->cp = more;
	if (!cp || !more) {
		free(cp);
		return;
	}
	/* Short and without the writers' gate: this is a check, not worth a
	 * pause of the target. */
	struct fp_shim_read_opts ro = { .timeout_ms = 50, .no_gate = 1, .fds_only = 1 };
	fp_error e;
	int r = known ? fp_shim_read_at(pid, addr, &ro, cp, &e) : 0;
	if (r != 1) {
		fp_shim_copy_free(cp);
		memset(cp, 0, sizeof(*cp));
		r = fp_shim_read(pid, &ro, cp, &e); /* not there (any more): found anew */
	}
	if (r != 1) {
		if (r < 0)
			dlog(c, "the shim's table of %d not read (%s): /proc alone", pid, e.msg);
		copy_free(cp);
		return;
	}
	h->cp[h->n++] = cp;
}

void dump_shim_disagree_note(struct dump_ctx *c, const char *line)
{
	if (!c->st->shim_disagree++)
		snprintf(c->st->shim_note, sizeof(c->st->shim_note), "%s", line);
	dlog(c, "shim table and /proc disagree (/proc kept): %s", line);
}

static void disagree(struct dump_ctx *c, const char *fmt, int fd, const char *what)
{
	char line[256];
	snprintf(line, sizeof(line), fmt, fd, what);
	dump_shim_disagree_note(c, line);
}

static void check_one(struct dump_ctx *c, const struct fp_shim_copy *cp)
{
	const struct fp_shim_table *t = cp->t;
	struct dump_proc *p = NULL;
	for (size_t i = 0; t && i < c->nprocs; i++)
		if (c->procs[i].pid == cp->pid)
			p = &c->procs[i];
	if (!p)
		return;
	c->st->shim_checked = true;
	uint32_t hwm = t->fd_hwm < t->max_fds && t->fd_hwm <= FP_SHIM_MAX_FDS ? t->fd_hwm : FP_SHIM_MAX_FDS;
	size_t in_table = 0, k = 0;
	for (uint32_t fd = 0; fd < hwm; fd++) {
		const struct fp_shim_fd *s = &t->fds[fd];
		if (s->used && s->origin == FP_ORIGIN_SHIM)
			continue; /* the shim's own: never dumped */
		while (k < p->nfds && p->fds[k].fd < (int)fd)
			k++;
		bool now = k < p->nfds && p->fds[k].fd == (int)fd, before_cx = false;
		bool before = dump_fds_looked(c, p->pid, (int)fd, &before_cx);
		in_table += s->used;
		if (s->used && !now && !before)
			disagree(c, "fd %d (\"%s\") is in the table but not open", (int)fd, s->path);
		else if (!s->used && now && before)
			disagree(c, "fd %d is open but not in the table%s", (int)fd, "");
		else if (s->used && now && before && p->fds[k].fi.flags == (uint32_t)before_cx &&
			 (uint32_t)(s->fd_flags & FD_CLOEXEC ? 1 : 0) != p->fds[k].fi.flags)
			disagree(c, "fd %d: close-on-exec differs (\"%s\")", (int)fd, s->path);
	}
	size_t beyond = 0;
	for (size_t i = 0; i < p->nfds; i++)
		beyond += p->fds[i].fd >= (int)hwm;
	dlog(c, "shim table of %d checked against /proc: %zu fds in the table, %zu dumped (%zu at or above its "
		"high-water mark %u, overflow %u, changes it missed %u), %u disagreement(s)",
	     p->pid, in_table, p->nfds, beyond, hwm, t->fd_overflow, t->fd_unrecorded, c->st->shim_disagree);
}

void dump_shim_fds_check(struct dump_ctx *c)
{
	for (size_t i = 0; c->shimfds && i < c->shimfds->n; i++)
		check_one(c, c->shimfds->cp[i]);
}

void dump_shim_fds_free(struct dump_ctx *c)
{
	if (!c->shimfds)
		return;
	for (size_t i = 0; i < c->shimfds->n; i++)
		copy_free(c->shimfds->cp[i]);
	free(c->shimfds->cp);
	free(c->shimfds);
	c->shimfds = NULL;
}
