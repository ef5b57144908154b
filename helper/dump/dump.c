/* fp_dump: the order of a dump and its safety rules.
 *
 *   1. a private temp directory beside the snapshot's final name
 *   2. (leave_running, --pages copy) a pre-faulted buffer for the page copy;
 *      (leave_running, big or --pages precopy) the pre-copy: a short stop
 *      for a userfaultfd, then write tracking and the page copy while the
 *      tree runs (dump_precopy.c)
 *   3. stop the tree (PTRACE_SEIZE + interrupt, never SIGSTOP)
 *   4. capture: per-thread state (syscall injection); (leave_running) the
 *      frozen copy-on-write copy of each process not pre-copied
 *      (dump_cow.c); then, with the injection page unmapped, the VMAs (from
 *      maps when there is a copy or a pre-copy: smaps walks page tables),
 *      fds, cwd/root; (pre-copy) the pages written since they were copied
 *   5. (leave_running) copy the pages of processes without a copy, resume
 *      the tree; (pre-copy) drop the write tracking, check no VmFlags
 *      changed meanwhile (else the dump is done again with a fork copy)
 *   6. (copies) VMA flags and the pages to dump, from each copy
 *   7. write every image and the pages (read from the copy or the stopped
 *      target, compressed by several threads), (--fsync) syncfs, manifest
 *      last, rename; kill, wait for and reap the copies
 *   8. (default) kill the tree, now that the snapshot is complete
 *
 * Any failure before 8 detaches and leaves the tree running as it was. */
#include "dump/dump_int.h"

#include "fp_fault_pause.h"
#include "fp_netlock.h"
#include "procfs.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"
#include "images/criu_img.h"
#include "paths.h"

int64_t dump_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

static long minor_faults(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_minflt;
}

void dump_phase(struct dump_ctx *c, enum dump_phase ph, int64_t *t0)
{
	int64_t now = dump_now_ns();
	c->ph[ph] += (double)(now - *t0) / 1e6;
	*t0 = now;
	long f = minor_faults();
	if (c->flt_at)
		c->flt[ph] += f - c->flt_at;
	c->flt_at = f;
}

void dump_phases_format(struct dump_ctx *c)
{
	static const char *const names[DPH_N] = {
		"prepare", "seize", "while_stopped", "cores", "mm", "uninject", "vmas", "pagemap", "dirty_scan",
		"dirty_read", "reprotect", "files", "ids", "resume", "fds_finish", "flags_check", "write", "publish", "keep",
	};
	size_t o = 0;
	c->st->phases[0] = '\0';
	for (int i = 0; i < DPH_N; i++)
		if (c->ph[i] > 0 && o < sizeof(c->st->phases))
			o += (size_t)snprintf(c->st->phases + o, sizeof(c->st->phases) - o, "%s%s %.3f", o ? " " : "",
					      names[i], c->ph[i]);
}

static void vlog(struct dump_ctx *c, const char *fmt, va_list ap)
{
	if (!c || !c->log)
		return;
	flockfile(c->log); /* one line at a time: the VmFlags check logs from its thread */
	fprintf(c->log, "(%9.3f) ", ms_since(c->t0));
	vfprintf(c->log, fmt, ap);
	fputc('\n', c->log);
	funlockfile(c->log);
}

void dlog(struct dump_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(c, fmt, ap);
	va_end(ap);
}

