/* The process being restored: the stub created with the image's pid, held
 * with ptrace, and the syscalls we run inside it. */
#include "restore/rst_int.h"

#include <elf.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptrace/pt_internal.h"
#include "ptrace/pt_mem.h"

#define STUB_PREFERRED 0x3d5a00000000ULL

int rst_read_maps(pid_t pid, rst_map **maps, size_t *n, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	size_t cap = 64;
	*n = 0;
	*maps = malloc(cap * sizeof(**maps));
	char *line = NULL;
	size_t lcap = 0;
	while (*maps && getline(&line, &lcap, f) > 0) {
		unsigned long long s, e;
		int pos = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &pos) < 2)
			continue;
		if (*n == cap) {
			rst_map *m = realloc(*maps, 2 * cap * sizeof(*m));
			if (!m)
				break;
			*maps = m;
			cap *= 2;
		}
		rst_map *m = &(*maps)[(*n)++];
		m->start = s;
		m->end = e;
		snprintf(m->name, sizeof(m->name), "%s", pos ? line + pos : "");
		m->name[strcspn(m->name, "\n")] = 0;
	}
	free(line);
	fclose(f);
	if (!*maps) {
		*n = 0;
		return fp_fail(err, ENOMEM, "out of memory reading %s", path);
	}
	return 0;
}

/* ---- scratch ------------------------------------------------------------ */

int rst_scratch_put(rst_proc *p, size_t off, const void *data, size_t len, uint64_t *addr, fp_error *err)
{
	if (off + len > p->scratch_len)
		return fp_fail(err, E2BIG, "internal: %zu bytes do not fit the restorer's scratch area", off + len);
	*addr = p->scratch + off;
	return len ? fp_mem_write(p->pid, *addr, data, len, err) : 0;
}

/* ---- creating the stub ----------------------------------------------------- */

static uint64_t stub_entry(void)
{
	Elf64_Ehdr eh;
	memcpy(&eh, fp_rst_stub_elf, sizeof(eh));
	return eh.e_entry;
}

/* The child side of clone3: runs in a copy of the restorer and must only
 * make plain syscalls before exec. */
static __attribute__((noreturn)) void child_exec(int memfd, int syncfd, bool setsid_, bool setpgid_)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* the restorer died: so do we */
	/* Every signal blocked until rst_task_regs sets the image's masks: a
	 * pending signal the image had (queued by rst_task_finish), or one sent
	 * to the half-built process, then waits in its queue with its siginfo
	 * instead of stopping our injected calls. Not SIGTRAP: the runner's int3
	 * and single steps raise it, and the kernel would unblock it and reset
	 * its handler to the default. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	sigprocmask(SIG_SETMASK, &all, NULL);
	char b;
	if (read(syncfd, &b, 1) != 1) /* wait until seized */
		_exit(126);
	if (setsid_)
		setsid();
	else if (setpgid_)
		setpgid(0, 0);
	/* The stub starts with no fds at all: the image's table is rebuilt. */
	syscall(SYS_close_range, 0, ~0U, CLOSE_RANGE_CLOEXEC);
	char *const argv[] = { "fp-restore-stub", NULL }, *const envp[] = { NULL };
	syscall(SYS_execveat, memfd, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

int rst_wait_stop(rst_proc *p, pid_t tid, int64_t deadline, int *st, const char *what, fp_error *err)
{
	int r = rst_wait(tid, deadline, st);
	if (r == 0)
		return fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT, "%s: thread %d did not stop in time", what, (int)tid);
	if (r < 0)
		return fp_fail(err, errno, "%s: waiting for %d: %s", what, (int)tid, strerror(errno));
	if (!WIFSTOPPED(*st)) {
		if (tid == p->pid)
			p->pid = -p->pid; /* reaped: nothing left to kill */
		return fp_fail(err, ESRCH, "%s: %d ended (wait status 0x%x)", what, (int)tid, *st);
	}
	return 0;
}

/* A free place for the stub, our scratch area and the parked vDSO: clear of
 * every mapping of the image and of the stub's present mappings. */
