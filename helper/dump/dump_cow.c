/* Short pauses for --leave-running: a frozen copy-on-write copy.
 *
 * While the process is stopped the dumper captures registers and every
 * per-thread and per-process fact as before, then clones the process from
 * one stopped thread (dump_inject.c, dinj_clone): no CLONE_VM, so the copy
 * shares every page copy-on-write (fork costs ~17 ms per GiB of page
 * tables here), exit signal 0, traced from birth and stopped before its
 * first instruction, killed if the dumper dies (PTRACE_O_EXITKILL). The
 * process is then resumed and its pages are read from the copy at the same
 * addresses; its pagemap shows the shared pages as present, exactly as the
 * process's own did at the clone.
 *
 * What a copy does not show, and what is done about it (while stopped):
 *   - MADV_DONTFORK areas are not in the copy, MADV_WIPEONFORK areas are
 *     empty in it: any private area where the copy has no page but the
 *     process has one is copied from the process itself (dump_copy_vma).
 *   - mlock is not inherited, and a DONTFORK area has no VmFlags in the
 *     copy: then the VMA list comes from the process's own smaps (slower:
 *     smaps walks every page table, ~40 ms per GiB) instead of its maps plus
 *     the copy's smaps read after the resume.
 *
 * The copy is the process's child (the clone's parent): after its last page
 * is read it is killed and, once gone, reaped by an injected
 * wait4(__WALL|WNOHANG) in a stopped thread of the process (a second, short
 * stop). If the dumper dies before that, the copy dies with it and stays a
 * zombie child of the process, invisible to its wait(), until the next dump
 * reaps it (dump_tree.c: children with exit signal 0 that are exiting are
 * waited for, zombie ones reaped) or the process exits. */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ptrace/pt_internal.h"

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

int dump_cow_start(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	int64_t t0 = dump_now_ns();
	pid_t kid = 0;
	if (dinj_clone(c, p, &kid, err))
		return fp_wrap(err, "making the frozen copy of %d", p->pid);
	if (!kid) {
		dlog(c, "%d: no frozen copy possible: its pages are copied while it is stopped", p->pid);
		return 0;
	}
	p->cow = kid;
	double ms = ms_since(t0);
	c->st->fork_ms += ms;
	dlog(c, "%d: frozen copy %d made in %.3f ms", p->pid, kid, ms);
	return 0;
}

static bool missing_i(const bool *missing, size_t i)
{
	return missing && missing[i];
}

static bool private_area(const struct dump_vma *v)
{
	return v->perms[3] == 'p' && strcmp(v->path, "[vsyscall]") && strncmp(v->path, "[vvar", 5) &&
	       strcmp(v->path, "[uprobes]");
}

/* The copy's VMA list without the injection page it inherited (which may
 * have merged with a neighbour there). */
static int copy_vmas(struct dump_proc *p, bool smaps, struct dump_vma **out, size_t *n, fp_error *err)
{
	struct dump_vma *v = NULL;
	size_t nv = 0;
	if (dump_vmas_read(p->cow, smaps, &v, &nv, err))
		return -1;
	uint64_t ds = p->di_gone_start, de = p->di_gone_end;
	/* at most one VMA straddles both ends: one more entry at most */
	struct dump_vma *r = malloc((nv + 1) * sizeof(*r));
	if (!r) {
		free(v);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < nv; i++) {
		struct dump_vma x = v[i];
		if (!ds || x.end <= ds || x.start >= de) {
			r[k++] = x;
			continue;
		}
		if (x.start < ds) {
			r[k] = x;
			r[k++].end = ds;
		}
		if (x.end > de) {
			r[k] = x;
			r[k].pgoff += de - x.start;
			r[k++].start = de;
		}
	}
	free(v);
	*out = r;
	*n = k;
	return 0;
}

/* While stopped, after the injection page is gone: the VMA list at the
 * instant of the clone, and the areas the copy cannot give. */
