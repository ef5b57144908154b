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

#define HDR_SIZE 64
#define REC_SIZE 40
#define FTR_SIZE 48
#define HDR_MAGIC "FPZPAGE1"
#define FTR_MAGIC "FPZEND01"
#define VERSION 1
#define CODEC_STORED 0
#define CODEC_ZSTD 1

typedef struct chunk_rec {
	uint64_t first_page, offset;
	uint32_t nr_pages, csize, usize, codec;
	uint64_t hash;
} chunk_rec;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void pgs_store_name(char *buf, size_t len, uint32_t pages_id)
{
	snprintf(buf, len, "pages-%u.fpz", pages_id);
}

void pgs_plain_name(char *buf, size_t len, uint32_t pages_id)
{
	snprintf(buf, len, "pages-%u.img", pages_id);
}

static void make_header(uint8_t h[HDR_SIZE], uint32_t chunk_pages)
{
	memset(h, 0, HDR_SIZE);
	memcpy(h, HDR_MAGIC, 8);
	put32(h + 8, VERSION);
	put32(h + 12, PGS_PAGE_SIZE);
	put32(h + 16, chunk_pages);
	put32(h + 20, 0);
}

static void rec_pack(uint8_t *p, const chunk_rec *c)
{
	put64(p, c->first_page);
	put64(p + 8, c->offset);
	put32(p + 16, c->nr_pages);
	put32(p + 20, c->csize);
	put32(p + 24, c->usize);
	put32(p + 28, c->codec);
	put64(p + 32, c->hash);
}

