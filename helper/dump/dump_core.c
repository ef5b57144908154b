/* Per-thread state (core-<tid>.img): registers, FPU, signals, rseq, robust
 * list, creds; and the leader's task-wide part (sigactions, rlimits,
 * itimers, personality). Runs while the process is stopped. */
#include "dump/dump_int.h"
#include "dump/dump_attrs.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"
#include "ptrace/regs_convert.h"
#include "images/criu_io.h"

/* Limit r of pid from /proc/PID/limits (one line per limit, in RLIMIT_*
 * order after a heading): 0, or -1 with errno. */
static int proc_limit(pid_t pid, int r, struct rlimit *rl)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	FILE *f = fopen(path, "re");
	int rc = -1, n = -2; /* the heading is line -1 */
	while (f && n < r && fgets(line, sizeof(line), f))
		n++;
	if (f && n == r && strlen(line) > 26) {
		char cur[32], max[32];
		if (sscanf(line + 26, "%31s %31s", cur, max) == 2) {
			rl->rlim_cur = strcmp(cur, "unlimited") ? strtoull(cur, NULL, 10) : RLIM_INFINITY;
			rl->rlim_max = strcmp(max, "unlimited") ? strtoull(max, NULL, 10) : RLIM_INFINITY;
			rc = 0;
		}
	}
	if (f)
		fclose(f);
	if (rc)
		errno = EPERM;
	return rc;
}


int dump_read_rlimit(pid_t pid, int r, cr_rlimit *out)
{
	struct rlimit rl;
	/* prlimit on another user's process needs CAP_SYS_RESOURCE;
	 * /proc/PID/limits tells anyone */
	if (prlimit(pid, (__rlimit_resource_t)r, NULL, &rl) && (errno != EPERM || proc_limit(pid, r, &rl)))
		return -1;
	out->cur = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
	out->max = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : rl.rlim_max;
	return 0;
}

static int parse_ids4(const char *v, uint32_t out[4])
{
	unsigned a, b, c, d;
	if (sscanf(v, "%u %u %u %u", &a, &b, &c, &d) != 4)
		return -1;
	out[0] = a, out[1] = b, out[2] = c, out[3] = d;
	return 0;
}

static void cap_words(const char *v, uint32_t w[2], size_t *n)
{
	uint64_t x = strtoull(v, NULL, 16);
	w[0] = (uint32_t)x;
	w[1] = (uint32_t)(x >> 32);
	*n = 2;
}

int dump_creds_parse(char *buf, pid_t pid, pid_t tid, cr_creds *cr, fp_error *err)
{
	bool have_uid = false, have_gid = false;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *k = line, *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		uint32_t ids[4];
		if (!strcmp(k, "Uid") && !parse_ids4(v, ids)) {
			cr->uid = ids[0], cr->euid = ids[1], cr->suid = ids[2], cr->fsuid = ids[3];
			have_uid = true;
		} else if (!strcmp(k, "Gid") && !parse_ids4(v, ids)) {
			cr->gid = ids[0], cr->egid = ids[1], cr->sgid = ids[2], cr->fsgid = ids[3];
			have_gid = true;
		} else if (!strcmp(k, "Groups")) {
			size_t n = 0;
			for (const char *s = v; *s;) {
				char *end;
				unsigned long g = strtoul(s, &end, 10);
				if (end == s)
					break;
				uint32_t *ng = realloc(cr->groups, (n + 1) * sizeof(uint32_t));
				if (!ng)
					return fp_fail(err, ENOMEM, "out of memory");
				cr->groups = ng;
				cr->groups[n++] = (uint32_t)g;
				s = end;
			}
			cr->n_groups = n;
		} else if (!strcmp(k, "CapInh"))
			cap_words(v, cr->cap_inh, &cr->n_cap_inh);
		else if (!strcmp(k, "CapPrm"))
			cap_words(v, cr->cap_prm, &cr->n_cap_prm);
		else if (!strcmp(k, "CapEff"))
			cap_words(v, cr->cap_eff, &cr->n_cap_eff);
		else if (!strcmp(k, "CapBnd"))
			cap_words(v, cr->cap_bnd, &cr->n_cap_bnd);
		else if (!strcmp(k, "CapAmb"))
			cap_words(v, cr->cap_amb, &cr->n_cap_amb);
		else if (!strcmp(k, "NoNewPrivs")) {
			cr->has_no_new_privs = true;
			cr->no_new_privs = (uint32_t)atoi(v);
		} else if (!strcmp(k, "Seccomp")) {
			int mode = atoi(v);
			if (mode != 0)
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
						    "thread %d of %d runs under seccomp (mode %d); dumping seccomp filters is not "
						    "supported yet (use `criu dump` for this process)",
						    tid, pid, mode);
		}
	}
	if (!have_uid || !have_gid)
		return fp_fail(err, EIO, "no Uid/Gid lines in /proc/%d/task/%d/status", pid, tid);
	/* Securebits have no /proc interface: the thread's own prctl tells
	 * them (dump_core.c sets them from its injected facts). */
	cr->secbits = 0;
	return 0;
}

