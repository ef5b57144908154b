#include "criu.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "criu_probe.h"
#include "fp_spawn.h"

#define VERSION_TIMEOUT_MS 20000
#define CHECK_TIMEOUT_MS 60000
#define CACHE_MAX_ENTRIES 16
#define CACHE_MAX_BYTES 16384
#define CACHE_TAG "fpcriu2"

/* What a cached verdict is keyed by. stat() follows symlinks, so replacing
 * the file behind an alternatives link changes the key too. */
struct bin_key {
	unsigned long long dev, ino, size;
	long long mtime_s;
	long mtime_ns;
	char boot[64];
};

struct criu_version {
	int major, minor, patch;
};

/* ---- output helpers ---- */

/* Copies the line at s (up to the newline) into buf, trimmed and shortened. */
static void copy_line(char *buf, size_t len, const char *s)
{
	size_t n = strcspn(s, "\n");
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n >= len) {
		n = len - 4;
		snprintf(buf, len, "%.*s...", (int)n, s);
		return;
	}
	snprintf(buf, len, "%.*s", (int)n, s);
}

/* The first and last "Error" lines of CRIU's output (the first is where it
 * went wrong, the last what it gave up on), else the first non-empty line. */
static void summarize_output(const char *out, char *buf, size_t len)
{
	const char *first = NULL, *last = NULL;
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, "Error", 5)) {
			if (!first)
				first = l;
			last = l;
		}
	}
	if (!first) {
		const char *l = out;
		while (*l == '\n' || *l == ' ')
			l++;
		if (!*l) {
			snprintf(buf, len, "(no output)");
			return;
		}
		copy_line(buf, len, l);
		return;
	}
	char a[300], b[300];
	copy_line(a, sizeof(a), first);
	if (last == first) {
		snprintf(buf, len, "%s", a);
		return;
	}
	copy_line(b, sizeof(b), last);
	snprintf(buf, len, "%s ... %s", a, b);
}

/* ---- version ---- */

static int parse_version(const char *out, struct criu_version *v)
{
	const char *p = strstr(out, "Version:");
	if (!p)
		return -1;
	p += strlen("Version:");
	v->major = v->minor = v->patch = 0;
	int n = sscanf(p, " %d.%d.%d", &v->major, &v->minor, &v->patch);
	return n >= 1 ? 0 : -1;
}

int fp_criu_version(const char *path, int *major, int *minor, int *patch, fp_error *err)
{
	char out[4096];
	fp_spawn_result res;
	fp_spawn_opts opts = {.timeout_ms = VERSION_TIMEOUT_MS};
	const char *argv[] = {path, "--version", NULL};
	if (fp_spawn(argv, &opts, out, sizeof(out), &res, err) < 0)
		return -1;
	struct criu_version v;
	if (parse_version(out, &v) < 0) {
		char first[300];
		summarize_output(out, first, sizeof(first));
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOEXEC,
				    "`%s --version` printed no CRIU version (exit %d): %s", path,
				    res.exit_code, first);
	}
	if (major)
		*major = v.major;
	if (minor)
		*minor = v.minor;
	if (patch)
		*patch = v.patch;
	return 0;
}

/* ---- verdict cache ---- */

static void boot_id(char *buf, size_t len)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, len - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			buf[strcspn(buf, "\n ")] = '\0';
			if (buf[0])
				return;
		}
	}
	/* No /proc: the kernel release is the next best thing. */
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(buf, len, "%.63s", u.release);
	else
		snprintf(buf, len, "unknown");
	for (char *c = buf; *c; c++)
		if (*c == ' ' || *c == '\t')
			*c = '_';
}

static int key_for(const char *path, struct bin_key *k)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	k->size = (unsigned long long)st.st_size;
	k->mtime_s = st.st_mtim.tv_sec;
	k->mtime_ns = st.st_mtim.tv_nsec;
	boot_id(k->boot, sizeof(k->boot));
	return 0;
}

