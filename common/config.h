/* Settings, with checkpoint-lite's precedence (first found wins):
 *   1. the environment, FORKPOINT_<KEY> (key upper-cased);
 *   2. the file named by $FORKPOINT_CONFIG;
 *   3. the user's file, $XDG_CONFIG_HOME/forkpoint/config (~/.config/...);
 *   4. the system's file, /etc/forkpoint/config;
 *   5. the built-in default, decided by the code that uses the setting.
 *
 * A file holds `key = value` lines; `#` starts a comment. A file that is
 * unsafe (a link, or writable by someone else than its owner and root) or
 * that names an unknown key is an error, reported by fp_config_check(), which
 * every command runs first: a setting is never dropped silently. */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "fp_error.h"

#define FP_CONFIG_SYSTEM_FILE "/etc/forkpoint/config"

struct fp_config_key {
	const char *key;     /* as written in files: lower case */
	const char *env;     /* its environment variable */
	const char *meaning; /* one line, for `forkpoint config` */
	const char *fallback;/* what the default is, in words */
};

/* The keys forkpoint knows, ending with a zeroed entry. */
extern const struct fp_config_key fp_config_keys[];

struct fp_config_value {
	bool set;                    /* false: the default applies */
	char value[PATH_MAX];
	char source[PATH_MAX + 32];  /* "FORKPOINT_HOME", "/etc/forkpoint/config:3", "default" */
};

/* Looks `key` up through the five levels. Unknown keys fail. */
int fp_config_get(const char *key, struct fp_config_value *out, fp_error *err);

/* The value of `key`, or NULL when the default applies (or the files are
 * broken: fp_config_check() has refused those before any command runs). */
const char *fp_setting(const char *key, struct fp_config_value *buf);

/* A yes/no setting: true for yes, true, on or 1; false when unset. */
bool fp_setting_yes(const char *key);

/* Parses every config file that exists; fails on the first problem with its
 * file, line and fix. */
int fp_config_check(fp_error *err);

/* An environment switch (FP_DUMP_NO_WARM=1 and the like, for A/B
 * measurements): true when name is set to anything but "" or "0". */
bool fp_env_flag(const char *name);
/* The other way (FP_ROLLBACK_MAP=0 and the like, a switch that is on
 * unless set): true when name is set to "0". */
bool fp_env_off(const char *name);

/* The path of level 2, 3 or 4 (empty when that level has no file name). */
void fp_config_file(int level, char *buf, size_t len);

#endif
