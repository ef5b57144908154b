/* Rollback in place: the flags of the mappings it keeps must be SNAP's.
 *
 * madvise (MADV_DONTFORK, MADV_HUGEPAGE, MADV_DONTDUMP, ...) and mlock
 * change a mapping's flags in place; /proc/PID/maps does not show them,
 * and a rollback that keeps the mapping would keep the new flags. So,
 * during the stop:
 *   1. the kernel's flags of every live mapping (the dump's BPF read, ~0.1
 *      ms) against those kept at SNAP's stop (dump_vmflags_keep.c): every
 *      live mapping over a SNAP mapping must have its bits, but for the
 *      write tracking's own (VM_UFFD_MISSING and VM_UFFD_WP, which come
 *      and go with the tracking and are no part of an image);
 *   2. where a bit differs, or nothing was kept (a snapshot without the
 *      BPF iterator), smaps (which walks the page tables) against SNAP's
 *      VmaEntries: the madvise bits and mmap flags that smaps's mnemonics
 *      give, as the dump derives them (dump_vmflags_image). A difference
 *      there makes a full restore, which says which mapping;
 *   3. a mapping of SNAP with such flags that the rollback would map again
 *      (it was unmapped since) gets plain flags in place: a full restore.
 * Setting the flags back in place instead (an injected madvise per
 * mapping, undone on failure) is left for when a real program needs it:
 * these changes are rare between two steps. */
#include "session/rollback_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dump/dump_int.h"

/* VM_UFFD_MISSING, VM_UFFD_WP (include/linux/mm.h; these two bits have
 * not moved since userfaultfd came) */
#define TRACKING_BITS (0x200ull | 0x1000ull)
#define IMAGE_FLAGS (MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE)

static bool special(const cr_vma *v)
{
	return v->status & (CR_VMA_AREA_VDSO | CR_VMA_AREA_VVAR | CR_VMA_AREA_VSYSCALL);
}

static uint64_t madv_of(const cr_vma *v)
{
	return v->has_madv ? v->madv : 0;
}

/* every live mapping over each of SNAP's has its bits */
static bool bits_same(const struct dump_kvma *s, size_t ns, const struct dump_kvma *l, size_t nl)
{
	size_t j = 0;
	for (size_t i = 0; i < ns; i++) {
		while (j < nl && l[j].end <= s[i].start)
			j++;
		for (size_t k = j; k < nl && l[k].start < s[i].end; k++)
			if ((l[k].flags ^ s[i].flags) & ~TRACKING_BITS)
				return false;
	}
	return true;
}

static int by_smaps(struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	struct dump_vma *lv = NULL;
	size_t nl = 0;
	if (dump_vmas_read(p->pid, true, &lv, &nl, err))
		return -1;
	int rc = 1;
	size_t j = 0;
	for (size_t i = 0; i < p->mm.n_vmas && rc == 1; i++) {
		const cr_vma *s = &p->mm.vmas[i];
		if (special(s))
			continue;
		while (j < nl && lv[j].end <= s->start)
			j++;
		for (size_t k = j; k < nl && lv[k].start < s->end && rc == 1; k++) {
			uint32_t f;
			uint64_t m;
			dump_vmflags_image(lv[k].vmflags, &f, &m);
			if (f != (s->flags & IMAGE_FLAGS) || m != madv_of(s))
				rc = NOT("process %d: the flags of SNAP's mapping 0x%" PRIx64 "-0x%" PRIx64
					 " changed since (madvise or mlock): 0x%" PRIx64 "-0x%" PRIx64
					 " has madvise bits 0x%" PRIx64 " and mmap flags 0x%x, SNAP 0x%" PRIx64 " and 0x%x",
					 (int)p->pid, s->start, s->end, lv[k].start, lv[k].end, m, f, madv_of(s),
					 s->flags & IMAGE_FLAGS);
		}
	}
	free(lv);
	return rc;
}

/* 3: what vma ops would map again gets no flags */
static int remade_plain(struct rb_proc *p, char *why, size_t len)
{
	for (size_t i = 0; i < p->mm.n_vmas; i++) {
		const cr_vma *s = &p->mm.vmas[i];
		if (special(s) || (!madv_of(s) && !(s->flags & IMAGE_FLAGS)))
			continue;
		for (size_t k = 0; k < p->nvops; k++) {
			const struct rb_vma_op *o = &p->vops[k];
			if (o->kind == RB_MMAP && o->start < s->end && o->end > s->start)
				return NOT("process %d: the mapping at 0x%" PRIx64 " had madvise or mlock flags in SNAP "
					   "and was unmapped since (mapped again in place, it would not have them)",
					   (int)p->pid, s->start);
		}
	}
	return 1;
}

int rb_diff_vmflags(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	int rc = remade_plain(p, why, len);
	if (rc != 1)
		return rc;
	struct dump_kvma *s = NULL, *l = NULL;
	size_t ns = 0, nl = 0;
	const char *no;
	if (!dump_vmflags_kept(c->snap_dirfd, p->pid, &s, &ns) && !dump_vmflags_bpf(p->pid, &l, &nl, &no) &&
	    bits_same(s, ns, l, nl)) {
		rc = 1;
		fp_rb_mark(c->r, "d_vmflags");
	} else {
		rc = by_smaps(p, why, len, err);
		fp_rb_mark(c->r, "d_vmflags_smaps"); /* said in the steps: it costs */
	}
	free(s);
	free(l);
	return rc;
}
