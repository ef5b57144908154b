#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_json.h"

static const char restore_usage[] =
	"usage: forkpoint restore -D DIR [--engine native|criu|auto] [-d] [-o LOG] [-v[N]]\n"
	"                         [--exact-pids] [--timeout SECONDS] [--no-verify]\n"
	"                         [CRIU flags]\n"
	"       forkpoint restore SESSION SNAP [--json | --quiet]\n"
	"\n"
	"SESSION SNAP: the session goes back to its snapshot SNAP: the snapshot is\n"
	"checked, the session's processes are replaced by the restored ones (same\n"
	"pids), and the session goes on. A snapshot that cannot be restored leaves\n"
	"the session untouched. A session that has ended (its program exited, or\n"
	"it was stopped) comes back from any of its snapshots under a new helper\n"
	"(in the background). --quiet prints SESSION,WORKDIR,PID (WORKDIR empty\n"
	"without --workdir), --json more.\n"
	"\n"
	"Turns an image directory (CRIU's format, pages plain or in forkpoint's\n"
	"zstd store) back into a running process with the same pid and tids.\n"
	"\n"
	"  -D, --images-dir DIR  the image directory\n"
	"  --engine ENGINE       native: forkpoint's own restorer; criu: `criu restore`\n"
	"                        (pages decompressed into a private tmpfs copy);\n"
	"                        auto (default): native, and criu when the native engine\n"
	"                        cannot restore something in the image (it says what)\n"
	"  -d, --restore-detached  return once the process runs (it is adopted by init\n"
	"                        or the nearest subreaper); prints its pid. Without -d,\n"
	"                        forkpoint waits for it and exits with its status, as\n"
	"                        `criu restore` does. On a terminal, a job that had\n"
	"                        the terminal's foreground comes back stopped (as after\n"
	"                        ^Z) so it shares no keys with this shell: `forkpoint fg\n"
	"                        PID` continues it (a forkpoint process stays its parent\n"
	"                        until it ends, so that it keeps its job control)\n"
	"  -o, --log-file LOG    the restore log (default $FORKPOINT_HOME/logs/restore-PID.log,\n"
	"                        kept a day; never the image directory, which may be anyone's).\n"
	"                        A LOG that is a symbolic link made by another user is refused\n"
	"  -v[N]                 log verbosity 0-4 (default 4)\n"
	"  --exact-pids          the pids must be exactly the image's: a pid in use is an\n"
	"                        error. Without it, a restore whose pids are taken goes\n"
	"                        into a new pid namespace (with its own /proc), where the\n"
	"                        process keeps its pids; the pid printed is its pid outside\n"
	"  --timeout SECONDS     deadline for the restore itself (default 60)\n"
	"  --no-verify           skip the check against the image's manifest (below);\n"
	"                        at your own risk: a damaged image may come back wrong\n"
	CLI_CRIU_FLAGS_HELP	"\n"
	"Before any process is created, the image is verified: every file's size and\n"
	"hash against forkpoint.manifest (a compressed page store by the hash of its\n"
	"file, plain page data by the hash of its pages), no image file the manifest\n"
	"does not list, no file that is a symbolic link, and the pagemap against the\n"
	"page data (it must place exactly the pages stored). An image without a\n"
	"valid manifest is refused, with one exception: an image written by CRIU\n"
	"(its inventory.img is CRIU's, and it has no forkpoint page store) is\n"
	"restored with structural checks only, and forkpoint says it is unverified.\n"
	"Bad images (corrupt, truncated page data, missing or changed files, another\n"
	"architecture or image version) are refused before any process is created.\n"
	"A session's snapshots (SESSION SNAP) are always verified.\n";

