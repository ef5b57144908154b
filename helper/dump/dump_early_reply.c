/* A snapshot's reply before its images are written (fp_dump_opts's
 * early_reply).
 *
 * Once the processes run again, an incremental snapshot's remaining work
 * is the dumper's alone: writing the pages it holds and the other images,
 * linking the parent, publishing the directory (1 GiB at 1%: 1-7 ms, most
 * of it the page cache's). A caller that asked for it gets its reply
 * before that work, so that its next step overlaps it; a session serves
 * its requests one at a time, so its next request still finds the
 * snapshot published. The threads that write and hash its page store
 * beside the pre-copy (dump_incr_store.c) wait for the reply too: before
 * it, the copy and the stop have both CPUs.
 *
 * Nothing after the reply may have the dump tried again: a second try
 * would capture a later state under the name already given. The steps
 * that can (the fds' entries, the check of the VmFlags read before the
 * stop) end before it; a failure after it (a full disk) loses the
 * snapshot, keeps its log as DIR.failed.log, and drops the write tracking
 * with the cause, so the next snapshot is full and says why. */
#include "dump/dump_int.h"
#include "dump/dump_incr_int.h"
#include "dump/dump_vmflags.h"

#include <inttypes.h>

/* Beyond this much page data to write, the reply waits for the writing as
 * usual. Writing 100 MiB (1 GiB at 10%, a python3 step) runs beside the
 * process's next step, slows it and is slowed by it on two CPUs, and runs
 * past the time between requests: the next request waited 150-250 ms for
 * it and the steps took 361-485 ms against 249-326 replying after the
 * writing (A/B by turns, bench/results/early-reply-big-20261207.md). */
#define EARLY_MAX_BYTES (32ull << 20)

bool dump_early_reply_wanted(const struct dump_ctx *c, uint64_t bytes)
{
	const struct fp_dump_opts *o = c->o;
	return o->early_reply && o->leave_running && !o->hot && bytes <= EARLY_MAX_BYTES;
}

int dump_early_reply(struct dump_ctx *c, struct dump_flags_check *fc, bool *redo, fp_error *err)
{
	const struct fp_dump_opts *o = c->o;
	if (!o->early_reply)
		return 0;
	if (!dump_early_reply_wanted(c, c->st->pages * CR_PAGE_SIZE)) {
		dlog(c, "no early reply (%" PRIu64 " MiB of pages to write first, at most %llu replied early; or hot, or "
			"not left running)", c->st->pages * CR_PAGE_SIZE >> 20, EARLY_MAX_BYTES >> 20);
		dump_incr_store_go(c);
		return 0;
	}
	if (dump_flags_check_fail(fc, 0, redo, err))
		return -1;
	struct fp_dump_stats *st = c->st;
	st->incremental = c->incr && st->pages_parent; /* what dump_incr_link_parent says later */
	st->total_ms = (double)(dump_now_ns() - c->t0) / 1e6;
	dump_phases_format(c);
	c->replied = st->replied_early = true;
	o->early_reply(o->early_reply_arg, st);
	dump_incr_store_go(c);
	dlog(c, "replied after %.3f ms: the images are written after the reply", st->total_ms);
	return 0;
}
