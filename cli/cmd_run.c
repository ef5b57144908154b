#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "api/api_int.h"
#include "session/session_helper.h"

static const char run_usage[] =
	"usage: forkpoint run [--name NAME] [--detach] [--workdir DIR] [--no-shim] [--quiet] -- CMD [ARGS...]\n"
	"       forkpoint run --shell [--name NAME] [--workdir DIR] [--quiet]\n"
	"\n"
	"Starts CMD with libforkpoint-preload.so loaded, under a session helper that\n"
	"is its parent. In the foreground CMD keeps its stdio and forkpoint exits with\n"
	"CMD's status (or dies of CMD's signal). With --detach forkpoint prints the\n"
	"session name and returns; CMD's output goes to the session's output.log.\n"
	"\n"
	"  --name NAME   session name (letters, digits, . _ -); default CMD-N\n"
	"  --detach, -d  run in the background\n"
	"  --workdir DIR run CMD (and all it starts) in a private mount namespace where\n"
	"                DIR is an overlay view: DIR itself is never written, and\n"
	"                snapshots capture its contents with the memory (root only)\n"
	"  --shell       start a session whose program is bash on a pseudo-terminal\n"
	"                (in DIR with --workdir); prints its name. Send it commands\n"
	"                with `forkpoint exec NAME -- CMD` or `-c 'STRING'`.\n"
	"  --no-shim     do not load the shim: ptrace-only mode, /proc is the only\n"
	"                source for fds and mappings (as for static binaries)\n"
	"  --quiet, -q   print only SESSION,WORKDIR,PID (WORKDIR empty without\n"
	"                --workdir; PID the program's), and no notes; in the\n"
	"                foreground nothing\n";

/* Ends forkpoint the way the target ended, so a shell sees the same status. */
static int exit_like(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core); /* the target already dumped, if it was going to */
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		return 128 + sig;
	}
	return 1;
}

int cmd_run(int argc, char **argv)
{
	struct fp_run_opts o = { .sigs = api_signals(cli_signals) };
	int quiet = 0;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(run_usage, stdout);
			return 0;
		}
		if (!strcmp(a, "--detach") || !strcmp(a, "-d")) {
			o.detach = 1;
		} else if (!strcmp(a, "--shell")) {
			o.shell = 1;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = 1;
		} else if (!strcmp(a, "--no-shim")) {
			o.no_shim = 1;
		} else if (!strcmp(a, "--name") || !strcmp(a, "-n")) {
			if (++i >= argc)
				return cli_usage_error(run_usage, "--name needs a value");
			o.name = argv[i];
		} else if (!strcmp(a, "--workdir") || !strcmp(a, "-w")) {
			if (++i >= argc)
				return cli_usage_error(run_usage, "--workdir needs a directory");
			o.workdir = argv[i];
		} else if (!strncmp(a, "--workdir=", 10)) {
			o.workdir = a + 10;
		} else if (!strncmp(a, "--name=", 7)) {
			o.name = a + 7;
		} else if (a[0] == '-') {
			return cli_usage_error(run_usage, "unknown option '%s'", a);
		} else {
			break; /* the command starts here; `--` is recommended but optional */
		}
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++; /* the end of the options */
	if (i >= argc && !o.shell)
		return cli_usage_error(run_usage, "no command given");
	o.argv = i < argc ? argv + i : NULL;

	struct fp_run_result res;
	fp_error err;
	fflush(NULL);
	if (fp_run_session(&o, &res, &err) < 0)
		return cli_report(&err);
	if (res.notice[0] && !quiet)
		fprintf(stderr, "forkpoint: note: %s\n", res.notice);
	if (o.detach || o.shell) {
		if (quiet)
			printf("%s,%s,%d\n", res.name, res.workdir, res.target_pid);
		else
			printf("%s\n", res.name);
		return 0;
	}
	return exit_like(res.wait_status);
}
