#include "session_store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_collect.h"
#include "paths.h"
#include "procfs.h"

int fp_session_name_valid(const char *name, fp_error *err)
{
	size_t len = strlen(name);
	if (len == 0 || len > FP_SESSION_NAME_MAX)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
				    "session name must be 1 to %d characters", FP_SESSION_NAME_MAX);
	if (name[0] == '.' || name[0] == '-')
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
				    "session name '%s' must not start with '.' or '-'", name);
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
					    "session name '%s' may only contain letters, digits, '.', '_' and '-'",
					    name);
	if (isdigit((unsigned char)name[0])) {
		const char *p = name;
		while (isdigit((unsigned char)*p))
			p++;
		if (!*p)
			return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
					    "session name '%s' is all digits; that reads as a pid", name);
	}
	return 0;
}

int fp_sessions_root(char *buf, size_t len, int create, fp_error *err)
{
	char home[PATH_MAX];
	if (fp_home(home, sizeof(home), create, err) < 0)
		return -1;
	if (snprintf(buf, len, "%s/sessions", home) >= (int)len)
		return fp_fail(err, ENAMETOOLONG, "FORKPOINT_HOME path too long");
	if (create && mkdir(buf, 0700) < 0 && errno != EEXIST)
		return fp_fail(err, errno, "cannot create %s: %s", buf, strerror(errno));
	struct stat st;
	if ((create || lstat(buf, &st) == 0) && fp_check_private_dir(buf, "the sessions directory", false, err) < 0)
		return -1;
	return 0;
}

int fp_session_dir(const char *name, char *buf, size_t len, fp_error *err)
{
	char root[PATH_MAX];
	if (fp_session_name_valid(name, err) < 0 || fp_sessions_root(root, sizeof(root), 0, err) < 0)
		return -1;
	if (snprintf(buf, len, "%s/%s", root, name) >= (int)len)
		return fp_fail(err, ENAMETOOLONG, "session path too long");
	struct stat st;
	if (lstat(buf, &st) == 0 && fp_check_private_dir(buf, "the session directory", false, err) < 0)
		return -1;
	return 0;
}

unsigned long long fp_proc_starttime(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) == 0 ? st.starttime : 0;
}

int fp_session_helper_alive(const struct fp_session_info *info)
{
	if (info->helper_pid <= 0)
		return 0;
	struct fp_proc_stat st;
	/* A killed helper nobody reaped (its parent, init here, may be slow to)
	 * is a zombie: it serves nothing. */
	return fp_proc_read_stat(info->helper_pid, 0, &st, NULL) == 0 && st.starttime == info->helper_start &&
	       st.state != 'Z' && st.state != 'X';
}

