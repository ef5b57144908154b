/* Writing a page store: chunks compressed by worker threads, written in
 * order, index and footer last; or a plain pages-<id>.img. */
#include "images/pagestore.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/pagestore_fmt.h"


void pgs_store_name(char *buf, size_t len, uint32_t pages_id)
{
	snprintf(buf, len, "pages-%u.fpz", pages_id);
}

void pgs_plain_name(char *buf, size_t len, uint32_t pages_id)
{
	snprintf(buf, len, "pages-%u.img", pages_id);
}

/* ---- writer -----------------------------------------------------------
 *
 * Chunks are independent frames, so they compress in parallel: the caller's
 * thread fills chunk slots (pgs_writer_buf/commit, or add), `threads`
 * workers compress them (each with its own context), and the caller's
 * thread writes finished slots in order. With one thread the caller
 * compresses inline. Memory: (2 * threads + 2) slots of one chunk each. */

enum { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct slot {
	uint8_t *in;   /* chunk_pages pages */
	uint8_t *out;  /* compressed */
	size_t npages;
	size_t csize;
	uint32_t codec;
	uint64_t hash;
	int state;
};

struct pgs_writer {
	img_afile f;
	bool plain;
	bool do_fsync;
	int level;
	uint32_t chunk_pages;
	size_t cbound;
	/* plain: a staging buffer for pgs_writer_buf */
	uint8_t *pbuf;
	/* zstd */
	ZSTD_CCtx *cctx; /* inline compression (threads <= 1) */
	struct slot *slots;
	size_t nslots;
	size_t pending;          /* pages in the slot being filled */
	uint64_t seq_fill;       /* slots submitted (the next one is being filled) */
	uint64_t seq_job;        /* next slot a worker takes */
	uint64_t seq_write;      /* next slot to write out */
	unsigned nthreads;
	pthread_t *th;
	unsigned nstarted;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	bool stop;
	chunk_rec *recs;
	size_t n_recs, cap_recs;
	uint64_t pages;
};

#define PLAIN_BUF_PAGES 1024u

static void compress_slot(pgs_writer *w, ZSTD_CCtx *cctx, struct slot *s)
{
	size_t usize = s->npages * PGS_PAGE_SIZE;
	s->hash = fp_hash64(s->in, usize, 0);
	size_t cs = ZSTD_compressCCtx(cctx, s->out, w->cbound, s->in, usize, w->level);
	if (!ZSTD_isError(cs) && cs < usize) {
		s->codec = CODEC_ZSTD;
		s->csize = cs;
	} else { /* incompressible (or zstd refused): store as is */
		s->codec = CODEC_STORED;
		s->csize = usize;
	}
}

static void *worker(void *arg)
{
	pgs_writer *w = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->seq_job == w->seq_fill)
			pthread_cond_wait(&w->cv_work, &w->mu);
		if (w->seq_job == w->seq_fill)
			break; /* stop, nothing left */
		struct slot *s = &w->slots[w->seq_job++ % w->nslots];
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&w->mu);
		if (cctx) {
			compress_slot(w, cctx, s);
		} else { /* no memory for a context: store */
			s->hash = fp_hash64(s->in, s->npages * PGS_PAGE_SIZE, 0);
			s->codec = CODEC_STORED;
			s->csize = s->npages * PGS_PAGE_SIZE;
		}
		pthread_mutex_lock(&w->mu);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&w->cv_done);
	}
	pthread_mutex_unlock(&w->mu);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

