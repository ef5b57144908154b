/* Kill-safe syscall injection for the dumper.
 *
 * ptrace/inject.c points a thread at a `syscall` instruction somewhere in
 * the target and single-steps it. If the dumper is killed meanwhile
 * (kill -9), the kernel detaches and the thread runs on from that foreign
 * instruction with our registers: the target crashes. Here the thread is
 * pointed at a small trampoline in a page of its own:
 *
 *     syscall
 *     mov rsp, [saved rsp]; lea rsp, [rsp-144]; push [saved flags]; popfq
 *     lea rsp, [rsp+144]; mov every register, [saved]; jmp [saved rip]
 *
 * and driven with PTRACE_SYSCALL (entry and exit stops; no single-step trap,
 * no int3). With the dumper alive, the exit stop is where we take the result
 * and put the thread's real registers back; the code after `syscall` never
 * runs. If the dumper dies at any moment, the thread finishes our (read-only)
 * syscall and jumps back to where it was, with the registers it had: a
 * syscall it was inside is restarted the way the kernel would have (ip - 2,
 * ax = orig_ax; restart_syscall for -ERESTART_RESTARTBLOCK). The push goes
 * below the 128-byte red zone, as a signal frame would.
 *
 * The creation and removal of the page itself, the clone that makes the
 * frozen copy and the wait4 that reaps it cannot run from the page: they
 * use a signal frame on the thread's stack and an existing `syscall; ret`
 * instead (dinj_safe_call, dump_inject_frame.c), just as kill-safe. Only a process with neither
 * sequence (or with a shadow stack) falls back to a foreign `syscall` for
 * the page's two calls, the old ~0.1 ms window (logged). The page is left
 * behind only if the dumper dies during the capture. */
#include "dump/dump_inject_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <unistd.h>

#include "ptrace/pt_internal.h"
#include "ptrace/pt_mem.h"

struct emit {
	uint8_t b[512];
	size_t n;
};

static void put(struct emit *e, const void *p, size_t n)
{
	memcpy(e->b + e->n, p, n);
	e->n += n;
}

/* An instruction ending in a rip-relative disp32 to save slot `slot`. */
static void rip_op(struct emit *e, const uint8_t *op, size_t n, int slot)
{
	put(e, op, n);
	int32_t disp = (int32_t)(DI_SAVE + slot * 8) - (int32_t)(e->n + 4);
	put(e, &disp, 4);
}

static size_t build_code(uint8_t *out)
{
	struct emit e = { .n = 0 };
	static const uint8_t sys[] = { 0x0f, 0x05 };
	put(&e, sys, 2);
	static const uint8_t mov_rsp[] = { 0x48, 0x8b, 0x25 };
	rip_op(&e, mov_rsp, 3, S_RSP);
	static const uint8_t lea_down[] = { 0x48, 0x8d, 0xa4, 0x24, 0x70, 0xff, 0xff, 0xff }; /* lea rsp,[rsp-144] */
	put(&e, lea_down, sizeof(lea_down));
	static const uint8_t push_m[] = { 0xff, 0x35 };
	rip_op(&e, push_m, 2, S_FLAGS);
	static const uint8_t popf[] = { 0x9d };
	put(&e, popf, 1);
	static const uint8_t lea_up[] = { 0x48, 0x8d, 0xa4, 0x24, 0x90, 0x00, 0x00, 0x00 }; /* lea rsp,[rsp+144] */
	put(&e, lea_up, sizeof(lea_up));
	static const struct { uint8_t rex, modrm; int slot; } regs[] = {
		{ 0x48, 0x05, S_RAX }, { 0x48, 0x0d, S_RCX }, { 0x48, 0x15, S_RDX }, { 0x48, 0x1d, S_RBX },
		{ 0x48, 0x2d, S_RBP }, { 0x48, 0x35, S_RSI }, { 0x48, 0x3d, S_RDI }, { 0x4c, 0x05, S_R8 },
		{ 0x4c, 0x0d, S_R9 },  { 0x4c, 0x15, S_R10 }, { 0x4c, 0x1d, S_R11 }, { 0x4c, 0x25, S_R12 },
		{ 0x4c, 0x2d, S_R13 }, { 0x4c, 0x35, S_R14 }, { 0x4c, 0x3d, S_R15 },
	};
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		uint8_t op[3] = { regs[i].rex, 0x8b, regs[i].modrm };
		rip_op(&e, op, 3, regs[i].slot);
	}
	static const uint8_t jmp_m[] = { 0xff, 0x25 };
	rip_op(&e, jmp_m, 2, S_RIP);
	memcpy(out, e.b, e.n);
	return e.n;
}

