#include "session_cleanup.h"
#include "fp_clock.h"
#include "session_image.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "paths.h"
#include "session_reap.h"

#define PROCS_MAX 4096
#define MOUNTS_MAX 256

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* environ holds "NAME=VALUE\0" entries; the mark must be one of them whole. */
static bool environ_has(pid_t pid, const char *entry)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;
	while (buf && (r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	bool found = false;
	size_t el = strlen(entry);
	for (size_t i = 0; buf && i < n; i += strnlen(buf + i, n - i) + 1)
		if (strnlen(buf + i, n - i) == el && !memcmp(buf + i, entry, el)) {
			found = true;
			break;
		}
	free(buf);
	return found;
}

static unsigned long long mnt_ns_of(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static bool listed(const pid_t *v, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

static bool zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (fp_read_file(path, buf, sizeof(buf), NULL) < 0)
		return true;
	char *rp = strrchr(buf, ')');
	return !rp || !rp[1] || rp[2] == 'Z' || rp[2] == 'X';
}

static size_t scan(const char *mark, unsigned long long ns, pid_t *out, size_t n, size_t cap)
{
	DIR *d = opendir("/proc");
	if (!d)
		return n;
	struct dirent *de;
	while ((de = readdir(d)) && n < cap) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t p = atoi(de->d_name);
		if (p == getpid() || listed(out, n, p) || zombie(p))
			continue;
		if (ns ? mnt_ns_of(p) == ns : environ_has(p, mark))
			out[n++] = p;
	}
	closedir(d);
	return n;
}

size_t fp_session_find_procs(const struct fp_session_info *info, pid_t *out, size_t cap)
{
	char mark[PATH_MAX + 64];
	snprintf(mark, sizeof(mark), "%s=%s", FP_SESSION_MARK, info->dir);
	size_t n = scan(mark, 0, out, 0, cap);
	/* The recorded mount namespace counts only while a process of the
	 * session is in it (its number may since have gone to another one),
	 * and never when it is ours (the session had none of its own). */
	unsigned long long ns = info->mnt_ns;
	bool seen = fp_session_helper_alive(info) && mnt_ns_of(info->helper_pid) == ns;
	for (size_t i = 0; i < n && !seen; i++)
		seen = mnt_ns_of(out[i]) == ns;
	if (ns && seen && ns != mnt_ns_of(getpid()))
		n = scan(NULL, ns, out, n, cap);
	pid_t *sub = malloc(PROCS_MAX * sizeof(*sub));
	for (size_t i = 0, top = n; sub && i < top; i++) {
		size_t k = fp_proc_descendants(out[i], sub, PROCS_MAX, 0);
		for (size_t j = 0; j < k && n < cap; j++)
			if (sub[j] != getpid() && !listed(out, n, sub[j]) && !zombie(sub[j]))
				out[n++] = sub[j];
	}
	free(sub);
	return n;
}

/* State letter and wait channel of a process, "" if it is gone. */
static char proc_state(pid_t pid, char *wchan, size_t len)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	wchan[0] = '\0';
	if (fp_read_file(path, buf, sizeof(buf), NULL) < 0)
		return 0;
	char *rp = strrchr(buf, ')');
	char st = rp && rp[1] ? rp[2] : '?';
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	if (fp_read_file(path, wchan, len, NULL) < 0)
		wchan[0] = '\0';
	return st;
}

static size_t describe_procs(const pid_t *v, size_t n, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used + 96 < len; i++) {
		char comm[64] = "", path[64], wchan[64];
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)v[i]);
		if (fp_read_file(path, comm, sizeof(comm), NULL) >= 0)
			comm[strcspn(comm, "\n")] = '\0';
		char st = proc_state(v[i], wchan, sizeof(wchan));
		used += (size_t)snprintf(out + used, len - used, "%s%d (%s, state %c%s%s)", i ? ", " : "",
					 (int)v[i], comm, st ? st : '?', wchan[0] && strcmp(wchan, "0") ? ", in " : "",
					 wchan[0] && strcmp(wchan, "0") ? wchan : "");
	}
	return used;
}

