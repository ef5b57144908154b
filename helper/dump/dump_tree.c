/* The process tree: finding the target's descendants, stopping them all,
 * the kernel-object ids that tell CRIU what they share, and pstree.img. */
#include "dump/dump_int.h"

#include <dirent.h>
#include <errno.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ptrace/pt_internal.h"
#include "ptrace/stack.h"
#include "images/criu_io.h"
#include "procfs.h"

/* /proc/PID/stat; false if the process is gone. */
static bool stat_of(pid_t pid, struct fp_proc_stat *st)
{
	fp_error e;
	return fp_proc_read_stat(pid, 0, st, &e) == 0;
}

static bool is_dead(const struct fp_proc_stat *st)
{
	return st->state == 'Z' || st->state == 'X';
}

/* Children of every thread of pid (CONFIG_PROC_CHILDREN). */
int dump_list_children(pid_t pid, pid_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char cp[96];
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", pid, e->d_name);
		FILE *f = fopen(cp, "re");
		if (!f)
			continue;
		int c;
		while (fscanf(f, "%d", &c) == 1) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				pid_t *np = realloc(*out, cap * sizeof(pid_t));
				if (!np) {
					fclose(f);
					closedir(d);
					return -1;
				}
				*out = np;
			}
			(*out)[(*n)++] = c;
		}
		fclose(f);
	}
	closedir(d);
	return 0;
}

static int add_proc(struct dump_ctx *c, pid_t pid, pid_t ppid, fp_error *err)
{
	struct dump_proc *np = realloc(c->procs, (c->nprocs + 1) * sizeof(*np));
	if (!np)
		return fp_fail(err, ENOMEM, "out of memory");
	c->procs = np;
	struct dump_proc *p = &c->procs[c->nprocs];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	int64_t t_start = dump_now_ns();
	if (fp_pt_seize(&p->pt, pid, c->o->timeout_ms, err))
		return -1;
	if (!c->stop_ns)
		c->stop_ns = t_start;
	p->seized = true;
	c->nprocs++;
	snprintf(p->comm, sizeof(p->comm), "%s", p->pt.comm);
	struct fp_proc_stat ps;
	if (!stat_of(pid, &ps))
		return fp_fail(err, ESRCH, "cannot read /proc/%d/stat: the process exited during the dump", pid);
	p->pgid = ps.pgrp;
	p->sid = ps.session;
	/* Threads, leader first (CRIU wants pstree.threads[0] = pid). */
	size_t live = 0;
	for (size_t i = 0; i < p->pt.nthreads; i++)
		if (p->pt.threads[i].state == FP_PT_STOPPED)
			live++;
	p->th = calloc(live ? live : 1, sizeof(*p->th));
	if (!p->th)
		return fp_fail(err, ENOMEM, "out of memory");
	p->th[p->nth++].tid = pid;
	bool leader = false;
	for (size_t i = 0; i < p->pt.nthreads; i++) {
		fp_pt_thread *t = &p->pt.threads[i];
		if (t->state != FP_PT_STOPPED)
			continue;
		if (t->tid == pid) {
			leader = true;
			continue;
		}
		if (p->nth < live)
			p->th[p->nth++].tid = t->tid;
	}
	if (!leader)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "the main thread of %d (%s) has exited while other threads run on; CRIU cannot restore such a process",
				    pid, p->comm);
	dlog(c, "seized %d (%s): %zu thread(s), ppid %d pgid %d sid %d", pid, p->comm, p->nth, (int)ps.ppid, p->pgid, p->sid);
	return 0;
}

/* A frozen copy left by a killed dump is still dying (its tracer's death
 * sent it SIGKILL, or it ran into its exit_group frame) while its memory is
 * torn down. Before anything is stopped, wait for such children (exit signal
 * 0, exiting) of the tree to become zombies, which the capture reaps. */