/* The second entry (dinj_call_closing): the call, then close(its result),
 * then the same way back as the first entry:
 *
 *     syscall; mov rdi, rax; mov eax, SYS_close; syscall; jmp <tail>
 *
 * so an fd the call creates in the target is gone again whatever happens
 * to the dumper between the two calls. */
#define DI_ENTRY2 1024u
#define DI_ENTRY2_CLOSE_END (DI_ENTRY2 + 12u) /* ip after the close's syscall */

static void build_closing(uint8_t *out)
{
	static const uint8_t seq[] = { 0x0f, 0x05,                   /* syscall */
				       0x48, 0x89, 0xc7,             /* mov rdi, rax */
				       0xb8, SYS_close, 0, 0, 0,     /* mov eax, SYS_close */
				       0x0f, 0x05,                   /* syscall */
				       0xe9 };                       /* jmp rel32 */
	memcpy(out + DI_ENTRY2, seq, sizeof(seq));
	int32_t rel = 2 - (int32_t)(DI_ENTRY2 + sizeof(seq) + 4); /* to the tail after the first syscall */
	memcpy(out + DI_ENTRY2 + sizeof(seq), &rel, 4);
}

/* The registers the thread must continue with if we vanish: what the
 * kernel's syscall-restart logic would have made of r. */
void dinj_continuation(const struct user_regs_struct *r, uint64_t s[S_N])
{
	struct user_regs_struct c = *r;
	if ((int64_t)c.orig_rax >= 0) {
		int64_t ax = (int64_t)c.rax;
		if (ax == -512 || ax == -513 || ax == -514) {
			c.rax = c.orig_rax;
			c.rip -= 2;
		} else if (ax == -516) {
			c.rax = SYS_restart_syscall;
			c.rip -= 2;
		}
	}
	s[S_RAX] = c.rax, s[S_RCX] = c.rcx, s[S_RDX] = c.rdx, s[S_RBX] = c.rbx;
	s[S_RBP] = c.rbp, s[S_RSI] = c.rsi, s[S_RDI] = c.rdi, s[S_R8] = c.r8;
	s[S_R9] = c.r9, s[S_R10] = c.r10, s[S_R11] = c.r11, s[S_R12] = c.r12;
	s[S_R13] = c.r13, s[S_R14] = c.r14, s[S_R15] = c.r15, s[S_RSP] = c.rsp;
	s[S_FLAGS] = c.eflags & ~0x100ull; /* never TF */
	s[S_RIP] = c.rip;
}

/* Tests only: FP_DUMP_TEST_CRASH=N kills the dumper (SIGKILL) just before
 * the N-th ptrace resume of an injected syscall, so a test can prove that a
 * thread left mid-injection carries on correctly. */
void dinj_crash_point(void)
{
	static _Atomic long n = -1, count;
	if (n < 0) {
		const char *e = getenv("FP_DUMP_TEST_CRASH");
		n = e ? atol(e) : 0;
	}
	if (n > 0 && ++count == n)
		raise(SIGKILL);
}

/* Runs syscall nr in thread t with ip at `at`: PTRACE_SYSCALL to the entry
 * stop, again to the exit stop. The caller restores the registers. */
