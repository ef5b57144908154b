/* The forkpoint command: one function per subcommand, each returning the
 * process exit code. Parsing and printing live here; the work is elsewhere. */
#ifndef FP_CLI_H
#define FP_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "include/forkpoint.h"

/* The exit code of a bad command line (the public API's EINVAL). */
#define CLI_EXIT_USAGE FORKPOINT_EINVAL

/* The signal state forkpoint was started with (main.c), given back to the
 * programs it starts. */
extern forkpoint_signals *cli_signals;

int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_snap(int argc, char **argv);
int cmd_list(int argc, char **argv);
/* `list` without a session: every session and its snapshots. */
int cli_list_all(int json);
int cmd_restore(int argc, char **argv);
int cmd_fg(int argc, char **argv);
/* job_keeper.c: `restore -d` on a terminal forks; the parent exits with the
 * child's status, or once the child keeps a job it left stopped
 * (cli_job_keep: it returns when there is no such job, else it becomes the
 * job's keeper, forkpoint_job_keep, and exits when the job has ended). */
void cli_job_fork(int *keep_fd);
void cli_job_keep(int keep_fd, bool job_stopped);
int cmd_dump(int argc, char **argv);
int cmd_decompress(int argc, char **argv);

int cmd_diff(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_branch(int argc, char **argv);
int cmd_tree(int argc, char **argv);
/* criu_flags.c: CRIU's two-sided flags (--tcp-established, --file-locks,
 * --link-remap, --shell-job, --ext-unix-sk): true when arg is one; it is
 * then added to f (each once). */
struct cli_criu_flags {
	const char *v[5];
	size_t n;
};
bool cli_criu_flag(const char *arg, struct cli_criu_flags *f);
#define CLI_CRIU_FLAGS_HELP \
	"  --tcp-established, --file-locks, --link-remap, --shell-job, --ext-unix-sk\n" \
	"                        CRIU's flags, accepted so that CRIU scripts work: locks,\n" \
	"                        terminals and deleted files are always handled; a restore\n" \
	"                        by CRIU gets them passed on. --tcp-established saves\n" \
	"                        established TCP connections with TCP repair mode (root,\n" \
	"                        iptables); without it the dump refuses them.\n" \
	"                        --ext-unix-sk saves a unix datagram socket connected\n" \
	"                        to a named socket outside the tree (such as /dev/log),\n" \
	"                        connected to that name again on restore; without it\n" \
	"                        the dump refuses it\n"

/* Prints "forkpoint: <msg>" to stderr and returns the error's code, which
 * is the command's exit code. */
int cli_report_api(const forkpoint_error *err);
/* Usage error: prints msg and the subcommand's usage, returns 2. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_wants_help(int argc, char **argv);
/* "YYYY-MM-DD HH:MM:SS" in local time. */
const char *cli_format_time(long long unix_seconds, char *buf, size_t len);

/* The start of a session command's --json answer on stdout: the object
 * with "session" and, when key is not NULL, key: value. */
struct fp_json;
void cli_json_session(struct fp_json *j, const char *session, const char *key, const char *value);

#endif
