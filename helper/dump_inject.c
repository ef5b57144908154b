/* Kill-safe syscall injection for the dumper.
 *
 * helper/inject.c points a thread at a `syscall` instruction somewhere in
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
 * instead (safe_call below), just as kill-safe. Only a process with neither
 * sequence (or with a shadow stack) falls back to a foreign `syscall` for
 * the page's two calls, the old ~0.1 ms window (logged). The page is left
 * behind only if the dumper dies during the capture. */
#include "helper/dump_int.h"

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

#include "helper/pt_internal.h"
#include "helper/pt_mem.h"

#define DI_PAGE 4096u
#define DI_SAVE 2048u /* save area offset in the code page */
#define DI_LEN (8 * DI_PAGE) /* code, data page, then room for clone frames */
#define DI_FRAMES (2 * DI_PAGE)
#define SYSCALL_STOP (SIGTRAP | 0x80)

/* Save area slots (u64). */
enum { S_RAX, S_RCX, S_RDX, S_RBX, S_RBP, S_RSI, S_RDI, S_R8, S_R9, S_R10, S_R11, S_R12, S_R13, S_R14, S_R15,
       S_RSP, S_FLAGS, S_RIP, S_N };

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
static void continuation(const struct user_regs_struct *r, uint64_t s[S_N])
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
static void crash_point(int stop)
{
	static long n = -1, count;
	if (n < 0) {
		const char *e = getenv("FP_DUMP_TEST_CRASH");
		n = e ? atol(e) : 0;
	}
	(void)stop;
	if (n > 0 && ++count == n)
		raise(SIGKILL);
}

/* Runs syscall nr in thread t with ip at `at`: PTRACE_SYSCALL to the entry
 * stop, again to the exit stop. The caller restores the registers. */
static int run_at_sp(struct dump_proc *p, fp_pt_thread *t, const struct user_regs_struct *base, uint64_t at,
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
		crash_point(stop);
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
	return run_at_sp(p, t, base, at, 0, nr, a, ret, NULL, err);
}

/* ---- page-less kill-safe calls (a signal frame on the stack) ----------
 *
 * Creating and removing the trampoline page, cloning the process and
 * reaping the clone cannot use the page itself. For those the thread is
 * pointed at a `syscall; ret` sequence that already exists in the target
 * (ld.so and libc have one), with rsp at a frame we write below the red zone
 * of its stack, exactly where a signal delivery would put one:
 *
 *     [rsp] -> a `mov rax, 15; syscall` (libc's __restore_rt: rt_sigreturn)
 *     then an rt_sigframe: ucontext with the thread's continuation registers,
 *     its signal mask and its full XSAVE state (fpstate, with the magic words
 *     the kernel checks)
 *
 * With the dumper alive we stop at the syscall's exit, take the result and
 * put the registers back (and the stack bytes the frame covered); `ret`
 * never runs. If the dumper dies at any moment, the thread finishes the
 * syscall, returns into rt_sigreturn and is back where it was, with every
 * register, its signal mask and its FPU state: the same as after a signal
 * handler. uc_stack holds an invalid ss_flags so that the sigaltstack
 * setting is left as it is. */

#define SF_UC 8u
#define SF_MCTX 48u
#define SF_MASK 304u
#define SF_FP 448u /* 64-byte aligned for XRSTOR when the frame is */
#define FP_MAGIC1 0x46505853u
#define FP_MAGIC2 0x46505845u