int dinj_run_at_sp(struct dump_proc *p, fp_pt_thread *t, const struct user_regs_struct *base, uint64_t at,
		     uint64_t sp, long nr, const uint64_t a[6], int64_t *ret, pid_t *child, fp_error *err)
{
	int64_t t_enter = dump_now_ns();
	struct user_regs_struct r = *base;
	r.rip = at;
	if (sp)
		r.rsp = sp;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = a[0], r.rsi = a[1], r.rdx = a[2], r.r10 = a[3], r.r8 = a[4], r.r9 = a[5];
	if (fp_pt_set_regs(t->tid, &r, err))
		return -1;
	for (int stop = 0; stop < 2; stop++) {
		int st = 0;
		dinj_crash_point();
		if (fp_pt_step(&p->pt, t, PTRACE_SYSCALL, p->pt.timeout_ms, &st, err))
			return fp_wrap(err, "injected syscall %ld in thread %d", nr, t->tid);
		if (child && WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_CLONE) {
			unsigned long msg = 0;
			if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg) == 0)
				*child = (pid_t)msg;
			stop--; /* the exit stop is still to come */
			continue;
		}
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != SYSCALL_STOP)
			return fp_fail(err, EIO, "injected syscall %ld in thread %d: unexpected stop (wait status 0x%x)", nr,
				       t->tid, st);
	}
	struct user_regs_struct out;
	if (fp_pt_get_regs(t->tid, &out, err))
		return -1;
	if (out.rip != at + 2)
		return fp_fail(err, EIO, "injected syscall %ld in thread %d ended at 0x%llx, not 0x%" PRIx64, nr, t->tid, out.rip,
			       at + 2);
	*ret = (int64_t)out.rax;
	p->inj_calls++;
	p->inj_ns += dump_now_ns() - t_enter;
	return 0;
}

static int run_at(struct dump_proc *p, fp_pt_thread *t, const struct user_regs_struct *base, uint64_t at, long nr,
		  const uint64_t a[6], int64_t *ret, fp_error *err)
{
	return dinj_run_at_sp(p, t, base, at, 0, nr, a, ret, NULL, err);
}

static fp_pt_thread *a_stopped_thread(struct dump_proc *p)
{
	fp_pt_thread *t = fp_pt_find(&p->pt, p->pid);
	if (t && t->state == FP_PT_STOPPED)
		return t;
	for (size_t i = 0; i < p->pt.nthreads; i++)
		if (p->pt.threads[i].state == FP_PT_STOPPED)
			return &p->pt.threads[i];
	return NULL;
}

/* A system call that makes or removes the injection page itself: in a
 * safe frame when one can be made, else the old way, at a foreign
 * `syscall` (a kill -9 during this one call would crash the target). */
static int page_syscall(struct dump_ctx *c, struct dump_proc *p, fp_pt_thread *t, long nr, const uint64_t a[6],
			int64_t *ret, fp_error *err)
{
	struct user_regs_struct saved;
	if (fp_pt_get_regs(t->tid, &saved, err))
		return -1;
	int rc = dinj_safe_call(c, p, t, 0, nr, a, ret, NULL, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = run_at(p, t, &saved, p->ij.syscall_ip, nr, a, ret, err);
	if (fp_pt_set_regs(t->tid, &saved, rc ? NULL : err))
		rc = -1;
	return rc;
}

int dinj_clone(struct dump_ctx *c, struct dump_proc *p, pid_t *child, fp_error *err)
{
	*child = 0;
	fp_pt_thread *t = a_stopped_thread(p);
	if (!t || !p->di_page)
		return 0;
	/* No CLONE_VM: a copy-on-write copy of the address space. Exit signal
	 * 0: the target gets no SIGCHLD and its wait()/waitpid(-1) never sees
	 * the copy (only __WALL/__WCLONE waits would). Traced from birth
	 * (TRACECLONE): it stops before its first instruction. */
	uint64_t a[6] = { 0, 0, 0, 0, 0, 0 };
	int64_t ret = 0;
	pid_t kid = 0;
	int r = dinj_safe_call(c, p, t, p->di_page + DI_FRAMES, SYS_clone, a, &ret, &kid, err);
	if (r <= 0)
		return r;
	if (ret < 0) {
		dlog(c, "%d: clone in the target failed: %s", p->pid, strerror((int)-ret));
		return 0;
	}
	if (!kid)
		kid = (pid_t)ret;
	*child = kid;
	return 0;
}

/* Waits for the copy's first stop and makes it die with us. Done after the
 * process is resumed: the copy needs a CPU to reach its stop. Before this,
 * had we died, it ran untraced into its exit_group frame. */
int dinj_clone_settle(struct dump_proc *p, pid_t kid, fp_error *err)
{
	int st = 0;
	int w = fp_pt_wait_one(kid, fp_pt_deadline(p->pt.timeout_ms > 0 ? p->pt.timeout_ms : FP_PT_TIMEOUT_MS), &st);
	if (w != 1 || !WIFSTOPPED(st))
		return fp_fail(err, EIO, "the frozen copy %d of %d did not stop (wait %d, status 0x%x)", kid, p->pid, w, st);
	if (ptrace(PTRACE_SETOPTIONS, kid, 0, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)))
		return fp_fail(err, errno, "PTRACE_SETOPTIONS on the frozen copy %d: %s", kid, strerror(errno));
	return 0;
}

