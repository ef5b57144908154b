/* The ptrace machinery: take hold of every thread of a process, stop it,
 * read and write its per-thread state, and let it go again.
 *
 * Life of a handle:
 *
 *     fp_pt_proc p;
 *     if (fp_pt_seize(&p, pid, FP_PT_TIMEOUT_MS, &err))   // every thread stopped
 *             return -1;                                  // nothing left traced
 *     ... fp_pt_get_regs(p.threads[i].tid, ...), inject.h, stack.h ...
 *     fp_pt_detach(&p, &err);                             // always, also on errors
 *
 * Rules the implementation keeps (see docs/hacking.md):
 *   - PTRACE_SEIZE only, never PTRACE_ATTACH, never PTRACE_O_EXITKILL: if the
 *     tracer dies the kernel detaches and the target simply runs on.
 *   - Every wait has a deadline; a thread that does not stop in time (D state)
 *     is an error that names it, never a hang.
 *   - No signal is lost. A signal the kernel was delivering while we stopped a
 *     thread is taken out of delivery, kept in fp_pt_thread.held (its exact
 *     siginfo), and put back when the thread is resumed or detached. A dumper
 *     must treat held signals as pending (fp_pt_peek_signals lists them first).
 *   - A thread that was in group-stop (SIGSTOP, ^Z) when seized stays stopped:
 *     resume uses PTRACE_LISTEN for it and detach leaves it stopped.
 *
 * The handle is not thread-safe; ptrace requests must come from the thread
 * that seized (a kernel rule), so use a handle from one thread only. */
#ifndef FP_PTRACE_H
#define FP_PTRACE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "fp_error.h"

/* A generous default: stopping a thread costs microseconds, but a busy
 * machine may take a scheduler slice or two to run a spinning thread. */
#define FP_PT_TIMEOUT_MS 2000

/* Signals taken out of delivery per thread. In practice at most one or two:
 * a seized thread stops at the pending interrupt before dequeuing another. */
#define FP_PT_MAX_HELD 8

enum fp_pt_state {
	FP_PT_RUNNING = 0, /* seized, not (yet) in a ptrace-stop */
	FP_PT_STOPPED,     /* in a ptrace-stop: registers may be read and written */
	FP_PT_GONE,        /* exited (or became a zombie) while we held it */
};

typedef struct fp_pt_thread {
	pid_t tid;
	enum fp_pt_state state;
	bool interrupted;  /* PTRACE_INTERRUPT sent, stop not yet reported */
	bool group_stop;   /* stopped by a stop signal, not just by us */
	int nheld;
	siginfo_t held[FP_PT_MAX_HELD];
} fp_pt_thread;

typedef struct fp_pt_proc {
	pid_t pid;             /* thread group id */
	char comm[32];         /* for messages */
	size_t nthreads;       /* entries in threads[], including GONE ones */
	size_t cap;
	fp_pt_thread *threads;
	bool exited;           /* the whole process exited while we held it */
	int exit_status;       /* wait status of the leader when exited */
	int timeout_ms;        /* deadline used by resume/detach helpers */
} fp_pt_proc;

/* Checks that pid names a live user process we may trace, without touching
 * it. Fails with a message naming the reason: no such process, a thread id
 * rather than a process id, a kernel thread, a zombie, already traced (by
 * whom), or this very process. */
int fp_pt_check_traceable(pid_t pid, fp_error *err);

/* Seizes every thread of pid and stops them all. Threads created or exiting
 * meanwhile are handled (the task list is re-read until it is stable). On
 * success every live thread is FP_PT_STOPPED. On failure nothing stays traced
 * and *p needs no cleanup. timeout_ms <= 0 means FP_PT_TIMEOUT_MS. */
int fp_pt_seize(fp_pt_proc *p, pid_t pid, int timeout_ms, fp_error *err);

/* Stops every thread again after fp_pt_resume, seizing threads that appeared
 * meanwhile. */
int fp_pt_interrupt(fp_pt_proc *p, int timeout_ms, fp_error *err);

/* Lets every stopped thread run again while staying attached. Held signals
 * are delivered first. While the threads run traced, a signal sent to them
 * stops them until fp_pt_pump or fp_pt_interrupt is called: keep the time
 * between resume and the next call short, or detach instead. */
int fp_pt_resume(fp_pt_proc *p, fp_error *err);

/* Serves ptrace-stops of running threads for up to timeout_ms: forwards
 * signals, keeps group-stops stopped (PTRACE_LISTEN), notes exits. */
int fp_pt_pump(fp_pt_proc *p, int timeout_ms, fp_error *err);

/* Detaches every thread (stopping running ones first), delivers held
 * signals, and frees the handle. Safe to call on a zeroed or already detached
 * handle. Returns -1 if some thread could not be detached cleanly; the
 * handle is freed anyway. */
int fp_pt_detach(fp_pt_proc *p, fp_error *err);

/* The handle's entry for tid, or NULL. */
fp_pt_thread *fp_pt_find(fp_pt_proc *p, pid_t tid);

/* Number of threads currently FP_PT_STOPPED. */
size_t fp_pt_nstopped(const fp_pt_proc *p);