void dlogv(struct dump_ctx *c, const char *fmt, ...)
{
	if (!c || !c->o->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(c, fmt, ap);
	va_end(ap);
}

/* o->dir must be absent or an empty directory; its parent is created. */
static int check_target_dir(const char *dir, char *parent, size_t plen, char *base, size_t blen, fp_error *err)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return fp_fail(err, EEXIST, "%s exists and is not a directory; pick a new snapshot directory", dir);
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return fp_fail(err, errno, "cannot open %s: %s", dir, strerror(errno));
		bool empty = true;
		int fd2 = dup(fd);
		DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					empty = false;
			closedir(d);
		}
		close(fd);
		if (!empty)
			return fp_fail_code(err, FP_EXIT_FAIL, EEXIST,
					    "%s already exists and is not empty (a snapshot of that name exists?); choose another "
					    "directory or remove it first",
					    dir);
	} else if (errno != ENOENT)
		return fp_fail(err, errno, "cannot access %s: %s", dir, strerror(errno));
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	size_t l = strlen(tmp);
	while (l > 1 && tmp[l - 1] == '/')
		tmp[--l] = '\0';
	char t1[PATH_MAX], t2[PATH_MAX];
	snprintf(t1, sizeof(t1), "%s", tmp);
	snprintf(t2, sizeof(t2), "%s", tmp);
	snprintf(parent, plen, "%s", dirname(t1));
	snprintf(base, blen, "%s", basename(t2));
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, ".."))
		return fp_fail(err, EINVAL, "'%s' cannot be a snapshot directory; name a new directory", dir);
	if (fp_mkdir_p(parent, 0700, err))
		return fp_wrap(err, "creating the parent of %s", dir);
	if (access(parent, W_OK | X_OK) < 0)
		return fp_fail(err, errno, "cannot write into %s (%s); choose a directory you may write to", parent,
			       strerror(errno));
	return 0;
}

void dump_ctx_free(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		for (size_t t = 0; t < p->nth; t++)
			cr_core_free(&p->th[t].core);
		free(p->th);
		free(p->vmas);
		free(p->maps_stop);
		cr_mm_free(&p->mm);
		free(p->pe);
		free(p->fds);
		for (size_t k = 0; k < p->nfb; k++) {
			free(p->fb[k].pe);
			free(p->fb[k].data);
		}
		free(p->fb);
		free(p->segs);
		pgh_free(&p->ph);
	}
	free(c->procs);
	dump_precopy_end(c);
	for (size_t i = 0; i < c->nfiles; i++)
		cr_file_free(&c->files[i]);
	free(c->files);
	free(c->fkeys);
	dump_findex_free(c);
	dump_fds_free(c);
	dump_shim_fds_free(c);
	dump_fdshort_free(c);
	for (size_t i = 0; i < c->npipes; i++)
		free(c->pipes[i].data);
	free(c->pipes);
	free(c->ttys);
	free(c->locks);
	free(c->self_kf);
	free(c->ghosts);
	free(c->zombies);
	free(c->remaps);
	dump_shmem_free(c);
	dump_usk_free(c);
	dump_tcp_free(c);
	if (c->pagebuf)
		munmap(c->pagebuf, c->pagebuf_res);
}

/* Every injected syscall wakes the stopped thread and waits for its trap:
 * across vCPUs that is ~50 us per wake-up here, on the same vCPU a few
 * (machine-limits.md quirk 2). So the dumper moves next to the target
 * while it drives it, and back afterwards. */
void dump_pin_near(struct dump_ctx *c, pid_t pid, cpu_set_t *saved, bool *pinned)
{
	*pinned = false;
	struct fp_proc_stat st;
	fp_error e;
	int cpu = fp_proc_read_stat(pid, 0, &st, &e) == 0 ? st.processor : -1;
	if (cpu < 0 || sched_getaffinity(0, sizeof(*saved), saved) || !CPU_ISSET(cpu, saved))
		return;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0) {
		*pinned = true;
		dlogv(c, "dumper pinned to cpu %d (where %d last ran)", cpu, pid);
	}
}