static void settle_leftovers(struct dump_ctx *c, pid_t pid, int depth)
{
	pid_t *kids;
	size_t nk;
	if (depth > 64 || dump_list_children(pid, &kids, &nk))
		return;
	for (size_t k = 0; k < nk; k++) {
		struct fp_proc_stat st;
		if (!stat_of(kids[k], &st) || is_dead(&st))
			continue;
		char pnd[32] = "0", shd[32] = "0";
		dump_status_field(kids[k], "SigPnd", pnd, sizeof(pnd));
		dump_status_field(kids[k], "ShdPnd", shd, sizeof(shd));
		bool dying = (st.flags & 0x4 /* PF_EXITING */) || ((strtoull(pnd, NULL, 16) | strtoull(shd, NULL, 16)) & (1ull << (SIGKILL - 1)));
		if (st.exit_signal != 0 || !dying) {
			settle_leftovers(c, kids[k], depth + 1);
			continue;
		}
		int64_t t0 = dump_now_ns(), until = t0 + 5000000000ll;
		while (dump_now_ns() < until && stat_of(kids[k], &st) && !is_dead(&st)) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		dlog(c, "%d: waited %.3f ms for the exiting child %d (a frozen copy left by a killed dump)", pid,
		     (double)(dump_now_ns() - t0) / 1e6, kids[k]);
	}
	free(kids);
}

bool dump_tree_any_exiting(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct fp_proc_stat st;
		if (!stat_of(c->procs[i].pid, &st) || is_dead(&st) || (st.flags & 0x4 /* PF_EXITING */))
			return true;
	}
	return false;
}

