/* Raw x86_64 system calls for the shim's own work.
 *
 * Why not libc: the shim's bookkeeping runs inside wrappers that may be called
 * from signal handlers, from other libraries' constructors before ours, and in
 * vfork-like children. A raw `syscall` instruction is async-signal-safe, never
 * touches errno (results are -errno), never recurses into our own wrappers
 * (libc's fstat or readlink cannot be interposed by accident) and needs no
 * symbol resolution. */
#ifndef FP_SHIM_SYS_H
#define FP_SHIM_SYS_H

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>

static inline long fp_sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define fp_sys0(n) fp_sys6((n), 0, 0, 0, 0, 0, 0)
#define fp_sys1(n, a) fp_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define fp_sys2(n, a, b) fp_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define fp_sys3(n, a, b, c) fp_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define fp_sys4(n, a, b, c, d) fp_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define fp_sys5(n, a, b, c, d, e) \
	fp_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static inline int fp_sys_failed(long r)
{
	return (unsigned long)r > -4096UL;
}

/* Turns a raw result into the libc convention for a wrapper's caller. */
static inline long fp_sys_ret(long r)
{
	if (fp_sys_failed(r)) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static inline int fp_gettid(void)
{
	return (int)fp_sys0(SYS_gettid);
}

static inline int fp_getpid(void)
{
	return (int)fp_sys0(SYS_getpid);
}

/* The kernel's sigset is 64 bits on x86_64 (not glibc's 1024-bit sigset_t). */
typedef uint64_t fp_ksigset;

static inline void fp_block_all_signals(fp_ksigset *old)
{
	fp_ksigset all = ~(fp_ksigset)0;
	fp_sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, &all, old, sizeof(fp_ksigset));
}

static inline void fp_restore_signals(const fp_ksigset *old)
{
	fp_sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, old, 0, sizeof(fp_ksigset));
}

static inline void fp_cpu_relax(void)
{
	__builtin_ia32_pause();
}

#endif