/* Syscalls in the frozen copy itself (dump_pages.c has it write its own
 * pages). The copy is ours alone and dies with us: no kill-safety needed,
 * its registers are never restored. Two halves so the caller can work
 * while the copy is in the syscall. */
int dinj_copy_start(struct dump_proc *p, long nr, const uint64_t a[6], fp_error *err)
{
	struct user_regs_struct r;
	if (fp_pt_get_regs(p->cow, &r, err))
		return -1;
	r.rip = p->g_sysret;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = a[0], r.rsi = a[1], r.rdx = a[2], r.r10 = a[3], r.r8 = a[4], r.r9 = a[5];
	if (fp_pt_set_regs(p->cow, &r, err))
		return -1;
	int st = 0;
	if (ptrace(PTRACE_SYSCALL, p->cow, 0, 0))
		return fp_fail(err, errno, "cannot resume the frozen copy %d: %s", p->cow, strerror(errno));
	if (fp_pt_wait_one(p->cow, fp_pt_deadline(FP_PT_TIMEOUT_MS), &st) != 1 || !WIFSTOPPED(st) ||
	    WSTOPSIG(st) != SYSCALL_STOP)
		return fp_fail(err, EIO, "the frozen copy %d did not enter syscall %ld (status 0x%x)", p->cow, nr, st);
	if (ptrace(PTRACE_SYSCALL, p->cow, 0, 0))
		return fp_fail(err, errno, "cannot resume the frozen copy %d: %s", p->cow, strerror(errno));
	return 0;
}

int dinj_copy_finish(struct dump_proc *p, int64_t *ret, fp_error *err)
{
	int st = 0;
	if (fp_pt_wait_one(p->cow, fp_pt_deadline(60000), &st) != 1 || !WIFSTOPPED(st) || WSTOPSIG(st) != SYSCALL_STOP)
		return fp_fail(err, EIO, "the frozen copy %d did not finish its syscall (status 0x%x)", p->cow, st);
	struct user_regs_struct r;
	if (fp_pt_get_regs(p->cow, &r, err))
		return -1;
	*ret = (int64_t)r.rax;
	return 0;
}

uint64_t dinj_copy_scratch(struct dump_proc *p, size_t *len)
{
	/* The copy kept the injection page the process no longer has. */
	*len = p->di_gone_start ? DI_LEN - DI_PAGE : 0;
	return p->di_gone_start ? p->di_gone_start + DI_PAGE : 0;
}

