#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char dump_usage[] =
	"usage: forkpoint dump -t PID -D DIR [--leave-running] [--compress zstd|none]\n"
	"                      [--level N] [--threads N] [--pages auto|precopy|fork|copy]\n"
	"                      [-o LOG] [-v] [--timeout MS] [--fsync|--no-fsync]\n"
	"                      [--ghost-limit SIZE] [CRIU flags]\n"
	"\n"
	"Checkpoints process PID and its children into a new directory DIR as a\n"
	"CRIU 4.x image set. DIR must not exist or be empty; it appears only when the\n"
	"snapshot is complete (forkpoint.manifest is written last).\n"
	"\n"
	"  -t, --tree PID        the process to dump (with all its descendants)\n"
	"  -D, --images-dir DIR  the snapshot directory to create\n"
	"  -R, --leave-running   let the process run on (default: kill it after the dump)\n"
	"  --compress zstd|none  page compression (default zstd). zstd images need\n"
	"                        `forkpoint decompress DIR` before plain `criu restore`;\n"
	"                        none images restore with `criu restore -D DIR` directly\n"
	"  --level N             zstd level (default -1; 1: ~15 percent slower, ~5-10 percent smaller)\n"
	"  --threads N           compression threads (default: one per CPU, at most 4)\n"
	"  --pages MODE          with --leave-running, how pages are taken while the\n"
	"                        process runs on: precopy copies them while it runs,\n"
	"                        under write tracking (userfaultfd, Linux 6.7+), and\n"
	"                        stops it only to read the pages it wrote meanwhile;\n"
	"                        fork clones it into a frozen copy-on-write copy and\n"
	"                        reads that (pause: a fork, ~20 ms per GiB); copy\n"
	"                        copies every page while it is stopped. auto (default):\n"
	"                        precopy from 64 MiB of anonymous memory on, else fork.\n"
	"                        precopy falls back to fork, fork to copy\n"
	"  --ghost-limit SIZE    the largest file deleted while open that the image may\n"
	"                        carry whole (K, M, G suffixes; default 64M)\n"
	CLI_CRIU_FLAGS_HELP
	"  -o, --log-file LOG    the log (default DIR/dump.log)\n"
	"  -v                    more detail in the log (every VMA and fd)\n"
	"  --timeout MS          deadline for each thread to stop (default 2000)\n"
	"  --fsync               make the snapshot durable against power loss (syncfs\n"
	"                        before the manifest, fsync of the parent after the\n"
	"                        rename). Default --no-fsync: a snapshot is still\n"
	"                        complete or absent if forkpoint is killed\n"
	"\n"
	"Regular files, pipes, devices such as /dev/null, terminals (/dev/pts),\n"
	"eventfd, epoll, signalfd, timerfd, sockets without a connection (TCP\n"
	"listeners and unconnected TCP sockets, unix stream listeners), unix\n"
	"connections inside the tree, established TCP connections (with\n"
	"--tcp-established), memfds\n"
	"(fds and mappings, with their seals) and shared anonymous memory (once\n"
	"for the whole tree, read while it is stopped) are dumped;\n"
	"connected sockets and other special fds are refused with a message naming\n"
	"the fd. A process that is not a session leader restores into the\n"
	"restorer's session (criu restore needs --shell-job for it, which\n"
	"`forkpoint restore --engine criu` passes).\n";

