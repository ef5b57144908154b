/* The pre-copy's copy (dump_int.h): its room, its pieces, and the copy on
 * two CPUs while the process runs. Protection and the stop are
 * dump_precopy.c's.
 *
 * The room is the page cache of an unlinked file beside the image
 * (O_TMPFILE), mapped shared: a copy of a big process is then memory the
 * kernel can write out and reclaim under pressure, not anonymous memory of
 * forkpoint's that only the OOM killer can take back, and it may become the
 * page store itself (dump_precopy_store.c). Its blocks are allocated first:
 * a full disk is an error here, not a SIGBUS in the middle of the copy.
 *
 * Copying straight into the mapping faults every page of it in first (~0.6
 * us a page of a shared ext4 mapping here, 115-230 ms a GiB even on two
 * CPUs) before the copy itself (~130 ms a GiB on two CPUs). So each thread
 * reads pieces into a small buffer of its own, which stays in the CPU's
 * caches, and writes it into the file with pwrite: the kernel allocates the
 * page cache as it copies, ~175 ms a GiB on one CPU for both.
 *
 * Where the file system has no O_TMPFILE or no room: anonymous memory,
 * copied into directly. */
#include "dump/dump_int.h"
#include "dump/dump_precopy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define COPY_PIECE (4u << 20)
#define HOT (4u << 20)  /* a thread's buffer: pieces read, then written */
#define GRAB 4          /* pieces a thread takes at a time */

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

static uint8_t *room(struct dump_ctx *c, struct dump_precopy *pc, size_t len, fp_error *err)
{
	int64_t t0 = dump_now_ns();
	const char *why = NULL;
	int fd = openat(c->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		why = "no O_TMPFILE here";
	else if ((errno = posix_fallocate(fd, 0, (off_t)len)) != 0)
		why = errno == ENOSPC ? "no room on the image's file system" : "cannot allocate it";
	uint8_t *b = MAP_FAILED;
	if (!why) {
		b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (b == MAP_FAILED)
			why = "cannot map it";
	}
	int e = errno;
	if (!why) {
		pc->buf_file = true;
		pc->buf_fd = fd;
		dlogv(c, "%d: pre-copy file of %zu MiB ready in %.3f ms", pc->pid, len >> 20, ms_since(t0));
		return b;
	}
	if (fd >= 0)
		close(fd);
	dlog(c, "pre-copy of %zu MiB in anonymous memory: a file beside the image failed (%s: %s)", len >> 20, why,
	     strerror(e));
	b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b == MAP_FAILED)
		return fp_fail(err, errno, "cannot map %zu MiB for the pre-copy: %s", len >> 20, strerror(errno)), NULL;
	madvise(b, len, MADV_HUGEPAGE);
	madvise(b, len, MADV_POPULATE_WRITE); /* faulting while copying would halve the copy rate */
	return b;
}

/* The pieces of one run [a, a+len) at buffer offset *off, cut at COPY_PIECE
 * and at the mappings' bounds (v[], sorted, from *vi): a piece in a place-only
 * mapping is copied for its place only. */
static void add_pieces(struct dump_precopy *pc, const struct dump_vma *v, const bool *place_only, size_t nv,
		       size_t *vi, uint64_t a, uint64_t len, uint64_t *off)
{
	while (len) {
		while (*vi < nv && v[*vi].end <= a)
			(*vi)++;
		uint64_t take = len > COPY_PIECE ? COPY_PIECE : len;
		bool place = false;
		if (*vi < nv && v[*vi].start <= a) {
			if (v[*vi].end - a < take)
				take = v[*vi].end - a;
			place = place_only && place_only[*vi];
		}
		pc->piece[pc->npiece++] = (struct dump_pre_piece){ a, take / CR_PAGE_SIZE, *off, false, place, false };
		a += take, *off += take, len -= take;
	}
}

struct copy_job {
	struct dump_precopy *pc;
	_Atomic uint64_t lost;
	_Atomic size_t next;  /* the first piece no thread took yet */
	_Atomic int failed_write; /* errno of a failed pwrite */
	uint8_t *hot[2];      /* a buffer per thread (file room), or NULL */
};

/* Pieces [from, to) into hot (when given) and then the file, or straight
 * into the room; at most 64 pieces and HOT bytes at a time. */
