/* forkpoint_session_exec: the client side of session/session_exec.h.
 * The command writes into pipes made here (their other ends go to the
 * session helper with the request), so stdout and stderr stay apart and
 * byte-exact, and the helper never carries the data. */
#include "api/api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/session_client.h"
#include "session/control.h"

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static void buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static int connect_helper(const struct fp_session_info *info, fp_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", info->dir) >= (int)sizeof(sa.sun_path))
		return fp_fail(err, ENAMETOOLONG, "session path too long for a unix socket; use a shorter FORKPOINT_HOME");
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (c >= 0)
			close(c);
		return fp_fail(err, e, "cannot reach the helper of session '%s': %s", info->name, strerror(e));
	}
	return c;
}

static int send_request(int c, const char *msg, size_t len, const int *fds, int nfds, fp_error *err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int)) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(h), fds, (size_t)nfds * sizeof(int));
	if (sendmsg(c, &mh, MSG_NOSIGNAL) < 0)
		return fp_fail(err, errno, "cannot send the command to the session helper: %s%s", strerror(errno),
			       errno == EMSGSIZE ? " (the command is too long; put it in a script file)" : "");
	return 0;
}

/* The request: header lines, a blank line, then the shell string or argv
 * as NUL-separated words. */
static int build_request(const forkpoint_exec_options *o, struct buf *b, fp_error *err)
{
	char hdr[128];
	int n = snprintf(hdr, sizeof(hdr), "exec\ntimeout_ms=%d\nform=%s\n\n", o->timeout_ms,
			 o->argv ? "argv" : "sh");
	buf_add(b, hdr, (size_t)n);
	if (o->argv)
		for (char *const *a = o->argv; *a; a++)
			buf_add(b, *a, strlen(*a) + 1);
	else
		buf_add(b, o->command, strlen(o->command));
	if (b->oom)
		return fp_fail(err, ENOMEM, "out of memory");
	if (b->n >= FP_CTL_MAX_MSG)
		return fp_fail_code(err, FP_EXIT_USAGE, E2BIG,
				    "the command is too long (%zu bytes, at most %d with the request); "
				    "put it in a script file and run that", b->n, FP_CTL_MAX_MSG - 1);
	return 0;
}

static int make_pipes(int p[3][2], int use_stdin, fp_error *err)
{
	for (int k = 0; k < 3; k++)
		p[k][0] = p[k][1] = -1;
	for (int k = 0; k < (use_stdin ? 3 : 2); k++)
		if (pipe2(p[k], O_CLOEXEC) < 0)
			return fp_fail(err, errno, "pipe: %s", strerror(errno));
	/* Fewer wake-ups for large outputs. */
	fcntl(p[0][0], F_SETPIPE_SZ, 1 << 20);
	fcntl(p[1][0], F_SETPIPE_SZ, 1 << 20);
	fcntl(p[0][0], F_SETFL, O_NONBLOCK);
	fcntl(p[1][0], F_SETFL, O_NONBLOCK);
	if (p[2][1] >= 0)
		fcntl(p[2][1], F_SETFL, O_NONBLOCK);
	return 0;
}

static void close_pipes(int p[3][2])
{
	for (int k = 0; k < 3; k++)
		for (int e = 0; e < 2; e++)
			if (p[k][e] >= 0)
				close(p[k][e]);
}

struct exec_io {
	const forkpoint_exec_options *o;
	int rd[2];         /* read ends of the stdout and stderr pipes, -1 at EOF */
	struct buf out[2]; /* collected output when o->output is NULL */
	char *chunk;
};

/* Reads what is there from pipe k; returns 0 at EOF (or nothing more now
 * when drain is set). */
static int pump(struct exec_io *io, int k, int drain)
{
	for (;;) {
		ssize_t n = read(io->rd[k], io->chunk, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0) {
			close(io->rd[k]);
			io->rd[k] = -1;
			return 0;
		}
		if (io->o->output)
			io->o->output(io->o->output_arg, k + 1, io->chunk, (size_t)n);
		else
			buf_add(&io->out[k], io->chunk, (size_t)n);
		if (!drain)
			return 1;
	}
}

