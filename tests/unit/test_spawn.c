/* fp_spawn on real programs: output capture, exit codes, deadlines, and a
 * caller in the state daemons leave us in (SIGCHLD ignored, every signal
 * blocked, stdio closed, stray fds). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "fp_spawn.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_capture_and_exit_codes(void)
{
	char out[256];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);

	const char *echo[] = {"echo", "hello", "world", NULL};
	CHECKF(fp_spawn(echo, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECK(r.exited && r.exit_code == 0 && !r.timed_out && r.term_signal == 0);
	CHECKF(!strcmp(out, "hello world\n"), "got '%s'", out);
	CHECK(r.out_len == strlen("hello world\n") && !r.out_truncated);

	/* stdout and stderr both land in the buffer; a non-zero exit is not an error. */
	const char *sh[] = {"/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3", NULL};
	CHECKF(fp_spawn(sh, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECK(r.exited && r.exit_code == 3);
	CHECKF(strstr(out, "to-out\n") && strstr(out, "to-err\n"), "got '%s'", out);

	/* No buffer: output is drained and dropped, the child still finishes. */
	const char *big[] = {"/bin/sh", "-c", "head -c 300000 /dev/zero; exit 5", NULL};
	CHECKF(fp_spawn(big, NULL, NULL, 0, &r, &err) == 0, "%s", err.msg);
	CHECK(r.exit_code == 5 && r.out_len == 0 && r.out_truncated);

	/* More output than fits: the head is kept, the rest dropped, no hang. */
	char small[16];
	const char *yes[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 5000 ]; do echo line$i; i=$((i+1)); done",
			     NULL};
	CHECKF(fp_spawn(yes, NULL, small, sizeof(small), &r, &err) == 0, "%s", err.msg);
	CHECK(r.exit_code == 0 && r.out_truncated && r.out_len == sizeof(small) - 1);
	CHECKF(!strncmp(small, "line0\nline1\n", 12) && strlen(small) == sizeof(small) - 1, "got '%s'",
	       small);

	/* stdin is /dev/null: cat ends at once instead of waiting for input. */
	const char *cat[] = {"cat", NULL};
	fp_spawn_opts quick = {.timeout_ms = 10000};
	CHECKF(fp_spawn(cat, &quick, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECK(r.exit_code == 0 && r.out_len == 0);
	const char *in[] = {"readlink", "/proc/self/fd/0", NULL};
	CHECKF(fp_spawn(in, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(out, "/dev/null\n"), "stdin is '%s'", out);
}

static void test_options(void)
{
	char out[256];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);

	const char *pwd[] = {"/bin/pwd", NULL};
	fp_spawn_opts in_tmp = {.cwd = "/"};
	CHECKF(fp_spawn(pwd, &in_tmp, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(out, "/\n"), "got '%s'", out);

	char *env[] = {"FP_SPAWN_TEST=yes", NULL};
	fp_spawn_opts with_env = {.envp = env};
	const char *envcmd[] = {"/usr/bin/env", NULL};
	CHECKF(fp_spawn(envcmd, &with_env, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(out, "FP_SPAWN_TEST=yes\n"), "got '%s'", out);

	fp_spawn_opts bad_cwd = {.cwd = "/nonexistent-fp-dir"};
	CHECK(fp_spawn(pwd, &bad_cwd, out, sizeof(out), &r, &err) < 0);
	CHECKF(err.errnum == ENOENT, "errnum %d: %s", err.errnum, err.msg);
}

/* nofile_up: the child's soft file limit at the hard one (CRIU's service
 * fds), the caller's own left as it was; without it, the caller's. */
static void test_nofile_up(void)
{
	struct rlimit was;
	CHECK(getrlimit(RLIMIT_NOFILE, &was) == 0);
	if (was.rlim_max == RLIM_INFINITY || was.rlim_max <= 64)
		return;
	struct rlimit low = { 64, was.rlim_max };
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	char out[256], want[64];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);
	const char *soft[] = {"/bin/sh", "-c", "ulimit -Sn", NULL};
	fp_spawn_opts up = {.nofile_up = true}, plain = {0};
	CHECKF(fp_spawn(soft, &up, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	snprintf(want, sizeof(want), "%llu\n", (unsigned long long)was.rlim_max);
	CHECKF(!strcmp(out, want), "with nofile_up the child's soft limit is '%s', not the hard %s", out, want);
	CHECKF(fp_spawn(soft, &plain, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(out, "64\n"), "without it the child's soft limit is '%s', not the caller's 64", out);
	struct rlimit now;
	CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && now.rlim_cur == 64);
	CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
}

static void test_exec_failures(void)
{
	char out[256];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);

	const char *missing[] = {"/nonexistent-fp/prog", "x", NULL};
	CHECK(fp_spawn(missing, NULL, out, sizeof(out), &r, &err) < 0);
	CHECKF(err.errnum == ENOENT && strstr(err.msg, "/nonexistent-fp/prog"), "%d %s", err.errnum,
	       err.msg);

	const char *notonpath[] = {"fp-no-such-program-xyz", NULL};
	CHECK(fp_spawn(notonpath, NULL, out, sizeof(out), &r, &err) < 0);
	CHECKF(err.errnum == ENOENT && strstr(err.msg, "fp-no-such-program-xyz") &&
		       strstr(err.msg, "PATH"),
	       "%s", err.msg);

	char tmpl[] = "/tmp/fp-spawn-noexec.XXXXXX";
	int fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	if (fd >= 0) {
		close(fd);
		const char *noexec[] = {tmpl, NULL};
		CHECK(fp_spawn(noexec, NULL, out, sizeof(out), &r, &err) < 0);
		CHECKF(err.errnum == EACCES && strstr(err.msg, tmpl), "%d %s", err.errnum, err.msg);
		unlink(tmpl);
	}

	const char *segv[] = {"/bin/sh", "-c", "kill -SEGV $$", NULL};
	CHECK(fp_spawn(segv, NULL, out, sizeof(out), &r, &err) < 0);
	CHECK(!r.exited && r.term_signal == SIGSEGV);
	CHECKF(strstr(err.msg, "signal 11") && strstr(err.msg, "SEGV"), "%s", err.msg);

	CHECK(fp_spawn(NULL, NULL, out, sizeof(out), &r, &err) < 0);
}

/* Gone, or a zombie waiting for pid 1 (which reaps slowly here). */
static int wait_dead(int pid, int secs)
{
	double end = now_s() + secs;
	while (now_s() < end) {
		char path[64], stat[512] = "";
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			return 1;
		size_t got = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[got] = '\0';
		char *rp = strrchr(stat, ')');
		if (rp && rp[1] == ' ' && rp[2] == 'Z')
			return 1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void test_timeout(void)
{
	char out[256];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);

	const char *argv[] = {"/bin/sh", "-c", "echo started; exec sleep 100", NULL};
	fp_spawn_opts opts = {.timeout_ms = 300};
	double t0 = now_s();
	CHECK(fp_spawn(argv, &opts, out, sizeof(out), &r, &err) < 0);
	double took = now_s() - t0;
	CHECKF(took < 10, "took %.1f s to give up on a 0.3 s deadline", took);
	CHECK(r.timed_out && !r.exited && r.term_signal == SIGKILL);
	CHECKF(err.errnum == ETIMEDOUT && err.exit_code == FP_EXIT_TIMEOUT, "%d %s", err.errnum,
	       err.msg);
	CHECKF(strstr(err.msg, "sleep 100") && strstr(err.msg, "killed"), "%s", err.msg);
	CHECKF(!strcmp(out, "started\n"), "output before the kill is kept: '%s'", out);
	/* Reaped, not left as a zombie. */
	CHECK(r.pid > 0 && kill(r.pid, 0) < 0 && errno == ESRCH);

	/* A grandchild holding the output pipe open must not delay the return. */
	const char *bg[] = {"/bin/sh", "-c", "sleep 100 & echo $!; echo parent-done", NULL};
	fp_spawn_opts bg_opts = {.timeout_ms = 30000};
	t0 = now_s();
	CHECKF(fp_spawn(bg, &bg_opts, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	took = now_s() - t0;
	CHECKF(took < 20, "waited %.1f s for a grandchild", took);
	CHECK(r.exit_code == 0 && strstr(out, "parent-done"));
	int grandchild = atoi(out);
	if (grandchild > 1)
		kill(grandchild, SIGKILL);

	/* A program that ignores SIGTERM and hangs with children of its own (a
	 * stuck CRIU, a wrapper script): at the deadline all of it dies. */
	const char *tree[] = {"/bin/sh", "-c",
			      "trap '' TERM; sleep 100 & sh -c 'sleep 100 & echo $!; wait' & "
			      "echo $!; wait",
			      NULL};
	fp_spawn_opts tree_opts = {.timeout_ms = 1000};
	CHECK(fp_spawn(tree, &tree_opts, out, sizeof(out), &r, &err) < 0 && r.timed_out);
	int pids[3], n = 0;
	for (char *p = out; n < 3 && *p;) {
		pids[n++] = atoi(p);
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	CHECKF(n == 2, "expected two pids, got '%s'", out);
	for (int i = 0; i < n; i++)
		CHECKF(wait_dead(pids[i], 10), "pid %d outlived the timed-out program", pids[i]);
}

/* The state a container agent or a language runtime may hand us. */
static void test_hostile_caller_state(void)
{
	char out[512];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);

	int stray = dup2(open("/dev/null", O_RDONLY), 57); /* no O_CLOEXEC */
	CHECK(stray == 57);
	struct sigaction ign = {0}, prev;
	ign.sa_handler = SIG_IGN;
	sigaction(SIGCHLD, &ign, &prev);
	sigaction(SIGTERM, &ign, NULL);
	sigset_t all, before;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &before);

	const char *exit7[] = {"/bin/sh", "-c", "exit 7", NULL};
	CHECKF(fp_spawn(exit7, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(r.exited && r.exit_code == 7, "exit status lost with SIGCHLD ignored: %d %s",
	       r.exit_code, err.msg);

	/* The child starts clean: nothing blocked, nothing ignored. */
	const char *status[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL};
	CHECKF(fp_spawn(status, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(strstr(out, "SigBlk:\t0000000000000000") && strstr(out, "SigIgn:\t0000000000000000"),
	       "child signal state:\n%s", out);

	/* And holds no fd but 0-2 (ls's own directory fd is 3). */
	const char *fds[] = {"ls", "/proc/self/fd", NULL};
	CHECKF(fp_spawn(fds, NULL, out, sizeof(out), &r, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(out, "0\n1\n2\n3\n"), "child fds:\n%s", out);

	const char *slow[] = {"sleep", "100", NULL};
	fp_spawn_opts opts = {.timeout_ms = 200};
	double t0 = now_s();
	CHECK(fp_spawn(slow, &opts, out, sizeof(out), &r, &err) < 0 && r.timed_out);
	CHECK(now_s() - t0 < 10);

	/* The caller's state is given back. */
	struct sigaction now;
	sigaction(SIGCHLD, NULL, &now);
	CHECK(now.sa_handler == SIG_IGN);
	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	CHECK(sigismember(&mask, SIGTERM) && sigismember(&mask, SIGCHLD));

	sigprocmask(SIG_SETMASK, &before, NULL);
	sigaction(SIGCHLD, &prev, NULL);
	signal(SIGTERM, SIG_DFL);
	close(stray);
}

static void reap_everything(int sig)
{
	(void)sig;
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static void test_stolen_status(void)
{
	char out[64];
	fp_spawn_result r;
	fp_error err;
	fp_error_clear(&err);
	struct sigaction sa = {0}, prev;
	sa.sa_handler = reap_everything;
	sigaction(SIGCHLD, &sa, &prev);
	const char *argv[] = {"true", NULL};
	int rc = fp_spawn(argv, NULL, out, sizeof(out), &r, &err);
	sigaction(SIGCHLD, &prev, NULL);
	CHECK(rc < 0);
	CHECKF(err.errnum == ECHILD && strstr(err.msg, "stolen by another reaper"), "%d %s",
	       err.errnum, err.msg);
}

/* With fds 0-2 closed, pipe() hands out 0-2; the child must still get the
 * pipe on 1 and 2 and /dev/null on 0. Done in a forked copy of the test. */
static void test_closed_stdio(void)
{
	int report[2];
	if (pipe(report) < 0) {
		CHECK(0);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(report[0]);
		if (report[1] < 3)
			report[1] = fcntl(report[1], F_DUPFD, 3);
		close(0);
		close(1);
		close(2);
		char out[128];
		fp_spawn_result r;
		fp_error err;
		const char *argv[] = {"/bin/sh", "-c", "echo via-stdout; echo via-stderr >&2; "
						       "readlink /proc/self/fd/0",
				      NULL};
		int rc = fp_spawn(argv, NULL, out, sizeof(out), &r, &err);
		int ok = rc == 0 && !strcmp(out, "via-stdout\nvia-stderr\n/dev/null\n");
		if (!ok)
			dprintf(report[1], "rc %d out '%s' err '%s'", rc, out, rc ? err.msg : "");
		_exit(ok ? 0 : 1);
	}
	close(report[1]);
	char why[512] = "";
	ssize_t n = read(report[0], why, sizeof(why) - 1);
	if (n > 0)
		why[n] = '\0';
	close(report[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "with stdio closed: %s", why);
}

static void test_which(void)
{
	char buf[4096];
	fp_error err;
	CHECK(fp_which("sh", buf, sizeof(buf), &err) == 0 && buf[0] == '/' && access(buf, X_OK) == 0);
	CHECK(fp_which("/x/y", buf, sizeof(buf), &err) == 0 && !strcmp(buf, "/x/y"));
	CHECK(fp_which("fp-no-such-program-xyz", buf, sizeof(buf), &err) < 0 && err.errnum == ENOENT);
}

int main(void)
{
	test_which();
	test_capture_and_exit_codes();
	test_options();
	test_nofile_up();
	test_exec_failures();
	test_timeout();
	test_hostile_caller_state();
	test_stolen_status();
	test_closed_stdio();
	return fp_test_done();
}
