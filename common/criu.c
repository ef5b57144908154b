#include "criu.h"

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

#include "fp_spawn.h"

#define VERSION_TIMEOUT_MS 20000
#define CHECK_TIMEOUT_MS 60000
#define CACHE_MAX_ENTRIES 16
#define CACHE_MAX_BYTES 16384
#define CACHE_TAG "fpcriu1"

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
	const char *home = getenv("FORKPOINT_HOME");
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

/* One line: tag dev ino size mtime_s mtime_ns boot major.minor.patch path */
static int parse_entry(const char *line, struct bin_key *k, struct criu_version *v, char *path,
		       size_t plen)
{
	char tag[16];
	int off = 0;
	if (sscanf(line, "%15s %llu %llu %llu %lld %ld %63s %d.%d.%d %n", tag, &k->dev, &k->ino,
		   &k->size, &k->mtime_s, &k->mtime_ns, k->boot, &v->major, &v->minor, &v->patch,
		   &off) < 10 ||
	    strcmp(tag, CACHE_TAG) || off == 0)
		return -1;
	copy_line(path, plen, line + off);
	return path[0] ? 0 : -1;
}

static int same_key(const struct bin_key *a, const struct bin_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && !strcmp(a->boot, b->boot);
}

static int cache_lookup(const char *path, const struct bin_key *want, struct criu_version *v)
{
	char buf[CACHE_MAX_BYTES];
	if (cache_read(buf, sizeof(buf)) < 0)
		return -1;
	for (char *l = buf; l && *l;) {
		char *nl = strchr(l, '\n');
		struct bin_key k;
		char p[PATH_MAX];
		if (parse_entry(l, &k, v, p, sizeof(p)) == 0 && !strcmp(p, path) && same_key(&k, want))
			return 0;
		l = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* Best effort: a cache we cannot write only costs time. */
static void cache_store(const char *path, const struct bin_key *k, const struct criu_version *v)
{
	if (strchr(path, '\n') || strlen(path) >= PATH_MAX)
		return;
	char old[CACHE_MAX_BYTES], cp[PATH_MAX], tmp[PATH_MAX + 16];
	size_t next_len = CACHE_MAX_BYTES + PATH_MAX + 256, used = 0;
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
		struct bin_key ek;
		struct criu_version ev;
		char p[PATH_MAX];
		if (parse_entry(l, &ek, &ev, p, sizeof(p)) == 0 && strcmp(p, path)) {
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
	int n = snprintf(next + used, next_len - used, "%s %llu %llu %llu %lld %ld %s %d.%d.%d %s\n",
			 CACHE_TAG, k->dev, k->ino, k->size, k->mtime_s, k->mtime_ns, k->boot,
			 v->major, v->minor, v->patch, path);
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

/* Decides about one binary. On refusal, reason says why (one line). */
static int try_candidate(const char *path, struct criu_version *v, char *reason, size_t rlen,
			 int *missing)
{
	struct stat st;
	*missing = 0;
	if (stat(path, &st) < 0) {
		*missing = 1;
		say(reason, rlen, "%s: %s", path,
			 errno == ENOENT ? "does not exist" : strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		say(reason, rlen, "%s: not a regular file", path);
		return -1;
	}
	if (access(path, X_OK) < 0) {
		say(reason, rlen, "%s: not executable (%s)", path, strerror(errno));
		return -1;
	}
	struct bin_key key;
	int have_key = key_for(path, &key) == 0;
	if (have_key && cache_lookup(path, &key, v) == 0 && v->major >= FP_CRIU_MIN_MAJOR)
		return 0;

	fp_error e;
	fp_error_clear(&e);
	if (fp_criu_version(path, &v->major, &v->minor, &v->patch, &e) < 0) {
		say(reason, rlen, "%s: %s", path, e.msg);
		return -1;
	}
	if (v->major < FP_CRIU_MIN_MAJOR) {
		say(reason, rlen, "%s is version %d.%d.%d, need %d.x or later", path, v->major,
			 v->minor, v->patch, FP_CRIU_MIN_MAJOR);
		return -1;
	}

	char out[16384];
	fp_spawn_result res;
	fp_spawn_opts opts = {.timeout_ms = CHECK_TIMEOUT_MS};
	const char *argv[] = {path, "check", NULL};
	if (fp_spawn(argv, &opts, out, sizeof(out), &res, &e) < 0) {
		say(reason, rlen, "%s (version %d.%d.%d): `criu check` failed: %s", path,
			 v->major, v->minor, v->patch, e.msg);
		return -1;
	}
	if (res.exit_code != 0) {
		char summary[700];
		summarize_output(out, summary, sizeof(summary));
		say(reason, rlen, "%s (version %d.%d.%d): `criu check` failed (exit %d)%s: %s",
			 path, v->major, v->minor, v->patch, res.exit_code,
			 geteuid() ? ", and it must run as root" : "", summary);
		return -1;
	}
	if (have_key)
		cache_store(path, &key, v);
	return 0;
}

static int use_candidate(const char *cand, char *path, size_t len, fp_error *err)
{
	if (snprintf(path, len, "%s", cand) >= (int)len)
		return fp_fail(err, ENAMETOOLONG, "CRIU path too long: %s", cand);
	return 0;
}

int fp_criu_find(char *path, size_t len, fp_error *err)
{
	struct criu_version v;
	char reason[700];
	int missing;

	const char *env = getenv("FORKPOINT_CRIU");
	if (env && *env) {
		if (try_candidate(env, &v, reason, sizeof(reason), &missing) == 0)
			return use_candidate(env, path, len, err);
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, missing ? ENOENT : ENOEXEC,
				    "FORKPOINT_CRIU is set but refused: %s; point FORKPOINT_CRIU at a "
				    "CRIU 4.x binary that passes `criu check`, or unset it to use the "
				    "one `make setup` installs",
				    reason);
	}

	char prefixed[PATH_MAX];
	const char *prefix = getenv("FORKPOINT_CRIU_PREFIX");
	if (!prefix || !*prefix)
		prefix = FP_CRIU_DEFAULT_PREFIX;
	if (snprintf(prefixed, sizeof(prefixed), "%s/bin/criu", prefix) >= (int)sizeof(prefixed))
		return fp_fail(err, ENAMETOOLONG, "FORKPOINT_CRIU_PREFIX too long");

	char reasons[1200];
	size_t used = 0;
	int any_exists = 0;
#define ADD_REASON(...)                                                                    \
	do {                                                                               \
		if (used < sizeof(reasons)) {                                              \
			int n_ = snprintf(reasons + used, sizeof(reasons) - used, __VA_ARGS__); \
			if (n_ > 0)                                                        \
				used += (size_t)n_;                                        \
		}                                                                          \
	} while (0)

	if (try_candidate(prefixed, &v, reason, sizeof(reason), &missing) == 0)
		return use_candidate(prefixed, path, len, err);
	any_exists |= !missing;
	ADD_REASON("\n  - %s%s", reason, missing ? " (`make setup` creates it)" : "");

	char onpath[PATH_MAX];
	fp_error e;
	if (fp_which("criu", onpath, sizeof(onpath), &e) < 0) {
		ADD_REASON("\n  - no `criu` on PATH");
	} else {
		char a[PATH_MAX], b[PATH_MAX];
		int same = realpath(onpath, a) && realpath(prefixed, b) && !strcmp(a, b);
		if (!same) {
			any_exists = 1;
			if (try_candidate(onpath, &v, reason, sizeof(reason), &missing) == 0)
				return use_candidate(onpath, path, len, err);
			ADD_REASON("\n  - %s", reason);
		}
	}
#undef ADD_REASON
	return fp_fail_code(err, FP_EXIT_UNSUPPORTED, any_exists ? ENOEXEC : ENOENT,
			    "no usable CRIU 4.x found:%s\nrun `make setup` (it installs CRIU 4.x "
			    "under %s), or set FORKPOINT_CRIU to a CRIU 4.x binary",
			    reasons, prefix);
}
