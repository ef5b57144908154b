/* A thread's facts in one run of the thread instead of one stop pair per
 * syscall.
 *
 * dinj_call drives every injected syscall with PTRACE_SYSCALL: two stops
 * and two wake-ups each, ~11 per thread, each a trip through the scheduler
 * (on a loaded machine a whole time slice). Here the dumper writes a small
 * program into the injection page that makes all the calls a thread's core
 * needs, stores each result in the data page, and ends by sending the
 * thread a signal whose action is to be ignored:
 *
 *     for each call: mov eax, nr; mov rdi.., rsi.., rdx.., r10..; syscall;
 *                    mov [result i], rax
 *     getpid; gettid; tgkill(pid, tid, SIG)      <- the dumper's stop
 *     jmp <the trampoline's way back>            (dump_inject.c)
 *
 * It runs with PTRACE_CONT; while traced, the signal is queued although
 * ignored, and its delivery is a signal-delivery-stop: the dumper takes the
 * results there and puts the thread's registers back. If the dumper dies at
 * any moment, nothing traces the thread: the calls only read, the signal is
 * dropped (its action is to ignore it: SIG_DFL for SIGURG, SIGWINCH and
 * SIGCHLD, or SIG_IGN), and the jump takes the thread back where it was with
 * its registers, as the trampoline does for a single call. getpid and gettid
 * run inside: right in a pid namespace too.
 *
 * SIG is one of those three that has no handler and is not blocked in the
 * thread (else it would not stop us, or would run the process's handler);
 * when none is, or the thread is stopped by job control, the facts are
 * asked call by call as before. An instance of SIG sent by someone else
 * while the program runs is dropped as well: exactly what its action would
 * have done. */
#include "dump/dump_inject_int.h"
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ptrace/pt_mem.h"

#define BLOB_AT (DI_LEN - DI_PAGE) /* the last page: clone frames stay below */
#define RES_OFF 3072u              /* results in the data page, 8 bytes each */
#define RES_MAX ((DI_PAGE - RES_OFF) / 8)
#define SUB_OFF 192u               /* the child-subreaper flag (an int) */
#define SA_OFF 256u                /* sigactions (32 bytes each), then itimers */
#define IT_OFF (SA_OFF + 64u * 32u)

struct blob {
	uint8_t b[DI_PAGE];
	size_t n;
	bool full;
	uint64_t at; /* address of b[0] in the target */
	unsigned nres;
	const char *what[RES_MAX];
};

static void emit(struct blob *e, const void *p, size_t n)
{
	if (e->n + n > sizeof(e->b)) {
		e->full = true;
		return;
	}
	memcpy(e->b + e->n, p, n);
	e->n += n;
}

/* mov REG, imm: the 5-byte zero-extending form when it fits in 32 bits. */
static void mov_imm(struct blob *e, int reg, uint64_t v)
{
	/* reg: x86 register number (rax 0, rdx 2, rsi 6, rdi 7, r10 10) */
	uint8_t op[10];
	size_t n = 0;
	if (v <= UINT32_MAX) {
		if (reg >= 8)
			op[n++] = 0x41;
		op[n++] = (uint8_t)(0xb8 + (reg & 7));
		uint32_t v32 = (uint32_t)v;
		memcpy(op + n, &v32, 4);
		n += 4;
	} else {
		op[n++] = reg >= 8 ? 0x49 : 0x48;
		op[n++] = (uint8_t)(0xb8 + (reg & 7));
		memcpy(op + n, &v, 8);
		n += 8;
	}
	emit(e, op, n);
}

static void sys(struct blob *e)
{
	static const uint8_t s[] = { 0x0f, 0x05 };
	emit(e, s, 2);
}

/* One call whose result lands in result slot e->nres. */
static void call(struct blob *e, uint64_t data, const char *what, long nr, int nargs, uint64_t a0, uint64_t a1,
		 uint64_t a2, uint64_t a3)
{
	if (e->nres >= RES_MAX) {
		e->full = true;
		return;
	}
	static const int regs[4] = { 7, 6, 2, 10 };
	const uint64_t a[4] = { a0, a1, a2, a3 };
	mov_imm(e, 0, (uint64_t)nr);
	for (int i = 0; i < nargs; i++)
		mov_imm(e, regs[i], a[i]);
	sys(e);
	/* mov [rip + disp32], rax */
	uint64_t slot = data + RES_OFF + e->nres * 8;
	int64_t disp = (int64_t)slot - (int64_t)(e->at + e->n + 7);
	uint8_t st[7] = { 0x48, 0x89, 0x05 };
	int32_t d32 = (int32_t)disp;
	memcpy(st + 3, &d32, 4);
	emit(e, st, 7);
	e->what[e->nres++] = what;
}