/* Copies stdin_fd into the command's stdin, a chunk at a time, without
 * ever blocking the output side. */
struct stdin_copy {
	int in, out; /* -1 when done */
	char buf[65536];
	size_t off, len;
};

/* A write into the command's stdin after it closed it must be an error
 * here, not a SIGPIPE that ends the caller: blocked in this thread only
 * (the caller's dispositions are its own), and consumed if we caused it. */
static ssize_t write_nosigpipe(int fd, const void *b, size_t n)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	int was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, b, n);
	int e = errno;
	if (w < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return w;
}

static void stdin_step(struct stdin_copy *sc, short in_rev, short out_rev)
{
	if (sc->len == 0 && (in_rev & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(sc->in, sc->buf, sizeof(sc->buf));
		if (n <= 0 && !(n < 0 && errno == EINTR)) {
			sc->in = -1;
			close(sc->out);
			sc->out = -1;
			return;
		}
		sc->off = 0;
		sc->len = n > 0 ? (size_t)n : 0;
	}
	if (sc->len && (out_rev & (POLLOUT | POLLERR))) {
		ssize_t n = write_nosigpipe(sc->out, sc->buf + sc->off, sc->len);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			close(sc->out); /* the command closed its stdin */
			sc->out = sc->in = -1;
			return;
		}
		if (n > 0) {
			sc->off += (size_t)n;
			sc->len -= (size_t)n;
		}
	}
}

/* Relays output (and stdin, and interrupts) until the helper answers;
 * returns the answer's length, or -1 if the helper went away. */
static ssize_t relay(int c, struct exec_io *io, struct stdin_copy *sc, int intr, char *resp, size_t len)
{
	ssize_t rn = -1;
	for (;;) {
		struct pollfd pf[6] = {
			{ .fd = io->rd[0], .events = POLLIN },
			{ .fd = io->rd[1], .events = POLLIN },
			{ .fd = c, .events = POLLIN },
			{ .fd = intr, .events = POLLIN },
			{ .fd = sc->len ? -1 : sc->in, .events = POLLIN },
			{ .fd = sc->len ? sc->out : -1, .events = POLLOUT },
		};
		if (poll(pf, 6, -1) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++)
			if (pf[k].revents && io->rd[k] >= 0)
				pump(io, k, 0);
		if (sc->out >= 0 && (pf[4].revents || pf[5].revents))
			stdin_step(sc, pf[4].revents, pf[5].revents);
		if (pf[3].revents) {
			char drain[256];
			while (read(intr, drain, sizeof(drain)) > 0)
				send(c, "interrupt", 9, MSG_NOSIGNAL);
		}
		if (pf[2].revents) {
			rn = recv(c, resp, len - 1, 0);
			break;
		}
	}
	/* Everything the command wrote before it ended is in the pipes now;
	 * a background job may hold them open, so no waiting for EOF. */
	for (int k = 0; k < 2; k++)
		if (io->rd[k] >= 0)
			pump(io, k, 1);
	return rn;
}

/* Reads the helper's answer into res; -1 with err for "error N". */
static int answer(const char *session, char *resp, ssize_t rn, forkpoint_exec_result *res, fp_error *err)
{
	if (rn <= 0)
		return fp_fail(err, EPIPE, "the helper of session '%s' went away before the command ended", session);
	resp[rn] = '\0';
	char *body = strchr(resp, '\n');
	body = body ? body + 1 : resp + rn;
	if (strncmp(resp, "ok", 2)) {
		int code = strncmp(resp, "error ", 6) ? 1 : atoi(resp + 6);
		/* A program that cannot be started is the command's failure
		 * (as a shell reports it), not the session's. */
		if (code == 126 || code == 127) {
			res->exit_code = code;
			snprintf(res->note, sizeof(res->note), "%s", body);
			return 0;
		}
		return fp_fail_code(err, code ? code : 1, 0, "%s", body);
	}
	char v[64];
	res->exit_code = atoi(api_kv(body, "exit_code", v, sizeof(v)));
	res->duration_ms = atoll(api_kv(body, "duration_ms", v, sizeof(v)));
	res->timed_out = atoi(api_kv(body, "timed_out", v, sizeof(v)));
	res->interrupted = atoi(api_kv(body, "interrupted", v, sizeof(v)));
	api_kv(body, "note", res->note, sizeof(res->note));
	return 0;
}

