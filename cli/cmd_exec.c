/* forkpoint exec: sends one command to a session and relays its output.
 * The command writes into pipes made here (their other ends go to the
 * session helper with the request), so stdout and stderr stay apart and
 * byte-exact, and the helper never carries the data. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli/session_client.h"
#include "session/control.h"
#include "session/session_exec.h"

static const char exec_usage[] =
	"usage: forkpoint exec SESSION [OPTIONS] -- CMD [ARGS...]\n"
	"       forkpoint exec SESSION [OPTIONS] -c 'SHELL STRING'\n"
	"\n"
	"Runs a command in a session and exits with its exit status (128+N when a\n"
	"signal N ended it). In a shell session (run --shell) the command runs in\n"
	"the session's bash: cd, variables, functions, aliases, jobs and umask stay\n"
	"for the next exec, and snapshots keep them. Otherwise it runs as a new\n"
	"process in the session's workspace view. stdout and stderr come back\n"
	"separately and byte-exact. One command runs at a time; others wait.\n"
	"\n"
	"  --timeout S   end the command (not the shell) after S seconds; exit 124\n"
	"  --stdin       the command reads this process's stdin\n"
	"  --no-stdin    the command reads end-of-file (the default)\n"
	"  --json        print {exit_code, stdout, stderr, duration_ms} instead\n"
	"\n"
	"Ctrl-C (or this process going away) interrupts the command as ^C would;\n"
	"the shell survives. Output that background jobs write after the command\n"
	"ended is dropped: redirect it (`job >log 2>&1 &`).\n";

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->n + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	return 0;
}

static void write_all(int fd, const char *d, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, d, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the reader left; keep draining so the command is not blocked */
		d += w;
		n -= (size_t)w;
	}
}

struct exec_io {
	int json;
	int rd[2];        /* read ends of the stdout and stderr pipes, -1 at EOF */
	struct buf out[2]; /* --json: what was read */
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
		if (io->json) {
			if (buf_add(&io->out[k], io->chunk, (size_t)n) < 0)
				return -1;
		} else {
			write_all(k == 0 ? 1 : 2, io->chunk, (size_t)n);
		}
		if (!drain)
			return 1;
	}
}

/* A JSON string of arbitrary bytes: valid UTF-8 passes, other bytes and
 * control characters become \u00XX. */
static void json_bytes(FILE *f, const unsigned char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		int ok = len > 1 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = (s[i + k] & 0xc0) == 0x80;
		if (ok) {
			fwrite(s + i, 1, len, f);
			i += len;
			continue;
		}
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
		i++;
	}
	fputc('"', f);
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

struct exec_opts {
	const char *session;
	const char *shell_string;
	char **argv;
	long long timeout_ms;
	int use_stdin, json;
};

static int parse(int argc, char **argv, struct exec_opts *o)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--timeout") || !strncmp(a, "--timeout=", 10)) {
			const char *v = a[9] == '=' ? a + 10 : (++i < argc ? argv[i] : NULL);
			char *end;
			double s = v ? strtod(v, &end) : 0;
			if (!v || *end || s <= 0)
				return cli_usage_error(exec_usage, "--timeout needs a number of seconds > 0");
			o->timeout_ms = (long long)(s * 1000);
		} else if (!strcmp(a, "-c")) {
			if (++i >= argc)
				return cli_usage_error(exec_usage, "-c needs a shell string");
			o->shell_string = argv[i];
		} else if (!strcmp(a, "--stdin")) {
			o->use_stdin = 1;
		} else if (!strcmp(a, "--no-stdin")) {
			o->use_stdin = 0;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (a[0] == '-') {
			return cli_usage_error(exec_usage, "unknown option '%s'", a);
		} else if (!o->session) {
			o->session = a;
		} else {
			break;
		}
	}
	if (!o->session)
		return cli_usage_error(exec_usage, "no session given");
	if (i < argc)
		o->argv = argv + i;
	if (!o->argv == !o->shell_string)
		return cli_usage_error(exec_usage, o->argv ? "give either -c STRING or -- CMD, not both"
							  : "no command given");
	return 0;
}

/* The request: header lines, a blank line, then the shell string or argv
 * as NUL-separated words. */
static char *build_request(const struct exec_opts *o, size_t *len)
{
	struct buf b = { 0 };
	char hdr[128];
	int n = snprintf(hdr, sizeof(hdr), "exec\ntimeout_ms=%lld\nform=%s\n\n", o->timeout_ms,
			 o->argv ? "argv" : "sh");
	buf_add(&b, hdr, (size_t)n);
	if (o->argv)
		for (char **a = o->argv; *a; a++)
			buf_add(&b, *a, strlen(*a) + 1);
	else
		buf_add(&b, o->shell_string, strlen(o->shell_string));
	*len = b.n;
	return b.p;
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
	return 0;
}

