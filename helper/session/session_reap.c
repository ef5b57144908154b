#include "session_reap.h"
#include "fp_clock.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

size_t fp_proc_descendants(pid_t pid, pid_t *out, size_t cap, size_t n)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return n;
	struct dirent *de;
	while ((de = readdir(d)) && n < cap) {
		if (de->d_name[0] == '.')
			continue;
		char cpath[128];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		int c;
		while (n < cap && fscanf(f, "%d", &c) == 1) {
			out[n++] = c;
			n = fp_proc_descendants(c, out, cap, n);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

#define KILL_MAX 8192

size_t fp_session_signal_all(int sig)
{
	pid_t *pids = malloc(KILL_MAX * sizeof(*pids));
	if (!pids)
		return 0;
	size_t n = fp_proc_descendants(getpid(), pids, KILL_MAX, 0);
	/* Parents first, as listed: a killed parent cannot fork another. */
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
	free(pids);
	return n;
}

int fp_session_kill_all(int deadline_ms)
{
	long long end = fp_mono_ms() + deadline_ms;
	for (;;) {
		fp_session_signal_all(SIGKILL);
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
			;
		if (w < 0 && errno == ECHILD)
			return 0;
		if (fp_mono_ms() > end)
			return -1;
		usleep(1000);
	}
}
