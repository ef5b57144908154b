/* Zombie children: exited, not yet reaped by their parent (a dumped
 * process). They have no memory, files or threads left, only their place in
 * the tree and their exit status, which the parent has yet to collect with
 * wait(). As CRIU does, each is a pstree entry and a core image whose task
 * state is TASK_DEAD and whose exit_code is the status as waitpid would
 * report it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump_int.h"
#include "procfs.h"
#include "images/criu_io.h"

struct dump_zombie {
	pid_t pid, ppid, pgid, sid;
	int exit_code;
	char comm[16];
};

int dump_add_zombie(struct dump_ctx *c, const struct fp_proc_stat *st, pid_t ppid, fp_error *err)
{
	struct dump_zombie *n = realloc(c->zombies, (c->nzombies + 1) * sizeof(*n));
	if (!n)
		return fp_fail(err, ENOMEM, "out of memory");
	c->zombies = n;
	struct dump_zombie *z = &n[c->nzombies++];
	memset(z, 0, sizeof(*z));
	z->pid = st->pid;
	z->ppid = ppid;
	z->pgid = st->pgrp;
	z->sid = st->session;
	z->exit_code = st->exit_code;
	snprintf(z->comm, sizeof(z->comm), "%s", st->comm);
	dlog(c, "%d: child %d (%s) is a zombie, exit status %#x", (int)ppid, (int)z->pid, z->comm, z->exit_code);
	return 0;
}

size_t dump_zombie_count(const struct dump_ctx *c)
{
	return c->nzombies;
}

int dump_write_zombies(struct dump_ctx *c, cr_pstree *ps, fp_error *err)
{
	for (size_t i = 0; i < c->nzombies; i++) {
		const struct dump_zombie *z = &c->zombies[i];
		ps[i] = (cr_pstree){ .pid = (uint32_t)z->pid, .ppid = (uint32_t)z->ppid, .pgid = (uint32_t)z->pgid,
				     .sid = (uint32_t)z->sid, .n_threads = 1 };
		ps[i].threads = malloc(sizeof(uint32_t));
		if (!ps[i].threads)
			return fp_fail(err, ENOMEM, "out of memory");
		ps[i].threads[0] = (uint32_t)z->pid;
		cr_core core;
		memset(&core, 0, sizeof(core));
		core.mtype = CR_MARCH_X86_64;
		core.has_tc = true;
		core.tc.task_state = CR_TASK_DEAD;
		core.tc.exit_code = (uint32_t)z->exit_code;
		snprintf(core.tc.comm, sizeof(core.tc.comm), "%s", z->comm);
		if (cr_write_core(c->dirfd, (uint32_t)z->pid, &core, err))
			return -1;
	}
	return 0;
}
