/* rst_proc_fork_exec: a child of a process that already holds its image's
 * memory (a hot branch's root, rst_proc_adopt).
 *
 * A plain fork of that parent would copy its page tables (16 ms for 1 GiB)
 * only to throw them away. So the parent clones with CLONE_VM (the child
 * shares its memory, nothing is copied) and the image's pid, and the child
 * execs the restorer stub at once, before any of its own code runs: from
 * there on it is a bare stub like the one rst_proc_create makes, and its
 * memory, files and threads come from its image as in any native restore.
 * Its own children are forked by it as usual (rst_proc_fork).
 *
 * The exec runs at the parent's `syscall; ret` with the path and argv in
 * the parent's scratch area (shared until the exec), under PTRACE_SYSCALL:
 * a failed exec stops at the syscall's exit instead of returning into the
 * parent's code on the parent's stack. */
#include "restore/rst_int.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptrace/pt_internal.h"
#include "ptrace/pt_mem.h"

struct exec_args {
	uint64_t argv[2], envp[1];
	char arg0[16];
	char path[64];
};

static int resume_to(rst_proc *c, int *st, const char *what, fp_error *err)
{
	if (ptrace(PTRACE_SYSCALL, c->pid, 0, 0))
		return fp_fail(err, errno, "%s: cannot resume %d: %s", what, (int)c->pid, strerror(errno));
	return rst_wait_stop(c, c->pid, rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000, st, what, err);
}

/* c: stopped at its birth, sharing parent's memory; afterwards a stub at
 * its first instruction, stopped. */
static int exec_stub(rst_proc *parent, rst_proc *c, fp_error *err)
{
	int memfd = rst_stub_memfd(err), st = 0, rc = -1;
	if (memfd < 0)
		return -1;
	struct exec_args a;
	memset(&a, 0, sizeof(a));
	snprintf(a.arg0, sizeof(a.arg0), "fp-restore-stub");
	/* our pid as the processes see it: they are in our pid namespace */
	snprintf(a.path, sizeof(a.path), "/proc/%d/fd/%d", (int)getpid(), memfd);
	uint64_t at = 0;
	if (rst_scratch_put(parent, 0, &a, sizeof(a), &at, err))
		goto out;
	a.argv[0] = at + offsetof(struct exec_args, arg0);
	if (rst_scratch_put(parent, 0, &a, sizeof(a), &at, err))
		goto out;
	struct user_regs_struct r;
	if (fp_pt_get_regs(c->pid, &r, err))
		goto out;
	r.rip = parent->sys_ip;
	r.rax = SYS_execve;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = at + offsetof(struct exec_args, path);
	r.rsi = at + offsetof(struct exec_args, argv);
	r.rdx = at + offsetof(struct exec_args, envp);
	if (fp_pt_set_regs(c->pid, &r, err) || resume_to(c, &st, "entering the stub's exec", err) ||
	    resume_to(c, &st, "the stub's exec", err))
		goto out;
	if ((st >> 8) != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		int64_t ret = fp_pt_get_regs(c->pid, &r, err) ? 0 : (int64_t)r.rax;
		fp_fail(err, ret < 0 && ret > -4096 ? (int)-ret : EIO, "process %u could not exec the restorer stub %s: %s",
			c->im->pid, a.path, ret < 0 && ret > -4096 ? strerror((int)-ret) : "unexpected stop");
		goto out;
	}
	/* One step past the exec stop, as rst_proc_create does. */
	if (ptrace(PTRACE_SINGLESTEP, c->pid, 0, 0)) {
		fp_fail(err, errno, "stepping the restorer stub %d: %s", (int)c->pid, strerror(errno));
		goto out;
	}
	if (rst_wait_stop(c, c->pid, rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000, &st, "stepping the stub", err))
		goto out;
	rc = 0;
out:
	close(memfd);
	return rc;
}

int rst_proc_fork_exec(rst_proc *parent, rst_proc *c, rst_image *im, fp_error *err)
{
	memset(c, 0, sizeof(*c));
	c->im = im;
	c->log = parent->log;
	c->deadline_ns = parent->deadline_ns;
	/* exec gives the child a table of its own: one shared is not kept */
	if (im->ids.files_id == parent->im->ids.files_id || im->ids.fs_id == parent->im->ids.fs_id)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "process %u shares its fd table or its cwd with its parent %u (CLONE_FILES/CLONE_FS)",
				    im->pid, parent->im->pid);
	int st;
	if (rst_proc_clone(parent, c, CLONE_VM, &st, err) || exec_stub(parent, c, err))
		return -1;
	if (rst_proc_prepare(c, err))
		return -1;
	/* The parent blocks every signal; a stub blocks all but SIGTRAP (see
	 * rst_proc.c's child_exec). */
	uint64_t mask = ~(1ULL << (SIGTRAP - 1)), at;
	int64_t r;
	if (rst_scratch_put(c, 0, &mask, sizeof(mask), &at, err) ||
	    rst_sys(c, c->pid, "setting the stub's signal mask", SYS_rt_sigprocmask, SIG_SETMASK, at, 0, 8, 0, 0, &r,
		    err) ||
	    rst_proc_join_group(parent, c, err))
		return -1;
	rst_logf(c->log, 3, "process %u cloned by %u and made a stub (first stop 0x%x)", im->pid, parent->im->pid, st);
	return 0;
}