/* Singles out a thread for one-off work (injection): resumes t with
 * PTRACE_SINGLESTEP (req) or PTRACE_CONT and waits for its next stop, holding
 * any signal that the kernel tries to deliver on the way. *status gets the
 * wait status of the stop. Used by inject.c; exposed for tests and tools. */
int fp_pt_step(fp_pt_proc *p, fp_pt_thread *t, int req, int timeout_ms,
	       int *status, fp_error *err);
/* The same, but a signal-delivery-stop of want_sig (nonzero) is returned
 * as the stop instead of held: code run in the thread that ends by sending
 * itself want_sig stops there (dump_inject_blob.c). */
int fp_pt_step_to(fp_pt_proc *p, fp_pt_thread *t, int req, int want_sig, int timeout_ms,
		  int *status, fp_error *err);

/* ---- per-thread state (the thread must be FP_PT_STOPPED) ---------------- */

int fp_pt_get_regs(pid_t tid, struct user_regs_struct *r, fp_error *err);
int fp_pt_set_regs(pid_t tid, const struct user_regs_struct *r, fp_error *err);

/* Size of the NT_X86_XSTATE regset as the kernel reports it (2432 bytes on
 * the dev VM). Cached after the first call. */
int fp_pt_xstate_size(pid_t tid, size_t *size, fp_error *err);
/* Reads the XSAVE area (standard, uncompacted format: fxsave 0..511, header
 * at 512, components at their CPUID 0xD offsets). *got = bytes filled. */
int fp_pt_get_xstate(pid_t tid, void *buf, size_t len, size_t *got, fp_error *err);
/* Writes it back. When changing a component, set its bit in xstate_bv
 * (fp_xstate_bv) or the kernel loads that component's init state. */
int fp_pt_set_xstate(pid_t tid, const void *buf, size_t len, fp_error *err);

/* XSAVE components a dumper cares about (CPUID leaf 0xD sub-leaf numbers). */
enum fp_xfeature {
	FP_XF_X87 = 0, FP_XF_SSE = 1, FP_XF_YMM = 2, FP_XF_BNDREGS = 3,
	FP_XF_BNDCSR = 4, FP_XF_OPMASK = 5, FP_XF_ZMM_HI256 = 6,
	FP_XF_HI16_ZMM = 7, FP_XF_PKRU = 9, FP_XF_XTILECFG = 17,
	FP_XF_XTILEDATA = 18, FP_XF_MAX = 19,
};

typedef struct fp_xstate_layout {
	uint64_t xcr0;                  /* features the OS enabled (XGETBV 0) */
	uint32_t total_size;            /* CPUID(0xD,0).EBX: size for xcr0 */
	uint32_t offset[FP_XF_MAX];     /* byte offset in the standard format */
	uint32_t size[FP_XF_MAX];       /* 0 when the feature is absent */
} fp_xstate_layout;

/* Fills l from CPUID; x87 and SSE live in the legacy 512-byte area (x87 at
 * 0, size 160; XMM at 160, size 256). Fails if the CPU has no XSAVE. */
int fp_xstate_layout_get(fp_xstate_layout *l, fp_error *err);
/* Pointer to component f inside an XSAVE buffer of len bytes, or NULL if the
 * component is absent or does not fit. */
void *fp_xstate_component(void *buf, size_t len, const fp_xstate_layout *l, int f);
/* The xstate_bv word of the XSAVE header (offset 512). */
uint64_t *fp_xstate_bv(void *buf, size_t len);

/* Blocked signals, as a 64-bit kernel sigset (bit n-1 = signal n). */
int fp_pt_get_sigmask(pid_t tid, uint64_t *mask, fp_error *err);
int fp_pt_set_sigmask(pid_t tid, uint64_t mask, fp_error *err);

/* Pending signals of a thread (shared=false: its private queue, preceded by
 * the held signals of t if t is given) or of the whole process (shared=true:
 * the shared queue). *out is malloc'ed (free it), *n may be 0. */
int fp_pt_peek_signals(pid_t tid, const fp_pt_thread *t, bool shared,
		       siginfo_t **out, size_t *n, fp_error *err);

typedef struct fp_rseq_config {
	uint64_t abi_pointer;  /* struct rseq in the target, 0 if unregistered */
	uint32_t abi_size;
	uint32_t signature;
	uint32_t flags;
} fp_rseq_config;
int fp_pt_get_rseq(pid_t tid, fp_rseq_config *c, fp_error *err);

/* set_robust_list() head and length of a thread (no stop needed). */
int fp_pt_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len, fp_error *err);

/* Syscall-restart fix-up for an image copy of a thread's registers (never the
 * live thread: the kernel does this itself when the thread resumes). A thread
 * stopped inside a syscall that the kernel will restart has ax = -ERESTART*;
 * a restorer that returns with rt_sigreturn does no restart processing, so:
 *   -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND -> ax = orig_ax, ip -= 2
 *   -ERESTART_RESTARTBLOCK                       -> ax = -EINTR
 * Only when orig_ax >= 0 (stopped in a syscall). Returns what it did. */
enum fp_restart_fix { FP_RESTART_NONE = 0, FP_RESTART_REEXEC, FP_RESTART_EINTR };
enum fp_restart_fix fp_regs_fixup_restart(struct user_regs_struct *r);

#endif
