/* Stack traces of stopped threads: a thread blocked in read() shows the libc
 * read and the program's own function; every thread of the 8-thread target
 * unwinds to something; the formatter prints the documented shape. */
#include "ptrace/ptrace.h"
#include "ptrace/stack.h"
#include "test_ptrace_util.h"

static int has_sym(const fp_frame *f, int n, const char *const *names)
{
	for (int i = 0; i < n; i++)
		for (const char *const *s = names; *s; s++)
			if (!strcmp(f[i].sym, *s))
				return 1;
	return 0;
}

int main(void)
{
	pt_child c;
	char line[512];
	fp_error err;
	fp_error_clear(&err);
	if (pt_spawn(&c, "pt_reader", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0);
	/* Wait until its main thread sits in read(): /proc/PID/syscall "0 ...". */
	int in_read = 0;
	double end = pt_now_us() + 10e6;
	while (!in_read && pt_now_us() < end) {
		char path[64], sc[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/syscall", c.pid);
		FILE *f = fopen(path, "r");
		if (f) {
			in_read = fgets(sc, sizeof(sc), f) && !strncmp(sc, "0 ", 2);
			fclose(f);
		}
	}
	CHECK(in_read);

	fp_pt_proc p;
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	fp_frame fr[FP_STACK_MAX_DEPTH];
	int n = 0;
	double t0 = pt_now_us();
	CHECKF(fp_stack_unwind(c.pid, c.pid, fr, FP_STACK_MAX_DEPTH, &n, &err) == 0, "%s", err.msg);
	double dt = pt_now_us() - t0;
	char text[8192];
	fp_stack_format(c.pid, c.pid, fr, n, text, sizeof(text));
	printf("%s(unwound %d frames in %.0f us)\n", text, n, dt);
	static const char *const reads[] = { "read", "__libc_read", "__GI___libc_read", "__read", "__read_nocancel", NULL };
	static const char *const mine[] = { "pt_reader_wait_input", NULL };
	static const char *const mains[] = { "main", NULL };
	CHECK(n >= 3);
	CHECK(has_sym(fr, n, reads));
	CHECK(has_sym(fr, n, mine));
	CHECK(has_sym(fr, n, mains));
	CHECK(strstr(text, "libc.so") != NULL);
	char head[64];
	snprintf(head, sizeof(head), "tid %d (pt_reader) state t:\n  #0  0x", c.pid);
	CHECKF(!strncmp(text, head, strlen(head)), "head: %.60s", text);
	CHECK(fp_pt_detach(&p, &err) == 0);
	CHECK(pt_send(&c, "y\n") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "got y"));
	CHECK(pt_finish(&c, 10000) == 0);

	/* Every thread of a busy multi-threaded target. */
	if (pt_spawn(&c, "pt_threads", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0);
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	int with_main = 0, with_fn = 0;
	for (size_t i = 0; i < p.nthreads; i++) {
		char buf[8192];
		fp_stack_describe(c.pid, p.threads[i].tid, buf, sizeof(buf));
		printf("%s", buf);
		with_main += strstr(buf, " main+") != NULL;
		with_fn += strstr(buf, "compute+") || strstr(buf, "futex_waiter+") || strstr(buf, "sleeper+") ||
			   strstr(buf, "reader+") || strstr(buf, "hash_round");
	}
	CHECK(with_main == 1);
	CHECKF(with_fn >= 6, "%d threads show their start function", with_fn);
	CHECK(fp_pt_detach(&p, &err) == 0);
	CHECK(pt_send(&c, "q") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ok ", 3));
	CHECK(pt_finish(&c, 10000) == 0);
	return fp_test_done();
}
