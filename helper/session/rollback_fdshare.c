/* Rollback in place: fds that shared an open file description at SNAP
 * share one again (rollback_int.h).
 *
 * A rollback opens a regular file again for an fd on a workspace file
 * (the workspace goes back to SNAP's files) and for one closed since SNAP.
 * Opened one by one, fds that shared a description at SNAP (a dup, a
 * fork: a shell's 2>&1, a child writing to its parent's log) would each
 * get their own, and each write at its own offset over the others' where
 * SNAP's appended one after another. SNAP's images say which shared: one
 * file id (fdinfo's id) for all of them. So per id, one of them is the
 * source: an fd of it that stays (it holds the description now), else the
 * first one opened again in the order the rollback applies (process by
 * process, op by op), whose own open comes first; every other one opened
 * again takes the source's description (dup3 in one process, pidfd_getfd
 * across processes: rollback_apply.c).
 *
 * The fds that stay are checked the same way, with kcmp: those of one SNAP
 * id must still be one description, and those on one file of different
 * ids must still be several (a file closed and opened again since, or a
 * dup over another fd of its file, keeps each fd's name): else a full
 * restore, which says which. Not for /dev/null and its kind (offsetless). */
#include "session/rollback_int.h"
#include "dump/dump_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct use {
	uint32_t id;
	size_t proc, op; /* op: index in fops, or SIZE_MAX: the fd stays */
	int fd;
	uint64_t file; /* its description's address (dump_fdfiles_bpf), 0 unknown */
	const char *name; /* SNAP's file's, for a regular file; else NULL */
};

static int by_id(const void *a, const void *b)
{
	const struct use *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return (x->op > y->op) - (x->op < y->op);
}

struct reopen {
	int fd;
	size_t op;
};

