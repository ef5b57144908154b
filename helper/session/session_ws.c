#include "session_ws.h"
#include "fp_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "ptrace/inject.h"
#include "ptrace/pt_mem.h"

static int call(fp_inject *ij, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	return fp_inject_call(ij, nr, args, ret, err);
}

/* Re-opens one reference inside the process, through the path it had: the
 * path now resolves in the new mount. */
static int repoint_one(fp_inject *ij, pid_t pid, uint64_t scratch, const char *root,
		       const struct fp_ws_ref *r, fp_error *err)
{
	if (r->flags & FP_WS_REF_DELETED)
		return 0; /* unlinked: in no layer's namespace, nothing to freeze */
	if (r->kind == FP_WS_REF_MAP && !(r->flags & FP_WS_REF_MAP_SHARED_W))
		return 0; /* never writes back to its file */
	/* The paths are ours; a chrooted process (a built image) resolves
	 * them below its own root. */
	const char *path = r->path;
	size_t rl = strlen(root);
	if (rl > 1 && !strncmp(path, root, rl) && (path[rl] == '/' || path[rl] == '\0'))
		path = path[rl] ? path + rl : "/";
	if (fp_mem_write(pid, scratch, path, strlen(path) + 1, err) < 0)
		return -1;
	int64_t fd, rc;
	switch (r->kind) {
	case FP_WS_REF_CWD:
		if (call(ij, SYS_chdir, scratch, 0, 0, 0, 0, 0, &rc, err) < 0)
			return -1;
		if (rc < 0)
			return fp_fail(err, (int)-rc, "process %d: chdir(%s): %s", (int)pid, r->path,
				       strerror((int)-rc));
		return 0;
	case FP_WS_REF_ROOT:
		if (call(ij, SYS_chroot, scratch, 0, 0, 0, 0, 0, &rc, err) < 0)
			return -1;
		if (rc < 0)
			return fp_fail(err, (int)-rc, "process %d: chroot(%s): %s", (int)pid, r->path,
				       strerror((int)-rc));
		return 0;
	case FP_WS_REF_FD: {
		if (r->share_pid) { /* its description was re-pointed already */
			fp_error de;
			if (!fp_inject_dup_from(ij, r->share_pid, r->share_fd, r->fd, (r->open_flags & O_CLOEXEC) != 0, &de))
				return 0;
			if (de.errnum != EPERM && de.errnum != EACCES) {
				*err = de;
				return -1;
			}
			/* the process may not take another's fd (Yama's ptrace
			 * scope): it opens its own, as it did before */
		}
		int flags = r->open_flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
		if (call(ij, SYS_openat, (uint64_t)AT_FDCWD, scratch, (uint64_t)(flags | O_CLOEXEC), 0, 0, 0,
			 &fd, err) < 0)
			return -1;
		if (fd < 0)
			return fp_fail(err, (int)-fd, "process %d: cannot reopen fd %d (%s) in the new workspace: %s",
				       (int)pid, r->fd, r->path, strerror((int)-fd));
		/* O_APPEND too: writes go to the end anyway, but reads and
		 * lseek(fd, 0, SEEK_CUR) see the offset, which a snapshot must
		 * not move. */
		if (call(ij, SYS_lseek, (uint64_t)fd, (uint64_t)r->pos, SEEK_SET, 0, 0, 0, &rc, err) < 0)
			return -1;
		int64_t rc2 = 0;
		if (rc >= 0 && call(ij, SYS_dup3, (uint64_t)fd, (uint64_t)r->fd,
				    (r->open_flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0, &rc2, err) < 0)
			return -1;
		int64_t ignored;
		if (call(ij, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err) < 0)
			return -1;
		if (rc < 0 || rc2 < 0)
			return fp_fail(err, (int)-(rc < 0 ? rc : rc2), "process %d: cannot move fd %d (%s): %s",
				       (int)pid, r->fd, r->path, strerror((int)-(rc < 0 ? rc : rc2)));
		return 0;
	}
	case FP_WS_REF_MAP: {
		if (call(ij, SYS_openat, (uint64_t)AT_FDCWD, scratch, O_RDWR | O_CLOEXEC, 0, 0, 0, &fd, err) < 0)
			return -1;
		if (fd < 0)
			return fp_fail(err, (int)-fd, "process %d: cannot reopen mapped %s: %s", (int)pid, r->path,
				       strerror((int)-fd));
		if (call(ij, SYS_mmap, r->start, r->end - r->start, (uint64_t)r->prot, MAP_SHARED | MAP_FIXED,
			 (uint64_t)fd, r->offset, &rc, err) < 0)
			return -1;
		int64_t ignored;
		if (call(ij, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err) < 0)
			return -1;
		if (rc < 0)
			return fp_fail(err, (int)-rc, "process %d: cannot remap %s at 0x%llx: %s", (int)pid, r->path,
				       (unsigned long long)r->start, strerror((int)-rc));
		return 0;
	}
	}
	return 0;
}

static pid_t stopped_thread(fp_pt_proc *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].state == FP_PT_STOPPED)
			return p->threads[i].tid;
	return 0;
}

