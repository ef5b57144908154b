/* forkpoint_inspect: a process (or a session's) as seen from outside:
 * threads and their stacks (through a short ptrace stop), mappings, fds,
 * memory sizes, and the shim's table checked against /proc. */
#include "api/api_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfinfo.h"
#include "procfs.h"
#include "ptrace/ptrace.h"
#include "ptrace/stack.h"
#include "session/session_store.h"
#include "dump/shim_check.h"
#include "dump/shim_reader.h"

struct thread_view {
	pid_t tid;
	char comm[64];
	char state;
	fp_frame frames[FP_STACK_MAX_DEPTH];
	int nframes;
	char stack_err[256];
};

struct view {
	pid_t pid;
	const char *session;
	const char *note; /* said before the view, NULL if nothing */
	char exe[PATH_MAX];
	enum fp_exe_kind exe_kind;
	int exe_kind_ok;
	struct fp_proc_status status;
	char rss_anon[32], rss_file[32], rss_shmem[32], vm_swap[32];
	struct thread_view *threads;
	size_t nthreads;
	char stacks_note[512];
	struct fp_maps maps;
	struct fp_fds fds;
	int shim_state;               /* 1 table read, 0 not under the shim, -1 error */
	char shim_note[1024];
	struct fp_shim_copy shim;
	struct fp_shim_report report;
	int report_ok;
};

static pid_t resolve_target(const char *arg, const char **session, fp_error *err)
{
	const char *p = arg;
	while (isdigit((unsigned char)*p))
		p++;
	if (*arg && !*p) {
		long v = strtol(arg, NULL, 10);
		if (v <= 0 || v > INT_MAX)
			return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "'%s' is not a valid pid", arg);
		return (pid_t)v;
	}
	struct fp_session_info info;
	if (fp_session_load(arg, &info, err) < 0)
		return -1;
	if (!fp_session_helper_alive(&info))
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ESRCH,
				    "session '%s' is not running (its helper has exited)", arg);
	*session = arg;
	return info.target_pid;
}

static void status_kb(pid_t pid, const char *key, char *out, size_t len)
{
	if (fp_proc_status_field(pid, key, out, len, NULL) < 0)
		snprintf(out, len, "-");
}

static void read_threads(struct view *v)
{
	pid_t *tids = NULL;
	size_t n = 0;
	fp_error err;
	if (fp_proc_read_tids(v->pid, &tids, &n, &err) < 0)
		return;
	v->threads = calloc(n ? n : 1, sizeof(*v->threads));
	if (!v->threads) {
		free(tids);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct thread_view *t = &v->threads[v->nthreads];
		struct fp_proc_stat st;
		if (fp_proc_read_stat(v->pid, tids[i], &st, NULL) < 0)
			continue; /* exited meanwhile */
		t->tid = tids[i];
		snprintf(t->comm, sizeof(t->comm), "%s", st.comm);
		t->state = st.state;
		v->nthreads++;
	}
	free(tids);
}

static struct thread_view *find_thread(struct view *v, pid_t tid)
{
	for (size_t i = 0; i < v->nthreads; i++)
		if (v->threads[i].tid == tid)
			return &v->threads[i];
	return NULL;
}

/* Reads the shim's table and compares it with /proc. Best done while the
 * target is stopped, so both describe the same instant. */
static void read_shim(struct view *v)
{
	fp_error err;
	int rc = fp_shim_read(v->pid, NULL, &v->shim, &err);
	v->shim_state = rc;
	if (rc < 0) {
		snprintf(v->shim_note, sizeof(v->shim_note), "cannot read the shim's table: %s", err.msg);
		return;
	}
	if (rc == 0) {
		if (v->exe_kind_ok && v->exe_kind == FP_EXE_STATIC)
			snprintf(v->shim_note, sizeof(v->shim_note),
				 "not under the shim: the program is statically linked, so no shim is "
				 "possible; everything shown comes from /proc");
		else if (v->shim.state == FP_SHIM_STARTING)
			snprintf(v->shim_note, sizeof(v->shim_note),
				 "the shim is loaded but has not initialised its table yet");
		else
			snprintf(v->shim_note, sizeof(v->shim_note),
				 "not under the shim (start it with `forkpoint run` to track fds and mappings)");
		return;
	}
	if (fp_shim_check(v->pid, v->shim.t, &v->report, &err) == 0)
		v->report_ok = 1;
	else
		snprintf(v->shim_note, sizeof(v->shim_note), "cannot compare with /proc: %s", err.msg);
}

