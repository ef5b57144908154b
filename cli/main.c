#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_json.h"

forkpoint_signals *cli_signals;

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, "start a program under forkpoint (a session)" },
	{ "build", cmd_build, "build a Dockerfile with buildah and start a shell session inside it" },
	{ "exec", cmd_exec, "run a command in a session (in its shell with run --shell)" },
	{ "ps", cmd_ps, "list live sessions" },
	{ "stop", cmd_stop, "stop a session's program" },
	{ "cleanup", cmd_cleanup, "remove a session: processes, mounts, files (--force: also a half-dead one)" },
	{ "snap", cmd_snap, "snapshot a session's processes while they keep running" },
	{ "list", cmd_list, "list a session's snapshots" },
	{ "dump", cmd_dump, "checkpoint a process tree into a CRIU-compatible image directory" },
	{ "decompress", cmd_decompress, "make a snapshot directory restorable by plain `criu restore`" },
	{ "restore", cmd_restore, "restore a process from an image directory (native or criu)" },
	{ "fg", cmd_fg, "continue a job that `restore -d` left stopped, in this terminal's foreground" },
	{ "branch", cmd_branch, "start live sessions from a snapshot while the session runs on" },
	{ "tree", cmd_tree, "a session's snapshots and branches as a tree" },
	{ "diff", cmd_diff, "what changed in a session's workspace between two snapshots" },
	{ "rm", cmd_rm, "delete snapshots of a session" },
	{ "gc", cmd_gc, "free workspace layers no snapshot uses" },
	{ "config", cmd_config, "every setting, its value and where it came from" },
	{ "doctor", cmd_doctor, "which CRIU forkpoint uses, and why others were refused" },
	{ "inspect", cmd_inspect, "threads, stacks, mappings, fds and sizes of a process or session" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: forkpoint COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n`forkpoint COMMAND --help` describes each command.\n"
		     "State lives in $FORKPOINT_HOME (default /var/lib/forkpoint for root,\n"
		     "~/.local/state/forkpoint otherwise).\n");
}

int cli_report_api(const forkpoint_error *err)
{
	fprintf(stderr, "forkpoint: %s\n", err->message[0] ? err->message : "unknown error");
	return err->code ? err->code : 1;
}

int cli_usage_error(const char *use, const char *fmt, ...)
{
	va_list ap;
	fputs("forkpoint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", use);
	return CLI_EXIT_USAGE;
}

void cli_json_session(struct fp_json *j, const char *session, const char *key, const char *value)
{
	fp_json_init(j, stdout, 1);
	fp_json_obj_begin(j, NULL);
	fp_json_str(j, "session", session);
	if (key)
		fp_json_str(j, key, value);
}

const char *cli_format_time(long long unix_seconds, char *buf, size_t len)
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	return buf;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	forkpoint_error err;
	if (forkpoint_sanitize_self(&cli_signals, &err) < 0)
		return cli_report_api(&err);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("forkpoint %s\n", forkpoint_version());
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		/* A broken config file stops every command, so that no setting is
		 * ever ignored in silence. */
		if (forkpoint_config_check(&err) < 0)
			return cli_report_api(&err);
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "forkpoint: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
