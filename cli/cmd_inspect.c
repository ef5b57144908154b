#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char inspect_usage[] =
	"usage: forkpoint inspect PID|SESSION [--json] [--no-stacks]\n"
	"\n"
	"Shows a process: its threads (state and stack, through a short ptrace stop),\n"
	"mappings, fds and memory sizes. For a program under the shim it also checks\n"
	"the shim's table against /proc and lists every disagreement.\n"
	"\n"
	"  --json       machine-readable output\n"
	"  --no-stacks  do not stop the process to unwind stacks\n";

#define GET(r, k) forkpoint_info_get(r, k)
#define U64(r, k) ((uint64_t)strtoull(forkpoint_info_get(r, k), NULL, 10))

/* The items of one kind, in order. */
#define EACH(it, v, kind_name)                                                                          \
	for (size_t it##_i = 0; it##_i < forkpoint_info_items(v); it##_i++)                             \
		for (const forkpoint_info *it = forkpoint_info_item(v, it##_i); it;                       \
		     it = NULL)                                                                          \
			if (!strcmp(GET(it, "kind"), kind_name))

static size_t count(const forkpoint_info *v, const char *kind)
{
	size_t n = 0;
	EACH(it, v, kind)
		n++;
	return n;
}

/* key's value, or JSON null when it was not set. */
static const char *or_null(const forkpoint_info *r, const char *key)
{
	return forkpoint_info_has(r, key) ? GET(r, key) : NULL;
}

static void print_text(const forkpoint_info *v)
{
	const char *session = or_null(v, "session");
	printf("process %s (%s)%s%s\n", GET(v, "pid"), GET(v, "comm"), session ? "  session " : "",
	       session ? session : "");
	printf("  exe      %s%s\n", GET(v, "exe"), forkpoint_info_int(v, "static") ? "  [statically linked]" : "");
	printf("  state    %s  ppid %s  threads %s  tracer %s\n", GET(v, "state"), GET(v, "ppid"), GET(v, "threads"),
	       GET(v, "tracer_pid"));
	printf("  memory   size %" PRIu64 " kB  rss %" PRIu64 " kB (anon %s, file %s, shmem %s)  swap %s\n",
	       U64(v, "vm_size_kb"), U64(v, "vm_rss_kb"), GET(v, "rss_anon"), GET(v, "rss_file"),
	       GET(v, "rss_shmem"), GET(v, "vm_swap"));

	const char *note = GET(v, "stacks_note");
	printf("\nthreads (%zu)%s%s\n", count(v, "thread"), note[0] ? ": " : "", note);
	EACH(t, v, "thread") {
		printf("  tid %s (%s) state %s\n", GET(t, "tid"), GET(t, "comm"), GET(t, "state"));
		if (GET(t, "stack_error")[0])
			printf("    (no stack: %s)\n", GET(t, "stack_error"));
		for (size_t k = 0; k < forkpoint_info_items(t); k++) {
			const forkpoint_info *f = forkpoint_info_item(t, k);
			const char *mod = strrchr(GET(f, "module"), '/');
			mod = mod ? mod + 1 : GET(f, "module");
			if (forkpoint_info_has(f, "symbol"))
				printf("    #%-2zu 0x%016" PRIx64 "  %s+0x%" PRIx64 " (%s)\n", k, U64(f, "ip"),
				       GET(f, "symbol"), U64(f, "offset"), mod);
			else
				printf("    #%-2zu 0x%016" PRIx64 "  ?? (%s+0x%" PRIx64 ")\n", k, U64(f, "ip"), mod,
				       U64(f, "module_offset"));
		}
	}

	printf("\nmappings (%zu)\n", count(v, "map"));
	EACH(m, v, "map")
		printf("  %012" PRIx64 "-%012" PRIx64 " %s %8" PRIu64 "K %08" PRIx64 " %s%s\n", U64(m, "start"),
		       U64(m, "end"), GET(m, "prot"), (U64(m, "end") - U64(m, "start")) >> 10, U64(m, "offset"),
		       GET(m, "path"), forkpoint_info_int(m, "deleted") ? " (deleted)" : "");

	printf("\nfds (%zu)\n", count(v, "fd"));
	EACH(f, v, "fd")
		printf("  %4s  flags 0%llo  pos %-10" PRIu64 " %s\n", GET(f, "fd"),
		       (unsigned long long)forkpoint_info_int(f, "flags"), U64(f, "pos"),
		       forkpoint_info_has(f, "target") ? GET(f, "target") : "?");

	printf("\nshim\n");
	if (forkpoint_info_int(v, "shim_state") != 1) {
		printf("  %s\n", GET(v, "shim_note"));
		return;
	}
	printf("  %s, table at 0x%" PRIx64 "\n", GET(v, "shim_path"), U64(v, "shim_addr"));
	printf("  tracks %s fd slots, %s mappings, %s threads; %s wrapped calls, %s resyncs\n", GET(v, "shim_fd_hwm"),
	       GET(v, "shim_map_count"), GET(v, "shim_thread_count"), GET(v, "shim_calls"), GET(v, "shim_resyncs"));
	if (U64(v, "shim_fd_overflow") || U64(v, "shim_map_overflow") || U64(v, "shim_thread_overflow"))
		printf("  overflow: %s fds, %s mappings, %s threads did not fit\n", GET(v, "shim_fd_overflow"),
		       GET(v, "shim_map_overflow"), GET(v, "shim_thread_overflow"));
	if (U64(v, "shim_fd_unrecorded"))
		printf("  %s fd change(s) made by signal handlers were not recorded: its fds are read from /proc\n",
		       GET(v, "shim_fd_unrecorded"));
	if (!forkpoint_info_int(v, "report_ok")) {
		printf("  %s\n", GET(v, "shim_note"));
		return;
	}
	size_t n = count(v, "disagreement");
	if (n == 0)
		printf("  table agrees with /proc (%s fds, %s mappings, %s threads compared)\n", GET(v, "report_fds"),
		       GET(v, "report_maps"), GET(v, "report_threads"));
	else
		printf("  %zu disagreement%s with /proc:\n", n, n == 1 ? "" : "s");
	EACH(d, v, "disagreement")
		printf("  - [%s] %s\n", GET(d, "what"), GET(d, "message"));
	if (U64(v, "report_shim_fds") || U64(v, "report_shim_maps"))
		printf("  the shim's own: %s fds, %s mappings (never dumped)\n", GET(v, "report_shim_fds"),
		       GET(v, "report_shim_maps"));
	EACH(f, v, "shim_fd") {
		/* relative paths are worth showing: /proc only has the resolved one */
		const char *path = GET(f, "path");
		if (!strcmp(GET(f, "origin"), "program") && path[0] && path[0] != '/')
			printf("  fd %s opened as '%s'\n", GET(f, "fd"), path);
	}
}

static void print_json(const forkpoint_info *v)
{
	fp_json j;
	fp_json_init(&j, stdout, 1);
	fp_json_obj_begin(&j, NULL);
	fp_json_int(&j, "pid", forkpoint_info_int(v, "pid"));
	fp_json_str(&j, "session", or_null(v, "session"));
	fp_json_str(&j, "comm", GET(v, "comm"));
	fp_json_str(&j, "exe", GET(v, "exe"));
	fp_json_bool(&j, "static", forkpoint_info_int(v, "static") != 0);
	fp_json_str(&j, "state", GET(v, "state"));
	fp_json_int(&j, "ppid", forkpoint_info_int(v, "ppid"));
	fp_json_int(&j, "tracer_pid", forkpoint_info_int(v, "tracer_pid"));
	fp_json_obj_begin(&j, "memory_kb");
	fp_json_uint(&j, "size", U64(v, "vm_size_kb"));
	fp_json_uint(&j, "rss", U64(v, "vm_rss_kb"));
	fp_json_int(&j, "rss_anon", atoll(GET(v, "rss_anon")));
	fp_json_int(&j, "rss_file", atoll(GET(v, "rss_file")));
	fp_json_int(&j, "rss_shmem", atoll(GET(v, "rss_shmem")));
	fp_json_int(&j, "swap", atoll(GET(v, "vm_swap")));
	fp_json_obj_end(&j);
	fp_json_str(&j, "stacks_note", or_null(v, "stacks_note"));
	fp_json_arr_begin(&j, "threads");
	EACH(t, v, "thread") {
		fp_json_obj_begin(&j, NULL);
		fp_json_int(&j, "tid", forkpoint_info_int(t, "tid"));
		fp_json_str(&j, "comm", GET(t, "comm"));
		fp_json_str(&j, "state", GET(t, "state"));
		if (forkpoint_info_has(t, "stack_error"))
			fp_json_str(&j, "stack_error", GET(t, "stack_error"));
		fp_json_arr_begin(&j, "stack");
		for (size_t k = 0; k < forkpoint_info_items(t); k++) {
			const forkpoint_info *f = forkpoint_info_item(t, k);
			int sym = forkpoint_info_has(f, "symbol");
			fp_json_obj_begin(&j, NULL);
			fp_json_hex(&j, "ip", U64(f, "ip"));
			fp_json_str(&j, "symbol", or_null(f, "symbol"));
			fp_json_hex(&j, "offset", sym ? U64(f, "offset") : U64(f, "module_offset"));
			fp_json_str(&j, "module", GET(f, "module"));
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_arr_begin(&j, "mappings");
	EACH(m, v, "map") {
		fp_json_obj_begin(&j, NULL);
		fp_json_hex(&j, "start", U64(m, "start"));
		fp_json_hex(&j, "end", U64(m, "end"));
		fp_json_str(&j, "prot", GET(m, "prot"));
		fp_json_hex(&j, "offset", U64(m, "offset"));
		fp_json_str(&j, "kind", GET(m, "map_kind"));
		fp_json_str(&j, "path", or_null(m, "path"));
		fp_json_bool(&j, "deleted", forkpoint_info_int(m, "deleted") != 0);
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_arr_begin(&j, "fds");
	EACH(f, v, "fd") {
		fp_json_obj_begin(&j, NULL);
		fp_json_int(&j, "fd", forkpoint_info_int(f, "fd"));
		fp_json_str(&j, "target", or_null(f, "target"));
		fp_json_int(&j, "flags", forkpoint_info_int(f, "flags"));
		fp_json_uint(&j, "pos", U64(f, "pos"));
		fp_json_obj_end(&j);
	}
	fp_json_arr_end(&j);
	fp_json_obj_begin(&j, "shim");
	int present = forkpoint_info_int(v, "shim_state") == 1;
	fp_json_bool(&j, "present", present);
	fp_json_str(&j, "note", or_null(v, "shim_note"));
	if (present) {
		fp_json_str(&j, "path", GET(v, "shim_path"));
		fp_json_hex(&j, "table_addr", U64(v, "shim_addr"));
		fp_json_uint(&j, "calls", U64(v, "shim_calls"));
		fp_json_arr_begin(&j, "fds");
		EACH(f, v, "shim_fd") {
			fp_json_obj_begin(&j, NULL);
			fp_json_int(&j, "fd", forkpoint_info_int(f, "fd"));
			fp_json_str(&j, "path", GET(f, "path"));
			fp_json_int(&j, "open_flags", forkpoint_info_int(f, "open_flags"));
			fp_json_int(&j, "type", forkpoint_info_int(f, "type"));
			fp_json_str(&j, "origin", GET(f, "origin"));
			fp_json_bool(&j, "cloexec", forkpoint_info_int(f, "cloexec") != 0);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_arr_begin(&j, "mappings");
		EACH(m, v, "shim_map") {
			fp_json_obj_begin(&j, NULL);
			fp_json_hex(&j, "start", U64(m, "start"));
			fp_json_hex(&j, "end", U64(m, "end"));
			fp_json_int(&j, "prot", forkpoint_info_int(m, "prot"));
			fp_json_int(&j, "flags", forkpoint_info_int(m, "flags"));
			fp_json_hex(&j, "offset", U64(m, "offset"));
			fp_json_str(&j, "path", GET(m, "path"));
			fp_json_str(&j, "origin", GET(m, "origin"));
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_arr_begin(&j, "threads");
		EACH(t, v, "shim_thread")
			fp_json_int(&j, NULL, forkpoint_info_int(t, "tid"));
		fp_json_arr_end(&j);
		if (forkpoint_info_int(v, "report_ok")) {
			fp_json_arr_begin(&j, "disagreements");
			EACH(d, v, "disagreement") {
				fp_json_obj_begin(&j, NULL);
				fp_json_str(&j, "kind", GET(d, "what"));
				fp_json_str(&j, "message", GET(d, "message"));
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
	forkpoint_error err;
	forkpoint_info *v;
	if (forkpoint_inspect(what, stacks ? 0 : FORKPOINT_INSPECT_NO_STACKS, &v, &err) < 0)
		return cli_report_api(&err);
	if (forkpoint_info_get(v, "note")[0])
		fprintf(stderr, "forkpoint: note: %s\n", forkpoint_info_get(v, "note"));
	if (json)
		print_json(v);
	else
		print_text(v);
	forkpoint_info_free(v);
	return 0;
}
