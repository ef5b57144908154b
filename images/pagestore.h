/* forkpoint's page store: the contents of a pages-<id>.img, compressed.
 *
 * The pages are the same bytes, in the same order, as CRIU's raw
 * pages-<id>.img (every PE_PRESENT pagemap entry's pages, in pagemap order);
 * a page is named by its index in that order. They are cut into chunks of up
 * to `chunk_pages` consecutive pages (256 = 1 MiB by default), each
 * compressed as one independent zstd frame, so any page can be read by
 * decoding one chunk. An index at the end of the file maps chunks to page
 * ranges, file offsets, sizes and a 64-bit checksum of the uncompressed data.
 *
 * File: pages-<id>.fpz (CRIU never opens it: it only knows pages-<id>.img).
 * Layout (all integers little-endian; see images/FORMAT.md):
 *
 *   header  64 bytes  "FPZPAGE1", u32 version=1, u32 page_size=4096,
 *                     u32 chunk_pages, u32 flags=0, 40 bytes zero
 *   chunks            back to back from offset 64
 *   index   n*40      per chunk: u64 first_page, u64 offset, u32 nr_pages,
 *                     u32 csize, u32 usize (= nr_pages*4096), u32 codec
 *                     (0 = stored, 1 = zstd), u64 xxh64(uncompressed)
 *   footer  48 bytes  u64 index_offset, u64 n_chunks, u64 total_pages,
 *                     u64 xxh64(index), u64 xxh64(header), "FPZEND01"
 *
 * With compression "none" the writer produces a plain pages-<id>.img instead,
 * and the reader reads either form. */
#ifndef FP_PAGESTORE_H
#define FP_PAGESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"

#define PGS_PAGE_SIZE 4096u
#define PGS_DEFAULT_CHUNK_PAGES 256u
#define PGS_MAX_CHUNK_PAGES 4096u /* 16 MiB */

enum pgs_compress { PGS_COMPRESS_ZSTD = 0, PGS_COMPRESS_NONE = 1 };

typedef struct pgs_opts {
	enum pgs_compress compress;
	int level;            /* zstd level; 0 means 1 */
	unsigned chunk_pages; /* 0 means PGS_DEFAULT_CHUNK_PAGES */
	bool do_fsync;        /* fsync the file on close (else see img_sync_dir) */
	unsigned threads;     /* compression threads; 0 or 1: the caller's
				 thread compresses inline. Chunks are
				 independent frames, so the file is the same
				 whatever the number. */
} pgs_opts;

#define PGS_MAX_THREADS 16u

typedef struct pgs_stats {
	uint64_t pages;
	uint64_t chunks;
	uint64_t bytes_in;  /* uncompressed */
	uint64_t bytes_out; /* file size */
} pgs_stats;

/* File names for pages_id: "pages-<id>.fpz" and "pages-<id>.img". */
void pgs_store_name(char *buf, size_t len, uint32_t pages_id);
void pgs_plain_name(char *buf, size_t len, uint32_t pages_id);

/* ---- writer ----------------------------------------------------------- */
typedef struct pgs_writer pgs_writer;

/* opts may be NULL (zstd level 1, 1 MiB chunks). The file appears under its
 * final name only on a successful pgs_writer_close. */
pgs_writer *pgs_writer_open(int dirfd, uint32_t pages_id, const pgs_opts *opts, fp_error *err);
/* Appends npages pages (npages * 4096 bytes) in pagemap order. */
int pgs_writer_add(pgs_writer *w, const void *pages, size_t npages, fp_error *err);
/* Zero-copy appending: room for up to *max_pages pages (at least 1) to fill
 * in place, then commit how many were filled. The pointer is valid until
 * the commit. */
void *pgs_writer_buf(pgs_writer *w, size_t *max_pages, fp_error *err);
int pgs_writer_commit(pgs_writer *w, size_t npages, fp_error *err);
/* Plain (uncompressed) stores only, for pages another process writes into
 * the file itself: the descriptor being written (-1 for a compressed store)
 * and the offset of the next page; then pgs_writer_external accounts for
 * the npages written there (the caller made sure they are). */
int pgs_writer_plain_fd(pgs_writer *w, uint64_t *offset);
int pgs_writer_external(pgs_writer *w, size_t npages, fp_error *err);
/* Flushes, writes index and footer, publishes the file, frees w (also on
 * error). stats may be NULL. */
int pgs_writer_close(pgs_writer *w, pgs_stats *stats, fp_error *err);
void pgs_writer_abort(pgs_writer *w);

/* ---- reader ----------------------------------------------------------- */
typedef struct pgs_reader pgs_reader;

/* Opens pages-<id>.fpz, or pages-<id>.img if there is no store. Validates the
 * header, footer and index (a truncated or corrupt store is refused here);
 * chunk data is checked when it is decoded. */
pgs_reader *pgs_open(int dirfd, uint32_t pages_id, fp_error *err);
uint64_t pgs_total_pages(const pgs_reader *r);
bool pgs_is_compressed(const pgs_reader *r);
/* Random access: copies pages [first, first+n) into dst. */
int pgs_read(pgs_reader *r, uint64_t first, uint64_t n, void *dst, fp_error *err);
/* Sequential access: 1 and a pointer to the next run of pages (valid until
 * the next call), 0 at the end, -1 on error. Starts at page 0. */
int pgs_next(pgs_reader *r, const void **pages, uint64_t *first, uint64_t *n, fp_error *err);
/* Chunk access, for decoding in parallel (one reader per thread): the
 * number of independently decodable chunks (0 for a plain file), and chunk
 * i decoded (*pages valid until the next call on this reader). */
size_t pgs_chunk_count(const pgs_reader *r);
int pgs_chunk(pgs_reader *r, size_t i, const void **pages, uint64_t *first, uint64_t *n, fp_error *err);
void pgs_close(pgs_reader *r);
/* From now on pgs_read proves every page it returns against the store's
 * per-page hashes (pagehash-<id>.fph in dirfd, images/pagehash.h), and
 * fails on the first that does not match. For a chain reader
 * (pagestore_chain.h) dirfd and pages_id are unused: each snapshot's store
 * is given its own hashes when it is opened, and a store without them
 * cannot be read. */
int pgs_check_pages(pgs_reader *r, int dirfd, uint32_t pages_id, fp_error *err);
/* Another reader of the same pages (for another thread): r's own pages-<id>
 * in dirfd, or the same snapshot chain (pagestore_chain.h). */
pgs_reader *pgs_dup(const pgs_reader *r, int dirfd, uint32_t pages_id, fp_error *err);

/* A plain store's descriptor, for reads the caller batches (-1 for a
 * compressed store or a chain), and the check that pgs_read makes of
 * pages [first, first+n) read into d (per-page hashes, if any). */
int pgs_plain_fd(const pgs_reader *r);
int pgs_check_read(const pgs_reader *r, uint64_t first, uint64_t n, const void *d, fp_error *err);
/* Makes pages-<id>.img (plain, for `criu restore`) from pages-<id>.fpz,
 * atomically; with remove_store the .fpz is deleted afterwards. A directory
 * that already has only the plain file is left alone. */
int pgs_decompress(int dirfd, uint32_t pages_id, bool remove_store, fp_error *err);
/* Decodes every chunk and checks every checksum. */
int pgs_verify(int dirfd, uint32_t pages_id, fp_error *err);

#endif