static int exec_with(forkpoint_session *s, const forkpoint_exec_options *o, forkpoint_exec_result *res,
		     fp_error *err)
{
	if (api_session_open(s->info.name, &s->info, err) < 0)
		return -1;
	struct buf req = { 0 };
	int p[3][2];
	int c = -1, rc = -1;
	if (build_request(o, &req, err) < 0 || make_pipes(p, o->stdin_fd >= 0, err) < 0 ||
	    (c = connect_helper(&s->info, err)) < 0)
		goto out;
	int fds[3] = { p[0][1], p[1][1], p[2][0] };
	if (send_request(c, req.p, req.n, fds, o->stdin_fd >= 0 ? 3 : 2, err) < 0)
		goto out;
	for (int k = 0; k < 3; k++) { /* the helper has them now */
		if (fds[k] >= 0)
			close(fds[k]);
	}
	p[0][1] = p[1][1] = p[2][0] = -1;
	struct exec_io io = { .o = o, .rd = { p[0][0], p[1][0] }, .chunk = malloc(1 << 20) };
	struct stdin_copy *sc = malloc(sizeof(*sc));
	if (!io.chunk || !sc) {
		free(io.chunk);
		free(sc);
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	*sc = (struct stdin_copy){ .in = o->stdin_fd, .out = p[2][1] };
	char resp[4096];
	ssize_t rn = relay(c, &io, sc, o->interrupt_fd, resp, sizeof(resp));
	p[0][0] = io.rd[0];
	p[1][0] = io.rd[1];
	p[2][1] = sc->out;
	free(io.chunk);
	free(sc);
	rc = answer(s->info.name, resp, rn, res, err);
	if (rc == 0 && !o->output && (io.out[0].oom || io.out[1].oom))
		rc = fp_fail(err, ENOMEM, "out of memory collecting the command's output (use the streaming form)");
	if (rc == 0 && !o->output) {
		res->stdout_data = io.out[0].p ? io.out[0].p : strdup("");
		res->stdout_len = io.out[0].n;
		res->stderr_data = io.out[1].p ? io.out[1].p : strdup("");
		res->stderr_len = io.out[1].n;
	} else {
		free(io.out[0].p);
		free(io.out[1].p);
	}
out:
	free(req.p);
	if (c >= 0)
		close(c);
	close_pipes(p);
	return rc;
}

void forkpoint_exec_options_init(forkpoint_exec_options *o)
{
	memset(o, 0, sizeof(*o));
	o->stdin_fd = -1;
	o->interrupt_fd = -1;
}

int forkpoint_session_exec_with(forkpoint_session *s, const forkpoint_exec_options *o,
				forkpoint_exec_result *res, forkpoint_error *err)
{
	if (!s || !o || !res)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_exec needs a session, options and a result");
	memset(res, 0, sizeof(*res));
	if (!o->command == !(o->argv && o->argv[0]))
		return api_fail(err, FORKPOINT_EINVAL, 0, "give either a command line or an argv, not both or neither");
	if (o->timeout_ms < 0)
		return api_fail(err, FORKPOINT_EINVAL, 0, "timeout_ms must be >= 0 (0: no limit)");
	fp_error e = { 0 };
	return exec_with(s, o, res, &e) < 0 ? api_error(err, &e) : 0;
}

int forkpoint_session_exec(forkpoint_session *s, const char *command, int timeout_ms,
			   forkpoint_exec_result *res, forkpoint_error *err)
{
	forkpoint_exec_options o;
	forkpoint_exec_options_init(&o);
	o.command = command;
	o.timeout_ms = timeout_ms;
	return forkpoint_session_exec_with(s, &o, res, err);
}

void forkpoint_exec_result_release(forkpoint_exec_result *res)
{
	if (!res)
		return;
	free(res->stdout_data);
	free(res->stderr_data);
	res->stdout_data = res->stderr_data = NULL;
	res->stdout_len = res->stderr_len = 0;
}
