#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dump/dump.h"

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
	struct fp_dump_opts o = { 0 };
	o.compress = FP_DUMP_ZSTD;
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
			o.leave_running = true;
		} else if (!strcmp(a, "--compress") || !strncmp(a, "--compress=", 11)) {
			const char *v = a[10] == '=' ? a + 11 : val;
			if (a[10] != '=')
				i++;
			if (!v)
				return cli_usage_error(dump_usage, "--compress needs zstd or none");
			if (!strcmp(v, "zstd"))
				o.compress = FP_DUMP_ZSTD;
			else if (!strcmp(v, "none"))
				o.compress = FP_DUMP_NONE;
			else
				return cli_usage_error(dump_usage, "unknown compression '%s' (zstd or none)", v);
		} else if (cli_criu_flag(a, &cf)) {
			o.tcp_established |= !strcmp(a, "--tcp-established");
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
			o.fsync = false;
		} else if (!strcmp(a, "--fsync")) {
			o.fsync = true;
		} else if (!strcmp(a, "--level")) {
			char *end;
			long v = val ? strtol(val, &end, 10) : 0;
			if (!val || *end || v < -7 || v > 19 || v == 0)
				return cli_usage_error(dump_usage, "--level needs a zstd level (-7..-1, 1..19)");
			o.zstd_level = (int)v;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (!val || atoi(val) <= 0 || atoi(val) > 16)
				return cli_usage_error(dump_usage, "--threads needs 1..16");
			o.threads = atoi(val);
			i++;
		} else if (!strcmp(a, "--pages")) {
			static const struct { const char *name; enum fp_dump_snap m; } modes[] = {
				{ "auto", FP_DUMP_SNAP_AUTO }, { "precopy", FP_DUMP_SNAP_PRECOPY },
				{ "fork", FP_DUMP_SNAP_FORK }, { "copy", FP_DUMP_SNAP_COPY },
			};
			size_t m = 0;
			while (val && m < sizeof(modes) / sizeof(modes[0]) && strcmp(val, modes[m].name))
				m++;
			if (!val || m == sizeof(modes) / sizeof(modes[0]))
				return cli_usage_error(dump_usage, "--pages needs auto, precopy, fork or copy");
			o.snapshot = modes[m].m;
			i++;
		} else {
			return cli_usage_error(dump_usage, "unknown argument '%s'", a);
		}
	}
	if (!o.pid)
		return cli_usage_error(dump_usage, "no process given (-t PID)");
	if (!o.dir)
		return cli_usage_error(dump_usage, "no snapshot directory given (-D DIR)");
	struct fp_dump_stats st;
	fp_error err;
	fp_error_clear(&err);
	int rc = fp_dump(&o, &st, &err);
	if (st.reaped)
		fprintf(stderr, "forkpoint: removed %d left-over temporary director%s of dumps that died (killed or crashed): %s\n",
			st.reaped, st.reaped == 1 ? "y" : "ies", st.reaped_names);
	if (rc)
		return cli_report(&err);
	printf("dumped %d (%d process%s, %d thread%s) to %s: %llu pages (%.1f MiB), %.1f MiB written, pause %.3f ms, "
	       "total %.3f ms, pages by %s\n",
	       o.pid, st.nprocs, st.nprocs == 1 ? "" : "es", st.nthreads, st.nthreads == 1 ? "" : "s", o.dir,
	       (unsigned long long)st.pages, (double)st.bytes_pages / 1048576.0, (double)st.bytes_written / 1048576.0,
	       st.pause_ms, st.total_ms, st.method ? st.method : "?");
	return 0;
}