static void gather(struct view *v, int stacks)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)v->pid);
	ssize_t n = readlink(link, v->exe, sizeof(v->exe) - 1);
	v->exe[n > 0 ? n : 0] = '\0';
	fp_error err;
	if (n > 0 && fp_exe_kind(link, &v->exe_kind, &err) == 0)
		v->exe_kind_ok = 1;
	status_kb(v->pid, "RssAnon", v->rss_anon, sizeof(v->rss_anon));
	status_kb(v->pid, "RssFile", v->rss_file, sizeof(v->rss_file));
	status_kb(v->pid, "RssShmem", v->rss_shmem, sizeof(v->rss_shmem));
	status_kb(v->pid, "VmSwap", v->vm_swap, sizeof(v->vm_swap));
	read_threads(v); /* states before we stop anything */

	fp_pt_proc p;
	int seized = 0;
	if (stacks) {
		if (fp_pt_check_traceable(v->pid, &err) < 0 || fp_pt_seize(&p, v->pid, 0, &err) < 0)
			snprintf(v->stacks_note, sizeof(v->stacks_note), "no stacks: %s", err.msg);
		else
			seized = 1;
	} else {
		snprintf(v->stacks_note, sizeof(v->stacks_note), "stacks not requested (--no-stacks)");
	}
	read_shim(v);
	if (v->shim_state < 0 && seized && v->shim_state < 0) {
		/* A thread may have been stopped inside a table update: let it
		 * finish and read once more. */
		fp_pt_detach(&p, NULL);
		seized = 0;
		fp_shim_copy_free(&v->shim);
		read_shim(v);
		if (fp_pt_seize(&p, v->pid, 0, &err) == 0)
			seized = 1;
	}
	fp_proc_read_maps(v->pid, &v->maps, NULL);
	fp_proc_read_fds(v->pid, &v->fds, NULL);
	if (seized) {
		for (size_t i = 0; i < p.nthreads; i++) {
			if (p.threads[i].state != FP_PT_STOPPED)
				continue;
			struct thread_view *t = find_thread(v, p.threads[i].tid);
			if (!t)
				continue;
			if (fp_stack_unwind(v->pid, t->tid, t->frames, FP_STACK_MAX_DEPTH, &t->nframes,
					    &err) < 0)
				snprintf(t->stack_err, sizeof(t->stack_err), "%s", err.msg);
		}
		if (fp_pt_detach(&p, &err) < 0)
			snprintf(v->stacks_note, sizeof(v->stacks_note), "warning: detach: %s", err.msg);
	}
	fp_proc_read_status(v->pid, &v->status, NULL);
}

static void prot_str(int prot, int flags, char out[5])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = flags & MAP_SHARED ? 's' : 'p';
	out[4] = '\0';
}

static const char *origin_name(int o)
{
	switch (o) {
	case FP_ORIGIN_INHERITED: return "inherited";
	case FP_ORIGIN_PROGRAM: return "program";
	case FP_ORIGIN_SHIM: return "shim";
	case FP_ORIGIN_RESYNC: return "resync";
	default: return "-";
	}
}

#define SET(r, k, ...) ok &= api_info_set(r, k, __VA_ARGS__) == 0

static int put_threads(forkpoint_info *all, const struct view *v)
{
	int ok = 1;
	for (size_t i = 0; ok && i < v->nthreads; i++) {
		const struct thread_view *t = &v->threads[i];
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "thread");
		SET(it, "tid", "%d", (int)t->tid);
		SET(it, "comm", "%s", t->comm);
		SET(it, "state", "%c", t->state);
		if (t->stack_err[0])
			SET(it, "stack_error", "%s", t->stack_err);
		for (int k = 0; ok && k < t->nframes; k++) {
			const fp_frame *f = &t->frames[k];
			forkpoint_info *fr = api_info_add_item(it);
			if (!fr)
				return -1;
			SET(fr, "ip", "%" PRIu64, f->ip);
			if (f->sym[0])
				SET(fr, "symbol", "%s", f->sym);
			SET(fr, "offset", "%" PRIu64, f->offset);
			SET(fr, "module_offset", "%" PRIu64, f->module_offset);
			SET(fr, "module", "%s", f->module);
		}
	}
	return ok ? 0 : -1;
}

