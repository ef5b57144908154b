/* Seize, stop, resume and detach every thread of a process. */
#include "ptrace.h"
#include "pt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYSCALL_STOP (SIGTRAP | 0x80) /* WSTOPSIG of a syscall-stop with TRACESYSGOOD */

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static int stop_event(int status)
{
	return (int)((unsigned)status >> 16);
}

fp_pt_thread *fp_pt_find(fp_pt_proc *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

size_t fp_pt_nstopped(const fp_pt_proc *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nthreads; i++)
		n += p->threads[i].state == FP_PT_STOPPED;
	return n;
}

/* Makes room for one more thread before we seize it, so that a failed
 * allocation never leaves a traced thread we do not know about. */
static int reserve_thread(fp_pt_proc *p, fp_error *err)
{
	if (p->nthreads < p->cap)
		return 0;
	size_t cap = p->cap ? 2 * p->cap : 16;
	fp_pt_thread *v = realloc(p->threads, cap * sizeof(*v));
	if (!v)
		return fp_fail(err, ENOMEM, "out of memory for the thread list of %d", p->pid);
	p->threads = v;
	p->cap = cap;
	return 0;
}

static void mark_gone(fp_pt_proc *p, fp_pt_thread *t, int status)
{
	t->state = FP_PT_GONE;
	t->interrupted = false;
	if (t->tid == p->pid) {
		p->exited = true;
		p->exit_status = status;
	}
}

/* A signal-delivery-stop: take the signal out of delivery and keep its
 * siginfo so it can be put back later. Returns 0, or -1 if there is no room
 * (the caller decides what to do) or the thread vanished. */
static int hold_signal(fp_pt_thread *t)
{
	if (t->nheld >= FP_PT_MAX_HELD)
		return -1;
	siginfo_t si;
	if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si))
		return -1;
	t->held[t->nheld++] = si;
	return 0;
}

/* Handles one wait status of a thread we interrupted and wait to see
 * stopped. On return t is STOPPED, GONE, or (resumed, still waiting)
 * RUNNING. */
static void on_interrupt_status(fp_pt_proc *p, fp_pt_thread *t, int status)
{
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		mark_gone(p, t, status);
		return;
	}
	if (!WIFSTOPPED(status))
		return;
	int sig = WSTOPSIG(status);
	if (stop_event(status) == PTRACE_EVENT_STOP) {
		/* Interrupt-stop (SIGTRAP) or group-stop (a stop signal). */
		t->state = FP_PT_STOPPED;
		t->interrupted = false;
		t->group_stop = is_stop_signal(sig);
		return;
	}
	int deliver = 0;
	if (stop_event(status) == 0 && sig != SYSCALL_STOP && hold_signal(t))
		deliver = sig; /* no room to hold it: deliver now rather than lose it */
	/* The interrupt is still pending: the thread stops again right away. */
	if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)deliver) && errno == ESRCH)
		mark_gone(p, t, 0);
}

/* Waits until no interrupted thread is RUNNING any more. */
static int wait_stopped(fp_pt_proc *p, int64_t deadline, fp_error *err)
{
	unsigned idle = 0;
	for (;;) {
		size_t waiting = 0;
		bool progress = false;
		for (size_t i = 0; i < p->nthreads; i++) {
			fp_pt_thread *t = &p->threads[i];
			if (t->state != FP_PT_RUNNING || !t->interrupted)
				continue;
			int st;
			pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
			if (r == t->tid) {
				progress = true;
				on_interrupt_status(p, t, st);
			} else if (r < 0 && errno == ECHILD) {
				progress = true;
				mark_gone(p, t, 0);
			}
			if (t->state == FP_PT_RUNNING)
				waiting++;
		}
		if (!waiting)
			return 0;
		if (fp_pt_now_ns() >= deadline) {
			for (size_t i = 0; i < p->nthreads; i++) {
				fp_pt_thread *t = &p->threads[i];
				if (t->state != FP_PT_RUNNING || !t->interrupted)
					continue;
				char why[128];
				fp_pt_describe_thread(p->pid, t->tid, why, sizeof(why));
				return fp_fail(err, ETIMEDOUT,
					       "thread %d of %d (%s) did not stop within the deadline (%s, %zu thread(s) late); "
					       "it is probably in an uninterruptible sleep (D state: disk, NFS, a hung device): try again later or raise the timeout",
					       t->tid, p->pid, p->comm, why, waiting);
			}
		}
		if (progress)
			idle = 0;
		else
			fp_pt_backoff(idle++);
	}
}

