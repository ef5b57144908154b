/* Registers and XSAVE round trips on a spinning thread: read a known ymm3
 * pattern, write xmm0 / the upper half of ymm0 / r12, and let the target
 * observe the new values (its loop ends only when it sees all three). */
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#define MAGIC1 0x1111222233334444ULL
#define MAGIC2 0x5555666677778888ULL
#define MAGIC3 0x0badc0ffee0ddf00ULL

int main(void)
{
	pt_child c;
	char line[256];
	fp_error err;
	fp_error_clear(&err);
	fp_xstate_layout lay;
	if (fp_xstate_layout_get(&lay, &err))
		SKIP("%s", err.msg);
	if (!(lay.xcr0 & 4) || !lay.size[FP_XF_YMM])
		SKIP("no AVX state enabled (xcr0 0x%llx)", (unsigned long long)lay.xcr0);
	printf("xcr0 0x%llx, CPUID total %u; YMM at %u (%u bytes), opmask at %u, ZMM_Hi256 at %u, PKRU at %u\n",
	       (unsigned long long)lay.xcr0, lay.total_size, lay.offset[FP_XF_YMM], lay.size[FP_XF_YMM],
	       lay.offset[FP_XF_OPMASK], lay.offset[FP_XF_ZMM_HI256], lay.offset[FP_XF_PKRU]);
	CHECK(lay.offset[FP_XF_YMM] == 576 && lay.size[FP_XF_YMM] == 256);

	if (pt_spawn(&c, "pt_spin", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0);
	if (!strcmp(line, "noavx")) {
		pt_finish(&c, 5000);
		SKIP("target CPU has no AVX");
	}
	unsigned long long start = 0, end = 0;
	CHECK(sscanf(line, "ready %llx %llx", &start, &end) == 2);

	/* Stop it inside the loop (it gets there right after printing). */
	fp_pt_proc p;
	struct user_regs_struct r;
	int inside = 0;
	double deadline = pt_now_us() + 10e6;
	while (!inside && pt_now_us() < deadline) {
		if (fp_pt_seize(&p, c.pid, 5000, &err)) {
			CHECKF(0, "seize: %s", err.msg);
			break;
		}
		if (fp_pt_get_regs(c.pid, &r, &err) == 0 && r.rip >= start && r.rip < end)
			inside = 1;
		else
			fp_pt_detach(&p, &err);
	}
	CHECK(inside);
	if (!inside) {
		pt_kill(&c);
		return fp_test_done();
	}
	pid_t tid = c.pid;

	/* GP round trip: write back what we read, read again, same bytes. */
	struct user_regs_struct r2;
	CHECK(fp_pt_set_regs(tid, &r, &err) == 0);
	CHECK(fp_pt_get_regs(tid, &r2, &err) == 0);
	CHECK(!memcmp(&r, &r2, sizeof(r)));
	CHECK(r.fs_base != 0); /* glibc TLS */

	size_t xs = 0, got = 0;
	CHECK(fp_pt_xstate_size(tid, &xs, &err) == 0);
	printf("NT_X86_XSTATE size %zu\n", xs);
	CHECK(xs >= 576 + 256);
	unsigned char *x = calloc(1, xs), *y = calloc(1, xs);
	CHECK(fp_pt_get_xstate(tid, x, xs, &got, &err) == 0 && got == xs);

	/* ymm3 = pattern: low half in the legacy XMM area, high in YMM. */
	static const uint64_t pattern[4] = { 0x0101010102020202ULL, 0x0303030304040404ULL, 0x0505050506060606ULL,
					     0x0707070708080808ULL };
	uint8_t *ymm = fp_xstate_component(x, xs, &lay, FP_XF_YMM);
	uint8_t *xmm = fp_xstate_component(x, xs, &lay, FP_XF_SSE);
	CHECK(ymm && xmm);
	if (ymm && xmm) {
		CHECK(!memcmp(xmm + 3 * 16, &pattern[0], 16));
		CHECK(!memcmp(ymm + 3 * 16, &pattern[2], 16));
		/* Set xmm0[63:0] and ymm0[191:128]. */
		uint64_t m1 = MAGIC1, m2 = MAGIC2;
		memcpy(xmm, &m1, 8);
		memcpy(ymm, &m2, 8);
		*fp_xstate_bv(x, xs) |= (1ULL << FP_XF_SSE) | (1ULL << FP_XF_YMM);
		CHECKF(fp_pt_set_xstate(tid, x, xs, &err) == 0, "%s", err.msg);
		CHECK(fp_pt_get_xstate(tid, y, xs, &got, &err) == 0);
		uint8_t *ymm2 = fp_xstate_component(y, xs, &lay, FP_XF_YMM);
		CHECK(!memcmp(y + 160, &m1, 8) && ymm2 && !memcmp(ymm2, &m2, 8));
	}
	r.r12 = MAGIC3;
	CHECK(fp_pt_set_regs(tid, &r, &err) == 0);
	CHECK(fp_pt_detach(&p, &err) == 0);

	/* The target sees the values and leaves its loop. */
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "ok"), "target said '%s'", line);
	CHECK(pt_finish(&c, 10000) == 0);
	free(x);
	free(y);

	/* The restart fix-up, as a pure function. */
	struct user_regs_struct f = { 0 };
	f.orig_rax = 0; /* read */
	f.rax = (unsigned long long)-512;
	f.rip = 0x1002;
	CHECK(fp_regs_fixup_restart(&f) == FP_RESTART_REEXEC && f.rax == 0 && f.rip == 0x1000);
	f.orig_rax = 230;
	f.rax = (unsigned long long)-516;
	f.rip = 0x2002;
	CHECK(fp_regs_fixup_restart(&f) == FP_RESTART_EINTR && f.rax == (unsigned long long)-4 && f.rip == 0x2002);
	f.orig_rax = (unsigned long long)-1;
	f.rax = (unsigned long long)-512;
	CHECK(fp_regs_fixup_restart(&f) == FP_RESTART_NONE && f.rax == (unsigned long long)-512);
	f.orig_rax = 1;
	f.rax = 5;
	CHECK(fp_regs_fixup_restart(&f) == FP_RESTART_NONE && f.rax == 5);
	return fp_test_done();
}
