/* Syscall injection through single-stepping an existing `syscall`
 * instruction of the target. */
#include "inject.h"
#include "pt_internal.h"
#include "pt_mem.h"
#include "procmap_query.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIGBIT(s) (1ULL << ((s) - 1))
#define SEARCH_CHUNK (256 * 1024)

struct xmap {
	uint64_t start, end;
	char perms[8];
	char path[256];
};

/* Looks for 0f 05 in [m->start, m->end), reading in chunks; the instruction
 * need not be on an instruction boundary of the surrounding code, only the
 * two bytes matter to the CPU. */
static int search_map(pid_t pid, const struct xmap *m, uint64_t *ip)
{
	unsigned char *buf = malloc(SEARCH_CHUNK + 1);
	int rc = -1;
	if (!buf)
		return -1;
	/* Chunks overlap by one byte so a pair split across two is found. */
	for (uint64_t a = m->start; a < m->end && rc; a += SEARCH_CHUNK) {
		size_t len = m->end - a < SEARCH_CHUNK + 1 ? (size_t)(m->end - a) : SEARCH_CHUNK + 1;
		if (fp_mem_read(pid, a, buf, len, NULL))
			break;
		unsigned char *hit = memmem(buf, len, "\x0f\x05", 2);
		if (hit) {
			*ip = a + (uint64_t)(hit - buf);
			rc = 0;
		}
	}
	free(buf);
	return rc;
}

/* Preference: vDSO (8 KiB, always there), libc text, any other text. */
static int rank_of(const char *path)
{
	return !strcmp(path, "[vdso]") ? 0 : strstr(path, "/libc.so") || strstr(path, "/libc-") ? 1 : 2;
}

struct best_maps {
	struct xmap m[3];
	bool have[3];
};

static int note_exec_map(void *arg, uint64_t start, uint64_t end, const char *name)
{
	struct best_maps *b = arg;
	int rank = rank_of(name);
	if (!b->have[rank]) {
		b->m[rank] = (struct xmap){ .start = start, .end = end };
		snprintf(b->m[rank].path, sizeof(b->m[rank].path), "%s", name);
		b->have[rank] = true;
	}
	return b->have[0]; /* nothing beats the vDSO */
}

static int find_syscall_insn(fp_inject *ij, fp_error *err)
{
	pid_t pid = ij->proc->pid;
	struct best_maps b = { 0 };
	/* The vDSO by one query, else every executable mapping: a process
	 * with many mappings is not read whole while it is stopped. */
	if ((fp_exec_maps(pid, true, note_exec_map, &b) || !b.have[0]) && fp_exec_maps(pid, false, note_exec_map, &b))
		return fp_fail(err, errno, "cannot read /proc/%d/maps: %s", pid, strerror(errno));
	struct xmap *best = b.m;
	bool *have = b.have;
	for (int r = 0; r < 3; r++) {
		if (have[r] && search_map(pid, &best[r], &ij->syscall_ip) == 0) {
			const char *base = strrchr(best[r].path, '/');
			snprintf(ij->syscall_where, sizeof(ij->syscall_where), "%s", base ? base + 1 : best[r].path);
			return 0;
		}
	}
	return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOENT,
			    "no `syscall` instruction found in any executable mapping of %d (%s): cannot run syscalls inside it",
			    pid, ij->proc->comm);
}

int fp_inject_init(fp_inject *ij, fp_pt_proc *p, fp_error *err)
{
	memset(ij, 0, sizeof(*ij));
	ij->proc = p;
	ij->timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : FP_PT_TIMEOUT_MS;
	return find_syscall_insn(ij, err);
}

void fp_inject_set_syscall_ip(fp_inject *ij, uint64_t ip)
{
	ij->syscall_ip = ip;
	snprintf(ij->syscall_where, sizeof(ij->syscall_where), "caller-given");
}

static bool ignores_sigtrap(pid_t pid)
{
	char v[32];
	if (fp_pt_status_field(pid, "SigIgn", v, sizeof(v)))
		return false;
	return strtoull(v, NULL, 16) & SIGBIT(SIGTRAP);
}

