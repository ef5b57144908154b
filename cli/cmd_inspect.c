#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "elfinfo.h"
#include "cli_json.h"
#include "procfs.h"
#include "ptrace/ptrace.h"
#include "session/session_store.h"
#include "dump/shim_check.h"
#include "dump/shim_reader.h"
#include "ptrace/stack.h"

static const char inspect_usage[] =
	"usage: forkpoint inspect PID|SESSION [--json] [--no-stacks]\n"
	"\n"
	"Shows a process: its threads (state and stack, through a short ptrace stop),\n"
	"mappings, fds and memory sizes. For a program under the shim it also checks\n"
	"the shim's table against /proc and lists every disagreement.\n"
	"\n"
	"  --json       machine-readable output\n"
	"  --no-stacks  do not stop the process to unwind stacks\n";

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

static void print_text(struct view *v)
{
	printf("process %d (%s)%s%s\n", (int)v->pid, v->status.name, v->session ? "  session " : "",
	       v->session ? v->session : "");
	printf("  exe      %s%s\n", v->exe,
	       v->exe_kind_ok && v->exe_kind == FP_EXE_STATIC ? "  [statically linked]" : "");
	printf("  state    %c  ppid %d  threads %d  tracer %d\n", v->status.state ? v->status.state : '?',
	       (int)v->status.ppid, v->status.threads, (int)v->status.tracer_pid);
	printf("  memory   size %" PRIu64 " kB  rss %" PRIu64 " kB (anon %s, file %s, shmem %s)  swap %s\n",
	       v->status.vm_size_kb, v->status.vm_rss_kb, v->rss_anon, v->rss_file, v->rss_shmem,
	       v->vm_swap);

	printf("\nthreads (%zu)%s%s\n", v->nthreads, v->stacks_note[0] ? ": " : "", v->stacks_note);
	for (size_t i = 0; i < v->nthreads; i++) {
		struct thread_view *t = &v->threads[i];
		printf("  tid %d (%s) state %c\n", (int)t->tid, t->comm, t->state);
		if (t->stack_err[0])
			printf("    (no stack: %s)\n", t->stack_err);
		for (int k = 0; k < t->nframes; k++) {
			fp_frame *f = &t->frames[k];
			const char *mod = strrchr(f->module, '/');
			mod = mod ? mod + 1 : f->module;
			if (f->sym[0])
				printf("    #%-2d 0x%016" PRIx64 "  %s+0x%" PRIx64 " (%s)\n", k, f->ip, f->sym,
				       f->offset, mod);
			else
				printf("    #%-2d 0x%016" PRIx64 "  ?? (%s+0x%" PRIx64 ")\n", k, f->ip, mod,
				       f->module_offset);
		}
	}

	printf("\nmappings (%zu)\n", v->maps.n);
	for (size_t i = 0; i < v->maps.n; i++) {
		struct fp_map *m = &v->maps.v[i];
		char prot[5];
		prot_str(m->prot, m->flags, prot);
		printf("  %012" PRIx64 "-%012" PRIx64 " %s %8" PRIu64 "K %08" PRIx64 " %s%s\n", m->start,
		       m->end, prot, (m->end - m->start) >> 10, m->offset, m->path ? m->path : "",
		       m->deleted ? " (deleted)" : "");
	}

	printf("\nfds (%zu)\n", v->fds.n);
	for (size_t i = 0; i < v->fds.n; i++) {
		struct fp_fd *f = &v->fds.v[i];
		printf("  %4d  flags 0%o  pos %-10" PRIu64 " %s\n", f->fd, f->flags, f->pos,
		       f->target ? f->target : "?");
	}

	printf("\nshim\n");
	if (v->shim_state != 1) {
		printf("  %s\n", v->shim_note);
		return;
	}
	const struct fp_shim_table *t = v->shim.t;
	printf("  %s, table at 0x%" PRIx64 "\n", v->shim.shim_path, v->shim.addr);
	printf("  tracks %u fd slots, %u mappings, %u threads; %" PRIu64 " wrapped calls, %" PRIu64
	       " resyncs\n",
	       t->fd_hwm, t->map_count, t->thread_count, t->calls, t->resyncs);
	if (t->fd_overflow || t->map_overflow || t->thread_overflow)
		printf("  overflow: %u fds, %u mappings, %u threads did not fit\n", t->fd_overflow,
		       t->map_overflow, t->thread_overflow);
	if (!v->report_ok) {
		printf("  %s\n", v->shim_note);
		return;
	}
	if (v->report.n == 0)
		printf("  table agrees with /proc (%zu fds, %zu mappings, %zu threads compared)\n",
		       v->report.fds, v->report.maps, v->report.threads);
	else
		printf("  %zu disagreement%s with /proc:\n", v->report.n, v->report.n == 1 ? "" : "s");
	for (size_t i = 0; i < v->report.n; i++)
		printf("  - [%s] %s\n", fp_shim_dis_kind_name(v->report.v[i].kind), v->report.v[i].msg);
	if (v->report.n_shim_fds || v->report.n_shim_maps)
		printf("  the shim's own: %zu fds, %zu mappings (never dumped)\n", v->report.n_shim_fds,
		       v->report.n_shim_maps);
	for (uint32_t i = 0; i < t->fd_hwm && i < FP_SHIM_MAX_FDS; i++)
		if (t->fds[i].used && t->fds[i].origin == FP_ORIGIN_PROGRAM && t->fds[i].path[0] &&
		    t->fds[i].path[0] != '/') {
			/* relative paths are worth showing: /proc only has the resolved one */
			printf("  fd %u opened as '%s'\n", i, t->fds[i].path);
		}
}

