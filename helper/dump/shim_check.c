#include "shim_check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "preload/shim_fdtype.h"
#include "procfs.h"

const char *fp_shim_dis_kind_name(enum fp_shim_dis_kind k)
{
	static const char *const names[] = {
		"table-pid",  "fd-missing",  "fd-stale",    "fd-identity",    "fd-cloexec",
		"fd-flags",   "fd-type",     "map-missing", "map-stale",      "map-prot",
		"map-sharing", "map-file",   "map-offset",  "thread-missing", "thread-stale",
	};
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

struct ctx {
	pid_t pid;
	const struct fp_shim_table *t;
	struct fp_shim_report *r;
	size_t cap;
	int oom;
};

static struct fp_shim_dis *add(struct ctx *c, enum fp_shim_dis_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct fp_shim_dis *add(struct ctx *c, enum fp_shim_dis_kind k, const char *fmt, ...)
{
	if (c->r->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct fp_shim_dis *nv = realloc(c->r->v, nc * sizeof(*nv));
		if (!nv) {
			c->oom = 1;
			return NULL;
		}
		c->r->v = nv;
		c->cap = nc;
	}
	struct fp_shim_dis *d = &c->r->v[c->r->n++];
	memset(d, 0, sizeof(*d));
	d->kind = k;
	d->fd = -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	return d;
}

/* ---- fds ---- */

static void push_shim_fd(struct ctx *c, int fd)
{
	int *nv = realloc(c->r->shim_fds, (c->r->n_shim_fds + 1) * sizeof(int));
	if (!nv) {
		c->oom = 1;
		return;
	}
	c->r->shim_fds = nv;
	nv[c->r->n_shim_fds++] = fd;
}

static void flags_str(int fl, char *buf, size_t len)
{
	static const char *const acc[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"};
	snprintf(buf, len, "%s%s%s", acc[fl & O_ACCMODE], (fl & O_APPEND) ? "|O_APPEND" : "",
		 (fl & O_NONBLOCK) ? "|O_NONBLOCK" : "");
}

static void check_fd(struct ctx *c, const struct fp_fd *p, const struct fp_shim_fd *s)
{
	const int fd = p->fd;
	struct fp_shim_dis *d;
	/* the wrappers record no identity (no fstat per open): then the name the
	 * program used must still name the file the fd has */
	if (s->dev == 0 && s->ino == 0) {
		if (s->path[0] && p->target &&
		    !fp_same_basename(s->path, strlen(s->path), p->target, strlen(p->target)) &&
		    (d = add(c, FP_DIS_FD_IDENTITY, "fd %d is %s but the table has \"%s\"", fd,
			     p->target, s->path)))
			d->fd = fd;
	} else if (p->stat_ok && (s->dev != (uint64_t)p->dev || s->ino != (uint64_t)p->ino) &&
	    (d = add(c, FP_DIS_FD_IDENTITY,
		     "fd %d is %s (dev %u:%u ino %llu) but the table has \"%s\" (dev %u:%u ino %llu)",
		     fd, p->target, major(p->dev), minor(p->dev), (unsigned long long)p->ino,
		     s->path, major(s->dev), minor(s->dev), (unsigned long long)s->ino)))
		d->fd = fd;
	bool pc = (p->flags & O_CLOEXEC) != 0, tc = (s->fd_flags & FD_CLOEXEC) != 0;
	if (pc != tc && (d = add(c, FP_DIS_FD_CLOEXEC, "fd %d (%s): close-on-exec is %s, the table says %s",
				  fd, p->target, pc ? "on" : "off", tc ? "on" : "off")))
		d->fd = fd;
	int mask = O_APPEND | O_NONBLOCK;
	bool path_fd = (p->flags & O_PATH) || (s->open_flags & O_PATH);
	if (!path_fd)
		mask |= O_ACCMODE;
	if ((p->flags & mask) != (s->open_flags & mask)) {
		char a[64], b[64];
		flags_str(p->flags & mask, a, sizeof(a));
		flags_str(s->open_flags & mask, b, sizeof(b));
		if ((d = add(c, FP_DIS_FD_FLAGS, "fd %d (%s): flags %s, the table has %s", fd,
			     p->target, a, b)))
			d->fd = fd;
	}
	if (p->stat_ok && s->type != FP_FD_UNKNOWN) {
		int pt = fp_fdtype_classify(p->mode, p->target, 0, 0);
		if (pt != s->type && (d = add(c, FP_DIS_FD_TYPE, "fd %d (%s) is a %s, the table says %s",
					       fd, p->target, fp_fdtype_name(pt),
					       fp_fdtype_name(s->type))))
			d->fd = fd;
	}
}

static int cmp_fd_key(const void *key, const void *elem)
{
	int k = *(const int *)key, f = ((const struct fp_fd *)elem)->fd;
	return (k > f) - (k < f);
}

static int check_fds(struct ctx *c, fp_error *err)
{
	struct fp_fds fds;
	if (fp_proc_read_fds(c->pid, &fds, err) < 0)
		return -1;
	const struct fp_shim_table *t = c->t;
	uint32_t hwm = t->fd_hwm > FP_SHIM_MAX_FDS ? FP_SHIM_MAX_FDS : t->fd_hwm;
	struct fp_shim_dis *d;
	if (t->fd_unrecorded) { /* its fds are not read (shim_reader.c): one finding, not one per fd */
		c->r->fds += fds.n;
		add(c, FP_DIS_FD_MISSING, "the table missed %u fd change(s) made by signal handlers: no fd is taken from it",
		    t->fd_unrecorded);
		fp_proc_fds_free(&fds);
		return 0;
	}
	for (size_t k = 0; k < fds.n; k++) {
		const struct fp_fd *p = &fds.v[k];
		const struct fp_shim_fd *s =
			((uint32_t)p->fd < hwm && t->fds[p->fd].used) ? &t->fds[p->fd] : NULL;
		c->r->fds++;
		if (s && s->origin == FP_ORIGIN_SHIM) {
			push_shim_fd(c, p->fd);
		} else if (!s) {
			if ((d = add(c, FP_DIS_FD_MISSING, "fd %d (%s) is open but not in the table%s",
				     p->fd, p->target,
				     p->fd >= FP_SHIM_MAX_FDS ? " (beyond the table's size)" : "")))
				d->fd = p->fd;
		} else {
			check_fd(c, p, s);
		}
	}
	for (uint32_t fd = 0; fd < hwm; fd++) {
		const struct fp_shim_fd *s = &t->fds[fd];
		int key = (int)fd;
		if (!s->used || s->origin == FP_ORIGIN_SHIM ||
		    bsearch(&key, fds.v, fds.n, sizeof(*fds.v), cmp_fd_key))
			continue;
		if ((d = add(c, FP_DIS_FD_STALE, "table fd %u (\"%s\", %s) is not open", fd, s->path,
			     fp_fdtype_name(s->type))))
			d->fd = (int)fd;
	}
	fp_proc_fds_free(&fds);
	return 0;
}

/* ---- threads ---- */

static int check_threads(struct ctx *c, fp_error *err)
{
	pid_t *tids;
	size_t n;
	if (fp_proc_read_tids(c->pid, &tids, &n, err) < 0)
		return -1;
	const struct fp_shim_table *t = c->t;
	uint32_t tn = t->thread_count > FP_SHIM_MAX_THREADS ? FP_SHIM_MAX_THREADS : t->thread_count;
	struct fp_shim_dis *d;
	for (size_t i = 0; i < n; i++) {
		c->r->threads++;
		bool found = false;
		for (uint32_t j = 0; j < tn && !found; j++)
			found = t->threads[j].tid == tids[i];
		if (found)
			continue;
		/* A thread that is ending is not a live thread: the shim drops it
		 * before it exits, and pthread_join returns (the kernel clears its
		 * tid) while /proc still lists it for a moment. PF_EXITING is set
		 * from the start of its exit; then it turns Z or X. */
		struct fp_proc_stat st;
		fp_error e2;
		if (fp_proc_read_stat(c->pid, tids[i], &st, &e2) < 0 || st.state == 'Z' || st.state == 'X' ||
		    (st.flags & 0x4 /* PF_EXITING */))
			continue;
		if ((d = add(c, FP_DIS_THREAD_MISSING, "thread %d runs but is not in the table",
			     (int)tids[i])))
			d->tid = tids[i];
	}
	for (uint32_t j = 0; j < tn; j++) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = tids[i] == t->threads[j].tid;
		if (!found && (d = add(c, FP_DIS_THREAD_STALE, "table thread %d does not exist",
				       (int)t->threads[j].tid)))
			d->tid = t->threads[j].tid;
	}
	free(tids);
	return 0;
}

/* ---- mappings ---- */

/* A mapping in a form both sides share. */
struct cm {
	uint64_t start, end, off, dev, ino;
	int prot;
	bool shared, file;
	char name[FP_SHIM_PATH_MAX]; /* file path or "[name]"; "" for plain anon */
};

static bool is_special_name(const char *n)
{
	return n[0] == '[' && strncmp(n, "[anon:", 6) != 0;
}

static bool is_named(const struct cm *m, const char *n)
{
	return !m->file && !strcmp(m->name, n);
}

static bool shared_zero(const struct cm *m)
{
	return m->file && m->shared && !strcmp(m->name, "/dev/zero");
}

/* May b continue a (the kernel would have merged them)? */
static bool mergeable(const struct cm *a, const struct cm *b)
{
	if (a->end != b->start || a->prot != b->prot || a->shared != b->shared || a->file != b->file)
		return false;
	if (a->file)
		return a->ino == b->ino && a->dev == b->dev && b->off == a->off + (a->end - a->start);
	return !strcmp(a->name, b->name);
}

struct cmv {
	struct cm *v;
	size_t n, cap;
};

static int cmv_push(struct cmv *l, const struct cm *m)
{
	if (l->n && mergeable(&l->v[l->n - 1], m)) {
		l->v[l->n - 1].end = m->end;
		return 0;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct cm *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = *m;
	return 0;
}

/* Pushes m minus the excluded ranges ex (sorted). */
static int push_minus(struct cmv *l, const struct cm *m, const struct fp_shim_range *ex,
		      size_t nex)
{
	uint64_t x = m->start;
	for (size_t i = 0; i < nex && x < m->end; i++) {
		if (ex[i].end <= x || ex[i].start >= m->end)
			continue;
		if (ex[i].start > x) {
			struct cm piece = *m;
			piece.start = x;
			piece.end = ex[i].start;
			if (piece.file)
				piece.off = m->off + (x - m->start);
			if (cmv_push(l, &piece) < 0)
				return -1;
		}
		x = ex[i].end;
	}
	if (x < m->end) {
		struct cm piece = *m;
		piece.start = x;
		if (piece.file)
			piece.off = m->off + (x - m->start);
		return cmv_push(l, &piece);
	}
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct fp_shim_range *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static void prot_str(int prot, bool shared, char *b)
{
	b[0] = (prot & PROT_READ) ? 'r' : '-';
	b[1] = (prot & PROT_WRITE) ? 'w' : '-';
	b[2] = (prot & PROT_EXEC) ? 'x' : '-';
	b[3] = shared ? 's' : 'p';
	b[4] = '\0';
}

static const char *desc(const struct cm *m)
{
	return m->name[0] ? m->name : "anon";
}

/* Is [x, y), present on one side only, lenient growth of [heap] or [stack]?
 * The heap grows and shrinks with brk and the main stack grows down inside
 * the kernel, without any call the shim could wrap, so only for these two
 * named areas a difference in their bounds is not a disagreement: anywhere
 * inside a [heap], and for [stack] only below the other side's stack start
 * (its top never moves). */
static bool lenient(const struct cm *m, uint64_t y, const struct cmv *other)
{
	if (is_named(m, "[heap]"))
		return true;
	if (is_named(m, "[stack]"))
		for (size_t i = 0; i < other->n; i++)
			if (is_named(&other->v[i], "[stack]") && y <= other->v[i].start)
				return true;
	return false;
}

/* Does the table's file mapping tm name the same file as /proc's pm? The
 * inode alone decides when equal (st_dev seen by fstat and the VMA's device
 * differ on stacked filesystems); otherwise stat the mapping's file through
 * /proc/PID/map_files. */
static bool same_file(struct ctx *c, const struct cm *pm, const struct cm *tm, uint64_t x)
{
	if (pm->ino == tm->ino)
		return true;
	if (tm->ino == 0) /* recorded without identity: the name must agree */
		return !tm->name[0] ||
		       fp_same_basename(tm->name, strlen(tm->name), pm->name, strlen(pm->name));
	char p[128];
	struct stat st;
	snprintf(p, sizeof(p), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)c->pid, pm->start,
		 pm->end);
	(void)x;
	return stat(p, &st) == 0 && (uint64_t)st.st_dev == tm->dev && (uint64_t)st.st_ino == tm->ino;
}

static void dis_range(struct fp_shim_dis *d, uint64_t x, uint64_t y)
{
	if (d) {
		d->start = x;
		d->end = y;
	}
}

static void compare_overlap(struct ctx *c, const struct cm *pm, const struct cm *tm, uint64_t x,
			    uint64_t y)
{
	char pp[5], tp[5];
	prot_str(pm->prot, pm->shared, pp);
	prot_str(tm->prot, tm->shared, tp);
	if (pm->prot != tm->prot)
		dis_range(add(c, FP_DIS_MAP_PROT,
			      "mapping %" PRIx64 "-%" PRIx64 " (%s): %s in /proc, %s in the table", x,
			      y, desc(pm), pp, tp),
			  x, y);
	if (pm->shared != tm->shared)
		dis_range(add(c, FP_DIS_MAP_SHARING,
			      "mapping %" PRIx64 "-%" PRIx64 " (%s): %s in /proc, %s in the table", x,
			      y, desc(pm), pm->shared ? "shared" : "private",
			      tm->shared ? "shared" : "private"),
			  x, y);
	bool file_ok;
	if (!tm->file && shared_zero(pm))
		file_ok = true; /* MAP_SHARED|MAP_ANONYMOUS is a shmem file to the kernel */
	else if (pm->file != tm->file)
		file_ok = false;
	else if (pm->file)
		file_ok = same_file(c, pm, tm, x);
	else
		file_ok = !(is_special_name(pm->name) || is_special_name(tm->name)) ||
			  !strcmp(pm->name, tm->name);
	if (!file_ok) {
		dis_range(add(c, FP_DIS_MAP_FILE,
			      "mapping %" PRIx64 "-%" PRIx64 ": %s (ino %" PRIu64 ") in /proc, %s "
			      "(ino %" PRIu64 ") in the table",
			      x, y, desc(pm), pm->ino, desc(tm), tm->ino),
			  x, y);
		return;
	}
	if (pm->file && !shared_zero(pm) && pm->off + (x - pm->start) != tm->off + (x - tm->start))
		dis_range(add(c, FP_DIS_MAP_OFFSET,
			      "mapping %" PRIx64 "-%" PRIx64 " (%s): offset 0x%" PRIx64
			      " in /proc, 0x%" PRIx64 " in the table",
			      x, y, desc(pm), pm->off + (x - pm->start), tm->off + (x - tm->start)),
			  x, y);
}

/* Extends the previous disagreement instead of adding one per piece. */
static bool extend_last(struct ctx *c, enum fp_shim_dis_kind k, uint64_t x, uint64_t y)
{
	if (!c->r->n)
		return false;
	struct fp_shim_dis *d = &c->r->v[c->r->n - 1];
	if (d->kind != k || d->end != x)
		return false;
	d->end = y;
	return true;
}

static void one_side(struct ctx *c, const struct cm *m, uint64_t x, uint64_t y, bool in_proc,
		     const struct cmv *other)
{
	if (lenient(m, y, other))
		return;
	char pr[5];
	prot_str(m->prot, m->shared, pr);
	enum fp_shim_dis_kind k = in_proc ? FP_DIS_MAP_MISSING : FP_DIS_MAP_STALE;
	if (extend_last(c, k, x, y))
		return;
	dis_range(add(c, k,
		      in_proc ? "mapping %" PRIx64 "-%" PRIx64 " (%s %s) is not in the table"
			      : "table mapping %" PRIx64 "-%" PRIx64 " (%s %s) is not mapped",
		      x, y, pr, desc(m)),
		  x, y);
}

static void cm_from_proc(struct cm *m, const struct fp_map *p)
{
	memset(m, 0, sizeof(*m));
	m->start = p->start;
	m->end = p->end;
	m->prot = p->prot;
	m->shared = p->flags & MAP_SHARED;
	m->file = p->kind == FP_MAP_FILE;
	m->off = m->file ? p->offset : 0;
	m->dev = m->file ? (uint64_t)p->dev : 0;
	m->ino = m->file ? (uint64_t)p->ino : 0;
	if (p->path)
		snprintf(m->name, sizeof(m->name), "%s", p->path);
}

static void cm_from_table(struct cm *m, const struct fp_shim_map *s)
{
	memset(m, 0, sizeof(*m));
	m->start = s->start;
	m->end = s->end;
	m->prot = s->prot;
	m->shared = (s->flags & MAP_SHARED) != 0;
	m->file = !(s->flags & MAP_ANONYMOUS);
	m->off = m->file ? s->offset : 0;
	m->dev = m->file ? s->dev : 0;
	m->ino = m->file ? s->ino : 0;
	snprintf(m->name, sizeof(m->name), "%s", s->path);
	/* a resynced entry of a deleted file carries the kernel's suffix */
	size_t n = strlen(m->name);
	if (n > 10 && !strcmp(m->name + n - 10, " (deleted)"))
		m->name[n - 10] = '\0';
}

static int check_maps(struct ctx *c, fp_error *err)
{
	struct fp_maps pm;
	if (fp_proc_read_maps(c->pid, &pm, err) < 0)
		return -1;
	const struct fp_shim_table *t = c->t;
	uint32_t tn = t->map_count > FP_SHIM_MAX_MAPS ? FP_SHIM_MAX_MAPS : t->map_count;
	struct cmv P = {0}, T = {0};
	struct fp_shim_range *ex = calloc(tn + 1, sizeof(*ex));
	int rc = -1;
	if (!ex)
		goto oom;
	/* excluded: the shim's object and whatever the table marks as the shim's */
	size_t nex = 0;
	if (t->shim_end > t->shim_start)
		ex[nex++] = (struct fp_shim_range){t->shim_start, t->shim_end};
	for (uint32_t i = 0; i < tn; i++)
		if (t->maps[i].origin == FP_ORIGIN_SHIM)
			ex[nex++] = (struct fp_shim_range){t->maps[i].start, t->maps[i].end};
	qsort(ex, nex, sizeof(*ex), cmp_range);
	size_t w = 0; /* merge overlaps */
	for (size_t i = 0; i < nex; i++) {
		if (w && ex[i].start <= ex[w - 1].end) {
			if (ex[i].end > ex[w - 1].end)
				ex[w - 1].end = ex[i].end;
		} else {
			ex[w++] = ex[i];
		}
	}
	nex = w;
	for (size_t i = 0; i < pm.n; i++) {
		struct cm m;
		cm_from_proc(&m, &pm.v[i]);
		for (size_t j = 0; j < nex; j++) {
			uint64_t s = m.start > ex[j].start ? m.start : ex[j].start;
			uint64_t e = m.end < ex[j].end ? m.end : ex[j].end;
			if (s < e) {
				struct fp_shim_range *nv = realloc(
					c->r->shim_maps, (c->r->n_shim_maps + 1) * sizeof(*nv));
				if (!nv)
					goto oom;
				c->r->shim_maps = nv;
				nv[c->r->n_shim_maps++] = (struct fp_shim_range){s, e};
			}
		}
		if (push_minus(&P, &m, ex, nex) < 0)
			goto oom;
	}
	for (uint32_t i = 0; i < tn; i++) {
		if (t->maps[i].origin == FP_ORIGIN_SHIM)
			continue;
		struct cm m;
		cm_from_table(&m, &t->maps[i]);
		if (push_minus(&T, &m, ex, nex) < 0)
			goto oom;
	}
	c->r->maps = P.n;
	size_t i = 0, j = 0;
	uint64_t x = 0;
	while (i < P.n || j < T.n) {
		while (i < P.n && P.v[i].end <= x)
			i++;
		while (j < T.n && T.v[j].end <= x)
			j++;
		if (i >= P.n && j >= T.n)
			break;
		const struct cm *p = i < P.n ? &P.v[i] : NULL, *q = j < T.n ? &T.v[j] : NULL;
		bool pin = p && p->start <= x, qin = q && q->start <= x;
		uint64_t y;
		if (pin && qin) {
			y = p->end < q->end ? p->end : q->end;
			compare_overlap(c, p, q, x, y);
		} else if (pin) {
			y = p->end;
			if (q && q->start < y)
				y = q->start;
			one_side(c, p, x, y, true, &T);
		} else if (qin) {
			y = q->end;
			if (p && p->start < y)
				y = p->start;
			one_side(c, q, x, y, false, &P);
		} else {
			y = p && (!q || p->start < q->start) ? p->start : q->start;
		}
		x = y;
	}
	rc = 0;
	goto out;
oom:
	fp_fail(err, ENOMEM, "out of memory comparing the mappings of %d", (int)c->pid);
out:
	free(ex);
	free(P.v);
	free(T.v);
	fp_proc_maps_free(&pm);
	return rc;
}

int fp_shim_check(pid_t pid, const struct fp_shim_table *t, struct fp_shim_report *out,
		  fp_error *err)
{
	memset(out, 0, sizeof(*out));
	struct ctx c = {pid, t, out, 0, 0};
	if (t->pid != pid)
		add(&c, FP_DIS_TABLE_PID,
		    "the table belongs to process %d, not %d (a copy inherited through a clone "
		    "the shim did not see)",
		    (int)t->pid, (int)pid);
	if (check_fds(&c, err) < 0 || check_maps(&c, err) < 0 || check_threads(&c, err) < 0) {
		fp_shim_report_free(out);
		return fp_wrap(err, "comparing the shim table of %d with /proc", (int)pid);
	}
	if (c.oom) {
		fp_shim_report_free(out);
		return fp_fail(err, ENOMEM, "out of memory comparing the shim table of %d", (int)pid);
	}
	return 0;
}

void fp_shim_report_free(struct fp_shim_report *r)
{
	if (!r)
		return;
	free(r->v);
	free(r->shim_maps);
	free(r->shim_fds);
	memset(r, 0, sizeof(*r));
}
