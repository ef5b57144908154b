/* Shared by the two halves of the dumper's kill-safe injection:
 * dump_inject.c (the trampoline page, clones, the calls the dumper makes)
 * and dump_inject_frame.c (calls without a page of ours, from a signal
 * frame on the thread's stack). */
#ifndef FP_DUMP_INJECT_INT_H
#define FP_DUMP_INJECT_INT_H

#include <signal.h>
#include <sys/user.h>

#include "dump/dump_int.h"

#define DI_PAGE 4096u
#define DI_SAVE 2048u /* save area offset in the code page */
#define DI_LEN (8 * DI_PAGE) /* code, data page, then room for clone frames */
#define DI_FRAMES (2 * DI_PAGE)
#define SYSCALL_STOP (SIGTRAP | 0x80)

/* Save area slots (u64). */
enum { S_RAX, S_RCX, S_RDX, S_RBX, S_RBP, S_RSI, S_RDI, S_R8, S_R9, S_R10, S_R11, S_R12, S_R13, S_R14, S_R15,
       S_RSP, S_FLAGS, S_RIP, S_N };

/* The registers the thread must continue with if the dumper vanishes. */
void dinj_continuation(const struct user_regs_struct *r, uint64_t s[S_N]);
/* Runs syscall nr in stopped thread t with ip at `at` (and rsp at sp if
 * nonzero): PTRACE_SYSCALL to the entry stop, again to the exit stop. The
 * caller restores the registers. child: the call is a clone. */
int dinj_run_at_sp(struct dump_proc *p, fp_pt_thread *t, const struct user_regs_struct *base, uint64_t at,
		   uint64_t sp, long nr, const uint64_t a[6], int64_t *ret, pid_t *child, fp_error *err);
/* Tests only: FP_DUMP_TEST_CRASH=N kills the dumper just before the N-th
 * resume of the target for injected code. */
void dinj_crash_point(void);
/* One syscall without our page: 1 done (*ret), 0 not possible here (the
 * caller falls back), -1 error. */
int dinj_safe_call(struct dump_ctx *c, struct dump_proc *p, fp_pt_thread *t, uint64_t frame_at, long nr,
		   const uint64_t a[6], int64_t *ret, pid_t *child, fp_error *err);

#endif
