/* Hot snapshots: the frozen copies a dump keeps for its caller (o->hot).
 *
 * Made like the fork copy of dump_cow.c (dinj_clone: no CLONE_VM, exit
 * signal 0, traced from birth), from the injection page while the tree is
 * stopped, so each copy holds its process's memory at the snapshot's
 * instant, copy-on-write. Unlike the fork copy it is not read, killed or
 * reaped here: on success the caller owns it (a session helper keeps it
 * stopped for fast branches). A failed dump kills and reaps its copies
 * while the tree is still stopped, as dump_cow_finish does. One copy per
 * process or none: a snapshot is hot only as a whole. */
#include "dump/dump_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

int dump_hot_start(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct fp_dump_hot *h = c->o->hot;
	if (!h || !c->o->leave_running || h->why[0])
		return 0;
	if (c->nprocs > FP_DUMP_HOT_MAX) {
		snprintf(h->why, sizeof(h->why), "the tree has %zu processes, a hot snapshot keeps at most %d", c->nprocs,
			 FP_DUMP_HOT_MAX);
		return 0;
	}
	pid_t kid = 0;
	if (dinj_clone(c, p, &kid, err))
		return fp_wrap(err, "making the hot copy of %d", p->pid);
	if (!kid) {
		snprintf(h->why, sizeof(h->why), "no frozen copy of %d could be made (see the dump log)", p->pid);
		return 0;
	}
	p->hot = kid;
	dlog(c, "%d: hot copy %d made", p->pid, kid);
	return 0;
}

/* After the resume: each copy reaches its first stop and dies with us. */
void dump_hot_settle(struct dump_ctx *c)
{
	struct fp_dump_hot *h = c->o->hot;
	for (size_t i = 0; h && i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		fp_error e;
		if (p->hot && dinj_clone_settle(p, p->hot, &e)) {
			snprintf(h->why, sizeof(h->why), "%s", e.msg);
			dlog(c, "%d: hot copy %d lost: %s", p->pid, p->hot, e.msg);
		}
	}
}

static void finish_one(struct dump_ctx *c, struct dump_proc *p)
{
	/* dump_cow_finish kills, waits for and reaps p->cow */
	pid_t cow = p->cow;
	bool killed = p->cow_killed;
	p->cow = p->hot;
	p->cow_killed = false;
	dump_cow_finish(c, p);
	p->cow = cow;
	p->cow_killed = killed;
	p->hot = 0;
}

void dump_hot_drop(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++)
		if (c->procs[i].hot)
			finish_one(c, &c->procs[i]);
}

void dump_hot_hand_over(struct dump_ctx *c)
{
	struct fp_dump_hot *h = c->o->hot;
	if (!h)
		return;
	h->n = 0;
	bool all = !h->why[0];
	for (size_t i = 0; all && i < c->nprocs; i++)
		all = c->procs[i].hot && c->procs[i].g_sysret && c->procs[i].di_gone_start;
	if (!all) {
		if (!h->why[0])
			snprintf(h->why, sizeof(h->why), "not every process of the tree has a frozen copy with room to work in");
		dump_hot_drop(c);
		return;
	}
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		size_t len = 0;
		struct fp_dump_hot_copy *k = &h->c[h->n++];
		k->pid = p->pid;
		k->copy = p->hot;
		k->scratch = dinj_copy_scratch(p, &len);
		k->scratch_len = (uint32_t)len;
		k->sysret = p->g_sysret;
		k->area = p->di_gone_start;
		k->area_len = p->di_gone_end - p->di_gone_start;
		p->hot = 0;
	}
	dlog(c, "%zu hot cop%s handed over", h->n, h->n == 1 ? "y" : "ies");
}
