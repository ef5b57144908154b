/* Warming a write-tracked tree before an incremental snapshot's stop.
 *
 * On this VM the hypervisor shadows the guest's page tables. A process
 * whose page table entries changed since it last returned to user mode
 * (its own write-protect faults as it wrote, the dumper's re-protection
 * after the previous snapshot) pays for re-syncing every page table touched
 * at its next return to user mode: ~12 ms for 1% of 1 GiB written at random
 * on a quiet machine, 50 ms and more on a loaded one. A process that sleeps
 * between snapshots would pay it inside the stop, at the first injected
 * call, where it was most of the `cores` phase.
 *
 * So before the stop each sleeping thread is stopped and resumed once: it
 * returns to user mode (its interrupted system call restarts), pays the
 * re-sync there, outside the pause, and goes back to sleep. The stop begins
 * once it sleeps again. A running thread is left alone: it returns to user
 * mode often anyway. The process would pay the same at its next wake-up;
 * here it pays it while idle instead. It costs one more ptrace interruption
 * per snapshot, as short as a seize (FP_DUMP_NO_WARM=1 turns it off).
 * (measured: bench/results/warm-*.md) */
#include "dump/dump_int.h"
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "procfs.h"

#define WARM_MAX_PROCS 64
#define WARM_MAX_THREADS 256
#define WARM_WAIT_MS 200

static bool warm_wanted(void)
{
	static _Atomic int w = -1;
	if (w < 0) {
		w = !fp_env_flag("FP_DUMP_NO_WARM");
	}
	return w;
}

struct warm_thread {
	pid_t pid, tid;
};

static char thread_state(pid_t pid, pid_t tid)
{
	struct fp_proc_stat st;
	fp_error e;
	if (fp_proc_read_stat(pid, tid, &st, &e))
		return 'X';
	return st.state;
}

/* Stops and resumes pid once, if a thread of it sleeps; those threads go
 * into out, to be waited for. */
static size_t warm_proc(struct dump_ctx *c, pid_t pid, struct warm_thread *out, size_t cap)
{
	size_t n = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < cap) {
		pid_t tid = (pid_t)atoi(de->d_name);
		if (tid <= 0)
			continue;
		char s = thread_state(pid, tid);
		if (s == 'S') {
			out[n++] = (struct warm_thread){ pid, tid };
		} else if (s != 'R') {
			/* A thread in uninterruptible sleep (a vfork parent,
			 * I/O), stopped or exiting would hold the seize up:
			 * this process pays in the stop as before. */
			n = 0;
			break;
		}
	}
	closedir(d);
	if (!n)
		return 0;
	fp_pt_proc pt;
	memset(&pt, 0, sizeof(pt));
	fp_error e;
	if (fp_pt_seize(&pt, pid, 2000, &e)) {
		dlog(c, "%d: not warmed before the stop (%s)", pid, e.msg);
		return 0;
	}
	if (fp_pt_detach(&pt, &e))
		dlog(c, "%d: detaching after the warming stop: %s", pid, e.msg);
	return n;
}

static void add_tree(pid_t pid, pid_t *pids, size_t *n)
{
	if (*n >= WARM_MAX_PROCS)
		return;
	pids[(*n)++] = pid;
	pid_t *kids = NULL;
	size_t nk = 0;
	if (dump_list_children(pid, &kids, &nk))
		return;
	for (size_t i = 0; i < nk; i++)
		add_tree(kids[i], pids, n);
	free(kids);
}

void dump_warm_tree(struct dump_ctx *c, pid_t root)
{
	if (!warm_wanted())
		return;
	int64_t t0 = dump_now_ns();
	pid_t pids[WARM_MAX_PROCS];
	size_t np = 0;
	add_tree(root, pids, &np);
	/* Only threads asleep now are worth it (and waited for). */
	struct warm_thread th[WARM_MAX_THREADS];
	size_t nt = 0;
	for (size_t i = 0; i < np; i++) {
		struct fp_proc_stat st;
		fp_error e;
		if (fp_proc_read_stat(pids[i], 0, &st, &e) || st.state == 'Z' || st.state == 'T' || st.state == 't')
			continue;
		nt += warm_proc(c, pids[i], th + nt, WARM_MAX_THREADS - nt);
	}
	int64_t t1 = dump_now_ns();
	size_t back = 0;
	int64_t deadline = t1 + (int64_t)WARM_WAIT_MS * 1000000;
	for (size_t i = 0; i < nt; i++) {
		for (;;) {
			char s = thread_state(th[i].pid, th[i].tid);
			if (s != 'R') {
				back++;
				break;
			}
			if (dump_now_ns() > deadline)
				break;
			struct timespec ts = { 0, 50000 };
			nanosleep(&ts, NULL);
		}
	}
	dlog(c, "warmed before the stop: %zu process(es), %zu thread(s) stopped and resumed in %.3f ms, %zu asleep again "
		"after %.3f ms",
	     np, nt, (double)(t1 - t0) / 1e6, back, (double)(dump_now_ns() - t1) / 1e6);
}