/* Alive for our purpose: a zombie holds no mount and no file. */
static bool alive(pid_t pid)
{
	char wchan[8];
	char st = proc_state(pid, wchan, sizeof(wchan));
	return st && st != 'Z' && st != 'X';
}

/* SIGKILL, again and again (a dying parent may still fork; its children
 * carry the same marks), until all are gone or the deadline passes. Leaves
 * the survivors in v. */
static size_t kill_procs(const struct fp_session_info *info, pid_t *v, size_t n, int deadline_ms)
{
	long long end = fp_mono_ms() + deadline_ms;
	for (;;) {
		for (size_t i = 0; i < n; i++)
			kill(v[i], SIGKILL);
		size_t found = fp_session_find_procs(info, v, PROCS_MAX);
		n = 0;
		for (size_t i = 0; i < found; i++)
			if (alive(v[i]))
				v[n++] = v[i];
		if (n == 0 || fp_mono_ms() > end)
			return n;
		pause_ms(5);
	}
}

/* "\040" and friends in /proc/self/mountinfo fields. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Mount points in our namespace that hold the session: anything mounted
 * inside its directory, an overlay made of its layers, and a bind mount of
 * its mount namespace (which keeps that namespace, and its overlays, alive
 * with no process in it). Innermost first. */
static size_t find_mounts(const struct fp_session_info *info, char (*out)[PATH_MAX], size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[8192], nsroot[64] = "";
	if (info->mnt_ns)
		snprintf(nsroot, sizeof(nsroot), "mnt:[%llu]", info->mnt_ns);
	size_t dl = strlen(info->dir), n = 0;
	while (fgets(line, sizeof(line), f) && n < cap) {
		char root[PATH_MAX], mp[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mp) != 2)
			continue;
		unescape(root);
		unescape(mp);
		char *sep = strstr(line, " - ");
		char *super = sep ? strrchr(sep, ' ') : NULL;
		if (super)
			unescape(super);
		bool inside = !strncmp(mp, info->dir, dl) && (mp[dl] == '/' || mp[dl] == '\0');
		bool layers = super && strstr(super, info->dir);
		bool pin = nsroot[0] && !strcmp(root, nsroot);
		if (inside || layers || pin)
			snprintf(out[n++], PATH_MAX, "%s", mp);
	}
	fclose(f);
	/* mountinfo lists parents before children: detach in reverse. */
	for (size_t i = 0; i < n / 2; i++) {
		char tmp[PATH_MAX];
		memcpy(tmp, out[i], PATH_MAX);
		memcpy(out[i], out[n - 1 - i], PATH_MAX);
		memcpy(out[n - 1 - i], tmp, PATH_MAX);
	}
	return n;
}

static size_t describe_mounts(char (*m)[PATH_MAX], size_t n, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used + 16 < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", m[i]);
	return used;
}

/* Asks a live helper to kill its tree and waits for it to exit. Returns 0
 * when it is gone. */
static int stop_helper(const struct fp_session_info *info, int wait_ms, fp_error *err)
{
	char sock[PATH_MAX + 16], resp[256];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	if (fp_ctl_request(sock, "stop kill", resp, sizeof(resp), 3000, err) < 0)
		return -1;
	long long end = fp_mono_ms() + wait_ms;
	while (fp_session_helper_alive(info)) {
		if (fp_mono_ms() > end)
			return fp_fail(err, ETIMEDOUT, "its helper %d did not exit within %d s of `stop --kill`",
				       (int)info->helper_pid, wait_ms / 1000);
		pause_ms(2);
	}
	return 0;
}