static bool gadget_search(pid_t pid, uint64_t start, uint64_t end, uint64_t *sysret, uint64_t *sigret)
{
	size_t len = (size_t)(end - start);
	if (len > (64u << 20))
		return false;
	uint8_t *b = malloc(len);
	if (!b)
		return false;
	if (fp_mem_read(pid, start, b, len, NULL)) {
		free(b);
		return false;
	}
	static const uint8_t sr[] = { 0x0f, 0x05, 0xc3 };
	static const uint8_t rt1[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
	static const uint8_t rt2[] = { 0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
	uint8_t *h;
	if (!*sysret && (h = memmem(b, len, sr, sizeof(sr))))
		*sysret = start + (uint64_t)(h - b);
	if (!*sigret && ((h = memmem(b, len, rt1, sizeof(rt1))) || (h = memmem(b, len, rt2, sizeof(rt2)))))
		*sigret = start + (uint64_t)(h - b);
	free(b);
	return *sysret && *sigret;
}

/* Finds the two sequences, ld.so and libc first (small, always there in a
 * dynamic program), then any other text. Not with a shadow stack (`ret`
 * to a foreign address would fault). */
static void find_gadgets(struct dump_ctx *c, struct dump_proc *p)
{
	if (p->g_searched)
		return;
	p->g_searched = true;
	char feat[256] = "";
	if (dump_status_field(p->pid, "x86_Thread_features", feat, sizeof(feat)) == 0 && strstr(feat, "shstk")) {
		dlog(c, "%d: shadow stack enabled: page creation uses the plain injection", p->pid);
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	struct { uint64_t s, e; int rank; } m[256];
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0 && n < 256) {
		unsigned long long s, e;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &s, &e, perms, &pos) < 3 || perms[0] != 'r' ||
		    perms[2] != 'x')
			continue;
		const char *pth = pos ? line + pos : "";
		if (!strncmp(pth, "[vsyscall]", 10))
			continue;
		int rank = strstr(pth, "/ld-linux") || strstr(pth, "/ld-musl") ? 0 : strstr(pth, "/libc.so") || strstr(pth, "/libc-") ? 1 : 2;
		m[n].s = s, m[n].e = e, m[n].rank = rank;
		n++;
	}
	free(line);
	fclose(f);
	uint64_t sysret = 0, sigret = 0;
	for (int rank = 0; rank < 3 && !(sysret && sigret); rank++)
		for (size_t i = 0; i < n && !(sysret && sigret); i++)
			if (m[i].rank == rank)
				gadget_search(p->pid, m[i].s, m[i].e, &sysret, &sigret);
	if (sysret && sigret) {
		p->g_sysret = sysret;
		p->g_sigret = sigret;
		p->g_ok = true;
		dlogv(c, "%d: syscall;ret at 0x%" PRIx64 ", rt_sigreturn at 0x%" PRIx64, p->pid, sysret, sigret);
	} else {
		dlog(c, "%d: no `syscall; ret` / rt_sigreturn sequence found: page creation uses the plain injection", p->pid);
	}
}

