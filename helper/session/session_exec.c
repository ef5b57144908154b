#include "session_exec.h"
#include "fp_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session_cmds.h"
#include "session_shell.h"
#include "session_store.h"

#define QUEUE_MAX 16
/* How long an interrupted command gets before its process group is killed. */
#define GRACE_MS 2000
/* SIGINT again, until the grace ends. */
#define INT_AGAIN_MS 250
/* A shell idle at its prompt this long without reporting lost its status
 * line (check_idle); how often to look while a command runs. */
#define IDLE_MS 100
#define IDLE_POLL_MS 500

enum { FD_OUT, FD_ERR, FD_IN, FD_N };

struct exec_job {
	int conn;          /* the caller's connection, -1 once it went away */
	int fds[FD_N];     /* the caller's pipes: stdout, stderr (write ends), stdin (read end) */
	int sink[2];       /* our own read ends of the stdout and stderr pipes (see hold_readers) */
	int argv_form;     /* body is NUL-separated argv, not a shell string */
	long long timeout_ms;
	char *body;
	size_t blen;
	/* running */
	pid_t shell;       /* shell mode: the shell it was typed into */
	unsigned restores; /* the session's count when it started (a restore keeps the pid, in place the process too) */
	pid_t child;       /* process mode: the command's process (and group) */
	int cmd_r, rc_r;   /* shell mode: the command text; "return LAST_STATUS" */
	char tag[32];
	long long t0, deadline, next_kill, next_int;
	int interrupted, timed_out, kills;
	/* shell mode: the shell seen idle at its prompt with no status line
	 * (when, and its read count then); status lines typed again */
	long long idle_since;
	unsigned long long idle_rchar;
	int retyped;
};

struct fp_exec_srv {
	struct exec_job *cur;
	struct exec_job *queue[QUEUE_MAX];
	int nq;
	int last_status;   /* the shell's $? after the previous exec */
	unsigned seq;
	/* shell mode: the shell writes "TAG STATUS" lines here. One pipe for
	 * the session's life: a status line that comes late (its command was
	 * already answered) finds this pipe, never an fd number that a later
	 * command reuses for its output, and its tag tells it apart. */
	int st_r, st_w;
	char stbuf[256];
	size_t stlen;
};

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void send_msg(int c, const char *msg)
{
	if (c >= 0)
		send(c, msg, strlen(msg), MSG_NOSIGNAL);
}

static void job_free(struct exec_job *j)
{
	closep(&j->conn);
	for (int i = 0; i < FD_N; i++)
		closep(&j->fds[i]);
	closep(&j->sink[0]);
	closep(&j->sink[1]);
	closep(&j->cmd_r);
	closep(&j->rc_r);
	free(j->body);
	free(j);
}

static void job_fail(struct exec_job *j, int code, const char *fmt, const char *arg)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "error %d\n", code);
	snprintf(buf + n, sizeof(buf) - (size_t)n, fmt, arg);
	send_msg(j->conn, buf);
	job_free(j);
}

static struct fp_exec_srv *srv_of(struct fp_session_ctx *ctx)
{
	if (!ctx->exec && (ctx->exec = calloc(1, sizeof(*ctx->exec))))
		ctx->exec->st_r = ctx->exec->st_w = -1;
	return ctx->exec;
}

/* "'a' 'b c' 'it'\''s'": argv as one shell string. */
static char *quote_argv(const char *body, size_t blen, size_t *outlen)
{
	size_t cap = blen * 4 + 16, n = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	for (size_t i = 0; i < blen;) {
		size_t l = strnlen(body + i, blen - i);
		if (n)
			s[n++] = ' ';
		s[n++] = '\'';
		for (size_t k = 0; k < l; k++) {
			if (body[i + k] == '\'') {
				memcpy(s + n, "'\\''", 4);
				n += 4;
			} else {
				s[n++] = body[i + k];
			}
		}
		s[n++] = '\'';
		i += l + 1;
	}
	*outlen = n;
	return s;
}

