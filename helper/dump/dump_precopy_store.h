/* A full pre-copy's buffer as the page store (dump_precopy_store.c), for
 * the pre-copy's files (dump_precopy.c, dump_precopy_copy.c) and the
 * writer of the pages (dump_pages_write.c). */
#ifndef FP_DUMP_PRECOPY_STORE_H
#define FP_DUMP_PRECOPY_STORE_H

#include "dump/dump_int.h"

/* wanted: whether the buffer may become the store. with_places: the
 * registered mappings regv[] and the untracked ones whose pages the stop
 * will read (place_only[i]), sorted. finish: 1 when p's pages-<id>.img is
 * buf's file now (and p->ph its chain), 0 when the pages must be written as
 * usual. close: the file's fd, if the store was not used. */
bool dump_precopy_store_wanted(const struct dump_ctx *c);
void dump_precopy_settle(struct dump_ctx *c, pid_t pid, const struct dump_vma *v, size_t n);
/* The hash chain over buf, taken by a thread behind the copy: start before
 * it, copied after each piece's copy (pieces [from, to)), wait after the
 * last; patched: buf changed from offset off on (the stop's pages). */
void dump_precopy_hash_start(struct dump_precopy *pc);
void dump_precopy_copied(struct dump_precopy *pc, size_t from, size_t to);
void dump_precopy_hash_wait(struct dump_ctx *c, struct dump_precopy *pc);
void dump_precopy_patched(struct dump_precopy *pc, uint64_t off);
int dump_precopy_with_places(pid_t pid, const struct dump_vma *regv, size_t nregv, struct dump_vma **all,
			     bool **place_only, size_t *n);
int dump_precopy_store_finish(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
void dump_precopy_store_close(struct dump_precopy *pc);

#endif
