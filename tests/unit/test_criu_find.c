/* fp_criu_find against the CRIUs really on this machine: the one `make setup`
 * provisions, Debian 12's 3.17 (too old, fails `criu check` here), and small
 * shell wrappers around the real 4.x that count or redirect its runs. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu.h"
#include "fp_test.h"

static char tmpdir[] = "/tmp/fp-criu-find.XXXXXX";
static char good[4096]; /* the working CRIU this machine has */

static void unset_all(void)
{
	unsetenv("FORKPOINT_CRIU");
	unsetenv("FORKPOINT_CRIU_PREFIX");
}

static void write_script(const char *path, const char *body)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		CHECKF(0, "cannot write %s", tmp);
		return;
	}
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(tmp, 0755);
	/* A new inode each time: the cache must notice the binary changed. */
	rename(tmp, path);
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_finds_setup_criu(void)
{
	char path[4096];
	fp_error err;
	fp_error_clear(&err);
	unset_all();
	CHECKF(fp_criu_find(path, sizeof(path), &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(path, good), "found %s, expected %s", path, good);
	int maj = 0, min = -1, pat = -1;
	CHECKF(fp_criu_version(path, &maj, &min, &pat, &err) == 0, "%s", err.msg);
	CHECKF(maj >= 4 && min >= 0 && pat >= 0, "version %d.%d.%d", maj, min, pat);

	/* The verdict is cached under FORKPOINT_HOME, and a second look agrees. */
	char cache[4200], buf[8192] = "";
	snprintf(cache, sizeof(cache), "%s/criu-check.cache", tmpdir);
	FILE *f = fopen(cache, "r");
	CHECKF(f != NULL, "no cache file %s", cache);
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		struct stat st;
		CHECK(stat(cache, &st) == 0 && (st.st_mode & 077) == 0);
	}
	CHECKF(strstr(buf, good) != NULL, "cache does not mention %s:\n%s", good, buf);
	char again[4096];
	CHECKF(fp_criu_find(again, sizeof(again), &err) == 0 && !strcmp(again, good), "%s", err.msg);

	/* FORKPOINT_CRIU_PREFIX names the setup prefix explicitly. */
	char prefix[4096];
	snprintf(prefix, sizeof(prefix), "%s", good);
	char *tail = strstr(prefix, "/bin/criu");
	if (tail && !strcmp(tail, "/bin/criu")) {
		*tail = '\0';
		setenv("FORKPOINT_CRIU_PREFIX", prefix, 1);
		CHECKF(fp_criu_find(again, sizeof(again), &err) == 0 && !strcmp(again, good), "%s",
		       err.msg);
		unset_all();
	}
}

