/* New mappings registered for write tracking from the shim's mapping change
 * log (issue 16), instead of a walk of /proc/PID/maps before each snapshot.
 *
 * The shim appends every mmap, munmap, mremap, mprotect and brk the program
 * makes to a ring in its table (shim_table.h). A snapshot's preparation
 * takes the events since the one before:
 *
 *   - a range unmapped or mapped over lost its registration with the
 *     kernel: it leaves `reg`;
 *   - an anonymous private range mapped anew (mmap, mremap's new range,
 *     brk growth) is registered and protected now, and cut from the
 *     parent's coverage, so its pages are read in full this time and
 *     tracked from then on;
 *   - the ranges still in `reg` are checked to be registered still (one
 *     PAGEMAP_SCAN per range, track_lost.c); one that is not (a mapping
 *     the log did not see replaced one of ours, or the kernel dropped the
 *     registration in an mremap merge) is tracked anew, as a new mapping.
 *
 * The log is a shortcut and /proc the check. The preparation goes to /proc
 * (and dump.log says why) when the log overflowed, when the shim itself lost
 * track (its list was resynced from /proc: dlopen, a new thread's stack),
 * when a registration fails, and when the last snapshot found in /proc a
 * mapping that the log never showed (libc's own mmap and brk inside malloc
 * are not seen by any wrapper): dump_incr_shim_check compares every
 * trackable mapping the stop read from /proc with `reg` and the events
 * logged since. A mapping missed that way is not in `reg`, so its pages are
 * read in full: never left to the parent. */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "dump/shim_reader.h"

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

void dump_incr_shim_mark(struct dump_ctx *c, struct dump_precopy *pc)
{
	pc->shim_ok = false;
	fp_error e;
	if (!pc->shim_addr && fp_shim_locate(pc->pid, &pc->shim_addr, NULL, 0, &e) != 1) {
		pc->shim_addr = 0;
		return;
	}
	struct fp_shim_mapev *ev;
	size_t n;
	uint64_t head = 0;
	char why[160];
	/* from the largest number: nothing is copied, the head comes back */
	int r = fp_shim_maplog_read(pc->pid, pc->shim_addr, UINT64_MAX, &ev, &n, &head, why, sizeof(why), &e);
	if (r < 0) {
		dlog(c, "%d: the shim's mapping log not read (%s)", pc->pid, e.msg);
		pc->shim_addr = 0;
		return;
	}
	pc->shim_gen = head;
	pc->shim_ok = true;
	pc->shim_doubt[0] = '\0';
}

static bool trackable(const struct fp_shim_mapev *e)
{
	return (e->flags & MAP_ANONYMOUS) && !(e->flags & MAP_SHARED) && !(e->flags & MAP_HUGETLB);
}

