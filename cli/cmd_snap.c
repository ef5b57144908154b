#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json.h"
#include "api/session_client.h"
#include "session/snapshots.h"
#include "session/session_hot.h"

static const char snap_usage[] =
	"usage: forkpoint snap SESSION [NAME] [--hot] [--hot-limit N] [--tcp-established]\n"
	"                      [--json | --quiet]\n"
	"\n"
	"Snapshots the session's processes (memory, threads, registers, fds) while\n"
	"they keep running. The snapshot is kept in the session's directory under\n"
	"NAME (default snap-N) and appears in `forkpoint list SESSION` once complete.\n"
	"Prints the snapshot's name (--quiet: SESSION,SNAP).\n"
	"\n"
	"After the first, a session's snapshots are incremental: they hold the pages\n"
	"written since the snapshot before and leave the rest to it (CRIU's parent\n"
	"images). --json says \"full\": true and \"why\" when one could not be.\n"
	"\n"
	"  --hot          also keep the processes as they are now, frozen in memory\n"
	"                 (copy-on-write), so that `forkpoint branch` from this\n"
	"                 snapshot forks them instead of restoring from disk. Costs\n"
	"                 the memory that either side writes afterwards.\n"
	"  --hot-limit N  keep at most N hot snapshots in this session (default 2,\n"
	"                 at most 8): the oldest is released first. Implies --hot.\n"
	"  --tcp-established  save established TCP connections (TCP repair mode, as\n"
	"                 `criu dump --tcp-established`); without it (or the setting\n"
	"                 tcp_established = yes, FORKPOINT_TCP_ESTABLISHED=yes in the\n"
	"                 session's environment) a session with one is refused\n"
	"--json says \"hot\": false and \"hot_why\" when no frozen copy could be kept.\n";

static const char list_usage[] =
	"usage: forkpoint list [SESSION] [--verify] [--json]\n"
	"\n"
	"Lists the session's snapshots, oldest first. Without SESSION: every\n"
	"session (running, exited, or dead: its helper was killed) with its\n"
	"snapshots. Each snapshot is checked against its manifest (every file\n"
	"there, with its size); one that fails is listed as DAMAGED with the\n"
	"reason, and `restore` refuses it.\n"
	"  --verify  also check every file's hash (reads every byte of every snapshot)\n";