static void print_json(struct view *v)
{
	fp_json j;
	fp_json_init(&j, stdout, 1);
	fp_json_obj_begin(&j, NULL);
	fp_json_int(&j, "pid", v->pid);
	fp_json_str(&j, "session", v->session);
	fp_json_str(&j, "comm", v->status.name);
	fp_json_str(&j, "exe", v->exe);
	fp_json_bool(&j, "static", v->exe_kind_ok && v->exe_kind == FP_EXE_STATIC);
	char st[2] = { v->status.state, 0 };
	fp_json_str(&j, "state", st);
	fp_json_int(&j, "ppid", v->status.ppid);
	fp_json_int(&j, "tracer_pid", v->status.tracer_pid);
	fp_json_obj_begin(&j, "memory_kb");
	fp_json_uint(&j, "size", v->status.vm_size_kb);
	fp_json_uint(&j, "rss", v->status.vm_rss_kb);
	fp_json_int(&j, "rss_anon", atoll(v->rss_anon));
	fp_json_int(&j, "rss_file", atoll(v->rss_file));
	fp_json_int(&j, "rss_shmem", atoll(v->rss_shmem));
	fp_json_int(&j, "swap", atoll(v->vm_swap));
	fp_json_obj_end(&j);
	fp_json_str(&j, "stacks_note", v->stacks_note[0] ? v->stacks_note : NULL);
	fp_json_arr_begin(&j, "threads");
	for (size_t i = 0; i < v->nthreads; i++) {
		struct thread_view *t = &v->threads[i];
		fp_json_obj_begin(&j, NULL);
		fp_json_int(&j, "tid", t->tid);
		fp_json_str(&j, "comm", t->comm);
		char s[2] = { t->state, 0 };
		fp_json_str(&j, "state", s);
		if (t->stack_err[0])
			fp_json_str(&j, "stack_error", t->stack_err);
		fp_json_arr_begin(&j, "stack");
		for (int k = 0; k < t->nframes; k++) {
			fp_frame *f = &t->frames[k];
			fp_json_obj_begin(&j, NULL);
			fp_json_hex(&j, "ip", f->ip);
			fp_json_str(&j, "symbol", f->sym[0] ? f->sym : NULL);
			fp_json_hex(&j, "offset", f->sym[0] ? f->offset : f->module_offset);
			fp_json_str(&j, "module", f->module);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_arr_begin(&j, "mappings");
	for (size_t i = 0; i < v->maps.n; i++) {
		struct fp_map *m = &v->maps.v[i];
		char prot[5];
		prot_str(m->prot, m->flags, prot);
		fp_json_obj_begin(&j, NULL);
		fp_json_hex(&j, "start", m->start);
		fp_json_hex(&j, "end", m->end);
		fp_json_str(&j, "prot", prot);
		fp_json_hex(&j, "offset", m->offset);
		fp_json_str(&j, "kind", fp_map_kind_name(m->kind));
		fp_json_str(&j, "path", m->path);
		fp_json_bool(&j, "deleted", m->deleted);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_arr_begin(&j, "fds");
	for (size_t i = 0; i < v->fds.n; i++) {
		struct fp_fd *f = &v->fds.v[i];
		fp_json_obj_begin(&j, NULL);
		fp_json_int(&j, "fd", f->fd);
		fp_json_str(&j, "target", f->target);
		fp_json_int(&j, "flags", f->flags);
		fp_json_uint(&j, "pos", f->pos);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_obj_begin(&j, "shim");
	fp_json_bool(&j, "present", v->shim_state == 1);
	fp_json_str(&j, "note", v->shim_note[0] ? v->shim_note : NULL);
	if (v->shim_state == 1) {
		const struct fp_shim_table *t = v->shim.t;
		fp_json_str(&j, "path", v->shim.shim_path);
		fp_json_hex(&j, "table_addr", v->shim.addr);
		fp_json_uint(&j, "calls", t->calls);
		fp_json_arr_begin(&j, "fds");
		for (uint32_t i = 0; i < t->fd_hwm && i < FP_SHIM_MAX_FDS; i++) {
			if (!t->fds[i].used)
				continue;
			fp_json_obj_begin(&j, NULL);
			fp_json_int(&j, "fd", i);
			fp_json_str(&j, "path", t->fds[i].path);
			fp_json_int(&j, "open_flags", t->fds[i].open_flags);
			fp_json_int(&j, "type", t->fds[i].type);
			fp_json_str(&j, "origin", origin_name(t->fds[i].origin));
			fp_json_bool(&j, "cloexec", t->fds[i].fd_flags & 1);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_arr_begin(&j, "mappings");
		for (uint32_t i = 0; i < t->map_count && i < FP_SHIM_MAX_MAPS; i++) {
			const struct fp_shim_map *m = &t->maps[i];
			fp_json_obj_begin(&j, NULL);
			fp_json_hex(&j, "start", m->start);
			fp_json_hex(&j, "end", m->end);
			fp_json_int(&j, "prot", m->prot);
			fp_json_int(&j, "flags", m->flags);
			fp_json_hex(&j, "offset", m->offset);
			fp_json_str(&j, "path", m->path);
			fp_json_str(&j, "origin", origin_name(m->origin));
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_arr_begin(&j, "threads");
		for (uint32_t i = 0; i < t->thread_count && i < FP_SHIM_MAX_THREADS; i++)
			fp_json_int(&j, NULL, t->threads[i].tid);
		fp_json_arr_end(&j);
		if (v->report_ok) {
			fp_json_arr_begin(&j, "disagreements");
			for (size_t i = 0; i < v->report.n; i++) {
				fp_json_obj_begin(&j, NULL);
				fp_json_str(&j, "kind", fp_shim_dis_kind_name(v->report.v[i].kind));
				fp_json_str(&j, "message", v->report.v[i].msg);
				fp_json_obj_end(&j);
			}
			fp_json_arr_end(&j);
		}
	}
	fp_json_obj_end(&j);
	fp_json_obj_end(&j);
	fp_json_finish(&j);
}

int cmd_inspect(int argc, char **argv)
{
	int json = 0, stacks = 1;
	const char *what = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--no-stacks"))
			stacks = 0;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(inspect_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(inspect_usage, "unknown option '%s'", argv[i]);
		else if (!what)
			what = argv[i];
		else
			return cli_usage_error(inspect_usage, "too many arguments");
	}
	if (!what)
		return cli_usage_error(inspect_usage, "no process or session given");
	struct view v;
	memset(&v, 0, sizeof(v));
	fp_error err;
	v.pid = resolve_target(what, &v.session, &err);
	if (v.pid < 0)
		return cli_report(&err);
	if (fp_proc_read_status(v.pid, &v.status, &err) < 0)
		return cli_report(&err);
	if (v.status.state == 'Z')
		fprintf(stderr, "forkpoint: note: %d is a zombie: it has exited and waits for its parent %d\n",
			(int)v.pid, (int)v.status.ppid);
	if (v.status.tgid != v.pid) {
		fprintf(stderr, "forkpoint: %d is a thread of process %d; inspect %d instead\n", (int)v.pid,
			(int)v.status.tgid, (int)v.status.tgid);
		return FP_EXIT_USAGE;
	}
	char maps_probe[64];
	snprintf(maps_probe, sizeof(maps_probe), "/proc/%d/exe", (int)v.pid);
	char tmp[8];
	if (readlink(maps_probe, tmp, sizeof(tmp)) < 0 && errno == ENOENT && v.status.state != 'Z') {
		fprintf(stderr, "forkpoint: %d (%s) is a kernel thread: it has no memory or files to inspect\n",
			(int)v.pid, v.status.name);
		return FP_EXIT_UNSUPPORTED;
	}
	gather(&v, stacks && v.status.state != 'Z');
	if (json)
		print_json(&v);
	else
		print_text(&v);
	free(v.threads);
	fp_proc_maps_free(&v.maps);
	fp_proc_fds_free(&v.fds);
	fp_shim_copy_free(&v.shim);
	if (v.report_ok)
		fp_shim_report_free(&v.report);
	return 0;
}