static int seize_error(fp_pt_proc *p, pid_t tid, int e, fp_error *err)
{
	char val[32] = "0";
	if (e == EPERM && fp_pt_status_field(tid, "TracerPid", val, sizeof(val)) == 0 && atoi(val)) {
		char tcomm[32];
		pid_t tracer = (pid_t)atoi(val);
		fp_pt_comm(tracer, tcomm, sizeof(tcomm));
		return fp_fail_code(err, FP_EXIT_PERM, EBUSY,
				    "cannot trace %d (%s): thread %d is already traced by %d (%s); detach the other tracer (gdb, strace, another forkpoint) first",
				    p->pid, p->comm, tid, tracer, tcomm);
	}
	if (e == EPERM) {
		char scope[16] = "?";
		FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
		if (f) {
			if (!fgets(scope, sizeof(scope), f))
				snprintf(scope, sizeof(scope), "?");
			scope[strcspn(scope, "\n")] = '\0';
			fclose(f);
		}
		return fp_fail(err, EPERM,
			       "not permitted to trace %d (%s) (PTRACE_SEIZE of thread %d: EPERM); run forkpoint as root or as the target's user "
			       "with CAP_SYS_PTRACE, check kernel.yama.ptrace_scope (now %s; 0 or 1 needed), and note that setuid or non-dumpable programs cannot be traced",
			       p->pid, p->comm, tid, scope);
	}
	return fp_fail(err, e, "cannot seize thread %d of %d (%s): PTRACE_SEIZE: %s", tid, p->pid, p->comm, strerror(e));
}

/* Seizes and interrupts every listed thread we do not hold yet, waits for
 * them to stop, and repeats until a listing shows no new thread: once every
 * known thread is stopped, nobody is left to create one. */
static int seize_new_threads(fp_pt_proc *p, int64_t deadline, fp_error *err)
{
	for (;;) {
		pid_t *tids;
		size_t n, added = 0;
		if (fp_pt_list_tasks(p->pid, &tids, &n)) {
			if (errno == ENOENT || errno == ESRCH)
				break; /* whole process gone: judged below */
			return fp_fail(err, errno, "cannot list /proc/%d/task: %s", p->pid, strerror(errno));
		}
		for (size_t i = 0; i < n; i++) {
			pid_t tid = tids[i];
			char st;
			if (fp_pt_find(p, tid))
				continue;
			if (reserve_thread(p, err)) {
				free(tids);
				return -1;
			}
			if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD)) {
				int e = errno;
				if (e == ESRCH)
					continue;
				/* The kernel refuses to seize an exited thread (a zombie
				 * leader whose threads live on) with EPERM. */
				if (e == EPERM && (fp_pt_stat(p->pid, tid, &st, NULL) || st == 'Z' || st == 'X'))
					continue;
				free(tids);
				return seize_error(p, tid, e, err);
			}
			fp_pt_thread *t = &p->threads[p->nthreads++];
			memset(t, 0, sizeof(*t));
			t->tid = tid;
			t->state = FP_PT_RUNNING;
			/* A failed interrupt means the thread is dying; its exit is
			 * reported to us by waitpid like a stop would be. */
			ptrace(PTRACE_INTERRUPT, tid, 0, 0);
			t->interrupted = true;
			added++;
		}
		free(tids);
		if (!added)
			break;
		if (wait_stopped(p, deadline, err))
			return -1;
	}
	if (!fp_pt_nstopped(p)) {
		if (p->exited)
			return fp_fail(err, ESRCH, "%d (%s) exited while it was being seized (wait status 0x%x); nothing to do",
				       p->pid, p->comm, p->exit_status);
		return fp_fail(err, ESRCH, "%d (%s) has no live thread left to seize (it exited or is exiting)", p->pid, p->comm);
	}
	return 0;
}

