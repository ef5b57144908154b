/* The image layer with every option (version 0.2 of include/forkpoint.h):
 * option handles over struct fp_dump_opts and fp_restore_opts, so that an
 * option added later changes no public struct. */
#include "api/api_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump/dump.h"
#include "restore/restore.h"

#define CRIU_FLAGS_MAX 16

struct forkpoint_dump_options {
	struct fp_dump_opts o;
	char *dir, *log;
};

struct forkpoint_restore_options {
	struct fp_restore_opts o;
	unsigned flags;
	char *dir, *log;
	char *criu[CRIU_FLAGS_MAX];
	size_t ncriu;
};

/* *slot becomes a copy of v (NULL: none). */
static int keep_str(char **slot, const char *v, forkpoint_error *err)
{
	char *c = v ? strdup(v) : NULL;
	if (v && !c)
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	free(*slot);
	*slot = c;
	return 0;
}

static int out_of_range(forkpoint_error *err, const char *what, long long v, const char *range)
{
	return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%s %lld is out of range: give %s", what, v, range);
}

int forkpoint_dump_options_new(pid_t pid, const char *dir, forkpoint_dump_options **out, forkpoint_error *err)
{
	if (!out || pid <= 0 || !dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_dump_options_new needs a pid > 0, a directory and a place for the options");
	forkpoint_dump_options *d = calloc(1, sizeof(*d));
	if (!d || keep_str(&d->dir, dir, err) < 0) {
		free(d);
		return d ? -1 : api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	d->o.pid = pid;
	d->o.dir = d->dir;
	d->o.compress = FP_DUMP_ZSTD;
	*out = d;
	return 0;
}

int forkpoint_dump_options_set(forkpoint_dump_options *d, int option, long long v, forkpoint_error *err)
{
	static const enum fp_dump_snap modes[] = { FP_DUMP_SNAP_AUTO, FP_DUMP_SNAP_PRECOPY, FP_DUMP_SNAP_FORK,
						   FP_DUMP_SNAP_COPY };
	if (!d)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no dump options handle");
	switch (option) {
	case FORKPOINT_DUMP_OPT_FLAGS:
		if (v & ~(long long)(FORKPOINT_DUMP_LEAVE_RUNNING | FORKPOINT_DUMP_NO_COMPRESS | FORKPOINT_DUMP_FSYNC |
				     FORKPOINT_DUMP_TCP_ESTABLISHED | FORKPOINT_DUMP_EXT_UNIX_SK))
			return api_fail(err, FORKPOINT_EINVAL, EINVAL, "unknown dump flags 0x%llx", v);
		d->o.leave_running = v & FORKPOINT_DUMP_LEAVE_RUNNING;
		d->o.compress = (v & FORKPOINT_DUMP_NO_COMPRESS) ? FP_DUMP_NONE : FP_DUMP_ZSTD;
		d->o.fsync = v & FORKPOINT_DUMP_FSYNC;
		d->o.tcp_established = v & FORKPOINT_DUMP_TCP_ESTABLISHED;
		d->o.ext_unix_sk = v & FORKPOINT_DUMP_EXT_UNIX_SK;
		return 0;
	case FORKPOINT_DUMP_OPT_ZSTD_LEVEL:
		if (v < -7 || v > 19 || v == 0)
			return out_of_range(err, "zstd level", v, "-7..-1 or 1..19");
		d->o.zstd_level = (int)v;
		return 0;
	case FORKPOINT_DUMP_OPT_THREADS:
		if (v < 1 || v > 16)
			return out_of_range(err, "compression threads", v, "1..16");
		d->o.threads = (int)v;
		return 0;
	case FORKPOINT_DUMP_OPT_PAGES:
		if (v < 0 || v > FORKPOINT_PAGES_COPY)
			return out_of_range(err, "pages mode", v, "FORKPOINT_PAGES_AUTO, _PRECOPY, _FORK or _COPY");
		d->o.snapshot = modes[v];
		return 0;
	case FORKPOINT_DUMP_OPT_GHOST_LIMIT:
		if (v < 1 || v > (1ll << 40))
			return out_of_range(err, "ghost limit", v, "1 byte to 1 TiB");
		d->o.ghost_limit = (uint64_t)v;
		return 0;
	case FORKPOINT_DUMP_OPT_TIMEOUT_MS:
		if (v < 1 || v > INT_MAX)
			return out_of_range(err, "timeout", v, "1 ms or more");
		d->o.timeout_ms = (int)v;
		return 0;
	case FORKPOINT_DUMP_OPT_VERBOSE:
		d->o.verbose = v != 0;
		return 0;
	}
	return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%d is not a number option of a dump (FORKPOINT_DUMP_OPT_*)", option);
}

int forkpoint_dump_options_set_str(forkpoint_dump_options *d, int option, const char *v, forkpoint_error *err)
{
	if (!d)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no dump options handle");
	if (option != FORKPOINT_DUMP_OPT_LOG)
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%d is not a string option of a dump (FORKPOINT_DUMP_OPT_LOG)", option);
	if (keep_str(&d->log, v, err) < 0)
		return -1;
	d->o.log_path = d->log;
	return 0;
}

void forkpoint_dump_options_free(forkpoint_dump_options *d)
{
	if (!d)
		return;
	free(d->dir);
	free(d->log);
	free(d);
}

int forkpoint_dump_with(const forkpoint_dump_options *d, forkpoint_info **stats, forkpoint_error *err)
{
	if (stats)
		*stats = NULL;
	if (!d)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no dump options handle");
	struct fp_dump_stats st;
	memset(&st, 0, sizeof(st));
	fp_error e = { 0 };
	int rc = fp_dump(&d->o, &st, &e) < 0 ? api_error(err, &e) : 0;
	forkpoint_info *i = api_info_new();
	if (i && (api_info_set(i, "processes", "%d", st.nprocs) < 0 || api_info_set(i, "threads", "%d", st.nthreads) < 0 ||
		  api_info_set(i, "pages", "%llu", (unsigned long long)st.pages) < 0 ||
		  api_info_set(i, "bytes_pages", "%llu", (unsigned long long)st.bytes_pages) < 0 ||
		  api_info_set(i, "bytes_written", "%llu", (unsigned long long)st.bytes_written) < 0 ||
		  api_info_set(i, "pause_ms", "%.17g", st.pause_ms) < 0 ||
		  api_info_set(i, "total_ms", "%.17g", st.total_ms) < 0 ||
		  api_info_set(i, "method", "%s", st.method ? st.method : "") < 0 ||
		  api_info_set(i, "phases", "%s", st.phases) < 0 ||
		  api_info_set(i, "reaped", "%d", st.reaped) < 0 ||
		  api_info_set(i, "reaped_names", "%s", st.reaped_names) < 0 ||
		  api_info_set(i, "netlocks_lifted", "%d", st.netlocks) < 0 ||
		  api_info_set(i, "netlock_conns", "%zu", st.netlock_conns) < 0 ||
		  api_info_set(i, "netlock_names", "%s", st.netlock_names) < 0)) {
		forkpoint_info_free(i);
		i = NULL;
	}
	if (rc < 0) {
		if (stats)
			*stats = i;
		else
			forkpoint_info_free(i);
		return -1;
	}
	return api_info_out(i, stats, err);
}

int forkpoint_restore_options_new(const char *dir, forkpoint_restore_options **out, forkpoint_error *err)
{
	if (!out || !dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_restore_options_new needs a directory and a place for the options");
	forkpoint_restore_options *r = calloc(1, sizeof(*r));
	if (!r || keep_str(&r->dir, dir, err) < 0) {
		free(r);
		return r ? -1 : api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	r->o.dir = r->dir;
	r->o.engine = FP_RESTORE_AUTO;
	r->o.adopt = true; /* the root is the caller's child, whichever engine, as forkpoint_restore's */
	*out = r;
	return 0;
}

int forkpoint_restore_options_set(forkpoint_restore_options *r, int option, long long v, forkpoint_error *err)
{
	const long long known = FORKPOINT_RESTORE_EXACT_PIDS | FORKPOINT_RESTORE_NATIVE | FORKPOINT_RESTORE_CRIU |
				FORKPOINT_RESTORE_NO_VERIFY | FORKPOINT_RESTORE_DETACHED |
				FORKPOINT_RESTORE_STOP_FOREGROUND_JOB | FORKPOINT_RESTORE_FOREGROUND;
	if (!r)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no restore options handle");
	switch (option) {
	case FORKPOINT_RESTORE_OPT_FLAGS:
		if (v & ~known)
			return api_fail(err, FORKPOINT_EINVAL, EINVAL, "unknown restore flags 0x%llx", v & ~known);
		if ((v & FORKPOINT_RESTORE_NATIVE) && (v & FORKPOINT_RESTORE_CRIU))
			return api_fail(err, FORKPOINT_EINVAL, 0, "give FORKPOINT_RESTORE_NATIVE or _CRIU, not both");
		r->o.engine = (v & FORKPOINT_RESTORE_NATIVE) ? FP_RESTORE_NATIVE
			      : (v & FORKPOINT_RESTORE_CRIU) ? FP_RESTORE_CRIU
							      : FP_RESTORE_AUTO;
		r->o.exact_pids = v & FORKPOINT_RESTORE_EXACT_PIDS;
		r->o.no_verify = v & FORKPOINT_RESTORE_NO_VERIFY;
		/* to wait for a criu-restored tree it must become our child */
		r->o.adopt = !(v & FORKPOINT_RESTORE_DETACHED);
		r->o.foreground = !(v & FORKPOINT_RESTORE_DETACHED) && (v & FORKPOINT_RESTORE_FOREGROUND);
		r->o.stop_foreground_job = (v & FORKPOINT_RESTORE_DETACHED) && (v & FORKPOINT_RESTORE_STOP_FOREGROUND_JOB);
		return 0;
	case FORKPOINT_RESTORE_OPT_VERBOSITY:
		if (v < 0 || v > 4)
			return out_of_range(err, "log verbosity", v, "0..4");
		r->o.verbosity = (int)v;
		return 0;
	case FORKPOINT_RESTORE_OPT_TIMEOUT_MS:
		if (v < 1 || v > 24 * 3600 * 1000ll)
			return out_of_range(err, "restore timeout", v, "1 ms to a day");
		r->o.timeout_ms = (int)v;
		return 0;
	}
	return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%d is not a number option of a restore (FORKPOINT_RESTORE_OPT_*)",
			option);
}

int forkpoint_restore_options_set_str(forkpoint_restore_options *r, int option, const char *v, forkpoint_error *err)
{
	if (!r)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no restore options handle");
	if (option == FORKPOINT_RESTORE_OPT_LOG) {
		if (keep_str(&r->log, v, err) < 0)
			return -1;
		r->o.log_path = r->log;
		return 0;
	}
	if (option != FORKPOINT_RESTORE_OPT_CRIU_FLAG)
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "%d is not a string option of a restore (_LOG, _CRIU_FLAG)", option);
	if (!v || strncmp(v, "--", 2))
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "a CRIU flag starts with -- (such as --file-locks)");
	if (r->ncriu == CRIU_FLAGS_MAX)
		return api_fail(err, FORKPOINT_EINVAL, E2BIG, "at most %d CRIU flags", CRIU_FLAGS_MAX);
	if (keep_str(&r->criu[r->ncriu], v, err) < 0)
		return -1;
	r->ncriu++;
	r->o.criu_flags = (const char *const *)r->criu;
	r->o.ncriu_flags = r->ncriu;
	return 0;
}

void forkpoint_restore_options_free(forkpoint_restore_options *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ncriu; i++)
		free(r->criu[i]);
	free(r->dir);
	free(r->log);
	free(r);
}