static void copy_pieces(struct copy_job *j, uint8_t *hot, size_t from, size_t to)
{
	struct dump_precopy *pc = j->pc;
	enum { BATCH = 64 };
	fp_mem_range rg[BATCH];
	while (from < to) {
		size_t n = 0, first = from;
		uint64_t bytes = 0;
		for (; from < to && n < BATCH; from++) {
			struct dump_pre_piece *x = &pc->piece[from];
			uint64_t l = x->npages * CR_PAGE_SIZE;
			if (hot && n && bytes + l > HOT)
				break;
			rg[n++] = (fp_mem_range){ x->vaddr, (size_t)l, hot ? hot + bytes : pc->buf + x->off };
			bytes += l;
		}
		bool ok = fp_mem_read_ranges(pc->pid, rg, n, NULL) == 0;
		/* pieces are back to back in the room: one write */
		for (uint64_t done = 0, at = pc->piece[first].off; ok && hot && done < bytes;) {
			ssize_t w = pwrite(pc->buf_fd, hot + done, (size_t)(bytes - done), (off_t)(at + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				j->failed_write = w < 0 ? errno : EIO;
				ok = false;
			} else {
				done += (uint64_t)w;
			}
		}
		for (size_t k = first; k < from; k++) {
			pc->piece[k].ok = ok && !pc->piece[k].place;
			if (!ok)
				j->lost += pc->piece[k].npages;
		}
		dump_precopy_copied(pc, first, from);
	}
}

/* One of the two threads (slot 0 or 1): pieces from the shared counter. */
static void copy_slot(void *arg, size_t slot, size_t end)
{
	(void)end;
	struct copy_job *j = arg;
	for (;;) {
		size_t from = atomic_fetch_add(&j->next, GRAB);
		if (from >= j->pc->npiece)
			break;
		size_t to = from + GRAB < j->pc->npiece ? from + GRAB : j->pc->npiece;
		copy_pieces(j, j->hot[slot], from, to);
	}
}

/* Copies the present pages of the tracked mappings, on two CPUs. A piece
 * that cannot be read (unmapped meanwhile) is simply not pre-copied. When
 * the room may become the page store, the pages of the untracked mappings
 * that the stop will read get their places too. */
int dump_precopy_copy(struct dump_ctx *c, struct dump_precopy *pc, struct dump_vma *regv, size_t nregv, fp_error *err)
{
	struct dump_proc tmp = { 0 };
	tmp.pid = pc->pid;
	tmp.vmas = regv;
	tmp.nvmas = nregv;
	struct dump_vma *all = NULL;
	bool *place_only = NULL;
	size_t nall = 0;
	if (dump_precopy_store_wanted(c) && dump_precopy_with_places(pc->pid, regv, nregv, &all, &place_only, &nall) == 0)
		tmp.vmas = all, tmp.nvmas = nall;
	if (all)
		dump_precopy_settle(c, pc->pid, tmp.vmas, tmp.nvmas);
	int rc = dump_proc_pagemap(c, &tmp, err);
	size_t len = (size_t)tmp.npages * CR_PAGE_SIZE;
	size_t npieces = tmp.nvmas; /* a mapping's start cuts a run once at most */
	for (size_t k = 0; k < tmp.npe && !rc; k++)
		npieces += (tmp.pe[k].nr_pages * CR_PAGE_SIZE + COPY_PIECE - 1) / COPY_PIECE;
	if (!rc && len && !(pc->buf = room(c, pc, len, err)))
		rc = -1;
	else if (!rc && len)
		pc->buf_len = len;
	pc->piece = rc ? NULL : calloc(npieces ? npieces : 1, sizeof(*pc->piece));
	if (!rc && !pc->piece)
		rc = fp_fail(err, ENOMEM, "out of memory");
	uint64_t off = 0;
	size_t vi = 0, nplace = 0;
	for (size_t k = 0; k < tmp.npe && !rc; k++)
		add_pieces(pc, tmp.vmas, place_only, tmp.nvmas, &vi, tmp.pe[k].vaddr, tmp.pe[k].nr_pages * CR_PAGE_SIZE,
			   &off);
	for (size_t k = 0; k < pc->npiece; k++)
		nplace += pc->piece[k].place ? pc->piece[k].npages : 0;
	free(tmp.pe);
	free(all);
	free(place_only);
	if (rc)
		return -1;
	int64_t t0 = dump_now_ns();
	struct copy_job j = { .pc = pc };
	for (int k = 0; k < 2 && pc->buf_file; k++) {
		j.hot[k] = mmap(NULL, HOT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (j.hot[k] == MAP_FAILED)
			return fp_fail(err, errno, "cannot map the pre-copy's buffers: %s", strerror(errno));
	}
	if (pc->buf_file && dump_precopy_store_wanted(c))
		dump_precopy_hash_start(pc);
	int cpus = dump_two_cpus_by(2, 1, 2, copy_slot, &j);
	double copy_ms = ms_since(t0);
	for (int k = 0; k < 2; k++)
		if (j.hot[k])
			munmap(j.hot[k], HOT);
	dump_precopy_hash_wait(c, pc);
	uint64_t lost = j.lost;
	if (j.failed_write) {
		dlog(c, "%d: writing the pre-copy into its file failed (%s): it cannot be the page store", pc->pid,
		     strerror(j.failed_write));
		dump_precopy_store_close(pc);
	}
	pc->npages = off / CR_PAGE_SIZE;
	dump_fault_sleep("snap-precopy-wait-%ld-ms%n"); /* tests: pages written between the copy and the stop */
	dlog(c, "%d: pre-copied %" PRIu64 " pages (%" PRIu64 " MiB) while running in %.3f ms on %d CPU(s)%s%s; %zu "
		"pages of untracked memory given a place", pc->pid, pc->npages - lost - nplace,
	     (pc->npages - lost - nplace) >> 8, copy_ms, cpus, pc->buf_file ? " through the file" : "",
	     lost ? " (some were unmapped meanwhile)" : "", nplace);
	return 0;
}
