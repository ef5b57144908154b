#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_internal.h"
#include "config.h"
#include "criu.h"
#include "criu_probe.h"
#include "cli_json.h"

static const char doctor_usage[] =
	"usage: forkpoint doctor [--json] [--cached] [--criu-path] [--probe PATH]\n"
	"\n"
	"Says which CRIU forkpoint uses as its restore fallback (and `make bench` as\n"
	"its baseline), its version, and why each other candidate was refused. The\n"
	"candidates, in order: $FORKPOINT_CRIU (alone, when set), the prefix `make\n"
	"setup` provisions ($FORKPOINT_CRIU_PREFIX, default " FP_CRIU_DEFAULT_PREFIX "),\n"
	"then `criu` on PATH. A candidate must be 4.x, pass `criu check`, and dump\n"
	"and restore a test process; each step has a deadline\n"
	"($FORKPOINT_CRIU_PROBE_TIMEOUT seconds, default 20), after which CRIU and\n"
	"everything it started are killed. Without a usable CRIU, forkpoint's own\n"
	"dump and restore work as before; `--engine criu` and the fallback refuse.\n"
	"\n"
	"  --cached      trust verdicts found earlier since this boot (the default\n"
	"                tests every candidate again and remembers the result)\n"
	"  --criu-path   print only the path of the CRIU in use (exit 4 if none)\n"
	"  --probe PATH  test PATH alone, as `make setup` does with each candidate\n"
	"  --json        machine-readable output\n";

/* What `make setup` wrote about the candidates it tried (it can try Debian
 * builds that are not candidates here). */
static void setup_report_path(char *buf, size_t len)
{
	struct fp_config_value cv;
	const char *prefix = fp_setting("criu_prefix", &cv);
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", prefix && *prefix ? prefix : FP_CRIU_DEFAULT_PREFIX);
	snprintf(buf, len, "%s/criu-setup.txt", dirname(copy));
}

static void print_candidate(const fp_criu_candidate *c, int used)
{
	if (c->usable)
		printf("  %s %s: CRIU %d.%d.%d, works (check, dump, restore)%s%s\n", used ? "*" : " ",
		       c->path, c->major, c->minor, c->patch, c->cached ? ", cached" : "",
		       used ? "  <- in use" : "");
	else
		printf("    refused: %s\n", c->why);
}

static void json_candidate(fp_json *j, const fp_criu_candidate *c, int used)
{
	fp_json_obj_begin(j, NULL);
	fp_json_str(j, "path", c->path);
	fp_json_str(j, "source", c->source);
	fp_json_bool(j, "usable", c->usable);
	fp_json_bool(j, "in_use", used);
	if (c->major) {
		char v[48];
		snprintf(v, sizeof(v), "%d.%d.%d", c->major, c->minor, c->patch);
		fp_json_str(j, "version", v);
	} else {
		fp_json_str(j, "version", NULL);
	}
	fp_json_str(j, "refused_because", c->usable ? NULL : c->why);
	fp_json_bool(j, "cached", c->cached);
	fp_json_obj_end(j);
}

static int probe_one(const char *path, int json)
{
	fp_criu_candidate c;
	setenv("FORKPOINT_CRIU", path, 1);
	int n = fp_criu_survey(&c, 1, true, true);
	if (n != 1) {
		fprintf(stderr, "forkpoint: doctor: cannot test %s\n", path);
		return 1;
	}
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		json_candidate(&j, &c, c.usable);
		fp_json_finish(&j);
	} else if (c.usable) {
		printf("%s: CRIU %d.%d.%d works (check, dump, restore)\n", c.path, c.major, c.minor,
		       c.patch);
	} else {
		printf("%s\n", c.why);
	}
	return c.usable ? 0 : FP_EXIT_UNSUPPORTED;
}

int cmd_doctor(int argc, char **argv)
{
	int json = 0, cached = 0, path_only = 0;
	const char *probe = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--cached"))
			cached = 1;
		else if (!strcmp(argv[i], "--criu-path"))
			path_only = 1;
		else if (!strcmp(argv[i], "--probe") && i + 1 < argc)
			probe = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(doctor_usage, stdout);
			return 0;
		} else
			return cli_usage_error(doctor_usage, "unknown argument '%s'", argv[i]);
	}
	if (probe)
		return probe_one(probe, json);

	fp_criu_candidate c[FP_CRIU_MAX_CANDIDATES];
	int n = fp_criu_survey(c, FP_CRIU_MAX_CANDIDATES, !path_only, !cached && !path_only);
	int used = -1;
	for (int i = 0; i < n && used < 0; i++)
		if (c[i].usable)
			used = i;
	if (path_only) {
		if (used < 0) {
			fp_error err;
			char p[PATH_MAX];
			fp_criu_find(p, sizeof(p), &err);
			return cli_report(&err);
		}
		printf("%s\n", c[used].path);
		return 0;
	}
	char report[PATH_MAX];
	setup_report_path(report, sizeof(report));
	FILE *rf = fopen(report, "re");
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "criu", used >= 0 ? c[used].path : NULL);
		fp_json_arr_begin(&j, "candidates");
		for (int i = 0; i < n; i++)
			json_candidate(&j, &c[i], i == used);
		fp_json_arr_end(&j);
		fp_json_str(&j, "setup_report", rf ? report : NULL);
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else {
		printf("CRIU (restore fallback, bench baseline): %s\n",
		       used >= 0 ? c[used].path : "none usable; forkpoint's own dump and restore "
						    "still work, --engine criu refuses");
		for (int i = 0; i < n; i++)
			print_candidate(&c[i], i == used);
		if (rf) {
			printf("what `make setup` found (%s):\n", report);
			char line[1024];
			while (fgets(line, sizeof(line), rf))
				printf("  %s", line);
		}
	}
	if (rf)
		fclose(rf);
	return 0;
}