static int cache_path(char *buf, size_t len)
{
	struct fp_config_value cv;
	const char *home = fp_setting("home", &cv);
	struct stat st;
	int n;
	if (home && *home && stat(home, &st) == 0 && S_ISDIR(st.st_mode))
		n = snprintf(buf, len, "%s/criu-check.cache", home);
	else
		n = snprintf(buf, len, "/tmp/forkpoint-criu-check-%u", (unsigned)geteuid());
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Reads the cache if it is ours and nobody else can write it (in /tmp anyone
 * could plant one). Returns the length read, or -1. */
static long cache_read(char *buf, size_t len)
{
	char cp[PATH_MAX];
	if (cache_path(cp, sizeof(cp)) < 0)
		return -1;
	int fd = open(cp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	long total = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    !(st.st_mode & 022)) {
		while ((size_t)total < len - 1) {
			ssize_t n = read(fd, buf + total, len - 1 - (size_t)total);
			if (n <= 0)
				break;
			total += n;
		}
	} else {
		total = -1;
	}
	close(fd);
	if (total >= 0)
		buf[total] = '\0';
	return total;
}

/* One line, fields split by tabs (the reason has spaces):
 * tag dev ino size mtime_s mtime_ns boot major.minor.patch ok|bad path reason */
struct cache_entry {
	struct bin_key key;
	struct criu_version v;
	int ok;
	char path[PATH_MAX];
	char reason[700];
};

static int parse_entry(char *line, struct cache_entry *e)
{
	char *f[11];
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, "\t", &save); t && n < 11;
	     t = strtok_r(NULL, "\t", &save))
		f[n++] = t;
	if (n < 10 || strcmp(f[0], CACHE_TAG))
		return -1;
	e->key.dev = strtoull(f[1], NULL, 10);
	e->key.ino = strtoull(f[2], NULL, 10);
	e->key.size = strtoull(f[3], NULL, 10);
	e->key.mtime_s = strtoll(f[4], NULL, 10);
	e->key.mtime_ns = strtol(f[5], NULL, 10);
	snprintf(e->key.boot, sizeof(e->key.boot), "%s", f[6]);
	if (sscanf(f[7], "%d.%d.%d", &e->v.major, &e->v.minor, &e->v.patch) != 3)
		return -1;
	e->ok = !strcmp(f[8], "ok");
	copy_line(e->path, sizeof(e->path), f[9]);
	copy_line(e->reason, sizeof(e->reason), n > 10 ? f[10] : "");
	return e->path[0] ? 0 : -1;
}

static int same_key(const struct bin_key *a, const struct bin_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && !strcmp(a->boot, b->boot);
}