int forkpoint_restore_with(const forkpoint_restore_options *r, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!r)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no restore options handle");
	struct fp_restore_result x;
	memset(&x, 0, sizeof(x));
	fp_error e = { 0 };
	if (fp_restore(&r->o, &x, &e) < 0)
		return api_error(err, &e);
	forkpoint_info *i = api_info_new();
	if (i && (api_info_set(i, "pid", "%d", (int)x.pid) < 0 ||
		  api_info_set(i, "wait_pid", "%d", (int)(x.ns_init ? x.ns_init : x.pid)) < 0 ||
		  api_info_set(i, "ns_init", "%d", (int)x.ns_init) < 0 || api_info_set(i, "ns_pid", "%d", (int)x.ns_pid) < 0 ||
		  api_info_set(i, "engine", "%s", x.engine_used == FP_RESTORE_CRIU ? "criu" : "native") < 0 ||
		  api_info_set(i, "fallback", "%s", x.fallback_reason) < 0 ||
		  api_info_set(i, "verify_note", "%s", x.verify_note) < 0 ||
		  api_info_set(i, "job_stopped", "%d", x.job_stopped) < 0)) {
		forkpoint_info_free(i);
		i = NULL;
	}
	return api_info_out(i, res, err);
}

int forkpoint_decompress(const char *dir, unsigned flags, forkpoint_error *err)
{
	if (!dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_decompress needs a directory");
	fp_error e = { 0 };
	if ((flags & FORKPOINT_DECOMPRESS_VERIFY) && fp_dump_verify(dir, &e) < 0)
		return api_error(err, &e);
	return fp_dump_decompress(dir, flags & FORKPOINT_DECOMPRESS_KEEP, &e) < 0 ? api_error(err, &e) : 0;
}