static bool range_free(const rst_image *im, const rst_map *m, size_t n, uint64_t s, uint64_t e, uint64_t stub_s)
{
	for (size_t i = 0; i < im->mm.n_vmas; i++)
		if (im->mm.vmas[i].start < e && s < im->mm.vmas[i].end)
			return false;
	for (size_t i = 0; i < n; i++)
		if (m[i].start < e && s < m[i].end && m[i].start != stub_s)
			return false;
	return true;
}

static int find_work_area(rst_proc *p, const rst_map *m, size_t n, uint64_t len, uint64_t *base, fp_error *err)
{
	static const uint64_t tries[] = { STUB_PREFERRED, 0x2b3c00000000ULL, 0x1a2b00000000ULL, 0x600000000000ULL,
					  0x10000000000ULL, 0x100000000ULL };
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (range_free(p->im, m, n, tries[i], tries[i] + len, p->stub_start)) {
			*base = tries[i];
			return 0;
		}
	return fp_fail(err, ENOSPC, "no free address range for the restorer's stub in the image's address space");
}

static int move_map(rst_proc *p, uint64_t from, uint64_t len, uint64_t to, const char *what, fp_error *err)
{
	if (from == to)
		return 0;
	return rst_q(p, p->pid, what, RST_MUST, SYS_mremap, from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to, 0, NULL, err);
}

/* The runner (rst_runner.c) gets its own executable page in the work area,
 * below the scratch area, unmapped with it at the end (rst_task_regs). */
static int map_runner(rst_proc *p, uint64_t at, fp_error *err)
{
	size_t len = (size_t)(fp_rst_runner_stop - fp_rst_runner);
	int64_t r;
	if (rst_step_sys(p, p->pid, SYS_mmap, at, 4096, PROT_READ | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &r, err))
		return -1;
	if (r != (int64_t)at)
		return fp_fail(err, r < 0 && r >= -4095 ? (int)-r : EIO, "mapping the restorer's runner page at 0x%llx: %s",
			       (unsigned long long)at, r < 0 && r >= -4095 ? strerror((int)-r) : "placed elsewhere");
	/* Through /proc/PID/mem: the page is not writable. */
	if (fp_mem_write(p->pid, at, fp_rst_runner, len, err))
		return -1;
	p->runner = at;
	p->sys_ip = at + (uint64_t)(fp_rst_runner_syscall - fp_rst_runner);
	return 0;
}

/* The scratch area and the runner's page in the work area at base. */
static int map_work_area(rst_proc *p, uint64_t base, fp_error *err)
{
	int64_t r;
	if (rst_step_sys(p, p->pid, SYS_mmap, base + 64 * 1024, RST_SCRATCH_LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &r, err))
		return -1;
	if (r != (int64_t)(base + 64 * 1024))
		return fp_fail(err, r < 0 && r >= -4095 ? (int)-r : EIO, "mapping the restorer's scratch area failed");
	p->scratch = (uint64_t)r;
	p->scratch_len = RST_SCRATCH_LEN;
	return map_runner(p, base + 32 * 1024, err);
}

/* Moves the stub's text (if it is in the image's way), creates the scratch
 * area, parks the kernel's vDSO/vvar and drops the stub's stack, so that only
 * the work area remains where the image has nothing. */
