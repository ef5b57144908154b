/* Writing the dump's pages (pages-<id>.img or .fpz, and their per-page
 * hashes): streamed in pagemap order from the frozen copy, the stopped
 * target or the areas copied while stopped. Which pages, and the copies made
 * while stopped, are dump_pages.c's. */
#include "dump/dump_int.h"
#include "dump/dump_precopy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"
#include "images/criu_io.h"
#include "images/hash64.h"
#include "images/pagehash.h"
#include "images/pagestore.h"

/* Streams p's dump pages into w, in pagemap order, straight into the
 * writer's chunk buffers: from the frozen copy (or the stopped target), and
 * from p->fb for the areas copied while stopped. */
static int stream_pages(struct dump_proc *p, pid_t src, int memfd, pgs_writer *w, fp_error *err)
{
	enum { MAXR = 256 };
	fp_mem_range rg[MAXR];
	size_t k = 0;
	uint64_t off = 0; /* bytes of run k done */
	while (k < p->npe) {
		size_t room;
		uint8_t *buf = pgs_writer_buf(w, &room, err);
		if (!buf)
			return -1;
		size_t filled = 0, nr = 0;
		while (k < p->npe && filled < room && nr < MAXR) {
			uint64_t rlen = p->pe[k].nr_pages * CR_PAGE_SIZE;
			uint64_t a = p->pe[k].vaddr + off;
			uint64_t take = rlen - off;
			if (take > (room - filled) * CR_PAGE_SIZE)
				take = (room - filled) * CR_PAGE_SIZE;
			const struct dump_span *fb = dump_span_at(p, a);
			if (fb) {
				if (take > fb->end - a)
					take = fb->end - a;
				/* offset of a in fb->data: its runs are back to back */
				uint64_t doff = 0;
				bool found = false;
				for (size_t j = 0; j < fb->npe && !found; j++) {
					uint64_t s0 = fb->pe[j].vaddr, l = fb->pe[j].nr_pages * CR_PAGE_SIZE;
					if (a >= s0 && a < s0 + l) {
						if (take > s0 + l - a)
							take = s0 + l - a;
						doff += a - s0;
						found = true;
					} else {
						doff += l;
					}
				}
				if (!found)
					return fp_fail(err, EIO, "internal: page 0x%" PRIx64 " not in its copied area", a);
				memcpy(buf + filled * CR_PAGE_SIZE, fb->data + doff, take);
			} else {
				for (size_t j = 0; j < p->nfb; j++)
					if (p->fb[j].start > a && p->fb[j].start - a < take)
						take = p->fb[j].start - a;
				rg[nr++] = (fp_mem_range){ a, (size_t)take, buf + filled * CR_PAGE_SIZE };
			}
			filled += take / CR_PAGE_SIZE;
			off += take;
			if (off == rlen) {
				k++;
				off = 0;
			}
		}
		if (nr && memfd >= 0) {
			for (size_t j = 0; j < nr; j++) {
				size_t got = 0;
				while (got < rg[j].len) {
					ssize_t n = pread(memfd, (uint8_t *)rg[j].local + got, rg[j].len - got, (off_t)(rg[j].addr + got));
					if (n < 0 && errno == EINTR)
						continue;
					if (n <= 0)
						return fp_fail(err, n < 0 ? errno : EIO,
							       "reading the pages of %d from its frozen copy %d at 0x%" PRIx64 ": %s", p->pid,
							       src, rg[j].addr + got, n < 0 ? strerror(errno) : "short read");
					got += (size_t)n;
				}
			}
		} else if (nr && fp_mem_read_ranges(src, rg, nr, err)) {
			return fp_wrap(err, "reading the pages of %d", p->pid);
		}
		p->pages_hash = pgh_add(&p->ph, buf, filled);
		if (pgs_writer_commit(w, filled, err))
			return -1;
	}
	return 0;
}

