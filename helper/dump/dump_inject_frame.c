/* Page-less kill-safe calls for the dumper: a syscall run at an existing
 * `syscall; ret` with a signal frame below the thread's red zone, so that
 * it needs no memory of ours in the target. */
#include "dump/dump_inject_int.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "ptrace/pt_internal.h"
#include "ptrace/pt_mem.h"
#include "ptrace/procmap_query.h"
#include "dump/dirty_tracker.h"

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

#define GADGET_CACHE 16
struct gadget_memo {
	pid_t pid;
	unsigned long long born; /* start time: the same process */
	uint64_t sysret, sigret;
};
/* Shared by every dump in this process (a library caller may run several
 * at once): only under g_memo_lock. */
static struct gadget_memo g_memo[GADGET_CACHE];
static unsigned g_memo_next;
static pthread_mutex_t g_memo_lock = PTHREAD_MUTEX_INITIALIZER;

struct exec_map {
	uint64_t s, e;
	int rank;
};

struct exec_list {
	struct exec_map m[256];
	size_t n;
};

static int note_map(void *arg, uint64_t start, uint64_t end, const char *name)
{
	struct exec_list *l = arg;
	l->m[l->n++] = (struct exec_map){ start, end,
					 strstr(name, "/ld-linux") || strstr(name, "/ld-musl") ? 0 :
					 strstr(name, "/libc.so") || strstr(name, "/libc-")   ? 1 : 2 };
	return l->n == 256;
}

static void search_list(pid_t pid, const struct exec_list *l, unsigned long long born, uint64_t *sysret,
			uint64_t *sigret)
{
	const struct exec_map *m = l->m;
	size_t n = l->n;
	/* A session snapshots the same process again and again: the sequences
	 * found last time, if still in its executable text (their bytes are
	 * checked before each use), spare reading ld.so and libc anew. */
	pthread_mutex_lock(&g_memo_lock);
	struct gadget_memo memo[GADGET_CACHE];
	memcpy(memo, g_memo, sizeof(memo));
	pthread_mutex_unlock(&g_memo_lock);
	for (size_t k = 0; k < GADGET_CACHE; k++) {
		const struct gadget_memo *g = &memo[k];
		if (g->pid != pid || g->born != born || !born)
			continue;
		bool in1 = false, in2 = false;
		for (size_t i = 0; i < n; i++) {
			in1 |= g->sysret >= m[i].s && g->sysret + 3 <= m[i].e;
			in2 |= g->sigret >= m[i].s && g->sigret + 9 <= m[i].e;
		}
		if (in1 && in2)
			*sysret = g->sysret, *sigret = g->sigret;
	}
	for (int rank = 0; rank < 3 && !(*sysret && *sigret); rank++)
		for (size_t i = 0; i < n && !(*sysret && *sigret); i++)
			if (m[i].rank == rank)
				gadget_search(pid, m[i].s, m[i].e, sysret, sigret);
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
	uint64_t sysret = 0, sigret = 0;
	unsigned long long born = fp_track_start_time(p->pid);
	/* ld.so's text first (by PROCMAP_QUERY, however many mappings the
	 * process has: glibc's has both), else every executable mapping. */
	struct exec_list *l = malloc(sizeof(*l));
	for (int all = 0; l && all < 2 && !(sysret && sigret); all++) {
		l->n = 0;
		if (fp_exec_maps(p->pid, all, note_map, l) == 0)
			search_list(p->pid, l, born, &sysret, &sigret);
	}
	free(l);
	if (sysret && sigret) {
		p->g_sysret = sysret;
		p->g_sigret = sigret;
		p->g_ok = true;
		dlogv(c, "%d: syscall;ret at 0x%" PRIx64 ", rt_sigreturn at 0x%" PRIx64, p->pid, sysret, sigret);
		pthread_mutex_lock(&g_memo_lock);
		struct gadget_memo *slot = &g_memo[g_memo_next++ % GADGET_CACHE];
		for (size_t k = 0; k < GADGET_CACHE; k++)
			if (g_memo[k].pid == p->pid)
				slot = &g_memo[k];
		*slot = (struct gadget_memo){ p->pid, born, sysret, sigret };
		pthread_mutex_unlock(&g_memo_lock);
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
int dinj_safe_call(struct dump_ctx *c, struct dump_proc *p, fp_pt_thread *t, uint64_t frame_at, long nr,
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
			pthread_mutex_lock(&g_memo_lock);
			for (size_t k = 0; k < GADGET_CACHE; k++)
				if (g_memo[k].pid == p->pid)
					g_memo[k].pid = 0; /* not there any more: search */
			pthread_mutex_unlock(&g_memo_lock);
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
	dinj_continuation(&r0, s);
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
	
	rc = dinj_run_at_sp(p, t, &r, p->g_sysret, at, nr, a2, ret, child, err) ? -1 : 1;
	
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