int dinj_reap(struct dump_ctx *c, struct dump_proc *p, pid_t child, fp_error *err)
{
	fp_pt_thread *t = a_stopped_thread(p);
	if (!t)
		return fp_fail(err, ESRCH, "no stopped thread in %d", p->pid);
	uint64_t a[6] = { (uint64_t)child, 0, (uint64_t)(__WALL | WNOHANG), 0, 0, 0 };
	int64_t ret = 0;
	int r = dinj_safe_call(c, p, t, 0, SYS_wait4, a, &ret, NULL, err);
	if (r == 0) {
		struct user_regs_struct saved;
		if (!p->ij_init) {
			if (fp_inject_init(&p->ij, &p->pt, err))
				return -1;
			p->ij_init = true;
		}
		if (fp_pt_get_regs(t->tid, &saved, err))
			return -1;
		r = run_at(p, t, &saved, p->ij.syscall_ip, SYS_wait4, a, &ret, err) ? -1 : 1;
		if (fp_pt_set_regs(t->tid, &saved, r < 0 ? NULL : err))
			r = -1;
	}
	if (r < 0)
		return -1;
	if (ret != child)
		return fp_fail(err, ret < 0 ? (int)-ret : ECHILD, "wait4(%d) in %d returned %lld", child, p->pid, (long long)ret);
	return 0;
}

int dinj_init(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	if (p->di_page)
		return 0;
	if (!p->ij_init) {
		if (fp_inject_init(&p->ij, &p->pt, err))
			return -1;
		p->ij_init = true;
	}
	fp_pt_thread *t = fp_pt_find(&p->pt, p->pid);
	if (!t)
		return fp_fail(err, ESRCH, "process %d has no stopped main thread", p->pid);
	uint64_t a[6] = { 0, DI_LEN, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	int64_t ret = 0;
	int rc = page_syscall(c, p, t, SYS_mmap, a, &ret, err);
	if (rc)
		return fp_wrap(err, "creating the injection page in %d", p->pid);
	if (ret < 0 && ret > -4096)
		return fp_fail(err, (int)-ret, "mmap of the injection page in %d failed: %s", p->pid, strerror((int)-ret));
	p->di_page = (uint64_t)ret;
	uint8_t code[DI_SAVE];
	memset(code, 0xcc, sizeof(code));
	size_t n = build_code(code);
	build_closing(code);
	if (fp_mem_write(p->pid, p->di_page, code, sizeof(code), err))
		return -1;
	dlogv(c, "%d: injection page at 0x%" PRIx64 " (%zu bytes of trampoline)", p->pid, p->di_page, n);
	return 0;
}

int dinj_begin(struct dump_proc *p, pid_t tid, fp_error *err)
{
	p->di_t = fp_pt_find(&p->pt, tid);
	if (!p->di_t || p->di_t->state != FP_PT_STOPPED)
		return fp_fail(err, EINVAL, "thread %d of %d is not stopped", tid, p->pid);
	if (fp_pt_get_regs(tid, &p->di_saved, err))
		return -1;
	uint64_t s[S_N];
	dinj_continuation(&p->di_saved, s);
	return fp_mem_write(p->pid, p->di_page + DI_SAVE, s, sizeof(s), err);
}

int dinj_call(struct dump_proc *p, long nr, const uint64_t a[6], int64_t *ret, fp_error *err)
{
	return run_at(p, p->di_t, &p->di_saved, p->di_page, nr, a, ret, err);
}

int dinj_call_closing(struct dump_proc *p, long nr, const uint64_t a[6], int (*take)(void *arg, int64_t ret, fp_error *err),
		      void *arg, fp_error *err)
{
	fp_pt_thread *t = p->di_t;
	int64_t ret = 0;
	if (run_at(p, t, &p->di_saved, p->di_page + DI_ENTRY2, nr, a, &ret, err))
		return -1;
	int rc = take(arg, ret, err);
	/* The close runs whatever take did: nothing of ours stays in the
	 * target's fd table. */
	for (int stop = 0; stop < 2; stop++) {
		int st = 0;
		dinj_crash_point();
		if (fp_pt_step(&p->pt, t, PTRACE_SYSCALL, p->pt.timeout_ms, &st, rc ? NULL : err))
			return rc ? -1 : fp_wrap(err, "closing fd %" PRId64 " in thread %d", ret, t->tid);
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != SYSCALL_STOP)
			return rc ? -1 : fp_fail(err, EIO, "closing fd %" PRId64 " in thread %d: unexpected stop (0x%x)", ret,
						 t->tid, st);
	}
	struct user_regs_struct out;
	if (fp_pt_get_regs(t->tid, &out, rc ? NULL : err))
		return -1;
	if (!rc && out.rip != p->di_page + DI_ENTRY2_CLOSE_END)
		rc = fp_fail(err, EIO, "closing fd %" PRId64 " in thread %d ended at 0x%llx", ret, t->tid, out.rip);
	if (!rc && ret >= 0 && out.rax != 0)
		rc = fp_fail(err, EIO, "close(%" PRId64 ") in thread %d failed: %s", ret, t->tid, strerror((int)-(int64_t)out.rax));
	p->inj_calls++;
	return rc;
}

