/* Reading a page store: pages-<id>.fpz (chunk index, any chunk decoded on
 * its own, checksummed) or a plain pages-<id>.img; decompress and verify. */
#include "images/pagestore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "images/criu_img.h"
#include "images/hash64.h"
#include "images/pagehash.h"
#include "images/pagestore_chain.h"
#include "images/pagestore_fmt.h"

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
	uint64_t *hv;   /* pgs_check_pages: the store's hash chain, h_1..h_n */
	bool hv_lent;   /* hv is a chain map's (pgs_reader_lend_hashes) */
	struct pgs_chain *chain; /* pages resolved through parent snapshots
				    (pagestore_chain.c), in chunks of
				    chunk_pages assembled in ubuf */
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
	return !r->plain; /* a chain counts as compressed: it is no one file */
}

pgs_reader *pgs_reader_of_chain(struct pgs_chain *ch, fp_error *err)
{
	pgs_reader *r = calloc(1, sizeof(*r));
	if (r)
		r->ubuf = malloc((size_t)PGS_DEFAULT_CHUNK_PAGES * PGS_PAGE_SIZE);
	if (!r || !r->ubuf) {
		free(r);
		pgs_chain_free(ch);
		fp_fail(err, ENOMEM, "page store: out of memory");
		return NULL;
	}
	r->fd = -1;
	r->chain = ch;
	r->cached = SIZE_MAX;
	r->chunk_pages = PGS_DEFAULT_CHUNK_PAGES;
	r->total_pages = pgs_chain_total(ch);
	snprintf(r->name, sizeof(r->name), "pages of a snapshot chain");
	return r;
}

struct pgs_chain *pgs_reader_chain(const pgs_reader *r)
{
	return r->chain;
}

void pgs_reader_lend_hashes(pgs_reader *r, const uint64_t *hv)
{
	if (!r->hv_lent)
		free(r->hv);
	r->hv = (uint64_t *)hv;
	r->hv_lent = true;
}

pgs_reader *pgs_dup(const pgs_reader *r, int dirfd, uint32_t pages_id, fp_error *err)
{
	if (!r->chain)
		return pgs_open(dirfd, pages_id, err);
	struct pgs_chain *ch = pgs_chain_dup(r->chain, err);
	return ch ? pgs_reader_of_chain(ch, err) : NULL;
}

void pgs_close(pgs_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	pgs_chain_free(r->chain);
	ZSTD_freeDCtx(r->dctx);
	if (!r->hv_lent)
		free(r->hv);
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

/* pgs_check_pages: pages [first, first+n) just read into d. */
static int check_read(const pgs_reader *r, uint64_t first, uint64_t n, const uint8_t *d, fp_error *err)
{
	uint64_t bad = r->hv ? pgh_check(r->hv, first, n, d) : 0;
	if (bad)
		return CORRUPT(r, err, "%s: page %llu does not match its hash in the snapshot's pagehash file: the "
				       "snapshot is damaged",
			       r->name, (unsigned long long)(first + bad - 1));
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
	if (r->chain)
		return pgs_chain_read(r->chain, first, n, dst, err);
	if (r->plain) {
		if (pread_full(r->fd, d, (size_t)n * PGS_PAGE_SIZE, first * PGS_PAGE_SIZE, r->name, err) < 0)
			return -1;
		return check_read(r, first, n, d, err);
	}
	uint64_t first0 = first, n0 = n;
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
	return check_read(r, first0, n0, dst, err);
}

int pgs_check_pages(pgs_reader *r, int dirfd, uint32_t pages_id, fp_error *err)
{
	if (r->chain) {
		pgs_chain_check(r->chain);
		return 0;
	}
	if (!r->hv_lent)
		free(r->hv);
	r->hv = NULL;
	r->hv_lent = false;
	if (pgh_load(dirfd, pages_id, r->total_pages, &r->hv, err))
		return fp_wrap(err, "%s: its pages cannot be checked one by one", r->name);
	return 0;
}

size_t pgs_chunk_count(const pgs_reader *r)
{
	if (r->chain)
		return (size_t)((r->total_pages + r->chunk_pages - 1) / r->chunk_pages);
	return r->plain ? 0 : r->n_recs;
}

/* Chunk i of a chain: chunk_pages pages assembled in ubuf. */
static int chain_chunk(pgs_reader *r, size_t i, const void **pages, uint64_t *first, uint64_t *n, fp_error *err)
{
	uint64_t f = (uint64_t)i * r->chunk_pages;
	if (f >= r->total_pages)
		return fp_fail(err, ERANGE, "%s: no chunk %zu", r->name, i);
	uint64_t k = r->total_pages - f < r->chunk_pages ? r->total_pages - f : r->chunk_pages;
	if (r->cached != i) {
		r->cached = SIZE_MAX;
		if (pgs_chain_read(r->chain, f, k, r->ubuf, err))
			return -1;
		r->cached = i;
	}
	*pages = r->ubuf;
	*first = f;
	*n = k;
	return 0;
}

int pgs_chunk(pgs_reader *r, size_t i, const void **pages, uint64_t *first, uint64_t *n, fp_error *err)
{
	if (r->chain)
		return chain_chunk(r, i, pages, first, n, err);
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
	if (r->chain) {
		size_t i = (size_t)(r->seq / r->chunk_pages);
		if (chain_chunk(r, i, pages, first, n, err))
			return -1;
		r->seq = *first + *n;
		return 1;
	}
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

int pgs_plain_fd(const pgs_reader *r)
{
	return r->plain && !r->chain ? r->fd : -1;
}

int pgs_check_read(const pgs_reader *r, uint64_t first, uint64_t n, const void *d, fp_error *err)
{
	if (first > r->total_pages || n > r->total_pages - first)
		return fp_fail(err, ERANGE, "%s: pages %llu..%llu checked, the store holds %llu", r->name,
			       (unsigned long long)first, (unsigned long long)(first + n - 1),
			       (unsigned long long)r->total_pages);
	return check_read(r, first, n, d, err);
}
