/* The pre-copy's VmFlags: the mappings' flags read from smaps before the
 * stop (or after the resume) instead of walking the page tables while the
 * process is stopped. Split from dump_precopy.c, which does the copying. */
#include "dump/dump_int.h"

#include <inttypes.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- VmFlags without walking the page tables during the stop ----------- */

static bool same_vma(const struct dump_vma *a, const struct dump_vma *b)
{
	return a->start == b->start && a->end == b->end && !memcmp(a->perms, b->perms, 4) && a->pgoff == b->pgoff &&
	       a->dev == b->dev && a->ino == b->ino && !strcmp(a->path, b->path);
}

/* Both lists are sorted by address. */
static const struct dump_vma *find_vma(const struct dump_vma *v, size_t n, const struct dump_vma *want)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].start < want->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && same_vma(&v[lo], want) ? &v[lo] : NULL;
}

/* VmFlags without our own "uw" (write tracking), which comes and goes. */
static void flags_norm(const char *in, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (const char *s = in; *s;) {
		while (*s == ' ')
			s++;
		const char *e = s;
		while (*e && *e != ' ')
			e++;
		if (e > s && !(e - s == 2 && s[0] == 'u' && s[1] == 'w') && o + (size_t)(e - s) + 2 < len) {
			memcpy(out + o, s, (size_t)(e - s));
			o += (size_t)(e - s);
			out[o++] = ' ';
			out[o] = '\0';
		}
		s = e;
	}
}

/* smaps read at the stop, and (for a session's rollbacks in place,
 * dump_vmflags_keep.c) the kernel's bits of the same moment. */
static int vmas_at_stop(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	if (dump_proc_vmas(c, p, err))
		return -1;
	struct dump_kvma *k = NULL;
	size_t nk = 0;
	const char *why;
	if (c->o->track && !dump_vmflags_bpf(p->pid, &k, &nk, &why))
		dump_vmflags_note(p->vmas, p->nvmas, k, nk, k, nk);
	free(k);
	return 0;
}

int dump_precopy_vmas(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	struct dump_vma *v = NULL;
	size_t n = 0;
	/* A small process (by its mappings just before the stop): its smaps
	 * costs less at the stop than the check after the resume (a thread,
	 * and smaps read anyway). */
	uint64_t mapped = 0;
	for (size_t i = 0; i < pc->nfv; i++)
		mapped += pc->fv[i].end - pc->fv[i].start;
	if (pc->nfv && mapped < FP_SMAPS_AT_STOP_MAX && !dump_incr_shim_flags_kept(c, pc))
		return vmas_at_stop(c, p, err);
	if (dump_vmas_stopped(p, &v, &n, err))
		return -1;
	size_t missing = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dump_vma *f = find_vma(pc->fv, pc->nfv, &v[i]);
		if (f) {
			v[i].vmflags = f->vmflags;
			v[i].has_kbits = f->has_kbits;
			v[i].kbits = f->kbits;
			v[i].flags_early = true;
		} else {
			missing++;
		}
	}
	if (missing) {
		/* A mapping that is new or changed since: the exact way. */
		free(v);
		dlog(c, "%d: %zu mapping(s) changed since the pre-copy: VmFlags read now", p->pid, missing);
		return vmas_at_stop(c, p, err);
	}
	p->vmas = v;
	p->nvmas = n;
	return 0;
}

bool dump_precopy_flags_early(const struct dump_proc *p)
{
	for (size_t k = 0; p->pre && k < p->nvmas; k++)
		if (p->vmas[k].flags_early)
			return true;
	return false;
}

/* The VmFlags of p's mappings that took them from before the stop are the
 * same now, by the kernel's vm_flags (dump_vmflags_bpf.c) instead of
 * smaps: 1 if so (and p's list, as of the stop, is the next snapshot's
 * start), 0 if not known that way. */
static int flags_same_by_bits(struct dump_ctx *c, struct dump_proc *p)
{
	struct dump_kvma *k = NULL;
	size_t nk = 0;
	const char *why;
	int64_t t0 = dump_now_ns();
	if (dump_vmflags_bpf(p->pid, &k, &nk, &why)) {
		if (!c->vmflags_said++)
			dlog(c, "%d: VmFlags checked by smaps (%s)", p->pid, why);
		return 0;
	}
	int same = dump_vmflags_same(p->vmas, p->nvmas, k, nk);
	struct dump_vma *next = same && c->keep_track ? malloc((p->nvmas ? p->nvmas : 1) * sizeof(*next)) : NULL;
	if (next) {
		/* the bits are these now: the next check compares with them */
		memcpy(next, p->vmas, p->nvmas * sizeof(*next));
		free(p->pre->fv_now);
		p->pre->fv_now = next;
		p->pre->nfv_now = p->nvmas;
	}
	free(k);
	dlog(c, "%d: VmFlags %s by the kernel's flags of its %zu mappings in %.3f ms", p->pid,
	     same ? "unchanged since they were read" : "not known unchanged: smaps read", nk,
	     (double)(dump_now_ns() - t0) / 1e6);
	return same;
}

/* smaps, with the kernel's flags read on both sides of it when they can
 * be (the next check then compares bits, not smaps again). */