int fp_session_cleanup(const char *name, bool force, struct fp_cleanup_result *res, fp_error *err)
{
	memset(res, 0, sizeof(*res));
	struct fp_session_info info;
	char dir[PATH_MAX];
	if (fp_session_dir(name, dir, sizeof(dir), err) < 0)
		return -1;
	if (fp_session_load(name, &info, err) < 0) {
		struct stat st;
		if (lstat(dir, &st) < 0)
			return -1; /* no such session: the message says so */
		/* A directory without metadata (a start that crashed): its
		 * processes, if any, still carry the mark. */
		memset(&info, 0, sizeof(info));
		snprintf(info.name, sizeof(info.name), "%s", name);
	}
	snprintf(info.dir, sizeof(info.dir), "%s", dir);

	bool stopped = false; /* a helper was there and has been stopped now */
	if (fp_session_helper_alive(&info)) {
		stopped = true;
		fp_error e2;
		if (stop_helper(&info, force ? 5000 : 20000, &e2) < 0) {
			if (!force)
				return fp_fail_code(err, FP_EXIT_FAIL, e2.errnum,
						    "cannot stop session '%s': %s; `forkpoint cleanup --force %s` kills it",
						    name, e2.msg, name);
			if (fp_session_helper_alive(&info) && kill(info.helper_pid, SIGKILL) == 0)
				res->helper_killed = true;
			for (long long end = fp_mono_ms() + 5000; fp_session_helper_alive(&info) && fp_mono_ms() < end;)
				pause_ms(2);
		}
	}

	pid_t *procs = malloc(PROCS_MAX * sizeof(*procs));
	char (*mounts)[PATH_MAX] = malloc(MOUNTS_MAX * PATH_MAX);
	char *what = malloc(8192);
	int rc = -1;
	if (!procs || !mounts || !what) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	/* The helper's `stop kill` has sent SIGKILL to every process of the
	 * session before it exits, but the kernel may not have finished one
	 * yet (on a loaded machine it can still show as running for a moment
	 * after the helper is gone: e2e/branch_hot saw that). So after a stop
	 * the list is taken again until it is empty, for a short while, before
	 * a process counts as left behind. */
	size_t np = 0;
	for (long long end = fp_mono_ms() + (stopped ? 3000 : 0);;) {
		np = fp_session_find_procs(&info, procs, PROCS_MAX);
		size_t live = 0;
		for (size_t i = 0; i < np; i++)
			if (alive(procs[i]))
				procs[live++] = procs[i];
		np = live;
		if (!np || fp_mono_ms() >= end)
			break;
		pause_ms(5);
	}
	if (np && !force) {
		describe_procs(procs, np, what, 8192);
		fp_fail_code(err, FP_EXIT_FAIL, EBUSY,
			     "session '%s' has no helper, but %zu of its processes still run: %s; "
			     "`forkpoint cleanup --force %s` kills them", name, np, what, name);
		goto out;
	}
	res->killed = (int)np;
	if (np)
		np = kill_procs(&info, procs, np, 10000);
	if (np) {
		describe_procs(procs, np, what, 8192);
		fp_fail_code(err, FP_EXIT_FAIL, EBUSY,
			     "session '%s': %zu processes survive SIGKILL (stuck in the kernel; state D is an "
			     "uninterruptible wait, see the wait channel): %s; its directory %s is kept",
			     name, np, what, dir);
		goto out;
	}

	size_t nm = find_mounts(&info, mounts, MOUNTS_MAX);
	if (nm && !force) {
		describe_mounts(mounts, nm, what, 8192);
		fp_fail_code(err, FP_EXIT_FAIL, EBUSY,
			     "session '%s' has no process left, but these mounts hold it: %s; "
			     "`forkpoint cleanup --force %s` detaches them", name, what, name);
		goto out;
	}
	size_t stuck = 0;
	for (size_t i = 0; i < nm; i++) {
		if (umount2(mounts[i], MNT_DETACH) == 0)
			res->unmounted++;
		else if (errno != EINVAL && errno != ENOENT) /* gone with its parent */
			memcpy(mounts[stuck++], mounts[i], PATH_MAX);
	}
	if (stuck) {
		describe_mounts(mounts, stuck, what, 8192);
		fp_fail_code(err, FP_EXIT_FAIL, EBUSY, "session '%s': cannot detach %s: %s; its directory %s is kept",
			     name, what, strerror(errno), dir);
		goto out;
	}
	if (fp_session_image_release(dir, err) < 0) {
		fp_wrap(err, "session '%s': its directory %s is kept", name, dir);
		goto out;
	}
	fp_error rerr;
	if (fp_rm_rf(dir, &rerr) < 0) {
		fp_fail_code(err, FP_EXIT_FAIL, rerr.errnum, "session '%s': cannot remove %s: %s", name, dir, rerr.msg);
		goto out;
	}
	rc = 0;
out:
	free(procs);
	free(mounts);
	free(what);
	return rc;
}
