/* The native restorer through its C API (so that `make SAN=1` checks the
 * restorer under ASan/UBSan): a criu-dumped ct_heap is restored natively
 * from plain pages and from forkpoint's zstd page store, proves its memory
 * (SIGUSR2 -> "verify N ok"), is our child (fp_restore_wait sees its end);
 * a forced failure half way leaves no process; a truncated pages file is
 * refused by fp_restore_check. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "common/criu.h"
#include "common/paths.h"
#include "common/fp_spawn.h"
#include "images/pagestore.h"
#include "restore/restore.h"

static char work[] = "/tmp/fp-test-restore.XXXXXX";
static char status_path[512], criu[4096];

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Waits until the status file has a line starting with prefix (the nth
 * such line); copies it into line. */
static int wait_line(const char *prefix, int nth, char *line, size_t len, int timeout_ms)
{
	long long dl = now_ms() + timeout_ms;
	while (now_ms() < dl) {
		FILE *f = fopen(status_path, "r");
		int seen = 0;
		if (f) {
			while (fgets(line, (int)len, f))
				if (!strncmp(line, prefix, strlen(prefix)) && ++seen == nth) {
					fclose(f);
					return 0;
				}
			fclose(f);
		}
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

static pid_t start_heap(void)
{
	char bin[512];
	fp_test_build_path(bin, sizeof(bin), "tests/targets/ct_heap");
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		execl(bin, "ct_heap", status_path, "--mib=4", "--setsid", "--quiet-stdio", "--same-pid", (char *)NULL);
		_exit(127);
	}
	char line[256];
	if (wait_line("ready", 1, line, sizeof(line), 10000)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static int criu_dump(pid_t pid, const char *dir)
{
	mkdir(dir, 0700);
	char pidbuf[16];
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	const char *argv[] = { criu, "dump", "-t", pidbuf, "-D", dir, "-o", "dump.log", "-v4", NULL };
	fp_spawn_result res;
	fp_error err;
	int rc = fp_spawn(argv, NULL, NULL, 0, &res, &err);
	waitpid(pid, NULL, 0); /* criu killed it; free the pid */
	return rc == 0 && res.exit_code == 0 ? 0 : -1;
}

static int verify(pid_t pid, int nth)
{
	char line[512];
	kill(pid, SIGUSR2);
	if (wait_line("verify", nth, line, sizeof(line), 20000))
		return -1;
	char want[64];
	/* every restore of the image starts from its first verification */
	snprintf(want, sizeof(want), "verify 1 ok pid=%d", (int)pid);
	CHECKF(!strncmp(line, want, strlen(want)), "%s", line);
	return 0;
}

static void kill_restored(pid_t pid)
{
	kill(pid, SIGKILL);
	int st = 0;
	fp_error err;
	CHECKF(fp_restore_wait(pid, 10000, &st, &err) == 0, "%s", err.msg);
	CHECK(st == 128 + SIGKILL);
}

static int to_store(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	fp_error err;
	pgs_reader *r = pgs_open(dfd, 1, &err);
	pgs_writer *w = r ? pgs_writer_open(dfd, 1, NULL, &err) : NULL;
	int rc = -1;
	if (w) {
		const void *pages;
		uint64_t first, n;
		int got;
		while ((got = pgs_next(r, &pages, &first, &n, &err)) == 1)
			if (pgs_writer_add(w, pages, n, &err))
				break;
		rc = got == 0 && pgs_writer_close(w, NULL, &err) == 0 ? 0 : -1;
	}
	if (r)
		pgs_close(r);
	if (!rc)
		rc = unlinkat(dfd, "pages-1.img", 0);
	close(dfd);
	return rc;
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("needs root (clone3 with set_tid)");
	fp_error err;
	if (fp_criu_find(criu, sizeof(criu), &err))
		SKIP("no usable criu: %s", err.msg);
	if (!mkdtemp(work))
		return 1;
	snprintf(status_path, sizeof(status_path), "%s/heap.status", work);
	char dir[600], log[600];
	snprintf(dir, sizeof(dir), "%s/img", work);
	snprintf(log, sizeof(log), "%s/restore.log", work);

	pid_t pid = start_heap();
	CHECK(pid > 0);
	if (pid <= 0 || criu_dump(pid, dir))
		return fp_test_done() | 1;

	char reason[512];
	CHECKF(fp_restore_check(dir, reason, sizeof(reason), &err) == 0, "%s", err.msg);
	CHECKF(reason[0] == 0, "native engine refuses: %s", reason);

	/* A forced failure after each step leaves nothing behind. */
	const char *steps[] = { "memory", "files", "registers" };
	for (size_t i = 0; i < 3; i++) {
		setenv("FORKPOINT_RESTORE_FAIL_AT", steps[i], 1);
		struct fp_restore_opts o = { .dir = dir, .engine = FP_RESTORE_NATIVE, .log_path = log };
		struct fp_restore_result r;
		CHECK(fp_restore(&o, &r, &err) < 0);
		CHECKF(strstr(err.msg, "on purpose") != NULL, "%s", err.msg);
		CHECK(kill(pid, 0) < 0 && errno == ESRCH);
		CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	}
	unsetenv("FORKPOINT_RESTORE_FAIL_AT");

	/* Native restore from plain pages. */
	struct fp_restore_opts o = { .dir = dir, .engine = FP_RESTORE_NATIVE, .log_path = log };
	struct fp_restore_result r;
	int rc = fp_restore(&o, &r, &err);
	CHECKF(rc == 0, "%s", err.msg);
	if (rc == 0) {
		CHECK(r.pid == pid && r.engine_used == FP_RESTORE_NATIVE);
		CHECK(verify(pid, 1) == 0);
		kill_restored(pid);
	}

	/* The same image with the zstd page store instead of pages-1.img: made
	 * here, without a manifest, so it is refused unless unverified. */
	CHECK(to_store(dir) == 0);
	CHECK(fp_restore(&o, &r, &err) < 0 && strstr(err.msg, "manifest") != NULL);
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	o.no_verify = true;
	rc = fp_restore(&o, &r, &err);
	CHECKF(rc == 0, "%s", err.msg);
	if (rc == 0) {
		CHECK(verify(pid, 2) == 0);
		kill_restored(pid);
	}

	/* A truncated pages file is refused before anything is created. */
	char trunc_dir[700], cmd[2000];
	snprintf(trunc_dir, sizeof(trunc_dir), "%s/trunc", work);
	pid = start_heap();
	if (pid > 0 && criu_dump(pid, trunc_dir) == 0) {
		snprintf(cmd, sizeof(cmd), "%s/pages-1.img", trunc_dir);
		struct stat st;
		CHECK(stat(cmd, &st) == 0 && truncate(cmd, st.st_size - 4096) == 0);
		CHECK(fp_restore_check(trunc_dir, NULL, 0, &err) < 0);
		CHECKF(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
		o.dir = trunc_dir;
		o.no_verify = false;
		CHECKF(fp_restore(&o, &r, &err) < 0, "restored pid %d", (int)r.pid);
		CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	}
	fp_rm_rf(work, NULL);
	return fp_test_done();
}