int fp_pt_seize(fp_pt_proc *p, pid_t pid, int timeout_ms, fp_error *err)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : FP_PT_TIMEOUT_MS;
	if (fp_pt_check(pid, p->comm, sizeof(p->comm), err))
		return -1;
	if (seize_new_threads(p, fp_pt_deadline(p->timeout_ms), err)) {
		fp_pt_detach(p, NULL);
		return -1;
	}
	return 0;
}

int fp_pt_interrupt(fp_pt_proc *p, int timeout_ms, fp_error *err)
{
	int64_t deadline = fp_pt_deadline(timeout_ms > 0 ? timeout_ms : p->timeout_ms);
	for (size_t i = 0; i < p->nthreads; i++) {
		fp_pt_thread *t = &p->threads[i];
		if (t->state != FP_PT_RUNNING || t->interrupted)
			continue;
		ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
		t->interrupted = true;
	}
	if (wait_stopped(p, deadline, err) || seize_new_threads(p, deadline, err))
		return fp_wrap(err, "interrupt %d", p->pid);
	return 0;
}

/* Puts t's held signals back into its queue and delivers them with their
 * original siginfo: tgkill queues each again; when the kernel stops the
 * thread to deliver it, PTRACE_SETSIGINFO restores the original siginfo and
 * the signal is passed on. Ends with t detached (detach) or running. */
static int release_held(fp_pt_proc *p, fp_pt_thread *t, bool detach, fp_error *err)
{
	int64_t deadline = fp_pt_deadline(p->timeout_ms);
	uint64_t mask = 0;
	bool matched[FP_PT_MAX_HELD] = { false };
	int left = 0, nheld = t->nheld, rc = 0;
	ptrace(PTRACE_GETSIGMASK, t->tid, (void *)sizeof(mask), &mask);
	for (int i = 0; i < nheld; i++) {
		int sig = t->held[i].si_signo;
		syscall(SYS_tgkill, p->pid, t->tid, sig);
		/* A blocked signal stays queued; its siginfo is then ours, the
		 * best the kernel lets us do. */
		if (mask & (1ULL << (sig - 1)))
			matched[i] = true;
		else
			left++;
	}
	t->nheld = 0;
	int deliver = 0;
	bool stopped = true; /* in a ptrace-stop we may detach from */
	while (left > 0) {
		int st;
		if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)deliver)) {
			stopped = false;
			break;
		}
		deliver = 0;
		int r = fp_pt_wait_one(t->tid, deadline, &st);
		if (r == 0) {
			/* Not delivered in time (handler masks it?): stop it again;
			 * the signals stay queued. */
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			r = fp_pt_wait_one(t->tid, fp_pt_deadline(p->timeout_ms), &st);
			if (r != 1 || !WIFSTOPPED(st)) {
				rc = fp_fail(err, ETIMEDOUT, "thread %d of %d did not stop again after re-queuing its held signals",
					     t->tid, p->pid);
				stopped = false;
			}
			break;
		}
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			mark_gone(p, t, r < 0 ? 0 : st);
			return 0;
		}
		if (stop_event(st) != 0 || WSTOPSIG(st) == SYSCALL_STOP)
			continue; /* interrupt or group stop: pass through */
		int sig = WSTOPSIG(st);
		deliver = sig;
		for (int i = 0; i < nheld; i++) {
			if (!matched[i] && t->held[i].si_signo == sig) {
				ptrace(PTRACE_SETSIGINFO, t->tid, 0, &t->held[i]);
				matched[i] = true;
				left--;
				break;
			}
		}
	}
	if (!stopped) {
		t->state = FP_PT_RUNNING;
		return rc;
	}
	long req = detach ? PTRACE_DETACH : (t->group_stop && !deliver ? PTRACE_LISTEN : PTRACE_CONT);
	if (ptrace(req, t->tid, 0, (void *)(long)deliver) && errno != ESRCH && !rc)
		rc = fp_fail(err, errno, "cannot %s thread %d of %d: %s", detach ? "detach" : "resume", t->tid, p->pid,
			     strerror(errno));
	t->state = detach ? FP_PT_GONE : FP_PT_RUNNING;
	return rc;
}

