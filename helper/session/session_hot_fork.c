/* "hotfork SNAP HOLDER": a new process from a hot snapshot's frozen copy,
 * inside the pid and mount namespaces of HOLDER (a branch's helper, pid 1
 * of its namespace), with the snapshot's pid there, as HOLDER's child.
 *
 * Only the helper that keeps the copy may do this (it is the copy's
 * tracer). The memory is the copy's, shared copy-on-write: no page is
 * copied. System calls run in the copy and in its forks at a `syscall;
 * ret` found by the dump, their data in the copy's old injection page:
 *   1. the copy joins HOLDER's pid namespace for its children (setns) and
 *      makes X there (CLONE_VM: no page table copied; exit signal 0, no
 *      pid asked for);
 *   2. X forks P with set_tid = the snapshot's pid, and exits: P is
 *      orphaned to the namespace's init, HOLDER (the zombie X is reaped
 *      by a wait4 in the copy);
 *   3. P leaves the original's session or group if the root leads it,
 *      joins HOLDER's mount namespace (the branch's workspace and /proc),
 *      closes every fd it inherited (they are the original's open files:
 *      sharing their offsets would harm it) and unmaps the injection page;
 *   4. P is let go in pause() with every signal blocked, before running
 *      any of its own code; HOLDER seizes it there and restores everything
 *      but memory from the snapshot's images (restore.h, fp_restore_adopt),
 *      and for a tree the other processes, as P's children, from theirs.
 * Any failure kills what was made; the copy stays as it was (only its
 * namespace for children changed, which each fork sets again). */
#include "session_hot_fork.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "session/session_hot.h"
#include "ptrace/pt_internal.h"
#include "ptrace/pt_mem.h"
#include "ptrace/ptrace.h"

#define SYSCALL_STOP (SIGTRAP | 0x80)

static int wait_stopped(pid_t pid, int *st, fp_error *err)
{
	int w = fp_pt_wait_one(pid, fp_pt_deadline(10000), st);
	if (w != 1)
		return fp_fail(err, ETIMEDOUT, "process %d did not stop in time", (int)pid);
	if (!WIFSTOPPED(*st))
		return fp_fail(err, ESRCH, "process %d ended (wait status 0x%x)", (int)pid, *st);
	return 0;
}

/* One system call in stopped tracee pid. *child: a process it created
 * (the fork/clone event's pid). Returns 1 if the call ended the process. */
static int rsys(pid_t pid, uint64_t ip, long nr, const uint64_t a[6], int64_t *ret, pid_t *child, fp_error *err)
{
	struct user_regs_struct r;
	if (fp_pt_get_regs(pid, &r, err))
		return -1;
	r.rip = ip;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = a[0], r.rsi = a[1], r.rdx = a[2], r.r10 = a[3], r.r8 = a[4], r.r9 = a[5];
	if (fp_pt_set_regs(pid, &r, err))
		return -1;
	int st = 0;
	bool entered = false;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, 0, 0))
			return fp_fail(err, errno, "cannot resume %d: %s", (int)pid, strerror(errno));
		int w = fp_pt_wait_one(pid, fp_pt_deadline(10000), &st);
		if (w != 1)
			return fp_fail(err, ETIMEDOUT, "system call %ld in %d did not finish in time", nr, (int)pid);
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return nr == SYS_exit ? 1 : fp_fail(err, ESRCH, "%d ended in system call %ld", (int)pid, nr);
		if (WSTOPSIG(st) == SYSCALL_STOP) {
			if (entered)
				break;
			entered = true;
			continue;
		}
		int ev = st >> 16;
		if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_VFORK) {
			unsigned long msg = 0;
			ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
			if (child)
				*child = (pid_t)msg;
			continue;
		}
		return fp_fail(err, EIO, "%d stopped unexpectedly in system call %ld (wait status 0x%x)", (int)pid, nr, st);
	}
	if (fp_pt_get_regs(pid, &r, err))
		return -1;
	*ret = (int64_t)r.rax;
	return 0;
}

static int call_ok(pid_t pid, uint64_t ip, long nr, const uint64_t a[6], int64_t *ret, pid_t *child, const char *what,
		   fp_error *err)
{
	int64_t v = 0;
	if (rsys(pid, ip, nr, a, &v, child, err) < 0)
		return fp_wrap(err, "%s", what);
	if (v < 0 && v > -4096)
		return fp_fail(err, (int)-v, "%s in %d: %s", what, (int)pid, strerror((int)-v));
	if (ret)
		*ret = v;
	return 0;
}

static void kill_traced(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	int st;
	while (fp_pt_wait_one(pid, fp_pt_deadline(5000), &st) == 1 && !WIFEXITED(st) && !WIFSIGNALED(st))
		;
}