int rst_proc_prepare(rst_proc *p, fp_error *err)
{
	rst_map *m;
	size_t n;
	if (rst_read_maps(p->pid, &m, &n, err))
		return -1;
	uint64_t entry = stub_entry();
	uint64_t vv_s = 0, vv_e = 0, vc_s = 0, vc_e = 0, vd_s = 0, vd_e = 0, st_s = 0, st_e = 0;
	for (size_t i = 0; i < n; i++) {
		if (m[i].start <= entry && entry < m[i].end)
			p->stub_start = m[i].start, p->stub_end = m[i].end;
		else if (!strcmp(m[i].name, "[vvar]"))
			vv_s = m[i].start, vv_e = m[i].end;
		else if (!strcmp(m[i].name, "[vvar_vclock]"))
			vc_s = m[i].start, vc_e = m[i].end;
		else if (!strcmp(m[i].name, "[vdso]"))
			vd_s = m[i].start, vd_e = m[i].end;
		else if (!strcmp(m[i].name, "[stack]"))
			st_s = m[i].start, st_e = m[i].end;
	}
	int rc = -1;
	uint64_t base = 0;
	const uint64_t park = 512 * 1024, area = 2 * 1024 * 1024;
	if (!p->stub_start) {
		fp_fail(err, EIO, "the restorer stub's text mapping is missing in %d", (int)p->pid);
		goto out;
	}
	if (find_work_area(p, m, n, area, &base, err))
		goto out;
	uint64_t insn = entry + 5; /* mov $34,%eax is 5 bytes, then syscall */
	unsigned char b[2];
	if (fp_mem_read(p->pid, insn, b, 2, err))
		goto out;
	if (b[0] != 0x0f || b[1] != 0x05) {
		fp_fail(err, EIO, "the restorer stub has no syscall instruction at 0x%llx", (unsigned long long)insn);
		goto out;
	}
	if (fp_pt_get_regs(p->pid, &p->base_regs, err))
		goto out;
	p->sys_ip = insn;
	rst_logf(p->log, 3, "stub %d: text 0x%llx-0x%llx, work area at 0x%llx", (int)p->pid,
		 (unsigned long long)p->stub_start, (unsigned long long)p->stub_end, (unsigned long long)base);
	int64_t r;
	if (base != p->stub_start) {
		if (rst_step_sys(p, p->pid, SYS_mremap, p->stub_start, p->stub_end - p->stub_start,
				 p->stub_end - p->stub_start, MREMAP_MAYMOVE | MREMAP_FIXED, base, 0, &r, err))
			goto out;
		if (r != (int64_t)base) {
			fp_fail(err, r < 0 && r >= -4095 ? (int)-r : EIO, "moving the stub out of the image's way failed");
			goto out;
		}
		p->sys_ip = insn - p->stub_start + base;
		p->stub_end = base + (p->stub_end - p->stub_start);
		p->stub_start = base;
	}
	if (map_work_area(p, base, err))
		goto out;
	/* Park the kernel's vvar/vvar_vclock/vdso in the work area, keeping their
	 * distances (the vDSO finds its data pages by offset). */
	if (vd_s) {
		uint64_t lo = vv_s ? vv_s : vd_s;
		uint64_t to = base + park;
		if ((vv_s && move_map(p, vv_s, vv_e - vv_s, to + (vv_s - lo), "parking the kernel's vvar", err)) ||
		    (vc_s && move_map(p, vc_s, vc_e - vc_s, to + (vc_s - lo), "parking the kernel's vvar_vclock", err)) ||
		    move_map(p, vd_s, vd_e - vd_s, to + (vd_s - lo), "parking the kernel's vDSO", err))
			goto out;
		if (vv_s)
			p->kvvar_start = to + (vv_s - lo), p->kvvar_end = to + (vv_e - lo);
		if (vc_s)
			p->kvclock_start = to + (vc_s - lo), p->kvclock_end = to + (vc_e - lo);
		p->kvdso_start = to + (vd_s - lo), p->kvdso_end = to + (vd_e - lo);
	}
	if (st_s && rst_q(p, p->pid, "unmapping the stub's stack", RST_MUST, SYS_munmap, st_s, st_e - st_s, 0, 0, 0, 0,
			  NULL, err))
		goto out;
	rc = rst_flush(p, err);
out:
	free(m);
	return rc;
}

int rst_stub_memfd(fp_error *err)
{
	size_t len = (size_t)(fp_rst_stub_elf_end - fp_rst_stub_elf);
	int memfd = (int)syscall(SYS_memfd_create, "fp-restore-stub", MFD_CLOEXEC);
	if (memfd < 0)
		return fp_fail(err, errno, "memfd_create for the restorer stub: %s", strerror(errno));
	if (write(memfd, fp_rst_stub_elf, len) != (ssize_t)len) {
		fp_fail(err, errno, "writing the restorer stub: %s", strerror(errno));
		close(memfd);
		return -1;
	}
	return memfd;
}