/* A pipe that already holds `len` bytes of text, read end returned. */
static int text_pipe(const char *text, size_t len, fp_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return fp_fail(err, errno, "pipe: %s", strerror(errno));
	if (len >= 65536)
		fcntl(p[1], F_SETPIPE_SZ, (int)len + 1);
	ssize_t n = len ? write(p[1], text, len) : 0;
	close(p[1]);
	if (n < 0 || (size_t)n != len) {
		close(p[0]);
		return fp_fail(err, E2BIG, "the command (%zu bytes) does not fit in a pipe; "
			       "put it in a script file and run that", len);
	}
	return p[0];
}

/* Reports $? on the status pipe, typed as a line of its own: it runs even
 * when an interrupt aborted the line before it. */
static void status_line(char *buf, size_t len, const char *tag, int st_w)
{
	snprintf(buf, len, " \\builtin printf '%s %%s\\n' \"$?\" >/proc/%d/fd/%d\n", tag, (int)getpid(), st_w);
}

static int start_shell(struct fp_session_ctx *ctx, struct exec_job *j, fp_error *err)
{
	struct fp_exec_srv *s = ctx->exec;
	size_t tl;
	char *text = j->argv_form ? quote_argv(j->body, j->blen, &tl) : NULL;
	if (j->argv_form && !text)
		return fp_fail(err, ENOMEM, "out of memory");
	if (!text) {
		text = j->body;
		tl = j->blen;
		j->body = NULL;
	}
	/* A final newline ends a last line or a here-document. */
	char *nl = realloc(text, tl + 1);
	if (!nl) {
		free(text);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	nl[tl++] = '\n';
	j->cmd_r = text_pipe(nl, tl, err);
	free(nl);
	/* $? is the status line's own, 0, when the line starts: the previous
	 * status needs a file of its own only when it was not 0. */
	char rc[32];
	int rl = snprintf(rc, sizeof(rc), "return %d\n", s->last_status);
	if (j->cmd_r < 0 || (s->last_status && (j->rc_r = text_pipe(rc, (size_t)rl, err)) < 0))
		return -1;
	int p[2];
	if (s->st_r < 0) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return fp_fail(err, errno, "pipe: %s", strerror(errno));
		s->st_r = p[0];
		s->st_w = p[1];
	}
	snprintf(j->tag, sizeof(j->tag), "fp%u.%lld", ++s->seq, fp_mono_ms());

	/* Two lines, typed together. The first sets $? to the previous exec's
	 * status and sources the command with its redirections, in the shell
	 * itself, so cd, variables and jobs stay. The second is the status
	 * line. \builtin escapes the user's aliases and functions. */
	int h = (int)getpid();
	char in[64], rcs[64] = "", line[1024];
	if (j->fds[FD_IN] >= 0)
		snprintf(in, sizeof(in), "/proc/%d/fd/%d", h, j->fds[FD_IN]);
	else
		snprintf(in, sizeof(in), "/dev/null");
	if (j->rc_r >= 0)
		snprintf(rcs, sizeof(rcs), " \\builtin . /proc/%d/fd/%d;", h, j->rc_r);
	int ll = snprintf(line, sizeof(line),
			  "%s \\builtin . /proc/%d/fd/%d <%s >/proc/%d/fd/%d 2>/proc/%d/fd/%d\n",
			  rcs, h, j->cmd_r, in, h, j->fds[FD_OUT], h, j->fds[FD_ERR]);
	status_line(line + ll, sizeof(line) - (size_t)ll, j->tag, s->st_w);
	j->shell = ctx->target;
	j->restores = ctx->restores;
	fp_shell_flush_input(ctx->shell);
	return fp_shell_type(ctx->shell, line, err);
}