static int put_files(forkpoint_info *all, const struct view *v)
{
	int ok = 1;
	for (size_t i = 0; ok && i < v->maps.n; i++) {
		const struct fp_map *m = &v->maps.v[i];
		char prot[5];
		prot_str(m->prot, m->flags, prot);
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "map");
		SET(it, "start", "%" PRIu64, m->start);
		SET(it, "end", "%" PRIu64, m->end);
		SET(it, "prot", "%s", prot);
		SET(it, "offset", "%" PRIu64, m->offset);
		SET(it, "map_kind", "%s", fp_map_kind_name(m->kind));
		if (m->path)
			SET(it, "path", "%s", m->path);
		SET(it, "deleted", "%d", m->deleted);
	}
	for (size_t i = 0; ok && i < v->fds.n; i++) {
		const struct fp_fd *f = &v->fds.v[i];
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "fd");
		SET(it, "fd", "%d", f->fd);
		if (f->target)
			SET(it, "target", "%s", f->target);
		SET(it, "flags", "%d", f->flags);
		SET(it, "pos", "%" PRIu64, f->pos);
	}
	return ok ? 0 : -1;
}

static int put_shim(forkpoint_info *all, const struct view *v)
{
	int ok = 1;
	const struct fp_shim_table *t = v->shim.t;
	SET(all, "shim_path", "%s", v->shim.shim_path);
	SET(all, "shim_addr", "%" PRIu64, v->shim.addr);
	SET(all, "shim_fd_hwm", "%u", t->fd_hwm);
	SET(all, "shim_map_count", "%u", t->map_count);
	SET(all, "shim_thread_count", "%u", t->thread_count);
	SET(all, "shim_calls", "%" PRIu64, t->calls);
	SET(all, "shim_resyncs", "%" PRIu64, t->resyncs);
	SET(all, "shim_fd_overflow", "%u", t->fd_overflow);
	SET(all, "shim_fd_unrecorded", "%u", t->fd_unrecorded);
	SET(all, "shim_map_overflow", "%u", t->map_overflow);
	SET(all, "shim_thread_overflow", "%u", t->thread_overflow);
	SET(all, "report_ok", "%d", v->report_ok);
	if (v->report_ok) {
		SET(all, "report_fds", "%zu", v->report.fds);
		SET(all, "report_maps", "%zu", v->report.maps);
		SET(all, "report_threads", "%zu", v->report.threads);
		SET(all, "report_shim_fds", "%zu", v->report.n_shim_fds);
		SET(all, "report_shim_maps", "%zu", v->report.n_shim_maps);
	}
	for (uint32_t i = 0; ok && i < t->fd_hwm && i < FP_SHIM_MAX_FDS; i++) {
		if (!t->fds[i].used)
			continue;
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "shim_fd");
		SET(it, "fd", "%u", i);
		SET(it, "path", "%s", t->fds[i].path);
		SET(it, "open_flags", "%d", (int)t->fds[i].open_flags);
		SET(it, "type", "%d", (int)t->fds[i].type);
		SET(it, "origin", "%s", origin_name(t->fds[i].origin));
		SET(it, "cloexec", "%d", t->fds[i].fd_flags & 1);
	}
	for (uint32_t i = 0; ok && i < t->map_count && i < FP_SHIM_MAX_MAPS; i++) {
		const struct fp_shim_map *m = &t->maps[i];
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "shim_map");
		SET(it, "start", "%" PRIu64, (uint64_t)m->start);
		SET(it, "end", "%" PRIu64, (uint64_t)m->end);
		SET(it, "prot", "%d", (int)m->prot);
		SET(it, "flags", "%d", (int)m->flags);
		SET(it, "offset", "%" PRIu64, (uint64_t)m->offset);
		SET(it, "path", "%s", m->path);
		SET(it, "origin", "%s", origin_name(m->origin));
	}
	for (uint32_t i = 0; ok && i < t->thread_count && i < FP_SHIM_MAX_THREADS; i++) {
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "shim_thread");
		SET(it, "tid", "%d", (int)t->threads[i].tid);
	}
	for (size_t i = 0; ok && v->report_ok && i < v->report.n; i++) {
		forkpoint_info *it = api_info_add_item(all);
		if (!it)
			return -1;
		SET(it, "kind", "disagreement");
		SET(it, "what", "%s", fp_shim_dis_kind_name(v->report.v[i].kind));
		SET(it, "message", "%s", v->report.v[i].msg);
	}
	return ok ? 0 : -1;
}

