/* Per-page hashes of a page store: pagehash-<id>.fph beside pages-<id>.
 *
 * The manifest's pages line holds a chain hash of the store's pages
 * (h_0 = 0, h_k = fp_hash64(page k-1, seed h_{k-1}), the line holds h_n).
 * The dumper computes that chain anyway; this file keeps every link of it,
 * h_1..h_n, so that a reader can prove any one page by hashing that page
 * alone: page k is intact when fp_hash64(page, h_k) == h_{k+1}. A rollback
 * in place then checks exactly the pages it writes back instead of hashing
 * the whole chain of snapshots (IMG_VERIFY_READS in img_verify.h).
 *
 * The file is bound to the manifest by its size (n entries) and its last
 * entry (the pages line's hash); a corrupt entry can only make a check fail.
 * CRIU never opens it, and `decompress` leaves it valid (the hashes are of
 * the page contents, whichever form the store has).
 *
 *   header 32 bytes: "FPPGHASH", u32 version=1, u32 page_size=4096,
 *                    u64 n (pages), u64 zero
 *   n * u64 little-endian: h_1 .. h_n */
#ifndef FP_PAGEHASH_H
#define FP_PAGEHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"

#define PGH_HDR_SIZE 32u

void pgh_name(char *buf, size_t len, uint32_t pages_id);

/* Growing list of chain values while a store is written. */
typedef struct pgh_list {
	uint64_t *v;
	uint64_t n, cap;
	uint64_t h;  /* the chain so far (h_n) */
	bool failed; /* out of memory: no file is written */
} pgh_list;

/* Appends npages pages to the chain; returns the new chain value. */
uint64_t pgh_add(pgh_list *l, const void *pages, size_t npages);
void pgh_reset(pgh_list *l);
/* Keeps the chain's first n links (the pages after them are added again);
 * false when l has no links kept (l->failed) or fewer than n. */
bool pgh_truncate(pgh_list *l, uint64_t n);
void pgh_free(pgh_list *l);
/* Writes pagehash-<id>.fph (atomically); nothing if l->failed. */
int pgh_write(int dirfd, uint32_t pages_id, const pgh_list *l, fp_error *err);

/* Reads pagehash-<id>.fph for a store of npages pages: *v gets h_1..h_n
 * (malloc'd). ENOENT in err->errnum when there is none. */
int pgh_load(int dirfd, uint32_t pages_id, uint64_t npages, uint64_t **v, fp_error *err);
/* The file's page count and last entry (h_n, 0 for none), without reading
 * the rest: what img_verify binds to the manifest. */
int pgh_tail(int dirfd, uint32_t pages_id, uint64_t *npages, uint64_t *last, fp_error *err);
/* 0 if pages [first, first+n) (at data) match v; else the index of the
 * first bad page + 1. */
uint64_t pgh_check(const uint64_t *v, uint64_t first, uint64_t n, const void *data);

#endif
