#include "regs_convert.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

void fp_regs_to_image(const struct user_regs_struct *r, cr_user_regs *o)
{
	o->r15 = r->r15, o->r14 = r->r14, o->r13 = r->r13, o->r12 = r->r12;
	o->bp = r->rbp, o->bx = r->rbx, o->r11 = r->r11, o->r10 = r->r10;
	o->r9 = r->r9, o->r8 = r->r8, o->ax = r->rax, o->cx = r->rcx;
	o->dx = r->rdx, o->si = r->rsi, o->di = r->rdi, o->orig_ax = r->orig_rax;
	o->ip = r->rip, o->cs = r->cs, o->flags = r->eflags, o->sp = r->rsp;
	o->ss = r->ss, o->fs_base = r->fs_base, o->gs_base = r->gs_base;
	o->ds = r->ds, o->es = r->es, o->fs = r->fs, o->gs = r->gs;
	o->has_mode = true;
	o->mode = CR_REGS_NATIVE;
}

int fp_regs_from_image(const cr_user_regs *i, struct user_regs_struct *r, fp_error *err)
{
	if (i->has_mode && i->mode != CR_REGS_NATIVE)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "the image holds a 32-bit (compat) thread; forkpoint restores 64-bit "
				    "threads only (use --engine criu)");
	memset(r, 0, sizeof(*r));
	r->r15 = i->r15, r->r14 = i->r14, r->r13 = i->r13, r->r12 = i->r12;
	r->rbp = i->bp, r->rbx = i->bx, r->r11 = i->r11, r->r10 = i->r10;
	r->r9 = i->r9, r->r8 = i->r8, r->rax = i->ax, r->rcx = i->cx;
	r->rdx = i->dx, r->rsi = i->si, r->rdi = i->di, r->orig_rax = i->orig_ax;
	r->rip = i->ip, r->cs = i->cs, r->eflags = i->flags, r->rsp = i->sp;
	r->ss = i->ss, r->fs_base = i->fs_base, r->gs_base = i->gs_base;
	r->ds = i->ds, r->es = i->es, r->fs = i->fs, r->gs = i->gs;
	return 0;
}

/* The legacy FXSAVE area (Intel SDM vol. 1, 10.5.1), 64-bit format. */
#define FX_CWD 0
#define FX_SWD 2
#define FX_TWD 4
#define FX_FOP 6
#define FX_RIP 8
#define FX_RDP 16
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST 32
#define FX_XMM 160
#define FX_SIZE 512
#define XSAVE_HDR 512

static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void st16(uint8_t *p, uint32_t v) { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); }
static void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* CRIU's xsave message arrays and the XSAVE component each one holds. */
struct comp_map {
	int feature;
	size_t bytes;
	size_t off_in_msg; /* offset of the array inside cr_xsave */
	size_t off_count;  /* offset of its n_ count */
	size_t elem;       /* element size in the message array */
};

