#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "include/forkpoint.h"

static const char ps_usage[] =
	"usage: forkpoint ps [--json]\n"
	"\n"
	"Lists live sessions: name, helper pid, target pid, start time, command.\n";

static void ps_json(const forkpoint_session_info *s, int n)
{
	fp_json j;
	fp_json_init(&j, stdout, 1);
	fp_json_arr_begin(&j, NULL);
	for (int k = 0; k < n; k++) {
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "name", s[k].name);
		fp_json_int(&j, "helper_pid", s[k].helper_pid);
		fp_json_int(&j, "target_pid", s[k].target_pid);
		fp_json_str(&j, "state", s[k].state);
		fp_json_bool(&j, "detached", s[k].detached);
		fp_json_bool(&j, "shim", s[k].shim);
		fp_json_int(&j, "started", s[k].started);
		fp_json_str(&j, "cwd", s[k].cwd);
		fp_json_str(&j, "command", s[k].command);
		fp_json_str(&j, "workdir", s[k].workdir[0] ? s[k].workdir : NULL);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_finish(&j);
}

int cmd_ps(int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(ps_usage, stdout);
			return 0;
		} else
			return cli_usage_error(ps_usage, "unknown argument '%s'", argv[i]);
	}
	forkpoint_session_info *s;
	forkpoint_error err;
	int n = forkpoint_sessions(0, &s, &err);
	if (n < 0)
		return cli_report_api(&err);
	if (json) {
		ps_json(s, n);
	} else {
		printf("%-20s %8s %8s %-8s %-19s %s\n", "NAME", "HELPER", "PID", "STATE", "STARTED",
		       "COMMAND");
		for (int k = 0; k < n; k++) {
			char when[32];
			cli_format_time(s[k].started, when, sizeof(when));
			printf("%-20s %8d %8d %-8s %-19s %s%s\n", s[k].name, s[k].helper_pid,
			       s[k].target_pid, s[k].state, when, s[k].command, s[k].shim ? "" : "  [no shim]");
		}
	}
	forkpoint_sessions_free(s);
	return 0;
}
