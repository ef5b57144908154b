/* forkpoint_config and forkpoint_doctor: the settings and where each came
 * from, and the CRIU candidates and why each was taken or refused, as
 * forkpoint_info results for `forkpoint config`, `forkpoint doctor` and any
 * program that wants to show or check the same. */
#include "api/api_int.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "criu.h"

static const struct fp_config_key *known_key(const char *key)
{
	for (const struct fp_config_key *k = fp_config_keys; k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

/* One setting's values into r; -1 with e on failure (r may be half set). */
static int setting(forkpoint_info *r, const struct fp_config_key *k, fp_error *e)
{
	struct fp_config_value v;
	if (fp_config_get(k->key, &v, e) < 0)
		return -1;
	if (api_info_set(r, "key", "%s", k->key) < 0 || api_info_set(r, "value", "%s", v.set ? v.value : "") < 0 ||
	    api_info_set(r, "set", "%d", v.set) < 0 || api_info_set(r, "source", "%s", v.source) < 0 ||
	    api_info_set(r, "env", "%s", k->env) < 0 || api_info_set(r, "default", "%s", k->fallback) < 0 ||
	    api_info_set(r, "meaning", "%s", k->meaning) < 0)
		return fp_fail(e, ENOMEM, "out of memory");
	return 0;
}

/* The config files forkpoint reads, in order, one per line. */
static int config_files(forkpoint_info *r)
{
	char files[3 * (PATH_MAX + 1)] = "";
	size_t used = 0;
	for (int level = 2; level <= 4; level++) {
		char f[PATH_MAX];
		fp_config_file(level, f, sizeof(f));
		if (f[0] && used < sizeof(files))
			used += (size_t)snprintf(files + used, sizeof(files) - used, "%s%s", used ? "\n" : "", f);
	}
	return api_info_set(r, "files", "%s", files);
}

int forkpoint_config(const char *key, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	const struct fp_config_key *only = NULL;
	if (key && !(only = known_key(key))) {
		char names[512] = "";
		size_t used = 0;
		for (const struct fp_config_key *k = fp_config_keys; k->key && used < sizeof(names); k++)
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", k->key);
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "unknown setting `%s`; the known ones are %s", key,
				names);
	}
	fp_error e = { 0 };
	if (fp_config_check(&e) < 0)
		return api_error(err, &e);
	forkpoint_info *r = api_info_new();
	if (!r)
		return api_info_out(NULL, res, err);
	int rc = only ? setting(r, only, &e) : config_files(r) < 0 ? fp_fail(&e, ENOMEM, "out of memory") : 0;
	for (const struct fp_config_key *k = fp_config_keys; rc == 0 && !only && k->key; k++) {
		forkpoint_info *it = api_info_add_item(r);
		rc = it ? setting(it, k, &e) : fp_fail(&e, ENOMEM, "out of memory");
	}
	if (rc < 0) {
		forkpoint_info_free(r);
		return api_error(err, &e);
	}
	return api_info_out(r, res, err);
}

/* The report `make setup` leaves beside the CRIU prefix (it may name Debian
 * builds it tried that are no candidates here): its path and text. */
static int setup_report(forkpoint_info *r)
{
	struct fp_config_value cv;
	const char *prefix = fp_setting("criu_prefix", &cv);
	char copy[PATH_MAX], path[PATH_MAX + 32];
	snprintf(copy, sizeof(copy), "%s", prefix && *prefix ? prefix : FP_CRIU_DEFAULT_PREFIX);
	snprintf(path, sizeof(path), "%s/criu-setup.txt", dirname(copy));
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char text[16384];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return api_info_set(r, "setup_report", "%s", path) < 0 || api_info_set(r, "setup_report_text", "%s", text) < 0
		       ? -1 : 0;
}

static int candidate(forkpoint_info *it, const fp_criu_candidate *c, int used)
{
	char v[48] = "";
	if (c->major)
		snprintf(v, sizeof(v), "%d.%d.%d", c->major, c->minor, c->patch);
	return api_info_set(it, "path", "%s", c->path) < 0 || api_info_set(it, "source", "%s", c->source) < 0 ||
			       api_info_set(it, "exists", "%d", c->exists) < 0 ||
			       api_info_set(it, "usable", "%d", c->usable) < 0 ||
			       api_info_set(it, "in_use", "%d", used) < 0 || api_info_set(it, "version", "%s", v) < 0 ||
			       api_info_set(it, "why", "%s", c->usable ? "" : c->why) < 0 ||
			       api_info_set(it, "cached", "%d", c->cached) < 0
		       ? -1 : 0;
}

int forkpoint_doctor(unsigned flags, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (flags & ~(unsigned)(FORKPOINT_DOCTOR_CACHED | FORKPOINT_DOCTOR_FIRST | FORKPOINT_DOCTOR_REQUIRE))
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "forkpoint_doctor: unknown flags 0x%x",
				flags & ~(unsigned)(FORKPOINT_DOCTOR_CACHED | FORKPOINT_DOCTOR_FIRST |
						    FORKPOINT_DOCTOR_REQUIRE));
	fp_criu_candidate *c = calloc(FP_CRIU_MAX_CANDIDATES, sizeof(*c));
	forkpoint_info *r = api_info_new();
	if (!c || !r) {
		free(c);
		forkpoint_info_free(r);
		return api_info_out(NULL, res, err);
	}
	int n = fp_criu_survey(c, FP_CRIU_MAX_CANDIDATES, !(flags & FORKPOINT_DOCTOR_FIRST),
			       !(flags & FORKPOINT_DOCTOR_CACHED));
	int used = -1, rc = 0;
	for (int i = 0; i < n && used < 0; i++)
		if (c[i].usable)
			used = i;
	if (used < 0 && (flags & FORKPOINT_DOCTOR_REQUIRE)) {
		/* The verdicts are cached now: this asks no CRIU again. */
		fp_error e = { 0 };
		char p[PATH_MAX];
		if (fp_criu_find(p, sizeof(p), &e) < 0)
			rc = api_error(err, &e);
		else
			rc = api_fail(err, FORKPOINT_EFAIL, 0, "CRIU %s became usable while it was tested; run again", p);
	}
	if (rc == 0) {
		char v[48] = "";
		if (used >= 0)
			snprintf(v, sizeof(v), "%d.%d.%d", c[used].major, c[used].minor, c[used].patch);
		if (api_info_set(r, "criu", "%s", used >= 0 ? c[used].path : "") < 0 ||
		    api_info_set(r, "criu_version", "%s", v) < 0 || setup_report(r) < 0)
			rc = -1;
		for (int i = 0; rc == 0 && i < n; i++) {
			forkpoint_info *it = api_info_add_item(r);
			rc = it ? candidate(it, &c[i], i == used) : -1;
		}
		if (rc < 0)
			api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	free(c);
	if (rc < 0) {
		forkpoint_info_free(r);
		return -1;
	}
	return api_info_out(r, res, err);
}
