/* An incremental snapshot after its stop (dump_incr_int.h): the `parent`
 * link when a page is left in the parent, and the write tracking handed
 * back to the session once the snapshot is published. */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The path of `to` relative to the directory that holds `from` (both
 * absolute, without "." or ".." parts): "../snap-1" for siblings. */
static void relpath(const char *from, const char *to, char *out, size_t len)
{
	size_t common = 0;
	for (size_t i = 0; from[i] && from[i] == to[i]; i++)
		if (from[i] == '/')
			common = i + 1;
	size_t o = 0;
	out[0] = '\0';
	for (const char *s = from + common; (s = strchr(s, '/')); s++)
		o += (size_t)snprintf(out + o, o < len ? len - o : 0, "../");
	snprintf(out + (o < len ? o : len - 1), o < len ? len - o : 1, "%s", to + common);
}

int dump_incr_link_parent(struct dump_ctx *c, const char *final, fp_error *err)
{
	if (!c->incr || !c->st->pages_parent)
		return 0;
	const char *parent = c->parent_dir;
	char abs_final[PATH_MAX], abs_parent[PATH_MAX], rel[PATH_MAX];
	char *dir = strdup(final);
	if (!dir)
		return fp_fail(err, ENOMEM, "out of memory");
	/* final does not exist yet: resolve its directory */
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	if (slash)
		*slash = '\0';
	if (!realpath(slash ? (dir[0] ? dir : "/") : ".", abs_final) || !realpath(parent, abs_parent)) {
		int e = errno;
		free(dir);
		return fp_fail(err, e, "cannot resolve the path of the parent snapshot %s: %s", parent, strerror(e));
	}
	size_t l = strlen(abs_final);
	/* the link lives inside final: relative to a name in it */
	snprintf(abs_final + l, sizeof(abs_final) - l, "%s%s/parent", l > 1 ? "/" : "", base);
	free(dir);
	relpath(abs_final, abs_parent, rel, sizeof(rel));
	if (symlinkat(rel, c->dirfd, "parent") < 0)
		return fp_fail(err, errno, "cannot link the snapshot to its parent %s: %s", parent, strerror(errno));
	c->st->incremental = true;
	dlog(c, "parent: %s (%" PRIu64 " pages left there)", rel, c->st->pages_parent);
	return 0;
}

void dump_incr_hand_over(struct dump_precopy *pc, struct fp_track_proc *tp)
{
	tp->pid = pc->pid;
	tp->start_time = fp_track_start_time(pc->pid);
	tp->uffd = pc->uffd;
	tp->reg = pc->reg;
	tp->nreg = pc->nreg;
	tp->shim_addr = pc->shim_addr;
	tp->shim_gen = pc->shim_gen;
	tp->shim_ok = pc->shim_ok;
	memcpy(tp->shim_doubt, pc->shim_doubt, sizeof(tp->shim_doubt));
	pc->uffd = -1;
	pc->reg = NULL;
	pc->nreg = 0;
}

void dump_incr_keep(struct dump_ctx *c, const char *final)
{
	struct fp_track *t = c->o->track;
	fp_track_drop(t, "");
	t->procs = calloc(c->npre ? c->npre : 1, sizeof(*t->procs));
	if (!t->procs) {
		snprintf(t->lost, sizeof(t->lost), "out of memory for the write tracking");
		return;
	}
	for (size_t i = 0; i < c->npre; i++) {
		struct dump_precopy *pc = &c->pre[i];
		struct dump_proc *p = NULL;
		for (size_t k = 0; k < c->nprocs && !p; k++)
			if (c->procs[k].pre == pc)
				p = &c->procs[k];
		if (!p || pc->uffd < 0 || pc->untrusted)
			continue; /* not dumped with it (gone meanwhile) or not sure: dropped */
		dump_incr_shim_check(c, p);
		struct fp_track_proc *tp = &t->procs[t->n];
		memset(tp, 0, sizeof(*tp));
		tp->uffd = -1;
		size_t cap = 0;
		bool ok = true;
		for (size_t k = 0; k < p->npe && ok; k++)
			ok = !fp_ranges_push(&tp->cov, &tp->ncov, &cap, p->pe[k].vaddr,
					     p->pe[k].vaddr + p->pe[k].nr_pages * CR_PAGE_SIZE);
		if (!ok) {
			fp_track_proc_free(tp);
			continue;
		}
		tp->cov_known = true;
		tp->vmas = pc->fv_now;
		tp->nvmas = pc->nfv_now;
		dump_incr_store_give(pc, tp);
		dump_incr_hand_over(pc, tp);
		pc->fv_now = NULL;
		pc->nfv_now = 0;
		t->n++;
	}
	t->active = t->n > 0;
	/* one level more than its parent's chain, or a chain of its own */
	t->parent_depth = !c->parent_dir[0] ? 1 : t->parent_depth ? t->parent_depth + 1 : 0;
	snprintf(t->parent_dir, sizeof(t->parent_dir), "%s", final);
	dump_incr_settle_hand_over(c, t);
	bool all = true; /* a process not kept: its fd closes with the dump */
	for (size_t i = 0; i < c->npre; i++)
		all &= c->pre[i].uffd < 0 || !c->pre[i].deferred;
	if (!all)
		fp_track_settle(t);
	/* The largest buffer of written pages stays for the next snapshot,
	 * unless it is big: the helper's memory stays bounded. */
	for (size_t i = 0; i < c->npre; i++) {
		struct dump_precopy *pc = &c->pre[i];
		if (!pc->dirty || pc->dirty_len > fp_track_pool_max() || pc->dirty_len <= t->pool_len)
			continue;
		if (t->pool)
			munmap(t->pool, t->pool_len);
		t->pool = pc->dirty;
		t->pool_len = pc->dirty_len;
		pc->dirty = NULL;
		pc->dirty_len = 0;
	}
	if (!t->active)
		snprintf(t->lost, sizeof(t->lost), "no process could be write-tracked");
	else
		dump_vmflags_bpf_warm(); /* for the next snapshots' VmFlags check */
	dlog(c, "write tracking kept for %zu process(es)", t->n);
}
