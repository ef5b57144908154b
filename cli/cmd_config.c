/* forkpoint config: every setting, its value and where it came from
 * (forkpoint_config). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char config_usage[] =
	"usage: forkpoint config [KEY] [--json]\n"
	"\n"
	"Shows every setting, its value and where the value came from. The first\n"
	"found wins: the environment (FORKPOINT_<KEY>), the file $FORKPOINT_CONFIG,\n"
	"the user's $XDG_CONFIG_HOME/forkpoint/config (~/.config/forkpoint/config),\n"
	"the system's /etc/forkpoint/config, then the default. Files hold\n"
	"`key = value` lines and `#` comments; a file anyone but its owner or root\n"
	"can write, a link, or an unknown key is refused, by every command.\n"
	"With KEY, prints only its value (empty when the default applies).\n";

#define GET(r, k) forkpoint_info_get(r, k)

static const char *value_or_null(const forkpoint_info *s)
{
	return forkpoint_info_int(s, "set") ? GET(s, "value") : NULL;
}

static void one(const forkpoint_info *s, int json)
{
	if (!json) {
		printf("%s\n", GET(s, "value"));
		return;
	}
	fp_json j;
	fp_json_init(&j, stdout, 0);
	fp_json_obj_begin(&j, NULL);
	fp_json_str(&j, "key", GET(s, "key"));
	fp_json_str(&j, "value", value_or_null(s));
	fp_json_str(&j, "source", GET(s, "source"));
	fp_json_obj_end(&j);
	putchar('\n');
}

static void all_json(const forkpoint_info *r)
{
	fp_json j;
	fp_json_init(&j, stdout, 1);
	fp_json_obj_begin(&j, NULL);
	fp_json_arr_begin(&j, "settings");
	for (size_t i = 0; i < forkpoint_info_items(r); i++) {
		const forkpoint_info *s = forkpoint_info_item(r, i);
		fp_json_obj_begin(&j, NULL);
		static const char *const keys[] = { "key", "value", "source", "env", "default", "meaning" };
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			fp_json_str(&j, keys[k], k == 1 ? value_or_null(s) : GET(s, keys[k]));
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_obj_end(&j);
	putchar('\n');
}

static void all_text(const forkpoint_info *r)
{
	printf("config files, in order:");
	for (const char *p = GET(r, "files"); *p;) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);
		printf(" %.*s", len, p);
		p += len + (nl != NULL);
	}
	printf("\n\n");
	for (size_t i = 0; i < forkpoint_info_items(r); i++) {
		const forkpoint_info *s = forkpoint_info_item(r, i);
		if (forkpoint_info_int(s, "set"))
			printf("%-19s = %s\n%-19s   (from %s; %s)\n", GET(s, "key"), GET(s, "value"), "",
			       GET(s, "source"), GET(s, "meaning"));
		else
			printf("%-19s   default: %s\n%-19s   (%s; set %s or `%s = ...`)\n", GET(s, "key"),
			       GET(s, "default"), "", GET(s, "meaning"), GET(s, "env"), GET(s, "key"));
	}
}

int cmd_config(int argc, char **argv)
{
	const char *only = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(config_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (argv[i][0] == '-' || only) {
			return cli_usage_error(config_usage, "unexpected argument '%s'", argv[i]);
		} else {
			only = argv[i];
		}
	}
	forkpoint_info *r;
	forkpoint_error err;
	if (forkpoint_config(only, &r, &err) < 0)
		return cli_report_api(&err);
	if (only)
		one(r, json);
	else if (json)
		all_json(r);
	else
		all_text(r);
	forkpoint_info_free(r);
	return 0;
}
