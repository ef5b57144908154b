/* A full pre-copy's buffer is the page store (dump_int.h).
 *
 * The pre-copy of a big process copies every page into the page cache of an
 * unlinked file beside the image (dump_precopy.c). The image's pages are
 * then written again into pages-<id>.img: for 1 GiB here, the copy took
 * ~190 ms and that second write ~290 ms, a third of the first snapshot.
 * But the buffer holds the pages in the store's own order (ascending
 * addresses) whenever the stop finds the same pages to dump: then the
 * buffer's file can simply become the store.
 *
 * For that the pages the stop reads go into their places in the buffer
 * (dump_precopy_final): the pages written since the pre-copy, and those of
 * the mappings that are not write-tracked (the data sections of files
 * mapped privately, a mapping the process's own userfaultfd holds), which
 * the pre-copy gives a place without copying them (dump_precopy_with_places).
 * After the resume, if the image's pages are exactly the buffer from its
 * start to its end, the hash chain is taken over the buffer and the file is
 * linked into the directory as pages-<id>.img. Otherwise (pages new or gone
 * between the pre-copy and the stop) the pages are written as before, from
 * the same buffer: nothing but the places is lost.
 *
 * Only for stores without compression; FP_DUMP_PRECOPY_STORE=0 turns it off
 * (A/B). */
#include "dump/dump_int.h"
#include "dump/dump_precopy_store.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/pagehash.h"
#include "images/pagestore.h"
#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"

bool dump_precopy_store_wanted(const struct dump_ctx *c)
{
	static _Atomic int on = -1;
	if (on < 0)
		on = !fp_env_off("FP_DUMP_PRECOPY_STORE");
	return on && c->o->compress == FP_DUMP_NONE && c->dirfd >= 0;
}

static bool anon(const struct dump_vma *v)
{
	return v->ino == 0 && (v->path[0] == '\0' || v->path[0] == '[');
}

/* A private mapping whose pages the dump takes (as dump_mm.c decides), and
 * that the write tracking does not cover. */
static bool place_only(const struct dump_vma *v)
{
	if (v->perms[3] != 'p' || !strcmp(v->path, "[vsyscall]") || !strncmp(v->path, "[vvar", 5) ||
	    !strcmp(v->path, "[uprobes]"))
		return false;
	return anon(v) || (v->path[0] == '/' && strncmp(v->path, "/memfd:", 7));
}

int dump_precopy_with_places(pid_t pid, const struct dump_vma *regv, size_t nregv, struct dump_vma **all,
			     bool **place, size_t *n)
{
	struct dump_vma *v = NULL;
	size_t nv = 0;
	fp_error e;
	if (dump_vmas_read(pid, false, &v, &nv, &e))
		return -1;
	struct dump_vma *o = calloc(nv + nregv + 1, sizeof(*o));
	bool *po = calloc(nv + nregv + 1, sizeof(*po));
	if (!o || !po) {
		free(v);
		free(o);
		free(po);
		return -1;
	}
	size_t ri = 0, k = 0;
	for (size_t i = 0; i <= nv; i++) {
		uint64_t vs = i < nv ? v[i].start : UINT64_MAX;
		while (ri < nregv && regv[ri].start <= vs) {
			o[k] = regv[ri++];
			po[k++] = false;
		}
		if (i == nv || !place_only(&v[i]))
			continue;
		/* the maps read now may differ from the registration's */
		if ((ri && regv[ri - 1].end > v[i].start) || (ri < nregv && regv[ri].start < v[i].end))
			continue;
		o[k] = v[i];
		o[k].dump_pages = true;
		o[k].file_private = !anon(&v[i]);
		po[k++] = true;
	}
	free(v);
	*all = o;
	*place = po;
	*n = k;
	return 0;
}

struct settle {
	pid_t pid;
	uint64_t pages;
	uint8_t scratch[64 << 10];
};