#define CM(f, field, el)                                                             \
	{ f, sizeof(((cr_xsave *)0)->field), offsetof(cr_xsave, field),              \
	  offsetof(cr_xsave, n_##field), el }

static const struct comp_map comps[] = {
	CM(FP_XF_YMM, ymmh_space, 4),
	CM(FP_XF_BNDREGS, bndreg_state, 8),
	CM(FP_XF_BNDCSR, bndcsr_state, 8),
	CM(FP_XF_OPMASK, opmask_reg, 8),
	CM(FP_XF_ZMM_HI256, zmm_upper, 8),
	CM(FP_XF_HI16_ZMM, hi16_zmm, 8),
	CM(FP_XF_PKRU, pkru, 4),
};

int fp_xstate_to_image(const void *xsave, size_t len, const fp_xstate_layout *l, cr_fpregs *o,
		       fp_error *err)
{
	const uint8_t *b = xsave;
	if (len < FX_SIZE)
		return fp_fail(err, EINVAL, "XSAVE area of %zu bytes is shorter than the 512-byte FXSAVE area",
			       len);
	o->cwd = ld16(b + FX_CWD);
	o->swd = ld16(b + FX_SWD);
	o->twd = ld16(b + FX_TWD);
	o->fop = ld16(b + FX_FOP);
	o->rip = ld64(b + FX_RIP);
	o->rdp = ld64(b + FX_RDP);
	o->mxcsr = ld32(b + FX_MXCSR);
	o->mxcsr_mask = ld32(b + FX_MXCSR_MASK);
	memcpy(o->st_space, b + FX_ST, sizeof(o->st_space));
	o->n_st_space = 32;
	memcpy(o->xmm_space, b + FX_XMM, sizeof(o->xmm_space));
	o->n_xmm_space = 64;
	o->has_xsave = false;
	if (len < XSAVE_HDR + 64)
		return 0; /* FXSAVE only */
	cr_xsave *x = &o->xsave;
	memset(x, 0, sizeof(*x));
	x->xstate_bv = ld64(b + XSAVE_HDR);
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		const struct comp_map *c = &comps[i];
		if (!(l->xcr0 & (1ull << c->feature)) || l->size[c->feature] == 0)
			continue;
		size_t take = l->size[c->feature] < c->bytes ? l->size[c->feature] : c->bytes;
		if ((size_t)l->offset[c->feature] + take > len)
			return fp_fail(err, EINVAL,
				       "XSAVE component %d at %u+%zu lies outside the %zu-byte area",
				       c->feature, l->offset[c->feature], take, len);
		uint8_t *dst = (uint8_t *)x + c->off_in_msg;
		memset(dst, 0, c->bytes);
		memcpy(dst, b + l->offset[c->feature], take);
		*(size_t *)((uint8_t *)x + c->off_count) = c->bytes / c->elem;
	}
	o->has_xsave = true;
	return 0;
}

int fp_xstate_from_image(const cr_fpregs *in, const fp_xstate_layout *l, void *xsave, size_t len,
			 fp_error *err)
{
	uint8_t *b = xsave;
	if (len < FX_SIZE)
		return fp_fail(err, EINVAL, "XSAVE buffer of %zu bytes is too small", len);
	if (in->n_st_space != 32 || in->n_xmm_space != 64)
		return fp_fail(err, EINVAL, "corrupt FPU state in the image: %zu st words, %zu xmm words "
					    "(need 32 and 64)", in->n_st_space, in->n_xmm_space);
	memset(b, 0, len);
	st16(b + FX_CWD, in->cwd);
	st16(b + FX_SWD, in->swd);
	st16(b + FX_TWD, in->twd);
	st16(b + FX_FOP, in->fop);
	st64(b + FX_RIP, in->rip);
	st64(b + FX_RDP, in->rdp);
	st32(b + FX_MXCSR, in->mxcsr);
	st32(b + FX_MXCSR_MASK, in->mxcsr_mask);
	memcpy(b + FX_ST, in->st_space, sizeof(in->st_space));
	memcpy(b + FX_XMM, in->xmm_space, sizeof(in->xmm_space));
	uint64_t bv = (1ull << FP_XF_X87) | (1ull << FP_XF_SSE);
	if (in->has_xsave && len >= XSAVE_HDR + 64) {
		const cr_xsave *x = &in->xsave;
		for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
			const struct comp_map *c = &comps[i];
			size_t n = *(const size_t *)((const uint8_t *)x + c->off_count);
			if (n == 0 || !(x->xstate_bv & (1ull << c->feature)))
				continue;
			if (n * c->elem != c->bytes)
				return fp_fail(err, EINVAL,
					       "corrupt XSAVE component %d in the image: %zu bytes, need %zu",
					       c->feature, n * c->elem, c->bytes);
			const uint8_t *src = (const uint8_t *)x + c->off_in_msg;
			if (!(l->xcr0 & (1ull << c->feature)) || l->size[c->feature] == 0) {
				for (size_t k = 0; k < c->bytes; k++)
					if (src[k])
						return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
								    "the image uses CPU register state "
								    "(XSAVE component %d) this CPU lacks; restore "
								    "on a machine with the same CPU features",
								    c->feature);
				continue;
			}
			size_t put = l->size[c->feature] < c->bytes ? l->size[c->feature] : c->bytes;
			if ((size_t)l->offset[c->feature] + put > len)
				return fp_fail(err, EINVAL, "XSAVE buffer too small for component %d",
					       c->feature);
			memcpy(b + l->offset[c->feature], src, put);
			bv |= 1ull << c->feature;
		}
	}
	st64(b + XSAVE_HDR, bv & l->xcr0);
	return 0;
}
