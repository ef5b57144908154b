/* Zombie children come back as zombies: forked by their parent's stub like
 * any child (so the parent is theirs and the pid is the image's), then made
 * to end the way they ended, with the same wait status: exit_group(code),
 * or a kill of themselves by the signal that ended them (its handler set to
 * the default first, every signal unblocked). The parent's own SIGCHLD
 * for it is taken back: the program already had it (or has it pending in
 * its image, which restores it). A core dump flag in the status is lost. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "rst_int.h"

struct k_sigaction_x86 {
	uint64_t handler, flags, restorer, mask;
};

static bool is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] == 'Z';
}

int rst_zombie_end(rst_proc *parent, rst_proc *z, fp_error *err)
{
	uint32_t status = z->im->th[0].core.tc.exit_code;
	int sig = (int)(status & 0x7f);
	struct user_regs_struct r = z->base_regs;
	r.rip = z->sys_ip;
	r.orig_rax = (uint64_t)-1;
	if (sig && sig != 0x7f) {
		struct k_sigaction_x86 dfl = { 0 };
		if (sig != SIGKILL && sig != SIGSTOP &&
		    (rst_q_mem(z, z->pid, "resetting the handler of the signal that ended it", RST_MUST, SYS_rt_sigaction,
			       (uint64_t)sig, 0, 0, 8, 0, 0, 1, &dfl, sizeof(dfl), NULL, err) ||
		     rst_flush(z, err)))
			return -1;
		if (fp_pt_set_sigmask(z->pid, 0, err))
			return -1;
		r.rax = SYS_kill;
		r.rdi = (uint64_t)z->pid;
		r.rsi = (uint64_t)sig;
	} else {
		r.rax = SYS_exit_group;
		r.rdi = (status >> 8) & 0xff;
	}
	if (fp_pt_set_regs(z->pid, &r, err) || fp_pt_detach(&z->pt, err))
		return fp_wrap(err, "ending zombie %d", (int)z->pid);
	rst_batch_free(z);
	struct timespec nap = { 0, 1000000 };
	for (long long end = rst_now_ns() + 5000000000LL; !is_zombie(z->pid); nanosleep(&nap, NULL))
		if (rst_now_ns() > end)
			return fp_fail(err, ETIMEDOUT, "zombie %d did not end within 5 s", (int)z->pid);
	/* SIGCHLD is blocked in the parent's stub: it waits there; take it. */
	uint64_t set = 1ull << (SIGCHLD - 1);
	struct timespec zero = { 0, 0 };
	int64_t got = 0;
	uint64_t set_at, ts_at;
	uint64_t *sp = rst_q_data(parent, sizeof(set), &set_at, err);
	struct timespec *tp = sp ? rst_q_data(parent, sizeof(zero), &ts_at, err) : NULL;
	if (!tp)
		return -1;
	*sp = set;
	*tp = zero;
	if (rst_q(parent, parent->pid, NULL, 0, SYS_rt_sigtimedwait, set_at, 0, ts_at, 8, 0, 0, &got, err) ||
	    rst_flush(parent, err))
		return -1;
	rst_logf(z->log, 3, "zombie %d ended with status %#x", (int)z->pid, status);
	return 0;
}
