/* forkpoint list (no session): every session, running or ended, with its
 * snapshots. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "session/session_store.h"
#include "session/snapshots.h"

int cli_list_all(int json)
{
	fp_error err;
	struct fp_session_info *ss;
	size_t ns;
	if (fp_session_list_all(&ss, &ns, &err) < 0)
		return cli_report(&err);
	fp_json j;
	if (json) {
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
	} else {
		printf("%-20s %-8s %8s %-5s %s\n", "SESSION", "STATE", "PID", "SHELL", "SNAPSHOTS");
	}
	for (size_t i = 0; i < ns; i++) {
		const struct fp_session_info *s = &ss[i];
		struct fp_snap_info *sn = NULL;
		size_t nn = 0;
		if (fp_snap_list(s->dir, false, &sn, &nn, &err) < 0)
			nn = 0; /* listed without them; `forkpoint list NAME` says why */
		if (json) {
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "name", s->name);
			fp_json_str(&j, "state", s->state);
			fp_json_int(&j, "target_pid", s->target_pid);
			fp_json_bool(&j, "shell", s->shell);
			fp_json_str(&j, "workdir", s->workdir[0] ? s->workdir : NULL);
			fp_json_str(&j, "cmd", s->cmd);
			fp_json_arr_begin(&j, "snapshots");
			for (size_t k = 0; k < nn; k++) {
				fp_json_obj_begin(&j, NULL);
				fp_json_str(&j, "name", sn[k].name);
				fp_json_int(&j, "created", sn[k].created);
				fp_json_uint(&j, "disk_bytes", sn[k].disk_bytes);
				fp_json_bool(&j, "damaged", sn[k].damaged);
				fp_json_obj_end(&j);
			}
			fp_json_arr_end(&j);
			fp_json_obj_end(&j);
		} else {
			printf("%-20s %-8s %8d %-5s", s->name, s->state, (int)s->target_pid, s->shell ? "yes" : "no");
			for (size_t k = 0; k < nn; k++)
				printf("%s%s%s", k ? ", " : " ", sn[k].name, sn[k].damaged ? " (DAMAGED)" : "");
			printf("%s\n", nn ? "" : " -");
		}
		free(sn);
	}
	if (json) {
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	}
	free(ss);
	return 0;
}
