/* The session's write tracking between snapshots (dirty_tracker.h). */
#include "dump/dirty_tracker.h"
#include "procfs.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Unregistering a whole GiB holds the process's mmap lock for ~25 ms; in
 * 2 MiB steps each hold is ~60 us (as in dump_precopy.c). */
#define UNREG_STEP (2u << 20)

struct fp_track *fp_track_session(void)
{
	static struct fp_track t;
	return &t;
}

unsigned long long fp_track_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p)
		return 0;
	/* after ") " come fields 3..: the start time is field 22 */
	unsigned long long v = 0;
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		v = strtoull(p, NULL, 10);
	return v;
}

void fp_track_proc_free(struct fp_track_proc *tp)
{
	if (tp->uffd >= 0) {
		for (size_t r = 0; r < tp->nreg; r++)
			for (uint64_t a = tp->reg[r].start; a < tp->reg[r].end; a += UNREG_STEP) {
				uint64_t e = a + UNREG_STEP < tp->reg[r].end ? a + UNREG_STEP : tp->reg[r].end;
				struct uffdio_range rg = { a, e - a };
				/* ESRCH: the memory is gone (exit, exec) */
				if (ioctl(tp->uffd, UFFDIO_UNREGISTER, &rg) && errno == ESRCH)
					break;
			}
		close(tp->uffd);
	}
	tp->uffd = -1;
	free(tp->reg);
	free(tp->cov);
	free(tp->untracked);
	free(tp->vmas);
	free(tp->ahead_w);
	free(tp->ahead_gone);
	tp->ahead_w = tp->ahead_gone = NULL;
	tp->nahead_w = tp->nahead_gone = 0;
	tp->ahead_walked = false;
	tp->reg = tp->cov = tp->untracked = NULL;
	tp->vmas = NULL;
	tp->nreg = tp->ncov = tp->nvmas = tp->nuntracked = 0;
}

void fp_track_fdcarry_drop(struct fp_track *t)
{
	dump_fdcarry_free(t->fdcarry);
	t->fdcarry = NULL;
}

void fp_track_drop(struct fp_track *t, const char *why)
{
	fp_track_settle_discard(t); /* its thread uses the fds closed here */
	fp_track_fdcarry_drop(t);
	for (size_t i = 0; i < t->n; i++)
		fp_track_proc_free(&t->procs[i]);
	free(t->procs);
	t->procs = NULL;
	t->n = 0;
	t->active = false;
	t->parent_dir[0] = '\0';
	t->parent_depth = 0;
	snprintf(t->lost, sizeof(t->lost), "%s", why ? why : "");
	/* "" is a hand-over to new tracking (dump_incr_keep, a rollback):
	 * the buffer stays for it; with tracking lost it has no use. */
	bool handover = why && !why[0];
	if (t->pool && !handover) {
		munmap(t->pool, t->pool_len);
		t->pool = NULL;
		t->pool_len = 0;
	}
}

int fp_ranges_push(struct fp_range **r, size_t *n, size_t *cap, uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	if (*n && (*r)[*n - 1].end == start) {
		(*r)[*n - 1].end = end;
		return 0;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct fp_range *nr = realloc(*r, nc * sizeof(*nr));
		if (!nr)
			return -1;
		*r = nr;
		*cap = nc;
	}
	(*r)[*n].start = start;
	(*r)[*n].end = end;
	(*n)++;
	return 0;
}

bool fp_ranges_cover(const struct fp_range *r, size_t n, uint64_t start, uint64_t end)
{
	size_t k = fp_ranges_find(r, n, start);
	return k < n && r[k].start <= start && r[k].end >= end;
}

size_t fp_ranges_find(const struct fp_range *r, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int fp_ranges_cut(struct fp_range **r, size_t *n, uint64_t start, uint64_t end)
{
	size_t k = fp_ranges_find(*r, *n, start);
	if (k == *n || (*r)[k].start >= end)
		return 0; /* nothing there: the common case */
	struct fp_range *out = NULL;
	size_t o = 0, cap = 0;
	for (size_t i = 0; i < *n; i++) {
		struct fp_range x = (*r)[i];
		int rc = 0;
		if (x.end <= start || x.start >= end) {
			rc = fp_ranges_push(&out, &o, &cap, x.start, x.end);
		} else {
			if (x.start < start)
				rc = fp_ranges_push(&out, &o, &cap, x.start, start);
			if (!rc && x.end > end)
				rc = fp_ranges_push(&out, &o, &cap, end, x.end);
		}
		if (rc) {
			free(out);
			return -1;
		}
	}
	free(*r);
	*r = out;
	*n = o;
	return 0;
}

size_t fp_track_pool_max(void)
{
	const char *e = getenv("FP_TRACK_POOL_MIB");
	if (e && *e)
		return (size_t)strtoull(e, NULL, 10) << 20;
	return fp_mem_share(256u << 20, 1u << 30);
}