int cmd_snap(int argc, char **argv)
{
	const char *session = NULL, *name = NULL;
	int json = 0, quiet = 0, hot = 0, tcp = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--hot"))
			hot = hot ? hot : FP_HOT_DEFAULT_LIMIT;
		else if (!strcmp(argv[i], "--hot-limit")) {
			if (i + 1 >= argc || atoi(argv[i + 1]) < 1 || atoi(argv[i + 1]) > FP_HOT_MAX)
				return cli_usage_error(snap_usage, "--hot-limit needs a number from 1 to %d", FP_HOT_MAX);
			hot = atoi(argv[++i]);
		}
		else if (!strcmp(argv[i], "--tcp-established"))
			tcp = 1;
		else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
			quiet = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(snap_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(snap_usage, "unknown option '%s'", argv[i]);
		else if (!session)
			session = argv[i];
		else if (!name)
			name = argv[i];
		else
			return cli_usage_error(snap_usage, "too many arguments");
	}
	if (!session)
		return cli_usage_error(snap_usage, "no session given");
	fp_error err;
	if (name && fp_snap_name_valid(name, &err) < 0)
		return cli_report(&err);
	struct fp_session_info info;
	if (api_session_open(session, &info, &err) < 0)
		return cli_report(&err);
	char req[160], body[4096], v[1024];
	int rl = snprintf(req, sizeof(req), "snap%s%s", name ? " " : "", name ? name : "");
	if (hot)
		rl += snprintf(req + rl, sizeof(req) - (size_t)rl, " --hot=%d", hot);
	if (tcp)
		snprintf(req + rl, sizeof(req) - (size_t)rl, " --tcp-established");
	if (api_session_call(&info, req, body, sizeof(body), 30 * 60 * 1000, &err) < 0)
		return cli_report(&err);
	if (json) {
		fp_json j;
		cli_json_session(&j, session, "name", api_kv(body, "name", v, sizeof(v)));
		fp_json_str(&j, "dir", api_kv(body, "dir", v, sizeof(v)));
		fp_json_int(&j, "processes", atoll(api_kv(body, "processes", v, sizeof(v))));
		fp_json_int(&j, "threads", atoll(api_kv(body, "threads", v, sizeof(v))));
		fp_json_double(&j, "pause_ms", atof(api_kv(body, "pause_ms", v, sizeof(v))));
		fp_json_double(&j, "total_ms", atof(api_kv(body, "total_ms", v, sizeof(v))));
		fp_json_uint(&j, "pages", strtoull(api_kv(body, "pages", v, sizeof(v)), NULL, 10));
		fp_json_uint(&j, "bytes_written", strtoull(api_kv(body, "bytes_written", v, sizeof(v)), NULL, 10));
		/* incremental snapshots (dump/dump_incremental.c) */
		int incr = atoi(api_kv(body, "incremental", v, sizeof(v)));
		fp_json_bool(&j, "full", !incr);
		fp_json_uint(&j, "pages_parent", strtoull(api_kv(body, "pages_parent", v, sizeof(v)), NULL, 10));
		fp_json_str(&j, "why", api_kv(body, "why", v, sizeof(v)));
		/* the shim's fd table checked against /proc (dump_shim_fds.c) */
		fp_json_bool(&j, "shim_checked", atoi(api_kv(body, "shim_checked", v, sizeof(v))) != 0);
		fp_json_uint(&j, "shim_disagree", strtoull(api_kv(body, "shim_disagree", v, sizeof(v)), NULL, 10));
		fp_json_str(&j, "shim_note", api_kv(body, "shim_note", v, sizeof(v)));
		fp_json_bool(&j, "hot", atoi(api_kv(body, "hot", v, sizeof(v))) == 1);
		if (hot)
			fp_json_str(&j, "hot_why", api_kv(body, "hot_why", v, sizeof(v)));
		/* where the time went: "name ms name ms ..." (dump/dump.c) */
		fp_json_str(&j, "phases_ms", api_kv(body, "phases", v, sizeof(v)));
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else if (quiet) {
		printf("%s,%s\n", session, api_kv(body, "name", v, sizeof(v)));
	} else {
		printf("%s\n", api_kv(body, "name", v, sizeof(v)));
	}
	return 0;
}

int cmd_list(int argc, char **argv)
{
	const char *session = NULL;
	int json = 0;
	bool full = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--verify"))
			full = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(list_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(list_usage, "unknown option '%s'", argv[i]);
		else if (!session)
			session = argv[i];
		else
			return cli_usage_error(list_usage, "too many arguments");
	}
	if (!session)
		return cli_list_all(json);
	fp_error err;
	struct fp_session_info info;
	if (fp_session_load(session, &info, &err) < 0)
		return cli_report(&err);
	struct fp_snap_info *s;
	size_t n;
	if (fp_snap_list(info.dir, full, &s, &n, &err) < 0)
		return cli_report(&err);
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
		for (size_t k = 0; k < n; k++) {
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "name", s[k].name);
			fp_json_str(&j, "dir", s[k].dir);
			fp_json_int(&j, "created", s[k].created);
			fp_json_str(&j, "pids", s[k].pids);
			fp_json_str(&j, "compress", s[k].compress);
			fp_json_double(&j, "pause_ms", s[k].pause_ms);
			fp_json_double(&j, "total_ms", s[k].total_ms);
			fp_json_uint(&j, "pages", s[k].pages);
			fp_json_uint(&j, "disk_bytes", s[k].disk_bytes);
			fp_json_bool(&j, "damaged", s[k].damaged);
			if (s[k].damaged)
				fp_json_str(&j, "damage", s[k].damage);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	} else {
		printf("%-20s %-19s %10s %10s %10s %s\n", "NAME", "CREATED", "PAUSE_MS", "PAGES", "DISK_KB",
		       "PIDS");
		for (size_t k = 0; k < n; k++) {
			if (s[k].damaged) {
				printf("%-20s DAMAGED: %s\n", s[k].name, s[k].damage);
				continue;
			}
			char when[32];
			cli_format_time(s[k].created, when, sizeof(when));
			printf("%-20s %-19s %10.2f %10llu %10llu %s\n", s[k].name, when, s[k].pause_ms,
			       (unsigned long long)s[k].pages, (unsigned long long)(s[k].disk_bytes >> 10),
			       s[k].pids);
		}
	}
	free(s);
	return 0;
}
