#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const struct fp_config_key fp_config_keys[] = {
	{ "home", "FORKPOINT_HOME", "where sessions and snapshots live",
	  "/var/lib/forkpoint for root, else $XDG_STATE_HOME/forkpoint or ~/.local/state/forkpoint" },
	{ "criu", "FORKPOINT_CRIU", "the CRIU binary to use (the only candidate when set)",
	  "the first working one of the setup prefix and PATH" },
	{ "criu_prefix", "FORKPOINT_CRIU_PREFIX", "where setup provisioned CRIU", "/opt/forkpoint/criu" },
	{ "criu_probe_timeout", "FORKPOINT_CRIU_PROBE_TIMEOUT",
	  "seconds a CRIU candidate gets to prove it dumps and restores", "20" },
	{ "shim", "FORKPOINT_SHIM", "the LD_PRELOAD shim library",
	  "libforkpoint-preload.so next to the forkpoint binary" },
	{ "tcp_established", "FORKPOINT_TCP_ESTABLISHED",
	  "a session's snapshots save established TCP connections (TCP repair mode, as `criu dump --tcp-established`): yes or no",
	  "no (connections are refused; `snap --tcp-established` for one snapshot)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct fp_config_key *find_key(const char *key)
{
	for (const struct fp_config_key *k = fp_config_keys; k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

void fp_config_file(int level, char *buf, size_t len)
{
	buf[0] = '\0';
	const char *s;
	switch (level) {
	case 2:
		s = getenv("FORKPOINT_CONFIG");
		if (s && *s)
			snprintf(buf, len, "%s", s);
		break;
	case 3:
		s = getenv("XDG_CONFIG_HOME");
		if (s && *s) {
			snprintf(buf, len, "%s/forkpoint/config", s);
		} else if ((s = getenv("HOME")) && *s) {
			snprintf(buf, len, "%s/.config/forkpoint/config", s);
		}
		break;
	case 4:
		snprintf(buf, len, "%s", FP_CONFIG_SYSTEM_FILE);
		break;
	}
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Opens a config file without following a link and proves that only its
 * owner (root or the caller) can change it: forkpoint runs as root and these
 * settings choose which binaries it runs. Returns NULL with errno ENOENT
 * when the file does not exist (that level is simply empty). */
static FILE *open_safe(const char *path, fp_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			errno = ENOENT;
			return NULL;
		}
		int e = errno;
		fp_fail(err, e, "config file %s: %s%s", path, strerror(e),
			e == ELOOP ? " (it is a symbolic link; forkpoint reads only the file itself: "
				     "replace the link with the file)" : "");
		errno = e;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		fp_fail(err, EINVAL, "config file %s is not a regular file; remove it or make it one", path);
		errno = EINVAL;
		return NULL;
	}
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
		close(fd);
		fp_fail(err, EPERM,
			"config file %s can be changed by someone else than you or root "
			"(owner uid %u, mode %03o); fix: chown it to yourself and chmod go-w it",
			path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
		errno = EPERM;
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		fp_fail(err, e, "config file %s: %s", path, strerror(e));
		errno = e;
	}
	return f;
}

/* Scans one file. With `key` set, fills *out when the file sets it. Every
 * line is checked either way, so a typo anywhere is reported. */
static int scan_file(const char *path, const char *key, struct fp_config_value *out, fp_error *err)
{
	FILE *f = open_safe(path, err);
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char line[PATH_MAX + 256];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			rc = fp_fail(err, EINVAL, "%s:%d: line too long", path, lineno);
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = fp_fail(err, EINVAL, "%s:%d: expected `key = value`, got `%s`", path, lineno, s);
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v[vl - 1] = '\0';
			v++;
		}
		if (!find_key(k)) {
			rc = fp_fail(err, EINVAL, "%s:%d: unknown setting `%s`; `forkpoint config` lists the known ones",
				     path, lineno, k);
			break;
		}
		if (key && !strcmp(k, key)) {
			/* The last line that sets a key wins, as in a shell profile. */
			out->set = true;
			snprintf(out->value, sizeof(out->value), "%s", v);
			snprintf(out->source, sizeof(out->source), "%s:%d", path, lineno);
		}
	}
	fclose(f);
	return rc;
}

int fp_config_get(const char *key, struct fp_config_value *out, fp_error *err)
{
	memset(out, 0, sizeof(*out));
	const struct fp_config_key *k = find_key(key);
	if (!k)
		return fp_fail(err, EINVAL, "unknown setting `%s`", key);
	const char *env = getenv(k->env);
	if (env && *env) {
		out->set = true;
		snprintf(out->value, sizeof(out->value), "%s", env);
		snprintf(out->source, sizeof(out->source), "%s", k->env);
		return 0;
	}
	for (int level = 2; level <= 4; level++) {
		char path[PATH_MAX];
		fp_config_file(level, path, sizeof(path));
		if (!path[0])
			continue;
		if (scan_file(path, key, out, err) < 0)
			return -1;
		if (out->set)
			return 0;
	}
	snprintf(out->source, sizeof(out->source), "default");
	return 0;
}

const char *fp_setting(const char *key, struct fp_config_value *buf)
{
	fp_error err;
	if (fp_config_get(key, buf, &err) < 0 || !buf->set || !buf->value[0])
		return NULL;
	return buf->value;
}

int fp_config_check(fp_error *err)
{
	for (int level = 2; level <= 4; level++) {
		char path[PATH_MAX];
		fp_config_file(level, path, sizeof(path));
		if (!path[0])
			continue;
		struct stat st;
		if (level == 2 && stat(path, &st) < 0)
			return fp_fail(err, errno, "FORKPOINT_CONFIG=%s: %s; fix: point it at a config file or unset it",
				       path, strerror(errno));
		if (scan_file(path, NULL, NULL, err) < 0)
			return -1;
	}
	return 0;
}

bool fp_setting_yes(const char *key)
{
	struct fp_config_value cv;
	const char *v = fp_setting(key, &cv);
	return v && (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"));
}

bool fp_env_flag(const char *name)
{
	const char *e = getenv(name);
	return e && *e && strcmp(e, "0");
}

bool fp_env_off(const char *name)
{
	const char *e = getenv(name);
	return e && !strcmp(e, "0");
}