pgs_writer *pgs_writer_open(int dirfd, uint32_t pages_id, const pgs_opts *opts, fp_error *err)
{
	pgs_opts o = { .compress = PGS_COMPRESS_ZSTD, .level = 1 };
	if (opts)
		o = *opts;
	if (!o.level)
		o.level = 1;
	if (!o.chunk_pages)
		o.chunk_pages = PGS_DEFAULT_CHUNK_PAGES;
	if (o.chunk_pages > PGS_MAX_CHUNK_PAGES) {
		fp_fail(err, EINVAL, "page store: chunk of %u pages is more than the %u allowed",
			o.chunk_pages, PGS_MAX_CHUNK_PAGES);
		return NULL;
	}
	pgs_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		fp_fail(err, ENOMEM, "page store: out of memory");
		return NULL;
	}
	w->f.fd = -1;
	w->plain = o.compress == PGS_COMPRESS_NONE;
	w->do_fsync = o.do_fsync;
	w->level = o.level;
	w->chunk_pages = o.chunk_pages;
	w->nthreads = o.threads > 1 ? (o.threads > PGS_MAX_THREADS ? PGS_MAX_THREADS : o.threads) : 0;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv_work, NULL);
	pthread_cond_init(&w->cv_done, NULL);
	char name[64];
	if (w->plain)
		pgs_plain_name(name, sizeof(name), pages_id);
	else
		pgs_store_name(name, sizeof(name), pages_id);
	if (img_afile_open(&w->f, dirfd, name, err) < 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv_work);
		pthread_cond_destroy(&w->cv_done);
		free(w);
		return NULL;
	}
	if (w->plain)
		return w;
	size_t usize = (size_t)w->chunk_pages * PGS_PAGE_SIZE;
	w->cbound = ZSTD_compressBound(usize);
	w->nslots = w->nthreads ? 2 * w->nthreads + 2 : 1;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	bool ok = w->slots != NULL;
	for (size_t i = 0; ok && i < w->nslots; i++) {
		w->slots[i].in = malloc(usize);
		w->slots[i].out = malloc(w->cbound);
		ok = w->slots[i].in && w->slots[i].out;
	}
	if (ok && !w->nthreads)
		ok = (w->cctx = ZSTD_createCCtx()) != NULL;
	if (!ok) {
		fp_fail(err, ENOMEM, "page store: out of memory for %zu chunk buffers", w->nslots);
		pgs_writer_abort(w);
		return NULL;
	}
	if (w->nthreads) {
		w->th = calloc(w->nthreads, sizeof(pthread_t));
		for (unsigned i = 0; w->th && i < w->nthreads; i++) {
			if (pthread_create(&w->th[i], NULL, worker, w))
				break;
			w->nstarted++;
		}
		if (!w->nstarted) { /* no threads: compress inline */
			w->nthreads = 0;
			w->cctx = ZSTD_createCCtx();
			if (!w->cctx) {
				fp_fail(err, ENOMEM, "page store: out of memory");
				pgs_writer_abort(w);
				return NULL;
			}
		}
	}
	uint8_t h[HDR_SIZE];
	make_header(h, w->chunk_pages);
	if (img_afile_write(&w->f, h, HDR_SIZE, err) < 0) {
		pgs_writer_abort(w);
		return NULL;
	}
	return w;
}

/* Writes one compressed slot and indexes it. */
static int write_slot(pgs_writer *w, struct slot *s, fp_error *err)
{
	chunk_rec c = { .first_page = w->pages, .offset = w->f.written, .nr_pages = (uint32_t)s->npages,
			.usize = (uint32_t)(s->npages * PGS_PAGE_SIZE), .csize = (uint32_t)s->csize,
			.codec = s->codec, .hash = s->hash };
	const uint8_t *out = s->codec == CODEC_ZSTD ? s->out : s->in;
	if (img_afile_write(&w->f, out, c.csize, err) < 0)
		return -1;
	if (w->n_recs == w->cap_recs) {
		size_t nc = w->cap_recs ? w->cap_recs * 2 : 64;
		chunk_rec *r = realloc(w->recs, nc * sizeof(*r));
		if (!r)
			return fp_fail(err, ENOMEM, "page store: out of memory for the index");
		w->recs = r;
		w->cap_recs = nc;
	}
	w->recs[w->n_recs++] = c;
	w->pages += s->npages;
	return 0;
}

/* Writes finished slots in order up to (not including) seq `upto`;
 * block: wait for them, else stop at the first unfinished one. */
static int drain(pgs_writer *w, uint64_t upto, bool block, fp_error *err)
{
	while (w->seq_write < upto) {
		struct slot *s = &w->slots[w->seq_write % w->nslots];
		pthread_mutex_lock(&w->mu);
		while (s->state != SLOT_DONE && block)
			pthread_cond_wait(&w->cv_done, &w->mu);
		bool done = s->state == SLOT_DONE;
		pthread_mutex_unlock(&w->mu);
		if (!done)
			return 0;
		if (write_slot(w, s, err) < 0)
			return -1;
		pthread_mutex_lock(&w->mu);
		s->state = SLOT_FREE;
		pthread_mutex_unlock(&w->mu);
		w->seq_write++;
	}
	return 0;
}

/* The slot being filled is complete (or final): compress it (inline or
 * by a worker) and make sure the next one is free. */
