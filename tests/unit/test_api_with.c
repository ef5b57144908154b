/* The calls of version 0.2 of include/forkpoint.h from C, linked
 * statically (so they run under ASan+UBSan too): option handles and their
 * range errors, forkpoint_info's readers, and snap/list/gc/cleanup by name
 * on a real shell session. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_test.h"
#include "include/forkpoint.h"

static void test_options(void)
{
	forkpoint_error e;
	forkpoint_dump_options *d;
	CHECK(forkpoint_dump_options_new(0, "/tmp/x", &d, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECKF(forkpoint_dump_options_new(getpid(), "/tmp/fp-api-with-never", &d, &e) == 0, "%s", e.message);
	CHECK(forkpoint_dump_options_set(d, FORKPOINT_DUMP_OPT_ZSTD_LEVEL, 0, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECKF(strstr(e.message, "-7..-1 or 1..19") != NULL, "%s", e.message);
	CHECK(forkpoint_dump_options_set(d, FORKPOINT_DUMP_OPT_PAGES, 4, &e) == -1);
	CHECK(forkpoint_dump_options_set(d, 999, 1, &e) == -1 && strstr(e.message, "FORKPOINT_DUMP_OPT_"));
	CHECK(forkpoint_dump_options_set(d, FORKPOINT_DUMP_OPT_THREADS, 2, &e) == 0);
	CHECK(forkpoint_dump_options_set_str(d, FORKPOINT_DUMP_OPT_LOG, "/tmp/fp-api-with.log", &e) == 0);
	CHECK(forkpoint_dump_options_set_str(d, FORKPOINT_DUMP_OPT_THREADS, "x", &e) == -1);
	forkpoint_dump_options_free(d);

	forkpoint_restore_options *r;
	CHECK(forkpoint_restore_options_new("", &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECKF(forkpoint_restore_options_new("/nonexistent/fp-img", &r, &e) == 0, "%s", e.message);
	CHECK(forkpoint_restore_options_set(r, FORKPOINT_RESTORE_OPT_FLAGS,
					    FORKPOINT_RESTORE_NATIVE | FORKPOINT_RESTORE_CRIU, &e) == -1);
	CHECK(forkpoint_restore_options_set(r, FORKPOINT_RESTORE_OPT_FLAGS, 1 << 20, &e) == -1);
	CHECK(forkpoint_restore_options_set(r, FORKPOINT_RESTORE_OPT_VERBOSITY, 5, &e) == -1);
	CHECK(forkpoint_restore_options_set_str(r, FORKPOINT_RESTORE_OPT_CRIU_FLAG, "file-locks", &e) == -1);
	CHECK(forkpoint_restore_options_set_str(r, FORKPOINT_RESTORE_OPT_CRIU_FLAG, "--file-locks", &e) == 0);
	forkpoint_info *i = (forkpoint_info *)1;
	CHECK(forkpoint_restore_with(r, &i, &e) == -1 && i == NULL && strstr(e.message, "/nonexistent/fp-img"));
	forkpoint_restore_options_free(r);
	CHECK(forkpoint_decompress("/nonexistent/fp-img", FORKPOINT_DECOMPRESS_VERIFY, &e) == -1 && e.message[0]);

	/* a NULL info reads as empty */
	CHECK(!strcmp(forkpoint_info_get(NULL, "x"), "") && forkpoint_info_int(NULL, "x") == 0);
	CHECK(forkpoint_info_items(NULL) == 0 && forkpoint_info_item(NULL, 0) == NULL);
	forkpoint_info_free(NULL);
}

static void test_session(void)
{
	forkpoint_error e;
	forkpoint_session *s;
	CHECKF(forkpoint_session_create("api-w", NULL, FORKPOINT_SESSION_SHELL, NULL, &s, &e) == 0, "%s", e.message);
	if (!s)
		return;
	forkpoint_info *r;
	CHECK(forkpoint_session_snap_with(s, "a", FORKPOINT_HOT_MAX + 1, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECKF(forkpoint_session_snap_with(s, "a", 0, &r, &e) == 0, "%s", e.message);
	CHECK(!strcmp(forkpoint_info_get(r, "name"), "a") && forkpoint_info_int(r, "processes") >= 1);
	CHECK(forkpoint_info_double(r, "pause_ms") > 0 && forkpoint_info_get(r, "phases")[0]);
	size_t n = forkpoint_info_size(r), seen = 0;
	for (size_t k = 0; k < n; k++)
		seen += !strcmp(forkpoint_info_key(r, k), "dir") &&
			!strcmp(forkpoint_info_value(r, k), forkpoint_info_get(r, "dir"));
	CHECK(n > 5 && seen == 1 && !strcmp(forkpoint_info_key(r, n), ""));
	forkpoint_info_free(r);

	CHECKF(forkpoint_snapshots_with("api-w", FORKPOINT_SNAPSHOTS_VERIFY, &r, &e) == 0, "%s", e.message);
	CHECK(forkpoint_info_items(r) == 1 && !strcmp(forkpoint_info_get(forkpoint_info_item(r, 0), "name"), "a"));
	CHECK(forkpoint_info_int(forkpoint_info_item(r, 0), "damaged") == 0);
	forkpoint_info_free(r);

	CHECKF(forkpoint_gc("api-w", &r, &e) == 0, "%s", e.message);
	CHECK(forkpoint_info_items(r) == 1 && !forkpoint_info_get(forkpoint_info_item(r, 0), "error")[0]);
	forkpoint_info_free(r);
	CHECK(forkpoint_session_diff("api-w", "a", "a", &r, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
	CHECKF(strstr(e.message, "no workspace") != NULL, "%s", e.message);

	pid_t pid = forkpoint_session_pid(s);
	forkpoint_session_close(s);
	CHECKF(forkpoint_cleanup("api-w", 0, &r, &e) == 0, "%s", e.message);
	CHECK(forkpoint_info_int(r, "helper_killed") == 0);
	forkpoint_info_free(r);
	CHECK(kill(pid, 0) == -1 && errno == ESRCH);
	CHECK(forkpoint_cleanup("api-w", 0, NULL, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
}

int main(void)
{
	char home[] = "/tmp/fp-apiw.XXXXXX", shim[PATH_MAX], real[PATH_MAX];
	if (!mkdtemp(home))
		SKIP("mkdtemp: %s", strerror(errno));
	setenv("FORKPOINT_HOME", home, 1);
	if (!realpath(fp_test_build_path(shim, sizeof(shim), "lib/libforkpoint-preload.so"), real))
		SKIP("no shim at %s: run make all first", shim);
	setenv("FORKPOINT_SHIM", real, 1);
	test_options();
	test_session();
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", home);
	return fp_test_done();
}