int dump_tree_seize(struct dump_ctx *c, fp_error *err)
{
	pid_t root = c->o->pid;
	if (fp_pt_check_traceable(root, err))
		return -1;
	settle_leftovers(c, root, 0);
	if (add_proc(c, root, 0, err))
		return fp_wrap(err, "stopping %d", root);
	/* Breadth first: a stopped process cannot fork, so once every known
	 * process is stopped the list of children is final. */
	for (size_t i = 0; i < c->nprocs; i++) {
		pid_t *kids;
		size_t nk;
		pid_t ppid = c->procs[i].pid;
		if (dump_list_children(ppid, &kids, &nk))
			return fp_fail(err, errno, "cannot list the children of %d: %s", ppid, strerror(errno));
		for (size_t k = 0; k < nk; k++) {
			bool known = false;
			for (size_t j = 0; j < c->nprocs; j++)
				known |= c->procs[j].pid == kids[k];
			if (known)
				continue;
			struct fp_proc_stat st;
			bool have = stat_of(kids[k], &st);
			/* Exit signal 0: a frozen copy (ours or another dump's). */
			bool copy_like = have && st.exit_signal == 0;
			if (copy_like && !is_dead(&st)) {
				/* Exit signal 0 is what a frozen copy has: one being read by
				 * another dump (traced) is not part of the tree. */
				char tr[32] = "0";
				dump_status_field(kids[k], "TracerPid", tr, sizeof(tr));
				/* One traced by us: a hot snapshot's copy that a session
				 * helper keeps (dump_hot.c). */
				if (atoi(tr) != 0) {
					dlog(c, "%d: child %d is traced by %s with exit signal 0 (the frozen copy of another dump in "
						"progress, or of a hot snapshot): left out",
					     ppid, kids[k], tr);
					continue;
				}
			}
			if (copy_like && is_dead(&st) &&
			    c->procs[i].nstale < sizeof(c->procs[i].stale) / sizeof(c->procs[i].stale[0])) {
				/* A child with exit signal 0 that died: the frozen copy of an
				 * earlier dump that was killed before reaping it. Reaped
				 * once the process is stopped (capture). */
				c->procs[i].stale[c->procs[i].nstale++] = kids[k];
				dlog(c, "%d: zombie child %d with exit signal 0 (a frozen copy left by a killed dump): reaping it", ppid,
				     kids[k]);
				continue;
			}
			if (have && !copy_like && st.state == 'Z') {
				if (dump_add_zombie(c, &st, ppid, err)) {
					free(kids);
					return -1;
				}
				continue;
			}
			if (have && is_dead(&st)) {
				/* Being reaped this very moment ('X'): the dump starts over. */
				pid_t z = kids[k];
				free(kids);
				c->raced = true;
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ESRCH,
						    "child %d of %d ended while the tree was being stopped", z, ppid);
			}
			size_t n_before = c->nprocs;
			if (add_proc(c, kids[k], ppid, err)) {
				pid_t kid = kids[k];
				if (copy_like && err && err->errnum == ESRCH) {
					if (c->nprocs > n_before) { /* seized, then gone */
						fp_pt_detach(&c->procs[n_before].pt, NULL);
						free(c->procs[n_before].th);
						c->nprocs = n_before;
					}
					/* A frozen copy of a killed dump that died just now:
					 * not part of the tree; its zombie is reaped by the next
					 * dump (or now, if it already is one). */
					dlog(c, "%d: child %d with exit signal 0 exited while being seized (a frozen copy left by a killed "
						"dump): left out",
					     ppid, kid);
					if (stat_of(kid, &st) && is_dead(&st) &&
					    c->procs[i].nstale < sizeof(c->procs[i].stale) / sizeof(c->procs[i].stale[0]))
						c->procs[i].stale[c->procs[i].nstale++] = kid;
					continue;
				}
				free(kids);
				if (err && err->errnum == ESRCH)
					c->raced = true; /* a short-lived child ended just now */
				return fp_wrap(err, "stopping child %d of %d", kid, ppid);
			}
		}
		free(kids);
	}
	if (dump_tree_any_exiting(c)) {
		c->raced = true;
		return fp_fail(err, ESRCH, "a process of the tree was exiting while it was stopped");
	}
	struct dump_proc *r = &c->procs[0];
	if (r->sid != r->pid)
		dlog(c, "WARNING: %d is not a session leader (sid %d): `criu restore` will need --shell-job "
			"(start the target with setsid to avoid this)", r->pid, r->sid);
	for (size_t i = 1; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		bool ok = p->sid == r->sid;
		for (size_t j = 0; j < c->nprocs && !ok; j++)
			ok = c->procs[j].pid == p->sid;
		if (!ok)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "process %d (%s) is in session %d, which no process of the dumped tree leads; CRIU cannot "
					    "restore that session: dump the session leader instead",
					    p->pid, p->comm, p->sid);
	}
	return 0;
}

void dump_tree_release(struct dump_ctx *c, bool kill_it)
{
	/* before anything runs again: a socket in repair mode would take the
	 * process's own writes into its queue unsent */
	dump_tcp_release(c, kill_it);
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (p->di_page && p->seized) {
			fp_error e;
			dinj_end(p, NULL);
			if (dinj_fini(c, p, &e))
				dlog(c, "WARNING: %d: cannot remove the injection page: %s", p->pid, e.msg);
		}
	}
	if (kill_it) {
		for (size_t i = c->nprocs; i-- > 0;)
			if (c->procs[i].seized)
				kill(c->procs[i].pid, SIGKILL);
		/* Killed threads we trace stay zombies until their tracer
		 * waits for them, and the process's pid stays taken until then:
		 * reap them now, so the pids are free when we return. */
		int64_t deadline = fp_pt_deadline(5000);
		for (size_t i = c->nprocs; i-- > 0;) {
			struct dump_proc *p = &c->procs[i];
			if (!p->seized)
				continue;
			/* The leader last: its exit is reported once it is alone. */
			for (size_t j = 0; j < 2 * p->pt.nthreads; j++) {
				int st;
				size_t k = j % p->pt.nthreads;
				pid_t tid = p->pt.threads[k].tid;
				bool leader_pass = j >= p->pt.nthreads;
				if (p->pt.threads[k].state == FP_PT_GONE || leader_pass != (tid == p->pid))
					continue;
				while (fp_pt_wait_one(tid, deadline, &st) == 1 && !WIFEXITED(st) && !WIFSIGNALED(st))
					;
				p->pt.threads[k].state = FP_PT_GONE;
			}
		}
	}
	for (size_t i = c->nprocs; i-- > 0;) {
		struct dump_proc *p = &c->procs[i];
		if (!p->seized)
			continue;
		fp_error e;
		if (fp_pt_detach(&p->pt, &e) && !kill_it)
			dlog(c, "WARNING: detaching %d: %s", p->pid, e.msg);
		p->seized = false;
	}
	c->resume_ns = dump_now_ns();
	/* the lock goes after the resume: what it dropped meanwhile is sent again */
	dump_tcp_unlock(c);
}