int rst_proc_create(rst_proc *p, rst_image *im, rst_log *log, fp_error *err)
{
	memset(&p->pt, 0, sizeof(p->pt));
	p->im = im;
	p->log = log;
	p->pid = 0;
	int memfd = rst_stub_memfd(err), sync[2] = { -1, -1 }, rc = -1;
	if (memfd < 0)
		return -1;
	if (pipe2(sync, O_CLOEXEC) < 0) {
		fp_fail(err, errno, "pipe: %s", strerror(errno));
		goto out;
	}
	p->pt.cap = im->nth + 1;
	p->pt.threads = calloc(p->pt.cap, sizeof(*p->pt.threads));
	if (!p->pt.threads) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	pid_t want = (pid_t)im->pid;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&want;
	ca.set_tid_size = 1;
	const cr_pstree *root = &im->ps[0];
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		child_exec(memfd, sync[0], root->sid == root->pid, root->pgid == root->pid);
	if (pid < 0) {
		int e = errno;
		if (e == EEXIST)
			fp_fail(err, e, "pid %d was taken just now by another process; retry the restore", want);
		else if (e == EPERM)
			fp_fail_code(err, FP_EXIT_PERM, e,
				     "creating pid %d needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (run forkpoint as root)", want);
		else
			fp_fail(err, e, "clone3 with pid %d: %s", want, strerror(e));
		goto out;
	}
	p->pid = (pid_t)pid;
	p->deadline_ns = p->deadline_ns ? p->deadline_ns : rst_now_ns() + 60000000000LL;
	/* EXITKILL: a restorer that dies half way takes the half-built process
	 * with it (unlike a dump, where the target must survive us). */
	if (ptrace(PTRACE_SEIZE, p->pid, 0, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD))) {
		fp_fail(err, errno, "cannot seize the new process %d: %s", (int)p->pid, strerror(errno));
		goto out;
	}
	close(sync[0]);
	sync[0] = -1;
	if (write(sync[1], "g", 1) != 1) {
		fp_fail(err, errno, "cannot start the new process %d: %s", (int)p->pid, strerror(errno));
		goto out;
	}
	int st;
	int64_t dl = rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000;
	if (rst_wait_stop(p, p->pid, dl, &st, "starting the restorer stub", err))
		goto out;
	if ((st >> 8) != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		fp_fail(err, EIO, "the restorer stub %d stopped unexpectedly (wait status 0x%x)", (int)p->pid, st);
		goto out;
	}
	/* One step past the exec stop: an injected syscall made from inside
	 * execve's stop would have its number overwritten by execve's result. */
	if (ptrace(PTRACE_SINGLESTEP, p->pid, 0, 0)) {
		fp_fail(err, errno, "stepping the restorer stub %d: PTRACE_SINGLESTEP: %s", (int)p->pid, strerror(errno));
		goto out;
	}
	if (rst_wait_stop(p, p->pid, dl, &st, "stepping the restorer stub", err))
		goto out;
	p->pt.pid = p->pid;
	snprintf(p->pt.comm, sizeof(p->pt.comm), "restored %u", im->pid);
	p->pt.timeout_ms = FP_PT_TIMEOUT_MS;
	p->pt.threads[0].tid = p->pid;
	p->pt.threads[0].state = FP_PT_STOPPED;
	p->pt.nthreads = 1;
	rc = rst_proc_prepare(p, err);
out:
	if (memfd >= 0)
		close(memfd);
	if (sync[0] >= 0)
		close(sync[0]);
	if (sync[1] >= 0)
		close(sync[1]);
	if (rc)
		rst_proc_kill(p);
	return rc;
}

/* A process that already holds the image's memory (a fork of a hot
 * snapshot's frozen copy, session/session_hot_fork.c): in pause() with
 * every signal blocked, our child, single-threaded, no fds. It gets the work area (scratch and
 * runner) where the image has nothing; the rest of its memory stays. Its
 * `syscall` is the one at sys_ip (a `syscall; ret` of its own code). */
