/* Who owns a network lock left in place (fp_netlock.h): a dump that kills
 * its tree leaves the lock of its TCP connections for the restore to lift,
 * and records here which snapshot it belongs to. A snapshot deleted without
 * a restore leaves rules nothing will lift: the next dump (fp_netlock_sweep)
 * deletes them, and says so. The records live in /run (a tmpfs): they go at
 * a reboot, with the rules. */
#include "fp_netlock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REG_DIR "/run/forkpoint/netlocks"
#define REG_MAX_CONNS 4096

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void reg_path(const char *dir, char *out, size_t len)
{
	snprintf(out, len, REG_DIR "/%016" PRIx64 ".lock", path_hash(dir));
}

int fp_netlock_record(const char *snapshot, const fp_tcp_conn *c, size_t n, fp_error *err)
{
	char abs[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
	struct stat st;
	if (!realpath(snapshot, abs) || stat(abs, &st))
		return fp_fail(err, errno, "cannot find the snapshot %s: %s", snapshot, strerror(errno));
	if ((mkdir("/run/forkpoint", 0700) && errno != EEXIST) || (mkdir(REG_DIR, 0700) && errno != EEXIST))
		return fp_fail(err, errno, "cannot create %s: %s", REG_DIR, strerror(errno));
	reg_path(abs, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return fp_fail(err, errno, "cannot create %s: %s", tmp, strerror(errno));
	fprintf(f, "forkpoint-netlock 1\n%s\n%ju %ju\n", abs, (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	for (size_t i = 0; i < n; i++) {
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
		inet_ntop(c[i].family, c[i].src, s, sizeof(s));
		inet_ntop(c[i].family, c[i].dst, d, sizeof(d));
		fprintf(f, "%s %u %s %u\n", s, c[i].sport, d, c[i].dport);
	}
	bool ok = !ferror(f);
	if (fclose(f) || !ok || rename(tmp, path)) {
		unlink(tmp);
		return fp_fail(err, errno ? errno : EIO, "cannot write %s", path);
	}
	return 0;
}

static bool parse_addr(const char *s, int *family, uint32_t *out)
{
	memset(out, 0, 16);
	*family = strchr(s, ':') ? AF_INET6 : AF_INET;
	return inet_pton(*family, s, out) == 1;
}

/* One record: its snapshot and connections. 0, or -1 if unreadable. */
static int read_record(const char *path, char *dir, size_t dlen, uintmax_t *dev, uintmax_t *ino, fp_tcp_conn **conns,
		       size_t *n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[PATH_MAX + 64];
	*conns = NULL, *n = 0;
	int rc = -1;
	if (!fgets(line, sizeof(line), f) || strcmp(line, "forkpoint-netlock 1\n") || !fgets(line, sizeof(line), f))
		goto out;
	line[strcspn(line, "\n")] = 0;
	snprintf(dir, dlen, "%s", line);
	if (!fgets(line, sizeof(line), f) || sscanf(line, "%ju %ju", dev, ino) != 2)
		goto out;
	while (fgets(line, sizeof(line), f) && *n < REG_MAX_CONNS) {
		char s[64], d[64];
		unsigned sp, dp;
		fp_tcp_conn c;
		memset(&c, 0, sizeof(c));
		int fd2;
		if (sscanf(line, "%63s %u %63s %u", s, &sp, d, &dp) != 4 || !parse_addr(s, &c.family, c.src) ||
		    !parse_addr(d, &fd2, c.dst) || fd2 != c.family || sp > 65535 || dp > 65535)
			goto out;
		c.sport = (uint16_t)sp, c.dport = (uint16_t)dp;
		fp_tcp_conn *a = realloc(*conns, (*n + 1) * sizeof(*a));
		if (!a)
			goto out;
		*conns = a;
		a[(*n)++] = c;
	}
	rc = 0;
out:
	fclose(f);
	if (rc) {
		free(*conns);
		*conns = NULL;
	}
	return rc;
}

int fp_netlock_sweep(char *names, size_t len, size_t *nconns)
{
	int freed = 0;
	*nconns = 0;
	if (len)
		names[0] = 0;
	DIR *d = opendir(REG_DIR);
	if (!d)
		return 0;
	struct dirent *e;
	size_t used = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".lock"))
			continue;
		char path[PATH_MAX], dir[PATH_MAX];
		snprintf(path, sizeof(path), REG_DIR "/%s", e->d_name);
		uintmax_t dev, ino;
		fp_tcp_conn *c;
		size_t n;
		if (read_record(path, dir, sizeof(dir), &dev, &ino, &c, &n)) {
			unlink(path); /* not ours to read: nothing can use it */
			continue;
		}
		struct stat st;
		if (stat(dir, &st) == 0 && (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino) {
			free(c); /* its snapshot may still be restored */
			continue;
		}
		size_t present = fp_netlock_count(c, n);
		fp_error err;
		if (present && fp_netlock(c, n, false, &err) == 0) {
			freed++;
			*nconns += n;
			if (used < len)
				used += (size_t)snprintf(names + used, len - used, "%s%s", used ? ", " : "", dir);
		}
		if (!present || fp_netlock_count(c, n) == 0)
			unlink(path);
		free(c);
	}
	closedir(d);
	return freed;
}
