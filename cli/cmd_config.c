#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_internal.h"
#include "config.h"
#include "cli_json.h"

static const char config_usage[] =
	"usage: forkpoint config [KEY] [--json]\n"
	"\n"
	"Shows every setting, its value and where the value came from. The first\n"
	"found wins: the environment (FORKPOINT_<KEY>), the file $FORKPOINT_CONFIG,\n"
	"the user's $XDG_CONFIG_HOME/forkpoint/config (~/.config/forkpoint/config),\n"
	"the system's " FP_CONFIG_SYSTEM_FILE ", then the default. Files hold\n"
	"`key = value` lines and `#` comments; a file anyone but its owner or root\n"
	"can write, a link, or an unknown key is refused, by every command.\n"
	"With KEY, prints only its value (empty when the default applies).\n";

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
	fp_error err;
	if (fp_config_check(&err) < 0)
		return cli_report(&err);
	struct fp_config_value v;
	if (only) {
		if (fp_config_get(only, &v, &err) < 0)
			return cli_report(&err);
		if (json) {
			fp_json j;
			fp_json_init(&j, stdout, 0);
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "key", only);
			fp_json_str(&j, "value", v.set ? v.value : NULL);
			fp_json_str(&j, "source", v.source);
			fp_json_obj_end(&j);
			putchar('\n');
		} else {
			printf("%s\n", v.set ? v.value : "");
		}
		return 0;
	}
	fp_json j;
	if (json) {
		fp_json_init(&j, stdout, 1);
		fp_json_obj_begin(&j, NULL);
		fp_json_arr_begin(&j, "settings");
	} else {
		char f[PATH_MAX];
		printf("config files, in order:");
		for (int level = 2; level <= 4; level++) {
			fp_config_file(level, f, sizeof(f));
			if (f[0])
				printf(" %s", f);
		}
		printf("\n\n");
	}
	for (const struct fp_config_key *k = fp_config_keys; k->key; k++) {
		if (fp_config_get(k->key, &v, &err) < 0)
			return cli_report(&err);
		if (json) {
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "key", k->key);
			fp_json_str(&j, "value", v.set ? v.value : NULL);
			fp_json_str(&j, "source", v.source);
			fp_json_str(&j, "env", k->env);
			fp_json_str(&j, "default", k->fallback);
			fp_json_str(&j, "meaning", k->meaning);
			fp_json_obj_end(&j);
		} else if (v.set) {
			printf("%-19s = %s\n%-19s   (from %s; %s)\n", k->key, v.value, "", v.source, k->meaning);
		} else {
			printf("%-19s   default: %s\n%-19s   (%s; set %s or `%s = ...`)\n", k->key, k->fallback, "",
			       k->meaning, k->env, k->key);
		}
	}
	if (json) {
		fp_json_arr_end(&j);
		fp_json_obj_end(&j);
		putchar('\n');
	}
	return 0;
}
