#include "session_revive.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "paths.h"
#include "procfs.h"
#include "session_cleanup.h"
#include "session_helper.h"
#include "session_hold.h"
#include "session_pidns.h"
#include "session_shell.h"
#include "snapshots.h"
#include "overlay/workspace.h"
#include "restore/restore.h"

struct revive {
	struct fp_session_info *info;
	const char *snap;
	char snapdir[PATH_MAX + 64];
};

/* The workspace as it was at the snapshot, in a new private mount
 * namespace: the live state is mounted, then the snapshot's chain on top. */
static int revive_workspace(struct fp_session_info *info, const char *snap, struct fp_ws **ws,
			    struct fp_ws_switch *sw, fp_error *err)
{
	char store[PATH_MAX + 16];
	snprintf(store, sizeof(store), "%s/workspace", info->dir);
	struct fp_ws_opts wo = { .sync = true };
	if (fp_ws_private_ns(err) < 0 || fp_ws_open(store, &wo, ws, err) < 0)
		return fp_wrap(err, "workspace");
	if (fp_ws_mount(*ws, err) < 0 || fp_ws_restore_begin(*ws, snap, sw, err) < 0) {
		fp_ws_close(*ws);
		*ws = NULL;
		return fp_wrap(err, "workspace of snapshot '%s'", snap);
	}
	struct stat ns;
	if (stat("/proc/self/ns/mnt", &ns) == 0)
		info->mnt_ns = (unsigned long long)ns.st_ino;
	return 0;
}

/* rst_tty.c gives a restored terminal job the restorer's own terminal (a
 * pty slave among fds 0-2): a revived shell gets the new one this way. */
static int lend_terminal(const struct fp_shell *sh, int *saved)
{
	*saved = dup(0);
	return *saved < 0 || dup2(sh->slave, 0) < 0 ? -1 : 0;
}

static void take_terminal_back(int saved)
{
	if (saved >= 0) {
		dup2(saved, 0);
		close(saved);
	}
}

/* The snapshot's processes with their pids: here, or, when some are
 * taken, in a pid namespace of their own (session_pidns.h), where this
 * helper's copy goes on as the session's helper. */
static int revive_restore(struct revive *rv, const char *log, struct fp_restore_result *r, fp_error *err)
{
	if (fp_session_restore_exact(rv->snapdir, log, false, r, err) == 0)
		return 0;
	char why[1024];
	if (fp_session_pids_free(rv->snapdir, why, sizeof(why)) || !fp_session_pidns_allowed())
		return -1;
	pid_t nh;
	switch (fp_session_pidns_restore(rv->info, rv->snapdir, log, r, &nh, err)) {
	case FP_PIDNS_FAILED:
		return fp_wrap(err, "restoring in a new pid namespace, as %s", why);
	case FP_PIDNS_HANDED_OVER:
		fp_session_pidns_relay(nh, false); /* the new helper reports ready */
	case FP_PIDNS_NEW_HELPER:
		break;
	}
	return 0;
}

