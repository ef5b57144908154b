#include "session_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "elfinfo.h"
#include "fp_fault_pause.h"
#include "paths.h"
#include "session_cmds.h"
#include "fp_clock.h"
#include "session_exec.h"
#include "session_reap.h"
#include "session_shell.h"
#include "session_hot.h"
#include "rollback_inplace.h"
#include "dump/dirty_tracker.h"
#include "overlay/workspace.h"

int fp_resolve_command(const char *cmd, char *path, size_t len, fp_error *err)
{
	if (!cmd || !*cmd)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "no command given");
	if (strchr(cmd, '/')) {
		struct stat st;
		if (stat(cmd, &st) < 0)
			return fp_fail_code(err, 127, errno, "%s: %s", cmd, strerror(errno));
		if (S_ISDIR(st.st_mode))
			return fp_fail_code(err, 126, EISDIR, "%s is a directory, not a program", cmd);
		if (access(cmd, X_OK) < 0)
			return fp_fail_code(err, 126, errno, "%s is not executable: %s", cmd, strerror(errno));
		snprintf(path, len, "%s", cmd);
		return 0;
	}
	const char *pathenv = getenv("PATH");
	if (!pathenv)
		pathenv = "/usr/local/bin:/usr/bin:/bin";
	int found_noexec = 0;
	for (const char *p = pathenv;;) {
		const char *colon = strchrnul(p, ':');
		char cand[PATH_MAX];
		int dl = (int)(colon - p);
		snprintf(cand, sizeof(cand), "%.*s%s%s", dl, p, dl ? "/" : "", cmd);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0) {
				snprintf(path, len, "%s", cand);
				return 0;
			}
			found_noexec = 1;
		}
		if (!*colon)
			break;
		p = colon + 1;
	}
	if (found_noexec)
		return fp_fail_code(err, 126, EACCES, "%s: found in PATH but not executable", cmd);
	return fp_fail_code(err, 127, ENOENT, "command not found: %s (searched PATH=%s)", cmd, pathenv);
}

/* Builds "LD_PRELOAD=<shim> <old>" without dropping what the user preloads. */
static void set_preload_env(const char *shim, const char *name)
{
	const char *old = getenv("LD_PRELOAD");
	if (shim) {
		if (old && *old && !strstr(old, shim)) {
			size_t n = strlen(shim) + strlen(old) + 2;
			char *v = malloc(n);
			if (v) {
				snprintf(v, n, "%s %s", shim, old);
				setenv("LD_PRELOAD", v, 1);
				free(v);
			}
		} else if (!old || !strstr(old, shim)) {
			setenv("LD_PRELOAD", shim, 1);
		}
		setenv("FORKPOINT_SHIM", shim, 1);
	}
	setenv("FORKPOINT_SESSION", name, 1);
}

/* Finds cmd as the image would: in its own /usr/bin, /bin... Returns the
 * path inside the root (what the chrooted target executes). */
static int resolve_in_root(const char *root, const char *cmd, char *path, size_t len, fp_error *err)
{
	static const char *const dirs[] = { "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin" };
	char full[PATH_MAX];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (strchr(cmd, '/'))
			snprintf(path, len, "%s", cmd);
		else
			snprintf(path, len, "%s/%s", dirs[i], cmd);
		snprintf(full, sizeof(full), "%s%s", root, path);
		if (access(full, X_OK) == 0)
			return 0;
		if (strchr(cmd, '/'))
			break;
	}
	return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
			    "the image has no %s (looked in /usr/local/bin, /usr/bin, /bin, /usr/sbin, /sbin of %s); "
			    "install it in the Dockerfile", cmd, root);
}

/* In the target's child: the image's root, its WORKDIR and its ENV. */
static int enter_root(const struct fp_run_opts *o)
{
	if (chroot(o->root) < 0 || chdir(o->cwd && *o->cwd ? o->cwd : "/") < 0)
		return -1;
	if (o->env) {
		clearenv();
		for (char *const *e = o->env; *e; e++)
			putenv(*e);
	}
	return 0;
}

static void child_fail(int fd, int code, const char *fmt, const char *arg)
{
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "%d ", code);
	n += snprintf(msg + n, sizeof(msg) - (size_t)n, fmt, arg, strerror(errno));
	if (write(fd, msg, (size_t)n) < 0) {
		/* nothing left to report to */
	}
	_exit(127);
}