static long kcmp(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0);
}

int dump_tree_ids(struct dump_ctx *c, fp_error *err)
{
	/* root_ids (the dumper) are 1; tasks count from 2 per kind. */
	uint32_t next[4] = { 2, 2, 2, 2 };
	static const int types[4] = { KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND };
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		uint32_t *slot[4] = { &p->ids.vm_id, &p->ids.files_id, &p->ids.fs_id, &p->ids.sighand_id };
		for (int k = 0; k < 4; k++) {
			uint32_t id = 0;
			for (size_t j = 0; j < i && !id; j++) {
				uint32_t *other[4] = { &c->procs[j].ids.vm_id, &c->procs[j].ids.files_id,
						       &c->procs[j].ids.fs_id, &c->procs[j].ids.sighand_id };
				long r = kcmp(p->pid, c->procs[j].pid, types[k]);
				if (r == 0)
					id = *other[k];
			}
			*slot[k] = id ? id : next[k]++;
		}
		if (i > 0 && p->ids.vm_id == c->procs[0].ids.vm_id)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "process %d shares its memory with %d (CLONE_VM without threads, vfork in progress?); not supported",
					    p->pid, c->procs[0].pid);
	}
	return 0;
}

int dump_write_tree(struct dump_ctx *c, fp_error *err)
{
	/* Zombies last: each comes after its parent, as CRIU's order wants. */
	size_t nz = dump_zombie_count(c), n = c->nprocs + nz;
	cr_pstree *ps = calloc(n, sizeof(*ps));
	if (!ps)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < c->nprocs && !rc; i++) {
		struct dump_proc *p = &c->procs[i];
		ps[i].pid = (uint32_t)p->pid;
		ps[i].ppid = (uint32_t)p->ppid;
		ps[i].pgid = (uint32_t)p->pgid;
		ps[i].sid = (uint32_t)p->sid;
		ps[i].n_threads = p->nth;
		ps[i].threads = malloc(p->nth * sizeof(uint32_t));
		if (!ps[i].threads) {
			rc = fp_fail(err, ENOMEM, "out of memory");
			break;
		}
		for (size_t t = 0; t < p->nth; t++)
			ps[i].threads[t] = (uint32_t)p->th[t].tid;
		rc = cr_write_ids(c->dirfd, (uint32_t)p->pid, &p->ids, err);
	}
	if (!rc)
		rc = dump_write_zombies(c, ps + c->nprocs, err);
	if (!rc)
		rc = cr_write_pstree(c->dirfd, ps, n, err);
	for (size_t i = 0; i < n; i++)
		free(ps[i].threads);
	free(ps);
	return rc;
}

void dump_log_stacks(struct dump_ctx *c)
{
	if (!c->log)
		return;
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (!p->seized)
			continue;
		for (size_t t = 0; t < p->pt.nthreads; t++) {
			fp_pt_thread *th = &p->pt.threads[t];
			if (th->state != FP_PT_STOPPED)
				continue;
			char buf[4096];
			fp_stack_describe(p->pid, th->tid, buf, sizeof(buf));
			dlog(c, "where thread %d of %d was:\n%s", th->tid, p->pid, buf);
		}
	}
}