int fp_inject_begin(fp_inject *ij, pid_t tid, fp_error *err)
{
	if (ij->depth > 0) {
		if (ij->t->tid != tid)
			return fp_fail(err, EBUSY, "an injection session is open on thread %d; end it before using thread %d",
				       ij->t->tid, tid);
		ij->depth++;
		return 0;
	}
	fp_pt_thread *t = fp_pt_find(ij->proc, tid);
	if (!t || t->state != FP_PT_STOPPED)
		return fp_fail(err, EINVAL, "thread %d of %d is not seized and stopped; cannot run a syscall in it", tid,
			       ij->proc->pid);
	if (!ij->syscall_ip)
		return fp_fail(err, EINVAL, "no syscall instruction known for %d (fp_inject_init not called?)", ij->proc->pid);
	if (ignores_sigtrap(ij->proc->pid))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d (%s) ignores SIGTRAP; running code in it by single-stepping would reset that to the default action",
				    ij->proc->pid, ij->proc->comm);
	if (fp_pt_get_regs(tid, &ij->saved, err))
		return -1;
	uint64_t mask;
	if (fp_pt_get_sigmask(tid, &mask, err))
		return -1;
	ij->mask_changed = false;
	if (mask & SIGBIT(SIGTRAP)) {
		/* A blocked SIGTRAP at the step would make the kernel unblock it
		 * and reset its handler to SIG_DFL for good. */
		if (fp_pt_set_sigmask(tid, mask & ~SIGBIT(SIGTRAP), err))
			return -1;
		ij->saved_mask = mask;
		ij->mask_changed = true;
	}
	ij->t = t;
	ij->depth = 1;
	return 0;
}

int fp_inject_end(fp_inject *ij, fp_error *err)
{
	if (ij->depth <= 0)
		return 0;
	if (--ij->depth > 0)
		return 0;
	fp_pt_thread *t = ij->t;
	ij->t = NULL;
	if (t->state != FP_PT_STOPPED)
		return fp_fail(err, ESRCH, "thread %d is gone; its registers cannot be restored", t->tid);
	int rc = fp_pt_set_regs(t->tid, &ij->saved, err);
	if (ij->mask_changed && fp_pt_set_sigmask(t->tid, ij->saved_mask, rc ? NULL : err))
		rc = -1;
	return rc;
}

int fp_inject_call(fp_inject *ij, long nr, const uint64_t args[6], int64_t *ret, fp_error *err)
{
	if (ij->depth <= 0)
		return fp_fail(err, EINVAL, "fp_inject_call outside a session (call fp_inject_begin first)");
	pid_t tid = ij->t->tid;
	struct user_regs_struct r = ij->saved;
	r.rip = ij->syscall_ip;
	r.rax = (unsigned long long)nr;
	/* orig_ax = -1: no syscall in progress, so the kernel does no restart
	 * processing on our registers on the way out of the stop. */
	r.orig_rax = (unsigned long long)-1;
	if (args) {
		r.rdi = args[0];
		r.rsi = args[1];
		r.rdx = args[2];
		r.r10 = args[3];
		r.r8 = args[4];
		r.r9 = args[5];
	}
	if (fp_pt_set_regs(tid, &r, err))
		return -1;
	int st;
	if (fp_pt_step(ij->proc, ij->t, PTRACE_SINGLESTEP, ij->timeout_ms, &st, err))
		return fp_wrap(err, "injected syscall %ld in thread %d", nr, tid);
	struct user_regs_struct out;
	if (fp_pt_get_regs(tid, &out, err))
		return -1;
	if (out.rip != ij->syscall_ip + 2)
		return fp_fail(err, EIO,
			       "injected syscall %ld in thread %d stopped at 0x%llx instead of 0x%llx (wait status 0x%x); "
			       "the syscall instruction at 0x%llx (%s) did not run as expected",
			       nr, tid, out.rip, (unsigned long long)ij->syscall_ip + 2, st,
			       (unsigned long long)ij->syscall_ip, ij->syscall_where);
	*ret = (int64_t)out.rax;
	return 0;
}

int fp_inject_syscall(fp_inject *ij, pid_t tid, long nr, const uint64_t args[6], int64_t *ret, fp_error *err)
{
	if (fp_inject_begin(ij, tid, err))
		return -1;
	int rc = fp_inject_call(ij, nr, args, ret, err);
	if (fp_inject_end(ij, rc ? NULL : err))
		rc = -1;
	return rc;
}

static int check_ret(const char *what, pid_t tid, int64_t ret, fp_error *err)
{
	if (ret < 0 && ret >= -4095)
		return fp_fail(err, (int)-ret, "%s in thread %d failed: %s", what, tid, strerror((int)-ret));
	return 0;
}