static int settle_range(void *arg, uint64_t start, uint64_t end)
{
	struct settle *st = arg;
	for (uint64_t a = start; a < end;) {
		size_t n = end - a > sizeof(st->scratch) ? sizeof(st->scratch) : (size_t)(end - a);
		fp_mem_read(st->pid, a, st->scratch, n, NULL); /* unmapped meanwhile: nothing to settle */
		a += n;
	}
	st->pages += (end - start) / CR_PAGE_SIZE;
	return 0;
}

void dump_precopy_settle(struct dump_ctx *c, pid_t pid, const struct dump_vma *v, size_t n)
{
	int fd = fp_pagemap_open(pid, NULL);
	enum { VEC = 256 };
	struct fp_page_region *vec = fd >= 0 ? malloc(VEC * sizeof(*vec)) : NULL;
	struct settle *st = vec ? calloc(1, sizeof(*st)) : NULL;
	if (st) {
		st->pid = pid;
		struct fp_pm_scan_arg m = { 0 };
		m.category_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
		m.category_inverted = FP_PAGE_IS_PRESENT;
		m.return_mask = FP_PAGE_IS_SWAPPED;
		for (size_t i = 0; i < n; i++)
			if (v[i].dump_pages && fp_pagemap_scan(fd, v[i].start, v[i].end, &m, vec, VEC, settle_range, st) <= 0)
				break;
		if (st->pages)
			dlog(c, "%d: %" PRIu64 " pages not present but listed (swapped out, or marked) read in before the "
				"pre-copy's list", (int)pid, st->pages);
	}
	free(st);
	free(vec);
	if (fd >= 0)
		close(fd);
}

/* ---- the hash chain, taken behind the copy ------------------------------ */

struct dump_pre_hash {
	struct dump_precopy *pc;
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;        /* (mu) */
	pgh_list ph;
	uint64_t hashed;  /* bytes of buf from its start (the thread's; read after the join) */
	uint64_t first;   /* the first byte changed after the copy (the stop's) */
	double ms;
};

static void *hash_behind(void *arg)
{
	struct dump_pre_hash *h = arg;
	struct dump_precopy *pc = h->pc;
	int64_t t0 = dump_now_ns();
	for (size_t i = 0; i < pc->npiece; i++) {
		struct dump_pre_piece *q = &pc->piece[i];
		if (!__atomic_load_n(&q->copied, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&h->mu);
			while (!__atomic_load_n(&q->copied, __ATOMIC_ACQUIRE) && !h->stop)
				pthread_cond_wait(&h->cv, &h->mu);
			bool stop = h->stop && !__atomic_load_n(&q->copied, __ATOMIC_ACQUIRE);
			pthread_mutex_unlock(&h->mu);
			if (stop)
				break;
		}
		pgh_add(&h->ph, pc->buf + q->off, (size_t)q->npages);
		h->hashed = q->off + q->npages * CR_PAGE_SIZE;
	}
	h->ms = (double)(dump_now_ns() - t0) / 1e6;
	return NULL;
}

void dump_precopy_hash_start(struct dump_precopy *pc)
{
	struct dump_pre_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return;
	h->pc = pc;
	h->first = pc->buf_len;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->running = pthread_create(&h->th, NULL, hash_behind, h) == 0;
	pc->hash = h;
}

