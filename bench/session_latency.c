/* Shell-session latencies through the library (issue 13): one long-lived
 * client drives a shell session with forkpoint_session_exec, _snap and
 * _restore, so no process start is paid per call, as an agent in Python or
 * C pays none. Measures, never asserts.
 *
 *   session_latency [RUNS]
 *       starts a shell session (in $FORKPOINT_HOME), then per round: exec
 *       `true`, snap, restore of that snapshot, exec `true` after it, rm.
 *       Prints one line per step: "step median_ms p90_ms" (wall clock of
 *       the call), and "helper_restore" with the helper's own total_ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "include/forkpoint.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *step, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	int p90 = (int)(n * 0.9) - 1;
	printf("%s %.2f %.2f\n", step, v[(n - 1) / 2], v[p90 < 0 ? 0 : p90]);
}

static int die(const char *what, const forkpoint_error *e)
{
	fprintf(stderr, "session_latency: %s: %s\n", what, e->message);
	return 1;
}

static int exec_true(forkpoint_session *s, forkpoint_error *e)
{
	forkpoint_exec_result r;
	if (forkpoint_session_exec(s, "true", 0, &r, e) < 0)
		return -1;
	int ok = r.exit_code == 0;
	forkpoint_exec_result_release(&r);
	if (!ok)
		snprintf(e->message, sizeof(e->message), "`true` did not exit 0");
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 30;
	if (n < 1)
		n = 1;
	double *ex = calloc((size_t)n, sizeof(double)), *sn = calloc((size_t)n, sizeof(double));
	double *re = calloc((size_t)n, sizeof(double)), *sr = calloc((size_t)n, sizeof(double));
	double *af = calloc((size_t)n, sizeof(double)), *hr = calloc((size_t)n, sizeof(double));
	if (!ex || !sn || !re || !sr || !af || !hr)
		return 1;
	forkpoint_error e;
	forkpoint_session *s;
	char name[32];
	snprintf(name, sizeof(name), "lat%d", (int)getpid());
	if (forkpoint_session_create(name, NULL, FORKPOINT_SESSION_SHELL, NULL, &s, &e) < 0)
		return die("create", &e);
	int rc = 0;
	forkpoint_exec_result r;
	if (forkpoint_session_exec(s, "cd /tmp; export A=1", 0, &r, &e) < 0) {
		rc = die("exec", &e);
		goto out;
	}
	forkpoint_exec_result_release(&r);
	for (int i = 0; i < n; i++) {
		char snap[32];
		snprintf(snap, sizeof(snap), "s%d", i);
		forkpoint_restore_result rr;
		double t0 = now_ms();
		if (exec_true(s, &e) < 0) {
			rc = die("exec true", &e);
			goto out;
		}
		double t1 = now_ms();
		if (forkpoint_session_snap(s, snap, NULL, &e) < 0) {
			rc = die("snap", &e);
			goto out;
		}
		double t2 = now_ms();
		if (forkpoint_session_restore(s, snap, &rr, &e) < 0) {
			rc = die("restore", &e);
			goto out;
		}
		double t3 = now_ms();
		if (exec_true(s, &e) < 0) {
			rc = die("exec true after restore", &e);
			goto out;
		}
		double t4 = now_ms();
		if (forkpoint_session_rm(s, snap, &e) < 0) {
			rc = die("rm", &e);
			goto out;
		}
		ex[i] = t1 - t0;
		sn[i] = t2 - t1;
		re[i] = t3 - t2;
		sr[i] = t3 - t1;
		af[i] = t4 - t3;
		hr[i] = rr.total_ms;
	}
	report("exec_true", ex, n);
	report("snap", sn, n);
	report("restore", re, n);
	report("helper_restore", hr, n);
	report("snap_restore", sr, n);
	report("exec_after_restore", af, n);
out:
	if (forkpoint_session_cleanup(s, &e) < 0)
		rc = die("cleanup", &e);
	forkpoint_session_close(s);
	return rc;
}
