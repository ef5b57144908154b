#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_json.h"

static const char snap_usage[] =
	"usage: forkpoint snap SESSION [NAME] [--hot] [--hot-limit N] [--tcp-established]\n"
	"                      [--early-reply] [--json | --quiet]\n"
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
	"  --early-reply  return once the processes run again, before the images are\n"
	"                 written, when at most 32 MiB of pages are to be written\n"
	"                 (--json: early_reply); not with --hot. The session's next\n"
	"                 request waits for them, but the directory may not be there\n"
	"                 yet when this returns. If writing fails, the snapshot is not\n"
	"                 made: the next snapshot's why and SNAP.failed.log say so.\n"
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
	int json = 0, quiet = 0, hot = 0, tcp = 0, early = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--hot"))
			hot = hot ? hot : FORKPOINT_HOT_DEFAULT_LIMIT;
		else if (!strcmp(argv[i], "--hot-limit")) {
			if (i + 1 >= argc || atoi(argv[i + 1]) < 1 || atoi(argv[i + 1]) > FORKPOINT_HOT_MAX)
				return cli_usage_error(snap_usage, "--hot-limit needs a number from 1 to %d", FORKPOINT_HOT_MAX);
			hot = atoi(argv[++i]);
		}
		else if (!strcmp(argv[i], "--tcp-established"))
			tcp = 1;
		else if (!strcmp(argv[i], "--early-reply"))
			early = 1;
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
	forkpoint_error err;
	forkpoint_session *s;
	forkpoint_info *r;
	if (forkpoint_session_open(session, &s, &err) < 0)
		return cli_report_api(&err);
	unsigned flags = (tcp ? FORKPOINT_SNAP_TCP_ESTABLISHED : 0) | (early ? FORKPOINT_SNAP_EARLY_REPLY : 0);
	int rc = forkpoint_session_snap_with(s, name, hot, flags, &r, &err);
	forkpoint_session_close(s);
	if (rc < 0)
		return cli_report_api(&err);
#define GET(k) forkpoint_info_get(r, k)
	if (json) {
		fp_json j;
		cli_json_session(&j, session, "name", GET("name"));
		fp_json_str(&j, "dir", GET("dir"));
		fp_json_int(&j, "processes", forkpoint_info_int(r, "processes"));
		fp_json_int(&j, "threads", forkpoint_info_int(r, "threads"));
		fp_json_double(&j, "pause_ms", forkpoint_info_double(r, "pause_ms"));
		fp_json_double(&j, "total_ms", forkpoint_info_double(r, "total_ms"));
		fp_json_uint(&j, "pages", strtoull(GET("pages"), NULL, 10));
		fp_json_uint(&j, "bytes_written", strtoull(GET("bytes_written"), NULL, 10));
		/* incremental snapshots (dump/dump_incremental.c) */
		fp_json_bool(&j, "full", !forkpoint_info_int(r, "incremental"));
		fp_json_uint(&j, "pages_parent", strtoull(GET("pages_parent"), NULL, 10));
		fp_json_uint(&j, "pages_ahead", strtoull(GET("pages_ahead"), NULL, 10));
		fp_json_str(&j, "why", GET("why"));
		/* the shim's fd table checked against /proc (dump_shim_fds.c) */
		fp_json_bool(&j, "shim_checked", forkpoint_info_int(r, "shim_checked") != 0);
		fp_json_uint(&j, "shim_disagree", strtoull(GET("shim_disagree"), NULL, 10));
		fp_json_str(&j, "shim_note", GET("shim_note"));
		fp_json_bool(&j, "hot", forkpoint_info_int(r, "hot") == 1);
		if (hot)
			fp_json_str(&j, "hot_why", GET("hot_why"));
		/* where the time went: "name ms name ms ..." (dump/dump.c) */
		fp_json_str(&j, "phases_ms", GET("phases"));
		fp_json_bool(&j, "early_reply", forkpoint_info_int(r, "early_reply") == 1);
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else if (quiet) {
		printf("%s,%s\n", session, GET("name"));
	} else {
		printf("%s\n", GET("name"));
	}
#undef GET
	forkpoint_info_free(r);
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
	forkpoint_error err;
	forkpoint_info *all;
	if (forkpoint_snapshots_with(session, full ? FORKPOINT_SNAPSHOTS_VERIFY : 0, &all, &err) < 0)
		return cli_report_api(&err);
	size_t n = forkpoint_info_items(all);
#define GET(k) forkpoint_info_get(s, k)
#define U64(k) strtoull(GET(k), NULL, 10)
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
		for (size_t k = 0; k < n; k++) {
			const forkpoint_info *s = forkpoint_info_item(all, k);
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "name", GET("name"));
			fp_json_str(&j, "dir", GET("dir"));
			fp_json_int(&j, "created", forkpoint_info_int(s, "created"));
			fp_json_str(&j, "pids", GET("pids"));
			fp_json_str(&j, "compress", GET("compress"));
			fp_json_double(&j, "pause_ms", forkpoint_info_double(s, "pause_ms"));
			fp_json_double(&j, "total_ms", forkpoint_info_double(s, "total_ms"));
			fp_json_uint(&j, "pages", U64("pages"));
			fp_json_uint(&j, "disk_bytes", U64("disk_bytes"));
			fp_json_bool(&j, "damaged", forkpoint_info_int(s, "damaged") != 0);
			if (forkpoint_info_int(s, "damaged"))
				fp_json_str(&j, "damage", GET("damage"));
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	} else {
		printf("%-20s %-19s %10s %10s %10s %s\n", "NAME", "CREATED", "PAUSE_MS", "PAGES", "DISK_KB",
		       "PIDS");
		for (size_t k = 0; k < n; k++) {
			const forkpoint_info *s = forkpoint_info_item(all, k);
			if (forkpoint_info_int(s, "damaged")) {
				printf("%-20s DAMAGED: %s\n", GET("name"), GET("damage"));
				continue;
			}
			char when[32];
			cli_format_time(forkpoint_info_int(s, "created"), when, sizeof(when));
			printf("%-20s %-19s %10.2f %10llu %10llu %s\n", GET("name"), when,
			       forkpoint_info_double(s, "pause_ms"), U64("pages"), U64("disk_bytes") >> 10, GET("pids"));
		}
	}
#undef GET
#undef U64
	forkpoint_info_free(all);
	return 0;
}