/* Creds and seccomp from /proc/<tid>/status. */
static int read_creds(pid_t pid, pid_t tid, cr_thread_core *tc, fp_error *err)
{
	char path[96], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	if (dump_read_proc(path, buf, sizeof(buf)) <= 0)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	return dump_creds_parse(buf, pid, tid, &tc->creds, err);
}

/* If ip is inside the thread's rseq critical section, the kernel would
 * abort it on resume; a restorer does not, so move ip to the abort
 * handler in the image copy. */
static void rseq_fixup(struct dump_ctx *c, pid_t pid, pid_t tid, const fp_rseq_config *rc, cr_user_regs *g)
{
	uint64_t cs = 0;
	if (fp_mem_read(pid, rc->abi_pointer + 8, &cs, sizeof(cs), NULL) || !cs)
		return;
	struct {
		uint32_t version, flags;
		uint64_t start_ip, post_commit_offset, abort_ip;
	} d;
	if (fp_mem_read(pid, cs, &d, sizeof(d), NULL))
		return;
	if (g->ip >= d.start_ip && g->ip < d.start_ip + d.post_commit_offset) {
		dlog(c, "thread %d: ip 0x%" PRIx64 " inside an rseq critical section; image ip -> abort 0x%" PRIx64, tid,
		     g->ip, d.abort_ip);
		g->ip = d.abort_ip;
	}
}

void dump_read_comm(pid_t pid, pid_t tid, char *out, size_t len)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	long n = dump_read_proc(path, out, len);
	if (n <= 0)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

static int to_sigqueue(const siginfo_t *si, size_t n, cr_sigqueue *q, fp_error *err)
{
	q->signals = calloc(n, sizeof(cr_siginfo));
	if (!q->signals)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		q->signals[i].siginfo = malloc(sizeof(siginfo_t));
		if (!q->signals[i].siginfo)
			return fp_fail(err, ENOMEM, "out of memory");
		memcpy(q->signals[i].siginfo, &si[i], sizeof(siginfo_t));
		q->signals[i].siginfo_len = sizeof(siginfo_t);
		q->n_signals = i + 1;
	}
	return 0;
}