/* Step 4: everything read from the stopped tree. */
static int capture(struct dump_ctx *c, fp_error *err)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		for (size_t k = 0; k < c->npre && !p->pre; k++)
			if (c->pre[k].pid == p->pid && c->pre[k].uffd >= 0)
				p->pre = &c->pre[k];
		bool want_cow = c->o->leave_running && c->o->snapshot != FP_DUMP_SNAP_COPY && !p->pre;
		for (unsigned k = 0; k < p->nstale; k++) {
			fp_error e;
			if (dinj_reap(c, p, p->stale[k], &e))
				dlog(c, "WARNING: %d: cannot reap %d: %s", p->pid, p->stale[k], e.msg);
		}
		int64_t tp = dump_now_ns();
		if (dump_proc_cores(c, p, err))
			return fp_wrap(err, "capturing threads of %d (%s)", p->pid, p->comm);
		dump_phase(c, DPH_CORES, &tp);
		if (dump_proc_mm(c, p, err))
			return fp_wrap(err, "capturing mm of %d (%s)", p->pid, p->comm);
		dump_phase(c, DPH_MM, &tp);
		/* The copy is cloned from the injection page (its frames live
		 * there, not on a stack the copy would keep). */
		if (want_cow && dump_cow_start(c, p, err))
			return -1;
		if (dump_hot_start(c, p, err))
			return -1;
		/* The injection page goes before the VMAs are listed. */
		if (dinj_fini(c, p, err))
			return fp_wrap(err, "removing the injection page of %d", p->pid);
		dump_phase(c, DPH_UNINJECT, &tp);
	}
	dlog(c, "threads captured");
	if (dump_ipcns_probe(c, err))
		return -1;
	if (dump_shmem_capture(c, err))
		return fp_wrap(err, "reading the shared memory of the tree");
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		p->pages_id = (uint32_t)i + 1;
		int64_t tp = dump_now_ns();
		if (p->cow) {
			/* VMA flags and pages come from the copy after the resume. */
			if (dump_cow_vmas_stopped(c, p, err))
				return fp_wrap(err, "checking the frozen copy of %d (%s)", p->pid, p->comm);
		} else {
			if ((p->pre ? dump_precopy_vmas(c, p, err) : dump_proc_vmas(c, p, err)) ||
			    dump_proc_vma_entries(c, p, err))
				return fp_wrap(err, "reading the mappings of %d (%s)", p->pid, p->comm);
			dump_phase(c, DPH_VMAS, &tp);
			if (dump_proc_pagemap(c, p, err))
				return fp_wrap(err, "finding the pages of %d (%s)", p->pid, p->comm);
			dump_phase(c, DPH_PAGEMAP, &tp);
			if (p->pre && c->incr && dump_incr_final(c, p, err))
				return fp_wrap(err, "reading what %d (%s) wrote since the last snapshot", p->pid, p->comm);
			if (p->pre && !c->incr && (dump_precopy_final(c, p, err) || (c->keep_track && dump_incr_rearm(c, p, err))))
				return fp_wrap(err, "reading what %d (%s) wrote since its pre-copy", p->pid, p->comm);
			if (c->incr)
				tp = dump_now_ns(); /* dump_incr_final times its own parts */
			else
				dump_phase(c, DPH_DIRTY_READ, &tp);
		}
		if (dump_proc_files(c, p, err))
			return fp_wrap(err, "reading the fds of %d (%s)", p->pid, p->comm);
		if (dump_proc_fs(c, p, err))
			return fp_wrap(err, "reading cwd/root of %d (%s)", p->pid, p->comm);
		dump_phase(c, DPH_FILES, &tp);
		if (!p->cow) {
			dlog(c, "%d: %zu vmas, %zu page runs, %" PRIu64 " pages, %zu fds", p->pid, p->mm.n_vmas, p->npe, p->npages,
			     p->nfds);
			c->st->pages += p->npages;
		} else {
			dlog(c, "%d: %zu fds", p->pid, p->nfds);
		}
		c->st->nthreads += (int)p->nth;
	}
	int64_t tp = dump_now_ns();
	if (dump_fds_pin(c, err))
		return fp_wrap(err, "taking copies of the fds");
	if (dump_tree_ids(c, err) || dump_usk_check(c, err) || dump_tcp_capture(c, err))
		return -1;
	dump_phase(c, DPH_IDS, &tp);
	return 0;
}

/* Before capture (and before any frozen copy is cloned, which would inherit
 * the fds the caller may be moving). */