static int start_process(struct fp_session_ctx *ctx, struct exec_job *j, fp_error *err)
{
	char **argv;
	size_t argc = 0;
	if (j->argv_form) {
		for (size_t i = 0; i < j->blen; i += strnlen(j->body + i, j->blen - i) + 1)
			argc++;
	}
	argv = calloc(argc + 4, sizeof(*argv));
	if (!argv)
		return fp_fail(err, ENOMEM, "out of memory");
	if (j->argv_form) {
		size_t k = 0;
		for (size_t i = 0; i < j->blen; i += strlen(j->body + i) + 1)
			argv[k++] = j->body + i;
	} else {
		argv[0] = "/bin/sh";
		argv[1] = "-c";
		argv[2] = j->body;
	}
	const char *cwd = ctx->info->workdir[0] ? ctx->info->workdir : ctx->info->cwd;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		free(argv);
		return fp_fail(err, e, "cannot fork: %s", strerror(e));
	}
	if (pid == 0) {
		setpgid(0, 0);
		int in = j->fds[FD_IN] >= 0 ? j->fds[FD_IN] : open("/dev/null", O_RDONLY);
		dup2(in, 0);
		dup2(j->fds[FD_OUT], 1);
		dup2(j->fds[FD_ERR], 2);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (cwd[0] && chdir(cwd) < 0)
			dprintf(2, "forkpoint exec: cannot enter %s: %s\n", cwd, strerror(errno));
		execvp(argv[0], argv);
		int e = errno;
		dprintf(2, "forkpoint exec: %s: %s\n", argv[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	free(argv);
	setpgid(pid, pid);
	j->child = pid;
	return 0;
}

static void start_next(struct fp_session_ctx *ctx)
{
	struct fp_exec_srv *s = ctx->exec;
	while (!s->cur && s->nq > 0) {
		struct exec_job *j = s->queue[0];
		memmove(s->queue, s->queue + 1, (size_t)(--s->nq) * sizeof(s->queue[0]));
		j->t0 = fp_mono_ms();
		j->deadline = j->timeout_ms > 0 ? j->t0 + j->timeout_ms : 0;
		fp_error err;
		int rc = ctx->shell ? start_shell(ctx, j, &err) : start_process(ctx, j, &err);
		if (rc < 0) {
			job_fail(j, err.exit_code ? err.exit_code : 1, "%s", err.msg);
			continue;
		}
		s->cur = j;
	}
}

static void finish(struct fp_session_ctx *ctx, int exit_code, const char *note)
{
	struct fp_exec_srv *s = ctx->exec;
	struct exec_job *j = s->cur;
	s->cur = NULL;
	char buf[512];
	snprintf(buf, sizeof(buf), "ok\nexit_code=%d\nduration_ms=%lld\ntimed_out=%d\ninterrupted=%d\nnote=%s\n",
		 j->timed_out ? FP_EXEC_TIMEOUT_CODE : exit_code, fp_mono_ms() - j->t0, j->timed_out,
		 j->interrupted, note ? note : "");
	send_msg(j->conn, buf);
	job_free(j);
	start_next(ctx);
}

/* A caller that dies takes the read ends of its output pipes with it. The
 * command's next write would then raise SIGPIPE, and in a shell session
 * the writer is often the shell itself (a builtin's output, or bash's
 * "Killed" notice when the interrupt ends with SIGKILL): the shell would
 * die, and the session with it. So the helper holds a read end of each
 * (opened through /proc, which gives a new reader of the same pipe), and
 * empties them once the caller is gone, until the interrupted command
 * reports its end. */
static void hold_readers(struct exec_job *j)
{
	for (int k = 0; k < 2; k++) {
		struct stat st;
		char path[64];
		if (fstat(j->fds[k], &st) < 0 || !S_ISFIFO(st.st_mode))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", j->fds[k]);
		j->sink[k] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
}

static void drain_sink(int fd)
{
	char buf[65536];
	for (int i = 0; i < 16 && read(fd, buf, sizeof(buf)) > 0; i++) {
	}
}

void fp_exec_request(struct fp_session_ctx *ctx, int c, const char *msg, size_t len, int *fds, int nfds)
{
	struct exec_job *j = calloc(1, sizeof(*j));
	struct fp_exec_srv *s = srv_of(ctx);
	if (!j || !s) {
		send_msg(c, "error 1\nthe session helper is out of memory");
		close(c);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		free(j);
		return;
	}
	j->conn = c;
	j->cmd_r = j->rc_r = -1;
	j->sink[0] = j->sink[1] = -1;
	for (int i = 0; i < FD_N; i++)
		j->fds[i] = i < nfds ? fds[i] : -1;
	for (int i = FD_N; i < nfds; i++)
		close(fds[i]);
	if (nfds >= 2)
		hold_readers(j);
	const char *body = memmem(msg, len, "\n\n", 2);
	if (nfds < 2 || !body) {
		job_fail(j, 2, "%s", "malformed exec request (forkpoint and its helper differ in version?)");
		return;
	}
	body += 2;
	for (const char *p = msg; p < body;) {
		const char *e = memchr(p, '\n', (size_t)(body - p));
		if (!strncmp(p, "timeout_ms=", 11))
			j->timeout_ms = atoll(p + 11);
		else if (!strncmp(p, "form=argv", 9))
			j->argv_form = 1;
		p = e ? e + 1 : body;
	}
	j->blen = len - (size_t)(body - msg);
	j->body = malloc(j->blen + 1);
	if (!j->body || (j->argv_form && j->blen == 0)) {
		job_fail(j, 2, "%s", j->body ? "no command given" : "the session helper is out of memory");
		return;
	}
	memcpy(j->body, body, j->blen);
	j->body[j->blen] = '\0';
	if (s->nq >= QUEUE_MAX) {
		char n[32];
		snprintf(n, sizeof(n), "%d", QUEUE_MAX);
		job_fail(j, FP_EXIT_FAIL,
			 "session is busy: one command runs and %s more wait; try again when they are done", n);
		return;
	}
	s->queue[s->nq++] = j;
	start_next(ctx);
}

/* Sends the running command sig, as ^C would send SIGINT. A shell's own
 * builtin loop only ever gets SIGINT. */
static void signal_command(struct fp_session_ctx *ctx, struct exec_job *j, int sig)
{
	if (j->child > 0) {
		killpg(j->child, sig);
	} else if (ctx->shell) {
		pid_t fg = fp_shell_foreground(ctx->shell);
		if (fg <= 0 || fg == j->shell)
			kill(j->shell, SIGINT);
		else
			killpg(fg, sig);
	}
}

/* The first round sends SIGINT; later rounds kill the foreground group. */
static void interrupt(struct fp_session_ctx *ctx, struct exec_job *j, int hard)
{
	signal_command(ctx, j, hard ? SIGKILL : SIGINT);
	long long now = fp_mono_ms();
	j->interrupted = 1;
	j->kills += hard;
	j->next_kill = now + GRACE_MS;
	j->next_int = now + INT_AGAIN_MS;
}

/* The shell sits at its prompt with nothing left to read and has not
 * reported: a SIGINT that reached it after the command (a race no signal
 * sender can close) dropped the typed status line. Typed again, the line
 * reports $?, 130 after such an interrupt. Seen twice, IDLE_MS apart, with
 * nothing read in between: typed input can take a moment to reach the
 * line discipline, and a shell with input on its way is not idle. */
static void check_idle(struct fp_session_ctx *ctx, struct exec_job *j, long long now)
{
	struct fp_exec_srv *s = ctx->exec;
	unsigned long long rchar;
	struct pollfd st = { .fd = s->st_r, .events = POLLIN };
	if (now - j->t0 < IDLE_MS || j->retyped >= 3 || !fp_shell_waits_for_input(ctx->shell, j->shell, &rchar) ||
	    poll(&st, 1, 0) != 0) {
		j->idle_since = 0;
		return;
	}
	if (!j->idle_since || rchar != j->idle_rchar) {
		j->idle_since = now;
		j->idle_rchar = rchar;
		return;
	}
	if (now - j->idle_since < IDLE_MS)
		return;
	char line[256];
	status_line(line, sizeof(line), j->tag, s->st_w);
	fp_error err;
	fp_shell_type(ctx->shell, line, &err);
	j->retyped++;
	j->idle_since = 0;
}

static void lower_timeout(long long next, long long now, int *timeout_ms)
{
	if (!next)
		return;
	long long left = next > now ? next - now : 0;
	if (left < *timeout_ms)
		*timeout_ms = (int)left;
}

int fp_exec_pollfds(struct fp_session_ctx *ctx, struct pollfd *pf, int max, int *timeout_ms)
{
	struct fp_exec_srv *s = ctx->exec;
	int n = 0;
	if (ctx->shell && n < max)
		pf[n++] = (struct pollfd){ .fd = ctx->shell->master, .events = POLLIN };
	if (!s)
		return n;
	if (s->st_r >= 0 && n < max)
		pf[n++] = (struct pollfd){ .fd = s->st_r, .events = POLLIN };
	struct exec_job *j = s->cur;
	if (j && j->shell && (j->shell != ctx->target || j->restores != ctx->restores)) {
		/* A restore replaced the shell: the command's outcome is gone
		 * with it, and its status line must not reach the new shell. */
		fp_shell_flush_input(ctx->shell);
		send_msg(j->conn, "error 1\nthe session was restored to a snapshot while this command ran; "
				  "its exit status is unknown");
		s->cur = NULL;
		job_free(j);
		start_next(ctx);
		j = s->cur;
	}
	long long now = fp_mono_ms();
	if (j) {
		if (j->deadline && now >= j->deadline && !j->timed_out) {
			j->timed_out = 1;
			interrupt(ctx, j, 0);
		} else if (j->interrupted && now >= j->next_kill) {
			if (j->kills >= 5) {
				/* Nothing ended it (a command reading the terminal ate
				 * the status line?): answer, and free the session. */
				finish(ctx, 128 + SIGKILL, "the command did not report its end after SIGINT and SIGKILL; "
							   "the shell may still run it");
				return fp_exec_pollfds(ctx, pf, max, timeout_ms);
			}
			interrupt(ctx, j, 1);
		} else if (j->interrupted && !j->kills && j->shell && now >= j->next_int) {
			/* A SIGINT can miss: its group ended just then, or the
			 * shell's child had not yet exec'd and ran the shell's
			 * handler. Pressed again, as a person would. */
			signal_command(ctx, j, SIGINT);
			j->next_int = now + INT_AGAIN_MS;
		}
		if (j->shell)
			check_idle(ctx, j, now);
		lower_timeout(j->interrupted ? j->next_kill : j->deadline, now, timeout_ms);
		if (j->interrupted && !j->kills && j->shell)
			lower_timeout(j->next_int, now, timeout_ms);
		if (j->shell)
			lower_timeout(now + (j->idle_since ? IDLE_MS : IDLE_POLL_MS), now, timeout_ms);
	}
	if (j && j->conn >= 0 && n < max)
		pf[n++] = (struct pollfd){ .fd = j->conn, .events = POLLIN };
	for (int k = 0; j && j->conn < 0 && k < 2 && n < max; k++)
		if (j->sink[k] >= 0)
			pf[n++] = (struct pollfd){ .fd = j->sink[k], .events = POLLIN };
	for (int i = 0; i < s->nq && n < max; i++)
		pf[n++] = (struct pollfd){ .fd = s->queue[i]->conn, .events = POLLIN };
	return n;
}

/* bash undoes the status line's redirection right after its printf: until
 * then the shell's fd 1 is the status pipe. The answer waits for that (a
 * condition, at most SETTLE_MS), so that a snapshot or a rollback the
 * caller makes next finds the shell's own terminal on fd 1: a rollback in
 * place under load found the pipe there and refused ("fd 1 ... is a
 * terminal that is not the session's own"). */
#define SETTLE_MS 200

static void settle_fd1(const struct fp_exec_srv *s, pid_t shell)
{
	struct stat pst, st;
	char lp[64];
	snprintf(lp, sizeof(lp), "/proc/%d/fd/1", (int)shell);
	long long deadline = fp_mono_ms() + SETTLE_MS;
	while (fstat(s->st_w, &pst) == 0 && stat(lp, &st) == 0 && st.st_ino == pst.st_ino && st.st_dev == pst.st_dev &&
	       fp_mono_ms() < deadline) {
		struct timespec ts = { 0, 50 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Status lines, "TAG STATUS": the running command's ends it; any other is
 * a late copy of an answered one. */
static void on_status(struct fp_session_ctx *ctx)
{
	struct fp_exec_srv *s = ctx->exec;
	ssize_t r = read(s->st_r, s->stbuf + s->stlen, sizeof(s->stbuf) - 1 - s->stlen);
	if (r <= 0)
		return;
	s->stlen += (size_t)r;
	char *line = s->stbuf, *end = s->stbuf + s->stlen, *nl;
	while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
		*nl = '\0';
		struct exec_job *j = s->cur;
		size_t tl = j ? strlen(j->tag) : 0;
		if (j && j->shell && !strncmp(line, j->tag, tl) && line[tl] == ' ') {
			int st = atoi(line + tl + 1);
			s->last_status = st;
			settle_fd1(s, j->shell);
			finish(ctx, st, NULL);
		}
		line = nl + 1;
	}
	s->stlen = (size_t)(end - line);
	if (s->stlen == sizeof(s->stbuf) - 1)
		s->stlen = 0; /* no line of ours is that long */
	memmove(s->stbuf, line, s->stlen);
}

/* A message or a hangup from a caller: "interrupt", or it went away. */
static int on_conn(struct fp_session_ctx *ctx, struct exec_job *j, short rev)
{
	char buf[64];
	ssize_t r = (rev & POLLIN) ? recv(j->conn, buf, sizeof(buf), MSG_DONTWAIT) : 0;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0)
		closep(&j->conn);
	if (j == ctx->exec->cur && !j->interrupted)
		interrupt(ctx, j, 0);
	return j->conn < 0;
}

void fp_exec_events(struct fp_session_ctx *ctx, const struct pollfd *pf, int n)
{
	struct fp_exec_srv *s = ctx->exec;
	struct exec_job *cur0 = s ? s->cur : NULL;
	int nq0 = s ? s->nq : 0;
	for (int i = 0; i < n; i++) {
		/* A finished or dropped request closed fds that later entries
		 * may name, now reused: the next poll sees the rest. */
		if (s && (s->cur != cur0 || s->nq != nq0))
			return;
		if (!pf[i].revents)
			continue;
		if (ctx->shell && pf[i].fd == ctx->shell->master) {
			fp_shell_drain(ctx->shell);
			continue;
		}
		if (!s)
			continue;
		struct exec_job *j = s->cur;
		if (s->st_r >= 0 && pf[i].fd == s->st_r) {
			on_status(ctx);
			continue;
		}
		if (j && pf[i].fd == j->conn) {
			on_conn(ctx, j, pf[i].revents);
			continue;
		}
		if (j && (pf[i].fd == j->sink[0] || pf[i].fd == j->sink[1])) {
			drain_sink(pf[i].fd);
			continue;
		}
		for (int q = 0; q < s->nq; q++) {
			if (s->queue[q]->conn != pf[i].fd)
				continue;
			/* A waiting caller that leaves (or interrupts) drops its
			 * request: it never started. */
			job_free(s->queue[q]);
			memmove(s->queue + q, s->queue + q + 1, (size_t)(s->nq - q - 1) * sizeof(s->queue[0]));
			s->nq--;
			break;
		}
	}
}

int fp_exec_reaped(struct fp_session_ctx *ctx, pid_t pid, int status)
{
	struct fp_exec_srv *s = ctx->exec;
	if (!s || !s->cur || s->cur->child != pid)
		return 0;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
	finish(ctx, code, NULL);
	return 1;
}

void fp_exec_shutdown(struct fp_session_ctx *ctx, int status)
{
	struct fp_exec_srv *s = ctx->exec;
	if (!s)
		return;
	struct exec_job *q[QUEUE_MAX];
	int nq = s->nq;
	memcpy(q, s->queue, sizeof(q));
	s->nq = 0; /* finish() must not start the queued ones */
	if (s->cur) {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (s->cur->child > 0)
			killpg(s->cur->child, SIGKILL);
		finish(ctx, code, ctx->shell ? "the session's shell exited; the session has ended" : "the session ended");
	}
	for (int i = 0; i < nq; i++)
		job_fail(q[i], 1, "%s", "the session ended before this command ran");
	if (s->st_r >= 0)
		close(s->st_r);
	if (s->st_w >= 0)
		close(s->st_w);
	free(s);
	ctx->exec = NULL;
}