static int dir_has_snapshots(const char *dir)
{
	char snaps[PATH_MAX + 16];
	snprintf(snaps, sizeof(snaps), "%s/snapshots", dir);
	DIR *d = opendir(snaps);
	if (!d)
		return 0;
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

/* A directory whose helper is gone. Returns 1 if it was removed. */
static int reclaim_stale(const char *name, const char *dir)
{
	struct fp_session_info old;
	fp_error e;
	if (fp_session_load(name, &old, &e) == 0 && fp_session_helper_alive(&old))
		return 0;
	if (fp_session_load(name, &old, &e) < 0) {
		/* No meta: a reservation in progress or a crashed start. Only take
		 * it if nothing else is in there. */
		struct stat st;
		char meta[PATH_MAX + 16];
		snprintf(meta, sizeof(meta), "%s/session.meta", dir);
		if (stat(meta, &st) == 0)
			return 0;
	}
	if (dir_has_snapshots(dir))
		return 0;
	return fp_rm_rf(dir, NULL) == 0;
}

int fp_session_reserve(const char *name, const char *base, struct fp_session_info *info,
		       fp_error *err)
{
	char root[PATH_MAX];
	if (fp_sessions_root(root, sizeof(root), 1, err) < 0)
		return -1;
	memset(info, 0, sizeof(*info));
	char cand[FP_SESSION_NAME_MAX + 1];
	for (int i = 1; i < 10000; i++) {
		if (name) {
			if (fp_session_name_valid(name, err) < 0)
				return -1;
			snprintf(cand, sizeof(cand), "%s", name);
		} else {
			char clean[48];
			size_t k = 0;
			for (const char *p = base; *p && k + 1 < sizeof(clean); p++)
				clean[k++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
			clean[k] = '\0';
			if (k == 0 || clean[0] == '-' || clean[0] == '.')
				snprintf(clean, sizeof(clean), "session");
			snprintf(cand, sizeof(cand), "%s-%d", clean, i);
		}
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", root, cand);
		if (mkdir(dir, 0700) == 0) {
			snprintf(info->name, sizeof(info->name), "%s", cand);
			snprintf(info->dir, sizeof(info->dir), "%s", dir);
			return 0;
		}
		if (errno != EEXIST)
			return fp_fail(err, errno, "cannot create session directory %s: %s", dir,
				       strerror(errno));
		if (reclaim_stale(cand, dir) && mkdir(dir, 0700) == 0) {
			snprintf(info->name, sizeof(info->name), "%s", cand);
			snprintf(info->dir, sizeof(info->dir), "%s", dir);
			return 0;
		}
		if (name) {
			struct fp_session_info old;
			fp_error e;
			if (fp_session_load(name, &old, &e) == 0 && !fp_session_helper_alive(&old))
				return fp_fail_code(err, FP_EXIT_FAIL, EEXIST,
						    "session '%s' has ended but keeps its snapshots (`forkpoint list %s`); "
						    "delete them with `forkpoint rm %s SNAP...`, or pick another --name",
						    name, name, name);
			return fp_fail_code(err, FP_EXIT_FAIL, EEXIST,
					    "session '%s' already exists; pick another --name, or stop it with `forkpoint stop %s`",
					    name, name);
		}
	}
	return fp_fail(err, EEXIST, "too many sessions named after '%s'", base);
}

static pid_t (*pid_view)(pid_t);

void fp_session_set_pid_view(pid_t (*view)(pid_t))
{
	pid_view = view;
}

int fp_session_save(const struct fp_session_info *info, fp_error *err)
{
	char buf[8192], path[PATH_MAX + 16];
	pid_t target = pid_view && info->target_pid > 0 ? pid_view(info->target_pid) : info->target_pid;
	int n = snprintf(buf, sizeof(buf),
			 "name=%s\nhelper_pid=%d\nhelper_start=%llu\ntarget_pid=%d\nstarted=%lld\n"
			 "detached=%d\nshim=%d\nshell=%d\nstate=%s\nexit_status=%d\ncwd=%s\ncmd=%s\nworkdir=%s\n"
			 "mnt_ns=%llu\n",
			 info->name, (int)info->helper_pid, info->helper_start, (int)target,
			 info->started, info->detached, info->shim, info->shell, info->state, info->exit_status,
			 info->cwd, info->cmd, info->workdir, info->mnt_ns);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return fp_fail(err, E2BIG, "session metadata too large");
	snprintf(path, sizeof(path), "%s/session.meta", info->dir);
	return fp_write_file_replace(path, buf, (size_t)n, err);
}

int fp_session_load(const char *name, struct fp_session_info *info, fp_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], buf[8192];
	if (fp_session_dir(name, dir, sizeof(dir), err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/session.meta", dir);
	if (fp_read_file(path, buf, sizeof(buf), err) < 0) {
		if (err && err->errnum == ENOENT)
			return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
					    "no session named '%s' (see `forkpoint ps`)", name);
		return -1;
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->dir, sizeof(info->dir), "%s", dir);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *k = line, *v = eq + 1;
		if (!strcmp(k, "name"))
			snprintf(info->name, sizeof(info->name), "%s", v);
		else if (!strcmp(k, "helper_pid"))
			info->helper_pid = atoi(v);
		else if (!strcmp(k, "helper_start"))
			info->helper_start = strtoull(v, NULL, 10);
		else if (!strcmp(k, "target_pid"))
			info->target_pid = atoi(v);
		else if (!strcmp(k, "started"))
			info->started = atoll(v);
		else if (!strcmp(k, "detached"))
			info->detached = atoi(v);
		else if (!strcmp(k, "shim"))
			info->shim = atoi(v);
		else if (!strcmp(k, "shell"))
			info->shell = atoi(v);
		else if (!strcmp(k, "state"))
			snprintf(info->state, sizeof(info->state), "%s", v);
		else if (!strcmp(k, "exit_status"))
			info->exit_status = atoi(v);
		else if (!strcmp(k, "cwd"))
			snprintf(info->cwd, sizeof(info->cwd), "%s", v);
		else if (!strcmp(k, "cmd"))
			snprintf(info->cmd, sizeof(info->cmd), "%s", v);
		else if (!strcmp(k, "workdir"))
			snprintf(info->workdir, sizeof(info->workdir), "%s", v);
		else if (!strcmp(k, "mnt_ns"))
			info->mnt_ns = strtoull(v, NULL, 10);
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct fp_session_info *)a)->name,
		      ((const struct fp_session_info *)b)->name);
}

static int load_live(void *ctx, const char *name, void *rec)
{
	(void)ctx;
	struct fp_session_info *info = rec;
	return fp_session_load(name, info, NULL) == 0 && fp_session_helper_alive(info) ? 0 : -1;
}

int fp_session_list(struct fp_session_info **out, size_t *n, fp_error *err)
{
	char root[PATH_MAX];
	*out = NULL;
	*n = 0;
	if (fp_sessions_root(root, sizeof(root), 0, err) < 0)
		return -1;
	return fp_dir_collect(root, sizeof(**out), load_live, NULL, by_name, (void **)out, n, err);
}

static int load_any(void *ctx, const char *name, void *rec)
{
	(void)ctx;
	struct fp_session_info *info = rec;
	if (fp_session_load(name, info, NULL) < 0)
		return -1;
	if (!fp_session_helper_alive(info) && strcmp(info->state, "exited"))
		snprintf(info->state, sizeof(info->state), "dead"); /* its helper was killed */
	return 0;
}

int fp_session_list_all(struct fp_session_info **out, size_t *n, fp_error *err)
{
	char root[PATH_MAX];
	*out = NULL;
	*n = 0;
	if (fp_sessions_root(root, sizeof(root), 0, err) < 0)
		return -1;
	return fp_dir_collect(root, sizeof(**out), load_any, NULL, by_name, (void **)out, n, err);
}
