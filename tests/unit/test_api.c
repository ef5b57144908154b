/* include/forkpoint.h from C, linked statically (so it also runs under
 * ASan+UBSan, where libforkpoint.so is not built): argument errors, a shell
 * session driven through the streaming exec (argv form, stdin, callback),
 * snap/verify/restore/list/rm, branch's answer, cleanup. The Python tests
 * (python/tests) cover the same calls through libforkpoint.so. */
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
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", home);
	return fp_test_done();
}
