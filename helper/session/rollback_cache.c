/* What the session helper keeps between rollbacks in place
 * (rollback_int.h): each snapshot's pages resolved through its chain, and
 * which snapshot directories were proven against their manifests.
 *
 * Resolving SNAP's pages (which parent holds each one) read and decoded
 * the pagemap of every snapshot of the chain, every time: 22-44 ms for a
 * chain of ten 1 GiB snapshots with 1% written per step, most of a
 * rollback's load. A snapshot's pages never change once it is written, so
 * the resolution of one is kept, and the next snapshot's is made over its
 * parent's (pgs_chain_open_over): one pagemap read, not the chain's. The
 * helper resolves each snapshot it took right after replying to `snap`
 * (fp_rollback_preload), so a rollback to it finds it ready.
 *
 * What is kept is what was read from files that were proven first (a
 * rollback proves SNAP's own files each time, and its parents' only when
 * their pagemaps are read, not when they come from here); a
 * kept entry is used only while its directory is the same one (device,
 * inode, and its manifest's inode, size and change time) and every
 * directory of its chain is still where it was (rm renames a kept parent,
 * gc deletes it: then it is resolved again from the files). The pages
 * themselves are read from the page stores as before, each proven by its
 * hash. Entries are dropped least recently used first beyond RB_CACHE_MAX
 * or RB_CACHE_BYTES, and at `rm` of their snapshot (fp_rollback_forget). */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/img_verify.h"
#include "images/pagestore_chain.h"

#define RB_CACHE_MAX 32
#define RB_CACHE_BYTES (64u << 20)

struct ent {
	struct rb_ident id;
	uint32_t pid;
	cr_pagemap_entry *flat;
	size_t nflat;
	pgs_reader *rd;
	bool per_page; /* every store of its chain has per-page hashes */
	uint64_t used;
};

static struct {
	struct ent e[RB_CACHE_MAX];
	size_t n;
	uint64_t clock;
} kc;