int fp_inject_scratch(fp_inject *ij, size_t len, uint64_t *addr, fp_error *err)
{
	if (ij->scratch && len <= ij->scratch_len) {
		*addr = ij->scratch;
		return 0;
	}
	if (ij->depth <= 0)
		return fp_fail(err, EINVAL, "fp_inject_scratch outside a session");
	int64_t ret;
	if (fp_inject_scratch_drop(ij, err))
		return -1;
	size_t want = len < 16384 ? 16384 : (len + 4095) & ~(size_t)4095;
	uint64_t a[6] = { 0, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	if (fp_inject_call(ij, SYS_mmap, a, &ret, err) || check_ret("injected mmap of scratch memory", ij->t->tid, ret, err))
		return -1;
	ij->scratch = (uint64_t)ret;
	ij->scratch_len = want;
	*addr = ij->scratch;
	return 0;
}

int fp_inject_scratch_drop(fp_inject *ij, fp_error *err)
{
	if (!ij->scratch)
		return 0;
	if (ij->depth <= 0)
		return fp_fail(err, EINVAL, "fp_inject_scratch_drop outside a session");
	uint64_t a[6] = { ij->scratch, ij->scratch_len };
	int64_t ret;
	if (fp_inject_call(ij, SYS_munmap, a, &ret, err) ||
	    check_ret("injected munmap of scratch memory", ij->t->tid, ret, err))
		return -1;
	ij->scratch = 0;
	ij->scratch_len = 0;
	return 0;
}

int fp_inject_fini(fp_inject *ij, fp_error *err)
{
	int rc = 0;
	if (ij->depth > 0) {
		ij->depth = 1;
		rc = fp_inject_end(ij, err);
	}
	if (!ij->scratch)
		return rc;
	fp_pt_thread *t = NULL;
	for (size_t i = 0; i < ij->proc->nthreads && !t; i++)
		if (ij->proc->threads[i].state == FP_PT_STOPPED)
			t = &ij->proc->threads[i];
	if (!t)
		return rc; /* no thread left to run munmap: the process is gone */
	uint64_t a[6] = { ij->scratch, ij->scratch_len };
	int64_t ret;
	if (fp_inject_syscall(ij, t->tid, SYS_munmap, a, &ret, rc ? NULL : err) ||
	    check_ret("injected munmap of scratch memory", t->tid, ret, rc ? NULL : err))
		rc = -1;
	ij->scratch = 0;
	ij->scratch_len = 0;
	return rc;
}

/* ---- wrappers ------------------------------------------------------------ */

/* One syscall whose result comes back through scratch memory. */
static int call_out(fp_inject *ij, pid_t tid, const char *what, long nr, uint64_t a0, int out_arg, uint64_t a_other,
		    void *out, size_t out_len, int64_t *ret_out, fp_error *err)
{
	if (fp_inject_begin(ij, tid, err))
		return -1;
	uint64_t scratch;
	int64_t ret = 0;
	int rc = fp_inject_scratch(ij, out_len, &scratch, err);
	if (!rc) {
		uint64_t a[6] = { a0, a_other, 0, 0, 0, 0 };
		a[out_arg] = scratch;
		rc = fp_inject_call(ij, nr, a, &ret, err);
	}
	if (!rc)
		rc = check_ret(what, tid, ret, err);
	if (!rc)
		rc = fp_mem_read(ij->proc->pid, scratch, out, out_len, err);
	if (fp_inject_end(ij, rc ? NULL : err))
		rc = -1;
	if (ret_out)
		*ret_out = ret;
	return rc;
}

int fp_inject_get_tid_address(fp_inject *ij, pid_t tid, uint64_t *addr, fp_error *err)
{
	return call_out(ij, tid, "injected prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, 1, 0, addr,
			sizeof(*addr), NULL, err);
}

int fp_inject_get_pdeathsig(fp_inject *ij, pid_t tid, int *sig, fp_error *err)
{
	return call_out(ij, tid, "injected prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, 1, 0, sig, sizeof(*sig),
			NULL, err);
}

int fp_inject_sigaltstack(fp_inject *ij, pid_t tid, stack_t *out, fp_error *err)
{
	/* sigaltstack(NULL, &old): the output is the second argument. */
	return call_out(ij, tid, "injected sigaltstack", SYS_sigaltstack, 0, 1, 0, out, sizeof(*out), NULL, err);
}

static int simple(fp_inject *ij, pid_t tid, const char *what, long nr, uint64_t a0, uint64_t a1, int64_t *ret,
		  fp_error *err)
{
	uint64_t a[6] = { a0, a1, 0, 0, 0, 0 };
	if (fp_inject_syscall(ij, tid, nr, a, ret, err))
		return -1;
	return check_ret(what, tid, *ret, err);
}

int fp_inject_brk(fp_inject *ij, pid_t tid, uint64_t *brk, fp_error *err)
{
	int64_t ret;
	if (simple(ij, tid, "injected brk(0)", SYS_brk, 0, 0, &ret, err))
		return -1;
	*brk = (uint64_t)ret;
	return 0;
}

int fp_inject_get_dumpable(fp_inject *ij, pid_t tid, int *dumpable, fp_error *err)
{
	int64_t ret;
	if (simple(ij, tid, "injected prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE, 0, &ret, err))
		return -1;
	*dumpable = (int)ret;
	return 0;
}

int fp_inject_userfaultfd(fp_inject *ij, pid_t tid, int flags, int *fd, fp_error *err)
{
	int64_t ret;
	if (simple(ij, tid, "injected userfaultfd", SYS_userfaultfd, (uint64_t)flags, 0, &ret, err))
		return fp_wrap(err, "creating a userfaultfd inside %d (vm.unprivileged_userfaultfd or seccomp may forbid it)",
			       ij->proc->pid);
	*fd = (int)ret;
	return 0;
}

int fp_inject_close(fp_inject *ij, pid_t tid, int fd, fp_error *err)
{
	int64_t ret;
	return simple(ij, tid, "injected close", SYS_close, (uint64_t)fd, 0, &ret, err);
}

int fp_inject_umask(fp_inject *ij, pid_t tid, unsigned *mask, fp_error *err)
{
	if (fp_inject_begin(ij, tid, err))
		return -1;
	uint64_t a[6] = { 0 };
	int64_t old = 0, again = 0;
	int rc = fp_inject_call(ij, SYS_umask, a, &old, err);
	if (!rc) {
		a[0] = (uint64_t)old;
		rc = fp_inject_call(ij, SYS_umask, a, &again, err);
	}
	if (fp_inject_end(ij, rc ? NULL : err))
		rc = -1;
	if (!rc)
		*mask = (unsigned)old;
	return rc;
}

int fp_inject_getitimers(fp_inject *ij, pid_t tid, struct itimerval out[3], fp_error *err)
{
	if (fp_inject_begin(ij, tid, err))
		return -1;
	uint64_t scratch;
	int rc = fp_inject_scratch(ij, 3 * sizeof(struct itimerval), &scratch, err);
	for (int which = 0; which < 3 && !rc; which++) {
		uint64_t a[6] = { (uint64_t)which, scratch + (uint64_t)which * sizeof(struct itimerval) };
		int64_t ret;
		rc = fp_inject_call(ij, SYS_getitimer, a, &ret, err) || check_ret("injected getitimer", tid, ret, err) ? -1 : 0;
	}
	if (!rc)
		rc = fp_mem_read(ij->proc->pid, scratch, out, 3 * sizeof(struct itimerval), err);
	if (fp_inject_end(ij, rc ? NULL : err))
		rc = -1;
	return rc;
}

int fp_inject_sigactions(fp_inject *ij, pid_t tid, fp_ksigaction out[64], fp_error *err)
{
	if (fp_inject_begin(ij, tid, err))
		return -1;
	uint64_t scratch;
	int rc = fp_inject_scratch(ij, 64 * sizeof(fp_ksigaction), &scratch, err);
	for (int sig = 1; sig <= 64 && !rc; sig++) {
		uint64_t a[6] = { (uint64_t)sig, 0, scratch + (uint64_t)(sig - 1) * sizeof(fp_ksigaction), 8 };
		int64_t ret;
		rc = fp_inject_call(ij, SYS_rt_sigaction, a, &ret, err);
		if (!rc && ret < 0) {
			char what[64];
			snprintf(what, sizeof(what), "injected rt_sigaction(%d)", sig);
			rc = check_ret(what, tid, ret, err);
		}
	}
	if (!rc)
		rc = fp_mem_read(ij->proc->pid, scratch, out, 64 * sizeof(fp_ksigaction), err);
	if (fp_inject_end(ij, rc ? NULL : err))
		rc = -1;
	return rc;
}
