/* Rollback in place: whether the live processes are the ones SNAP was
 * taken of, and what differs between them and SNAP (rollback_int.h). A
 * difference this code does not undo makes the rollback a full restore,
 * with the reason: shared memory, file mappings added or removed, fds
 * closed or pointing elsewhere (rollback_fds.c), other signal handlers or
 * POSIX timers. */
#include "session/rollback_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "procfs.h"
#include "ptrace/pagemap_scan.h"

static void tree(pid_t pid, pid_t *out, size_t cap, size_t *n)
{
	if (*n < cap)
		out[(*n)++] = pid;
	pid_t *kids;
	size_t nk;
	if (dump_list_children(pid, &kids, &nk))
		return;
	for (size_t i = 0; i < nk; i++)
		if (!rb_hot_is_copy(kids[i])) /* a hot snapshot's copy is not in the tree */
			tree(kids[i], out, cap, n);
	free(kids);
}

static size_t count_tasks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

int rb_check_tree(struct rb_ctx *c, char *why, size_t len, fp_error *err)
{
	(void)err;
	struct fp_track *t = c->t;
	if (!t->active)
		return NOT("no write tracking: %s", t->lost[0] ? t->lost : "no snapshot was taken since the session started");
	pid_t live[512];
	size_t nlive = 0;
	tree(c->root, live, 512, &nlive);
	if (nlive != c->nprocs)
		return NOT("the process tree changed since SNAP (%zu processes, SNAP has %zu)", nlive, c->nprocs);
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		bool found = false;
		for (size_t k = 0; k < nlive; k++)
			found |= live[k] == p->pid;
		if (!found)
			return NOT("process %d of SNAP is gone (the process tree changed)", (int)p->pid);
		for (size_t k = 0; k < t->n && !p->tp; k++)
			if (t->procs[k].pid == p->pid)
				p->tp = &t->procs[k];
		if (!p->tp || p->tp->uffd < 0)
			return NOT("process %d is not write-tracked", (int)p->pid);
		if (fp_track_start_time(p->pid) != p->tp->start_time)
			return NOT("process %d is another process than the tracked one (pid reused)", (int)p->pid);
		/* after an exec the userfaultfd's memory is gone: ESRCH */
		struct uffdio_writeprotect w = { .range = { p->tp->nreg ? p->tp->reg[0].start : 0, CR_PAGE_SIZE }, .mode = 0 };
		if (!p->tp->nreg || (ioctl(p->tp->uffd, UFFDIO_WRITEPROTECT, &w) && errno == ESRCH))
			return NOT("process %d ran exec since SNAP", (int)p->pid);
		cr_core *lc = p->nth ? &p->th[0].core : NULL;
		if (lc && lc->has_tc && lc->tc.task_state != CR_TASK_ALIVE)
			return NOT("process %d was stopped or dead in SNAP", (int)p->pid);
		size_t nt = count_tasks(p->pid);
		if (nt != p->nth)
			return NOT("process %d has %zu threads, SNAP has %zu", (int)p->pid, nt, p->nth);
	}
	return 1;
}

/* ---- mappings ----------------------------------------------------------- */

static int perms_prot(const char *perms)
{
	return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
}

static bool special(const char *path)
{
	return !strcmp(path, "[vdso]") || !strncmp(path, "[vvar", 5) || !strcmp(path, "[vsyscall]") ||
	       !strcmp(path, "[uprobes]");
}

static bool live_anon(const struct dump_vma *v)
{
	return v->perms[3] == 'p' && v->ino == 0 && !special(v->path);
}

static bool snap_special(const cr_vma *v)
{
	return v->status & (CR_VMA_AREA_VDSO | CR_VMA_AREA_VVAR | CR_VMA_AREA_VSYSCALL | CR_VMA_AREA_UPROBES);
}

static bool snap_anon(const cr_vma *v)
{
	return (v->status & CR_VMA_ANON_PRIVATE) && !snap_special(v);
}

/* Left out of the comparison: the kernel's own mappings (vDSO, vvar), the
 * same in the same process whatever the image lists of them. */
static bool live_skip(const struct dump_vma *v)
{
	return live_anon(v) || special(v->path);
}

static bool snap_skip(const cr_vma *v)
{
	return snap_anon(v) || snap_special(v);
}

struct seg {
	uint64_t s, e;
	int prot;
};