static int restore_session(const char *session, const char *snap, bool json, bool quiet)
{
	forkpoint_error err;
	forkpoint_session *s;
	forkpoint_info *r;
	if (forkpoint_session_open(session, &s, &err) < 0)
		return cli_report_api(&err);
	int rc = forkpoint_session_restore_with(s, snap, &r, &err);
	forkpoint_session_close(s);
	if (rc < 0)
		return cli_report_api(&err);
#define GET(k) forkpoint_info_get(r, k)
	bool revived = forkpoint_info_int(r, "revived") == 1;
	if (GET("fallback")[0])
		fprintf(stderr, "forkpoint: restored with criu: the native engine cannot restore this image: %s\n",
			GET("fallback"));
	bool moved = forkpoint_info_int(r, "moved") == 1;
	if (moved)
		fprintf(stderr, "forkpoint: some pids of snapshot '%s' were taken by other processes: session '%s' now runs "
			"in a pid namespace of its own, where its processes have their pids (the root is %s there)\n",
			snap, session, GET("ns_pid"));
	if (json) {
		fp_json j;
		cli_json_session(&j, session, "snapshot", snap);
		fp_json_int(&j, "pid", forkpoint_info_int(r, "pid"));
		if (revived) {
			fp_json_bool(&j, "revived", true);
		} else {
			fp_json_str(&j, "engine", GET("engine"));
			/* save: the state before the restore, kept until it succeeds */
			fp_json_double(&j, "save_ms", forkpoint_info_double(r, "save_ms"));
			fp_json_double(&j, "restore_ms", forkpoint_info_double(r, "restore_ms"));
			fp_json_double(&j, "total_ms", forkpoint_info_double(r, "total_ms"));
			/* in place: the same processes, only what changed written back */
			bool in_place = forkpoint_info_int(r, "in_place") == 1;
			fp_json_bool(&j, "in_place", in_place);
			if (in_place) {
				fp_json_int(&j, "pages", forkpoint_info_int(r, "pages"));
				fp_json_int(&j, "vma_ops", forkpoint_info_int(r, "vma_ops"));
				fp_json_int(&j, "fd_ops", forkpoint_info_int(r, "fd_ops"));
				fp_json_str(&j, "phases_ms", GET("phases"));
				/* every step, request to reply (where the rest goes) */
				fp_json_str(&j, "steps_ms", GET("steps"));
				/* the helper's CPU time in it: less dependent on the load */
				fp_json_double(&j, "cpu_ms", forkpoint_info_double(r, "cpu_ms"));
				/* what was hashed to prove SNAP: not its whole chain */
				fp_json_int(&j, "verified_bytes", forkpoint_info_int(r, "verified_bytes"));
				/* SNAP's page map: "kept" from before, resolved over its
				 * "parent"'s kept one, or read from the chain's "files" */
				fp_json_str(&j, "pagemap_from", GET("pagemap_from"));
				/* SNAP's pages: from its frozen copy ("hot", no read
				 * or hash), read from the page stores before the
				 * request ("ahead") or at it ("files"), joined by '+',
				 * or "none" */
				fp_json_str(&j, "pages_from", GET("pages_from"));
				fp_json_int(&j, "hot_bytes", forkpoint_info_int(r, "hot_bytes"));
				fp_json_int(&j, "ahead_bytes", forkpoint_info_int(r, "ahead_bytes"));
				fp_json_int(&j, "saved_ahead_bytes", forkpoint_info_int(r, "saved_ahead_bytes"));
				fp_json_int(&j, "files_bytes", forkpoint_info_int(r, "files_bytes"));
				/* the fds compared: listed from the shim's "table"
				 * (checked by /proc's count) or from "proc", and why */
				fp_json_str(&j, "fds_from", GET("fds_from"));
				fp_json_str(&j, "fds_note", GET("fds_note"));
			} else {
				fp_json_str(&j, "why", GET("why"));
				fp_json_str(&j, "phases_ms", GET("phases"));
				/* the session runs in a pid namespace of its own (moved:
				 * by this restore, as the snapshot's pids were taken) */
				fp_json_bool(&j, "pid_namespace", forkpoint_info_int(r, "pidns") == 1);
				fp_json_bool(&j, "moved", moved);
				fp_json_int(&j, "ns_pid", forkpoint_info_int(r, "ns_pid"));
			}
		}
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else if (quiet) {
		printf("%s,%s,%s\n", session, GET("workdir"), GET("pid"));
	} else {
		printf("%s\n", GET("pid"));
	}
#undef GET
	forkpoint_info_free(r);
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	struct {
		const char *dir, *log_path;
		unsigned flags; /* FORKPOINT_RESTORE_* */
		int verbosity, timeout_ms;
	} o = { 0 };
	struct cli_criu_flags cf = { .n = 0 };
	bool detach = false, json = false, quiet = false;
	const char *pos[2] = { NULL, NULL };
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(restore_usage, stdout);
			return 0;
		} else if (!strcmp(a, "-D") || !strcmp(a, "--images-dir")) {
			if (!val)
				return cli_usage_error(restore_usage, "%s needs a directory", a);
			o.dir = val, i++;
		} else if (!strcmp(a, "--engine")) {
			if (!val)
				return cli_usage_error(restore_usage, "--engine needs native, criu or auto");
			o.flags &= ~(unsigned)(FORKPOINT_RESTORE_NATIVE | FORKPOINT_RESTORE_CRIU);
			if (!strcmp(val, "native"))
				o.flags |= FORKPOINT_RESTORE_NATIVE;
			else if (!strcmp(val, "criu"))
				o.flags |= FORKPOINT_RESTORE_CRIU;
			else if (!strcmp(val, "auto"))
				;
			else
				return cli_usage_error(restore_usage, "unknown engine '%s' (native, criu or auto)", val);
			i++;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--restore-detached")) {
			detach = true;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--log-file")) {
			if (!val)
				return cli_usage_error(restore_usage, "%s needs a file name", a);
			o.log_path = val, i++;
		} else if (!strncmp(a, "-v", 2) && (a[2] == 0 || (a[2] >= '0' && a[2] <= '4' && !a[3]))) {
			o.verbosity = a[2] ? a[2] - '0' : 4;
		} else if (!strcmp(a, "--exact-pids")) {
			o.flags |= FORKPOINT_RESTORE_EXACT_PIDS;
		} else if (!strcmp(a, "--timeout")) {
			char *end;
			double s = val ? strtod(val, &end) : 0;
			if (!val || *end || s <= 0)
				return cli_usage_error(restore_usage, "--timeout needs a positive number of seconds");
			o.timeout_ms = (int)(s * 1000);
			i++;
		} else if (!strcmp(a, "--no-verify")) {
			o.flags |= FORKPOINT_RESTORE_NO_VERIFY;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = true;
		} else if (cli_criu_flag(a, &cf)) {
			continue;
		} else if (a[0] != '-' && npos < 2) {
			pos[npos++] = a;
		} else {
			return cli_usage_error(restore_usage, "unknown argument '%s'", a);
		}
	}
	if (npos == 2 && !o.dir)
		return restore_session(pos[0], pos[1], json, quiet);
	if (npos)
		return cli_usage_error(restore_usage, "give either -D DIR or SESSION SNAP");
	if (!o.dir)
		return cli_usage_error(restore_usage, "no image directory given (-D DIR)");
	int keep_fd = -1;
	o.flags |= detach ? FORKPOINT_RESTORE_DETACHED : FORKPOINT_RESTORE_FOREGROUND;
	if (detach && isatty(STDIN_FILENO)) {
		o.flags |= FORKPOINT_RESTORE_STOP_FOREGROUND_JOB;
		cli_job_fork(&keep_fd);
	}
	forkpoint_error err;
	forkpoint_restore_options *ro;
	if (forkpoint_restore_options_new(o.dir, &ro, &err) < 0)
		return cli_report_api(&err);
	int rc = forkpoint_restore_options_set(ro, FORKPOINT_RESTORE_OPT_FLAGS, o.flags, &err);
	if (rc == 0 && o.verbosity)
		rc = forkpoint_restore_options_set(ro, FORKPOINT_RESTORE_OPT_VERBOSITY, o.verbosity, &err);
	if (rc == 0 && o.timeout_ms)
		rc = forkpoint_restore_options_set(ro, FORKPOINT_RESTORE_OPT_TIMEOUT_MS, o.timeout_ms, &err);
	if (rc == 0 && o.log_path)
		rc = forkpoint_restore_options_set_str(ro, FORKPOINT_RESTORE_OPT_LOG, o.log_path, &err);
	for (size_t k = 0; rc == 0 && k < cf.n; k++)
		rc = forkpoint_restore_options_set_str(ro, FORKPOINT_RESTORE_OPT_CRIU_FLAG, cf.v[k], &err);
	forkpoint_info *r = NULL;
	if (rc == 0)
		rc = forkpoint_restore_with(ro, &r, &err);
	forkpoint_restore_options_free(ro);
	if (rc < 0)
		return cli_report_api(&err);