static void test_honours_forkpoint_criu(void)
{
	char path[4096];
	fp_error err;
	fp_error_clear(&err);
	setenv("FORKPOINT_CRIU", good, 1);
	CHECKF(fp_criu_find(path, sizeof(path), &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(path, good), "found %s", path);

	/* A wrapper of our own around the real CRIU: chosen by path, not resolved. */
	char wrap[4200], body[8600], log[4200];
	snprintf(wrap, sizeof(wrap), "%s/my-criu", tmpdir);
	snprintf(log, sizeof(log), "%s/runs.log", tmpdir);
	snprintf(body, sizeof(body), "echo \"$1\" >>'%s'\nexec '%s' \"$@\"", log, good);
	write_script(wrap, body);
	setenv("FORKPOINT_CRIU", wrap, 1);
	CHECKF(fp_criu_find(path, sizeof(path), &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(path, wrap), "found %s", path);
	int first = count_lines(log);
	CHECKF(first == 4, "expected `--version`, `check`, `dump` and `restore`, got %d runs", first);
	/* Cached: the second look runs nothing. */
	CHECKF(fp_criu_find(path, sizeof(path), &err) == 0, "%s", err.msg);
	CHECKF(count_lines(log) == first, "cache not used: %d runs", count_lines(log));

	/* Same path, changed binary: the cache no longer applies. Here the new
	 * one makes the real CRIU's check fail. */
	snprintf(body, sizeof(body),
		 "echo \"$1\" >>'%s'\n"
		 "if [ \"$1\" = check ]; then exec '%s' check --feature no-such-feature; fi\n"
		 "exec '%s' \"$@\"",
		 log, good, good);
	write_script(wrap, body);
	CHECK(fp_criu_find(path, sizeof(path), &err) < 0);
	CHECKF(count_lines(log) == first + 2, "changed binary not re-checked: %d runs",
	       count_lines(log));
	CHECKF(strstr(err.msg, "FORKPOINT_CRIU") && strstr(err.msg, wrap) &&
		       strstr(err.msg, "`criu check` failed") && strstr(err.msg, "no-such-feature"),
	       "%s", err.msg);
	unset_all();
}

static void test_refuses_missing_forkpoint_criu(void)
{
	char path[4096];
	fp_error err;
	fp_error_clear(&err);
	setenv("FORKPOINT_CRIU", "/nonexistent-fp/criu", 1);
	CHECK(fp_criu_find(path, sizeof(path), &err) < 0);
	CHECKF(strstr(err.msg, "FORKPOINT_CRIU") && strstr(err.msg, "/nonexistent-fp/criu") &&
		       strstr(err.msg, "does not exist"),
	       "%s", err.msg);
	/* An explicit choice is never silently swapped for another CRIU. */
	CHECKF(strstr(err.msg, good) == NULL || strstr(good, "/nonexistent-fp") != NULL, "%s",
	       err.msg);
	unset_all();
}

static void test_refuses_debian12_criu(void)
{
	const char *old = "/usr/sbin/criu";
	int maj = 0, min = 0, pat = 0;
	fp_error err;
	fp_error_clear(&err);
	if (access(old, X_OK) < 0 || fp_criu_version(old, &maj, &min, &pat, &err) < 0 || maj >= 4) {
		printf("note: %s is not an old CRIU here; old-version checks skipped\n", old);
		return;
	}
	char want[64], path[4096];
	snprintf(want, sizeof(want), "version %d.%d.%d, need 4.x", maj, min, pat);

	setenv("FORKPOINT_CRIU", old, 1);
	CHECK(fp_criu_find(path, sizeof(path), &err) < 0);
	CHECKF(strstr(err.msg, old) && strstr(err.msg, want), "%s", err.msg);
	CHECK(err.exit_code == FP_EXIT_UNSUPPORTED);
	unset_all();

	/* No FORKPOINT_CRIU, no provisioned prefix, only the old one on PATH:
	 * every candidate is listed with its reason, then the fix. */
	char *saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	setenv("FORKPOINT_CRIU_PREFIX", "/nonexistent-fp-prefix", 1);
	setenv("PATH", "/usr/sbin:/usr/bin:/bin", 1);
	CHECK(fp_criu_find(path, sizeof(path), &err) < 0);
	CHECKF(strstr(err.msg, "/nonexistent-fp-prefix/bin/criu: does not exist") &&
		       strstr(err.msg, want) && strstr(err.msg, "make setup") &&
		       strstr(err.msg, "FORKPOINT_CRIU"),
	       "%s", err.msg);
	if (saved_path)
		setenv("PATH", saved_path, 1);
	free(saved_path);
	unset_all();
}

static void test_not_a_criu(void)
{
	int maj;
	fp_error err;
	fp_error_clear(&err);
	CHECK(fp_criu_version("/bin/true", &maj, NULL, NULL, &err) < 0);
	CHECKF(strstr(err.msg, "no CRIU version"), "%s", err.msg);
	CHECK(fp_criu_version("/nonexistent-fp/criu", &maj, NULL, NULL, &err) < 0);
	CHECK(err.errnum == ENOENT);
}

/* As if started by a daemon: SIGCHLD ignored, every signal blocked. */
static void test_hostile_caller(void)
{
	char path[4096];
	fp_error err;
	fp_error_clear(&err);
	/* A fresh cache, so the checks really run. */
	char cache[4200];
	snprintf(cache, sizeof(cache), "%s/criu-check.cache", tmpdir);
	unlink(cache);
	signal(SIGCHLD, SIG_IGN);
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	int rc = fp_criu_find(path, sizeof(path), &err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGCHLD, SIG_DFL);
	CHECKF(rc == 0 && !strcmp(path, good), "%s", err.msg);
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("`criu check` needs root");
	if (!mkdtemp(tmpdir))
		SKIP("cannot create a temporary directory");
	/* A private cache, so this run proves the checks rather than trusting
	 * an earlier verdict. */
	setenv("FORKPOINT_HOME", tmpdir, 1);
	unset_all();

	fp_error err;
	if (fp_criu_find(good, sizeof(good), &err) < 0) {
		/* `make check` runs setup first, so this means setup is broken. */
		fprintf(stderr, "%s\n", err.msg);
		CHECKF(0, "no working CRIU 4.x after `make setup`");
		return fp_test_done();
	}
	printf("working CRIU: %s\n", good);
	const char *setup_criu = FP_CRIU_DEFAULT_PREFIX "/bin/criu";
	if (access(setup_criu, X_OK) == 0)
		CHECKF(!strcmp(good, setup_criu), "found %s although setup's %s exists", good,
		       setup_criu);

	test_finds_setup_criu();
	test_honours_forkpoint_criu();
	test_refuses_missing_forkpoint_criu();
	test_refuses_debian12_criu();
	test_not_a_criu();
	test_hostile_caller();

	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "note: could not remove %s\n", tmpdir);
	return fp_test_done();
}