/* Uncompressed pages of a frozen copy: the copy writes them itself
 * (injected pwritev of its own memory into the image file, reopened through
 * /proc/<dumper>/fd): one copy of each page, from the copy's memory into the
 * page cache, on the copy's CPU, and no pinning (nothing is unshared). The
 * dumper meanwhile reads back what the previous call wrote (page cache) for
 * the manifest's hash. Areas copied while stopped (p->fb) are written by the
 * dumper. 1 done, 0 not possible (the caller streams instead), -1 error. */
struct cw_batch {
	uint64_t off, len; /* file range */
	bool live;
};

static int hash_back(struct dump_proc *p, int rfd, uint8_t *buf, size_t cap, const struct cw_batch *b, fp_error *err)
{
	for (uint64_t o = b->off; o < b->off + b->len;) {
		size_t n = b->off + b->len - o > cap ? cap : (size_t)(b->off + b->len - o);
		ssize_t got = pread(rfd, buf, n, (off_t)o);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || got % CR_PAGE_SIZE)
			return fp_fail(err, got < 0 ? errno : EIO, "reading back the pages of %d at %" PRIu64 ": %s", p->pid, o,
				       got < 0 ? strerror(errno) : "short read");
		p->pages_hash = pgh_add(&p->ph, buf, (size_t)got / CR_PAGE_SIZE);
		o += (uint64_t)got;
	}
	return 0;
}