static void put64le(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

/* Builds at f (remote address `at`, 64-byte aligned) a frame whose
 * rt_sigreturn resumes with regs `s` (continuation slots), mask and xstate
 * (NULL: FPU reset; for a doomed clone only). Returns its size, 0 if the
 * XSAVE data is not in the form the kernel accepts. */
static size_t frame_build(uint8_t *f, size_t cap, uint64_t at, const uint64_t s[S_N], uint16_t cs, uint16_t ss,
			  uint64_t mask, const uint8_t *xs, size_t xslen, uint64_t sigret)
{
	size_t size = SF_FP;
	uint32_t xsize = 0;
	if (xs) {
		/* NT_X86_XSTATE is the standard (uncompacted) XSAVE form a
		 * signal frame holds too; ptrace puts only the feature mask in
		 * the software bytes, the frame needs the full _fpx_sw_bytes. */
		xsize = (uint32_t)xslen;
		if (xsize < 576)
			return 0;
		size += xsize + 4;
	}
	size = (size + 63) & ~(size_t)63;
	if (size > cap)
		return 0;
	memset(f, 0, size);
	put64le(f, 0, sigret);                                   /* pretcode: where `ret` goes */
	put64le(f, SF_UC, 1 | 2 | 4);                            /* UC_FP_XSTATE|SIGCONTEXT_SS|STRICT_RESTORE_SS */
	int bad_flags = 3;                                       /* uc_stack.ss_flags: invalid, altstack kept */
	memcpy(f + SF_UC + 16 + 8, &bad_flags, 4);
	uint8_t *m = f + SF_MCTX;
	static const int order[] = { S_R8, S_R9, S_R10, S_R11, S_R12, S_R13, S_R14, S_R15, S_RDI,
				     S_RSI, S_RBP, S_RBX, S_RDX, S_RAX, S_RCX, S_RSP, S_RIP, S_FLAGS };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		put64le(m, i * 8, s[order[i]]);
	memcpy(m + 144, &cs, 2);
	memcpy(m + 150, &ss, 2);
	if (xs) {
		put64le(m, 184, at + SF_FP);
		memcpy(f + SF_FP, xs, xsize);
		uint64_t feats;
		memcpy(&feats, xs + 464, 8);
		if (!feats)
			feats = 3; /* x87 | SSE */
		uint8_t *sw = f + SF_FP + 464;
		memset(sw, 0, 48);
		uint32_t magic1 = FP_MAGIC1, ext = xsize + 4;
		memcpy(sw, &magic1, 4);
		memcpy(sw + 4, &ext, 4);
		memcpy(sw + 8, &feats, 8);
		memcpy(sw + 16, &xsize, 4);
		uint32_t magic2 = FP_MAGIC2;
		memcpy(f + SF_FP + xsize, &magic2, 4);
	}
	put64le(f, SF_MASK, mask);
	return size;
}

/* Runs one syscall in stopped thread t, kill-safely, with no memory of
 * ours in the target: the frame goes below t's red zone (frame_at 0) or at
 * frame_at. child != NULL: the call is a clone; the child gets its own
 * frame (right after) that makes it exit_group(0) at once should it ever
 * run untraced. Returns 1 done (*ret), 0 not possible here (the caller
 * falls back), -1 error. */
static int safe_call(struct dump_ctx *c, struct dump_proc *p, fp_pt_thread *t, uint64_t frame_at, long nr,
		     const uint64_t a[6], int64_t *ret, pid_t *child, fp_error *err)
{
	find_gadgets(c, p);
	if (p->g_ok) {
		/* The process may have exec'd since the search (reaping runs after
		 * the target ran on): check the bytes are still there. */
		uint8_t b1[3], b2[9];
		if (fp_mem_read(p->pid, p->g_sysret, b1, 3, NULL) || memcmp(b1, "\x0f\x05\xc3", 3) ||
		    fp_mem_read(p->pid, p->g_sigret, b2, 7, NULL) ||
		    (memcmp(b2, "\xb8\x0f\x00\x00\x00\x0f\x05", 7) &&
		     (fp_mem_read(p->pid, p->g_sigret, b2, 9, NULL) ||
		      memcmp(b2, "\x48\xc7\xc0\x0f\x00\x00\x00\x0f\x05", 9)))) {
			p->g_ok = p->g_searched = false;
			find_gadgets(c, p);
		}
	}
	if (!p->g_ok)
		return 0;
	struct user_regs_struct r0;
	uint64_t mask = 0;
	size_t xs = 0, got = 0;
	if (fp_pt_get_regs(t->tid, &r0, err) || fp_pt_get_sigmask(t->tid, &mask, err) || fp_pt_xstate_size(t->tid, &xs, err))
		return -1;
	size_t cap = SF_FP + xs + 64 + 1024;
	uint8_t *x = calloc(1, xs), *fr = malloc(cap), *orig = NULL;
	int rc = -1;
	if (!x || !fr) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	if (fp_pt_get_xstate(t->tid, x, xs, &got, err))
		goto out;
	uint64_t s[S_N];
	continuation(&r0, s);
	/* The size first (xstate checks), then the address. */
	size_t size = frame_build(fr, cap, 0, s, (uint16_t)r0.cs, (uint16_t)r0.ss, mask, x, got, p->g_sigret);
	if (!size) {
		dlog(c, "thread %d: XSAVE area of %zu bytes not usable in a signal frame: plain injection", t->tid, got);
		rc = 0;
		goto out;
	}
	bool on_stack = !frame_at;
	uint64_t at = on_stack ? ((r0.rsp - 128 - size - 512) & ~63ull) : frame_at;
	frame_build(fr, cap, at, s, (uint16_t)r0.cs, (uint16_t)r0.ss, mask, x, got, p->g_sigret);
	size_t total = size;
	if (child) {
		/* The clone's own frame: exit_group(0) with every signal blocked. */
		uint64_t cs_[S_N] = { 0 };
		cs_[S_RAX] = SYS_exit_group;
		cs_[S_RIP] = p->g_sysret;
		cs_[S_RSP] = at + size + 64;
		cs_[S_FLAGS] = 0x202;
		size_t cz = frame_build(fr + size, cap - size, at + size, cs_, (uint16_t)r0.cs, (uint16_t)r0.ss, ~0ull, NULL, 0,
					p->g_sigret);
		if (!cz) {
			rc = 0;
			goto out;
		}
		total += cz;
	}
	if (on_stack) {
		orig = malloc(total);
		if (!orig) {
			fp_fail(err, ENOMEM, "out of memory");
			goto out;
		}
		if (fp_mem_read(p->pid, at, orig, total, NULL)) {
			dlog(c, "thread %d: stack below 0x%llx not readable: plain injection", t->tid, r0.rsp);
			free(orig);
			orig = NULL;
			rc = 0;
			goto out;
		}
	}
	if (fp_mem_write(p->pid, at, fr, total, err))
		goto out;
	if (child && ptrace(PTRACE_SETOPTIONS, t->tid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE))) {
		fp_fail(err, errno, "PTRACE_SETOPTIONS on %d: %s", t->tid, strerror(errno));
		goto restore;
	}
	struct user_regs_struct r = r0;
	uint64_t a2[6];
	memcpy(a2, a, sizeof(a2));
	if (child)
		a2[1] = at + size; /* newsp: the clone's `ret` pops its own frame */
	rc = run_at_sp(p, t, &r, p->g_sysret, at, nr, a2, ret, child, err) ? -1 : 1;
	if (child)
		ptrace(PTRACE_SETOPTIONS, t->tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD);
restore:
	if (fp_pt_set_regs(t->tid, &r0, rc < 0 ? NULL : err))
		rc = -1;
	if (orig && fp_mem_write(p->pid, at, orig, total, rc < 0 ? NULL : err))
		rc = -1;
out:
	free(x);
	free(fr);
	free(orig);
	return rc;
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
	int r = safe_call(c, p, t, p->di_page + DI_FRAMES, SYS_clone, a, &ret, &kid, err);
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
	int r = safe_call(c, p, t, 0, SYS_wait4, a, &ret, NULL, err);
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
	struct user_regs_struct saved;
	if (!t || fp_pt_get_regs(p->pid, &saved, err))
		return -1;
	uint64_t a[6] = { 0, DI_LEN, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	int64_t ret = 0;
	int rc = safe_call(c, p, t, 0, SYS_mmap, a, &ret, NULL, err);
	if (rc == 0) {
		/* No frame possible: the old way, at a foreign `syscall` (a kill
		 * -9 during this one call would crash the target). */
		rc = run_at(p, t, &saved, p->ij.syscall_ip, SYS_mmap, a, &ret, err);
		if (fp_pt_set_regs(p->pid, &saved, rc ? NULL : err))
			rc = -1;
	} else {
		rc = rc < 0 ? -1 : 0;
	}
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
	continuation(&p->di_saved, s);
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
		crash_point(stop);
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
	struct user_regs_struct saved;
	if (fp_pt_get_regs(t->tid, &saved, err))
		return -1;
	uint64_t a[6] = { p->di_page, DI_LEN, 0, 0, 0, 0 };
	int64_t ret = 0;
	int rc = safe_call(c, p, t, 0, SYS_munmap, a, &ret, NULL, err);
	if (rc == 0) {
		rc = run_at(p, t, &saved, p->ij.syscall_ip, SYS_munmap, a, &ret, err);
		if (fp_pt_set_regs(t->tid, &saved, rc ? NULL : err))
			rc = -1;
	} else {
		rc = rc < 0 ? -1 : 0;
	}
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
int dinj_thread_facts(struct dump_proc *p, pid_t tid, uint64_t *tid_addr, stack_t *ss, int *pdeath, fp_error *err)
{
	if (dinj_begin(p, tid, err))
		return -1;
	uint64_t d = dinj_data(p);
	int64_t r1 = 0, r2 = 0, r3 = 0;
	uint64_t a1[6] = { PR_GET_TID_ADDRESS, d, 0, 0, 0, 0 };
	uint64_t a2[6] = { 0, d + 64, 0, 0, 0, 0 };
	uint64_t a3[6] = { PR_GET_PDEATHSIG, d + 128, 0, 0, 0, 0 };
	int rc = dinj_call(p, SYS_prctl, a1, &r1, err) || check("prctl(PR_GET_TID_ADDRESS)", tid, r1, err) ||
		 dinj_call(p, SYS_sigaltstack, a2, &r2, err) || check("sigaltstack", tid, r2, err) ||
		 dinj_call(p, SYS_prctl, a3, &r3, err) || check("prctl(PR_GET_PDEATHSIG)", tid, r3, err) ? -1 : 0;
	uint8_t buf[256];
	if (!rc)
		rc = fp_mem_read(p->pid, d, buf, sizeof(buf), err);
	if (dinj_end(p, rc ? NULL : err))
		rc = -1;
	if (rc)
		return -1;
	memcpy(tid_addr, buf, 8);
	memcpy(ss, buf + 64, sizeof(*ss));
	memcpy(pdeath, buf + 128, sizeof(*pdeath));
	return 0;
}

/* Process facts, from the leader: sigactions, itimers, brk, dumpable. */
int dinj_proc_facts(struct dump_proc *p, fp_ksigaction sa[64], struct itimerval it[3], uint64_t *brk, int *dumpable,
		    fp_error *err)
{
	pid_t tid = p->pid;
	if (dinj_begin(p, tid, err))
		return -1;
	uint64_t d = dinj_data(p);
	int rc = 0;
	int64_t r = 0;
	/* Only signals with a handler or ignored (SigCgt/SigIgn) and SIGCHLD
	 * (whose flags matter even at SIG_DFL) need asking: the others are
	 * SIG_DFL, and flags or mask of a default action never take effect.
	 * One injected call costs ~50-100 us of pause. */
	uint64_t want = ~0ull;
	char v[64];
	if (dump_status_field(p->pid, "SigCgt", v, sizeof(v)) == 0) {
		want = strtoull(v, NULL, 16);
		if (dump_status_field(p->pid, "SigIgn", v, sizeof(v)) == 0)
			want |= strtoull(v, NULL, 16);
		else
			want = ~0ull;
		want |= 1ull << (SIGCHLD - 1);
	}
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
	uint8_t buf[4096];
	if (!rc)
		rc = fp_mem_read(p->pid, d, buf, sizeof(buf), err);
	if (dinj_end(p, rc ? NULL : err))
		rc = -1;
	if (rc)
		return -1;
	memcpy(sa, buf, 64 * sizeof(fp_ksigaction));
	memset(&sa[SIGKILL - 1], 0, sizeof(sa[0]));
	memset(&sa[SIGSTOP - 1], 0, sizeof(sa[0]));
	memcpy(it, buf + 2048, 3 * sizeof(struct itimerval));
	return 0;
}
