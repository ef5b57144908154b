#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char diff_usage[] =
	"usage: forkpoint diff SESSION A B [--json]\n"
	"\n"
	"Lists what changed in the session's workspace (--workdir) from snapshot A\n"
	"to snapshot B, one path per line:\n"
	"  A  added      D  deleted\n"
	"  M  modified, with what: content (bytes or symlink target), mode, owner,\n"
	"     xattr, type (e.g. a file became a directory), mtime (nothing else)\n"
	"Only the layers the two snapshots do not share are read.\n";

int cmd_diff(int argc, char **argv)
{
	const char *arg[3] = { 0 };
	int nargs = 0, json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(diff_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(diff_usage, "unknown option '%s'", argv[i]);
		else if (nargs < 3)
			arg[nargs++] = argv[i];
		else
			return cli_usage_error(diff_usage, "too many arguments");
	}
	if (nargs < 3)
		return cli_usage_error(diff_usage, "need SESSION, A and B");
	forkpoint_error err;
	forkpoint_info *all;
	if (forkpoint_session_diff(arg[0], arg[1], arg[2], &all, &err) < 0)
		return cli_report_api(&err);
	size_t n = forkpoint_info_items(all);
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "session", arg[0]);
		fp_json_str(&j, "from", arg[1]);
		fp_json_str(&j, "to", arg[2]);
		fp_json_arr_begin(&j, "changes");
		for (size_t i = 0; i < n; i++) {
			const forkpoint_info *e = forkpoint_info_item(all, i);
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "change", forkpoint_info_get(e, "change"));
			fp_json_str(&j, "type", forkpoint_info_get(e, "type"));
			fp_json_str(&j, "path", forkpoint_info_get(e, "path"));
			fp_json_arr_begin(&j, "what");
			char what[64];
			snprintf(what, sizeof(what), "%s", forkpoint_info_get(e, "what"));
			for (char *save, *w = strtok_r(what, ",", &save); w; w = strtok_r(NULL, ",", &save))
				fp_json_str(&j, NULL, w);
			fp_json_arr_end(&j);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else {
		for (size_t i = 0; i < n; i++) {
			const forkpoint_info *e = forkpoint_info_item(all, i);
			printf("%s %-20s %s%s\n", forkpoint_info_get(e, "change"), forkpoint_info_get(e, "what"),
			       forkpoint_info_get(e, "path"), !strcmp(forkpoint_info_get(e, "type"), "d") ? "/" : "");
		}
	}
	forkpoint_info_free(all);
	return 0;
}