struct layout {
	char pidns[64], mntns[64];
	struct clone_args x, p;
	pid_t want;
	uint64_t all_signals;
};

int fp_hot_fork(const char *snap, pid_t holder, pid_t want, pid_t *out_pid, uint64_t *sysret, fp_error *err)
{
	const struct fp_dump_hot *h = fp_hot_find(snap);
	if (!h)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT, "snapshot '%s' is not hot (any more)", snap);
	/* A tree's root only: its children come from their images, onto
	 * stubs the root clones inside the branch (restore/rst_fork_exec.c).
	 * A copy of a child cannot become the root's child there: a process
	 * gets a parent only by being forked by it, or orphaned to it as the
	 * namespace's init, and no copy of a child descends from the root's. */
	const struct fp_dump_hot_copy *k = NULL;
	for (size_t i = 0; i < h->n && !k; i++)
		if (h->c[i].pid == want)
			k = &h->c[i];
	if (!k)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOENT, "snapshot '%s' has no frozen copy of process %d", snap,
				    (int)want);
	struct layout L;
	if (k->scratch_len < sizeof(L))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOSPC, "no room to work in the frozen copy");
	memset(&L, 0, sizeof(L));
	snprintf(L.pidns, sizeof(L.pidns), "/proc/%d/ns/pid", (int)holder);
	snprintf(L.mntns, sizeof(L.mntns), "/proc/%d/ns/mnt", (int)holder);
	L.want = want;
	/* all but SIGTRAP, which single steps raise (the kernel would reset
	 * a blocked one's handler) */
	L.all_signals = ~(1ULL << (SIGTRAP - 1));
	uint64_t at = k->scratch;
	/* X shares the copy's memory (CLONE_VM, no thread): only P's fork
	 * copies the page tables. X runs none of its code. */
	L.x.flags = CLONE_VM;
	L.x.exit_signal = 0;
	L.p.exit_signal = SIGCHLD;
	L.p.set_tid = at + offsetof(struct layout, want);
	L.p.set_tid_size = 1;
	pid_t c = k->copy, x = 0, p = 0;
	int64_t fd = -1, r = 0;
	if (fp_mem_write(c, at, &L, sizeof(L), err))
		return fp_wrap(err, "the frozen copy %d of snapshot '%s'", (int)c, snap);
	if (ptrace(PTRACE_SETOPTIONS, c, 0,
		   (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK)))
		return fp_fail(err, errno, "PTRACE_SETOPTIONS on the frozen copy %d: %s", (int)c, strerror(errno));
	uint64_t ip = k->sysret;
	uint64_t a_open_pid[6] = { at + offsetof(struct layout, pidns), O_RDONLY | O_CLOEXEC, 0, 0, 0, 0 };
	if (call_ok(c, ip, SYS_open, a_open_pid, &fd, NULL, "opening the branch's pid namespace", err))
		return -1;
	uint64_t a_setns[6] = { (uint64_t)fd, CLONE_NEWPID, 0, 0, 0, 0 }, a_close[6] = { (uint64_t)fd, 0, 0, 0, 0, 0 };
	int rc = call_ok(c, ip, SYS_setns, a_setns, NULL, NULL, "joining the branch's pid namespace", err);
	fp_error e2;
	call_ok(c, ip, SYS_close, a_close, NULL, NULL, "close", &e2);
	if (rc)
		return -1;
	int st;
	uint64_t a_clone_x[6] = { at + offsetof(struct layout, x), sizeof(struct clone_args), 0, 0, 0, 0 };
	if (call_ok(c, ip, SYS_clone3, a_clone_x, &r, &x, "forking the frozen copy into the branch", err) ||
	    (x <= 0 && (fp_fail(err, EIO, "no process from the fork of the frozen copy"), 1)) || wait_stopped(x, &st, err))
		goto fail;
	uint64_t a_clone_p[6] = { at + offsetof(struct layout, p), sizeof(struct clone_args), 0, 0, 0, 0 };
	if (call_ok(x, ip, SYS_clone3, a_clone_p, &r, &p, "forking the process with its pid in the branch", err) ||
	    (p <= 0 && (fp_fail(err, EIO, "no process from the second fork"), 1)) || wait_stopped(p, &st, err))
		goto fail;
	uint64_t a_exit[6] = { 0, 0, 0, 0, 0, 0 };
	if (rsys(x, ip, SYS_exit, a_exit, &r, NULL, err) != 1) {
		fp_wrap(err, "ending the intermediate process %d", (int)x);
		goto fail;
	}
	uint64_t a_reap[6] = { (uint64_t)x, 0, __WALL, 0, 0, 0 };
	x = -x; /* exited: only its zombie is left, reaped now */
	if (call_ok(c, ip, SYS_wait4, a_reap, NULL, NULL, "reaping the intermediate process", err))
		goto fail;
	x = 0;
	uint64_t a_open_mnt[6] = { at + offsetof(struct layout, mntns), O_RDONLY | O_CLOEXEC, 0, 0, 0, 0 };
	if (call_ok(p, ip, SYS_open, a_open_mnt, &fd, NULL, "opening the branch's mount namespace", err))
		goto fail;
	uint64_t a_setns2[6] = { (uint64_t)fd, CLONE_NEWNS, 0, 0, 0, 0 };
	uint64_t a_cr[6] = { 0, ~0U, 0, 0, 0, 0 }, a_unmap[6] = { k->area, k->area_len, 0, 0, 0, 0 };
	uint64_t a_mask[6] = { SIG_SETMASK, at + offsetof(struct layout, all_signals), 0, 8, 0, 0 };
	/* The original's session or group of which the root is the leader
	 * (its pid): left at once, as the restore would, because a member
	 * keeps that pid taken, and a rollback of the original needs it back
	 * while a spare waits (session_branch_spare.h). */
	uint64_t a_none[6] = { 0, 0, 0, 0, 0, 0 };
	long leave = getsid(c) == want ? SYS_setsid : getpgid(c) == want ? SYS_setpgid : -1;
	if (leave >= 0 && call_ok(p, ip, leave, a_none, NULL, NULL, "leaving the original's session", err))
		goto fail;
	if (call_ok(p, ip, SYS_setns, a_setns2, NULL, NULL, "joining the branch's mount namespace", err) ||
	    call_ok(p, ip, SYS_close_range, a_cr, NULL, NULL, "closing the fds shared with the original", err) ||
	    call_ok(p, ip, SYS_rt_sigprocmask, a_mask, NULL, NULL, "blocking signals", err) ||
	    call_ok(p, ip, SYS_munmap, a_unmap, NULL, NULL, "unmapping the injection page", err))
		goto fail;
	/* Let go in pause() with every signal blocked (as a restorer stub
	 * waits): the branch's helper seizes and interrupts it there. */
	struct user_regs_struct pr;
	if (fp_pt_get_regs(p, &pr, err))
		goto fail;
	pr.rip = ip;
	pr.rax = SYS_pause;
	pr.orig_rax = (unsigned long long)-1;
	if (fp_pt_set_regs(p, &pr, err))
		goto fail;
	/* A detach puts a forked child of a seized tracee into a group stop
	 * (the stop it was born in counts as one): SIGCONT ends it; the
	 * signal itself stays blocked, and the branch takes it out. */
	if (ptrace(PTRACE_DETACH, p, 0, 0) || kill(p, SIGCONT)) {
		fp_fail(err, errno, "handing %d over to the branch: %s", (int)p, strerror(errno));
		goto fail;
	}
	*out_pid = p;
	*sysret = ip;
	return 0;
