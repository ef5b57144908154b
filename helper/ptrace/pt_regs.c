/* Registers of a stopped thread: general purpose, XSAVE area and its
 * CPUID layout, and the syscall-restart fix-up for image copies. */
#include "ptrace.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Kernel-internal restart codes (include/linux/errno.h); they leak into ax
 * of a thread stopped inside an interrupted syscall. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

int fp_pt_get_regs(pid_t tid, struct user_regs_struct *r, fp_error *err)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, r))
		return fp_fail(err, errno, "cannot read the registers of thread %d: PTRACE_GETREGS: %s%s", tid, strerror(errno),
			       errno == ESRCH ? " (not stopped by us, or gone)" : "");
	return 0;
}

int fp_pt_set_regs(pid_t tid, const struct user_regs_struct *r, fp_error *err)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, r))
		return fp_fail(err, errno, "cannot write the registers of thread %d: PTRACE_SETREGS: %s%s", tid, strerror(errno),
			       errno == EIO ? " (a segment register or flag value the kernel rejects)" : "");
	return 0;
}

/* The size and layout of the XSAVE area are the CPU's: asked once per
 * process (CPUID traps to the hypervisor here), safely from any thread. */
static _Atomic size_t xstate_size_cache;

int fp_pt_xstate_size(pid_t tid, size_t *size, fp_error *err)
{
	if (!xstate_size_cache) {
		/* Ask with a buffer larger than any XSAVE area (AMX is ~11 KiB);
		 * the kernel shortens iov_len to the real size. */
		size_t cap = 64 * 1024;
		void *buf = malloc(cap);
		if (!buf)
			return fp_fail(err, ENOMEM, "out of memory");
		struct iovec iov = { buf, cap };
		int rc = (int)ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov);
		int e = errno;
		free(buf);
		if (rc)
			return fp_fail(err, e, "cannot read the XSAVE area of thread %d: PTRACE_GETREGSET NT_X86_XSTATE: %s", tid,
				       strerror(e));
		xstate_size_cache = iov.iov_len;
	}
	*size = xstate_size_cache;
	return 0;
}

int fp_pt_get_xstate(pid_t tid, void *buf, size_t len, size_t *got, fp_error *err)
{
	struct iovec iov = { buf, len };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return fp_fail(err, errno, "cannot read the XSAVE area of thread %d: PTRACE_GETREGSET NT_X86_XSTATE: %s", tid,
			       strerror(errno));
	if (got)
		*got = iov.iov_len;
	return 0;
}

int fp_pt_set_xstate(pid_t tid, const void *buf, size_t len, fp_error *err)
{
	struct iovec iov = { (void *)buf, len };
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return fp_fail(err, errno,
			       "cannot write the XSAVE area of thread %d (%zu bytes): PTRACE_SETREGSET NT_X86_XSTATE: %s%s", tid,
			       len, strerror(errno),
			       errno == EINVAL ? " (bad header: xstate_bv must be a subset of xcr0, reserved bytes zero)" : "");
	return 0;
}

static fp_xstate_layout layout_once;
static int layout_once_rc;
static pthread_once_t layout_once_ctl = PTHREAD_ONCE_INIT;

static int layout_read(fp_xstate_layout *l, fp_error *err)
{
	unsigned a, b, c, d;
	memset(l, 0, sizeof(*l));
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "this CPU or kernel has no XSAVE/OSXSAVE support");
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	l->xcr0 = ((uint64_t)hi << 32) | lo;
	__cpuid_count(0xD, 0, a, b, c, d);
	l->total_size = b;
	l->offset[FP_XF_X87] = 0;
	l->size[FP_XF_X87] = 160;
	l->offset[FP_XF_SSE] = 160;
	l->size[FP_XF_SSE] = 256;
	for (int f = 2; f < FP_XF_MAX; f++) {
		if (!(l->xcr0 & (1ULL << f)))
			continue;
		__cpuid_count(0xD, f, a, b, c, d);
		l->size[f] = a;
		l->offset[f] = b;
	}
	return 0;
}

static void layout_init(void)
{
	layout_once_rc = layout_read(&layout_once, NULL);
}

int fp_xstate_layout_get(fp_xstate_layout *l, fp_error *err)
{
	pthread_once(&layout_once_ctl, layout_init);
	if (layout_once_rc)
		return layout_read(l, err); /* for its message */
	*l = layout_once;
	return 0;
}

void *fp_xstate_component(void *buf, size_t len, const fp_xstate_layout *l, int f)
{
	if (f < 0 || f >= FP_XF_MAX || !l->size[f] || (size_t)l->offset[f] + l->size[f] > len)
		return NULL;
	return (char *)buf + l->offset[f];
}

uint64_t *fp_xstate_bv(void *buf, size_t len)
{
	return len >= 520 ? (uint64_t *)((char *)buf + 512) : NULL;
}

enum fp_restart_fix fp_regs_fixup_restart(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return FP_RESTART_NONE;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		return FP_RESTART_REEXEC;
	case -ERESTART_RESTARTBLOCK:
		r->rax = (unsigned long long)-EINTR;
		return FP_RESTART_EINTR;
	default:
		return FP_RESTART_NONE;
	}
}