static int thread_state(struct dump_ctx *c, struct dump_proc *p, size_t idx, struct dinj_facts *f, fp_error *err)
{
	struct dump_thread *t = &p->th[idx];
	pid_t tid = t->tid;
	bool leader = idx == 0;
	cr_core *core = &t->core;
	cr_core_init(core, leader);
	cr_thread_info *ti = &core->thread_info;
	cr_thread_core *tc = &core->thread_core;

	struct user_regs_struct r;
	if (fp_pt_get_regs(tid, &r, err))
		return -1;
	struct user_regs_struct img = r;
	enum fp_restart_fix fix = fp_regs_fixup_restart(&img);
	fp_regs_to_image(&img, &ti->gpregs);
	dlogv(c, "thread %d: ip 0x%llx sp 0x%llx orig_ax %lld ax %lld%s", tid, r.rip, r.rsp, (long long)r.orig_rax,
	      (long long)r.rax, fix == FP_RESTART_REEXEC ? " (syscall re-executed on restore)" :
			       fix == FP_RESTART_EINTR ? " (syscall interrupted on restore: EINTR)" : "");

	size_t xs = 0, got = 0;
	if (fp_pt_xstate_size(tid, &xs, err))
		return -1;
	uint8_t *xbuf = calloc(1, xs);
	if (!xbuf)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = fp_pt_get_xstate(tid, xbuf, xs, &got, err);
	fp_xstate_layout lay;
	if (!rc)
		rc = fp_xstate_layout_get(&lay, err);
	if (!rc)
		rc = fp_xstate_to_image(xbuf, got, &lay, &ti->fpregs, err);
	free(xbuf);
	if (rc)
		return fp_wrap(err, "FPU state of thread %d", tid);

	uint64_t mask;
	if (fp_pt_get_sigmask(tid, &mask, err))
		return -1;
	tc->has_blk_sigset = true;
	tc->blk_sigset = mask;

	fp_pt_thread *pt = fp_pt_find(&p->pt, tid);
	siginfo_t *sig = NULL;
	size_t nsig = 0;
	if (fp_pt_peek_signals(tid, pt, false, &sig, &nsig, err))
		return -1;
	if (nsig) {
		tc->has_signals_p = true;
		rc = to_sigqueue(sig, nsig, &tc->signals_p, err);
		dlog(c, "thread %d: %zu pending signal(s)", tid, nsig);
	}
	free(sig);
	if (rc)
		return -1;

	fp_rseq_config rs;
	if (fp_pt_get_rseq(tid, &rs, err))
		return -1;
	if (rs.abi_pointer) {
		tc->has_rseq_entry = true;
		tc->rseq_entry.rseq_abi_pointer = rs.abi_pointer;
		tc->rseq_entry.rseq_abi_size = rs.abi_size;
		tc->rseq_entry.signature = rs.signature;
		rseq_fixup(c, p->pid, tid, &rs, &ti->gpregs);
	}

	uint64_t head = 0, hlen = 0;
	if (fp_pt_get_robust_list(tid, &head, &hlen, err))
		return -1;
	tc->futex_rla = head;
	tc->futex_rla_len = (uint32_t)hlen;

	/* the leader's run also reads the process's facts (leader_state) */
	if (dinj_facts(c, p, tid, mask, leader, f, err))
		return -1;
	ti->clear_tid_addr = f->tid_addr;
	stack_t ss = f->ss;
	int pds = f->pdeath;
	tc->has_sas = true;
	tc->sas.ss_sp = (uint64_t)(uintptr_t)ss.ss_sp;
	tc->sas.ss_size = ss.ss_size;
	tc->sas.ss_flags = (uint32_t)ss.ss_flags;
	if (pds) {
		tc->has_pdeath_sig = true;
		tc->pdeath_sig = (uint32_t)pds;
	}

	if (read_creds(p->pid, tid, tc, err))
		return -1;
	tc->creds.secbits = (uint32_t)f->secbits;
	dump_read_comm(p->pid, tid, tc->comm, sizeof(tc->comm));
	tc->has_comm = tc->comm[0] != '\0';

	if (dump_read_sched(tid, &tc->sched_policy, &tc->sched_prio, &tc->sched_nice))
		tc->has_sched_policy = tc->has_sched_prio = tc->has_sched_nice = true;
	return 0;
}

bool dump_read_sched(pid_t tid, uint32_t *policy, uint32_t *prio, int32_t *nice)
{
	int pol = sched_getscheduler(tid);
	struct sched_param sp;
	if (pol < 0 || sched_getparam(tid, &sp))
		return false;
	errno = 0;
	int n = getpriority(PRIO_PROCESS, (id_t)tid);
	if (errno)
		return false;
	*policy = (uint32_t)(pol & ~SCHED_RESET_ON_FORK);
	*prio = (uint32_t)sp.sched_priority;
	*nice = n;
	return true;
}

static uint64_t read_hex_file(const char *path, uint64_t dflt)
{
	char buf[64];
	if (dump_read_proc(path, buf, sizeof(buf)) <= 0)
		return dflt;
	return strtoull(buf, NULL, 16);
}

