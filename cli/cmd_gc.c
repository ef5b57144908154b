#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char gc_usage[] =
	"usage: forkpoint gc [SESSION...] [--json]\n"
	"\n"
	"Frees workspace layers that no snapshot and no live session uses (after\n"
	"`forkpoint rm`, squashes, restores and interrupted snapshots), and the page\n"
	"data of removed snapshots that no incremental snapshot relies on any more.\n"
	"A layer a snapshot or the running session still needs is never removed.\n"
	"Without SESSION, every session directory is collected.\n";

/* What gc did to one session (an item of forkpoint_gc), said as before:
 * its parent snapshots, then its layers. */
static void gc_print(const forkpoint_info *it, fp_json *j, int *failed)
{
	const char *name = forkpoint_info_get(it, "session");
	unsigned long removed = strtoul(forkpoint_info_get(it, "snaps_removed"), NULL, 10);
	unsigned long kept = strtoul(forkpoint_info_get(it, "snaps_kept"), NULL, 10);
	if (forkpoint_info_get(it, "snaps_error")[0]) {
		fprintf(stderr, "forkpoint: gc of session '%s': %s\n", name, forkpoint_info_get(it, "snaps_error"));
		*failed = 1;
	} else if (!j && (removed || kept)) {
		printf("%s: removed %lu unused parent snapshots, kept %lu\n", name, removed, kept);
	}
	if (!forkpoint_info_int(it, "workspace"))
		return;
	if (forkpoint_info_get(it, "error")[0]) {
		fprintf(stderr, "forkpoint: gc of session '%s': %s\n", name, forkpoint_info_get(it, "error"));
		*failed = 1;
	} else if (j) {
		fp_json_obj_begin(j, NULL);
		fp_json_str(j, "session", name);
		fp_json_uint(j, "layers_removed", strtoull(forkpoint_info_get(it, "layers_removed"), NULL, 10));
		fp_json_uint(j, "layers_kept", strtoull(forkpoint_info_get(it, "layers_kept"), NULL, 10));
		fp_json_uint(j, "workdirs_removed", strtoull(forkpoint_info_get(it, "workdirs_removed"), NULL, 10));
		fp_json_obj_end(j);
	} else {
		printf("%s: removed %s layers, kept %s\n", name, forkpoint_info_get(it, "layers_removed"),
		       forkpoint_info_get(it, "layers_kept"));
	}
}

/* name NULL: every session. -1 when it could not start at all. */
static int gc_all(const char *name, fp_json *j, int *failed)
{
	forkpoint_error err;
	forkpoint_info *all;
	if (forkpoint_gc(name, &all, &err) < 0)
		return cli_report_api(&err);
	for (size_t i = 0; i < forkpoint_info_items(all); i++)
		gc_print(forkpoint_info_item(all, i), j, failed);
	forkpoint_info_free(all);
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	int json = 0, nnamed = 0, failed = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(gc_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(gc_usage, "unknown option '%s'", argv[i]);
		else
			nnamed++;
	}
	fp_json j;
	if (json) {
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
	}
	int rc = 0;
	for (int i = 1; nnamed && rc == 0 && i < argc; i++)
		if (argv[i][0] != '-')
			rc = gc_all(argv[i], json ? &j : NULL, &failed);
	if (!nnamed)
		rc = gc_all(NULL, json ? &j : NULL, &failed);
	if (rc)
		return rc;
	if (json) {
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	}
	return failed ? FORKPOINT_EFAIL : 0;
}