int dinj_end(struct dump_proc *p, fp_error *err)
{
	if (!p->di_t)
		return 0;
	int rc = fp_pt_set_regs(p->di_t->tid, &p->di_saved, err);
	p->di_t = NULL;
	return rc;
}

/* After injected calls that left their results at d: those results read
 * back (unless rc says a call failed), and the injection ended either way. */
static int results_and_end(struct dump_proc *p, uint64_t d, void *buf, size_t len, int rc, fp_error *err)
{
	if (!rc)
		rc = fp_mem_read(p->pid, d, buf, len, err);
	if (dinj_end(p, rc ? NULL : err))
		rc = -1;
	return rc ? -1 : 0;
}


uint64_t dinj_data(struct dump_proc *p)
{
	return p->di_page + DI_PAGE;
}

int dinj_fini(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	if (!p->di_page)
		return 0;
	fp_pt_thread *t = NULL;
	for (size_t i = 0; i < p->pt.nthreads && !t; i++)
		if (p->pt.threads[i].state == FP_PT_STOPPED)
			t = &p->pt.threads[i];
	if (!t)
		return 0;
	uint64_t a[6] = { p->di_page, DI_LEN, 0, 0, 0, 0 };
	int64_t ret = 0;
	int rc = page_syscall(c, p, t, SYS_munmap, a, &ret, err);
	if (!rc && ret)
		rc = fp_fail(err, (int)-ret, "munmap of the injection page in %d failed", p->pid);
	if (!rc) {
		dlogv(c, "%d: %u injected syscalls, %.3f ms in them", p->pid, p->inj_calls, (double)p->inj_ns / 1e6);
		p->di_gone_start = p->di_page;
		p->di_gone_end = p->di_page + DI_LEN;
		p->di_page = 0;
	}
	return rc;
}

/* ---- what the dumper asks ---------------------------------------------- */

static int check(const char *what, pid_t tid, int64_t ret, fp_error *err)
{
	if (ret < 0 && ret >= -4095)
		return fp_fail(err, (int)-ret, "injected %s in thread %d failed: %s", what, tid, strerror((int)-ret));
	return 0;
}

/* Per-thread facts: clear_child_tid, sigaltstack, pdeath signal. */
int dinj_thread_facts(struct dump_proc *p, pid_t tid, uint64_t *tid_addr, stack_t *ss, int *pdeath, int *secbits,
		      fp_error *err)
{
	if (dinj_begin(p, tid, err))
		return -1;
	uint64_t d = dinj_data(p);
	int64_t r1 = 0, r2 = 0, r3 = 0, r4 = 0;
	uint64_t a1[6] = { PR_GET_TID_ADDRESS, d, 0, 0, 0, 0 };
	uint64_t a2[6] = { 0, d + 64, 0, 0, 0, 0 };
	uint64_t a3[6] = { PR_GET_PDEATHSIG, d + 128, 0, 0, 0, 0 };
	uint64_t a4[6] = { PR_GET_SECUREBITS, 0, 0, 0, 0, 0 };
	int rc = dinj_call(p, SYS_prctl, a1, &r1, err) || check("prctl(PR_GET_TID_ADDRESS)", tid, r1, err) ||
		 dinj_call(p, SYS_sigaltstack, a2, &r2, err) || check("sigaltstack", tid, r2, err) ||
		 dinj_call(p, SYS_prctl, a3, &r3, err) || check("prctl(PR_GET_PDEATHSIG)", tid, r3, err) ||
		 dinj_call(p, SYS_prctl, a4, &r4, err) || check("prctl(PR_GET_SECUREBITS)", tid, r4, err) ? -1 : 0;
	uint8_t buf[256];
	if (results_and_end(p, d, buf, sizeof(buf), rc, err))
		return -1;
	memcpy(tid_addr, buf, 8);
	memcpy(ss, buf + 64, sizeof(*ss));
	memcpy(pdeath, buf + 128, sizeof(*pdeath));
	*secbits = (int)r4;
	return 0;
}

