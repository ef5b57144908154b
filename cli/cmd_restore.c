#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "cli_json.h"
#include "api/session_client.h"
#include "session/session_revive.h"
#include "restore/restore.h"

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

/* The session has ended: a new helper restores the snapshot. */
static int revive_session(const char *session, const char *snap, bool json, bool quiet)
{
	fp_error err;
	struct fp_revive_result r;
	if (fp_session_revive(session, snap, &r, &err) < 0)
		return cli_report(&err);
	if (json) {
		fp_json j;
		cli_json_session(&j, session, "snapshot", snap);
		fp_json_int(&j, "pid", r.pid);
		fp_json_bool(&j, "revived", true);
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else if (quiet) {
		printf("%s,%s,%d\n", session, r.workdir, r.pid);
	} else {
		printf("%d\n", r.pid);
	}
	return 0;
}

static int restore_session(const char *session, const char *snap, bool json, bool quiet)
{
	fp_error err;
	struct fp_session_info info;
	if (fp_session_load(session, &info, &err) < 0)
		return cli_report(&err);
	if (!fp_session_helper_alive(&info))
		return revive_session(session, snap, json, quiet);
	char req[128], body[4096], v[512];
	snprintf(req, sizeof(req), "restore %s", snap);
	if (api_session_call(&info, req, body, sizeof(body), 10 * 60 * 1000, &err) < 0)
		return cli_report(&err);
	if (api_kv(body, "fallback", v, sizeof(v))[0])
		fprintf(stderr, "forkpoint: restored with criu: the native engine cannot restore this image: %s\n", v);
	bool moved = atoi(api_kv(body, "moved", v, sizeof(v))) == 1;
	if (moved)
		fprintf(stderr, "forkpoint: some pids of snapshot '%s' were taken by other processes: session '%s' now runs "
			"in a pid namespace of its own, where its processes have their pids (the root is %s there)\n",
			snap, session, api_kv(body, "ns_pid", v, sizeof(v)));
	if (json) {
		fp_json j;
		cli_json_session(&j, session, "snapshot", snap);
		fp_json_int(&j, "pid", atoll(api_kv(body, "pid", v, sizeof(v))));
		fp_json_str(&j, "engine", api_kv(body, "engine", v, sizeof(v)));
		/* save: the state before the restore, kept until it succeeds */
		fp_json_double(&j, "save_ms", atof(api_kv(body, "save_ms", v, sizeof(v))));
		fp_json_double(&j, "restore_ms", atof(api_kv(body, "restore_ms", v, sizeof(v))));
		fp_json_double(&j, "total_ms", atof(api_kv(body, "total_ms", v, sizeof(v))));
		/* in place: the same processes, only what changed written back */
		bool in_place = atoi(api_kv(body, "in_place", v, sizeof(v))) == 1;
		fp_json_bool(&j, "in_place", in_place);
		if (in_place) {
			fp_json_int(&j, "pages", atoll(api_kv(body, "pages", v, sizeof(v))));
			fp_json_int(&j, "vma_ops", atoll(api_kv(body, "vma_ops", v, sizeof(v))));
			fp_json_int(&j, "fd_ops", atoll(api_kv(body, "fd_ops", v, sizeof(v))));
			fp_json_str(&j, "phases_ms", api_kv(body, "phases", v, sizeof(v)));
			/* the helper's CPU time in it: less dependent on the load */
			fp_json_double(&j, "cpu_ms", atof(api_kv(body, "cpu_ms", v, sizeof(v))));
			/* what was hashed to prove SNAP: not its whole chain */
			fp_json_int(&j, "verified_bytes", atoll(api_kv(body, "verified_bytes", v, sizeof(v))));
		} else {
			fp_json_str(&j, "why", api_kv(body, "why", v, sizeof(v)));
			fp_json_str(&j, "phases_ms", api_kv(body, "phases", v, sizeof(v)));
			/* the session runs in a pid namespace of its own (moved:
			 * by this restore, as the snapshot's pids were taken) */
			fp_json_bool(&j, "pid_namespace", atoi(api_kv(body, "pidns", v, sizeof(v))) == 1);
			fp_json_bool(&j, "moved", moved);
			fp_json_int(&j, "ns_pid", atoll(api_kv(body, "ns_pid", v, sizeof(v))));
		}
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else if (quiet) {
		printf("%s,%s,%s\n", session, info.workdir, api_kv(body, "pid", v, sizeof(v)));
	} else {
		printf("%s\n", api_kv(body, "pid", v, sizeof(v)));
	}
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	struct fp_restore_opts o = { .engine = FP_RESTORE_AUTO };
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
			if (!strcmp(val, "native"))
				o.engine = FP_RESTORE_NATIVE;
			else if (!strcmp(val, "criu"))
				o.engine = FP_RESTORE_CRIU;
			else if (!strcmp(val, "auto"))
				o.engine = FP_RESTORE_AUTO;
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
			o.exact_pids = true;
		} else if (!strcmp(a, "--timeout")) {
			char *end;
			double s = val ? strtod(val, &end) : 0;
			if (!val || *end || s <= 0)
				return cli_usage_error(restore_usage, "--timeout needs a positive number of seconds");
			o.timeout_ms = (int)(s * 1000);
			i++;
		} else if (!strcmp(a, "--no-verify")) {
			o.no_verify = true;
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
	o.adopt = !detach; /* to wait for a criu-restored tree it must become our child */
	o.foreground = !detach;
	int keep_fd = -1;
	if (detach && isatty(STDIN_FILENO)) {
		o.stop_foreground_job = true;
		cli_job_fork(&keep_fd);
	}
	o.criu_flags = cf.v;
	o.ncriu_flags = cf.n;
	struct fp_restore_result r;
	fp_error err = { 0 };
	if (fp_restore(&o, &r, &err))
		return cli_report(&err);
	if (r.verify_note[0])
		fprintf(stderr, "forkpoint: note: %s\n", r.verify_note);
	else if (o.no_verify)
		fprintf(stderr, "forkpoint: note: %s restored without verification (--no-verify)\n", o.dir);
	if (r.fallback_reason[0])
		fprintf(stderr, "forkpoint: restored with criu: the native engine cannot restore this image: %s\n",
			r.fallback_reason);
	if (r.ns_init)
		fprintf(stderr,
			"forkpoint: the image's pids are taken: restored into a new pid namespace, where it is pid %d "
			"(%d outside; the namespace's init is %d)\n",
			(int)r.ns_pid, (int)r.pid, (int)r.ns_init);
	if (detach) {
		printf("%d\n", (int)r.pid);
		if (r.job_stopped)
			fprintf(stderr,
				"forkpoint: %d had its terminal's foreground: it waits stopped, as after ^Z; "
				"`forkpoint fg %d` continues it\n",
				(int)r.pid, (int)r.pid);
		cli_job_keep(keep_fd, r.job_stopped);
		return 0;
	}
	int status;
	/* In a new pid namespace its init reports the root's exit status. */
	if (fp_restore_wait(r.ns_init ? r.ns_init : r.pid, -1, &status, &err))
		return cli_report(&err);
	return status;
}
