/* include/forkpoint.h from C, linked statically (so it also runs under
 * ASan+UBSan, where libforkpoint.so is not built): argument errors, a shell
 * session driven through the streaming exec (argv form, stdin, callback),
 * snap/verify/restore/list/rm, branch's answer, cleanup; and the calls of
 * version 0.2: option handles and their range errors, forkpoint_info's
 * readers, snap/list/gc/cleanup by name; and of version 0.3: config,
 * doctor, and the argument errors of build and the job calls (the command's
 * e2e tests run them for real). The Python tests (python/tests)
 * cover the same calls through libforkpoint.so. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_test.h"
#include "include/forkpoint.h"

struct sink {
	char out[256], err[256];
	size_t no, ne;
};

static void collect(void *arg, int stream, const char *data, size_t len)
{
	struct sink *k = arg;
	char *b = stream == 1 ? k->out : k->err;
	size_t *n = stream == 1 ? &k->no : &k->ne;
	if (*n + len < sizeof(k->out)) {
		memcpy(b + *n, data, len);
		*n += len;
		b[*n] = '\0';
	}
}

static void test_bad_arguments(void)
{
	forkpoint_error e;
	forkpoint_session *s;
	char *argv[] = { "true", NULL };
	CHECK(forkpoint_session_create(NULL, NULL, FORKPOINT_SESSION_SHELL, argv, &s, &e) == -1);
	CHECK(e.code == FORKPOINT_EINVAL && strstr(e.message, "bash itself"));
	CHECK(forkpoint_session_create(NULL, NULL, 0, NULL, &s, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECK(forkpoint_session_open("api-none", &s, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
	CHECKF(strstr(e.message, "api-none") != NULL, "%s", e.message);
	CHECK(forkpoint_verify("/nonexistent/api-img", &e) == -1 && e.message[0]);
	CHECK(forkpoint_dump(0, "/tmp/x", 0, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECK(!strcmp(forkpoint_version(), FORKPOINT_VERSION));
}

static void test_session(void)
{
	forkpoint_error e;
	forkpoint_session *s;
	CHECKF(forkpoint_session_create("api-s", NULL, FORKPOINT_SESSION_SHELL, NULL, &s, &e) == 0, "%s", e.message);
	if (!s)
		return;
	CHECK(!strcmp(forkpoint_session_name(s), "api-s") && forkpoint_session_pid(s) > 0);

	forkpoint_exec_result r;
	CHECKF(forkpoint_session_exec(s, "n=5; echo out; echo err >&2; (exit 4)", 0, &r, &e) == 0, "%s", e.message);
	CHECK(r.exit_code == 4 && r.stdout_len == 4 && !strcmp(r.stdout_data, "out\n"));
	CHECK(r.stderr_data && !strcmp(r.stderr_data, "err\n"));
	forkpoint_exec_result_release(&r);

	/* argv form, stdin from a pipe, output streamed to a callback */
	int in[2];
	CHECK(pipe(in) == 0);
	CHECK(write(in[1], "piped\n", 6) == 6);
	close(in[1]);
	char *cat[] = { "cat", NULL };
	struct sink k = { .no = 0 };
	forkpoint_exec_options o;
	forkpoint_exec_options_init(&o);
	o.argv = cat;
	o.stdin_fd = in[0];
	o.output = collect;
	o.output_arg = &k;
	CHECKF(forkpoint_session_exec_with(s, &o, &r, &e) == 0, "%s", e.message);
	CHECKF(r.exit_code == 0 && !strcmp(k.out, "piped\n") && !r.stdout_data, "exit %d out '%s'", r.exit_code, k.out);
	close(in[0]);
	o.command = "true"; /* both a command and an argv */
	CHECK(forkpoint_session_exec_with(s, &o, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);

	forkpoint_snap_result sr;
	CHECKF(forkpoint_session_snap(s, "a", &sr, &e) == 0, "%s", e.message);
	CHECK(!strcmp(sr.name, "a") && sr.processes >= 1 && sr.pages > 0);
	CHECKF(forkpoint_verify(sr.dir, &e) == 0, "%s", e.message);
	CHECK(forkpoint_session_snap(s, "a", NULL, &e) == -1); /* exists */
	CHECK(forkpoint_session_exec(s, "n=6", 0, &r, &e) == 0);
	forkpoint_exec_result_release(&r);

	forkpoint_restore_result rr;
	CHECKF(forkpoint_session_restore(s, "a", &rr, &e) == 0, "%s", e.message);
	CHECK(rr.pid == forkpoint_session_pid(s) && rr.engine[0]);
	CHECK(forkpoint_session_exec(s, "echo $n", 0, &r, &e) == 0 && r.stdout_data && !strcmp(r.stdout_data, "5\n"));
	forkpoint_exec_result_release(&r);
	CHECK(forkpoint_session_restore(s, "zz", NULL, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);

	forkpoint_session *b[2];
	/* A shell session branches (as root: namespaces); each branch is a shell
	 * session in the snapshot's state. Without the session library's
	 * branch: unavailable. */
	int brc = forkpoint_session_branch(s, "a", 2, b, &e);
	if (brc == -1 && e.code == FORKPOINT_EUNAVAILABLE) {
		CHECK(strstr(e.message, "not available in this build") != NULL);
	} else if (geteuid() == 0) {
		CHECKF(brc == 0, "%s", e.message);
		for (int i = 0; brc == 0 && i < 2; i++) {
			CHECK(forkpoint_session_exec(b[i], "echo $n", 0, &r, &e) == 0 && r.stdout_data &&
			      !strcmp(r.stdout_data, "5\n"));
			forkpoint_exec_result_release(&r);
			CHECKF(forkpoint_session_cleanup(b[i], &e) == 0, "%s", e.message);
			forkpoint_session_close(b[i]);
		}
	} else {
		CHECK(brc == -1);
	}
	CHECK(forkpoint_session_branch(s, "a", 0, b, &e) == -1 && e.code == FORKPOINT_EINVAL);

	forkpoint_snapshot *l;
	CHECK(forkpoint_session_snapshots(s, &l, &e) == 1 && !strcmp(l[0].name, "a") && !l[0].damaged);
	forkpoint_snapshots_free(l);
	CHECKF(forkpoint_session_rm(s, "a", &e) == 0, "%s", e.message);
	CHECK(forkpoint_session_snapshots(s, &l, &e) == 0);
	forkpoint_snapshots_free(l);

	pid_t pid = forkpoint_session_pid(s);
	CHECKF(forkpoint_session_cleanup(s, &e) == 0, "%s", e.message);
	CHECK(kill(pid, 0) == -1 && errno == ESRCH);
	CHECK(forkpoint_session_stop(s, 0, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
	forkpoint_session_close(s);
	CHECK(forkpoint_session_open("api-s", &s, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
}

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

static void test_session_with(void)
{
	forkpoint_error e;
	forkpoint_session *s;
	CHECKF(forkpoint_session_create("api-w", NULL, FORKPOINT_SESSION_SHELL, NULL, &s, &e) == 0, "%s", e.message);
	if (!s)
		return;
	forkpoint_info *r;
	CHECK(forkpoint_session_snap_with(s, "a", FORKPOINT_HOT_MAX + 1, 0, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECKF(forkpoint_session_snap_with(s, "a", 0, 0, &r, &e) == 0, "%s", e.message);
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

/* Version 0.3: the settings as the caller's environment gives them, a
 * refused CRIU named, and errors that say what is wrong. */
static void test_v03(const char *home)
{
	forkpoint_error e;
	forkpoint_info *r;
	CHECKF(forkpoint_config(NULL, &r, &e) == 0, "%s", e.message);
	int seen_home = 0;
	for (size_t i = 0; i < forkpoint_info_items(r); i++) {
		const forkpoint_info *it = forkpoint_info_item(r, i);
		CHECK(forkpoint_info_get(it, "meaning")[0] && forkpoint_info_get(it, "env")[0]);
		if (!strcmp(forkpoint_info_get(it, "key"), "home")) {
			seen_home = 1;
			CHECKF(!strcmp(forkpoint_info_get(it, "value"), home), "%s", forkpoint_info_get(it, "value"));
			CHECK(!strcmp(forkpoint_info_get(it, "source"), "FORKPOINT_HOME"));
		}
	}
	CHECK(seen_home && forkpoint_info_items(r) >= 5);
	forkpoint_info_free(r);
	CHECK(forkpoint_config("criu_probe_timeout", &r, &e) == 0 && forkpoint_info_int(r, "set") == 0 &&
	      !strcmp(forkpoint_info_get(r, "source"), "default") && forkpoint_info_items(r) == 0);
	forkpoint_info_free(r);
	r = (forkpoint_info *)1;
	CHECK(forkpoint_config("hoem", &r, &e) == -1 && e.code == FORKPOINT_EINVAL && r == NULL);
	CHECKF(strstr(e.message, "hoem") && strstr(e.message, "criu_prefix"), "%s", e.message);

	char *old = getenv("FORKPOINT_CRIU") ? strdup(getenv("FORKPOINT_CRIU")) : NULL;
	setenv("FORKPOINT_CRIU", "/nonexistent/criu", 1);
	CHECKF(forkpoint_doctor(0, &r, &e) == 0, "%s", e.message);
	CHECK(forkpoint_info_get(r, "criu")[0] == '\0' && forkpoint_info_items(r) == 1);
	const forkpoint_info *c = forkpoint_info_item(r, 0);
	CHECK(c && forkpoint_info_int(c, "usable") == 0 && forkpoint_info_int(c, "exists") == 0 &&
	      !strcmp(forkpoint_info_get(c, "source"), "FORKPOINT_CRIU"));
	CHECKF(c && strstr(forkpoint_info_get(c, "why"), "does not exist"), "%s", forkpoint_info_get(c, "why"));
	forkpoint_info_free(r);
	CHECK(forkpoint_doctor(FORKPOINT_DOCTOR_REQUIRE, &r, &e) == -1 && e.code == FORKPOINT_EUNSUPPORTED);
	CHECKF(strstr(e.message, "/nonexistent/criu") != NULL, "%s", e.message);
	CHECK(forkpoint_doctor(1u << 9, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	if (old)
		setenv("FORKPOINT_CRIU", old, 1);
	else
		unsetenv("FORKPOINT_CRIU");
	free(old);

	CHECK(forkpoint_build(NULL, NULL, NULL, NULL, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECK(forkpoint_build("/nonexistent/ctx", NULL, NULL, NULL, &r, &e) == -1 &&
	      e.code == (geteuid() ? FORKPOINT_EPERM : FORKPOINT_ENOTFOUND));
	CHECK(forkpoint_job_foreground(0, &r, &e) == -1 && e.code == FORKPOINT_EINVAL);
	CHECK(forkpoint_job_foreground(0x3ffffff0, &r, &e) == -1 && e.code == FORKPOINT_ENOTFOUND);
	/* With no child, a keeper has nothing to keep: it returns at once. */
	CHECKF(forkpoint_job_keep(-1, &e) == 0, "%s", e.message);
}

int main(void)
{
	char home[] = "/tmp/fp-api.XXXXXX", shim[PATH_MAX], real[PATH_MAX];
	if (!mkdtemp(home))
		SKIP("mkdtemp: %s", strerror(errno));
	setenv("FORKPOINT_HOME", home, 1);
	/* this test program is not installed next to the shim */
	if (!realpath(fp_test_build_path(shim, sizeof(shim), "lib/libforkpoint-preload.so"), real))
		SKIP("no shim at %s: run make all first", shim);
	setenv("FORKPOINT_SHIM", real, 1);
	test_bad_arguments();
	test_session();
	test_options();
	test_session_with();
	test_v03(home);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", home);
	return fp_test_done();
}