static int revive_body(void *arg, int ready_fd, fp_error *err)
{
	struct revive *rv = arg;
	struct fp_session_info *info = rv->info;
	char sock[PATH_MAX + 16], log[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	snprintf(log, sizeof(log), "%s/restore.log", info->dir);
	int lsock = fp_session_helper_begin(info, err);
	if (lsock < 0)
		return -1;
	info->detached = 1; /* whatever it was: there is no caller to wait for it */
	info->exit_status = 0;
	snprintf(info->state, sizeof(info->state), "starting");
	struct fp_ws *ws = NULL;
	struct fp_ws_switch sw;
	struct fp_shell shell = { .master = -1, .slave = -1 };
	int stdin_fd = -1, saved0 = -1;
	if (info->workdir[0] && revive_workspace(info, rv->snap, &ws, &sw, err) < 0)
		goto fail;
	if (info->shell && (fp_shell_pty_open(&shell, err) < 0 || lend_terminal(&shell, &saved0) < 0)) {
		if (shell.master >= 0 && saved0 < 0)
			fp_fail(err, errno, "cannot lend the new terminal to the restore: %s", strerror(errno));
		goto fail;
	}
	/* A detached program's stdin pipe, by path in its images. */
	if (!info->shell && (stdin_fd = fp_session_stdin_hold(info, err)) < 0)
		goto fail;
	if (fp_session_save(info, err) < 0)
		goto fail;
	struct fp_restore_result r;
	if (revive_restore(rv, log, &r, err) < 0) {
		fp_wrap(err, "restoring snapshot '%s' of ended session '%s' (log: %s)", rv->snap, info->name, log);
		goto fail;
	}
	take_terminal_back(saved0);
	saved0 = -1;
	if (ws && fp_ws_restore_commit(ws, &sw, err) < 0) {
		/* The processes run on the snapshot's files already; only the
		 * record of the switch failed. The session goes on. */
		fprintf(stderr, "forkpoint: warning: workspace restore commit: %s\n", err->msg);
	}
	info->target_pid = r.pid;
	snprintf(info->state, sizeof(info->state), "running");
	fp_session_save(info, NULL);
	fp_session_ready(ready_fd, fp_session_pidns_outer(r.pid));
	fp_session_serve(info, r.pid, lsock, ws, &shell);
	if (stdin_fd >= 0)
		close(stdin_fd);
	return 0;
fail:
	take_terminal_back(saved0);
	fp_shell_close(&shell);
	if (ws) {
		fp_ws_restore_abort(ws, &sw);
		fp_ws_close(ws);
	}
	if (stdin_fd >= 0)
		close(stdin_fd);
	close(lsock);
	unlink(sock);
	snprintf(info->state, sizeof(info->state), "exited");
	fp_session_save(info, NULL);
	return -1;
}

/* 1 while only zombies hold pid (as their pid, group or session: a group
 * or session id keeps the number taken), 0 when it is free or a live
 * process holds it (the restore then names that one). */
static int held_by_zombies(pid_t pid)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int zombies = 0, live = 0;
	struct dirent *de;
	while ((de = readdir(d)) && !live) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		struct fp_proc_stat st;
		if (fp_proc_read_stat(atoi(de->d_name), 0, &st, NULL) < 0)
			continue;
		if (st.pid != pid && st.pgrp != pid && st.session != pid)
			continue;
		if (st.state == 'Z' || st.state == 'X')
			zombies = 1;
		else
			live = 1;
	}
	closedir(d);
	return zombies && !live;
}

/* The ended session's processes may still be zombies that their new parent
 * (init, when the helper was killed) has not reaped yet, and their pids are
 * the image's. Waits a while for them to be reaped. */
static void wait_pids_reaped(const char *pids, int deadline_ms)
{
	struct timespec t0, now, step = { 0, 2000000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (const char *p = pids; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p) {
			p++;
			continue;
		}
		p = end;
		while (held_by_zombies((pid_t)pid)) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > deadline_ms)
				return;
			nanosleep(&step, NULL);
		}
	}
}

int fp_session_revive(const char *name, const char *snap, struct fp_revive_result *res, fp_error *err)
{
	memset(res, 0, sizeof(*res));
	struct fp_session_info info;
	if (fp_snap_name_valid(snap, err) < 0 || fp_session_load(name, &info, err) < 0)
		return -1;
	if (fp_session_helper_alive(&info))
		return fp_fail_code(err, FP_EXIT_FAIL, EBUSY, "session '%s' is running; its helper restores it in place",
				    name);
	pid_t left[8];
	if (fp_session_find_procs(&info, left, 8) > 0)
		return fp_fail_code(err, FP_EXIT_FAIL, EBUSY,
				    "session '%s' has no helper but some of its processes still run (pid %d, ...); "
				    "end them with `forkpoint cleanup --force %s`, or restore into another session",
				    name, (int)left[0], name);
	struct revive rv = { .info = &info, .snap = snap };
	snprintf(rv.snapdir, sizeof(rv.snapdir), "%s/snapshots/%s", info.dir, snap);
	struct fp_snap_info si;
	if (fp_snap_read(rv.snapdir, &si, err) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
				    "session '%s' has no complete snapshot '%s' (see `forkpoint list %s`)", name, snap,
				    name);
	wait_pids_reaped(si.pids, 10000);
	if (fp_session_spawn(revive_body, &rv, &res->pid, err) < 0)
		return -1;
	snprintf(res->workdir, sizeof(res->workdir), "%s", info.workdir);
	return 0;
}