int fp_session_stdin_hold(const struct fp_session_info *info, fp_error *err)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/stdin", info->dir);
	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		return fp_fail(err, errno, "cannot make the session's stdin %s: %s", path, strerror(errno));
	/* Read-write: opening never blocks, and the pipe has a writer (us) for
	 * the session's lifetime, so its reader never sees end-of-file. */
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		int e = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		return fp_fail(err, e, "cannot open the session's stdin %s: %s", path,
			       fd < 0 ? strerror(e) : "not a named pipe");
	}
	return fd;
}

/* Forks the target. Returns its pid, or -1 with err set (exec failures are
 * reported back through a close-on-exec pipe). */
static pid_t launch_target(const struct fp_run_opts *o, const char *exe, const char *shim,
			   const struct fp_session_info *info, const struct fp_shell *sh, fp_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fp_fail(err, errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return fp_fail(err, e, "cannot fork the target: %s", strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		if (sh) {
			/* The shell owns its terminal (job control) and starts in
			 * the workspace. */
			if (fp_shell_child_attach(sh) < 0)
				child_fail(p[1], 1, "cannot give the shell its terminal %s: %s", sh->slave_path);
			const char *cwd = info->workdir[0] ? info->workdir : info->cwd;
			if (!o->root && cwd[0] && chdir(cwd) < 0)
				child_fail(p[1], 1, "cannot enter %s: %s", cwd);
		} else if (o->detach) {
			/* Its own session, as a daemon would be: it has no terminal,
			 * and a session leader restores without --shell-job. */
			setsid();
			char log[PATH_MAX + 16];
			snprintf(log, sizeof(log), "%s/output.log", info->dir);
			char fifo[PATH_MAX + 16];
			snprintf(fifo, sizeof(fifo), "%s/stdin", info->dir);
			/* The helper holds the pipe open, so this does not block
			 * and a reader waits for input instead of reading EOF. */
			int in = open(fifo, O_RDONLY | O_NOFOLLOW);
			if (in < 0)
				child_fail(p[1], 1, "cannot open the session's stdin %s: %s", fifo);
			int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
			if (out < 0)
				child_fail(p[1], 1, "cannot open the session log %s: %s", log);
			dup2(in, 0);
			dup2(out, 1);
			dup2(out, 2);
			if (in > 2)
				close(in);
			if (out > 2)
				close(out);
		}
		if (o->root && enter_root(o) < 0)
			child_fail(p[1], 1, "cannot enter the image's root %s: %s", o->root);
		set_preload_env(shim, info->name);
		if (o->sigs)
			fp_restore_inherited_signals(o->sigs);
		execv(exe, o->argv);
		child_fail(p[1], errno == ENOENT ? 127 : 126, "cannot execute %s: %s", exe);
	}
	close(p[1]);
	char msg[600];
	ssize_t n;
	do
		n = read(p[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n > 0) {
		msg[n] = '\0';
		int code = atoi(msg);
		char *sp = strchr(msg, ' ');
		waitpid(pid, NULL, 0);
		return fp_fail_code(err, code ? code : 1, 0, "%s", sp ? sp + 1 : msg);
	}
	return pid;
}

/* Reaps every child that has ended: the target, and orphans of its tree
 * (the helper is their subreaper). Returns 1 when the current target ended,
 * with its wait status in *status. */
static int reap_children(struct fp_session_ctx *ctx, int *status)
{
	int done = 0, st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
		if (w == ctx->target && (WIFEXITED(st) || WIFSIGNALED(st))) {
			*status = st;
			done = 1;
		} else if (WIFEXITED(st) || WIFSIGNALED(st)) {
			fp_exec_reaped(ctx, w, st);
		}
	}
	return done;
}

/* The helper's loop: serve requests and forward signals until the target
 * ends. A `restore` request may replace the target meanwhile. Returns the
 * (last) target's wait status. */
static int serve(struct fp_session_info *info, pid_t target, int detached, int lsock, struct fp_ws *ws,
		 struct fp_shell *sh)
{
	sigset_t fwd;
	sigemptyset(&fwd);
	int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT, SIGWINCH, SIGCONT };
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&fwd, forwarded[i]);
	sigaddset(&fwd, SIGCHLD);
	sigprocmask(SIG_BLOCK, &fwd, NULL);
	int sfd = signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK);

	struct fp_session_ctx ctx = { .info = info, .target = target, .ws = ws, .shell = sh };
	int status = 0;
	for (;;) {
		/* Checked before every wait: a SIGCHLD may have been consumed by a
		 * request handler's own waits. */
		if (reap_children(&ctx, &status))
			break;
		if (ctx.target < 0) { /* a failed restore left no process */
			status = 1 << 8;
			break;
		}
		struct pollfd pf[2 + FP_EXEC_MAX_POLLFDS] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = lsock, .events = POLLIN },
		};
		/* The timeout only bounds how late a missed SIGCHLD is noticed,
		 * unless an exec has a deadline sooner. */
		int timeout = 1000;
		if (ctx.stop_deadline_ms) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			long long left = ctx.stop_deadline_ms - (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000);
			if (left <= 0) {
				fp_session_signal_all(SIGKILL); /* the program outlived `stop` */
				left = 100;
			}
			if (left < timeout)
				timeout = (int)left;
		}
		int nx = fp_exec_pollfds(&ctx, pf + 2, FP_EXEC_MAX_POLLFDS, &timeout);
		int r = poll(pf, 2 + (nfds_t)nx, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD)
					continue;
				/* In the foreground the terminal already sent ^C/^\ to the
				 * whole process group, the target included. */
				if (!detached && (sig == SIGINT || sig == SIGQUIT || sig == SIGWINCH))
					continue;
				kill(ctx.target, sig);
			}
		}
		if (pf[1].revents & POLLIN) {
			int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && !fp_session_handle_client(&ctx, c))
				close(c);
			fp_session_idle_at = fp_mono_ms_f();
		}
		if (r > 0)
			fp_exec_events(&ctx, pf + 2, nx);
	}
	fp_exec_shutdown(&ctx, status);
	/* The session is its whole tree: nothing outlives it, holding the
	 * workspace's mounts or its ports. */
	fp_session_kill_all(10000);
	if (sfd >= 0)
		close(sfd);
	return status;
}