void dump_precopy_copied(struct dump_precopy *pc, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		__atomic_store_n(&pc->piece[i].copied, true, __ATOMIC_RELEASE);
	struct dump_pre_hash *h = pc->hash;
	if (h) {
		pthread_mutex_lock(&h->mu);
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
}

static void hash_join(struct dump_pre_hash *h, bool stop)
{
	if (!h->running)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = h->stop || stop;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	h->running = false;
}

/* Before the stop: the thread must not take a CPU from it. */
void dump_precopy_hash_wait(struct dump_ctx *c, struct dump_precopy *pc)
{
	struct dump_pre_hash *h = pc->hash;
	if (!h)
		return;
	int64_t t0 = dump_now_ns();
	hash_join(h, true); /* every piece is copied: stop only ends a wait that cannot come */
	dlog(c, "%d: hash chain over %" PRIu64 " MiB of the pre-copy taken behind the copy in %.3f ms, waited %.3f ms "
		"for it", pc->pid, h->hashed >> 20, h->ms, (double)(dump_now_ns() - t0) / 1e6);
}

void dump_precopy_patched(struct dump_precopy *pc, uint64_t off)
{
	if (pc->hash && off < pc->hash->first)
		pc->hash->first = off;
}

static void hash_free(struct dump_precopy *pc)
{
	struct dump_pre_hash *h = pc->hash;
	if (!h)
		return;
	hash_join(h, true);
	pgh_free(&h->ph);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	pc->hash = NULL;
}

/* p's chain over buf: the thread's as far as the first page the stop
 * changed, the rest taken again (the bytes it took again). */
static uint64_t chain(struct dump_proc *p, struct dump_precopy *pc)
{
	struct dump_pre_hash *h = pc->hash;
	uint64_t from = 0;
	pgh_reset(&p->ph);
	if (h && !h->running && h->hashed == pc->buf_len) {
		from = h->first / CR_PAGE_SIZE;
		if (pgh_truncate(&h->ph, from)) {
			pgh_free(&p->ph);
			p->ph = h->ph; /* the image's chain now */
			memset(&h->ph, 0, sizeof(h->ph));
		} else {
			from = 0;
		}
	}
	p->pages_hash = pgh_add(&p->ph, pc->buf + from * CR_PAGE_SIZE, (size_t)(pc->buf_len / CR_PAGE_SIZE - from));
	return pc->buf_len - from * CR_PAGE_SIZE;
}

void dump_precopy_store_close(struct dump_precopy *pc)
{
	hash_free(pc);
	if (pc->buf_file)
		close(pc->buf_fd);
	pc->buf_file = false;
	pc->buf_fd = -1;
}

int dump_precopy_store_finish(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	(void)err;
	struct dump_precopy *pc = p->pre;
	if (!pc || !pc->buf_file || !p->segs || !dump_precopy_store_wanted(c))
		return 0;
	int64_t t0 = dump_now_ns();
	uint64_t off = 0;
	size_t k = 0;
	for (; k < p->nsegs && p->segs[k].data == pc->buf + off; k++)
		off += p->segs[k].npages * CR_PAGE_SIZE;
	if (k < p->nsegs || off != pc->buf_len) {
		const struct dump_pre_piece *q = NULL; /* the buffer's page that the image does not follow */
		for (size_t i = 0; i < pc->npiece && !q; i++)
			if (pc->piece[i].off + pc->piece[i].npages * CR_PAGE_SIZE > off)
				q = &pc->piece[i];
		dlog(c, "%d: the pre-copy's buffer is not the page store (the image's pages differ from 0x%" PRIx64
			" on, the buffer's from 0x%" PRIx64 " on: pages new or gone since the pre-copy): they are written "
			"again", p->pid, k < p->nsegs ? p->segs[k].vaddr : 0,
		     q ? q->vaddr + (off - q->off) : 0);
		dump_precopy_store_close(pc);
		return 0;
	}
	uint64_t again = chain(p, pc);
	double hash_ms = (double)(dump_now_ns() - t0) / 1e6;
	char name[64], src[64];
	pgs_plain_name(name, sizeof(name), p->pages_id);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", pc->buf_fd);
	if (linkat(AT_FDCWD, src, c->dirfd, name, AT_SYMLINK_FOLLOW) < 0) {
		dlog(c, "%d: the pre-copy's buffer cannot become %s (%s): the pages are written again", p->pid, name,
		     strerror(errno));
		dump_precopy_store_close(pc);
		return 0;
	}
	dump_precopy_store_close(pc);
	c->st->bytes_pages += pc->buf_len;
	dlog(c, "%d: the pre-copy's buffer is the page store %s: %" PRIu64 " pages, %" PRIu64 " MiB hashed again in %.3f "
		"ms, in place in %.3f ms", p->pid, name, (uint64_t)(pc->buf_len / CR_PAGE_SIZE), again >> 20, hash_ms,
	     (double)(dump_now_ns() - t0) / 1e6);
	return 1;
}
