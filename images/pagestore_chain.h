/* Page data of an incremental snapshot: pagemap entries marked PE_PARENT
 * name pages whose data is in the parent snapshot (the directory's
 * `parent` symlink, relative to it, as CRIU writes and reads it), which may
 * in turn leave them to its own parent.
 *
 * pgs_chain_open resolves such a pagemap into the flat one a restorer
 * needs (every page present, in address order) and a page store reader
 * over their data in that order, as if one pages file held them all. Its
 * pages are read from each level's own store (compressed or plain, one
 * decoded chunk cached per level), so nothing is expanded on disk. */
#ifndef FP_PAGESTORE_CHAIN_H
#define FP_PAGESTORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"
#include "images/criu_msgs.h"
#include "images/pagestore.h"

#define PGS_CHAIN_MAX_DEPTH 4096

/* pe/npe, pages_id: pagemap-<pid>.img of the directory dirfd. On success *flat (all
 * PE_PRESENT, malloc'd) and *reader replace them. */
int pgs_chain_open(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
		   cr_pagemap_entry **flat, size_t *nflat, pgs_reader **reader, fp_error *err);

/* As pgs_chain_open, for a pagemap whose PE_PARENT pages are those of
 * `parent`: a reader from pgs_chain_open (or this) of the snapshot that
 * dirfd's `parent` link names, the caller vouches for that, with its flat
 * pagemap. The parent's levels are taken over as they are (their pagemaps
 * are not read again, their page hashes are shared), so a chain of N
 * snapshots costs one pagemap, not N. */
int pgs_chain_open_over(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
			const pgs_reader *parent, const cr_pagemap_entry *pflat, size_t npflat, cr_pagemap_entry **flat,
			size_t *nflat, pgs_reader **reader, fp_error *err);

/* 1 if every snapshot directory r's pages come from is still the one it
 * was at its path (rm renames a kept parent, gc deletes it): a reader
 * kept for later is only used again then. 0 also for a reader that is no
 * chain. */
int pgs_chain_intact(const pgs_reader *r);

/* For reads that the caller batches (a rollback's io_uring): where pages
 * [first, first+n) of r lie, piece by piece in order, each in a plain
 * store: fn(arg, store, at, n) for pages [at, at+n) of that store's file
 * (pgs_plain_fd), to be proven with pgs_check_read once read. Every
 * store stays open until r is read otherwise or closed. 0 when done, 1
 * when a piece is in a compressed store or the chain has more levels than
 * a reader keeps open (read with pgs_read then), fn's non-zero, or -1. */
int pgs_locate(pgs_reader *r, uint64_t first, uint64_t n,
	       int (*fn)(void *arg, pgs_reader *store, uint64_t at, uint64_t n, fp_error *err), void *arg,
	       fp_error *err);
/* fn(arg, store) for each plain store of r (each level of a chain from
 * its top, at most `levels` of them (0: all), opened now, compressed ones
 * left out; or r itself): 0 when done, 1 when that is more levels than r
 * keeps open or r is itself compressed, fn's non-zero, or -1. */
int pgs_stores(pgs_reader *r, size_t levels, int (*fn)(void *arg, pgs_reader *store, fp_error *err), void *arg,
	       fp_error *err);
/* Whether a pagemap names its parent. */
int pgs_chain_has_parent(const cr_pagemap_entry *pe, size_t npe);

/* Internal to images/ (the reader's side of a chain). */
struct pgs_chain;
uint64_t pgs_chain_total(const struct pgs_chain *ch);
int pgs_chain_read(struct pgs_chain *ch, uint64_t first, uint64_t n, void *dst, fp_error *err);
struct pgs_chain *pgs_chain_dup(const struct pgs_chain *ch, fp_error *err);
/* pgs_check_pages of a chain reader: every level opened from now on. */
void pgs_chain_check(struct pgs_chain *ch);
void pgs_chain_free(struct pgs_chain *ch);
/* pagestore_read.c: a reader whose pages come from ch (it owns ch); the
 * chain of a reader (NULL if none); hashes lent to a level's reader (the
 * map owns them, pgs_check_pages without loading its own). */
pgs_reader *pgs_reader_of_chain(struct pgs_chain *ch, fp_error *err);
struct pgs_chain *pgs_reader_chain(const pgs_reader *r);
void pgs_reader_lend_hashes(pgs_reader *r, const uint64_t *hv);

#endif