fail:
	if (x < 0) { /* its zombie stays in the copy: reaped when the copy goes */
		x = 0;
	}
	kill_traced(x);
	kill_traced(p);
	return -1;
}

int fp_hot_close_fds(const struct fp_dump_hot *h, fp_error *err)
{
	uint64_t a_cr[6] = { 0, ~0U, 0, 0, 0, 0 };
	for (size_t i = 0; i < h->n; i++) {
		pid_t c = h->c[i].copy;
		if (ptrace(PTRACE_SETOPTIONS, c, 0, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)))
			return fp_fail(err, errno, "PTRACE_SETOPTIONS on the frozen copy %d: %s", (int)c, strerror(errno));
		if (call_ok(c, h->c[i].sysret, SYS_close_range, a_cr, NULL, NULL, "closing the frozen copy's fds", err))
			return -1;
	}
	return 0;
}

void fp_hot_fork_request(const char *args, int c)
{
	char snap[256], buf[1024];
	int holder = 0, want = 0;
	fp_error err;
	if (!args || sscanf(args, "%255s %d %d", snap, &holder, &want) != 3 || holder <= 0 || want <= 0) {
		snprintf(buf, sizeof(buf), "error 2\nhotfork needs SNAP HOLDER PID");
	} else {
		pid_t p = 0;
		uint64_t ip = 0;
		if (fp_hot_fork(snap, holder, want, &p, &ip, &err) < 0)
			snprintf(buf, sizeof(buf), "error %d\n%s", err.exit_code ? err.exit_code : 1, err.msg);
		else
			snprintf(buf, sizeof(buf), "ok\npid=%d\nsysret=%llu\n", (int)p, (unsigned long long)ip);
	}
	send(c, buf, strlen(buf), MSG_NOSIGNAL);
}