/* Re-points refs[0, n) of process p. */
static int repoint(fp_pt_proc *p, const struct fp_ws_ref *refs, size_t n, fp_error *err)
{
	if (n == 0)
		return 0;
	pid_t tid = stopped_thread(p);
	if (!tid)
		return fp_fail(err, ESRCH, "process %d has no stopped thread to work in", (int)p->pid);
	fp_inject ij;
	if (fp_inject_init(&ij, p, err) < 0)
		return -1;
	int rc = fp_inject_begin(&ij, tid, err);
	uint64_t scratch = 0;
	if (rc == 0)
		rc = fp_inject_scratch(&ij, 4200, &scratch, err);
	char link[64], root[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/%d/root", (int)p->pid);
	ssize_t rl = readlink(link, root, sizeof(root) - 1);
	root[rl > 0 ? rl : 0] = '\0';
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = repoint_one(&ij, p->pid, scratch, root, &refs[i], err);
	fp_error e2;
	if (ij.depth > 0 && fp_inject_end(&ij, rc == 0 ? err : &e2) < 0)
		rc = -1;
	if (fp_inject_fini(&ij, rc == 0 ? err : &e2) < 0)
		rc = -1;
	return rc;
}

struct ref_at {
	const char *path;
	pid_t pid;
	size_t proc, i; /* the order the refs are re-pointed in */
	uint64_t file;  /* the description's address (dump_fdfiles_bpf), 0 unknown */
	struct fp_ws_ref *r;
};

static int by_order(const struct ref_at *x, const struct ref_at *y)
{
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

static int by_path(const void *a, const void *b)
{
	const struct ref_at *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : by_order(x, y);
}

/* 0: one description; else their order (dump_fdesc_cmp) */
static int desc_cmp(const struct ref_at *x, const struct ref_at *y)
{
	int r = dump_fdesc_cmp(x->pid, x->r->fd, x->file, y->pid, y->r->fd, y->file);
	return r == 2 ? by_order(x, y) : r;
}

static int by_desc(const void *a, const void *b)
{
	int c = desc_cmp(a, b);
	return c ? c : by_order(a, b);
}

/* fds that share an open file description (a dup, a fork: a shell's 2>&1,
 * a child writing to its parent's log) must share one again once moved,
 * or each writes at an offset of its own over the others. Only fds on one
 * path can share: sorted by description (the kernel's addresses of them,
 * from a BPF iterator, or kcmp's order), each one after the first of its
 * description is re-pointed as a copy of that first one (repoint_one),
 * which the order of re-pointing has moved before it. */
static int group_shares(fp_pt_proc **procs, size_t nprocs, struct fp_ws_ref **refs, const size_t *nrefs,
			fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < nprocs; i++)
		for (size_t k = 0; k < nrefs[i]; k++)
			n += refs[i][k].kind == FP_WS_REF_FD && !(refs[i][k].flags & FP_WS_REF_DELETED);
	if (n < 2)
		return 0;
	struct ref_at *v = malloc(n * sizeof(*v));
	bool *need = calloc(nprocs, sizeof(*need)); /* has an fd on a path with others */
	if (!v || !need) {
		free(v);
		free(need);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	n = 0;
	for (size_t i = 0; i < nprocs; i++)
		for (size_t k = 0; k < nrefs[i]; k++)
			if (refs[i][k].kind == FP_WS_REF_FD && !(refs[i][k].flags & FP_WS_REF_DELETED))
				v[n++] = (struct ref_at){ refs[i][k].path, procs[i]->pid, i, k, 0, &refs[i][k] };
	qsort(v, n, sizeof(*v), by_path);
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a + 1; b < n && !strcmp(v[a].path, v[b].path); b++)
			;
		for (size_t m = a; m < b && b - a > 1; m++)
			need[v[m].proc] = true;
	}
	/* the addresses only of the processes that may share (this is the
	 * pause): one BPF read each */
	for (size_t i = 0; i < nprocs; i++) {
		struct dump_kfile *kf = NULL;
		size_t nkf = 0;
		if (!need[i] || dump_fdfiles_bpf(procs[i]->pid, &kf, &nkf))
			continue;
		for (size_t m = 0; m < n; m++)
			if (v[m].proc == i)
				v[m].file = dump_fdfile_of(kf, nkf, v[m].r->fd);
		free(kf);
	}
	free(need);
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a + 1; b < n && !strcmp(v[a].path, v[b].path); b++)
			;
		if (b - a < 2)
			continue;
		bool known = true; /* one order for all: the addresses, or kcmp's */
		for (size_t m = a; m < b; m++)
			known &= v[m].file != 0;
		for (size_t m = a; m < b && !known; m++)
			v[m].file = 0;
		qsort(v + a, b - a, sizeof(*v), by_desc);
		for (size_t m = a + 1, first = a; m < b; m++) {
			if (desc_cmp(&v[first], &v[m])) {
				first = m; /* a description of its own: opened */
				continue;
			}
			v[m].r->share_pid = v[first].pid;
			v[m].r->share_fd = v[first].r->fd;
		}
	}
	free(v);
	return 0;
}