static int copy_writes_itself(struct dump_ctx *c, struct dump_proc *p, pgs_writer *w, fp_error *err)
{
	uint64_t base = 0;
	int wfd = pgs_writer_plain_fd(w, &base);
	size_t slen = 0;
	uint64_t scratch = dinj_copy_scratch(p, &slen);
	if (wfd < 0 || !scratch || !p->g_ok || slen < 3 * 4096)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), wfd);
	if (fp_mem_write(p->cow, scratch, path, strlen(path) + 1, NULL))
		return 0;
	uint64_t oa[6] = { (uint64_t)AT_FDCWD, scratch, O_WRONLY | O_CLOEXEC, 0, 0, 0 };
	int64_t cfd = -1;
	if (dinj_copy_start(p, SYS_openat, oa, err) || dinj_copy_finish(p, &cfd, err))
		return -1;
	if (cfd < 0) {
		dlog(c, "%d: the frozen copy cannot open %s (%s): pages go through the dumper", p->pid, path,
		     strerror((int)-cfd));
		return 0;
	}
	int rfd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4u << 20;
	uint8_t *buf = rfd >= 0 ? malloc(cap) : NULL;
	if (!buf) {
		if (rfd >= 0)
			close(rfd);
		return 0;
	}
	/* two iovec arrays in the copy's scratch: one is read by the call in
	 * flight while the next is written */
	size_t half = (slen - 4096) / 2;
	size_t maxiov = half / 16 > 1024 ? 1024 : half / 16;
	uint64_t area[2] = { scratch + 4096, scratch + 4096 + half };
	struct { uint64_t base, len; } *iov = malloc(maxiov * 16);
	int rc = iov ? 0 : fp_fail(err, ENOMEM, "out of memory");
	const uint64_t max_call = 64u << 20;
	uint64_t off = base;
	struct cw_batch prev = { 0 };
	size_t k = 0, nb = 0;
	uint64_t roff = 0; /* bytes of run k done */
	while (!rc && k < p->npe) {
		/* next batch: pages of the copy up to max_call, or one copied area */
		size_t n = 0;
		uint64_t blen = 0;
		const struct dump_span *fb = NULL;
		uint64_t fb_a = 0, fb_len = 0;
		while (k < p->npe && n < maxiov && blen < max_call) {
			uint64_t rlen = p->pe[k].nr_pages * CR_PAGE_SIZE;
			uint64_t a = p->pe[k].vaddr + roff, take = rlen - roff;
			if (take > max_call - blen)
				take = max_call - blen;
			const struct dump_span *f = dump_span_at(p, a);
			if (f) {
				if (n) /* finish this batch first */
					break;
				fb = f;
				fb_a = a;
				fb_len = take > f->end - a ? f->end - a : take;
				roff += fb_len;
				if (roff == rlen)
					k++, roff = 0;
				break;
			}
			for (size_t j = 0; j < p->nfb; j++)
				if (p->fb[j].start > a && p->fb[j].start - a < take)
					take = p->fb[j].start - a;
			iov[n].base = a;
			iov[n].len = take;
			n++;
			blen += take;
			roff += take;
			if (roff == rlen)
				k++, roff = 0;
		}
		if (fb) {
			/* ours to write: previous batch hashed first (page order) */
			if (prev.live && (rc = hash_back(p, rfd, buf, cap, &prev, err)))
				break;
			prev.live = false;
			uint64_t doff = 0;
			for (size_t j = 0; j < fb->npe; j++) {
				uint64_t s0 = fb->pe[j].vaddr, l = fb->pe[j].nr_pages * CR_PAGE_SIZE;
				if (fb_a >= s0 && fb_a < s0 + l) {
					doff += fb_a - s0;
					/* inside a copied area the runs are that area's runs */
					if (fb_len > s0 + l - fb_a)
						rc = fp_fail(err, EIO, "internal: page run crosses a copied run at 0x%" PRIx64, fb_a);
					break;
				}
				doff += l;
			}
			if (rc)
				break;
			const uint8_t *d = fb->data + doff;
			for (uint64_t done = 0; done < fb_len && !rc;) {
				ssize_t wr = pwrite(wfd, d + done, fb_len - done, (off_t)(off + done));
				if (wr < 0 && errno == EINTR)
					continue;
				if (wr <= 0)
					rc = fp_fail(err, wr < 0 ? errno : EIO, "cannot write the pages of %d: %s", p->pid,
						     wr < 0 ? strerror(errno) : "short write");
				else
					done += (uint64_t)wr;
			}
			p->pages_hash = pgh_add(&p->ph, d, fb_len / CR_PAGE_SIZE);
			off += fb_len;
			continue;
		}
		if (!n)
			break;
		uint64_t at = area[nb++ % 2];
		if ((rc = fp_mem_write(p->cow, at, iov, n * 16, err)))
			break;
		uint64_t wa[6] = { (uint64_t)cfd, at, n, off, 0, 0 };
		if ((rc = dinj_copy_start(p, SYS_pwritev, wa, err)))
			break;
		if (prev.live && (rc = hash_back(p, rfd, buf, cap, &prev, err)))
			break;
		int64_t ret = 0;
		if ((rc = dinj_copy_finish(p, &ret, err)))
			break;
		if (ret != (int64_t)blen) {
			/* a short write is how a full disk shows first */
			struct statvfs vs;
			int e = ret < 0 ? (int)-ret : EIO;
			if (ret >= 0 && fstatvfs(wfd, &vs) == 0 && (uint64_t)vs.f_bavail * vs.f_bsize < blen - (uint64_t)ret)
				e = ENOSPC;
			rc = fp_fail(err, e, "cannot write pages-%u.img: %s%s", p->pages_id, strerror(e),
				     e == ENOSPC ? "; free some space in the image directory" : "");
			break;
		}
		prev = (struct cw_batch){ off, blen, true };
		off += blen;
	}
	if (!rc && prev.live)
		rc = hash_back(p, rfd, buf, cap, &prev, err);
	if (!rc)
		rc = pgs_writer_external(w, (size_t)((off - base) / CR_PAGE_SIZE), err);
	free(iov);
	free(buf);
	close(rfd);
	if (!rc)
		dlogv(c, "%d: the frozen copy wrote its own %" PRIu64 " pages in %zu calls", p->pid, (off - base) / CR_PAGE_SIZE,
		      nb);
	return rc ? -1 : 1;
}

static void *hash_segs(void *arg)
{
	struct dump_proc *p = arg;
	for (size_t k = 0; k < p->nsegs; k++)
		p->pages_hash = pgh_add(&p->ph, p->segs[k].data, p->segs[k].npages);
	return NULL;
}

/* Fewer pages are hashed in line: a thread (~0.1 ms) costs more than
 * hashing them (~0.25 ms a MiB here). */