int fp_pt_resume(fp_pt_proc *p, fp_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		fp_pt_thread *t = &p->threads[i];
		if (t->state != FP_PT_STOPPED)
			continue;
		if (t->nheld) {
			if (release_held(p, t, false, err))
				rc = -1;
			continue;
		}
		long req = t->group_stop ? PTRACE_LISTEN : PTRACE_CONT;
		if (req == PTRACE_LISTEN) {
			if (ptrace(PTRACE_LISTEN, t->tid, 0, 0) == 0) {
				t->state = FP_PT_RUNNING;
				continue;
			}
			/* LISTEN needs an event-stop (EIO otherwise), but we ran
			 * code in the thread and it sits in another stop: let it
			 * trap into its group-stop again first. */
			int st;
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			if (ptrace(PTRACE_CONT, t->tid, 0, 0) == 0 &&
			    fp_pt_wait_one(t->tid, fp_pt_deadline(p->timeout_ms), &st) == 1 && WIFSTOPPED(st) &&
			    stop_event(st) == PTRACE_EVENT_STOP)
				t->group_stop = is_stop_signal(WSTOPSIG(st));
			req = t->group_stop ? PTRACE_LISTEN : PTRACE_CONT;
		}
		if (ptrace(req, t->tid, 0, 0)) {
			if (errno == ESRCH) {
				mark_gone(p, t, 0);
				continue;
			}
			if (!rc)
				rc = fp_fail(err, errno, "cannot resume thread %d of %d: %s", t->tid, p->pid, strerror(errno));
			continue;
		}
		t->state = FP_PT_RUNNING;
	}
	return rc;
}

int fp_pt_pump(fp_pt_proc *p, int timeout_ms, fp_error *err)
{
	(void)err;
	int64_t deadline = fp_pt_deadline(timeout_ms);
	unsigned idle = 0;
	do {
		bool progress = false;
		for (size_t i = 0; i < p->nthreads; i++) {
			fp_pt_thread *t = &p->threads[i];
			if (t->state != FP_PT_RUNNING || t->interrupted)
				continue;
			int st;
			pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
			if (r != t->tid) {
				if (r < 0 && errno == ECHILD)
					mark_gone(p, t, 0);
				continue;
			}
			progress = true;
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				mark_gone(p, t, st);
				continue;
			}
			if (!WIFSTOPPED(st))
				continue;
			int sig = WSTOPSIG(st);
			long req = PTRACE_CONT;
			long data = 0;
			if (stop_event(st) == PTRACE_EVENT_STOP) {
				t->group_stop = is_stop_signal(sig);
				if (t->group_stop)
					req = PTRACE_LISTEN;
			} else if (stop_event(st) == 0 && sig != SYSCALL_STOP) {
				data = sig; /* forward the signal, as if untraced */
			}
			if (ptrace(req, t->tid, 0, (void *)data) && errno == ESRCH)
				mark_gone(p, t, 0);
		}
		if (progress)
			idle = 0;
		else
			fp_pt_backoff(idle++);
	} while (fp_pt_now_ns() < deadline);
	return 0;
}