static int run_while_stopped(struct dump_ctx *c, fp_error *err)
{
	fp_pt_proc **pp = calloc(c->nprocs ? c->nprocs : 1, sizeof(*pp));
	if (!pp)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nprocs; i++)
		pp[i] = &c->procs[i].pt;
	int64_t t0 = dump_now_ns();
	int rc = c->o->while_stopped(c->o->while_stopped_arg, pp, c->nprocs, err);
	free(pp);
	dlog(c, "caller's work while stopped: %.3f ms%s", (double)(dump_now_ns() - t0) / 1e6, rc ? " (failed)" : "");
	return rc;
}

static int write_images(struct dump_ctx *c, fp_error *err)
{
	if (dump_write_misc(c, err) || dump_write_tree(c, err))
		return -1;
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (dump_write_cores(c, p, err) || dump_write_mm(c, p, err) || dump_write_fdinfo(c, p, err) ||
		    dump_write_fs(c, p, err))
			return fp_wrap(err, "writing the images of %d", p->pid);
		if (dump_write_pages(c, p, err))
			return fp_wrap(err, "writing the pages of %d", p->pid);
	}
	/* a store written beside for a process that is not in the dump (it
	 * exited before the stop) goes before the directory is published */
	dump_incr_store_drop_all(c);
	if (dump_write_files(c, err) || dump_shmem_write(c, err) || dump_usk_write(c, err) ||
	    dump_tcp_write(c, err))
		return -1;
	return 0;
}

/* Pre-copy (dump_precopy.c) pays off from tens of MiB on, and needs room in
 * the dumper for a copy of the process's memory. */
static bool want_precopy(struct dump_ctx *c)
{
	const struct fp_dump_opts *o = c->o;
	if (!o->leave_running || o->snapshot == FP_DUMP_SNAP_COPY || o->snapshot == FP_DUMP_SNAP_FORK)
		return false;
	uint64_t anon = dump_estimate_pages(o->pid) * 4096, avail = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemAvailable:", 13))
			avail = strtoull(line + 13, NULL, 10) << 10;
	if (f)
		fclose(f);
	if (anon > avail / 2) {
		dlog(c, "no pre-copy: %" PRIu64 " MiB of anonymous memory, %" PRIu64 " MiB available", anon >> 20, avail >> 20);
		return false;
	}
	return o->snapshot == FP_DUMP_SNAP_PRECOPY || anon >= FP_PRECOPY_MIN_BYTES || o->track;
}