int cmd_dump(int argc, char **argv)
{
	/* what is given, set on the options once pid and directory are known */
	struct {
		pid_t pid;
		const char *dir, *log_path;
		unsigned flags;
		long long zstd_level, threads, ghost_limit, timeout_ms, verbose, pages;
	} o = { 0 };
	struct cli_criu_flags cf = { .n = 0 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(dump_usage, stdout);
			return 0;
		} else if (!strcmp(a, "-t") || !strcmp(a, "--tree")) {
			char *end;
			if (!val)
				return cli_usage_error(dump_usage, "%s needs a pid", a);
			long v = strtol(val, &end, 10);
			if (*end || v <= 0 || v > 0x7fffffff)
				return cli_usage_error(dump_usage, "'%s' is not a pid", val);
			o.pid = (pid_t)v;
			i++;
		} else if (!strcmp(a, "-D") || !strcmp(a, "--images-dir")) {
			if (!val)
				return cli_usage_error(dump_usage, "%s needs a directory", a);
			o.dir = val;
			i++;
		} else if (!strcmp(a, "-R") || !strcmp(a, "--leave-running")) {
			o.flags |= FORKPOINT_DUMP_LEAVE_RUNNING;
		} else if (!strcmp(a, "--compress") || !strncmp(a, "--compress=", 11)) {
			const char *v = a[10] == '=' ? a + 11 : val;
			if (a[10] != '=')
				i++;
			if (!v)
				return cli_usage_error(dump_usage, "--compress needs zstd or none");
			if (!strcmp(v, "zstd"))
				o.flags &= ~(unsigned)FORKPOINT_DUMP_NO_COMPRESS;
			else if (!strcmp(v, "none"))
				o.flags |= FORKPOINT_DUMP_NO_COMPRESS;
			else
				return cli_usage_error(dump_usage, "unknown compression '%s' (zstd or none)", v);
		} else if (cli_criu_flag(a, &cf)) {
			if (!strcmp(a, "--tcp-established"))
				o.flags |= FORKPOINT_DUMP_TCP_ESTABLISHED;
			if (!strcmp(a, "--ext-unix-sk"))
				o.flags |= FORKPOINT_DUMP_EXT_UNIX_SK;
			continue;
		} else if (!strcmp(a, "--ghost-limit")) {
			char *end;
			unsigned long long v = val ? strtoull(val, &end, 10) : 0;
			int shift = !val ? -1 : !*end ? 0 : !strcmp(end, "K") ? 10 : !strcmp(end, "M") ? 20 :
								  !strcmp(end, "G") ? 30 : -1;
			if (shift < 0 || !v || v > (1ull << 40) >> shift)
				return cli_usage_error(dump_usage, "--ghost-limit needs a size such as 512K, 64M or 2G");
			o.ghost_limit = v << shift;
			i++;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--log-file")) {
			if (!val)
				return cli_usage_error(dump_usage, "%s needs a file", a);
			o.log_path = val;
			i++;
		} else if (!strcmp(a, "-v") || !strncmp(a, "-v", 2)) {
			o.verbose = 1;
		} else if (!strcmp(a, "--timeout")) {
			if (!val || atoi(val) <= 0)
				return cli_usage_error(dump_usage, "--timeout needs milliseconds");
			o.timeout_ms = atoi(val);
			i++;
		} else if (!strcmp(a, "--no-fsync")) {
			o.flags &= ~(unsigned)FORKPOINT_DUMP_FSYNC;
		} else if (!strcmp(a, "--fsync")) {
			o.flags |= FORKPOINT_DUMP_FSYNC;
		} else if (!strcmp(a, "--level")) {
			char *end;
			long v = val ? strtol(val, &end, 10) : 0;
			if (!val || *end || v < -7 || v > 19 || v == 0)
				return cli_usage_error(dump_usage, "--level needs a zstd level (-7..-1, 1..19)");
			o.zstd_level = v;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (!val || atoi(val) <= 0 || atoi(val) > 16)
				return cli_usage_error(dump_usage, "--threads needs 1..16");
			o.threads = atoi(val);
			i++;
		} else if (!strcmp(a, "--pages")) {
			static const struct { const char *name; int m; } modes[] = {
				{ "auto", FORKPOINT_PAGES_AUTO }, { "precopy", FORKPOINT_PAGES_PRECOPY },
				{ "fork", FORKPOINT_PAGES_FORK }, { "copy", FORKPOINT_PAGES_COPY },
			};
			size_t m = 0;
			while (val && m < sizeof(modes) / sizeof(modes[0]) && strcmp(val, modes[m].name))
				m++;
			if (!val || m == sizeof(modes) / sizeof(modes[0]))
				return cli_usage_error(dump_usage, "--pages needs auto, precopy, fork or copy");
			o.pages = modes[m].m;
			i++;
		} else {
			return cli_usage_error(dump_usage, "unknown argument '%s'", a);
		}
	}
	if (!o.pid)
		return cli_usage_error(dump_usage, "no process given (-t PID)");
	if (!o.dir)
		return cli_usage_error(dump_usage, "no snapshot directory given (-D DIR)");
	forkpoint_error err;
	forkpoint_dump_options *d;
	if (forkpoint_dump_options_new(o.pid, o.dir, &d, &err) < 0)
		return cli_report_api(&err);
	const struct {
		int opt;
		long long v;
	} set[] = { { FORKPOINT_DUMP_OPT_FLAGS, o.flags },		{ FORKPOINT_DUMP_OPT_ZSTD_LEVEL, o.zstd_level },
		    { FORKPOINT_DUMP_OPT_THREADS, o.threads },		{ FORKPOINT_DUMP_OPT_GHOST_LIMIT, o.ghost_limit },
		    { FORKPOINT_DUMP_OPT_TIMEOUT_MS, o.timeout_ms },	{ FORKPOINT_DUMP_OPT_VERBOSE, o.verbose },
		    { FORKPOINT_DUMP_OPT_PAGES, o.pages } };
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < sizeof(set) / sizeof(set[0]); k++)
		if (set[k].v || set[k].opt == FORKPOINT_DUMP_OPT_FLAGS) /* 0: the default */
			rc = forkpoint_dump_options_set(d, set[k].opt, set[k].v, &err);
	if (rc == 0 && o.log_path)
		rc = forkpoint_dump_options_set_str(d, FORKPOINT_DUMP_OPT_LOG, o.log_path, &err);
	forkpoint_info *st = NULL;
	if (rc == 0)
		rc = forkpoint_dump_with(d, &st, &err);
	forkpoint_dump_options_free(d);
	int netlocks = (int)forkpoint_info_int(st, "netlocks_lifted");
	if (netlocks)
		fprintf(stderr,
			"forkpoint: lifted the network lock (iptables rules) of %lld TCP connection(s) left by %d snapshot(s) "
			"deleted without a restore: %s\n",
			(long long)forkpoint_info_int(st, "netlock_conns"), netlocks, forkpoint_info_get(st, "netlock_names"));
	int reaped = (int)forkpoint_info_int(st, "reaped");
	if (reaped)
		fprintf(stderr, "forkpoint: removed %d left-over temporary director%s of dumps that died (killed or crashed): %s\n",
			reaped, reaped == 1 ? "y" : "ies", forkpoint_info_get(st, "reaped_names"));
	if (rc < 0) {
		forkpoint_info_free(st);
		return cli_report_api(&err);
	}
	int nprocs = (int)forkpoint_info_int(st, "processes"), nthreads = (int)forkpoint_info_int(st, "threads");
	const char *method = forkpoint_info_get(st, "method");
	printf("dumped %d (%d process%s, %d thread%s) to %s: %llu pages (%.1f MiB), %.1f MiB written, pause %.3f ms, "
	       "total %.3f ms, pages by %s\n",
	       o.pid, nprocs, nprocs == 1 ? "" : "es", nthreads, nthreads == 1 ? "" : "s", o.dir,
	       strtoull(forkpoint_info_get(st, "pages"), NULL, 10),
	       (double)strtoull(forkpoint_info_get(st, "bytes_pages"), NULL, 10) / 1048576.0,
	       (double)strtoull(forkpoint_info_get(st, "bytes_written"), NULL, 10) / 1048576.0,
	       forkpoint_info_double(st, "pause_ms"), forkpoint_info_double(st, "total_ms"), method[0] ? method : "?");
	forkpoint_info_free(st);
	return 0;
}