static int leader_state(struct dump_ctx *c, struct dump_proc *p, const struct dinj_facts *f, fp_error *err)
{
	pid_t pid = p->pid;
	cr_core *core = &p->th[0].core;
	cr_task_core *tc = &core->tc;
	char path[64], buf[1024];

	/* A job-control stopped process (SIGSTOP, ^Z) stays stopped after a
	 * restore: CRIU's TASK_STOPPED. */
	tc->task_state = CR_TASK_ALIVE;
	for (size_t i = 0; i < p->pt.nthreads; i++)
		if (p->pt.threads[i].tid == pid && p->pt.threads[i].group_stop)
			tc->task_state = CR_TASK_STOPPED;
	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	tc->personality = (uint32_t)read_hex_file(path, 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (dump_read_proc(path, buf, sizeof(buf)) > 0) {
		char *q = strrchr(buf, ')');
		unsigned long flags = 0;
		if (q && sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1)
			tc->flags = (uint32_t)flags;
	}
	tc->blk_sigset = core->thread_core.blk_sigset;
	snprintf(tc->comm, sizeof(tc->comm), "%s", core->thread_core.comm[0] ? core->thread_core.comm : p->comm);

	if (dump_posix_timers(c, p, &tc->timers, err))
		return fp_wrap(err, "%d (%s): POSIX timers", pid, p->comm);

	const struct itimerval *it = f->it;
	const fp_ksigaction *sa = f->sa;
	p->mm.mm_brk = f->brk;
	p->mm.dumpable = f->dumpable;
	p->mm.has_dumpable = true;
	/* recorded when set, as CRIU does: a supervisor (tini, a shell's job
	 * runner) that adopts its orphaned grandchildren goes on doing so */
	if (f->subreaper) {
		tc->has_child_subreaper = true;
		tc->child_subreaper = true;
	}
	cr_itimer *dst[3] = { &tc->timers.real, &tc->timers.virt, &tc->timers.prof };
	for (int i = 0; i < 3; i++) {
		dst[i]->isec = (uint64_t)it[i].it_interval.tv_sec;
		dst[i]->iusec = (uint64_t)it[i].it_interval.tv_usec;
		dst[i]->vsec = (uint64_t)it[i].it_value.tv_sec;
		dst[i]->vusec = (uint64_t)it[i].it_value.tv_usec;
	}
	tc->has_timers = true;

	tc->has_rlimits = true;
	tc->rlimits.n_rlimits = CR_RLIMITS;
	for (int r = 0; r < CR_RLIMITS; r++)
		if (dump_read_rlimit(pid, r, &tc->rlimits.rlimits[r]))
			return fp_fail(err, errno, "prlimit(%d, %d): %s", pid, r, strerror(errno));

	size_t k = 0;
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		cr_sa *e = &tc->sigactions[k++];
		e->sigaction = sa[sig - 1].handler;
		e->flags = sa[sig - 1].flags;
		e->restorer = sa[sig - 1].restorer;
		e->mask = sa[sig - 1].mask;
		e->has_compat_sigaction = true;
		e->compat_sigaction = false;
	}
	tc->n_sigactions = k;

	siginfo_t *sig = NULL;
	size_t nsig = 0;
	if (fp_pt_peek_signals(pid, NULL, true, &sig, &nsig, err))
		return -1;
	int rc = 0;
	if (nsig) {
		tc->has_signals_s = true;
		rc = to_sigqueue(sig, nsig, &tc->signals_s, err);
		dlog(c, "%d: %zu shared pending signal(s)", pid, nsig);
	}
	free(sig);
	if (rc)
		return -1;

	snprintf(path, sizeof(path), "/proc/%d/loginuid", pid);
	if (dump_read_proc(path, buf, sizeof(buf)) > 0) {
		tc->has_loginuid = true;
		tc->loginuid = (uint32_t)strtoul(buf, NULL, 10);
	}
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	if (dump_read_proc(path, buf, sizeof(buf)) > 0) {
		int adj = atoi(buf);
		if (adj) {
			tc->has_oom_score_adj = true;
			tc->oom_score_adj = adj;
		}
	}
	return 0;
}

int dump_proc_cores(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	int64_t t0 = dump_now_ns();
	if (dinj_init(c, p, err))
		return fp_wrap(err, "preparing syscall injection in %d", p->pid);
	dlog(c, "%d: injection page ready in %.3f ms (syscall at 0x%" PRIx64 " in %s)", p->pid,
	     (double)(dump_now_ns() - t0) / 1e6, p->ij.syscall_ip, p->ij.syscall_where);
	struct dinj_facts lf, tf; /* the leader's, the others' */
	for (size_t i = 0; i < p->nth; i++)
		if (thread_state(c, p, i, i == 0 ? &lf : &tf, err))
			return fp_wrap(err, "state of thread %d of %d", p->th[i].tid, p->pid);
	if (leader_state(c, p, &lf, err))
		return fp_wrap(err, "task state of %d", p->pid);
	return 0;
}

int dump_write_cores(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	for (size_t i = 0; i < p->nth; i++)
		if (cr_write_core(c->dirfd, (uint32_t)p->th[i].tid, &p->th[i].core, err))
			return -1;
	return 0;
}
