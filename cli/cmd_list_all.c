/* forkpoint list (no session): every session, running or ended, with its
 * snapshots. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cli_json.h"
#include "include/forkpoint.h"

/* The session's snapshots, or none (count 0) when it cannot be read:
 * it is listed without them, and `forkpoint list NAME` says why. */
static int session_snapshots(const char *name, forkpoint_snapshot **sn)
{
	forkpoint_session *h;
	*sn = NULL;
	if (forkpoint_session_open(name, &h, NULL) < 0)
		return 0;
	int n = forkpoint_session_snapshots(h, sn, NULL);
	forkpoint_session_close(h);
	return n < 0 ? 0 : n;
}

static void list_one_json(fp_json *j, const forkpoint_session_info *s, const forkpoint_snapshot *sn, int nn)
{
	fp_json_obj_begin(j, NULL);
	fp_json_str(j, "name", s->name);
	fp_json_str(j, "state", s->state);
	fp_json_int(j, "target_pid", s->target_pid);
	fp_json_bool(j, "shell", s->shell);
	fp_json_str(j, "workdir", s->workdir[0] ? s->workdir : NULL);
	fp_json_str(j, "cmd", s->command);
	fp_json_arr_begin(j, "snapshots");
	for (int k = 0; k < nn; k++) {
		fp_json_obj_begin(j, NULL);
		fp_json_str(j, "name", sn[k].name);
		fp_json_int(j, "created", sn[k].created);
		fp_json_uint(j, "disk_bytes", sn[k].disk_bytes);
		fp_json_bool(j, "damaged", sn[k].damaged);
		fp_json_obj_end(j);
	}
	fp_json_arr_end(j);
	fp_json_obj_end(j);
}

int cli_list_all(int json)
{
	forkpoint_error err;
	forkpoint_session_info *ss;
	int ns = forkpoint_sessions(FORKPOINT_SESSIONS_ALL, &ss, &err);
	if (ns < 0)
		return cli_report_api(&err);
	fp_json j;
	if (json) {
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
	} else {
		printf("%-20s %-8s %8s %-5s %s\n", "SESSION", "STATE", "PID", "SHELL", "SNAPSHOTS");
	}
	for (int i = 0; i < ns; i++) {
		const forkpoint_session_info *s = &ss[i];
		forkpoint_snapshot *sn;
		int nn = session_snapshots(s->name, &sn);
		if (json) {
			list_one_json(&j, s, sn, nn);
		} else {
			printf("%-20s %-8s %8d %-5s", s->name, s->state, (int)s->target_pid, s->shell ? "yes" : "no");
			for (int k = 0; k < nn; k++)
				printf("%s%s%s", k ? ", " : " ", sn[k].name, sn[k].damaged ? " (DAMAGED)" : "");
			printf("%s\n", nn ? "" : " -");
		}
		forkpoint_snapshots_free(sn);
	}
	if (json) {
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	}
	forkpoint_sessions_free(ss);
	return 0;
}