/* [s, e) into the sorted list r, where it overlaps nothing. */
static int ranges_insert(struct fp_range **r, size_t *n, size_t *cap, uint64_t s, uint64_t e)
{
	size_t at = fp_ranges_find(*r, *n, s);
	if (fp_ranges_push(r, n, cap, 0, 1)) /* room for one more */
		return -1;
	memmove(&(*r)[at + 1], &(*r)[at], (*n - 1 - at) * sizeof(**r));
	(*r)[at] = (struct fp_range){ s, e };
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct fp_range *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

/* reg ∪ add (disjoint), merged where they touch. */
static int ranges_union(struct fp_range **reg, size_t *nreg, const struct fp_range *add, size_t nadd)
{
	size_t all = *nreg + nadd, n = 0, cap = 0;
	struct fp_range *tmp = malloc((all ? all : 1) * sizeof(*tmp)), *out = NULL;
	if (!tmp)
		return -1;
	/* (memcpy from NULL is undefined even for 0 bytes: UBSan stops) */
	if (*nreg)
		memcpy(tmp, *reg, *nreg * sizeof(*tmp));
	if (nadd)
		memcpy(tmp + *nreg, add, nadd * sizeof(*tmp));
	qsort(tmp, all, sizeof(*tmp), cmp_range);
	for (size_t i = 0; i < all; i++)
		if (fp_ranges_push(&out, &n, &cap, tmp[i].start, tmp[i].end)) {
			free(tmp);
			free(out);
			return -1;
		}
	free(tmp);
	free(*reg);
	*reg = out;
	*nreg = n;
	return 0;
}

static int fail_oom(fp_error *err)
{
	return fp_fail(err, ENOMEM, "out of memory");
}

int dump_incr_shim_track(struct dump_ctx *c, struct dump_precopy *pc, fp_error *err)
{
	char why[160];
	if (pc->shim_doubt[0]) {
		dlog(c, "%d: mappings registered from /proc: %s", pc->pid, pc->shim_doubt);
		return 0;
	}
	if (!pc->shim_ok || !pc->shim_addr) {
		dlog(c, "%d: mappings registered from /proc: %s", pc->pid,
		     pc->shim_ok ? "no shim table" : "no position in the shim's mapping log (the tracking started without it)");
		return 0;
	}
	int64_t t0 = dump_now_ns();
	struct fp_shim_mapev *ev = NULL;
	size_t nev = 0;
	uint64_t head = 0;
	fp_error e;
	int r = fp_shim_maplog_read(pc->pid, pc->shim_addr, pc->shim_gen, &ev, &nev, &head, why, sizeof(why), &e);
	if (r <= 0) {
		dlog(c, "%d: mappings registered from /proc: %s", pc->pid, r < 0 ? e.msg : why);
		return 0;
	}
	struct fp_range *add = NULL;
	size_t nadd = 0, cap = 0, nmap = 0, nunmap = 0, nprot = 0;
	int rc = 1;
	for (size_t i = 0; i < nev && rc == 1; i++) {
		const struct fp_shim_mapev *x = &ev[i];
		if (x->kind == FP_ML_DOUBT) {
			dlog(c, "%d: mappings registered from /proc: the shim resynced its list from /proc since the last "
				"snapshot (a change its wrappers could not follow)",
			     pc->pid);
			rc = 0;
			break;
		}
		if (x->kind == FP_ML_PROTECT) {
			nprot++;
			continue;
		}
		if ((x->kind != FP_ML_MAP && x->kind != FP_ML_UNMAP) || x->end <= x->start ||
		    (x->start | x->end) % CR_PAGE_SIZE) {
			dlog(c, "%d: mappings registered from /proc: a bad event in the shim's log (kind %u, %" PRIx64
				"-%" PRIx64 ")",
			     pc->pid, x->kind, x->start, x->end);
			rc = 0;
			break;
		}
		/* whatever was there is gone, with its registration */
		if (fp_ranges_cut(&pc->reg, &pc->nreg, x->start, x->end) || fp_ranges_cut(&add, &nadd, x->start, x->end))
			rc = fail_oom(err);
		cap = nadd;
		if (x->kind == FP_ML_UNMAP) {
			nunmap++;
		} else {
			nmap++;
			if (rc == 1 && trackable(x) && ranges_insert(&add, &nadd, &cap, x->start, x->end))
				rc = fail_oom(err);
		}
	}
	free(ev);
	/* Ours where the registration holds. A tracked range whose mapping
	 * lost it (track_lost.c: the log shows the mremap, not that the
	 * kernel merged its neighbour) is tracked anew, as a new mapping;
	 * never registered again as it is, which would make its stale
	 * protection bits look valid. A mapping put in place of one of ours
	 * behind the log's back has no registration either: the same. */
	if (rc == 1) {
		struct fp_range *lost = NULL;
		size_t nlost = 0;
		fp_error le;
		if (fp_track_lost_of(pc->pid, pc->reg, pc->nreg, &lost, &nlost, &le)) {
			dlog(c, "%d: mappings registered from /proc: %s", pc->pid, le.msg);
			rc = 0;
		}
		cap = nadd;
		for (size_t i = 0; i < nlost && rc == 1; i++)
			if (fp_ranges_cut(&pc->reg, &pc->nreg, lost[i].start, lost[i].end) ||
			    ranges_insert(&add, &nadd, &cap, lost[i].start, lost[i].end))
				rc = fail_oom(err);
		if (nlost)
			dlog(c, "%d: %zu tracked range(s) no longer registered for write tracking (a mapping put in "
				"their place, or merged by an mremap): tracked anew",
			     pc->pid, nlost);
		free(lost);
	}
	size_t ok = 0;
	for (size_t i = 0; i < nadd && rc == 1; i++) {
		struct fp_range *a = &add[i];
		struct uffdio_register rg = { .range = { a->start, a->end - a->start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(pc->uffd, UFFDIO_REGISTER, &rg)) {
			/* gone or changed since (its pages are read in full), or the
			 * process's own userfaultfd has it (EBUSY) */
			dlogv(c, "%d: %" PRIx64 "-%" PRIx64 " not write-tracked: %s", pc->pid, a->start, a->end, strerror(errno));
			continue;
		}
		struct uffdio_writeprotect w = { .range = { a->start, a->end - a->start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &w))
			dlogv(c, "%d: protecting %" PRIx64 "-%" PRIx64 ": %s", pc->pid, a->start, a->end, strerror(errno));
		/* protected before the stop, so unwritten-looking: what the
		 * parent had at these addresses is not their content */
		if (fp_ranges_cut(&pc->cov, &pc->ncov, a->start, a->end) ||
		    fp_ranges_push(&pc->fresh, &pc->nfresh, &pc->capfresh, a->start, a->end)) {
			rc = fail_oom(err);
			break;
		}
		add[ok++] = *a;
		dlogv(c, "%d: new mapping %" PRIx64 "-%" PRIx64 " tracked from now on (the shim's log)", pc->pid, a->start,
		      a->end);
	}
	if (rc == 1 && ranges_union(&pc->reg, &pc->nreg, add, ok))
		rc = fail_oom(err);
	free(add);
	if (rc != 1)
		return rc;
	/* The stop takes VmFlags from pc->fv: those of the last snapshot's
	 * check after its resume when nothing changed, else smaps now. */
	size_t changes = nmap + nunmap + nprot;
	if (!changes && pc->fv_now) {
		pc->fv = malloc((pc->nfv_now ? pc->nfv_now : 1) * sizeof(*pc->fv));
		if (!pc->fv)
			return fail_oom(err);
		memcpy(pc->fv, pc->fv_now, pc->nfv_now * sizeof(*pc->fv));
		pc->nfv = pc->nfv_now;
	} else if (dump_vmas_read(pc->pid, true, &pc->fv, &pc->nfv, err)) {
		return -1;
	}
	pc->shim_gen = head;
	dlog(c, "%d: mappings registered from the shim's change log: %zu events (%zu mapped, %zu unmapped, %zu "
		"protected), %zu new range(s) tracked, %zu ranges tracked in all, in %.3f ms%s",
	     pc->pid, nev, nmap, nunmap, nprot, ok, pc->nreg, ms_since(t0),
	     changes || !pc->fv_now ? " (VmFlags from smaps)" : " (no /proc read)");
	return 1;
}

/* Is all of [s, e) tracked or mapped anew by the log since the
 * preparation? (The kernel merges neighbours: one mapping of /proc may be
 * several of the log, some tracked and some not yet.) -1: out of memory. */
static int covered(const struct dump_precopy *pc, const struct fp_shim_mapev *ev, size_t n, uint64_t s, uint64_t e)
{
	struct fp_range *left = malloc(sizeof(*left));
	size_t nleft = 1;
	if (!left)
		return -1;
	left[0] = (struct fp_range){ s, e };
	for (size_t k = fp_ranges_find(pc->reg, pc->nreg, s); k < pc->nreg && pc->reg[k].start < e && nleft; k++)
		if (fp_ranges_cut(&left, &nleft, pc->reg[k].start, pc->reg[k].end))
			goto oom;
	for (size_t i = 0; i < n && nleft; i++)
		if (ev[i].kind == FP_ML_MAP && fp_ranges_cut(&left, &nleft, ev[i].start, ev[i].end))
			goto oom;
	free(left);
	return nleft == 0;
oom:
	free(left);
	return -1;
}

void dump_incr_shim_check(struct dump_ctx *c, struct dump_proc *p)
{
	struct dump_precopy *pc = p->pre;
	if (!pc || !pc->shim_ok || !pc->shim_addr || pc->shim_doubt[0] || p->cow)
		return;
	struct fp_shim_mapev *ev = NULL;
	size_t nev = 0;
	bool have_ev = false;
	size_t missed = 0;
	for (size_t i = 0; i < p->nvmas; i++) {
		const struct dump_vma *v = &p->vmas[i];
		if (!dump_precopy_protectable(v))
			continue;
		if (covered(pc, NULL, 0, v->start, v->end) == 1)
			continue;
		if (!have_ev) {
			/* made after the preparation: the next one finds it in the log */
			uint64_t head;
			char why[160];
			fp_error e;
			have_ev = true;
			if (fp_shim_maplog_read(p->pid, pc->shim_addr, pc->shim_gen, &ev, &nev, &head, why, sizeof(why), &e) != 1) {
				snprintf(pc->shim_doubt, sizeof(pc->shim_doubt), "the shim's mapping log could not be read after "
					 "the last snapshot");
				break;
			}
		}
		int cv = covered(pc, ev, nev, v->start, v->end);
		if (cv == 1)
			continue;
		if (cv < 0) {
			snprintf(pc->shim_doubt, sizeof(pc->shim_doubt), "out of memory checking the shim's mapping log");
			break;
		}
		if (!missed++)
			snprintf(pc->shim_doubt, sizeof(pc->shim_doubt),
				 "the last snapshot found %" PRIx64 "-%" PRIx64 " %s in /proc, never in the shim's log "
				 "(mapped inside libc?)",
				 v->start, v->end, v->path);
	}
	free(ev);
	if (missed)
		dlog(c, "%d: %zu trackable mapping(s) at the stop neither tracked nor in the shim's log (their pages were "
			"read in full): the next snapshot registers from /proc",
		     p->pid, missed);
}

/* A process of many small mappings (under 64 MiB in all) had its VmFlags read
 * from smaps while stopped: cheap per byte, but ~3.5 us per mapping (35 ms of
 * the pause for 10,000 mappings, more than anything else in it). Under the
 * shim, when its log shows no mapping change since the preparation read them
 * (the head is still the one read then: one 8-byte read), the stop takes
 * them from the preparation as for a big process: /proc/PID/maps at the stop
 * is the check (a mapping that differs, made inside libc say, sends the stop
 * back to smaps), and the VmFlags are read again after the resume (a flag
 * changed by madvise and the like redoes the snapshot). */
bool dump_incr_shim_flags_kept(struct dump_ctx *c, const struct dump_precopy *pc)
{
	if (!pc->shim_ok || !pc->shim_addr || pc->shim_doubt[0] || pc->nfv < FP_SHIM_FLAGS_KEPT_MIN ||
	    getenv("FORKPOINT_NO_SHIM_FLAGS"))
		return false;
	uint64_t head = 0;
	struct iovec l = { &head, sizeof(head) },
		     r = { (void *)(uintptr_t)(pc->shim_addr + offsetof(struct fp_shim_table, maplog_head)), sizeof(head) };
	if (process_vm_readv(pc->pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof(head) || head != pc->shim_gen)
		return false;
	dlog(c, "%d: no mapping change in the shim's log since the preparation: VmFlags of its %zu mappings from then, "
		"checked after the resume", pc->pid, pc->nfv);
	return true;
}
