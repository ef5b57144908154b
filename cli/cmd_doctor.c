/* forkpoint doctor: which CRIU is used and why the others were refused
 * (forkpoint_doctor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char doctor_usage[] =
	"usage: forkpoint doctor [--json] [--cached] [--criu-path] [--probe PATH]\n"
	"\n"
	"Says which CRIU forkpoint uses as its restore fallback (and `make bench` as\n"
	"its baseline), its version, and why each other candidate was refused. The\n"
	"candidates, in order: $FORKPOINT_CRIU (alone, when set), the prefix `make\n"
	"setup` provisions ($FORKPOINT_CRIU_PREFIX, default /opt/forkpoint/criu),\n"
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

#define GET(r, k) forkpoint_info_get(r, k)
#define INT(r, k) forkpoint_info_int(r, k)

static void print_candidate(const forkpoint_info *c)
{
	if (INT(c, "usable"))
		printf("  %s %s: CRIU %s, works (check, dump, restore)%s%s\n", INT(c, "in_use") ? "*" : " ",
		       GET(c, "path"), GET(c, "version"), INT(c, "cached") ? ", cached" : "",
		       INT(c, "in_use") ? "  <- in use" : "");
	else
		printf("    refused: %s\n", GET(c, "why"));
}

static const char *or_null(const char *s)
{
	return s[0] ? s : NULL;
}

static void json_candidate(fp_json *j, const forkpoint_info *c, int used)
{
	fp_json_obj_begin(j, NULL);
	fp_json_str(j, "path", GET(c, "path"));
	fp_json_str(j, "source", GET(c, "source"));
	fp_json_bool(j, "usable", (int)INT(c, "usable"));
	fp_json_bool(j, "in_use", used);
	fp_json_str(j, "version", or_null(GET(c, "version")));
	fp_json_str(j, "refused_because", INT(c, "usable") ? NULL : GET(c, "why"));
	fp_json_bool(j, "cached", (int)INT(c, "cached"));
	fp_json_obj_end(j);
}

/* PATH alone: FORKPOINT_CRIU is the only candidate when it is set. */
static int probe_one(const char *path, int json)
{
	forkpoint_info *r;
	forkpoint_error err;
	setenv("FORKPOINT_CRIU", path, 1);
	if (forkpoint_doctor(0, &r, &err) < 0)
		return cli_report_api(&err);
	const forkpoint_info *c = forkpoint_info_item(r, 0);
	if (!c) {
		forkpoint_info_free(r);
		fprintf(stderr, "forkpoint: doctor: cannot test %s (is the path too long?)\n", path);
		return FORKPOINT_EFAIL;
	}
	int usable = (int)INT(c, "usable");
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		json_candidate(&j, c, usable);
		fp_json_finish(&j);
	} else if (usable) {
		printf("%s: CRIU %s works (check, dump, restore)\n", GET(c, "path"), GET(c, "version"));
	} else {
		printf("%s\n", GET(c, "why"));
	}
	forkpoint_info_free(r);
	return usable ? 0 : FORKPOINT_EUNSUPPORTED;
}

static void report(const forkpoint_info *r, int json)
{
	size_t n = forkpoint_info_items(r);
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "criu", or_null(GET(r, "criu")));
		fp_json_arr_begin(&j, "candidates");
		for (size_t i = 0; i < n; i++)
			json_candidate(&j, forkpoint_info_item(r, i), (int)INT(forkpoint_info_item(r, i), "in_use"));
		fp_json_arr_end(&j);
		fp_json_str(&j, "setup_report", or_null(GET(r, "setup_report")));
		fp_json_obj_end(&j);
		fp_json_finish(&j);
		return;
	}
	printf("CRIU (restore fallback, bench baseline): %s\n",
	       GET(r, "criu")[0] ? GET(r, "criu")
				 : "none usable; forkpoint's own dump and restore still work, --engine criu refuses");
	for (size_t i = 0; i < n; i++)
		print_candidate(forkpoint_info_item(r, i));
	if (GET(r, "setup_report")[0]) {
		printf("what `make setup` found (%s):\n", GET(r, "setup_report"));
		for (const char *p = GET(r, "setup_report_text"); *p;) {
			const char *nl = strchr(p, '\n');
			int len = nl ? (int)(nl - p) : (int)strlen(p);
			printf("  %.*s\n", len, p);
			p += len + (nl != NULL);
		}
	}
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
	unsigned flags = path_only ? FORKPOINT_DOCTOR_CACHED | FORKPOINT_DOCTOR_FIRST | FORKPOINT_DOCTOR_REQUIRE
				   : cached ? FORKPOINT_DOCTOR_CACHED : 0;
	forkpoint_info *r;
	forkpoint_error err;
	if (forkpoint_doctor(flags, &r, &err) < 0)
		return cli_report_api(&err);
	if (path_only)
		printf("%s\n", GET(r, "criu"));
	else
		report(r, json);
	forkpoint_info_free(r);
	return 0;
}
