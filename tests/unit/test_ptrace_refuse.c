/* Refusals with messages that name the cause: no such pid, this process, a
 * thread id, a zombie, a kernel thread, a process traced by someone else
 * (named). A refused target must be left exactly as it was. */
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#include <dirent.h>
#include <sys/ptrace.h>

static int seize_fails(pid_t pid, const char *needle, int code, char *msg, size_t len)
{
	fp_pt_proc p;
	fp_error err;
	fp_error_clear(&err);
	int rc = fp_pt_seize(&p, pid, 2000, &err);
	snprintf(msg, len, "%s", err.msg);
	if (rc == 0) {
		fp_pt_detach(&p, NULL);
		return 0;
	}
	printf("pid %d refused: %s\n", pid, err.msg);
	return strstr(err.msg, needle) != NULL && (code < 0 || err.exit_code == code);
}

static pid_t find_kthread(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;
	while (d && (de = readdir(d)) && !found) {
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 0)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *q = strrchr(buf, ')');
		unsigned long flags = 0;
		if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 && (flags & 0x00200000))
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

int main(void)
{
	char msg[1600];

	/* No such process: a child we reaped. */
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	CHECKF(seize_fails(gone, "no such process", FP_EXIT_NOTFOUND, msg, sizeof(msg)), "%s", msg);
	CHECKF(seize_fails(-5, "invalid pid", -1, msg, sizeof(msg)), "%s", msg);

	/* Ourselves. */
	CHECKF(seize_fails(getpid(), "itself", -1, msg, sizeof(msg)), "%s", msg);

	/* A zombie: exited, not reaped (WNOWAIT waits for that state). */
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	siginfo_t si;
	CHECK(waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) == 0);
	CHECKF(seize_fails(z, "zombie", FP_EXIT_NOTFOUND, msg, sizeof(msg)), "%s", msg);
	waitpid(z, NULL, 0);

	/* A kernel thread. */
	pid_t kt = find_kthread();
	if (kt)
		CHECKF(seize_fails(kt, "kernel thread", FP_EXIT_UNSUPPORTED, msg, sizeof(msg)), "%s", msg);
	else
		printf("no kernel thread visible in /proc (pid namespace?); kernel-thread check not run\n");

	/* A thread id instead of a process id. */
	pt_child c;
	char line[256];
	if (pt_spawn(&c, "pt_threads", "idle"))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0);
	{
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task", c.pid);
		DIR *d = opendir(path);
		struct dirent *de;
		pid_t other = 0;
		while (d && (de = readdir(d)))
			if (atoi(de->d_name) > 0 && atoi(de->d_name) != c.pid)
				other = (pid_t)atoi(de->d_name);
		if (d)
			closedir(d);
		CHECK(other > 0);
		char want[64];
		snprintf(want, sizeof(want), "is a thread of process %d", c.pid);
		CHECKF(seize_fails(other, want, -1, msg, sizeof(msg)), "%s", msg);
	}

	/* Traced by another process: it must be named, and the target untouched. */
	int ready[2], hold[2];
	CHECK(pipe(ready) == 0 && pipe(hold) == 0);
	pid_t tracer = fork();
	if (tracer == 0) {
		close(ready[0]);
		close(hold[1]);
		char ok = ptrace(PTRACE_SEIZE, c.pid, 0, 0) == 0 ? 'y' : 'n';
		if (write(ready[1], &ok, 1) != 1)
			_exit(1);
		char b;
		while (read(hold[0], &b, 1) > 0) /* until the test closes the pipe */
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char ok = 0;
	CHECK(read(ready[0], &ok, 1) == 1 && ok == 'y');
	char want[64];
	snprintf(want, sizeof(want), "already traced by %d", tracer);
	CHECKF(seize_fails(c.pid, want, FP_EXIT_PERM, msg, sizeof(msg)), "%s", msg);
	close(hold[1]); /* the tracer exits; the kernel detaches it */
	CHECK(waitpid(tracer, NULL, 0) == tracer);
	close(ready[0]);

	/* Now free: seize works, and the target still runs to a clean end. */
	fp_pt_proc p;
	fp_error err;
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	CHECK(fp_pt_nstopped(&p) == 8);
	CHECK(fp_pt_detach(&p, &err) == 0);
	CHECK(pt_send(&c, "q") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ok ", 3));
	CHECK(pt_finish(&c, 10000) == 0);
	return fp_test_done();
}
