#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

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
	const char *name = NULL, *workdir = NULL;
	unsigned flags = 0;
	int quiet = 0;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(run_usage, stdout);
			return 0;
		}
		if (!strcmp(a, "--detach") || !strcmp(a, "-d")) {
			flags |= FORKPOINT_RUN_DETACH;
		} else if (!strcmp(a, "--shell")) {
			flags |= FORKPOINT_SESSION_SHELL;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = 1;
		} else if (!strcmp(a, "--no-shim")) {
			flags |= FORKPOINT_SESSION_NO_SHIM;
		} else if (!strcmp(a, "--name") || !strcmp(a, "-n")) {
			if (++i >= argc)
				return cli_usage_error(run_usage, "--name needs a value");
			name = argv[i];
		} else if (!strcmp(a, "--workdir") || !strcmp(a, "-w")) {
			if (++i >= argc)
				return cli_usage_error(run_usage, "--workdir needs a directory");
			workdir = argv[i];
		} else if (!strncmp(a, "--workdir=", 10)) {
			workdir = a + 10;
		} else if (!strncmp(a, "--name=", 7)) {
			name = a + 7;
		} else if (a[0] == '-') {
			return cli_usage_error(run_usage, "unknown option '%s'", a);
		} else {
			break; /* the command starts here; `--` is recommended but optional */
		}
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++; /* the end of the options */
	if (i >= argc && !(flags & FORKPOINT_SESSION_SHELL))
		return cli_usage_error(run_usage, "no command given");

	forkpoint_info *res;
	forkpoint_error err;
	if (forkpoint_run(name, workdir, flags, i < argc ? argv + i : NULL, cli_signals, &res, &err) < 0) {
		/* 127 and 126 as a shell says them: not found, not executable */
		int code = (int)forkpoint_info_int(res, "exit_code");
		forkpoint_info_free(res);
		int rc = cli_report_api(&err);
		return code ? code : rc;
	}
	const char *notice = forkpoint_info_get(res, "notice");
	if (notice[0] && !quiet)
		fprintf(stderr, "forkpoint: note: %s\n", notice);
	int status = (int)forkpoint_info_int(res, "wait_status");
	if (flags & (FORKPOINT_RUN_DETACH | FORKPOINT_SESSION_SHELL)) {
		if (quiet)
			printf("%s,%s,%s\n", forkpoint_info_get(res, "name"), forkpoint_info_get(res, "workdir"),
			       forkpoint_info_get(res, "pid"));
		else
			printf("%s\n", forkpoint_info_get(res, "name"));
		status = -1;
	}
	forkpoint_info_free(res);
	return status < 0 ? 0 : exit_like(status);
}
