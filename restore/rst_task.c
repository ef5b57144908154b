/* Per-process and per-thread state: rlimits, signal handlers, itimers,
 * threads and what each thread carries (name, clear_tid, robust list, rseq,
 * sigaltstack, scheduling, pending signals, blocked mask, credentials,
 * registers). */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptrace/inject.h"
#include "ptrace/pt_mem.h"
#include "ptrace/regs_convert.h"

/* The leader's personality and child-subreaper flag (its own calls) and
 * oom_score_adj (written here, as root may: lowering it below 0 needs
 * CAP_SYS_RESOURCE, which a failure logs). 0, what a new process has, is
 * left as it is. */
static int restore_proc_attrs(rst_proc *p, fp_error *err)
{
	const cr_task_core *tc = &p->im->th[0].core.tc;
	if (tc->personality &&
	    rst_q(p, p->pid, "personality", RST_MUST, SYS_personality, tc->personality, 0, 0, 0, 0, 0, NULL, err))
		return -1;
	if (tc->has_child_subreaper && tc->child_subreaper &&
	    rst_q(p, p->pid, "prctl(PR_SET_CHILD_SUBREAPER)", RST_MUST, SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0,
		  NULL, err))
		return -1;
	if (tc->has_oom_score_adj && tc->oom_score_adj) {
		char path[64], v[16];
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)p->pid);
		int n = snprintf(v, sizeof(v), "%d", tc->oom_score_adj);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, v, (size_t)n) != n)
			rst_logf(p->log, 2, "oom_score_adj %d not restored: %s", tc->oom_score_adj, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

static int restore_rlimits(rst_proc *p, fp_error *err)
{
	const cr_task_core *tc = &p->im->th[0].core.tc;
	if (!tc->has_rlimits || tc->rlimits.n_rlimits <= RLIMIT_NOFILE)
		rst_fd_room_back(p); /* the image does not say: as it was */
	else
		p->nofile_raised = false; /* the image's, set below */
	if (!tc->has_rlimits)
		return 0;
	for (size_t i = 0; i < tc->rlimits.n_rlimits; i++) {
		struct rlimit want = { tc->rlimits.rlimits[i].cur, tc->rlimits.rlimits[i].max }, now;
		if (prlimit(p->pid, (int)i, &want, NULL) == 0)
			continue;
		/* No CAP_SYS_RESOURCE: a hard limit cannot go above what the
		 * stub inherited. Keep the soft limit as close as allowed. */
		if (errno != EPERM && errno != EINVAL)
			return fp_fail(err, errno, "setting rlimit %zu of %d: %s", i, (int)p->pid, strerror(errno));
		if (prlimit(p->pid, (int)i, NULL, &now))
			return fp_fail(err, errno, "reading rlimit %zu of %d: %s", i, (int)p->pid, strerror(errno));
		struct rlimit cl = { want.rlim_cur < now.rlim_max ? want.rlim_cur : now.rlim_max,
				     want.rlim_max < now.rlim_max ? want.rlim_max : now.rlim_max };
		if (cl.rlim_cur > cl.rlim_max)
			cl.rlim_cur = cl.rlim_max;
		if (prlimit(p->pid, (int)i, &cl, NULL))
			return fp_fail(err, errno, "setting rlimit %zu of %d: %s", i, (int)p->pid, strerror(errno));
		rst_logf(p->log, 2, "rlimit %zu: wanted %llu/%llu, got %llu/%llu (raising a hard limit needs "
				    "CAP_SYS_RESOURCE)", i, (unsigned long long)want.rlim_cur,
			 (unsigned long long)want.rlim_max, (unsigned long long)cl.rlim_cur, (unsigned long long)cl.rlim_max);
	}
	return 0;
}

static int restore_sigactions(rst_proc *p, fp_error *err)
{
	const cr_task_core *tc = &p->im->th[0].core.tc;
	size_t k = 0, set = 0;
	for (int sig = 1; sig <= 64 && k < tc->n_sigactions; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		const cr_sa *sa = &tc->sigactions[k++];
		if (!sa->sigaction && !sa->flags && !sa->mask)
			continue; /* the default, as after exec */
		fp_ksigaction ks = { sa->sigaction, sa->flags, sa->restorer, sa->mask };
		char what[64];
		snprintf(what, sizeof(what), "rt_sigaction(%d)", sig);
		if (rst_q_mem(p, p->pid, what, RST_MUST, SYS_rt_sigaction, (uint64_t)sig, 0, 0, 8, 0, 0, 1, &ks, sizeof(ks), NULL,
			      err))
			return -1;
		set++;
	}
	rst_logf(p->log, 3, "%zu signal handlers set", set);
	return 0;
}

static int restore_itimers(rst_proc *p, fp_error *err)
{
	const cr_task_core *tc = &p->im->th[0].core.tc;
	if (!tc->has_timers)
		return 0;
	const cr_itimer *it[3] = { &tc->timers.real, &tc->timers.virt, &tc->timers.prof };
	for (int w = 0; w < 3; w++) {
		if (!it[w]->vsec && !it[w]->vusec)
			continue;
		struct itimerval v = { { (time_t)it[w]->isec, (suseconds_t)it[w]->iusec },
				       { (time_t)it[w]->vsec, (suseconds_t)it[w]->vusec } };
		if (rst_q_mem(p, p->pid, "setitimer", RST_MUST, SYS_setitimer, (uint64_t)w, 0, 0, 0, 0, 0, 1, &v, sizeof(v),
			      NULL, err))
			return -1;
	}
	return 0;
}

/* Queues what thread t carries; rst_task_restore runs every thread's
 * calls at once. */
static int restore_thread(rst_proc *p, const rst_thread *t, bool leader, fp_error *err)
{
	const cr_core *c = &t->core;
	const cr_thread_core *tc = &c->thread_core;
	pid_t tid = (pid_t)t->tid;
	const char *name = tc->has_comm ? tc->comm : leader ? c->tc.comm : NULL;
	if (name && rst_q_mem(p, tid, "prctl(PR_SET_NAME)", RST_MUST, SYS_prctl, PR_SET_NAME, 0, 0, 0, 0, 0, 1, name,
			      strlen(name) + 1, NULL, err))
		return -1;
	if (rst_q(p, tid, "set_tid_address", RST_MUST, SYS_set_tid_address, c->thread_info.clear_tid_addr, 0, 0, 0, 0, 0,
		  NULL, err))
		return -1;
	if (tc->futex_rla_len && rst_q(p, tid, "set_robust_list", RST_MUST, SYS_set_robust_list, tc->futex_rla,
				       tc->futex_rla_len, 0, 0, 0, 0, NULL, err))
		return -1;
	if (tc->has_rseq_entry && tc->rseq_entry.rseq_abi_pointer) {
		const cr_rseq *q = &tc->rseq_entry;
		if (rst_q(p, tid, "registering rseq", RST_MUST, SYS_rseq, q->rseq_abi_pointer, q->rseq_abi_size, 0,
			  q->signature, 0, 0, NULL, err))
			return -1;
	}
	if (tc->has_sas && !(tc->sas.ss_flags & SS_DISABLE)) {
		stack_t ss = { .ss_sp = (void *)(uintptr_t)tc->sas.ss_sp, .ss_flags = (int)tc->sas.ss_flags,
			       .ss_size = (size_t)tc->sas.ss_size };
		if (rst_q_mem(p, tid, "sigaltstack", RST_MUST, SYS_sigaltstack, 0, 0, 0, 0, 0, 0, 0, &ss, sizeof(ss), NULL,
			      err))
			return -1;
	}
	if (tc->has_sched_policy) {
		struct sched_param sp = { .sched_priority = tc->has_sched_prio ? (int)tc->sched_prio : 0 };
		if (sched_setscheduler(tid, (int)tc->sched_policy, &sp))
			rst_logf(p->log, 2, "thread %d: scheduling policy %u not restored: %s", (int)tid, tc->sched_policy,
				 strerror(errno));
		if (tc->has_sched_nice && setpriority(PRIO_PROCESS, (id_t)tid, tc->sched_nice))
			rst_logf(p->log, 2, "thread %d: nice %d not restored: %s", (int)tid, tc->sched_nice, strerror(errno));
	}
	return 0;
}

int rst_task_restore(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	if (restore_rlimits(p, err) || restore_sigactions(p, err) || restore_itimers(p, err) ||
	    restore_proc_attrs(p, err))
		return -1;
	if (rst_proc_make_threads(p, err) || rst_posix_timers(p, err))
		return -1;
	/* Registering rseq makes the kernel write the thread's cpu id into
	 * that memory: the page data must be in place first. */
	if (p->pages_pending && rst_mem_pages_done(p, err))
		return -1;
	for (size_t i = 0; i < im->nth; i++)
		if (restore_thread(p, &im->th[i], i == 0, err))
			return fp_wrap(err, "thread %u", im->th[i].tid);
	return rst_flush(p, err);
}

static int queue_signals(rst_proc *p, pid_t tid, const cr_sigqueue *q, bool shared, fp_error *err)
{
	for (size_t i = 0; i < q->n_signals; i++) {
		const cr_siginfo *s = &q->signals[i];
		siginfo_t si;
		if (s->siginfo_len != sizeof(si))
			return fp_fail(err, EINVAL, "a pending signal of thread %d has %zu bytes of siginfo (128 expected)",
				       (int)tid, s->siginfo_len);
		memcpy(&si, s->siginfo, sizeof(si));
		/* Sent by the process to itself, so any si_code is accepted. They
		 * stay queued: the stub blocks every signal but SIGTRAP until the
		 * image's masks are set. */
		if (shared ? rst_q_mem(p, tid, "rt_sigqueueinfo", RST_MUST, SYS_rt_sigqueueinfo, (uint64_t)p->pid,
				       (uint64_t)si.si_signo, 0, 0, 0, 0, 2, &si, sizeof(si), NULL, err)
			   : rst_q_mem(p, tid, "rt_tgsigqueueinfo", RST_MUST, SYS_rt_tgsigqueueinfo, (uint64_t)p->pid,
				       (uint64_t)tid, (uint64_t)si.si_signo, 0, 0, 0, 3, &si, sizeof(si), NULL, err))
			return -1;
	}
	return 0;
}

int rst_task_finish(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	if (rst_tty_foreground(p, err))
		return -1;
	for (size_t i = 0; i < im->nth; i++) {
		const cr_core *c = &im->th[i].core;
		pid_t tid = (pid_t)im->th[i].tid;
		uint32_t pdeath = c->thread_core.has_pdeath_sig ? c->thread_core.pdeath_sig : 0;
		if (rst_q(p, tid, "prctl(PR_SET_PDEATHSIG)", RST_MUST, SYS_prctl, PR_SET_PDEATHSIG, pdeath, 0, 0, 0, 0, NULL,
			  err))
			return -1;
		if (i == 0 && c->tc.has_signals_s && queue_signals(p, tid, &c->tc.signals_s, true, err))
			return -1;
		if (c->thread_core.has_signals_p && queue_signals(p, tid, &c->thread_core.signals_p, false, err))
			return -1;
	}
	return rst_flush(p, err);
}

/* Credentials go last in every thread: once a thread is no longer root it
 * could not run the privileged steps. Securebits go first, while the thread
 * may still set them (CAP_SETPCAP), so the uid changes after them keep or
 * drop capabilities as they say (KEEP_CAPS, NO_SETUID_FIXUP); a thread whose
 * capabilities are not the restorer's gets them back after its ids
 * (rst_caps.c). */
static int restore_creds(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	for (size_t i = 0; i < im->nth; i++) {
		const cr_thread_core *tc = &im->th[i].core.thread_core;
		if (!tc->has_creds)
			continue;
		const cr_creds *cr = &tc->creds;
		pid_t tid = (pid_t)im->th[i].tid;
		bool caps;
		if (rst_caps_wanted(cr, &caps, err))
			return -1;
		uint32_t bits = caps ? rst_caps_keep_bits(cr->secbits) : cr->secbits;
		if (bits) {
			char what[96];
			snprintf(what, sizeof(what), "prctl(PR_SET_SECUREBITS, 0x%x) (thread %d)", bits, (int)tid);
			if (rst_q(p, tid, what, RST_MUST, SYS_prctl, PR_SET_SECUREBITS, bits, 0, 0, 0, 0, NULL, err))
				return -1;
		}
		bool ids = !(cr->uid == getuid() && cr->gid == getgid() && cr->euid == geteuid() &&
			     cr->egid == getegid() && cr->suid == getuid() && cr->sgid == getgid() && !cr->n_groups);
		char what[5][64];
		const char *names[5] = { "setgroups", "setresgid", "setresuid", "setfsgid", "setfsuid" };
		for (int k = 0; k < 5; k++)
			snprintf(what[k], sizeof(what[k]), "%s (credentials of thread %d)", names[k], (int)tid);
		uint32_t none = 0;
		if (ids &&
		    (rst_q_mem(p, tid, what[0], RST_MUST, SYS_setgroups, cr->n_groups, 0, 0, 0, 0, 0, 1,
			       cr->n_groups ? (const void *)cr->groups : &none, cr->n_groups ? cr->n_groups * 4 : 4, NULL,
			       err) ||
		     rst_q(p, tid, what[1], RST_MUST, SYS_setresgid, cr->gid, cr->egid, cr->sgid, 0, 0, 0, NULL, err) ||
		     rst_q(p, tid, what[2], RST_MUST, SYS_setresuid, cr->uid, cr->euid, cr->suid, 0, 0, 0, NULL, err) ||
		     rst_q(p, tid, what[3], RST_MUST, SYS_setfsgid, cr->fsgid, 0, 0, 0, 0, 0, NULL, err) ||
		     rst_q(p, tid, what[4], RST_MUST, SYS_setfsuid, cr->fsuid, 0, 0, 0, 0, 0, NULL, err)))
			return -1;
		if (caps && rst_caps_after_ids(p, tid, cr, bits, err))
			return -1;
	}
	return rst_flush(p, err);
}

/* A thread dumped inside a blocking system call was saved at its syscall
 * instruction, to run it again. Released like that, a signal sent to the
 * process in the moment before the thread runs would be handled before the
 * call is made, and the call would then block as if the signal had never
 * come: a lost wake-up the original process could not have had. So each such
 * thread is taken into the kernel (to its syscall-entry stop) before the
 * process is released; a signal arriving later interrupts the call as it
 * would have interrupted the original. */
static int enter_interrupted_syscalls(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	pid_t *tids = calloc(im->nth + 1, sizeof(*tids));
	size_t n = 0;
	if (!tids)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < im->nth; i++) {
		struct user_regs_struct regs;
		unsigned char insn[2];
		fp_error ignored;
		if (fp_regs_from_image(&im->th[i].core.thread_info.gpregs, &regs, &ignored))
			continue;
		if ((long long)regs.rax < 0 || fp_mem_read(p->pid, regs.rip, insn, sizeof(insn), &ignored) ||
		    insn[0] != 0x0f || insn[1] != 0x05)
			continue;
		tids[n++] = (pid_t)im->th[i].tid;
	}
	int rc = n ? rst_resume_to_syscall(p, tids, n, err) : 0;
	free(tids);
	if (!rc && n)
		rst_logf(p->log, 3, "%zu threads taken back into their system calls", n);
	return rc;
}