/* The view as named values (forkpoint_inspect in include/forkpoint.h). */
static forkpoint_info *to_info(const struct view *v)
{
	forkpoint_info *all = api_info_new();
	int ok = all != NULL;
	if (!ok)
		return NULL;
	SET(all, "pid", "%d", (int)v->pid);
	if (v->session)
		SET(all, "session", "%s", v->session);
	if (v->note)
		SET(all, "note", "%s", v->note);
	SET(all, "comm", "%s", v->status.name);
	SET(all, "exe", "%s", v->exe);
	SET(all, "static", "%d", v->exe_kind_ok && v->exe_kind == FP_EXE_STATIC);
	SET(all, "state", "%c", v->status.state ? v->status.state : '?');
	SET(all, "ppid", "%d", (int)v->status.ppid);
	SET(all, "threads", "%d", v->status.threads);
	SET(all, "tracer_pid", "%d", (int)v->status.tracer_pid);
	SET(all, "vm_size_kb", "%" PRIu64, v->status.vm_size_kb);
	SET(all, "vm_rss_kb", "%" PRIu64, v->status.vm_rss_kb);
	SET(all, "rss_anon", "%s", v->rss_anon);
	SET(all, "rss_file", "%s", v->rss_file);
	SET(all, "rss_shmem", "%s", v->rss_shmem);
	SET(all, "vm_swap", "%s", v->vm_swap);
	if (v->stacks_note[0])
		SET(all, "stacks_note", "%s", v->stacks_note);
	SET(all, "shim_state", "%d", v->shim_state);
	if (v->shim_note[0])
		SET(all, "shim_note", "%s", v->shim_note);
	if (!ok || put_threads(all, v) < 0 || put_files(all, v) < 0 || (v->shim_state == 1 && put_shim(all, v) < 0)) {
		forkpoint_info_free(all);
		return NULL;
	}
	return all;
}

int forkpoint_inspect(const char *what, unsigned flags, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!what || !res)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_inspect needs a pid or session and a place for the result");
	struct view v;
	memset(&v, 0, sizeof(v));
	fp_error e = { 0 };
	char note[256];
	v.pid = resolve_target(what, &v.session, &e);
	if (v.pid < 0 || fp_proc_read_status(v.pid, &v.status, &e) < 0)
		return api_error(err, &e);
	if (v.status.state == 'Z') {
		snprintf(note, sizeof(note), "%d is a zombie: it has exited and waits for its parent %d", (int)v.pid,
			 (int)v.status.ppid);
		v.note = note;
	}
	if (v.status.tgid != v.pid)
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%d is a thread of process %d; inspect %d instead",
				(int)v.pid, (int)v.status.tgid, (int)v.status.tgid);
	char exe_probe[64], tmp[8];
	snprintf(exe_probe, sizeof(exe_probe), "/proc/%d/exe", (int)v.pid);
	if (readlink(exe_probe, tmp, sizeof(tmp)) < 0 && errno == ENOENT && v.status.state != 'Z')
		return api_fail(err, FORKPOINT_EUNSUPPORTED, ENOENT,
				"%d (%s) is a kernel thread: it has no memory or files to inspect", (int)v.pid,
				v.status.name);
	gather(&v, !(flags & FORKPOINT_INSPECT_NO_STACKS) && v.status.state != 'Z');
	forkpoint_info *r = to_info(&v);
	free(v.threads);
	fp_proc_maps_free(&v.maps);
	fp_proc_fds_free(&v.fds);
	fp_shim_copy_free(&v.shim);
	if (v.report_ok)
		fp_shim_report_free(&v.report);
	return api_info_out(r, res, err);
}