static int dump_once(const struct fp_dump_opts *o, struct fp_dump_stats *st, bool *redo, bool *raced,
		     bool *fds_stale, fp_error *err)
{
	struct fp_dump_stats st_local;
	if (!st)
		st = &st_local;
	memset(st, 0, sizeof(*st));
	struct dump_ctx c = { 0 };
	c.o = o;
	c.st = st;
	c.t0 = dump_now_ns();
	c.dirfd = -1;
	if (!o->dir || !o->dir[0])
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "no snapshot directory given (-D DIR)");
	if (o->pid <= 0)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "no valid pid given (-t PID)");

	char parent[PATH_MAX], base[NAME_MAX + 1], final[PATH_MAX];
	if (check_target_dir(o->dir, parent, sizeof(parent), base, sizeof(base), err))
		return -1;
	snprintf(final, sizeof(final), "%s/%s", parent, base);
	/* A cheap early check, before anything is created. */
	if (fp_pt_check_traceable(o->pid, err))
		return -1;
	st->reaped = dump_tmp_reap(parent, st->reaped_names, sizeof(st->reaped_names));
	st->netlocks = fp_netlock_sweep(st->netlock_names, sizeof(st->netlock_names), &st->netlock_conns);
	c.final_dir = final;
	dump_tmp_template(c.tmpdir, sizeof(c.tmpdir), parent, base);
	if (!mkdtemp(c.tmpdir))
		return fp_fail(err, errno, "cannot create a temporary directory in %s: %s", parent, strerror(errno));
	c.dirfd = open(c.tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (c.dirfd < 0)
		rc = fp_fail(err, errno, "cannot open %s: %s", c.tmpdir, strerror(errno));
	char logpath[PATH_MAX];
	bool log_in_dir = !o->log_path;
	if (o->log_path)
		snprintf(logpath, sizeof(logpath), "%s", o->log_path);
	else
		snprintf(logpath, sizeof(logpath), "%s/%s", c.tmpdir, FP_DUMP_LOG_NAME);
	if (!rc) {
		int lfd = fp_open_write(logpath, o->log_path != NULL, err);
		c.log = lfd >= 0 ? fdopen(lfd, "w") : NULL;
		if (!c.log)
			rc = lfd < 0 ? fp_wrap(err, "the dump log") : fp_fail(err, errno, "cannot create the log %s: %s", logpath, strerror(errno));
	}
	if (!rc && st->netlocks)
		dlog(&c, "lifted the network lock of %zu TCP connection(s) left by %d deleted snapshot(s): %s",
		     st->netlock_conns, st->netlocks, st->netlock_names);
	if (!rc && st->reaped)
		dlog(&c, "removed %d left-over temporary director%s of dumps that died: %s", st->reaped,
		     st->reaped == 1 ? "y" : "ies", st->reaped_names);
	if (!rc)
		dlog(&c, "forkpoint dump -t %d -D %s%s --compress %s", o->pid, o->dir, o->leave_running ? " --leave-running" : "",
		     o->compress == FP_DUMP_NONE ? "none" : "zstd");
	const char *step = "preparing";
	c.nthreads = (unsigned)(o->threads > 0 ? o->threads : 0);
	if (!c.nthreads) {
		cpu_set_t cs;
		c.nthreads = sched_getaffinity(0, sizeof(cs), &cs) == 0 ? (unsigned)CPU_COUNT(&cs) : 1;
		if (c.nthreads > 4)
			c.nthreads = 4;
	}
	if (!rc && o->leave_running && o->snapshot == FP_DUMP_SNAP_COPY) {
		int64_t tp = dump_now_ns();
		uint64_t est = dump_estimate_pages(o->pid);
		dlogv(&c, "estimate: %" PRIu64 " anonymous pages (%.3f ms)", est, ms_since(tp));
		rc = dump_pagebuf_prepare(&c, est + 256, err);
		dlog(&c, "copy buffer pre-faulted for %" PRIu64 " pages in %.3f ms", est + 256, ms_since(tp));
	}
	int incr = 0;
	int64_t tph = dump_now_ns();
	if (!rc && o->track) {
		fp_error ie;
		int64_t tp = dump_now_ns();
		incr = dump_incr_prepare(&c, &ie);
		if (incr < 0) {
			/* the tracking is gone with it: a full dump, said so */
			dlog(&c, "no incremental snapshot: %s", ie.msg);
			dump_precopy_end(&c);
			c.incr = c.keep_track = false;
			snprintf(st->full_why, sizeof(st->full_why), "the write tracking failed: %s", ie.msg);
			fp_track_drop(o->track, st->full_why);
		} else if (incr > 0) {
			dlog(&c, "incremental against %s, prepared in %.3f ms", c.parent_dir[0] ? c.parent_dir : "nothing (every page read)",
			     ms_since(tp));
		}
	}
	if (!rc && incr <= 0 && want_precopy(&c)) {
		fp_error pe;
		int64_t tp = dump_now_ns();
		if (dump_precopy_run(&c, &pe)) {
			dlog(&c, "no pre-copy (%s): a frozen copy instead", pe.msg);
			if (o->track) {
				snprintf(st->full_why, sizeof(st->full_why), "no write tracking possible: %s", pe.msg);
				fp_track_drop(o->track, st->full_why);
			}
		} else {
			dlog(&c, "pre-copy done in %.3f ms", ms_since(tp));
			c.keep_track = o->track != NULL;
		}
	}
	if (!rc && !*fds_stale)
		dump_fds_look(&c, o->pid);
	else if (!rc && err)
		dlog(&c, "every fd read while stopped, without the look: %s", err->msg);
	if (!rc && c.incr)
		dump_warm_tree(&c, o->pid);
	dump_phase(&c, DPH_PREPARE, &tph);
	if (!rc && c.incr)
		dump_worker_start(&c, o->pid);
	if (!rc) {
		step = "stopping the process tree";
		rc = dump_tree_seize(&c, err);
	}
	dump_phase(&c, DPH_SEIZE, &tph);
	cpu_set_t saved_cpus;
	bool pinned = false;
	if (!rc)
		dump_pin_near(&c, o->pid, &saved_cpus, &pinned);
	if (!rc) {
		st->nprocs = (int)c.nprocs;
		dump_fdshort_locks(&c, true); /* beside the capture */
		st->freeze_ms = (double)(dump_now_ns() - c.stop_ns) / 1e6;
		dlog(&c, "tree stopped: %zu process(es) in %.3f ms", c.nprocs, st->freeze_ms);
		if (o->while_stopped) {
			step = "the caller's work while stopped";
			rc = run_while_stopped(&c, err);
			dump_phase(&c, DPH_WHILE_STOPPED, &tph);
		}
	}
	if (!rc) {
		step = "capturing state";
		rc = capture(&c, err);
	}
	bool any_copy = false, any_cow = false, any_pre = false;
	struct dump_flags_check fcheck = { 0 };
	for (size_t i = 0; i < c.nprocs; i++) {
		any_cow |= c.procs[i].cow != 0;
		any_pre |= c.procs[i].pre != NULL;
		any_copy |= c.procs[i].cow == 0 && !c.procs[i].pre;
	}
	static const char *const methods[8] = { "none", "copy", "fork", "fork+copy",
						"precopy", "precopy+copy", "precopy+fork", "precopy+fork+copy" };
	st->method = !o->leave_running ? "direct" : methods[any_copy | any_cow << 1 | any_pre << 2];
	if (!rc && o->leave_running && any_copy) {
		step = "copying pages";
		rc = dump_copy_pages(&c, err);
	}
	if (!rc)
		st->capture_ms = (double)(dump_now_ns() - c.stop_ns) / 1e6;
	if (pinned)
		sched_setaffinity(0, sizeof(saved_cpus), &saved_cpus);
	if (rc) {
		dlog(&c, "FAILED while %s: %s", step, err ? err->msg : "?");
		if (!c.raced && dump_tree_any_exiting(&c)) {
			c.raced = true;
			dlog(&c, "a process of the tree was caught exiting: the dump is tried again");
		}
		dump_log_stacks(&c);
		for (size_t i = 0; i < c.nprocs; i++)
			dump_cow_finish(&c, &c.procs[i]); /* reaped while still stopped */
		dump_hot_drop(&c);
		dump_tree_release(&c, false);
		dump_worker_end();
		goto fail;
	}
	if (o->leave_running) {
		tph = dump_now_ns();
		dump_tree_release(&c, false);
		dump_phase(&c, DPH_RESUME, &tph);
		dump_worker_end();
		st->pause_ms = (double)(c.resume_ns - c.stop_ns) / 1e6;
		dlog(&c, "tree resumed: pause %.3f ms (capture %.3f ms, frozen copies %.3f ms), pages by %s", st->pause_ms,
		     st->capture_ms, st->fork_ms, st->method);
		dump_hot_settle(&c);
		if (c.incr) {
			dump_incr_settle_start(&c); /* a thread: beside the rest, and after */
			dump_phase(&c, DPH_REPROTECT, &tph);
		}
		if (!c.keep_track)
			dump_precopy_unprotect(&c);
		if (any_pre)
			dump_flags_check_start(&fcheck, &c);
	}
	step = "making the fds' entries after the resume";
	tph = dump_now_ns();
	rc = dump_fds_finish(&c, fds_stale, err);
	if (!rc)
		dump_shim_fds_check(&c);
	dump_phase(&c, DPH_FDS_FINISH, &tph);
	/* dump_incr_link_parent links a parent exactly then */
	if (!rc && o->track && !(c.incr && st->pages_parent) && !st->full_why[0])
		snprintf(st->full_why, sizeof(st->full_why), "every page was written since the parent");
	if (!rc && dump_early_reply(&c, &fcheck, redo, err)) {
		rc = -1;
		step = "checking the mappings after the pre-copy";
		goto fail;
	}
	int64_t tw = dump_now_ns();
	if (!rc)
		step = "reading the frozen copies";
	for (size_t i = 0; i < c.nprocs && !rc; i++)
		if (c.procs[i].cow)
			rc = dump_cow_after(&c, &c.procs[i], err);
	if (!rc) {
		step = "writing images";
		rc = write_images(&c, err);
	}
	if (!rc && c.replied && fp_fault_named("snap-fail-after-reply")) /* tests: a full disk, say */
		rc = fp_fail(err, EIO, "failing on purpose after the early reply (FORKPOINT_FAULT=snap-fail-after-reply)");
	st->write_ms = ms_since(tw);
	c.ph[DPH_WRITE] += st->write_ms;
	tph = dump_now_ns();
	if (dump_flags_check_fail(&fcheck, rc, redo, err) && !rc) {
		rc = -1;
		step = "checking the mappings after the pre-copy";
		goto fail;
	}
	dump_phase(&c, DPH_FLAGS_CHECK, &tph); /* what the check took beyond the writing */
	if (!rc) {
		dlog(&c, "images written in %.3f ms", st->write_ms);
		dlog(&c, "stats: procs %d threads %d pages %" PRIu64 " page_bytes %" PRIu64 " freeze_ms %.3f pause_ms %.3f "
			 "capture_ms %.3f write_ms %.3f total_ms %.3f",
		     st->nprocs, st->nthreads, st->pages, st->bytes_pages, st->freeze_ms,
		     o->leave_running ? st->pause_ms : ms_since(c.stop_ns), st->capture_ms, st->write_ms, ms_since(c.t0));
		dump_vmflags_keep(&c);
		fflush(c.log);
		step = "linking the snapshot to its parent";
		rc = dump_incr_link_parent(&c, final, err);
		step = "publishing the snapshot";
		if (!rc)
			rc = dump_publish(&c, final, parent, err);
		dump_phase(&c, DPH_PUBLISH, &tph);
		if (!rc && c.keep_track) {
			dump_incr_keep(&c, final);
			dump_fdcarry_keep(&c, final);
			dump_fdmark_keep(&c, final);
		}
		dump_phase(&c, DPH_KEEP, &tph);
	}
	/* not handed over with the tracking (the dump failed): its fds close */
	dump_incr_settle_abort(&c);
	if (!rc && o->track && !o->settle_later)
		fp_track_settle(o->track);
	for (size_t i = 0; i < c.nprocs; i++)
		dump_cow_finish(&c, &c.procs[i]);
	if (rc)
		dump_hot_drop(&c);
	else
		dump_hot_hand_over(&c);
	dump_precopy_end(&c);
	if (rc) {
		dlog(&c, "FAILED while %s: %s", step, err ? err->msg : "?");
		if (!o->leave_running) {
			dump_log_stacks(&c);
			dump_tree_release(&c, false);
		}
		goto fail;
	}
	if (!o->leave_running) {
		/* The snapshot is in place; the caller may still keep the tree
		 * (a session proving its saved state restorable). */
		bool keep = o->before_kill && o->before_kill(o->before_kill_arg, final, err) < 0;
		dump_tree_release(&c, !keep);
		st->pause_ms = (double)(c.resume_ns - c.stop_ns) / 1e6;
		if (keep) {
			dlog(&c, "not killed, let go: %s", err ? err->msg : "?");
			fclose(c.log);
			close(c.dirfd);
			dump_ctx_free(&c);
			return -1;
		}
	}
	dump_worker_end(); /* (not leave_running) */
	st->total_ms = ms_since(c.t0);
	dump_phases_format(&c);
	dlog(&c, "phases (ms): %s", st->phases);
	char fl[512];
	size_t fo = 0;
	fl[0] = '\0';
	for (int i = DPH_SEIZE; i <= DPH_RESUME && fo < sizeof(fl); i++)
		fo += (size_t)snprintf(fl + fo, sizeof(fl) - fo, " %ld", c.flt[i]);
	dlog(&c, "dumper page faults per phase, seize to resume:%s", fl);
	fclose(c.log);
	c.log = NULL;
	close(c.dirfd);
	dump_ctx_free(&c);
	return 0;

fail:
	dump_worker_end();
	dump_incr_settle_abort(&c);
	*raced = c.raced;
	if (c.replied) /* the caller has its reply: the snapshot is not made again later */
		*raced = *redo = *fds_stale = false;
	if (err)
		fp_wrap(err, "dump of %d failed while %s", o->pid, step);
	if (o->track && (c.incr || c.keep_track) && !*redo) { /* its tracking went with it */
		char why[sizeof(err->msg) + NAME_MAX + 64];
		snprintf(why, sizeof(why), "snapshot '%s' failed after its early reply: %s", base, err ? err->msg : "?");
		fp_track_drop(o->track, c.replied ? why : "the snapshot before failed");
	}
	if (c.log) {
		fclose(c.log);
		c.log = NULL;
	}
	if (c.dirfd >= 0)
		close(c.dirfd);
	if (c.tmpdir[0]) {
		if (log_in_dir) {
			char kept[PATH_MAX + 16];
			snprintf(kept, sizeof(kept), "%s.failed.log", final);
			if (rename(logpath, kept) == 0 && err) {
				size_t l = strlen(err->msg);
				snprintf(err->msg + l, sizeof(err->msg) - l, " (log: %s)", kept);
			}
		}
		fp_rm_rf(c.tmpdir, NULL);
	}
	dump_ctx_free(&c);
	return -1;
}