static int read_smaps_noted(pid_t pid, struct dump_vma **now, size_t *n)
{
	struct dump_kvma *k1 = NULL, *k2 = NULL;
	size_t n1 = 0, n2 = 0;
	const char *why;
	bool bits = dump_vmflags_bpf(pid, &k1, &n1, &why) == 0;
	int rc = dump_vmas_read(pid, true, now, n, NULL);
	if (!rc && bits && dump_vmflags_bpf(pid, &k2, &n2, &why) == 0)
		dump_vmflags_note(*now, *n, k1, n1, k2, n2);
	free(k1);
	free(k2);
	return rc;
}

int dump_precopy_flags_changed(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (!p->pre)
			continue;
		struct dump_vma *now = NULL;
		size_t n = 0;
		if (!dump_precopy_flags_early(p)) {
			/* read at the stop: exact, and the next snapshot's start */
			now = c->keep_track ? malloc((p->nvmas ? p->nvmas : 1) * sizeof(*now)) : NULL;
			if (now) {
				memcpy(now, p->vmas, p->nvmas * sizeof(*now));
				free(p->pre->fv_now);
				p->pre->fv_now = now;
				p->pre->nfv_now = p->nvmas;
			}
			continue;
		}
		if (flags_same_by_bits(c, p))
			continue;
		if (read_smaps_noted(p->pid, &now, &n))
			continue; /* gone: its snapshot is what it was */
		int changed = 0;
		for (size_t k = 0; k < p->nvmas && !changed; k++) {
			if (!p->vmas[k].flags_early)
				continue;
			const struct dump_vma *f = find_vma(now, n, &p->vmas[k]);
			char a[256], b[256];
			if (!f)
				continue; /* unmapped or merged since: not a flag change */
			flags_norm(p->vmas[k].vmflags, a, sizeof(a));
			flags_norm(f->vmflags, b, sizeof(b));
			if (strcmp(a, b)) {
				dlog(c, "%d: VmFlags of %" PRIx64 "-%" PRIx64 " changed during the dump ('%s' -> '%s')", p->pid,
				     f->start, f->end, a, b);
				changed = 1;
			}
		}
		/* the same mnemonics, but the bits taken before the stop are
		 * not known to be the stop's: none kept for a rollback */
		for (size_t k = 0; k < p->nvmas; k++)
			p->vmas[k].has_kbits = false;
		if (c->keep_track && !changed) {
			/* the flags as of this snapshot: the next one starts from them */
			free(p->pre->fv_now);
			p->pre->fv_now = now;
			p->pre->nfv_now = n;
		} else {
			free(now);
		}
		if (changed)
			return 1;
	}
	return 0;
}

size_t dump_vmas_flags_from(struct dump_vma *v, size_t n, const struct dump_vma *known, size_t nknown)
{
	size_t missing = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dump_vma *f = find_vma(known, nknown, &v[i]);
		if (f) {
			v[i].vmflags = f->vmflags;
			v[i].has_kbits = f->has_kbits;
			v[i].kbits = f->kbits;
		} else
			missing++;
	}
	return missing;
}

/* ---- 3. during the stop -------------------------------------------------- */

/* ---- the check after the resume, beside the writing --------------------- */

/* It walks every page table through smaps, ~40 ms per GiB: the images are
 * written meanwhile. */
static void *flags_check_run(void *arg)
{
	struct dump_flags_check *fc = arg;
	int64_t t0 = dump_now_ns();
	fc->changed = dump_precopy_flags_changed(fc->c);
	fc->ms = (double)(dump_now_ns() - t0) / 1e6;
	return NULL;
}

void dump_flags_check_start(struct dump_flags_check *fc, struct dump_ctx *c)
{
	fc->c = c;
	fc->changed = 0;
	bool early = false;
	for (size_t i = 0; i < c->nprocs && !early; i++)
		early = dump_precopy_flags_early(&c->procs[i]);
	/* nothing to read again (small processes): no thread to start */
	fc->started = early && pthread_create(&fc->th, NULL, flags_check_run, fc) == 0;
	if (!fc->started)
		flags_check_run(fc); /* no thread: in line */
}

int dump_flags_check_end(struct dump_flags_check *fc)
{
	int64_t t0 = dump_now_ns();
	bool thread = fc->started;
	if (fc->started)
		pthread_join(fc->th, NULL);
	fc->started = false;
	dlog(fc->c, "VmFlags check after the resume: %.3f ms (%s), waited %.3f ms for it after the writing", fc->ms,
	     thread ? "beside the writing" : "in line", (double)(dump_now_ns() - t0) / 1e6);
	return fc->changed;
}

int dump_flags_check_fail(struct dump_flags_check *fc, int rc, bool *redo, fp_error *err)
{
	if (!fc->c)
		return 0;
	int changed = dump_flags_check_end(fc);
	struct dump_ctx *c = fc->c;
	fc->c = NULL;
	if (!changed || rc)
		return 0;
	/* the flags it has were read before the stop: no longer sure */
	*redo = true;
	if (c->o->track)
		fp_track_drop(c->o->track, "a mapping's flags changed during the snapshot before");
	return fp_fail(err, EAGAIN, "a mapping's flags changed while its pages were pre-copied");
}