int rst_proc_adopt(rst_proc *p, rst_image *im, rst_log *log, pid_t pid, uint64_t sys_ip, fp_error *err)
{
	memset(&p->pt, 0, sizeof(p->pt));
	p->im = im;
	p->log = log;
	p->pid = 0;
	p->pt.cap = im->nth + 1;
	p->pt.threads = calloc(p->pt.cap, sizeof(*p->pt.threads));
	if (!p->pt.threads)
		return fp_fail(err, ENOMEM, "out of memory");
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD))) {
		int e = errno;
		free(p->pt.threads);
		p->pt.threads = NULL;
		kill(pid, SIGKILL);
		return fp_fail(err, e, "cannot seize the forked process %d: %s", (int)pid, strerror(e));
	}
	p->pid = pid;
	p->deadline_ns = p->deadline_ns ? p->deadline_ns : rst_now_ns() + 60000000000LL;
	int st;
	int64_t dl = rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) || rst_wait_stop(p, pid, dl, &st, "stopping the forked process", err)) {
		if (!err->msg[0])
			fp_fail(err, errno, "PTRACE_INTERRUPT %d: %s", (int)pid, strerror(errno));
		goto fail;
	}
	p->pt.pid = pid;
	snprintf(p->pt.comm, sizeof(p->pt.comm), "restored %u", im->pid);
	p->pt.timeout_ms = FP_PT_TIMEOUT_MS;
	p->pt.threads[0].tid = pid;
	p->pt.threads[0].state = FP_PT_STOPPED;
	p->pt.nthreads = 1;
	if (fp_pt_get_regs(pid, &p->base_regs, err))
		goto fail;
	p->sys_ip = sys_ip;
	rst_map *m;
	size_t n;
	uint64_t base = 0;
	int64_t r;
	if (rst_read_maps(pid, &m, &n, err))
		goto fail;
	int rc = find_work_area(p, m, n, 2 * 1024 * 1024, &base, err);
	free(m);
	if (rc)
		goto fail;
	if (map_work_area(p, base, err))
		goto fail;
	/* The SIGCONT that ended the group stop a detach leaves (session_hot_fork.c)
	 * waits, blocked: taken out, not delivered later. */
	struct {
		uint64_t set;
		struct timespec zero;
	} cont = { 1ULL << (SIGCONT - 1), { 0, 0 } };
	if (fp_mem_write(pid, p->scratch, &cont, sizeof(cont), err) ||
	    rst_step_sys(p, pid, SYS_rt_sigtimedwait, p->scratch, 0, p->scratch + offsetof(__typeof__(cont), zero), 8, 0, 0,
			 &r, err))
		goto fail;
	/* The fork is registered for rseq already (the copy's thread was):
	 * unregistered, so that the image's registration does not fail. */
	for (size_t i = 0; i < im->nth; i++) {
		const cr_thread_core *tc = &im->th[i].core.thread_core;
		if (tc->has_rseq_entry && tc->rseq_entry.rseq_abi_pointer &&
		    rst_step_sys(p, pid, SYS_rseq, tc->rseq_entry.rseq_abi_pointer, tc->rseq_entry.rseq_abi_size,
				 1 /* RSEQ_FLAG_UNREGISTER */, tc->rseq_entry.signature, 0, 0, &r, err) == 0 && r == 0)
			break;
	}
	const cr_pstree *root = &im->ps[0];
	if (root->sid == root->pid || root->pgid == root->pid) {
		if (rst_step_sys(p, pid, root->sid == root->pid ? SYS_setsid : SYS_setpgid, 0, 0, 0, 0, 0, 0, &r, err))
			goto fail;
		if (r < 0)
			rst_logf(log, 2, "%s in the forked process: %s", root->sid == root->pid ? "setsid" : "setpgid",
				 strerror((int)-r));
	}
	rst_logf(log, 3, "adopted the forked process %d (work area at 0x%llx)", (int)pid, (unsigned long long)base);
	return 0;
fail:
	rst_proc_kill(p);
	return -1;
}

/* Queues clone3 in p's main thread with set_tid = want. Under
 * PTRACE_O_TRACEFORK a new process is traced from its creation and stops
 * before it runs any code. */
int rst_queue_clone3(rst_proc *p, uint64_t flags, int exit_signal, pid_t want, const char *what, int64_t *ret,
			fp_error *err)
{
	struct blob {
		struct clone_args ca;
		pid_t tid;
	};
	uint64_t remote;
	if (rst_q_room(p, 1, sizeof(struct blob) + 16, err))
		return -1;
	struct blob *b = rst_q_data(p, sizeof(*b), &remote, err);
	if (!b)
		return -1;
	b->ca.flags = flags;
	b->ca.exit_signal = (uint64_t)exit_signal;
	b->ca.set_tid = remote + offsetof(struct blob, tid);
	b->ca.set_tid_size = 1;
	b->tid = want;
	char w[96];
	snprintf(w, sizeof(w), "creating %s %d with clone3 (EEXIST: the id is in use)", what, (int)want);
	return rst_q(p, p->pid, w, RST_MUST, SYS_clone3, remote, sizeof(b->ca), 0, 0, 0, 0, ret, err);
}

