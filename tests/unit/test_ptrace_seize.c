/* Seize + interrupt + detach an 8-thread target (threads computing, in
 * futex wait, in nanosleep, blocked in read) 1000 times; the target must
 * keep running and compute the same results without ever seeing EINTR.
 * Also resume/interrupt while staying attached, and the per-thread state
 * reads (regs, xstate) on every thread. Prints the measured costs. */
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#include <dirent.h>
#include <sys/ptrace.h>

#define CYCLES 1000

static int all_traced_stopped(pid_t pid, fp_pt_proc *p)
{
	for (size_t i = 0; i < p->nthreads; i++) {
		char path[64], buf[512];
		if (p->threads[i].state == FP_PT_GONE)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, p->threads[i].tid);
		FILE *f = fopen(path, "r");
		if (!f)
			return 0;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *q = strrchr(buf, ')');
		if (!q || q[2] != 't')
			return 0;
	}
	return 1;
}

int main(void)
{
	pt_child c;
	char line[256];
	fp_error err;
	fp_error_clear(&err);
	if (pt_spawn(&c, "pt_threads", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "ready"));

	fp_pt_proc p;
	double total = 0, worst = 0;
	int ok = 0;
	for (int i = 0; i < CYCLES; i++) {
		double t0 = pt_now_us();
		if (fp_pt_seize(&p, c.pid, 5000, &err)) {
			CHECKF(0, "cycle %d: seize: %s", i, err.msg);
			break;
		}
		size_t stopped = fp_pt_nstopped(&p);
		if (i == 0) {
			CHECKF(stopped == 8, "stopped %zu threads, want 8", stopped);
			CHECK(all_traced_stopped(c.pid, &p));
		}
		int rc = fp_pt_detach(&p, &err);
		double dt = pt_now_us() - t0;
		total += dt;
		if (dt > worst)
			worst = dt;
		if (rc || stopped != 8) {
			CHECKF(0, "cycle %d: stopped %zu, detach rc %d: %s", i, stopped, rc, err.msg);
			break;
		}
		ok++;
	}
	CHECK(ok == CYCLES);
	printf("seize+interrupt+detach of 8 threads: %.1f us mean (%.1f us/thread), worst %.0f us, %d cycles\n",
	       total / (ok ? ok : 1), total / (ok ? ok : 1) / 8, worst, ok);

	/* Same with regs + xstate of every thread, as a dumper would do. */
	if (!fp_pt_seize(&p, c.pid, 5000, &err)) {
		size_t xs = 0;
		CHECK(fp_pt_xstate_size(p.threads[0].tid, &xs, &err) == 0);
		printf("NT_X86_XSTATE size: %zu bytes\n", xs);
		fp_pt_detach(&p, &err);
		char *xbuf = malloc(xs ? xs : 4096);
		double t0 = pt_now_us();
		int n = 100, good = 0;
		for (int i = 0; i < n; i++) {
			if (fp_pt_seize(&p, c.pid, 5000, &err))
				break;
			int bad = 0;
			for (size_t k = 0; k < p.nthreads; k++) {
				struct user_regs_struct r;
				size_t got;
				if (p.threads[k].state != FP_PT_STOPPED)
					continue;
				bad |= fp_pt_get_regs(p.threads[k].tid, &r, &err);
				bad |= fp_pt_get_xstate(p.threads[k].tid, xbuf, xs, &got, &err);
			}
			if (!fp_pt_detach(&p, &err) && !bad)
				good++;
		}
		CHECK(good == n);
		printf("seize+interrupt+regs+xstate+detach of 8 threads: %.1f us mean\n", (pt_now_us() - t0) / n);
		free(xbuf);
	} else {
		CHECKF(0, "seize: %s", err.msg);
	}

	/* Stay attached: resume and interrupt again, a few times. */
	if (!fp_pt_seize(&p, c.pid, 5000, &err)) {
		int good = 0;
		for (int i = 0; i < 50; i++) {
			if (fp_pt_resume(&p, &err)) {
				CHECKF(0, "resume: %s", err.msg);
				break;
			}
			fp_pt_pump(&p, 1, &err);
			if (fp_pt_interrupt(&p, 5000, &err)) {
				CHECKF(0, "interrupt: %s", err.msg);
				break;
			}
			if (fp_pt_nstopped(&p) == 8)
				good++;
		}
		CHECK(good == 50);
		CHECK(fp_pt_detach(&p, &err) == 0);
	}
	/* A detached target is not traced any more. */
	char tp[sizeof(line)] = "";
	snprintf(line, sizeof(line), "/proc/%d/status", c.pid);
	FILE *f = fopen(line, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "TracerPid:", 10))
				memcpy(tp, line + 10, sizeof(line) - 10);
		fclose(f);
	}
	CHECKF(atoi(tp) == 0, "TracerPid after detach: %s", tp);

	CHECK(pt_send(&c, "q") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ok ", 3));
	printf("target: %s\n", line);
	CHECKF(pt_finish(&c, 10000) == 0, "target did not exit cleanly");

	/* Threads appearing and vanishing during the seize: every thread we
	 * hold is stopped, none is missed (all of /proc/PID/task is ours). */
	if (pt_spawn(&c, "pt_threads", "churn"))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "ready"));
	int churn_ok = 0, extra = 0;
	for (int i = 0; i < 300; i++) {
		if (fp_pt_seize(&p, c.pid, 5000, &err)) {
			CHECKF(0, "churn seize %d: %s", i, err.msg);
			break;
		}
		size_t live = fp_pt_nstopped(&p);
		extra += live > 8;
		int all = all_traced_stopped(c.pid, &p);
		/* every live task of the process is in our list */
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task", c.pid);
		DIR *d = opendir(path);
		struct dirent *de;
		int missing = 0;
		while (d && (de = readdir(d))) {
			pid_t tid = (pid_t)atoi(de->d_name);
			fp_pt_thread *t = tid > 0 ? fp_pt_find(&p, tid) : NULL;
			if (tid > 0 && (!t || t->state != FP_PT_STOPPED)) {
				char st = '?';
				char sp[64], b[512];
				snprintf(sp, sizeof(sp), "/proc/%d/task/%d/stat", c.pid, tid);
				FILE *sf = fopen(sp, "r");
				if (sf) {
					size_t nr = fread(b, 1, sizeof(b) - 1, sf);
					b[nr] = '\0';
					char *q = strrchr(b, ')');
					st = q ? q[2] : '?';
					fclose(sf);
				}
				missing += st != 'Z' && st != 'X' && st != '?';
			}
		}
		if (d)
			closedir(d);
		int rc = fp_pt_detach(&p, &err);
		if (rc || !all || missing || live < 8) {
			CHECKF(0, "churn cycle %d: live %zu all-stopped %d missing %d rc %d %s", i, live, all, missing, rc, err.msg);
			break;
		}
		churn_ok++;
	}
	CHECK(churn_ok == 300);
	printf("churn: 300 seizes, %d caught a short-lived thread\n", extra);
	CHECK(pt_send(&c, "q") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ok ", 3));
	printf("target: %s\n", line);
	CHECKF(pt_finish(&c, 10000) == 0, "target did not exit cleanly");
	return fp_test_done();
}