static void rec_unpack(const uint8_t *p, chunk_rec *c)
{
	c->first_page = get64(p);
	c->offset = get64(p + 8);
	c->nr_pages = get32(p + 16);
	c->csize = get32(p + 20);
	c->usize = get32(p + 24);
	c->codec = get32(p + 28);
	c->hash = get64(p + 32);
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

/* ---- reader ----------------------------------------------------------- */

struct pgs_reader {
	int fd;
	char name[64];
	bool plain;
	uint64_t total_pages;
	uint32_t chunk_pages;
	chunk_rec *recs;
	size_t n_recs;
	ZSTD_DCtx *dctx;
	uint8_t *cbuf;  /* compressed chunk as read */
	uint8_t *ubuf;  /* decoded chunk */
	size_t cached;  /* index of the chunk in ubuf, or SIZE_MAX */
	uint64_t seq;   /* next page for pgs_next */
};

static int pread_full(int fd, void *buf, size_t n, uint64_t off, const char *name,
		      fp_error *err)
{
	uint8_t *b = buf;
	while (n) {
		ssize_t r = pread(fd, b, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fp_fail(err, errno, "%s: read failed: %s", name, strerror(errno));
		if (r == 0)
			return fp_fail_code(err, FP_EXIT_FAIL, EIO,
					    "%s: unexpected end of file at offset %llu (truncated)",
					    name, (unsigned long long)off);
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

#define CORRUPT(r, err, ...) fp_fail_code(err, FP_EXIT_FAIL, EINVAL, __VA_ARGS__)

static int load_index(pgs_reader *r, uint64_t fsize, fp_error *err)
{
	const char *n = r->name;
	if (fsize < HDR_SIZE + FTR_SIZE)
		return CORRUPT(r, err, "%s: %llu bytes is too short for a page store (truncated)", n,
			       (unsigned long long)fsize);
	uint8_t h[HDR_SIZE], f[FTR_SIZE];
	if (pread_full(r->fd, h, HDR_SIZE, 0, n, err) < 0 ||
	    pread_full(r->fd, f, FTR_SIZE, fsize - FTR_SIZE, n, err) < 0)
		return -1;
	if (memcmp(h, HDR_MAGIC, 8))
		return CORRUPT(r, err, "%s: not a forkpoint page store (bad header magic)", n);
	if (get32(h + 8) != VERSION)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EINVAL,
				    "%s: page store version %u is not supported (only %d)", n,
				    get32(h + 8), VERSION);
	if (get32(h + 12) != PGS_PAGE_SIZE)
		return CORRUPT(r, err, "%s: page size %u is not %u", n, get32(h + 12),
			       PGS_PAGE_SIZE);
	r->chunk_pages = get32(h + 16);
	if (r->chunk_pages == 0 || r->chunk_pages > PGS_MAX_CHUNK_PAGES)
		return CORRUPT(r, err, "%s: chunk size of %u pages is invalid (corrupt header)", n,
			       r->chunk_pages);
	if (memcmp(f + 40, FTR_MAGIC, 8))
		return CORRUPT(r, err,
			       "%s: no page store footer: the file is truncated or was not "
			       "completely written",
			       n);
	if (get64(f + 32) != fp_hash64(h, HDR_SIZE, 0))
		return CORRUPT(r, err, "%s: header checksum mismatch (corrupt)", n);
	uint64_t index_off = get64(f), n_recs = get64(f + 8);
	r->total_pages = get64(f + 16);
	if (n_recs > (fsize - HDR_SIZE - FTR_SIZE) / REC_SIZE || index_off < HDR_SIZE ||
	    index_off + n_recs * REC_SIZE + FTR_SIZE != fsize)
		return CORRUPT(r, err, "%s: index of %llu chunks at offset %llu does not fit a "
				       "%llu-byte file (corrupt or truncated)",
			       n, (unsigned long long)n_recs, (unsigned long long)index_off,
			       (unsigned long long)fsize);
	size_t ilen = (size_t)n_recs * REC_SIZE;
	uint8_t *idx = malloc(ilen ? ilen : 1);
	r->recs = calloc(n_recs ? n_recs : 1, sizeof(chunk_rec));
	if (!idx || !r->recs) {
		free(idx);
		return fp_fail(err, ENOMEM, "%s: out of memory for the index", n);
	}
	if (pread_full(r->fd, idx, ilen, index_off, n, err) < 0) {
		free(idx);
		return -1;
	}
	uint64_t ih = fp_hash64(idx, ilen, 0);
	for (size_t i = 0; i < n_recs; i++)
		rec_unpack(idx + i * REC_SIZE, &r->recs[i]);
	free(idx);
	if (ih != get64(f + 24))
		return CORRUPT(r, err, "%s: index checksum mismatch (corrupt)", n);
	r->n_recs = (size_t)n_recs;
	uint64_t page = 0, off = HDR_SIZE;
	for (size_t i = 0; i < r->n_recs; i++) {
		const chunk_rec *c = &r->recs[i];
		if (c->first_page != page || c->nr_pages == 0 || c->nr_pages > r->chunk_pages ||
		    c->usize != c->nr_pages * PGS_PAGE_SIZE || c->offset != off ||
		    c->csize > index_off - off || (c->codec != CODEC_ZSTD && c->codec != CODEC_STORED) ||
		    (c->codec == CODEC_STORED && c->csize != c->usize))
			return CORRUPT(r, err, "%s: index entry %zu is inconsistent (corrupt)", n, i);
		page += c->nr_pages;
		off += c->csize;
	}
	if (page != r->total_pages || off != index_off)
		return CORRUPT(r, err, "%s: index covers %llu pages but the footer says %llu "
				       "(corrupt)",
			       n, (unsigned long long)page, (unsigned long long)r->total_pages);
	size_t usize = (size_t)r->chunk_pages * PGS_PAGE_SIZE;
	r->ubuf = malloc(usize);
	r->cbuf = malloc(ZSTD_compressBound(usize));
	r->dctx = ZSTD_createDCtx();
	if (!r->ubuf || !r->cbuf || !r->dctx)
		return fp_fail(err, ENOMEM, "%s: out of memory", n);
	return 0;
}

pgs_reader *pgs_open(int dirfd, uint32_t pages_id, fp_error *err)
{
	pgs_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		fp_fail(err, ENOMEM, "page store: out of memory");
		return NULL;
	}
	r->cached = SIZE_MAX;
	pgs_store_name(r->name, sizeof(r->name), pages_id);
	r->fd = openat(dirfd, r->name, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 && errno == ENOENT) {
		r->plain = true;
		pgs_plain_name(r->name, sizeof(r->name), pages_id);
		r->fd = openat(dirfd, r->name, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0 && errno == ENOENT) {
			fp_fail(err, ENOENT, "no page data for pages id %u: neither pages-%u.fpz nor "
					     "pages-%u.img exists in the image directory",
				pages_id, pages_id, pages_id);
			free(r);
			return NULL;
		}
	}
	if (r->fd < 0) {
		fp_fail(err, errno, "cannot open %s: %s", r->name, strerror(errno));
		free(r);
		return NULL;
	}
	struct stat st;
	if (fstat(r->fd, &st) < 0) {
		fp_fail(err, errno, "cannot stat %s: %s", r->name, strerror(errno));
		pgs_close(r);
		return NULL;
	}
	if (r->plain) {
		if (st.st_size % PGS_PAGE_SIZE) {
			CORRUPT(r, err, "%s: size %lld is not a whole number of pages (truncated?)",
				r->name, (long long)st.st_size);
			pgs_close(r);
			return NULL;
		}
		r->total_pages = (uint64_t)st.st_size / PGS_PAGE_SIZE;
		r->chunk_pages = PGS_DEFAULT_CHUNK_PAGES;
		r->ubuf = malloc((size_t)r->chunk_pages * PGS_PAGE_SIZE);
		if (!r->ubuf) {
			fp_fail(err, ENOMEM, "%s: out of memory", r->name);
			pgs_close(r);
			return NULL;
		}
		return r;
	}
	if (load_index(r, (uint64_t)st.st_size, err) < 0) {
		pgs_close(r);
		return NULL;
	}
	return r;
}

uint64_t pgs_total_pages(const pgs_reader *r)
{
	return r->total_pages;
}

bool pgs_is_compressed(const pgs_reader *r)
{
	return !r->plain;
}

void pgs_close(pgs_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	ZSTD_freeDCtx(r->dctx);
	free(r->recs);
	free(r->cbuf);
	free(r->ubuf);
	free(r);
}

/* Decodes chunk i into r->ubuf and checks it. */
static int load_chunk(pgs_reader *r, size_t i, fp_error *err)
{
	if (r->cached == i)
		return 0;
	r->cached = SIZE_MAX;
	const chunk_rec *c = &r->recs[i];
	uint64_t last = c->first_page + c->nr_pages - 1;
	if (c->codec == CODEC_STORED) {
		if (pread_full(r->fd, r->ubuf, c->usize, c->offset, r->name, err) < 0)
			return -1;
	} else {
		if (pread_full(r->fd, r->cbuf, c->csize, c->offset, r->name, err) < 0)
			return -1;
		size_t got = ZSTD_decompressDCtx(r->dctx, r->ubuf, c->usize, r->cbuf, c->csize);
		if (ZSTD_isError(got) || got != c->usize)
			return CORRUPT(r, err,
				       "%s: chunk %zu (pages %llu..%llu) is corrupt: %s", r->name,
				       i, (unsigned long long)c->first_page,
				       (unsigned long long)last,
				       ZSTD_isError(got) ? ZSTD_getErrorName(got)
							 : "wrong decoded size");
	}
	uint64_t h = fp_hash64(r->ubuf, c->usize, 0);
	if (h != c->hash)
		return CORRUPT(r, err,
			       "%s: chunk %zu (pages %llu..%llu) is corrupt: checksum 0x%016llx, "
			       "expected 0x%016llx",
			       r->name, i, (unsigned long long)c->first_page,
			       (unsigned long long)last, (unsigned long long)h,
			       (unsigned long long)c->hash);
	r->cached = i;
	return 0;
}

static size_t find_chunk(const pgs_reader *r, uint64_t page)
{
	size_t lo = 0, hi = r->n_recs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->recs[mid].first_page <= page)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int pgs_read(pgs_reader *r, uint64_t first, uint64_t n, void *dst, fp_error *err)
{
	if (first > r->total_pages || n > r->total_pages - first)
		return fp_fail(err, ERANGE,
			       "%s: pages %llu..%llu requested but the store holds %llu pages "
			       "(pagemap and page data disagree)",
			       r->name, (unsigned long long)first,
			       (unsigned long long)(first + n - 1),
			       (unsigned long long)r->total_pages);
	uint8_t *d = dst;
	if (r->plain)
		return pread_full(r->fd, d, (size_t)n * PGS_PAGE_SIZE, first * PGS_PAGE_SIZE,
				  r->name, err);
	while (n) {
		size_t i = find_chunk(r, first);
		if (load_chunk(r, i, err) < 0)
			return -1;
		const chunk_rec *c = &r->recs[i];
		uint64_t in = first - c->first_page;
		uint64_t take = c->nr_pages - in;
		if (take > n)
			take = n;
		memcpy(d, r->ubuf + in * PGS_PAGE_SIZE, (size_t)take * PGS_PAGE_SIZE);
		d += take * PGS_PAGE_SIZE;
		first += take;
		n -= take;
	}
	return 0;
}

size_t pgs_chunk_count(const pgs_reader *r)
{
	return r->plain ? 0 : r->n_recs;
}

int pgs_chunk(pgs_reader *r, size_t i, const void **pages, uint64_t *first, uint64_t *n, fp_error *err)
{
	if (r->plain || i >= r->n_recs)
		return fp_fail(err, ERANGE, "%s: no chunk %zu", r->name, i);
	if (load_chunk(r, i, err) < 0)
		return -1;
	*pages = r->ubuf;
	*first = r->recs[i].first_page;
	*n = r->recs[i].nr_pages;
	return 0;
}

int pgs_next(pgs_reader *r, const void **pages, uint64_t *first, uint64_t *n, fp_error *err)
{
	if (r->seq >= r->total_pages)
		return 0;
	if (r->plain) {
		uint64_t take = r->total_pages - r->seq;
		if (take > r->chunk_pages)
			take = r->chunk_pages;
		if (pread_full(r->fd, r->ubuf, (size_t)take * PGS_PAGE_SIZE, r->seq * PGS_PAGE_SIZE,
			       r->name, err) < 0)
			return -1;
		*pages = r->ubuf;
		*first = r->seq;
		*n = take;
		r->seq += take;
		return 1;
	}
	size_t i = find_chunk(r, r->seq);
	if (load_chunk(r, i, err) < 0)
		return -1;
	const chunk_rec *c = &r->recs[i];
	uint64_t in = r->seq - c->first_page;
	*pages = r->ubuf + in * PGS_PAGE_SIZE;
	*first = r->seq;
	*n = c->nr_pages - in;
	r->seq += *n;
	return 1;
}

int pgs_decompress(int dirfd, uint32_t pages_id, bool remove_store, fp_error *err)
{
	char store[64], plain[64];
	pgs_store_name(store, sizeof(store), pages_id);
	pgs_plain_name(plain, sizeof(plain), pages_id);
	if (faccessat(dirfd, store, F_OK, 0) < 0 && errno == ENOENT) {
		if (faccessat(dirfd, plain, F_OK, 0) == 0)
			return 0; /* already plain */
		return fp_fail(err, ENOENT, "no page data for pages id %u: neither %s nor %s exists",
			       pages_id, store, plain);
	}
	pgs_reader *r = pgs_open(dirfd, pages_id, err);
	if (!r)
		return -1;
	img_afile f;
	if (img_afile_open(&f, dirfd, plain, err) < 0) {
		pgs_close(r);
		return -1;
	}
	const void *p;
	uint64_t first, n;
	int rc;
	while ((rc = pgs_next(r, &p, &first, &n, err)) > 0)
		if (img_afile_write(&f, p, (size_t)n * PGS_PAGE_SIZE, err) < 0) {
			rc = -1;
			break;
		}
	pgs_close(r);
	if (rc < 0) {
		img_afile_abort(&f);
		return fp_wrap(err, "decompress %s", store);
	}
	if (img_afile_commit(&f, false, err) < 0)
		return -1;
	if (remove_store && unlinkat(dirfd, store, 0) < 0)
		return fp_fail(err, errno, "cannot remove %s after decompressing it: %s", store,
			       strerror(errno));
	return 0;
}

int pgs_verify(int dirfd, uint32_t pages_id, fp_error *err)
{
	pgs_reader *r = pgs_open(dirfd, pages_id, err);
	if (!r)
		return -1;
	const void *p;
	uint64_t first, n;
	int rc;
	while ((rc = pgs_next(r, &p, &first, &n, err)) > 0)
		;
	pgs_close(r);
	return rc;
}