/* Every thread of the image but the leader, in one round trip: the clone3
 * calls run in one list, without PTRACE_O_TRACECLONE (its event stop would
 * cost a round trip per thread); each new thread parks in the runner's
 * pause loop (every signal is blocked), and is then seized and stopped, all
 * of them at once. If the restorer dies meanwhile, EXITKILL on the leader
 * takes the whole process. */
int rst_proc_make_threads(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	if (im->nth < 2)
		return 0;
	if (p->pt.nthreads + im->nth - 1 > p->pt.cap)
		return fp_fail(err, EINVAL, "internal: thread table full");
	int64_t *made = calloc(im->nth, sizeof(*made));
	if (!made)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = -1;
	for (size_t i = 1; i < im->nth; i++)
		if (rst_queue_clone3(p, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, 0,
				 (pid_t)im->th[i].tid, "thread", &made[i], err))
			goto out;
	if (rst_flush(p, err))
		goto out;
	for (size_t i = 1; i < im->nth; i++) {
		pid_t tid = (pid_t)im->th[i].tid;
		if (made[i] != tid) {
			fp_fail(err, EIO, "thread %d was created as %lld", (int)tid, (long long)made[i]);
			goto out;
		}
		if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD))) {
			fp_fail(err, errno, "cannot seize the new thread %d: %s", (int)tid, strerror(errno));
			goto out;
		}
		fp_pt_thread *t = &p->pt.threads[p->pt.nthreads++];
		memset(t, 0, sizeof(*t));
		t->tid = tid;
		t->state = FP_PT_RUNNING;
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
			fp_fail(err, errno, "cannot stop the new thread %d: %s", (int)tid, strerror(errno));
			goto out;
		}
	}
	int64_t dl = rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000;
	for (size_t i = 0; i < p->pt.nthreads; i++) {
		fp_pt_thread *t = &p->pt.threads[i];
		int st;
		if (t->state != FP_PT_RUNNING)
			continue;
		if (rst_wait_stop(p, t->tid, dl, &st, "stopping a new thread", err))
			goto out;
		t->state = FP_PT_STOPPED;
		rst_logf(p->log, 3, "thread %d created (first stop 0x%x)", (int)t->tid, st);
	}
	rc = 0;
out:
	free(made);
	return rc;
}

int rst_proc_clone(rst_proc *parent, rst_proc *c, uint64_t flags, int *st, fp_error *err)
{
	pid_t want = (pid_t)c->im->pid;
	if (ptrace(PTRACE_SETOPTIONS, parent->pid, 0,
		   (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK)))
		return fp_fail(err, errno, "PTRACE_SETOPTIONS on %d: %s", (int)parent->pid, strerror(errno));
	int64_t made = 0;
	if (rst_queue_clone3(parent, flags, SIGCHLD, want, "process", &made, err) || rst_flush(parent, err))
		return -1;
	if (made != want)
		return fp_fail(err, EIO, "process %d was created as %lld", (int)want, (long long)made);
	c->pid = want;
	c->pt.pid = want;
	snprintf(c->pt.comm, sizeof(c->pt.comm), "restored %u", c->im->pid);
	c->pt.timeout_ms = FP_PT_TIMEOUT_MS;
	c->pt.cap = c->im->nth + 1;
	c->pt.threads = calloc(c->pt.cap, sizeof(*c->pt.threads));
	if (!c->pt.threads)
		return fp_fail(err, ENOMEM, "out of memory");
	c->pt.threads[0].tid = want;
	c->pt.threads[0].state = FP_PT_RUNNING;
	c->pt.nthreads = 1;
	if (rst_wait_stop(c, want, rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000, st, "starting a child process", err))
		return -1;
	c->pt.threads[0].state = FP_PT_STOPPED;
	return 0;
}

/* A child process of the tree: forked by its parent's stub (injected clone3
 * with the image's pid, so it is the parent's child as in the image) while
 * both are still bare stubs. It starts as a copy of the stub: same work
 * area, scratch area and parked vDSO, at the same addresses. */
