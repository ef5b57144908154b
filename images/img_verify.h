/* Proving an image directory before anything is restored from it.
 *
 * A forkpoint snapshot carries forkpoint.manifest (dump/dump_manifest.c):
 * every file's size and hash, and for each page store the page count and a
 * hash of the page contents. img_verify checks all of it against the
 * directory: every listed file is there, is a regular file (not a link) and
 * has its size and hash; no image file is there that the manifest does not
 * list; every page store holds exactly its pages, with its contents.
 *
 * The page stores are the bulk of an image, so they are checked in the
 * cheapest way that still covers every byte: a compressed pages-<id>.fpz by
 * the hash of its file (its compressed bytes, a fraction of the pages; each
 * chunk's own checksum is checked again when it is decoded), a plain
 * pages-<id>.img by hashing its pages in place (mapped, no copy). Only an
 * .fpz from a manifest older than its file hash is decoded to be checked.
 *
 * Images CRIU wrote have no manifest. Such a directory is accepted without
 * hashes (IMG_TRUST_CRIU) only when its inventory.img is CRIU's own (CRIU
 * records an LSM type and a run id there, forkpoint never does) and it holds
 * no forkpoint page store; anything else without a valid manifest is
 * refused. */
#ifndef FP_IMG_VERIFY_H
#define FP_IMG_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "fp_error.h"

/* Written last by the dumper (dump/dump_manifest.c): its presence makes a
 * directory a snapshot. */
#define FP_MANIFEST_NAME "forkpoint.manifest"

enum img_trust {
	IMG_TRUST_VERIFIED = 0, /* every byte checked against the manifest */
	IMG_TRUST_CRIU = 1,     /* CRIU-written, no manifest: structure only */
};

enum img_verify_depth {
	IMG_VERIFY_FULL = 0,  /* sizes and hashes of everything */
	IMG_VERIFY_SIZES = 1, /* the manifest itself, presence and sizes: cheap, for listings */
	/* As FULL, except for the pages of a store that has its per-page
	 * hashes (pagehash.h): they are proven as they are read, by a reader
	 * given those hashes (pgs_chain_check_pages). Its pagehash file is
	 * bound to the manifest by size and last link. For a rollback in
	 * place, which reads a few pages of a chain of big stores. */
	IMG_VERIFY_READS = 2,
};

struct img_verify_info {
	enum img_trust trust;
	uint64_t bytes_hashed;
	double ms;
	/* IMG_VERIFY_READS: every page store has per-page hashes; false: some
	 * were hashed in full instead, and a reader that checks pages one by
	 * one cannot read them */
	bool per_page;
};

/* 0 if dir (opened as dirfd; dir names it in messages) is a complete,
 * intact image; -1 with the first problem found (exit code FP_EXIT_FAIL).
 * info may be NULL. */
int img_verify(int dirfd, const char *dir, enum img_verify_depth depth, struct img_verify_info *info,
	       fp_error *err);

/* img_verify of dir and of every snapshot up its `parent` links (an
 * incremental snapshot's pages are in them); info sums them. */
int img_verify_chain(int dirfd, const char *dir, enum img_verify_depth depth, struct img_verify_info *info,
		     fp_error *err);

/* The hash the manifest records for a file: fp_hash64 chained over 64 KiB
 * blocks. The file must be a regular file, not a symlink. */
int img_hash_file(int dirfd, const char *name, uint64_t *size, uint64_t *hash, fp_error *err);

/* The hash of page contents, chained page by page (the manifest's pages
 * line; the same for a page store and its decompressed plain file). */
uint64_t img_pages_hash(uint64_t h, const void *pages, size_t npages);

#endif