int rb_ident_of(int dirfd, const char *sub, struct rb_ident *id)
{
	struct stat d, m;
	char man[PATH_MAX];
	snprintf(man, sizeof(man), "%s%s" FP_MANIFEST_NAME, sub ? sub : "", sub ? "/" : "");
	if ((sub ? fstatat(dirfd, sub, &d, 0) : fstat(dirfd, &d)) < 0 || fstatat(dirfd, man, &m, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	*id = (struct rb_ident){ d.st_dev, d.st_ino, m.st_ino, m.st_size, m.st_ctim };
	return 0;
}

bool rb_ident_same(const struct rb_ident *a, const struct rb_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mino == b->mino && a->msize == b->msize &&
	       a->mctime.tv_sec == b->mctime.tv_sec && a->mctime.tv_nsec == b->mctime.tv_nsec;
}

static void drop(size_t i)
{
	free(kc.e[i].flat);
	pgs_close(kc.e[i].rd);
	kc.e[i] = kc.e[--kc.n];
}

static size_t bytes(void)
{
	size_t b = 0;
	for (size_t i = 0; i < kc.n; i++)
		b += kc.e[i].nflat * sizeof(cr_pagemap_entry) * 2; /* and about as much of runs */
	return b;
}

/* A kept entry of (id, pid) still good, else NULL (a stale one dropped). */
static struct ent *find(const struct rb_ident *id, uint32_t pid)
{
	for (size_t i = 0; i < kc.n; i++) {
		struct ent *e = &kc.e[i];
		if (e->pid != pid || e->id.dev != id->dev || e->id.ino != id->ino)
			continue;
		if (!rb_ident_same(&e->id, id) || !e->per_page || !pgs_chain_intact(e->rd)) {
			drop(i);
			return NULL;
		}
		e->used = ++kc.clock;
		return e;
	}
	return NULL;
}

static void keep(const struct rb_ident *id, uint32_t pid, const cr_pagemap_entry *flat, size_t nflat, const pgs_reader *rd,
		 bool per_page)
{
	fp_error e2;
	if (!per_page)
		return; /* its pages are read unchecked, after a full check of the chain each time */
	if (nflat * sizeof(*flat) * 2 > RB_CACHE_BYTES)
		return; /* it alone would be over the limit */
	struct ent n = { .id = *id, .pid = pid, .nflat = nflat, .per_page = true, .used = ++kc.clock };
	n.flat = malloc((nflat ? nflat : 1) * sizeof(*flat));
	n.rd = n.flat ? pgs_dup(rd, -1, 0, &e2) : NULL;
	if (!n.rd) {
		free(n.flat);
		return; /* not kept: resolved from the files next time */
	}
	memcpy(n.flat, flat, nflat * sizeof(*flat));
	while (kc.n && (kc.n == RB_CACHE_MAX || bytes() + nflat * sizeof(*flat) * 2 > RB_CACHE_BYTES)) {
		size_t lru = 0;
		for (size_t i = 1; i < kc.n; i++)
			if (kc.e[i].used < kc.e[lru].used)
				lru = i;
		drop(lru);
	}
	kc.e[kc.n++] = n;
}

int rb_cache_kept(int dirfd, uint32_t pid, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **rd, fp_error *err)
{
	struct rb_ident id;
	struct ent *e = rb_ident_of(dirfd, NULL, &id) ? NULL : find(&id, pid);
	if (!e)
		return 0;
	*flat = malloc((e->nflat ? e->nflat : 1) * sizeof(**flat));
	*rd = *flat ? pgs_dup(e->rd, -1, 0, err) : NULL;
	if (!*rd) {
		free(*flat);
		return *flat ? -1 : fp_fail(err, ENOMEM, "out of memory");
	}
	memcpy(*flat, e->flat, e->nflat * sizeof(**flat));
	*nflat = e->nflat;
	return 1;
}

int rb_cache_pages(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
		   bool chain_checked, bool per_page, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **rd,
		   enum rb_cache_how *how, fp_error *err)
{
	struct rb_ident id, pid_;
	bool known = !rb_ident_of(dirfd, NULL, &id);
	int k = known ? rb_cache_kept(dirfd, pid, flat, nflat, rd, err) : 0;
	if (k) {
		*how = RB_CACHE_HIT;
		return k < 0 ? -1 : 0;
	}
	struct ent *pe_ = pgs_chain_has_parent(pe, npe) && !rb_ident_of(dirfd, "parent", &pid_) ? find(&pid_, pid) : NULL;
	int rc;
	if (pe_) {
		rc = pgs_chain_open_over(dirfd, pid, pages_id, pe, npe, pe_->rd, pe_->flat, pe_->nflat, flat, nflat, rd, err);
		*how = RB_CACHE_PARENT;
	} else if (!chain_checked) {
		return 1; /* the parents' pagemaps would be read: prove them first */
	} else {
		rc = pgs_chain_open(dirfd, pid, pages_id, pe, npe, flat, nflat, rd, err);
		*how = RB_CACHE_MISS;
	}
	if (!rc && known)
		keep(&id, pid, *flat, *nflat, *rd, per_page);
	return rc;
}

bool rb_cache_resolvable(int dirfd, uint32_t pid)
{
	struct rb_ident id;
	return (!rb_ident_of(dirfd, NULL, &id) && find(&id, pid)) || (!rb_ident_of(dirfd, "parent", &id) && find(&id, pid));
}

void fp_rollback_forget(const char *dir)
{
	struct stat st;
	bool gone = stat(dir, &st) < 0;
	for (size_t i = kc.n; i-- > 0;)
		if (gone ? !pgs_chain_intact(kc.e[i].rd) : kc.e[i].id.dev == st.st_dev && kc.e[i].id.ino == st.st_ino)
			drop(i);
	rb_map_trim(); /* its stores' mappings, once their files are gone */
}

size_t fp_rollback_cached(void)
{
	return kc.n;
}

void fp_rollback_preload(const char *dir)
{
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return;
	fp_error err;
	struct img_verify_info vi;
	cr_pstree *ps = NULL;
	size_t nps = 0;
	if (img_verify(d, dir, IMG_VERIFY_READS, &vi, &err) || !vi.per_page || cr_read_pstree(d, &ps, &nps, &err)) {
		close(d);
		return;
	}
	for (size_t i = 0; i < nps; i++) {
		cr_pagemap_head h;
		cr_pagemap_entry *pe = NULL, *flat = NULL;
		size_t npe = 0, nflat = 0;
		pgs_reader *rd = NULL;
		enum rb_cache_how how;
		if (!cr_read_pagemap(d, ps[i].pid, &h, &pe, &npe, &err) &&
		    !rb_cache_pages(d, ps[i].pid, h.pages_id, pe, npe, !pgs_chain_has_parent(pe, npe), true, &flat, &nflat,
				    &rd, &how, &err)) {
			/* its own store filled before a rollback reads it: the
			 * parents' were mapped by their own `snap` (and any store
			 * not mapped yet is at its first read): every level of a
			 * chain of ~100 opened again after each `snap` made its
			 * work after the reply 8.1 ms against 5.2 (A/B, median
			 * of 6) */
			rb_map_chain(rd, 1);
			pgs_close(rd);
			/* a rollback to it reads ahead about as many pages as this
			 * snapshot wrote (the next step's), and the processes after
			 * the first save theirs in a slot of their own */
			uint64_t own = 0;
			for (size_t k = 0; k < npe; k++)
				own += pe[k].flags & CR_PE_PRESENT ? pe[k].nr_pages : 0;
			size_t len = (size_t)(own + own / 4) * CR_PAGE_SIZE;
			rb_bufs_warm((unsigned)i * RB_SLOTS_PER_PROC + RB_SLOT_PRE, len);
			if (i)
				rb_bufs_warm((unsigned)i * RB_SLOTS_PER_PROC + RB_SLOT_OLD, len);
		}
		free(pe);
		free(flat);
	}
	cr_free_array(&cr_pstree_desc, ps, nps);
	close(d);
}