#define HASH_THREAD_MIN_PAGES 256

int dump_write_pages(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	cr_pagemap_head h = { .pages_id = p->pages_id };
	if (cr_write_pagemap(c->dirfd, (uint32_t)p->pid, &h, p->pe, p->npe, err))
		return -1;
	/* written beside the pre-copy already (dump_incr_store.c)? */
	int beside = p->segs ? dump_incr_store_finish(c, p, err) : 0;
	if (!beside && p->segs) /* or the full pre-copy's buffer is the store (dump_precopy_store.c) */
		beside = dump_precopy_store_finish(c, p, err);
	if (beside < 0)
		return -1;
	if (beside)
		return pgh_write(c->dirfd, p->pages_id, &p->ph, err);
	pgs_opts po = { 0 };
	po.compress = c->o->compress == FP_DUMP_NONE ? PGS_COMPRESS_NONE : PGS_COMPRESS_ZSTD;
	po.level = c->o->zstd_level ? c->o->zstd_level : FP_DUMP_DEFAULT_LEVEL;
	po.threads = c->nthreads;
	po.do_fsync = false; /* one syncfs before the manifest covers it */
	pgs_writer *w = pgs_writer_open(c->dirfd, p->pages_id, &po, err);
	if (!w)
		return -1;
	p->pages_hash = 0;
	pgh_reset(&p->ph);
	int rc = 0;
	if (p->segs) {
		/* Copied already (pre-copy, or --pages copy): the pieces in
		 * pagemap order. The manifest's hash is computed by a second
		 * thread meanwhile: the pages are in our memory already, and
		 * hashing 1 GiB costs as much as writing it. */
		pthread_t ht;
		bool hashing = p->npages >= HASH_THREAD_MIN_PAGES && pthread_create(&ht, NULL, hash_segs, p) == 0;
		for (size_t k = 0; k < p->nsegs && !rc; k++)
			for (uint64_t i = 0; i < p->segs[k].npages && !rc;) {
				uint64_t n = p->segs[k].npages - i > 1024 ? 1024 : p->segs[k].npages - i;
				rc = pgs_writer_add(w, p->segs[k].data + i * CR_PAGE_SIZE, n, err);
				i += n;
			}
		if (hashing)
			pthread_join(ht, NULL);
		else
			hash_segs(p);
	} else if (p->npe) {
		/* From the copy through /proc/PID/mem: process_vm_readv pins pages
		 * (FOLL_PIN), and pinning a page shared copy-on-write makes the
		 * kernel unshare it, i.e. copy every page into the copy (seen:
		 * do_wp_page under pin_user_pages_remote). /proc/PID/mem takes
		 * plain references and copies nothing. */
		int memfd = -1;
		int cw = p->cow && c->o->compress == FP_DUMP_NONE ? copy_writes_itself(c, p, w, err) : 0;
		if (cw)
			rc = cw < 0 ? -1 : 0;
		else if (p->cow) {
			char mp[64];
			snprintf(mp, sizeof(mp), "/proc/%d/mem", p->cow);
			memfd = open(mp, O_RDONLY | O_CLOEXEC);
			if (memfd < 0)
				rc = fp_fail(err, errno, "cannot open %s: %s", mp, strerror(errno));
		}
		if (!rc && !cw)
			rc = stream_pages(p, p->cow ? p->cow : p->pid, memfd, w, err);
		if (memfd >= 0)
			close(memfd);
	}
	if (p->cow) /* every page read: its teardown can start meanwhile */
		dump_cow_kill(c, p);
	if (rc) {
		pgs_writer_abort(w);
		return -1;
	}
	pgs_stats ps;
	if (pgs_writer_close(w, &ps, err))
		return -1;
	/* every link of the manifest's chain: a rollback checks the pages it
	 * reads one by one (images/pagehash.h) */
	if (pgh_write(c->dirfd, p->pages_id, &p->ph, err))
		return -1;
	c->st->bytes_pages += ps.bytes_in;
	return 0;
}