int fp_session_ws_freeze(struct fp_ws *ws, const char *snap, fp_pt_proc **procs, size_t nprocs,
			 double *ms, fp_error *err)
{
	double t0 = fp_mono_ms_f();
	struct fp_ws_switch sw;
	if (fp_ws_freeze_begin(ws, &sw, err) < 0)
		return fp_wrap(err, "workspace freeze");
	struct fp_ws_ref **refs = calloc(nprocs ? nprocs : 1, sizeof(*refs));
	size_t *nrefs = calloc(nprocs ? nprocs : 1, sizeof(*nrefs));
	size_t moved = 0; /* processes whose refs were re-pointed */
	int rc = refs && nrefs ? 0 : fp_fail(err, ENOMEM, "out of memory");
	/* Scan everything before moving anything: after a move, a ref reads
	 * back as the new mount. */
	for (size_t i = 0; rc == 0 && i < nprocs; i++)
		rc = fp_ws_scan_refs(procs[i]->pid, sw.old_mnt_id, fp_ws_base(ws), &refs[i], &nrefs[i], err);
	if (rc == 0)
		rc = group_shares(procs, nprocs, refs, nrefs, err);
	for (size_t i = 0; rc == 0 && i < nprocs; i++) {
		rc = repoint(procs[i], refs[i], nrefs[i], err);
		moved = i + 1; /* a failed one may be half moved: undo it too */
	}
	if (rc == 0)
		rc = fp_ws_freeze_commit(ws, &sw, snap, err);
	if (rc < 0) {
		fp_ws_freeze_abort(ws, &sw);
		/* The old mount is on DIR again: the same paths lead back. */
		for (size_t i = 0; i < moved; i++) {
			fp_error e2;
			repoint(procs[i], refs[i], nrefs[i], &e2);
		}
		fp_wrap(err, "workspace freeze (rolled back)");
	}
	for (size_t i = 0; i < nprocs && refs; i++)
		free(refs[i]);
	free(refs);
	free(nrefs);
	if (ms)
		*ms = fp_mono_ms_f() - t0;
	return rc;
}