uint64_t dinj_sigactions_wanted(pid_t pid)
{
	/* One injected call costs ~50-100 us of pause: only the signals that
	 * can differ from the default are asked. */
	char v[64];
	if (dump_status_field(pid, "SigCgt", v, sizeof(v)))
		return ~0ull;
	uint64_t want = strtoull(v, NULL, 16);
	if (dump_status_field(pid, "SigIgn", v, sizeof(v)))
		return ~0ull;
	return want | strtoull(v, NULL, 16) | 1ull << (SIGCHLD - 1);
}

/* Process facts, from the leader: sigactions, itimers, brk, dumpable. */
int dinj_proc_facts(struct dump_proc *p, fp_ksigaction sa[64], struct itimerval it[3], uint64_t *brk, int *dumpable,
		    int *subreaper, fp_error *err)
{
	pid_t tid = p->pid;
	if (dinj_begin(p, tid, err))
		return -1;
	uint64_t d = dinj_data(p);
	int rc = 0;
	int64_t r = 0;
	uint64_t want = dinj_sigactions_wanted(p->pid);
	memset(sa, 0, 64 * sizeof(fp_ksigaction));
	uint8_t zero[64 * 32];
	memset(zero, 0, sizeof(zero));
	if (want != ~0ull && fp_mem_write(p->pid, d, zero, sizeof(zero), err))
		rc = -1;
	for (int sig = 1; sig <= 64 && !rc; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || !(want & (1ull << (sig - 1))))
			continue;
		uint64_t a[6] = { (uint64_t)sig, 0, d + (uint64_t)(sig - 1) * 32, 8, 0, 0 };
		rc = dinj_call(p, SYS_rt_sigaction, a, &r, err) || check("rt_sigaction", tid, r, err) ? -1 : 0;
	}
	for (int w = 0; w < 3 && !rc; w++) {
		uint64_t a[6] = { (uint64_t)w, d + 2048 + (uint64_t)w * sizeof(struct itimerval), 0, 0, 0, 0 };
		rc = dinj_call(p, SYS_getitimer, a, &r, err) || check("getitimer", tid, r, err) ? -1 : 0;
	}
	if (!rc) {
		uint64_t a[6] = { 0 };
		rc = dinj_call(p, SYS_brk, a, &r, err) || check("brk", tid, r, err) ? -1 : 0;
		*brk = (uint64_t)r;
	}
	if (!rc) {
		uint64_t a[6] = { PR_GET_DUMPABLE, 0, 0, 0, 0, 0 };
		rc = dinj_call(p, SYS_prctl, a, &r, err) || check("prctl(PR_GET_DUMPABLE)", tid, r, err) ? -1 : 0;
		*dumpable = (int)r;
	}
	const uint64_t sub_at = 2048 + 3 * sizeof(struct itimerval);
	if (!rc) {
		uint64_t a[6] = { PR_GET_CHILD_SUBREAPER, d + sub_at, 0, 0, 0, 0 };
		rc = dinj_call(p, SYS_prctl, a, &r, err) || check("prctl(PR_GET_CHILD_SUBREAPER)", tid, r, err) ? -1 : 0;
	}
	uint8_t buf[4096];
	if (results_and_end(p, d, buf, sizeof(buf), rc, err))
		return -1;
	memcpy(sa, buf, 64 * sizeof(fp_ksigaction));
	memset(&sa[SIGKILL - 1], 0, sizeof(sa[0]));
	memset(&sa[SIGSTOP - 1], 0, sizeof(sa[0]));
	memcpy(it, buf + 2048, 3 * sizeof(struct itimerval));
	memcpy(subreaper, buf + sub_at, sizeof(*subreaper));
	return 0;
}