void fp_session_finish(struct fp_session_info *info, int status)
{
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	unlink(sock);
	snprintf(info->state, sizeof(info->state), "exited");
	info->exit_status = status;
	char snaps[PATH_MAX + 16];
	snprintf(snaps, sizeof(snaps), "%s/snapshots", info->dir);
	/* A session that leaves nothing to restore or read leaves nothing
	 * behind. A detached one keeps its output.log, even empty (it says
	 * the program wrote nothing): a new session of that name reclaims
	 * the directory. */
	char store[PATH_MAX + 16];
	snprintf(store, sizeof(store), "%s/workspace", info->dir);
	/* A branch's workspace may stand on this session's layers (pinned). */
	if ((rmdir(snaps) == 0 || errno == ENOENT) && !info->detached && !fp_ws_pinned(store)) {
		fp_rm_rf(info->dir, NULL);
		return;
	}
	fp_session_save(info, NULL);
}

/* run --workdir: this helper moves into a private mount namespace where DIR
 * shows an overlay view (overlay/workspace.h); the target, forked next,
 * inherits it. DIR itself is never written. */
static int setup_workspace(const char *dir, struct fp_session_info *info, struct fp_ws **ws,
			   fp_error *err)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return fp_fail_code(err, FP_EXIT_NOTFOUND, errno, "--workdir %s: %s", dir, strerror(errno));
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return fp_fail_code(err, FP_EXIT_USAGE, ENOTDIR, "--workdir %s is not a directory", dir);
	if (geteuid() != 0)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "--workdir needs root (overlay mounts in a private mount namespace)");
	char store[PATH_MAX + 16];
	snprintf(store, sizeof(store), "%s/workspace", info->dir);
	struct fp_ws_opts wo = { .sync = true };
	if (fp_ws_private_ns(err) < 0 || fp_ws_create(store, real, &wo, ws, err) < 0)
		return fp_wrap(err, "workspace");
	if (fp_ws_mount(*ws, err) < 0) {
		fp_ws_close(*ws);
		*ws = NULL;
		return fp_wrap(err, "workspace");
	}
	snprintf(info->workdir, sizeof(info->workdir), "%s", real);
	struct stat ns;
	if (stat("/proc/self/ns/mnt", &ns) == 0)
		info->mnt_ns = (unsigned long long)ns.st_ino;
	return 0;
}

/* A built image gets /proc (exec's redirections go through
 * /proc/HELPER/fd), /dev (its terminal) and /tmp, in the helper's private
 * mount namespace only. */
