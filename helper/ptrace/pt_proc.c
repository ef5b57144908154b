/* The /proc reading the ptrace layer needs, and the refusal checks that run
 * before we touch a process. */
#include "pt_internal.h"
#include "ptrace.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off + 1 < len) {
		ssize_t r = read(fd, buf + off, len - 1 - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	buf[off] = '\0';
	return (ssize_t)off;
}

int fp_pt_stat(pid_t pid, pid_t tid, char *state, unsigned long *flags)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (read_small(path, buf, sizeof(buf)) <= 0) {
		if (errno == 0)
			errno = ESRCH;
		return -1;
	}
	/* comm may hold spaces and parentheses: parse after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ') {
		errno = EINVAL;
		return -1;
	}
	p += 2;
	if (state)
		*state = *p;
	/* fields after comm: state ppid pgrp session tty_nr tpgid flags */
	for (int i = 0; i < 6 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p) {
		errno = EINVAL;
		return -1;
	}
	if (flags)
		*flags = strtoul(p, NULL, 10);
	return 0;
}

/* Finds "key:" in a status text and copies its value (blanks stripped). */
static int status_get(const char *buf, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	for (const char *line = buf; line && *line;) {
		const char *nl = strchr(line, '\n');
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			const char *v = line + klen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vlen = nl ? (size_t)(nl - v) : strlen(v);
			if (vlen >= len)
				vlen = len - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	errno = ENOENT;
	return -1;
}

static int read_status(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	return read_small(path, buf, len) <= 0 ? -1 : 0;
}

int fp_pt_status_field(pid_t pid, const char *key, char *out, size_t len)
{
	char buf[4096];
	if (read_status(pid, buf, sizeof(buf)))
		return -1;
	return status_get(buf, key, out, len);
}

void fp_pt_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_small(path, buf, len) <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[strcspn(buf, "\n")] = '\0';
}

int fp_pt_list_tasks(pid_t pid, pid_t **tids, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	size_t cap = 16, cnt = 0;
	pid_t *v = malloc(cap * sizeof(*v));
	if (!v) {
		closedir(d);
		errno = ENOMEM;
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long t = strtol(de->d_name, &end, 10);
		if (*end || t <= 0)
			continue;
		if (cnt == cap) {
			pid_t *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
			cap *= 2;
		}
		v[cnt++] = (pid_t)t;
	}
	closedir(d);
	*tids = v;
	*n = cnt;
	return 0;
}

void fp_pt_describe_thread(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char st = '?', path[64], wchan[64] = "?";
	fp_pt_stat(pid, tid, &st, NULL);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	if (read_small(path, wchan, sizeof(wchan)) <= 0 || !wchan[0])
		snprintf(wchan, sizeof(wchan), "?");
	snprintf(buf, len, "state %c, wchan %s", st, wchan);
}

static int all_tasks_zombie(pid_t pid)
{
	pid_t *tids;
	size_t n;
	if (fp_pt_list_tasks(pid, &tids, &n))
		return 1;
	int all = 1;
	for (size_t i = 0; i < n && all; i++) {
		char st;
		if (fp_pt_stat(pid, tids[i], &st, NULL) == 0 && st != 'Z' && st != 'X')
			all = 0;
	}
	free(tids);
	return all;
}

int fp_pt_check_traceable(pid_t pid, fp_error *err)
{
	char comm[32];
	return fp_pt_check(pid, comm, sizeof(comm), err);
}

int fp_pt_check(pid_t pid, char *comm, size_t comm_len, fp_error *err)
{
	/* One read of /proc/PID/status answers every question (it costs
	 * ~15 µs here; reading it once per field would dominate a seize). */
	char st[4096], val[128];
	snprintf(comm, comm_len, "?");
	if (pid <= 0)
		return fp_fail(err, EINVAL, "invalid pid %d; pass the id of a running process", pid);
	if (pid == getpid())
		return fp_fail(err, EINVAL,
			       "pid %d is this forkpoint process itself; a process cannot trace itself, pass another pid",
			       pid);
	if (read_status(pid, st, sizeof(st))) {
		if (errno == ENOENT || errno == ESRCH)
			return fp_fail(err, ESRCH, "no such process %d; check the pid with `ps -p %d`", pid, pid);
		return fp_fail(err, errno, "cannot read /proc/%d/status: %s; is /proc mounted?", pid, strerror(errno));
	}
	status_get(st, "Name", comm, comm_len);
	pid_t tgid = status_get(st, "Tgid", val, sizeof(val)) ? pid : (pid_t)atoi(val);
	if (tgid != pid)
		return fp_fail(err, EINVAL,
			       "%d (%s) is a thread of process %d, not a process; pass the process id %d",
			       pid, comm, tgid, tgid);
	bool kthread;
	if (status_get(st, "Kthread", val, sizeof(val)) == 0) {
		kthread = atoi(val) != 0;
	} else { /* kernels before the Kthread field: the PF_KTHREAD flag */
		unsigned long flags = 0;
		if (fp_pt_stat(pid, pid, NULL, &flags))
			return fp_fail(err, ESRCH, "no such process %d (it exited); check the pid with `ps -p %d`", pid, pid);
		kthread = flags & FP_PF_KTHREAD;
	}
	if (kthread)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EPERM,
				    "%d (%s) is a kernel thread: it has no user memory to checkpoint; pass the pid of a user process",
				    pid, comm);
	char state = status_get(st, "State", val, sizeof(val)) ? '?' : val[0];
	if ((state == 'Z' || state == 'X') && all_tasks_zombie(pid)) {
		char ppid[32] = "?";
		status_get(st, "PPid", ppid, sizeof(ppid));
		return fp_fail(err, ESRCH,
			       "%d (%s) is a zombie: it has exited and its parent %s has not reaped it yet; there is nothing left to checkpoint",
			       pid, comm, ppid);
	}
	if (status_get(st, "TracerPid", val, sizeof(val)) == 0 && atoi(val) != 0) {
		pid_t tracer = (pid_t)atoi(val);
		char tcomm[32];
		fp_pt_comm(tracer, tcomm, sizeof(tcomm));
		return fp_fail_code(err, FP_EXIT_PERM, EBUSY,
				    "cannot trace %d (%s): it is already traced by %d (%s); detach the other tracer (gdb, strace, another forkpoint) first",
				    pid, comm, tracer, tcomm);
	}
	return 0;
}