/* A busy tree (a shell running a pipeline every few ms) has short-lived
 * children that end while the tree is stopped: a zombie its stopped parent
 * cannot reap, a child caught in its exit. The snapshot is of the tree
 * without them, a moment later: everything resumes and the dump starts
 * over. */
#define DUMP_RACE_TRIES 20

int fp_dump(const struct fp_dump_opts *o, struct fp_dump_stats *st, fp_error *err)
{
	bool redo = false, raced = false, fds_stale = false, stale_tried = false;
	int rc = dump_once(o, st, &redo, &raced, &fds_stale, err);
	char failed[PATH_MAX + 16];
	snprintf(failed, sizeof(failed), "%s.failed.log", o->dir);
	/* Tried again, in whichever order they come: a path (or an fd the
	 * shim's table gave) read before the stop went stale, and every fd is
	 * read while stopped from then on; a process of the tree was caught
	 * ending. */
	for (int i = 1; rc && !redo && i < DUMP_RACE_TRIES; i++) {
		bool stale_now = fds_stale && !stale_tried;
		if (!stale_now && !raced)
			break;
		struct fp_dump_stats first = st ? *st : (struct fp_dump_stats){ 0 };
		struct timespec ts = { 0, 200000L * i }; /* for the parent to reap what ended */
		if (stale_now)
			stale_tried = true;
		else
			nanosleep(&ts, NULL);
		unlink(failed);
		raced = false;
		rc = dump_once(o, st, &redo, &raced, &fds_stale, err);
		if (stale_now && st && first.shim_disagree) { /* the table's lie that sent it to /proc */
			st->shim_checked = true;
			st->shim_disagree += first.shim_disagree;
			memcpy(st->shim_note, first.shim_note, sizeof(st->shim_note));
		}
	}
	if (rc && redo) {
		/* Rare: the process changed a mapping's flags (madvise, mlock)
		 * during a pre-copy dump. A frozen copy shows them exactly. */
		struct fp_dump_opts again = *o;
		again.snapshot = FP_DUMP_SNAP_FORK;
		again.track = NULL; /* dropped, with the reason, by the first try */
		unlink(failed);
		rc = dump_once(&again, st, &redo, &raced, &fds_stale, err);
	}
	return rc;
}