/* The last steps: credentials, scratch area gone, then through ptrace only
 * every thread's registers, FPU/vector state and blocked mask. */
int rst_task_regs(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	if (restore_creds(p, err))
		return -1;
	/* The runner's page and the scratch area in one call, single-stepped:
	 * the runner cannot go on past unmapping itself. */
	int64_t r;
	uint64_t lo = p->runner ? p->runner : p->scratch;
	if (p->scratch) {
		if (rst_step_sys(p, p->pid, SYS_munmap, lo, p->scratch + p->scratch_len - lo, 0, 0, 0, 0, &r, err))
			return -1;
		if (r < 0)
			return fp_fail(err, (int)-r, "unmapping the restorer's scratch area failed in the restored process: %s",
				       strerror((int)-r));
	}
	p->scratch = 0;
	p->runner = 0;
	fp_xstate_layout lay;
	size_t xsize = 0;
	if (fp_xstate_layout_get(&lay, err) || fp_pt_xstate_size(p->pid, &xsize, err))
		return -1;
	void *xbuf = calloc(1, xsize);
	if (!xbuf)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < im->nth && !rc; i++) {
		const cr_core *c = &im->th[i].core;
		pid_t tid = (pid_t)im->th[i].tid;
		struct user_regs_struct regs;
		uint64_t mask = i == 0 ? c->tc.blk_sigset
				       : c->thread_core.has_blk_sigset ? c->thread_core.blk_sigset : im->th[0].core.tc.blk_sigset;
		if (fp_regs_from_image(&c->thread_info.gpregs, &regs, err) ||
		    fp_xstate_from_image(&c->thread_info.fpregs, &lay, xbuf, xsize, err) ||
		    fp_pt_set_xstate(tid, xbuf, xsize, err)) {
			rc = -1;
			break;
		}
		/* No syscall in progress: the image already holds the
		 * restart fix-up, so the kernel must not apply its own. */
		regs.orig_rax = (unsigned long long)-1;
		if (fp_pt_set_regs(tid, &regs, err) || fp_pt_set_sigmask(tid, mask, err))
			rc = -1;
	}
	free(xbuf);
	if (!rc)
		rst_logf(p->log, 3, "registers of %zu threads set", im->nth);
	return rc || enter_interrupted_syscalls(p, err);
}