static int cache_lookup(const char *path, const struct bin_key *want, struct cache_entry *out)
{
	char buf[CACHE_MAX_BYTES];
	if (cache_read(buf, sizeof(buf)) < 0)
		return -1;
	for (char *l = buf; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (parse_entry(l, out) == 0 && !strcmp(out->path, path) && same_key(&out->key, want))
			return 0;
		l = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* Best effort: a cache we cannot write only costs time. */
static void cache_store(const struct cache_entry *ne)
{
	if (strpbrk(ne->path, "\n\t") || strlen(ne->path) >= PATH_MAX)
		return;
	char old[CACHE_MAX_BYTES], cp[PATH_MAX], tmp[PATH_MAX + 16];
	size_t next_len = CACHE_MAX_BYTES + PATH_MAX + 1024, used = 0;
	char *next = malloc(next_len);
	if (!next)
		return;
	if (cache_read(old, sizeof(old)) < 0)
		old[0] = '\0';
	/* Keep the newest other entries; the new one goes last. */
	const char *keepers[CACHE_MAX_ENTRIES];
	int nkeep = 0;
	for (char *l = old; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		char copy[CACHE_MAX_BYTES];
		snprintf(copy, sizeof(copy), "%s", l);
		struct cache_entry e;
		if (parse_entry(copy, &e) == 0 && strcmp(e.path, ne->path)) {
			if (nkeep == CACHE_MAX_ENTRIES - 1) {
				memmove(keepers, keepers + 1, sizeof(keepers[0]) * (size_t)(nkeep - 1));
				nkeep--;
			}
			keepers[nkeep++] = l;
		}
		l = nl ? nl + 1 : NULL;
	}
	for (int i = 0; i < nkeep; i++)
		used += (size_t)snprintf(next + used, next_len - used, "%s\n", keepers[i]);
	char reason[700];
	snprintf(reason, sizeof(reason), "%s", ne->reason);
	for (char *c = reason; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = ' ';
	const struct bin_key *k = &ne->key;
	int n = snprintf(next + used, next_len - used,
			 "%s\t%llu\t%llu\t%llu\t%lld\t%ld\t%s\t%d.%d.%d\t%s\t%s\t%s\n", CACHE_TAG,
			 k->dev, k->ino, k->size, k->mtime_s, k->mtime_ns, k->boot, ne->v.major,
			 ne->v.minor, ne->v.patch, ne->ok ? "ok" : "bad", ne->path, reason);
	if (n < 0 || (size_t)n >= next_len - used || cache_path(cp, sizeof(cp)) < 0) {
		free(next);
		return;
	}
	used += (size_t)n;
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", cp);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd >= 0) {
		int ok = write(fd, next, used) == (ssize_t)used;
		ok = close(fd) == 0 && ok;
		if (!ok || rename(tmp, cp) < 0)
			unlink(tmp);
	}
	free(next);
}

/* ---- candidates ---- */

/* Reasons are cut to fit on purpose; vsnprintf keeps gcc's truncation
 * warnings for the places where cutting would be a bug. */
static void __attribute__((format(printf, 3, 4))) say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Decides about one binary: version, `criu check`, then a real dump and
 * restore (fp_criu_probe). Verdicts are cached either way, so a CRIU that
 * hangs costs its deadline once per boot, not on every restore; fresh skips
 * the cached verdict (and replaces it). */
static void decide(fp_criu_candidate *c, bool fresh)
{
	struct stat st;
	c->usable = 0;
	c->exists = 0;
	if (stat(c->path, &st) < 0) {
		say(c->why, sizeof(c->why), "%s: %s", c->path,
		    errno == ENOENT ? "does not exist" : strerror(errno));
		return;
	}
	c->exists = 1;
	if (!S_ISREG(st.st_mode)) {
		say(c->why, sizeof(c->why), "%s: not a regular file", c->path);
		return;
	}
	if (access(c->path, X_OK) < 0) {
		say(c->why, sizeof(c->why), "%s: not executable (%s)", c->path, strerror(errno));
		return;
	}
	struct cache_entry ce;
	memset(&ce, 0, sizeof(ce));
	int have_key = key_for(c->path, &ce.key) == 0;
	struct cache_entry hit;
	if (have_key && !fresh && cache_lookup(c->path, &ce.key, &hit) == 0) {
		c->cached = 1;
		c->major = hit.v.major;
		c->minor = hit.v.minor;
		c->patch = hit.v.patch;
		c->usable = hit.ok && hit.v.major >= FP_CRIU_MIN_MAJOR;
		if (!c->usable)
			say(c->why, sizeof(c->why),
			    "%s (found earlier since this boot; `forkpoint doctor` tests it again)",
			    hit.reason);
		return;
	}

	fp_error e;
	fp_error_clear(&e);
	if (fp_criu_version(c->path, &c->major, &c->minor, &c->patch, &e) < 0) {
		say(c->why, sizeof(c->why), "%s: %s", c->path, e.msg);
		return;
	}
	if (c->major < FP_CRIU_MIN_MAJOR) {
		say(c->why, sizeof(c->why), "%s is version %d.%d.%d, need %d.x or later", c->path,
		    c->major, c->minor, c->patch, FP_CRIU_MIN_MAJOR);
		return;
	}

	char out[16384];
	fp_spawn_result res;
	fp_spawn_opts opts = {.timeout_ms = CHECK_TIMEOUT_MS};
	const char *argv[] = {c->path, "check", NULL};
	if (fp_spawn(argv, &opts, out, sizeof(out), &res, &e) < 0) {
		say(c->why, sizeof(c->why), "%s (version %d.%d.%d): `criu check` failed: %s",
		    c->path, c->major, c->minor, c->patch, e.msg);
	} else if (res.exit_code != 0) {
		char summary[700];
		summarize_output(out, summary, sizeof(summary));
		say(c->why, sizeof(c->why), "%s (version %d.%d.%d): `criu check` failed (exit %d)%s: %s",
		    c->path, c->major, c->minor, c->patch, res.exit_code,
		    geteuid() ? ", and it must run as root" : "", summary);
	} else if (fp_criu_probe(c->path, c->why, sizeof(c->why)) == 0) {
		c->usable = 1;
	}
	if (have_key) {
		ce.v = (struct criu_version){c->major, c->minor, c->patch};
		ce.ok = c->usable;
		snprintf(ce.path, sizeof(ce.path), "%s", c->path);
		snprintf(ce.reason, sizeof(ce.reason), "%s", c->usable ? "" : c->why);
		cache_store(&ce);
	}
}

static int set_path(fp_criu_candidate *c, const char *path, const char *source)
{
	memset(c, 0, sizeof(*c));
	c->source = source;
	return snprintf(c->path, sizeof(c->path), "%s", path) < (int)sizeof(c->path) ? 0 : -1;
}

int fp_criu_survey(fp_criu_candidate *c, int max, bool all, bool fresh)
{
	int n = 0;
	struct fp_config_value cv, pv;
	const char *env = fp_setting("criu", &cv);
	if (env && *env) {
		/* An explicit choice is the only candidate: never silently replaced. */
		if (max < 1 || set_path(&c[0], env, strncmp(cv.source, "FORKPOINT_", 10) ? "the criu setting in a config file" : "FORKPOINT_CRIU") < 0)
			return 0;
		decide(&c[0], fresh);
		return 1;
	}
	const char *prefix = fp_setting("criu_prefix", &pv);
	if (!prefix || !*prefix)
		prefix = FP_CRIU_DEFAULT_PREFIX;
	char prefixed[PATH_MAX];
	snprintf(prefixed, sizeof(prefixed), "%s/bin/criu", prefix);
	if (n < max && set_path(&c[n], prefixed, "setup prefix") == 0) {
		decide(&c[n], fresh);
		if (c[n++].usable && !all)
			return n;
	}
	char onpath[PATH_MAX];
	fp_error e;
	if (n < max && fp_which("criu", onpath, sizeof(onpath), &e) == 0) {
		char a[PATH_MAX], b[PATH_MAX];
		if (!(realpath(onpath, a) && realpath(prefixed, b) && !strcmp(a, b)) &&
		    set_path(&c[n], onpath, "PATH") == 0) {
			decide(&c[n], fresh);
			n++;
		}
	}
	return n;
}

int fp_criu_find(char *path, size_t len, fp_error *err)
{
	fp_criu_candidate c[FP_CRIU_MAX_CANDIDATES];
	int n = fp_criu_survey(c, FP_CRIU_MAX_CANDIDATES, false, false);
	for (int i = 0; i < n; i++)
		if (c[i].usable) {
			if (snprintf(path, len, "%s", c[i].path) >= (int)len)
				return fp_fail(err, ENAMETOOLONG, "CRIU path too long: %s", c[i].path);
			return 0;
		}
	if (n == 1 && !strcmp(c[0].source, "FORKPOINT_CRIU"))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, c[0].exists ? ENOEXEC : ENOENT,
				    "FORKPOINT_CRIU is set but refused: %s; point FORKPOINT_CRIU at a "
				    "CRIU 4.x binary that passes `criu check` and dumps and restores "
				    "here, or unset it to use the one `make setup` installs",
				    c[0].why);
	char reasons[1200];
	size_t used = 0;
	int any_exists = 0;
	for (int i = 0; i < n && used < sizeof(reasons); i++) {
		any_exists |= c[i].exists;
		int k = snprintf(reasons + used, sizeof(reasons) - used, "\n  - %s%s", c[i].why,
				 !c[i].exists && !strcmp(c[i].source, "setup prefix")
					 ? " (`make setup` creates it when a CRIU works here)"
					 : "");
		if (k > 0)
			used += (size_t)k;
	}
	if (n < 2 && used < sizeof(reasons))
		snprintf(reasons + used, sizeof(reasons) - used, "\n  - no `criu` on PATH");
	return fp_fail_code(err, FP_EXIT_UNSUPPORTED, any_exists ? ENOEXEC : ENOENT,
			    "no usable CRIU 4.x found (the CRIU fallback is off; forkpoint's own "
			    "dump and restore do not need it):%s\nrun `make setup` (it tries the "
			    "system's CRIU and Debian's 4.x builds), `forkpoint doctor` for details, "
			    "or set FORKPOINT_CRIU to a CRIU 4.x binary",
			    reasons);
}