static int by_fd(const void *a, const void *b)
{
	const struct reopen *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* p's reopen ops by fd (free *out), for reopen_of */
static int reopens(const struct rb_proc *p, struct reopen **out, size_t *n)
{
	*n = 0;
	*out = malloc((p->nfops ? p->nfops : 1) * sizeof(**out));
	if (!*out)
		return -1;
	for (size_t k = 0; k < p->nfops; k++)
		if (p->fops[k].kind == RB_REOPEN)
			(*out)[(*n)++] = (struct reopen){ p->fops[k].fd, k };
	qsort(*out, *n, sizeof(**out), by_fd);
	return 0;
}

static size_t reopen_of(const struct reopen *r, size_t n, int fd)
{
	struct reopen key = { fd, 0 };
	const struct reopen *f = bsearch(&key, r, n, sizeof(*r), by_fd);
	return f ? f->op : SIZE_MAX;
}

static bool same_desc(const struct rb_ctx *c, const struct use *x, const struct use *y)
{
	return !dump_fdesc_cmp(c->procs[x->proc].pid, x->fd, x->file, c->procs[y->proc].pid, y->fd, y->file);
}

static const char *name_of(const struct rb_ctx *c, uint32_t id)
{
	const cr_file *f = rb_file(c, id);
	return f && f->has_reg ? f->reg.name : NULL;
}

/* /dev/null and its kind: a description of them holds no offset, and its
 * status flags a rollback sets per fd anyway (rb_diff_status), so which
 * fds share one changes nothing a program sees. */
static bool offsetless(const char *name)
{
	static const char *const dev[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };
	for (size_t i = 0; name && i < sizeof(dev) / sizeof(dev[0]); i++)
		if (!strcmp(name, dev[i]))
			return true;
	return false;
}

static int by_file(const void *a, const void *b)
{
	const struct use *x = a, *y = b;
	return (x->file > y->file) - (x->file < y->file);
}

static int by_name(const void *a, const void *b)
{
	const struct use *x = a, *y = b;
	int r = strcmp(x->name ? x->name : "", y->name ? y->name : "");
	return r ? r : by_id(a, b);
}

struct kcmp_sort {
	const struct rb_ctx *c;
	bool found;
	struct use x, y; /* a pair found to be one description (copies: the sort moves them) */
};

/* The descriptions' order (dump_fdesc_cmp): equal ones meet in the sort,
 * where the first pair found is kept for the message. */
static int by_desc(const void *a, const void *b, void *arg)
{
	struct kcmp_sort *k = arg;
	const struct use *x = a, *y = b;
	int r = dump_fdesc_cmp(k->c->procs[x->proc].pid, x->fd, x->file, k->c->procs[y->proc].pid, y->fd, y->file);
	if (r == 0 && !k->found)
		k->found = true, k->x = *x, k->y = *y;
	return r == -1 || r == 1 ? r : by_id(a, b);
}

/* Kept fds on one file, of different SNAP ids, that are one description
 * now (v: the kept ones, one per id, sorted by name). */
static int apart(const struct rb_ctx *c, struct use *v, size_t n, char *why, size_t len)
{
	for (size_t a = 0, b; a < n; a = b) {
		const char *na = v[a].name;
		for (b = a + 1; b < n && na && v[b].name && !strcmp(na, v[b].name); b++)
			;
		struct kcmp_sort k = { .c = c };
		if (b - a > 1)
			qsort_r(&v[a], b - a, sizeof(*v), by_desc, &k);
		if (k.found) {
			int fx = k.x.fd, fy = k.y.fd;
			pid_t px = c->procs[k.x.proc].pid, py = c->procs[k.y.proc].pid;
			return NOT("fd %d of %d and fd %d of %d share an open file description that they did not share "
				   "at SNAP (%s)", fx, (int)px, fy, (int)py, na);
		}
	}
	return 1;
}

int rb_fd_shares(struct rb_ctx *c, bool *by_bpf, char *why, size_t len, fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nprocs; i++)
		n += c->procs[i].nfdi;
	struct use *v = malloc((n ? n : 1) * sizeof(*v)), *kept = malloc((n ? n : 1) * sizeof(*kept));
	if (!v || !kept) {
		free(v);
		free(kept);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	n = 0;
	bool all = true; /* every description's address known: no kcmp */
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		struct reopen *ro = NULL;
		size_t nkf = 0, nro = 0;
		const struct dump_kfile *kf = rb_kfiles(p, &nkf);
		all &= kf != NULL;
		if (reopens(p, &ro, &nro)) {
			free(v);
			free(kept);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		for (size_t k = 0; k < p->nfdi; k++)
			v[n++] = (struct use){ p->fdi[k].id, i, reopen_of(ro, nro, (int)p->fdi[k].fd), (int)p->fdi[k].fd,
					       dump_fdfile_of(kf, nkf, (int)p->fdi[k].fd), name_of(c, p->fdi[k].id) };
		free(ro);
	}
	*by_bpf = all;
	qsort(v, n, sizeof(*v), by_id);
	size_t nkept = 0;
	int rc = 1;
	for (size_t a = 0, b; a < n && rc == 1; a = b) {
		size_t src = a;
		for (b = a + 1; b < n && v[b].id == v[a].id; b++)
			if (v[b].op == SIZE_MAX && v[src].op != SIZE_MAX)
				src = b; /* one that stays */
		bool checked = !offsetless(v[src].name);
		if (v[src].op == SIZE_MAX && v[src].name && checked)
			kept[nkept++] = v[src];
		for (size_t m = a; m < b && rc == 1; m++) {
			if (m == src)
				continue;
			if (v[m].op == SIZE_MAX) { /* stays too: the same description still */
				if (!checked)
					continue;
				if (!same_desc(c, &v[src], &v[m]))
					rc = NOT("fd %d of %d and fd %d of %d shared an open file description at SNAP, not "
						 "any more", v[src].fd, (int)c->procs[v[src].proc].pid, v[m].fd,
						 (int)c->procs[v[m].proc].pid);
				continue;
			}
			struct rb_fd_op *o = &c->procs[v[m].proc].fops[v[m].op];
			o->src_pid = c->procs[v[src].proc].pid;
			o->src_fd = v[src].fd;
		}
	}
	if (rc == 1 && nkept > 1 && all) { /* one of each id: none may share an address */
		qsort(kept, nkept, sizeof(*kept), by_file);
		for (size_t i = 1; i < nkept && rc == 1; i++)
			if (kept[i].file == kept[i - 1].file)
				rc = NOT("fd %d of %d and fd %d of %d share an open file description that they did not "
					 "share at SNAP (%s)", kept[i - 1].fd, (int)c->procs[kept[i - 1].proc].pid, kept[i].fd,
					 (int)c->procs[kept[i].proc].pid, kept[i].name);
	} else if (rc == 1 && nkept > 1) {
		for (size_t i = 0; i < nkept; i++)
			kept[i].file = 0; /* one order for the sort: kcmp's */
		qsort(kept, nkept, sizeof(*kept), by_name);
		rc = apart(c, kept, nkept, why, len);
	}
	free(v);
	free(kept);
	return rc;
}