#define GET(k) forkpoint_info_get(r, k)
	if (GET("verify_note")[0])
		fprintf(stderr, "forkpoint: note: %s\n", GET("verify_note"));
	else if (o.flags & FORKPOINT_RESTORE_NO_VERIFY)
		fprintf(stderr, "forkpoint: note: %s restored without verification (--no-verify)\n", o.dir);
	if (GET("fallback")[0])
		fprintf(stderr, "forkpoint: restored with criu: the native engine cannot restore this image: %s\n",
			GET("fallback"));
	int pid = (int)forkpoint_info_int(r, "pid"), wait_pid = (int)forkpoint_info_int(r, "wait_pid");
	if (forkpoint_info_int(r, "ns_init"))
		fprintf(stderr,
			"forkpoint: the image's pids are taken: restored into a new pid namespace, where it is pid %s "
			"(%d outside; the namespace's init is %s)\n",
			GET("ns_pid"), pid, GET("ns_init"));
	bool job_stopped = forkpoint_info_int(r, "job_stopped") != 0;
#undef GET
	forkpoint_info_free(r);
	if (detach) {
		printf("%d\n", pid);
		if (job_stopped)
			fprintf(stderr,
				"forkpoint: %d had its terminal's foreground: it waits stopped, as after ^Z; "
				"`forkpoint fg %d` continues it\n",
				pid, pid);
		cli_job_keep(keep_fd, job_stopped);
		return 0;
	}
	int status;
	/* In a new pid namespace its init reports the root's exit status. */
	if (forkpoint_wait(wait_pid, -1, &status, &err) < 0)
		return cli_report_api(&err);
	return status;
}
