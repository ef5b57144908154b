/* The shim's table equals /proc (zero disagreements from shim_check) for a
 * real process that opens, dups and closes files, pipes and sockets, maps and
 * unmaps files and anonymous memory, creates and joins threads, forks (the
 * child is checked too) and execs in every way (the exec'd program is checked
 * too, also after clearenv() and `env -i`, and with hand-made empty
 * environments). */
#include "test_shim_common.h"

static int checks_of(pid_t pid, const char *label)
{
	int n = shim_disagreements(pid, label);
	CHECKF(n == 0, "%s: %d disagreements between the table and /proc", label, n);
	return n;
}

/* After an exec or spawn: the new program's ready line says it runs under
 * the shim with our variables, and its table agrees with /proc. */
static void check_ready_line(const char *line, const char *label, pid_t *pid_out)
{
	int pid = 0, pre = 0, var = 0;
	char sess[64] = "";
	int n = sscanf(line, "ready %d preload=%d shimvar=%d session=%63s", &pid, &pre, &var, sess);
	CHECKF(n == 4, "%s: unexpected line \"%s\"", label, line);
	CHECKF(pre == 1, "%s: LD_PRELOAD lost the shim", label);
	CHECKF(var == 1, "%s: FORKPOINT_SHIM lost", label);
	CHECKF(!strcmp(sess, "shim-test"), "%s: FORKPOINT_SESSION is \"%s\"", label, sess);
	*pid_out = pid;
}

int main(void)
{
	struct tgt t;
	char line[512];
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	pid_t p0;
	check_ready_line(line, "start", &p0);
	CHECK(p0 == t.pid);
	checks_of(t.pid, "start");

	static const char *const steps[] = {"files", "stdio",     "pipes", "sockets", "anon",
					    "maps",  "threads 6", "unthreads", "cleanup"};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECKF(tgt_cmd(&t, steps[i], NULL, 0) == 0, "command %s", steps[i]);
		checks_of(t.pid, steps[i]);
	}
	/* the checker sees what happens behind the shim's back */
	CHECK(tgt_cmd(&t, "raw", NULL, 0) == 0);
	unsigned kinds = 0;
	fprintf(stderr, "(the next disagreements are expected)\n");
	int nraw = shim_disagreements_kinds(t.pid, "raw", &kinds);
	CHECKF(nraw >= 5, "only %d disagreements after raw calls", nraw);
	static const enum fp_shim_dis_kind want[] = {FP_DIS_FD_MISSING, FP_DIS_FD_CLOEXEC,
						     FP_DIS_FD_STALE, FP_DIS_MAP_MISSING,
						     FP_DIS_MAP_PROT};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECKF(kinds & (1u << want[i]), "raw calls: no %s reported",
		       fp_shim_dis_kind_name(want[i]));
	CHECK(tgt_cmd(&t, "unraw", NULL, 0) == 0);
	checks_of(t.pid, "unraw");

	/* again, so that the table holds everything at once */
	for (size_t i = 0; i < 6; i++)
		CHECKF(tgt_cmd(&t, steps[i], NULL, 0) == 0, "command %s", steps[i]);
	CHECK(tgt_cmd(&t, "threads 4", NULL, 0) == 0);
	checks_of(t.pid, "all at once");

	/* fork: the child has its own table, with its own pid and one thread */
	char reply[128];
	CHECK(tgt_cmd(&t, "fork", reply, sizeof(reply)) == 0);
	int child = 0;
	CHECK(sscanf(reply, "ok %d", &child) == 1 && child > 0);
	if (child > 0) {
		struct fp_shim_copy c;
		if (read_table(child, &c) == 0) {
			CHECKF(c.t->pid == child, "child table pid %d", c.t->pid);
			CHECKF(c.t->thread_count == 1 && c.t->threads[0].tid == child,
			       "child table has %u threads", c.t->thread_count);
			fp_shim_copy_free(&c);
		}
		checks_of(child, "fork child");
	}
	checks_of(t.pid, "fork parent");
	CHECK(tgt_cmd(&t, "reap", NULL, 0) == 0);
	CHECK(tgt_cmd(&t, "unthreads", NULL, 0) == 0);

	/* spawned copies with an empty environment */
	static const char *const spawns[] = {"posix_spawn", "posix_spawnp", "vfork", "fork"};
	for (size_t i = 0; i < sizeof(spawns) / sizeof(spawns[0]); i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "spawn %s", spawns[i]);
		CHECK(tgt_send(&t, cmd) == 0);
		pid_t sp = 0;
		if (tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0) {
			check_ready_line(line, cmd, &sp);
			if (sp > 0)
				checks_of(sp, cmd);
		} else {
			CHECKF(0, "%s: no ready line", cmd);
		}
		CHECKF(tgt_cmd(&t, "spawn-exit", NULL, 0) == 0, "%s exit", cmd);
		checks_of(t.pid, "after spawn");
	}

	/* exec in every way; each new image runs the command loop again */
	static const char *const execs[] = {"execv",   "clearenv", "empty",   "envi",
					    "execl",   "execle",   "execlp",  "execvp",
					    "execvpe", "fexecve",  "execveat"};
	for (size_t i = 0; i < sizeof(execs) / sizeof(execs[0]); i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "exec %s", execs[i]);
		CHECK(tgt_send(&t, cmd) == 0);
		if (tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) != 0) {
			CHECKF(0, "%s: no ready line", cmd);
			break;
		}
		pid_t ep = 0;
		check_ready_line(line, cmd, &ep);
		CHECKF(ep == t.pid, "%s: exec'd program runs as %d, not %d", cmd, (int)ep,
		       (int)t.pid);
		checks_of(t.pid, cmd);
		/* the exec'd program works under the shim as before */
		CHECK(tgt_cmd(&t, "files", NULL, 0) == 0);
		CHECK(tgt_cmd(&t, "maps", NULL, 0) == 0);
		checks_of(t.pid, "after exec, files+maps");
	}

	CHECK(tgt_finish(&t, true) == 0);
	return fp_test_done();
}