static uint64_t status_mask(pid_t pid, const char *key)
{
	char v[64];
	return dump_status_field(pid, key, v, sizeof(v)) == 0 ? strtoull(v, NULL, 16) : ~0ull;
}

/* A signal that stops the traced thread and is dropped untraced: 0 if none. */
static int pick_signal(pid_t pid, uint64_t blocked)
{
	uint64_t cgt = status_mask(pid, "SigCgt");
	static const int cand[] = { SIGURG, SIGWINCH, SIGCHLD };
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		uint64_t bit = 1ull << (cand[i] - 1);
		if (!(cgt & bit) && !(blocked & bit))
			return cand[i];
	}
	return 0;
}

static bool blob_off(void)
{
	static _Atomic int off = -1;
	if (off < 0) {
		off = fp_env_flag("FP_DUMP_NO_BLOB");
	}
	return off;
}

/* Runs the program to its signal; the thread's registers go back either way. */
static int run_blob(struct dump_proc *p, fp_pt_thread *t, uint64_t entry, uint64_t stop_ip, int sig, fp_error *err)
{
	struct user_regs_struct r = p->di_saved;
	r.rip = entry;
	r.rax = 0;
	r.orig_rax = (unsigned long long)-1;
	r.eflags &= ~0x100ull;
	if (fp_pt_set_regs(t->tid, &r, err))
		return -1;
	dinj_crash_point();
	for (int tries = 0; tries < 4; tries++) {
		int st = 0;
		if (fp_pt_step_to(&p->pt, t, PTRACE_CONT, sig, p->pt.timeout_ms, &st, err))
			return fp_wrap(err, "the facts program in thread %d", t->tid);
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != sig || (st >> 16) != 0)
			return fp_fail(err, EIO, "the facts program in thread %d of %d: unexpected stop (wait status 0x%x)", t->tid,
				       p->pid, st);
		struct user_regs_struct out;
		if (fp_pt_get_regs(t->tid, &out, err))
			return -1;
		if (out.rip == stop_ip)
			return 0;
		/* An outside instance of sig on the way: resumed without it
		 * (dropped, as its action would), on to ours. */
	}
	return fp_fail(err, EIO, "the facts program in thread %d of %d did not stop at its end (0x%" PRIx64 ")", t->tid, p->pid,
		       stop_ip);
}