int rst_proc_fork(rst_proc *parent, rst_proc *c, rst_image *im, fp_error *err)
{
	memset(c, 0, sizeof(*c));
	c->im = im;
	c->log = parent->log;
	c->deadline_ns = parent->deadline_ns;
	/* The work area must be free in the child's image too. */
	uint64_t lo = parent->stub_start, hi = parent->stub_start + 2 * 1024 * 1024;
	for (size_t i = 0; i < im->mm.n_vmas; i++)
		if (im->mm.vmas[i].start < hi && lo < im->mm.vmas[i].end)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOSPC,
					    "process %u has a mapping where the restorer works in its parent (0x%llx)", im->pid,
					    (unsigned long long)lo);
	/* an fd table or fs info (cwd, root, umask) shared with the parent
	 * (clone CLONE_FILES, CLONE_FS) is shared again: the parent's, filled
	 * when the parent's files are restored */
	uint64_t share = 0;
	if (im->ids.files_id == parent->im->ids.files_id)
		share |= CLONE_FILES, c->files_shared = true;
	if (im->ids.fs_id == parent->im->ids.fs_id)
		share |= CLONE_FS;
	int st;
	if (rst_proc_clone(parent, c, share, &st, err))
		return -1;
	c->stub_start = parent->stub_start;
	c->stub_end = parent->stub_end;
	c->scratch = parent->scratch;
	c->scratch_len = parent->scratch_len;
	c->kvvar_start = parent->kvvar_start, c->kvvar_end = parent->kvvar_end;
	c->kvdso_start = parent->kvdso_start, c->kvdso_end = parent->kvdso_end;
	c->kvclock_start = parent->kvclock_start, c->kvclock_end = parent->kvclock_end;
	c->base_regs = parent->base_regs;
	c->sys_ip = parent->sys_ip;
	c->runner = parent->runner;
	if (rst_proc_join_group(parent, c, err))
		return -1;
	rst_logf(c->log, 3, "process %u forked by %u (first stop 0x%x)", im->pid, parent->im->pid, st);
	return 0;
}

/* Session and group: a child starts in its parent's. */
int rst_proc_join_group(rst_proc *parent, rst_proc *c, fp_error *err)
{
	const rst_image *im = c->im;
	const cr_pstree *me = &im->ps[im->index];
	int64_t rr;
	if (me->sid == me->pid) {
		if (rst_sys(c, c->pid, "setsid", SYS_setsid, 0, 0, 0, 0, 0, 0, &rr, err))
			return -1;
	} else if (me->pgid == me->pid) {
		if (rst_sys(c, c->pid, "setpgid", SYS_setpgid, 0, 0, 0, 0, 0, 0, &rr, err))
			return -1;
	} else if (rst_sys_raw(c, c->pid, SYS_setpgid, 0, me->pgid, 0, 0, 0, 0, &rr, err)) {
		return -1;
	} else if (rr < 0 && getpgid(parent->pid) != (pid_t)me->pgid) {
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, (int)-rr, "process %u cannot join process group %u: %s",
				    im->pid, me->pgid, strerror((int)-rr));
	}
	return 0;
}

void rst_proc_kill(rst_proc *p)
{
	rst_pages_abort(p); /* its threads write into the process */
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		int64_t dl = rst_now_ns() + 5000000000LL;
		/* Reap the threads (we trace them) and then the process. */
		for (size_t i = 0; i < p->pt.nthreads; i++) {
			int st;
			pid_t tid = p->pt.threads[i].tid;
			if (tid == p->pid)
				continue;
			while (rst_wait(tid, dl, &st) == 1 && !WIFEXITED(st) && !WIFSIGNALED(st))
				;
		}
		for (;;) {
			int st;
			int r = rst_wait(p->pid, dl, &st);
			if (r != 1 || WIFEXITED(st) || WIFSIGNALED(st))
				break;
		}
		rst_logf(p->log, 2, "killed the half-restored process %d", (int)p->pid);
	}
	p->pid = 0;
	free(p->pt.threads);
	p->pt.threads = NULL;
	p->pt.nthreads = p->pt.cap = 0;
	rst_batch_free(p);
}

int rst_proc_release(rst_proc *p, fp_error *err)
{
	int rc = fp_pt_detach(&p->pt, err);
	rst_batch_free(p);
	return rc;
}