static int prot_at(const struct seg *v, size_t n, uint64_t a)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].s <= a && a < v[i].e)
			return v[i].prot;
	return -1;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static struct rb_vma_op *vop_new(struct rb_proc *p)
{
	struct rb_vma_op *x = realloc(p->vops, (p->nvops + 1) * sizeof(*x));
	if (!x)
		return NULL;
	p->vops = x;
	memset(&x[p->nvops], 0, sizeof(*x));
	return &x[p->nvops++];
}

/* Segments of the address space by (live prot, SNAP prot): munmap where
 * only live maps, mmap where only SNAP does, mprotect where both differ. */
static int anon_ops(struct rb_proc *p, const struct seg *L, size_t nl, const struct seg *S, size_t ns, fp_error *err)
{
	size_t nb = 2 * (nl + ns);
	uint64_t *b = malloc((nb ? nb : 1) * sizeof(*b));
	if (!b)
		return fp_fail(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < nl; i++)
		b[k++] = L[i].s, b[k++] = L[i].e;
	for (size_t i = 0; i < ns; i++)
		b[k++] = S[i].s, b[k++] = S[i].e;
	qsort(b, nb, sizeof(*b), cmp_u64);
	for (size_t i = 0; i + 1 < nb; i++) {
		uint64_t s = b[i], e = b[i + 1];
		if (s == e)
			continue;
		int lp = prot_at(L, nl, s), sp = prot_at(S, ns, s);
		if (lp < 0 && sp < 0)
			continue;
		if (lp >= 0 && sp >= 0 && fp_rlist_add(&p->keep, s, e)) {
			free(b);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		if (lp == sp)
			continue;
		enum rb_vma_kind kind = lp < 0 ? RB_MMAP : sp < 0 ? RB_MUNMAP : RB_MPROTECT;
		struct rb_vma_op *last = p->nvops ? &p->vops[p->nvops - 1] : NULL;
		if (last && last->kind == kind && last->end == s && last->prot == sp && last->old_prot == lp) {
			last->end = e;
			continue;
		}
		struct rb_vma_op *o = vop_new(p);
		if (!o) {
			free(b);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		o->kind = kind, o->start = s, o->end = e, o->prot = sp, o->old_prot = lp;
	}
	free(b);
	return 0;
}

/* The heap as one span: [heap] is several mappings side by side once part
 * of it differs (growth beside the part the tracking registered). */
static void heap_span(uint64_t *s, uint64_t *e, uint64_t vs, uint64_t ve)
{
	if (!*s || vs < *s)
		*s = vs;
	if (ve > *e)
		*e = ve;
}

static int diff_vmas(struct rb_ctx *c, struct rb_proc *p, struct fp_rlist *fpriv, char *why, size_t len,
		     fp_error *err)
{
	(void)c;
	struct dump_vma *lv = NULL;
	size_t nlv = 0;
	if (dump_vmas_read(p->pid, false, &lv, &nlv, err))
		return -1;
	struct seg *L = calloc(nlv + 1, sizeof(*L)), *S = calloc(p->mm.n_vmas + 1, sizeof(*S));
	size_t nl = 0, ns = 0, lo = 0, so = 0;
	int rc = L && S ? 1 : fp_fail(err, ENOMEM, "out of memory");
	uint64_t lheap_s = 0, lheap_e = 0, sheap_s = 0, sheap_e = 0;
	/* everything that is not private anonymous memory must be as in SNAP */
	for (size_t i = 0; i < p->mm.n_vmas && rc == 1; i++) {
		const cr_vma *v = &p->mm.vmas[i];
		if (v->status & CR_VMA_AREA_HEAP)
			heap_span(&sheap_s, &sheap_e, v->start, v->end);
		if (v->status & (CR_VMA_ANON_SHARED | CR_VMA_AREA_MEMFD | CR_VMA_AREA_SYSVIPC) ||
		    ((v->status & CR_VMA_FILE_SHARED) && (v->prot & PROT_WRITE)))
			rc = NOT("process %d has shared writable memory at 0x%llx (not rolled back in place)", (int)p->pid,
				 (unsigned long long)v->start);
		else if (snap_anon(v))
			S[ns++] = (struct seg){ v->start, v->end, (int)v->prot };
	}
	for (size_t i = 0; i < nlv && rc == 1; i++) {
		const struct dump_vma *v = &lv[i];
		if (!strcmp(v->path, "[heap]"))
			heap_span(&lheap_s, &lheap_e, v->start, v->end);
		if (live_anon(v))
			L[nl++] = (struct seg){ v->start, v->end, perms_prot(v->perms) };
		else if (v->perms[3] == 's' && v->perms[1] == 'w')
			rc = NOT("process %d has shared writable memory at 0x%llx (not rolled back in place)", (int)p->pid,
				 (unsigned long long)v->start);
	}
	/* the others, in order: the same ranges and protections */
	for (; rc == 1; lo++, so++) {
		while (lo < nlv && live_skip(&lv[lo]))
			lo++;
		while (so < p->mm.n_vmas && snap_skip(&p->mm.vmas[so]))
			so++;
		if (lo == nlv || so == p->mm.n_vmas) {
			if (lo != nlv || so != p->mm.n_vmas)
				rc = NOT("process %d has file or special mappings that SNAP does not (or the reverse)",
					 (int)p->pid);
			break;
		}
		const struct dump_vma *l = &lv[lo];
		const cr_vma *s = &p->mm.vmas[so];
		if (l->start != s->start || l->end != s->end || perms_prot(l->perms) != (int)s->prot)
			rc = NOT("process %d: mapping %s at 0x%llx changed since SNAP", (int)p->pid,
				 l->path[0] ? l->path : "(anonymous)", (unsigned long long)l->start);
		else if ((s->status & CR_VMA_FILE_PRIVATE) && fp_rlist_add(fpriv, s->start, s->end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	}
	/* the heap moves with brk, never with munmap/mmap: brk(SNAP's) first,
	 * then the heap is where SNAP has it */
	if (rc == 1 && (lheap_s != sheap_s || lheap_e != sheap_e)) {
		if (lheap_s && sheap_s && lheap_s != sheap_s)
			rc = NOT("process %d: the heap starts elsewhere than in SNAP", (int)p->pid);
		struct rb_vma_op *o = rc == 1 ? vop_new(p) : NULL;
		if (rc == 1 && !o)
			rc = fp_fail(err, ENOMEM, "out of memory");
		if (o) {
			o->kind = RB_BRK, o->brk = p->mm.mm_brk, o->start = sheap_s, o->end = sheap_e;
			/* after brk(SNAP's): pieces up to SNAP's end stay, the last grows */
			for (size_t i = 0; i < nl && lheap_s; i++) {
				if (L[i].s < lheap_s || L[i].e > lheap_e)
					continue;
				if (sheap_s && L[i].e == lheap_e && sheap_e > lheap_e)
					L[i].e = sheap_e;
				else if (sheap_s && L[i].e > sheap_e)
					L[i].e = sheap_e;
				if (!sheap_s || L[i].s >= L[i].e)
					L[i--] = L[--nl];
			}
			if (!lheap_s && sheap_s) {
				L[nl++] = (struct seg){ sheap_s, sheap_e, PROT_READ | PROT_WRITE };
				/* its pages are new: written in full */
				if (fp_rlist_add(&p->wr_new, sheap_s, sheap_e))
					rc = fp_fail(err, ENOMEM, "out of memory");
			} else if (sheap_e > lheap_e && fp_rlist_add(&p->wr_new, lheap_e, sheap_e)) {
				rc = fp_fail(err, ENOMEM, "out of memory");
			}
		}
	}
	if (rc == 1 && anon_ops(p, L, nl, S, ns, err))
		rc = -1;
	/* re-made mappings get SNAP's pages */
	for (size_t i = 0; i < p->nvops && rc == 1; i++)
		if (p->vops[i].kind == RB_MMAP && fp_rlist_add(&p->wr_new, p->vops[i].start, p->vops[i].end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc == 1 && fp_rlist_normalize(&p->wr_new))
		rc = fp_fail(err, ENOMEM, "out of memory");
	free(L);
	free(S);
	p->lv = lv, p->nlv = nlv; /* rb_rearm's, when no mapping changes */
	return rc;
}

/* ---- pages -------------------------------------------------------------- */

/* ---- signals (fds and cwd: rollback_fds.c) ------------------------------ */

/* The set of the signals queued in q. */
static uint64_t sig_set(const cr_sigqueue *q)
{
	uint64_t m = 0;
	for (size_t i = 0; q && i < q->n_signals; i++)
		if (q->signals[i].siginfo && q->signals[i].siginfo_len >= sizeof(int)) {
			int signo;
			memcpy(&signo, q->signals[i].siginfo, sizeof(signo));
			if (signo >= 1 && signo <= 64)
				m |= 1ull << (signo - 1);
		}
	return m;
}

/* A mask line (hex) of /proc/WHO/status, WHO "PID" or "PID/task/TID". */
static uint64_t status_mask_of(const char *who, const char *key)
{
	char path[96], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", who);
	FILE *f = fopen(path, "re");
	uint64_t v = 0;
	size_t l = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, l))
			v = strtoull(line + l, NULL, 16);
	if (f)
		fclose(f);
	return v;
}

static uint64_t status_mask(pid_t pid, const char *key)
{
	char who[16];
	snprintf(who, sizeof(who), "%d", (int)pid);
	return status_mask_of(who, key);
}

static int diff_signals(struct rb_proc *p, char *why, size_t len)
{
	const cr_core *lc = NULL;
	for (size_t i = 0; i < p->nth && !lc; i++)
		if (p->th[i].core.has_tc)
			lc = &p->th[i].core;
	if (!lc)
		return 1;
	uint64_t ign = 0, cgt = 0;
	/* sigactions[] holds 1..64 without SIGKILL and SIGSTOP */
	for (size_t i = 0, sig = 1; i < lc->tc.n_sigactions; i++, sig++) {
		if (sig == 9 || sig == 19)
			sig++;
		if (sig == 9 || sig == 19)
			sig++;
		uint64_t h = lc->tc.sigactions[i].sigaction;
		if (h == 1)
			ign |= 1ull << (sig - 1);
		else if (h > 1)
			cgt |= 1ull << (sig - 1);
	}
	if (status_mask(p->pid, "SigIgn:") != ign || status_mask(p->pid, "SigCgt:") != cgt)
		return NOT("process %d changed its signal handlers since SNAP", (int)p->pid);
	/* pending signals stay as they are now: they must be SNAP's (by set;
	 * a full restore queues SNAP's own again) */
	uint64_t shared = status_mask(p->pid, "ShdPnd:");
	if (shared != sig_set(lc->tc.has_signals_s ? &lc->tc.signals_s : NULL))
		return NOT("process %d has signals pending (0x%llx) that SNAP had not, or not those SNAP had", (int)p->pid,
			   (unsigned long long)shared);
	for (size_t i = 0; i < p->nth; i++) {
		const cr_thread_core *tc = p->th[i].core.has_thread_core ? &p->th[i].core.thread_core : NULL;
		char key[64];
		snprintf(key, sizeof(key), "%d/task/%d", (int)p->pid, (int)p->th[i].tid);
		uint64_t own = status_mask_of(key, "SigPnd:");
		if (own != sig_set(tc && tc->has_signals_p ? &tc->signals_p : NULL))
			return NOT("thread %d of %d has signals pending (0x%llx) that SNAP had not, or not those SNAP had",
				   (int)p->th[i].tid, (int)p->pid, (unsigned long long)own);
	}
	return 1;
}

int rb_diff(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	/* the threads, now that they are stopped */
	size_t live = 0;
	for (size_t i = 0; i < p->pt.nthreads; i++) {
		if (p->pt.threads[i].state != FP_PT_STOPPED)
			continue;
		live++;
		bool in = false;
		for (size_t k = 0; k < p->nth; k++)
			in |= p->th[k].tid == p->pt.threads[i].tid;
		if (!in)
			return NOT("process %d: thread %d is new since SNAP", (int)p->pid, (int)p->pt.threads[i].tid);
	}
	if (live != p->nth)
		return NOT("process %d has %zu threads, SNAP has %zu", (int)p->pid, live, p->nth);
	struct fp_rlist fpriv = { 0 };
	fp_rb_mark(c->r, "d_threads");
	int rc = diff_signals(p, why, len);
	if (rc == 1)
		rc = rb_diff_timers(p, why, len, err);
	fp_rb_mark(c->r, "d_signals");
	if (rc == 1)
		rc = rb_diff_attrs(p, why, len, err);
	fp_rb_mark(c->r, "d_attrs");
	if (rc == 1)
		rc = diff_vmas(c, p, &fpriv, why, len, err);
	fp_rb_mark(c->r, "d_vmas");
	if (rc == 1)
		rc = rb_diff_vmflags(c, p, why, len, err); /* marks its own step */
	if (rc == 1)
		rc = rb_diff_pages(p, &fpriv, why, len, err); /* rollback_pages.c */
	fp_rb_mark(c->r, "d_pages");
	if (rc == 1)
		rc = rb_diff_fds(c, p, why, len, err);
	fp_rlist_free(&fpriv);
	fp_rb_mark(c->r, "d_fds");
	/* last: its injection scratch must not be there when the mappings
	 * are read (the mapping changes planned are checked against it) */
	if (rc == 1)
		rc = rb_diff_thread_attrs(p, why, len, err);
	return rc; /* the caller marks d_threadset */
}