int dinj_blob_facts(struct dump_ctx *c, struct dump_proc *p, pid_t tid, uint64_t blocked, bool proc, struct dinj_facts *f,
		    fp_error *err)
{
	fp_pt_thread *t = fp_pt_find(&p->pt, tid);
	if (blob_off() || !p->di_page || !t || t->state != FP_PT_STOPPED || t->group_stop)
		return 0;
	int sig = pick_signal(p->pid, blocked);
	if (!sig) {
		dlogv(c, "thread %d: no ignored signal to stop on: facts asked call by call", tid);
		return 0;
	}
	uint64_t want = proc ? dinj_sigactions_wanted(p->pid) : 0;
	struct blob e; /* ~5 KiB; no static: dumps may run in several threads of a caller */
	memset(&e, 0, sizeof(e));
	e.at = p->di_page + BLOB_AT;
	uint64_t d = dinj_data(p);
	call(&e, d, "prctl(PR_GET_TID_ADDRESS)", SYS_prctl, 2, PR_GET_TID_ADDRESS, d, 0, 0);
	call(&e, d, "sigaltstack", SYS_sigaltstack, 2, 0, d + 64, 0, 0);
	call(&e, d, "prctl(PR_GET_PDEATHSIG)", SYS_prctl, 2, PR_GET_PDEATHSIG, d + 128, 0, 0);
	unsigned sec_i = e.nres;
	call(&e, d, "prctl(PR_GET_SECUREBITS)", SYS_prctl, 1, PR_GET_SECUREBITS, 0, 0, 0);
	unsigned first_sa = e.nres;
	for (int s = 1; s <= 64 && proc; s++)
		if (s != SIGKILL && s != SIGSTOP && (want & (1ull << (s - 1))))
			call(&e, d, "rt_sigaction", SYS_rt_sigaction, 4, (uint64_t)s, 0, d + SA_OFF + (uint64_t)(s - 1) * 32, 8);
	unsigned first_it = e.nres;
	for (int w = 0; w < 3 && proc; w++)
		call(&e, d, "getitimer", SYS_getitimer, 2, (uint64_t)w, d + IT_OFF + (uint64_t)w * sizeof(struct itimerval), 0, 0);
	unsigned brk_i = e.nres;
	if (proc) {
		call(&e, d, "brk", SYS_brk, 1, 0, 0, 0, 0);
		call(&e, d, "prctl(PR_GET_DUMPABLE)", SYS_prctl, 1, PR_GET_DUMPABLE, 0, 0, 0);
		call(&e, d, "prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, 2, PR_GET_CHILD_SUBREAPER, d + SUB_OFF, 0, 0);
	}
	static const uint8_t rdi_rax[] = { 0x48, 0x89, 0xc7 }, rsi_rax[] = { 0x48, 0x89, 0xc6 };
	mov_imm(&e, 0, SYS_getpid);
	sys(&e);
	emit(&e, rdi_rax, 3);
	mov_imm(&e, 0, SYS_gettid);
	sys(&e);
	emit(&e, rsi_rax, 3);
	mov_imm(&e, 2, (uint64_t)sig);
	mov_imm(&e, 0, SYS_tgkill);
	sys(&e);
	uint64_t stop_ip = e.at + e.n;
	uint8_t jmp[5] = { 0xe9 };
	int32_t rel = (int32_t)((int64_t)(p->di_page + 2) - (int64_t)(stop_ip + 5));
	memcpy(jmp + 1, &rel, 4);
	emit(&e, jmp, 5);
	if (e.full) {
		dlogv(c, "thread %d: too many calls for one program: facts asked call by call", tid);
		return 0;
	}
	/* Slots that a failed write would leave stale read as errors. */
	uint64_t poison[RES_MAX];
	for (size_t i = 0; i < RES_MAX; i++)
		poison[i] = (uint64_t)-EIO;
	uint8_t zero[SA_OFF + 64 * 32];
	memset(zero, 0, sizeof(zero));
	if (fp_mem_write(p->pid, e.at, e.b, e.n, err) || fp_mem_write(p->pid, d, zero, sizeof(zero), err) ||
	    fp_mem_write(p->pid, d + RES_OFF, poison, sizeof(poison), err))
		return -1;
	if (dinj_begin(p, tid, err))
		return -1;
	int64_t t0 = dump_now_ns();
	int rc = run_blob(p, t, e.at, stop_ip, sig, err);
	uint8_t buf[DI_PAGE];
	if (!rc)
		rc = fp_mem_read(p->pid, d, buf, sizeof(buf), err);
	if (dinj_end(p, rc ? NULL : err))
		rc = -1;
	if (rc)
		return -1;
	p->inj_calls += e.nres + 3;
	p->inj_ns += dump_now_ns() - t0;
	int64_t res[RES_MAX];
	memcpy(res, buf + RES_OFF, sizeof(res));
	for (unsigned i = 0; i < e.nres; i++)
		if (i != brk_i && res[i] < 0 && res[i] >= -4095)
			return fp_fail(err, (int)-res[i], "injected %s in thread %d failed: %s", e.what[i], tid,
				       strerror((int)-res[i]));
	memcpy(&f->tid_addr, buf, 8);
	memcpy(&f->ss, buf + 64, sizeof(f->ss));
	memcpy(&f->pdeath, buf + 128, sizeof(f->pdeath));
	f->secbits = (int)res[sec_i];
	if (proc) {
		memcpy(f->sa, buf + SA_OFF, sizeof(f->sa));
		memset(&f->sa[SIGKILL - 1], 0, sizeof(f->sa[0]));
		memset(&f->sa[SIGSTOP - 1], 0, sizeof(f->sa[0]));
		memcpy(f->it, buf + IT_OFF, sizeof(f->it));
		f->brk = (uint64_t)res[brk_i];
		f->dumpable = (int)res[brk_i + 1];
		memcpy(&f->subreaper, buf + SUB_OFF, sizeof(f->subreaper));
	}
	dlog(c, "thread %d: %u calls in one run (%u sigactions, stop on signal %d), %.3f ms", tid, e.nres,
	      first_it - first_sa, sig, (double)(dump_now_ns() - t0) / 1e6);
	return 1;
}

int dinj_facts(struct dump_ctx *c, struct dump_proc *p, pid_t tid, uint64_t blocked, bool proc, struct dinj_facts *f,
	       fp_error *err)
{
	int r = dinj_blob_facts(c, p, tid, blocked, proc, f, err);
	if (r)
		return r < 0 ? -1 : 0;
	if (dinj_thread_facts(p, tid, &f->tid_addr, &f->ss, &f->pdeath, &f->secbits, err))
		return -1;
	return proc ? dinj_proc_facts(p, f->sa, f->it, &f->brk, &f->dumpable, &f->subreaper, err) : 0;
}
