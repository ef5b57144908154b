/* forkpoint exec: sends one command to a session and relays its output,
 * through forkpoint_session_exec_with (api/api_exec.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "include/forkpoint.h"

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

static void buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->n + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return; /* --json then shows what fitted */
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
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

/* --json collects; otherwise output goes straight to our stdout/stderr. */
struct out_sink {
	int json;
	struct buf out[2];
};

static void on_output(void *arg, int stream, const char *data, size_t len)
{
	struct out_sink *o = arg;
	if (o->json)
		buf_add(&o->out[stream - 1], data, len);
	else
		write_all(stream, data, len);
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
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i];
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
	if (i < argc && !strcmp(argv[i], "--"))
		i++; /* the end of the options */
	if (!o->session)
		return cli_usage_error(exec_usage, "no session given");
	if (i < argc)
		o->argv = argv + i;
	if (!o->argv == !o->shell_string)
		return cli_usage_error(exec_usage, o->argv ? "give either -c STRING or -- CMD, not both"
							  : "no command given");
	return 0;
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
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct out_sink sink = { .json = o.json };
	forkpoint_exec_options xo;
	forkpoint_exec_options_init(&xo);
	xo.command = o.shell_string;
	xo.argv = o.argv;
	xo.timeout_ms = (int)o.timeout_ms;
	xo.stdin_fd = o.use_stdin ? 0 : -1;
	xo.interrupt_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	xo.output = on_output;
	xo.output_arg = &sink;
	forkpoint_session *s;
	forkpoint_exec_result r;
	forkpoint_error err;
	if (forkpoint_session_open(o.session, &s, &err) < 0)
		return cli_report_api(&err);
	rc = forkpoint_session_exec_with(s, &xo, &r, &err);
	forkpoint_session_close(s);
	if (rc < 0)
		return cli_report_api(&err);
	if (o.json) {
		printf("{\"exit_code\": %d, \"stdout\": ", r.exit_code);
		json_bytes(stdout, (unsigned char *)sink.out[0].p, sink.out[0].n);
		printf(", \"stderr\": ");
		json_bytes(stdout, (unsigned char *)sink.out[1].p, sink.out[1].n);
		printf(", \"duration_ms\": %lld, \"timed_out\": %s}\n", r.duration_ms, r.timed_out ? "true" : "false");
	} else if (r.timed_out) {
		fprintf(stderr, "forkpoint: the command timed out after %.3g s and was ended; the session goes on\n",
			(double)o.timeout_ms / 1000);
	}
	if (r.note[0])
		fprintf(stderr, "forkpoint: %s\n", r.note);
	return r.exit_code;
}