/* Copies our stdin into the command's, a chunk at a time, without ever
 * blocking the output side. */
struct stdin_copy {
	int in, out; /* -1 when done */
	char buf[65536];
	size_t off, len;
};

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
		ssize_t n = write(sc->out, sc->buf + sc->off, sc->len);
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

int cmd_exec(int argc, char **argv)
{
	if (cli_wants_help(argc, argv) && (argc < 3 || strcmp(argv[2], "--"))) {
		fputs(exec_usage, stdout);
		return 0;
	}
	struct exec_opts o = { 0 };
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	struct fp_session_info info;
	fp_error err;
	if (cli_session_open(o.session, &info, &err) < 0)
		return cli_report(&err);
	int p[3][2];
	if (make_pipes(p, o.use_stdin, &err) < 0)
		return cli_report(&err);
	int c = connect_helper(&info, &err);
	if (c < 0)
		return cli_report(&err);
	size_t rlen;
	char *req = build_request(&o, &rlen);
	int fds[3] = { p[0][1], p[1][1], p[2][0] };
	if (req && rlen >= FP_CTL_MAX_MSG) {
		fprintf(stderr, "forkpoint: the command is too long (%zu bytes, at most %d with the request); "
				"put it in a script file and run that\n", rlen, FP_CTL_MAX_MSG - 1);
		return FP_EXIT_USAGE;
	}
	if (!req || send_request(c, req, rlen, fds, o.use_stdin ? 3 : 2, &err) < 0)
		return cli_report(&err);
	free(req);
	for (int k = 0; k < 3; k++)
		if (fds[k] >= 0)
			close(fds[k]);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);

	struct exec_io io = { .json = o.json, .rd = { p[0][0], p[1][0] }, .chunk = malloc(1 << 20) };
	struct stdin_copy sc = { .in = o.use_stdin ? 0 : -1, .out = p[2][1] };
	if (sc.out >= 0)
		fcntl(sc.out, F_SETFL, O_NONBLOCK);
	char resp[4096];
	ssize_t rn = -1;
	while (io.chunk) {
		struct pollfd pf[6] = {
			{ .fd = io.rd[0], .events = POLLIN },
			{ .fd = io.rd[1], .events = POLLIN },
			{ .fd = c, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = sc.len ? -1 : sc.in, .events = POLLIN },
			{ .fd = sc.len ? sc.out : -1, .events = POLLOUT },
		};
		if (poll(pf, 6, -1) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++)
			if (pf[k].revents && io.rd[k] >= 0)
				pump(&io, k, 0);
		if (sc.out >= 0 && (pf[4].revents || pf[5].revents))
			stdin_step(&sc, pf[4].revents, pf[5].revents);
		if (pf[3].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				send(c, "interrupt", 9, MSG_NOSIGNAL);
		}
		if (pf[2].revents) {
			rn = recv(c, resp, sizeof(resp) - 1, 0);
			break;
		}
	}
	/* Everything the command wrote before it ended is in the pipes now;
	 * a background job may hold them open, so no waiting for EOF. */
	for (int k = 0; k < 2; k++)
		if (io.rd[k] >= 0)
			pump(&io, k, 1);
	free(io.chunk);
	if (rn <= 0) {
		fprintf(stderr, "forkpoint: the helper of session '%s' went away before the command ended\n", o.session);
		return FP_EXIT_FAIL;
	}
	resp[rn] = '\0';
	char *body = strchr(resp, '\n');
	body = body ? body + 1 : resp + rn;
	if (strncmp(resp, "ok", 2)) {
		fprintf(stderr, "forkpoint: %s\n", body);
		return strncmp(resp, "error ", 6) ? 1 : (atoi(resp + 6) ? atoi(resp + 6) : 1);
	}
	char v[512];
	int code = atoi(cli_kv(body, "exit_code", v, sizeof(v)));
	long long ms = atoll(cli_kv(body, "duration_ms", v, sizeof(v)));
	int timed_out = atoi(cli_kv(body, "timed_out", v, sizeof(v)));
	if (o.json) {
		printf("{\"exit_code\": %d, \"stdout\": ", code);
		json_bytes(stdout, (unsigned char *)io.out[0].p, io.out[0].n);
		printf(", \"stderr\": ");
		json_bytes(stdout, (unsigned char *)io.out[1].p, io.out[1].n);
		printf(", \"duration_ms\": %lld, \"timed_out\": %s}\n", ms, timed_out ? "true" : "false");
	} else if (timed_out) {
		fprintf(stderr, "forkpoint: the command timed out after %.3g s and was ended; the session goes on\n",
			(double)o.timeout_ms / 1000);
	}
	if (cli_kv(body, "note", v, sizeof(v))[0])
		fprintf(stderr, "forkpoint: %s\n", v);
	return code;
}
