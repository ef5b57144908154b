#include "criu_probe.h"
#include "fp_clock.h"
#include "config.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_spawn.h"
#include "paths.h"

static void nap_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000};
	nanosleep(&ts, NULL);
}

int fp_criu_probe_timeout_ms(void)
{
	struct fp_config_value cv;
	const char *s = fp_setting("criu_probe_timeout", &cv);
	char *end;
	if (s && *s) {
		double secs = strtod(s, &end);
		if (*end == '\0' && secs > 0 && secs < 3600)
			return (int)(secs * 1000);
	}
	return FP_CRIU_PROBE_DEFAULT_MS;
}

static int exe_is_sleep(pid_t pid)
{
	char path[64], exe[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	const char *base = strrchr(exe, '/');
	return base && !strcmp(base, "/sleep");
}

/* A TCP socket listening on loopback (any port), or -1. */
static int tcp_listener(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (s >= 0 && (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)) {
		close(s);
		s = -1;
	}
	return s;
}

/* The throw-away target: a session of its own (so no --shell-job is needed),
 * stdio on /dev/null, and fd 3 a TCP socket listening on loopback: CRIU
 * 4.1.1 passed a probe without one on a kernel where it cannot dump any
 * TCP socket ("Can't get 1:16 opt"). Only async-signal-safe calls after
 * fork: the caller may have threads. */
static pid_t start_target(void)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -1;
	int tcp = tcp_listener();
	if (tcp < 0) {
		close(devnull);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		static char *const argv[] = {"sleep", "1000", NULL};
		static char *const envp[] = {NULL};
		setsid();
		for (int fd = 0; fd < 3; fd++)
			dup2(devnull, fd);
		dup2(tcp, 3); /* without close-on-exec: sleep keeps it */
		syscall(SYS_close_range, 4, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	close(devnull);
	close(tcp);
	return pid;
}

/* The first "Error" line of a CRIU log, or nothing. CRIU logs one that is
 * not fatal where root lacks CAP_SYS_RESOURCE (it cannot raise its own
 * NOFILE limit): not the cause, so passed over. */
static void first_error(const char *dir, const char *log, char *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, log);
	buf[0] = '\0';
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[400];
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Error", 5) && !strstr(line, "RLIMIT_NOFILE")) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, ": %s", line);
			break;
		}
	fclose(f);
}

/* Runs one CRIU step; on failure fills why and returns -1. */
static int run_step(const char *criu, const char *step, const char *const argv[], const char *dir,
		    const char *log, char *why, size_t wlen)
{
	fp_spawn_result res;
	fp_spawn_opts opts = {.timeout_ms = fp_criu_probe_timeout_ms()};
	fp_error e;
	fp_error_clear(&e);
	char errline[420];
	if (fp_spawn(argv, &opts, NULL, 0, &res, &e) < 0) {
		first_error(dir, log, errline, sizeof(errline));
		if (res.timed_out)
			snprintf(why, wlen,
				 "%s: `criu %s` of a test process did not finish within %.0f s and was "
				 "killed (CRIU 4.1.1 hangs this way where hardware breakpoints do not "
				 "trap; 4.2 or later detects it)",
				 criu, step, opts.timeout_ms / 1000.0);
		else
			snprintf(why, wlen, "%s: `criu %s` of a test process failed: %s%s", criu, step,
				 e.msg, errline);
		return -1;
	}
	if (res.exit_code != 0) {
		first_error(dir, log, errline, sizeof(errline));
		snprintf(why, wlen, "%s: `criu %s` of a test process exited with %d%s", criu, step,
			 res.exit_code, errline[0] ? errline : " and logged no error");
		return -1;
	}
	return 0;
}

/* Waits (with a deadline) until pid, our child, is gone; reaps it. */
static int reap_within(pid_t pid, int ms)
{
	long long end = fp_mono_ms() + ms;
	for (;;) {
		pid_t w = waitpid(pid, NULL, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD))
			return 0;
		if (fp_mono_ms() > end)
			return -1;
		nap_ms(5);
	}
}

int fp_criu_probe(const char *criu, char *why, size_t wlen)
{
	char dir[] = "/tmp/forkpoint-criu-probe.XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(why, wlen, "%s: cannot test it: mkdtemp in /tmp: %s", criu, strerror(errno));
		return -1;
	}
	int rc = -1;
	pid_t pid = start_target();
	if (pid < 0) {
		snprintf(why, wlen, "%s: cannot test it: cannot start a test process: %s", criu,
			 strerror(errno));
		goto out;
	}
	long long end = fp_mono_ms() + 5000;
	while (!exe_is_sleep(pid) && fp_mono_ms() < end)
		nap_ms(2);
	if (!exe_is_sleep(pid)) {
		snprintf(why, wlen, "%s: cannot test it: /bin/sleep did not start", criu);
		kill(pid, SIGKILL);
		reap_within(pid, 5000);
		goto out;
	}
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	const char *dump[] = {criu, "dump", "-t", spid, "-D", dir, "-o", "dump.log", NULL};
	if (run_step(criu, "dump", dump, dir, "dump.log", why, wlen) < 0) {
		kill(pid, SIGKILL);
		reap_within(pid, 5000);
		goto out;
	}
	/* The dump killed it; its pid must be free before the restore. */
	if (reap_within(pid, 5000) < 0) {
		snprintf(why, wlen, "%s: `criu dump` exited 0 but left the test process running", criu);
		kill(pid, SIGKILL);
		reap_within(pid, 5000);
		goto out;
	}
	const char *restore[] = {criu, "restore", "-d", "-D", dir, "-o", "restore.log", NULL};
	if (run_step(criu, "restore", restore, dir, "restore.log", why, wlen) < 0)
		goto out;
	/* Restored with -d it is no longer our child: hold it by pidfd so the
	 * kill cannot reach a reused pid. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || !exe_is_sleep(pid)) {
		snprintf(why, wlen, "%s: `criu restore` exited 0 but the test process %d is not running",
			 criu, (int)pid);
	} else {
		rc = 0;
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	}
	if (pidfd >= 0)
		close(pidfd);
out:
	fp_rm_rf(dir, NULL);
	return rc;
}