static int submit(pgs_writer *w, fp_error *err)
{
	struct slot *s = &w->slots[w->seq_fill % w->nslots];
	s->npages = w->pending;
	w->pending = 0;
	if (!w->nthreads) {
		compress_slot(w, w->cctx, s);
		w->seq_fill++;
		w->seq_job = w->seq_fill;
		s->state = SLOT_DONE;
		return drain(w, w->seq_fill, true, err);
	}
	pthread_mutex_lock(&w->mu);
	s->state = SLOT_READY;
	w->seq_fill++;
	pthread_cond_signal(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	if (drain(w, w->seq_fill, false, err) < 0)
		return -1;
	/* The next slot to fill was used nslots chunks ago: wait for it. */
	if (w->seq_fill - w->seq_write >= w->nslots && drain(w, w->seq_fill - w->nslots + 1, true, err) < 0)
		return -1;
	return 0;
}

void *pgs_writer_buf(pgs_writer *w, size_t *max_pages, fp_error *err)
{
	if (w->plain) {
		if (!w->pbuf && !(w->pbuf = malloc((size_t)PLAIN_BUF_PAGES * PGS_PAGE_SIZE))) {
			fp_fail(err, ENOMEM, "page store: out of memory");
			return NULL;
		}
		*max_pages = PLAIN_BUF_PAGES;
		return w->pbuf;
	}
	struct slot *s = &w->slots[w->seq_fill % w->nslots];
	*max_pages = w->chunk_pages - w->pending;
	return s->in + w->pending * PGS_PAGE_SIZE;
}

int pgs_writer_commit(pgs_writer *w, size_t npages, fp_error *err)
{
	if (w->plain) {
		if (img_afile_write(&w->f, w->pbuf, npages * PGS_PAGE_SIZE, err) < 0)
			return -1;
		w->pages += npages;
		return 0;
	}
	w->pending += npages;
	if (w->pending == w->chunk_pages)
		return submit(w, err);
	return 0;
}

int pgs_writer_add(pgs_writer *w, const void *pages, size_t npages, fp_error *err)
{
	const uint8_t *p = pages;
	if (w->plain) {
		if (npages > SIZE_MAX / PGS_PAGE_SIZE)
			return fp_fail(err, EINVAL, "page store: %zu pages is too many", npages);
		if (img_afile_write(&w->f, p, npages * PGS_PAGE_SIZE, err) < 0)
			return -1;
		w->pages += npages;
		return 0;
	}
	while (npages) {
		size_t room;
		uint8_t *dst = pgs_writer_buf(w, &room, err);
		size_t take = room < npages ? room : npages;
		memcpy(dst, p, take * PGS_PAGE_SIZE);
		if (pgs_writer_commit(w, take, err) < 0)
			return -1;
		p += take * PGS_PAGE_SIZE;
		npages -= take;
	}
	return 0;
}

int pgs_writer_plain_fd(pgs_writer *w, uint64_t *offset)
{
	if (!w->plain)
		return -1;
	*offset = w->f.written;
	return w->f.fd;
}

int pgs_writer_external(pgs_writer *w, size_t npages, fp_error *err)
{
	uint64_t end = w->f.written + (uint64_t)npages * PGS_PAGE_SIZE;
	if (lseek(w->f.fd, (off_t)end, SEEK_SET) < 0)
		return fp_fail(err, errno, "page store: lseek: %s", strerror(errno));
	w->f.written = end;
	w->pages += npages;
	return 0;
}

static void stop_workers(pgs_writer *w)
{
	if (!w->nstarted)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->nstarted; i++)
		pthread_join(w->th[i], NULL);
	w->nstarted = 0;
}

static void writer_free(pgs_writer *w)
{
	stop_workers(w);
	ZSTD_freeCCtx(w->cctx);
	for (size_t i = 0; w->slots && i < w->nslots; i++) {
		free(w->slots[i].in);
		free(w->slots[i].out);
	}
	free(w->slots);
	free(w->th);
	free(w->pbuf);
	free(w->recs);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv_work);
	pthread_cond_destroy(&w->cv_done);
	free(w);
}

void pgs_writer_abort(pgs_writer *w)
{
	if (!w)
		return;
	img_afile_abort(&w->f);
	writer_free(w);
}

int pgs_writer_close(pgs_writer *w, pgs_stats *stats, fp_error *err)
{
	if (!w->plain) {
		if (w->pending && submit(w, err) < 0)
			goto fail;
		if (drain(w, w->seq_fill, true, err) < 0)
			goto fail;
		stop_workers(w);
		uint64_t index_off = w->f.written;
		size_t ilen = w->n_recs * REC_SIZE;
		uint8_t *idx = malloc(ilen ? ilen : 1);
		if (!idx) {
			fp_fail(err, ENOMEM, "page store: out of memory for the index");
			goto fail;
		}
		for (size_t i = 0; i < w->n_recs; i++)
			rec_pack(idx + i * REC_SIZE, &w->recs[i]);
		uint8_t h[HDR_SIZE], ftr[FTR_SIZE];
		make_header(h, w->chunk_pages);
		put64(ftr, index_off);
		put64(ftr + 8, w->n_recs);
		put64(ftr + 16, w->pages);
		put64(ftr + 24, fp_hash64(idx, ilen, 0));
		put64(ftr + 32, fp_hash64(h, HDR_SIZE, 0));
		memcpy(ftr + 40, FTR_MAGIC, 8);
		int rc = img_afile_write(&w->f, idx, ilen, err);
		free(idx);
		if (rc < 0 || img_afile_write(&w->f, ftr, FTR_SIZE, err) < 0)
			goto fail;
	}
	if (stats) {
		stats->pages = w->pages;
		stats->chunks = w->n_recs;
		stats->bytes_in = w->pages * PGS_PAGE_SIZE;
		stats->bytes_out = w->f.written;
	}
	int rc = img_afile_commit(&w->f, w->do_fsync, err);
	writer_free(w);
	return rc;
fail:
	pgs_writer_abort(w);
	return -1;
}