int dump_cow_vmas_stopped(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	int64_t t0 = dump_now_ns();
	char v[64];
	bool locked = dump_status_field(p->pid, "VmLck", v, sizeof(v)) == 0 && atol(v) > 0;
	struct dump_vma *cv = NULL;
	size_t cn = 0;
	if ((locked ? dump_vmas_read(p->pid, true, &p->vmas, &p->nvmas, err) : dump_vmas_stopped(p, &p->vmas, &p->nvmas, err)) ||
	    copy_vmas(p, false, &cv, &cn, err))
		return -1;
	bool *missing = calloc(p->nvmas ? p->nvmas : 1, sizeof(bool));
	if (!missing) {
		free(cv);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t j = 0, nmissing = 0;
	for (size_t i = 0; i < p->nvmas; i++) {
		while (j < cn && cv[j].end <= p->vmas[i].start)
			j++;
		if (!(j < cn && cv[j].start == p->vmas[i].start && cv[j].end == p->vmas[i].end)) {
			missing[i] = true;
			nmissing++;
			dlog(c, "%d: area %" PRIx64 "-%" PRIx64 " %s is not in the copy (MADV_DONTFORK?)", p->pid,
			     p->vmas[i].start, p->vmas[i].end, p->vmas[i].path);
		}
	}
	free(cv);
	int rc = 0;
	if (nmissing && !locked) {
		free(p->vmas);
		p->vmas = NULL;
		p->nvmas = 0;
		free(missing);
		missing = NULL;
		if (dump_vmas_read(p->pid, true, &p->vmas, &p->nvmas, err))
			return -1;
	}
	p->cow_exact = locked || nmissing;
	if (p->cow_exact)
		dlog(c, "%d: %s: VMA flags read from its smaps while stopped", p->pid,
		     locked ? "locked memory (mlock is not inherited by the copy)" : "areas missing in the copy");
	size_t ncopied = 0;
	for (size_t i = 0; i < p->nvmas && !rc; i++) {
		struct dump_vma t = p->vmas[i];
		if (!private_area(&t))
			continue;
		t.file_private = t.ino != 0 && t.path[0] == '/';
		t.dump_pages = true;
		/* fork copies no page tables of a mapping without anonymous
		 * pages (file text, the vDSO): compare only the pages a dump
		 * takes. */
		if (!missing_i(missing, i) && dump_range_has_pages(p->cow, t.start, t.end, t.file_private) == 1)
			continue;
		if (dump_range_has_pages(p->pid, t.start, t.end, t.file_private) == 0)
			continue; /* nothing to dump there */
		rc = dump_copy_vma(c, p, &t, err);
		if (!rc) {
			ncopied++;
			dlog(c, "%d: area %" PRIx64 "-%" PRIx64 " %s has pages the copy lacks (special mapping, MADV_WIPEONFORK or DONTFORK): %" PRIu64
				" pages copied while stopped",
			     p->pid, t.start, t.end, t.path, p->fb[p->nfb - 1].npages);
		}
	}
	free(missing);
	dlogv(c, "%d: copy checked (%zu vmas, %zu copied while stopped) in %.3f ms", p->pid, p->nvmas, ncopied, ms_since(t0));
	return rc;
}

/* After the resume: VmFlags from the copy, the VMA entries and the pages. */
int dump_cow_after(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	int64_t t0 = dump_now_ns();
	if (dinj_clone_settle(p, p->cow, err))
		return -1;
	if (!p->cow_exact) {
		struct dump_vma *cv = NULL;
		size_t cn = 0;
		if (copy_vmas(p, true, &cv, &cn, err))
			return fp_wrap(err, "reading the mappings of the frozen copy of %d", p->pid);
		size_t j = 0;
		for (size_t i = 0; i < p->nvmas; i++) {
			while (j < cn && cv[j].end <= p->vmas[i].start)
				j++;
			if (!(j < cn && cv[j].start == p->vmas[i].start && cv[j].end == p->vmas[i].end)) {
				free(cv);
				return fp_fail(err, EIO, "the frozen copy of %d lacks its area %" PRIx64 "-%" PRIx64, p->pid,
					       p->vmas[i].start, p->vmas[i].end);
			}
			p->vmas[i].vmflags = cv[j].vmflags;
		}
		free(cv);
	}
	if (dump_proc_vma_entries(c, p, err))
		return fp_wrap(err, "reading the mappings of %d (%s)", p->pid, p->comm);
	if (dump_proc_pagemap(c, p, err))
		return fp_wrap(err, "finding the pages of %d (%s)", p->pid, p->comm);
	c->st->pages += p->npages;
	dlog(c, "%d: %zu vmas, %zu page runs, %" PRIu64 " pages (from the copy, %.3f ms)", p->pid, p->mm.n_vmas, p->npe,
	     p->npages, ms_since(t0));
	return 0;
}

void dump_cow_kill(struct dump_ctx *c, struct dump_proc *p)
{
	if (!p->cow || p->cow_killed)
		return;
	kill(p->cow, SIGKILL);
	p->cow_killed = true;
	dlogv(c, "%d: frozen copy %d killed", p->pid, p->cow);
}

/* Kills the copy, waits for it to be gone (its teardown takes ~70 ms per
 * GiB) and reaps it inside the process. */
void dump_cow_finish(struct dump_ctx *c, struct dump_proc *p)
{
	if (!p->cow)
		return;
	int64_t t0 = dump_now_ns();
	dump_cow_kill(c, p);
	int st = 0, w;
	int64_t deadline = fp_pt_deadline(30000);
	do
		w = fp_pt_wait_one(p->cow, deadline, &st);
	while (w == 1 && !WIFEXITED(st) && !WIFSIGNALED(st));
	double t_exit = ms_since(t0);
	fp_error e;
	bool was_seized = p->seized;
	int64_t t1 = dump_now_ns();
	int rc = 0;
	if (!was_seized) {
		rc = fp_pt_seize(&p->pt, p->pid, c->o->timeout_ms, &e);
		if (rc && e.errnum == ESRCH) { /* the process is gone; init reaps the copy */
			p->cow = 0;
			return;
		}
		p->seized = rc == 0;
	}
	if (!rc)
		rc = dinj_reap(c, p, p->cow, &e);
	if (!was_seized && p->seized) {
		fp_error e2;
		fp_pt_detach(&p->pt, &e2);
		p->seized = false;
	}
	double t_reap = ms_since(t1);
	if (rc)
		dlog(c, "WARNING: %d: the frozen copy %d could not be reaped (%s); it stays a zombie child of %d (invisible to "
			"its wait()) until %d exits",
		     p->pid, p->cow, e.msg, p->pid, p->pid);
	else
		dlog(c, "%d: frozen copy %d gone after %.3f ms, reaped in %d (stopped again for %.3f ms)", p->pid, p->cow,
		     t_exit, p->pid, t_reap);
	c->st->reap_pause_ms += was_seized ? 0 : t_reap;
	p->cow = 0;
}
