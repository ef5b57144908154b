/* Running system calls inside a stopped thread of a seized process.
 *
 * How: save the thread's registers, point ip at a `syscall` instruction
 * (0f 05) that already exists in the target (found once per process, in the
 * vDSO or libc text), load ax/orig_ax/arguments, PTRACE_SINGLESTEP over the
 * instruction, read ax, and restore the saved registers exactly. Because
 * orig_ax is restored too, a thread that was stopped inside a blocking
 * syscall (read, futex, nanosleep) restarts it transparently when resumed.
 *
 * Pointers: syscalls that read or write memory get a scratch mapping made
 * inside the target once (an injected anonymous mmap; writing below the
 * stack pointer could clobber a signal frame). Its bytes are moved with
 * pt_mem.h. fp_inject_fini unmaps it; a dumper must leave the range
 * [scratch, scratch + scratch_len) out of the image.
 *
 *     fp_inject ij;
 *     fp_inject_init(&ij, &proc, &err);
 *     fp_inject_brk(&ij, tid, &brk, &err);          // one-off call
 *     fp_inject_begin(&ij, tid, &err);              // or a batch:
 *     fp_inject_call(&ij, SYS_getpid, NULL, &ret, &err); ...
 *     fp_inject_end(&ij, &err);
 *     fp_inject_fini(&ij, &err);                    // before fp_pt_detach
 *
 * Caveats: a seccomp filter in the target applies to injected syscalls too.
 * The single-step trap is a SIGTRAP; the kernel would reset a blocked or
 * ignored SIGTRAP to its default action, so begin unblocks SIGTRAP for the
 * session (restored at end) and refuses a target that ignores SIGTRAP. */
#ifndef FP_INJECT_H
#define FP_INJECT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/user.h>

#include "fp_error.h"
#include "ptrace.h"

typedef struct fp_inject {
	fp_pt_proc *proc;
	uint64_t syscall_ip;     /* a `syscall` instruction in the target */
	char syscall_where[64];  /* the mapping it lives in, for messages */
	uint64_t scratch;        /* remote scratch mapping, 0 until needed */
	size_t scratch_len;
	int timeout_ms;          /* per injected syscall */
	/* the open session */
	fp_pt_thread *t;
	int depth;
	bool mask_changed;
	uint64_t saved_mask;
	struct user_regs_struct saved;
} fp_inject;

/* Finds (once) a syscall instruction in the target. p must stay seized for
 * the life of ij. ~1.5 ms for a libc search, far less for the vDSO. */
int fp_inject_init(fp_inject *ij, fp_pt_proc *p, fp_error *err);
/* Uses a caller-known syscall instruction instead (e.g. a restorer stub). */
void fp_inject_set_syscall_ip(fp_inject *ij, uint64_t ip);
/* Unmaps the scratch mapping (needs one stopped thread). */
int fp_inject_fini(fp_inject *ij, fp_error *err);

/* A session on one stopped thread: registers are saved once at begin and
 * restored at end, so a batch of calls costs one single-step each. Sessions
 * nest on the same thread (only the outermost end restores). */
int fp_inject_begin(fp_inject *ij, pid_t tid, fp_error *err);
/* Runs syscall nr with up to 6 arguments (args may be NULL). *ret is the raw
 * kernel return: >= 0 or -errno. Fails only if the call could not be run. */
int fp_inject_call(fp_inject *ij, long nr, const uint64_t args[6], int64_t *ret, fp_error *err);
int fp_inject_end(fp_inject *ij, fp_error *err);

/* begin + call + end. */
int fp_inject_syscall(fp_inject *ij, pid_t tid, long nr, const uint64_t args[6], int64_t *ret, fp_error *err);

/* Remote address of at least len bytes of scratch memory (made on first use,
 * inside the open session). */
int fp_inject_scratch(fp_inject *ij, size_t len, uint64_t *addr, fp_error *err);
/* The scratch mapping unmapped now, inside the session (one call, where
 * fp_inject_fini needs a session of its own). */
int fp_inject_scratch_drop(fp_inject *ij, fp_error *err);

/* ---- what a dumper asks for (each fails if the syscall returns -errno) -- */

/* The kernel's struct sigaction layout for rt_sigaction. */
typedef struct fp_ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
} fp_ksigaction;

int fp_inject_get_tid_address(fp_inject *ij, pid_t tid, uint64_t *addr, fp_error *err);
int fp_inject_brk(fp_inject *ij, pid_t tid, uint64_t *brk, fp_error *err);
/* out[sig-1] for sig 1..64, one session. SIGKILL/SIGSTOP read as SIG_DFL. */
int fp_inject_sigactions(fp_inject *ij, pid_t tid, fp_ksigaction out[64], fp_error *err);
int fp_inject_sigaltstack(fp_inject *ij, pid_t tid, stack_t *out, fp_error *err);
/* ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
int fp_inject_getitimers(fp_inject *ij, pid_t tid, struct itimerval out[3], fp_error *err);
int fp_inject_get_pdeathsig(fp_inject *ij, pid_t tid, int *sig, fp_error *err);
int fp_inject_get_dumpable(fp_inject *ij, pid_t tid, int *dumpable, fp_error *err);
/* umask(0) then umask(old): the target's umask is unchanged afterwards. */
int fp_inject_umask(fp_inject *ij, pid_t tid, unsigned *mask, fp_error *err);
/* userfaultfd(flags) in the target: *fd is the target's fd number. */
int fp_inject_userfaultfd(fp_inject *ij, pid_t tid, int flags, int *fd, fp_error *err);
int fp_inject_close(fp_inject *ij, pid_t tid, int fd, fp_error *err);
/* inject_fd.c, in an open session: the process's fd becomes a copy of
 * src_pid's src_fd, the same open file description (dup3 when src_pid is
 * the process itself; else pidfd_open and pidfd_getfd in the process,
 * which needs the right to ptrace src_pid). */
int fp_inject_dup_from(fp_inject *ij, pid_t src_pid, int src_fd, int fd, bool cloexec, fp_error *err);

#endif