static int mount_image_fs(const char *root, fp_error *err)
{
	char p[PATH_MAX + 8];
	static const char *const dirs[] = { "proc", "dev", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
		if (mkdir(p, i == 2 ? 01777 : 0755) < 0 && errno != EEXIST)
			return fp_fail(err, errno, "cannot create %s in the image: %s", p, strerror(errno));
	}
	snprintf(p, sizeof(p), "%s/proc", root);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fp_fail(err, errno, "cannot mount /proc in the image at %s: %s", p, strerror(errno));
	snprintf(p, sizeof(p), "%s/dev", root);
	if (mount("/dev", p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fp_fail(err, errno, "cannot bind /dev into the image at %s: %s", p, strerror(errno));
	return 0;
}

int fp_session_helper_begin(struct fp_session_info *info, fp_error *err)
{
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	/* Orphans of the session's tree come to us, so we reap them at once
	 * (PID 1 here reaps late) and their pids are free for a restore. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int lsock = fp_ctl_listen(sock, err);
	if (lsock < 0)
		return -1;
	info->helper_pid = getpid();
	info->helper_start = fp_proc_starttime(getpid());
	info->started = (long long)time(NULL);
	setenv(FP_SESSION_MARK, info->dir, 1); /* inherited by all the session starts */
	return lsock;
}

/* Everything after the session directory exists. In detached mode this runs
 * in the background helper and reports readiness through ready_fd. */
static int run_helper(const struct fp_run_opts *o, struct fp_session_info *info, const char *exe,
		      const char *shim, int ready_fd, struct fp_run_result *res, fp_error *err)
{
	int lsock = fp_session_helper_begin(info, err);
	if (lsock < 0)
		return -1;
	info->detached = o->detach;
	info->shim = shim != NULL;
	snprintf(info->state, sizeof(info->state), "starting");
	if (!getcwd(info->cwd, sizeof(info->cwd)))
		info->cwd[0] = '\0';
	size_t off = 0;
	for (char *const *a = o->argv; *a && off + 2 < sizeof(info->cmd); a++)
		off += (size_t)snprintf(info->cmd + off, sizeof(info->cmd) - off, "%s%s",
					a == o->argv ? "" : " ", *a);
	struct fp_ws *ws = NULL;
	if (o->workdir && setup_workspace(o->workdir, info, &ws, err) < 0) {
		close(lsock);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	if (o->root && mount_image_fs(o->root, err) < 0) {
		close(lsock);
		if (ws)
			fp_ws_close(ws);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	struct fp_shell shell = { .master = -1, .slave = -1 };
	info->shell = o->shell;
	int stdin_fd = -1;
	if (o->detach && !o->shell && (stdin_fd = fp_session_stdin_hold(info, err)) < 0) {
		close(lsock);
		if (ws)
			fp_ws_close(ws);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	if (o->shell && fp_shell_pty_open(&shell, err) < 0) {
		close(lsock);
		if (ws)
			fp_ws_close(ws);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	if (fp_session_save(info, err) < 0) {
		close(lsock);
		if (ws)
			fp_ws_close(ws);
		return -1;
	}
	pid_t target = launch_target(o, exe, shim, info, o->shell ? &shell : NULL, err);
	if (target < 0) {
		fp_shell_close(&shell);
		close(lsock);
		if (ws)
			fp_ws_close(ws);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	info->target_pid = target;
	snprintf(info->state, sizeof(info->state), "running");
	if (fp_session_save(info, err) < 0) {
		kill(target, SIGKILL);
		waitpid(target, NULL, 0);
		close(lsock);
		fp_rm_rf(info->dir, NULL);
		return -1;
	}
	res->target_pid = target;
	snprintf(res->name, sizeof(res->name), "%s", info->name);
	if (ready_fd >= 0)
		fp_session_ready(ready_fd, target);
	res->wait_status = fp_session_serve(info, target, lsock, ws, &shell);
	if (stdin_fd >= 0)
		close(stdin_fd);
	return 0;
}

int fp_session_spawn(int (*body)(void *arg, int ready_fd, fp_error *err), void *arg, int *target,
		     fp_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fp_fail(err, errno, "pipe: %s", strerror(errno));
	pid_t helper = fork();
	if (helper < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return fp_fail(err, e, "cannot fork the session helper: %s", strerror(e));
	}
	if (helper == 0) {
		close(p[0]);
		setsid();
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		fp_error herr;
		if (body(arg, p[1], &herr) < 0) {
			char msg[sizeof(herr.msg) + 16];
			int n = snprintf(msg, sizeof(msg), "%d %s", herr.exit_code ? herr.exit_code : 1,
					 herr.msg);
			if (write(p[1], msg, (size_t)n) < 0) {
				/* launcher gone */
			}
			_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	char msg[sizeof(err->msg) + 16];
	ssize_t n;
	do
		n = read(p[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n <= 0) {
		waitpid(helper, NULL, 0);
		return fp_fail(err, EPIPE, "the session helper died while starting the target");
	}
	msg[n] = '\0';
	int code = atoi(msg);
	char *sp = strchr(msg, ' ');
	if (code != 0) {
		waitpid(helper, NULL, 0);
		return fp_fail_code(err, code, 0, "%s", sp ? sp + 1 : msg);
	}
	*target = sp ? atoi(sp + 1) : 0;
	return 0;
}

void fp_session_ready(int ready_fd, pid_t target)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "0 %d", (int)target);
	if (write(ready_fd, msg, (size_t)n) < 0) {
		/* the launcher died; the session still runs */
	}
	close(ready_fd);
}

int fp_session_serve(struct fp_session_info *info, pid_t target, int lsock, struct fp_ws *ws,
		     struct fp_shell *sh)
{
	int status = serve(info, target, info->detached, lsock, ws, sh && sh->master >= 0 ? sh : NULL);
	fp_rollback_ahead_free();
	fp_hot_release_all(info->dir);
	fp_track_reserve_free(fp_track_session());
	if (sh)
		fp_shell_close(sh);
	if (ws)
		fp_ws_close(ws);
	close(lsock);
	fp_session_finish(info, status);
	/* a test's window: "exited" saved, the socket gone, the helper alive */
	fp_fault_pause("session-finished", info->dir);
	return status;
}

struct run_arg {
	const struct fp_run_opts *o;
	struct fp_session_info *info;
	const char *exe, *shim;
};

static int run_body(void *arg, int ready_fd, fp_error *err)
{
	struct run_arg *a = arg;
	struct fp_run_result hres;
	return run_helper(a->o, a->info, a->exe, a->shim, ready_fd, &hres, err);
}

int fp_run_session(const struct fp_run_opts *o, struct fp_run_result *res, fp_error *err)
{
	memset(res, 0, sizeof(*res));
	struct fp_run_opts shell_opts;
	if (o->shell) {
		if (o->argv && o->argv[0])
			return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
					    "run --shell starts bash itself; give no command (send commands with `forkpoint exec`)");
		/* A shell session is a server: it runs in the background. */
		shell_opts = *o;
		shell_opts.argv = fp_shell_argv;
		shell_opts.detach = 1;
		o = &shell_opts;
	}
	if (!o->argv || !o->argv[0])
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
				    "no command given; usage: forkpoint run [--name NAME] [--detach] -- CMD [ARGS...]");
	if (o->root && !o->workdir)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "a session in an image needs its workspace (workdir)");
	char exe[PATH_MAX];
	if (o->root) {
		if (resolve_in_root(o->root, o->argv[0], exe, sizeof(exe), err) < 0)
			return -1;
	} else if (fp_resolve_command(o->argv[0], exe, sizeof(exe), err) < 0) {
		return -1;
	}
	enum fp_exe_kind kind = FP_EXE_DYNAMIC;
	if (!o->root && fp_exe_kind(exe, &kind, err) < 0)
		return -1;
	char shimbuf[PATH_MAX];
	const char *shim = NULL;
	if (o->root) {
		/* the shim lives outside the image: ptrace-only mode */
	} else if (kind == FP_EXE_STATIC) {
		snprintf(res->notice, sizeof(res->notice),
			 "%s is statically linked: the shim cannot be loaded into it; running in ptrace-only mode "
			 "(/proc is the source of truth for its fds and mappings)", exe);
	} else if (!o->no_shim) {
		if (fp_shim_path(shimbuf, sizeof(shimbuf), err) < 0)
			return -1;
		shim = shimbuf;
	}
	const char *base = strrchr(o->argv[0], '/');
	base = base ? base + 1 : o->argv[0];
	struct fp_session_info info;
	if (fp_session_reserve(o->name, base, &info, err) < 0)
		return -1;

	if (!o->detach)
		return run_helper(o, &info, exe, shim, -1, res, err);

	struct run_arg ra = { o, &info, exe, shim };
	if (fp_session_spawn(run_body, &ra, &res->target_pid, err) < 0) {
		fp_rm_rf(info.dir, NULL);
		return -1;
	}
	/* The helper goes on in the background; it is reparented when we exit.
	 * Its metadata says where the workspace is. */
	struct fp_session_info now;
	if (fp_session_load(info.name, &now, NULL) == 0)
		snprintf(res->workdir, sizeof(res->workdir), "%s", now.workdir);
	snprintf(res->name, sizeof(res->name), "%s", info.name);
	return 0;
}