int fp_pt_detach(fp_pt_proc *p, fp_error *err)
{
	int rc = 0;
	if (!p->threads)
		return 0;
	if (p->timeout_ms <= 0)
		p->timeout_ms = FP_PT_TIMEOUT_MS;
	/* PTRACE_DETACH needs a ptrace-stop: stop running threads first. */
	bool running = false;
	for (size_t i = 0; i < p->nthreads; i++) {
		fp_pt_thread *t = &p->threads[i];
		if (t->state != FP_PT_RUNNING)
			continue;
		running = true;
		if (!t->interrupted) {
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			t->interrupted = true;
		}
	}
	if (running && wait_stopped(p, fp_pt_deadline(p->timeout_ms), err)) {
		fp_wrap(err, "detach %d: some threads stay traced until this process exits", p->pid);
		rc = -1;
	}
	for (size_t i = 0; i < p->nthreads; i++) {
		fp_pt_thread *t = &p->threads[i];
		if (t->state != FP_PT_STOPPED)
			continue;
		if (t->nheld) {
			if (release_held(p, t, true, rc ? NULL : err))
				rc = -1;
			continue;
		}
		if (ptrace(PTRACE_DETACH, t->tid, 0, 0) && errno != ESRCH && !rc)
			rc = fp_fail(err, errno, "cannot detach thread %d of %d: %s", t->tid, p->pid, strerror(errno));
		t->state = FP_PT_GONE;
	}
	free(p->threads);
	p->threads = NULL;
	p->nthreads = p->cap = 0;
	return rc;
}

int fp_pt_step(fp_pt_proc *p, fp_pt_thread *t, int req, int timeout_ms, int *status, fp_error *err)
{
	return fp_pt_step_to(p, t, req, 0, timeout_ms, status, err);
}

int fp_pt_step_to(fp_pt_proc *p, fp_pt_thread *t, int req, int want_sig, int timeout_ms, int *status, fp_error *err)
{
	int64_t deadline = fp_pt_deadline(timeout_ms > 0 ? timeout_ms : p->timeout_ms);
	if (t->state != FP_PT_STOPPED)
		return fp_fail(err, EINVAL, "thread %d of %d is not stopped", t->tid, p->pid);
	if (ptrace(req, t->tid, 0, 0))
		return fp_fail(err, errno, "cannot resume thread %d of %d: %s", t->tid, p->pid, strerror(errno));
	t->state = FP_PT_RUNNING;
	int event_stops = 0;
	for (;;) {
		int st;
		int r = fp_pt_wait_one(t->tid, deadline, &st);
		if (r == 0) {
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			t->interrupted = true;
			wait_stopped(p, fp_pt_deadline(p->timeout_ms), NULL);
			char why[128];
			fp_pt_describe_thread(p->pid, t->tid, why, sizeof(why));
			return fp_fail(err, ETIMEDOUT, "thread %d of %d did not come back within %d ms (%s)", t->tid, p->pid,
				       timeout_ms, why);
		}
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			mark_gone(p, t, r < 0 ? 0 : st);
			return fp_fail(err, ESRCH, "thread %d of %d exited while we ran it (wait status 0x%x)", t->tid, p->pid,
				       r < 0 ? 0 : st);
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st);
		if (stop_event(st) == 0 && sig != SIGTRAP && sig != SYSCALL_STOP && sig != want_sig) {
			/* The kernel delivers a pending signal before running our
			 * code: hold it and go on. */
			if (hold_signal(t)) {
				t->state = FP_PT_STOPPED;
				return fp_fail(err, EAGAIN, "thread %d of %d has more than %d signals arriving; cannot run code in it now",
					       t->tid, p->pid, FP_PT_MAX_HELD);
			}
			if (ptrace(req, t->tid, 0, 0)) {
				t->state = FP_PT_STOPPED;
				return fp_fail(err, errno, "cannot resume thread %d of %d: %s", t->tid, p->pid, strerror(errno));
			}
			continue;
		}
		if (stop_event(st) == PTRACE_EVENT_STOP && ++event_stops <= 3) {
			/* A pending interrupt or a group-stop re-trapping (a
			 * process stopped by SIGSTOP re-reports its stop once the
			 * thread runs): resume again toward our step. */
			t->group_stop = is_stop_signal(sig) || t->group_stop;
			if (ptrace(req, t->tid, 0, 0) == 0)
				continue;
		}
		t->state = FP_PT_STOPPED;
		if (stop_event(st) == PTRACE_EVENT_STOP)
			t->group_stop = is_stop_signal(sig);
		*status = st;
		return 0;
	}
}
