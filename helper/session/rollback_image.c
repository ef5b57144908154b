/* Rollback in place: what SNAP's images say (rollback_int.h), and the
 * pages that the snapshots between the tracking's last snapshot and SNAP
 * hold themselves. */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dump/dump.h"

#include "images/criu_io.h"
#include "images/img_verify.h"
#include "images/pagestore_chain.h"

static int cmp_at(const void *a, const void *b)
{
	const struct rb_file_at *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

struct rb_file_at *rb_files_index(const cr_file *f, size_t n)
{
	struct rb_file_at *x = malloc((n + 1) * sizeof(*x));
	if (!x)
		return NULL;
	for (size_t i = 0; i < n; i++)
		x[i] = (struct rb_file_at){ f[i].id, &f[i] };
	qsort(x, n, sizeof(*x), cmp_at);
	return x;
}

const cr_file *rb_files_find(const struct rb_file_at *x, size_t n, uint32_t id)
{
	struct rb_file_at key = { id, NULL };
	const struct rb_file_at *r = x ? bsearch(&key, x, n, sizeof(*x), cmp_at) : NULL;
	return r ? r->f : NULL;
}

/* A search of SNAP's files by id, not a walk of them: with 10,000 fds the
 * walks of the rollback's checks (one per fd) took 23 ms of its stop; in
 * an index of (id, file) pairs, not of pointers to the files, whose each
 * comparison was a cache miss (2 ms of the stop at 10,000 fds). */
const cr_file *rb_file(const struct rb_ctx *c, uint32_t id)
{
	return rb_files_find(c->file_by_id, c->nfiles, id);
}

const cr_tty_info *rb_tty_info(struct rb_ctx *c, const cr_file *f, fp_error *err)
{
	if (!c->ttys_read && cr_read_tty_info(c->snap_dirfd, &c->ttys, &c->nttys, err) < 0)
		return NULL;
	c->ttys_read = true;
	for (size_t i = 0; f->has_tty && i < c->nttys; i++)
		if (c->ttys[i].id == f->tty.tty_info_id)
			return &c->ttys[i];
	return NULL;
}

static int check_chain(struct rb_ctx *c, bool parents, fp_error *err);

static int load_proc(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	int d = c->snap_dirfd;
	if (cr_read_mm(d, (uint32_t)p->pid, &p->mm, err))
		return -1;
	p->have_mm = true;
	p->th = calloc(p->ps->n_threads ? p->ps->n_threads : 1, sizeof(*p->th));
	if (!p->th)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->ps->n_threads; i++) {
		p->th[i].tid = (pid_t)p->ps->threads[i];
		if (cr_read_core(d, p->ps->threads[i], &p->th[i].core, err))
			return -1;
		p->nth++;
	}
	cr_ids ids;
	if (cr_read_ids(d, (uint32_t)p->pid, &ids, err) || cr_read_fdinfo(d, ids.files_id, &p->fdi, &p->nfdi, err) ||
	    cr_read_fs(d, (uint32_t)p->pid, &p->fs, err))
		return -1;
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t npe = 0;
	enum rb_cache_how how = RB_CACHE_HIT;
	int rc = rb_cache_kept(d, (uint32_t)p->pid, &p->flat, &p->nflat, &p->rd, err);
	if (rc) /* resolved before: its pagemap is not even read (a chain reader needs no pages id) */
		h.pages_id = 0;
	else if (cr_read_pagemap(d, (uint32_t)p->pid, &h, &pe, &npe, err))
		return -1;
	if (rc < 0)
		return -1;
	if (!rc)
		rc = rb_cache_pages(d, (uint32_t)p->pid, h.pages_id, pe, npe, c->chain_checked, c->per_page, &p->flat,
				&p->nflat, &p->rd, &how, err);
	else if (rc == 1)
		rc = 0;
	if (rc == 1) { /* its parents' pagemaps are needed: proven first */
		rc = check_chain(c, true, err);
		if (!rc)
			rc = rb_cache_pages(d, (uint32_t)p->pid, h.pages_id, pe, npe, true, c->per_page, &p->flat, &p->nflat,
					    &p->rd, &how, err);
	}
	if (!rc && how < c->how)
		c->how = how;
	free(pe);
	if (!rc && c->per_page)
		rc = pgs_check_pages(p->rd, d, h.pages_id, err);
	if (rc)
		return -1;
	p->flat_first = calloc(p->nflat + 1, sizeof(*p->flat_first));
	if (!p->flat_first)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t first = 0;
	for (size_t i = 0; i < p->nflat; i++) {
		p->flat_first[i] = first;
		first += p->flat[i].nr_pages;
		if (fp_rlist_add(&p->snap_pages, p->flat[i].vaddr, p->flat[i].vaddr + p->flat[i].nr_pages * CR_PAGE_SIZE))
			return fp_fail(err, ENOMEM, "out of memory");
	}
	return fp_rlist_normalize(&p->snap_pages) ? fp_fail(err, ENOMEM, "out of memory") : 0;
}

static int chain_of(const char *dir, size_t max, char (**out)[PATH_MAX], size_t *n, fp_error *err);

/* SNAP and every snapshot its pages come from, against their manifests,
 * before anything is read from them: a flipped byte must be refused, not
 * written into the live process. Every file is hashed but the page stores:
 * their pages are proven one by one as the rollback reads them (their
 * pagehash files, IMG_VERIFY_READS), which costs what is written back, not
 * the size of the chain. A chain with a store that has no per-page hashes
 * (written before them) is hashed in full, as a restore does. */
static int check_chain_at(char (*ch)[PATH_MAX], size_t n, enum img_verify_depth depth, bool *per_page,
			  uint64_t *hashed, fp_error *err)
{
	int rc = 0;
	*per_page = depth == IMG_VERIFY_READS;
	for (size_t i = 0; i < n && !rc; i++) {
		int fd = open(ch[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct img_verify_info vi;
		if (fd < 0)
			rc = fp_fail(err, errno, "cannot open %s: %s", ch[i], strerror(errno));
		else
			rc = img_verify(fd, ch[i], depth, &vi, err);
		if (fd >= 0)
			close(fd);
		if (!rc && !vi.per_page)
			*per_page = false;
		if (!rc)
			*hashed += vi.bytes_hashed;
	}
	return rc;
}

/* SNAP itself, or with `parents` its whole chain. The parents are proven
 * only when their pagemaps are read: not when SNAP's pages were resolved
 * before from proven files (rollback_cache.c). Snapshots without per-page
 * hashes are hashed in full, the whole chain. */
static int check_chain(struct rb_ctx *c, bool parents, fp_error *err)
{
	char(*ch)[PATH_MAX] = NULL;
	size_t n = 0;
	/* SNAP alone needs no walk of a long chain's links */
	if (chain_of(c->snap_dir, parents ? 0 : 1, &ch, &n, err))
		return -1;
	size_t from = parents && c->top_checked ? 1 : 0; /* SNAP itself is proven already */
	int rc = check_chain_at(ch + from, n - from, IMG_VERIFY_READS, &c->per_page, &c->r->verified_bytes, err);
	if (!rc && !c->per_page && !parents) {
		free(ch);
		ch = NULL;
		rc = chain_of(c->snap_dir, 0, &ch, &n, err);
	}
	if (!rc && !c->per_page)
		rc = check_chain_at(ch, n, IMG_VERIFY_FULL, &c->per_page, &c->r->verified_bytes, err);
	c->chain_checked = !rc && (parents || !c->per_page);
	c->top_checked = !rc;
	free(ch);
	return rc;
}

static const char *const how_name[] = { "files", "parent", "kept" };

int rb_load_snapshot(struct rb_ctx *c, fp_error *err)
{
	c->how = RB_CACHE_HIT;
	if (check_chain(c, false, err))
		return -1;
	c->snap_dirfd = open(c->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->snap_dirfd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", c->snap_dir, strerror(errno));
	if (cr_read_pstree(c->snap_dirfd, &c->ps, &c->nps, err) ||
	    cr_read_files(c->snap_dirfd, &c->files, &c->nfiles, err))
		return fp_wrap(err, "reading snapshot %s", c->snap_dir);
	c->file_by_id = rb_files_index(c->files, c->nfiles);
	if (!c->file_by_id)
		return fp_fail(err, ENOMEM, "out of memory");
	bool kept = true;
	for (size_t i = 0; i < c->nps && kept && !c->chain_checked; i++)
		kept = rb_cache_resolvable(c->snap_dirfd, c->ps[i].pid);
	if (!kept && check_chain(c, true, err))
		return -1;
	c->procs = calloc(c->nps ? c->nps : 1, sizeof(*c->procs));
	if (!c->procs)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nps; i++) {
		struct rb_proc *p = &c->procs[c->nprocs++];
		p->pid = (pid_t)c->ps[i].pid;
		p->ps = &c->ps[i];
		if (load_proc(c, p, err))
			return fp_wrap(err, "reading process %d of snapshot %s", (int)p->pid, c->snap_dir);
	}
	c->r->pagemap_from = how_name[c->how];
	return 0;
}

int rb_snap_read(struct rb_proc *p, uint64_t addr, size_t len, uint8_t *dst, fp_error *err)
{
	return rb_snap_read_with(p, p->rd, addr, len, dst, err);
}

int rb_snap_walk(struct rb_proc *p, uint64_t addr, size_t len, uint8_t *dst,
		 int (*fn)(void *arg, uint64_t first, uint64_t n, uint8_t *dst, fp_error *err), void *arg, fp_error *err)
{
	uint64_t end = addr + len;
	size_t lo = 0, hi = p->nflat;
	while (lo < hi) { /* first entry ending after addr */
		size_t mid = (lo + hi) / 2;
		if (p->flat[mid].vaddr + p->flat[mid].nr_pages * CR_PAGE_SIZE <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (addr < end) {
		const cr_pagemap_entry *e = lo < p->nflat ? &p->flat[lo] : NULL;
		uint64_t es = e ? e->vaddr : end, ee = e ? e->vaddr + e->nr_pages * CR_PAGE_SIZE : end;
		if (es > addr) { /* not in SNAP: an anonymous page it did not have reads as zeros */
			uint64_t z = (es < end ? es : end) - addr;
			memset(dst, 0, z);
			dst += z, addr += z;
			continue;
		}
		uint64_t take = (ee < end ? ee : end) - addr;
		int rc = fn(arg, p->flat_first[lo] + (addr - es) / CR_PAGE_SIZE, take / CR_PAGE_SIZE, dst, err);
		if (rc < 0)
			return fp_wrap(err, "reading the snapshot's pages of %d at 0x%llx", (int)p->pid,
				       (unsigned long long)addr);
		if (rc)
			return rc;
		dst += take, addr += take;
		lo++;
	}
	return 0;
}

static int read_pages(void *rd, uint64_t first, uint64_t n, uint8_t *dst, fp_error *err)
{
	return pgs_read(rd, first, n, dst, err);
}

int rb_snap_read_with(struct rb_proc *p, pgs_reader *rd, uint64_t addr, size_t len, uint8_t *dst, fp_error *err)
{
	return rb_snap_walk(p, addr, len, dst, read_pages, rd, err);
}

/* dir, its parent, its parent's parent...: real paths, *n of them (at
 * most max, all with 0). */
static int chain_of(const char *dir, size_t max, char (**out)[PATH_MAX], size_t *n, fp_error *err)
{
	char cur[PATH_MAX];
	if (!realpath(dir, cur))
		return fp_fail(err, errno, "cannot resolve %s: %s", dir, strerror(errno));
	size_t cap = 8;
	*out = malloc(cap * PATH_MAX);
	*n = 0;
	while (*out) {
		if (*n == cap) {
			char(*x)[PATH_MAX] = realloc(*out, 2 * cap * PATH_MAX);
			if (!x)
				break;
			*out = x, cap *= 2;
		}
		memcpy((*out)[(*n)++], cur, PATH_MAX);
		char link[PATH_MAX + 8];
		snprintf(link, sizeof(link), "%s/parent", cur);
		if (*n == max || access(link, F_OK) < 0 || *n > PGS_CHAIN_MAX_DEPTH)
			return 0;
		if (!realpath(link, cur))
			return fp_fail(err, errno, "cannot resolve %s: %s", link, strerror(errno));
	}
	free(*out);
	*out = NULL;
	return fp_fail(err, ENOMEM, "out of memory");
}

/* The pages each process's pagemap in dir holds itself (PE_PRESENT). */
static int add_present(struct rb_ctx *c, const char *dir, char *why, size_t len, fp_error *err)
{
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return fp_fail(err, errno, "cannot open %s: %s", dir, strerror(errno));
	int rc = 1;
	for (size_t i = 0; i < c->nprocs && rc == 1; i++) {
		struct rb_proc *p = &c->procs[i];
		cr_pagemap_head h;
		cr_pagemap_entry *pe = NULL;
		size_t npe = 0;
		fp_error e2;
		if (cr_read_pagemap(d, (uint32_t)p->pid, &h, &pe, &npe, &e2)) {
			snprintf(why, len, "snapshot %s between SNAP and the last one has no pages of process %d", dir,
				 (int)p->pid);
			rc = 0;
			break;
		}
		struct fp_rlist add = { 0 };
		for (size_t k = 0; k < npe && rc == 1; k++)
			if ((cr_pagemap_flags(&pe[k]) & CR_PE_PRESENT) &&
			    fp_rlist_add(&add, pe[k].vaddr, pe[k].vaddr + pe[k].nr_pages * CR_PAGE_SIZE))
				rc = fp_fail(err, ENOMEM, "out of memory");
		if (rc == 1 && (fp_rlist_normalize(&add) || fp_rlist_merge(&p->path_pages, &add)))
			rc = fp_fail(err, ENOMEM, "out of memory");
		fp_rlist_free(&add);
		free(pe);
	}
	close(d);
	return rc;
}

/* The tracking's snapshot was removed (rm of the newest, then restore of
 * an older one): which pages differ from SNAP is not known, so every page
 * is written back, SNAP's or zeros, when SNAP is small; a big one is
 * restored in full (new processes) instead. */
static int path_unknown(struct rb_ctx *c, char *why, size_t len, fp_error *err)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		uint64_t pages = 0;
		for (size_t k = 0; k < c->procs[i].nflat; k++)
			pages += c->procs[i].flat[k].nr_pages;
		if (pages > RB_UNKNOWN_PATH_MAX_PAGES) {
			snprintf(why, len, "the last snapshot %s was removed since, and SNAP is too big to write back in full",
				 c->t->parent_dir);
			return 0;
		}
	}
	for (size_t i = 0; i < c->nprocs; i++)
		if (fp_rlist_add(&c->procs[i].path_pages, 0, UINT64_MAX - CR_PAGE_SIZE + 1))
			return fp_fail(err, ENOMEM, "out of memory");
	return 1;
}

/* One chain of snapshots, walked up one `parent` link at a time. */
struct chain_walk {
	char (*p)[PATH_MAX];
	size_t n, cap;
	bool top; /* no parent above p[n-1] */
};

static int walk_up(struct chain_walk *w, const char *start, fp_error *err)
{
	char link[PATH_MAX + 8];
	if (w->top)
		return 0;
	if (w->n) {
		snprintf(link, sizeof(link), "%s/parent", w->p[w->n - 1]);
		if (access(link, F_OK) < 0 || w->n > PGS_CHAIN_MAX_DEPTH) {
			w->top = true;
			return 0;
		}
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? 2 * w->cap : 8;
		char(*x)[PATH_MAX] = realloc(w->p, nc * PATH_MAX);
		if (!x)
			return fp_fail(err, ENOMEM, "out of memory");
		w->p = x, w->cap = nc;
	}
	const char *from = w->n ? link : start;
	if (!realpath(from, w->p[w->n]))
		return fp_fail(err, errno, "cannot resolve %s: %s", from, strerror(errno));
	w->n++;
	return 0;
}

static size_t index_in(const struct chain_walk *w, const char *path)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->p[i], path))
			return i;
	return SIZE_MAX;
}

int rb_load_path(struct rb_ctx *c, char *why, size_t len, fp_error *err)
{
	if (access(c->t->parent_dir, F_OK) < 0)
		return path_unknown(c, why, len, err);
	/* the closest common ancestor: pages differ only in the snapshots
	 * below it, on either side. Both chains are walked up together and
	 * stop at the first snapshot both have reached, which is that
	 * ancestor (whichever reaches a common one second, the other passed
	 * the closest one before it): a rollback to the tracking's own
	 * snapshot reads no link, where resolving two whole chains of 150
	 * took ~3 ms. */
	struct chain_walk a = { 0 }, b = { 0 };
	size_t ia = SIZE_MAX, ib = SIZE_MAX;
	int rc = 1;
	while (ia == SIZE_MAX && !(a.top && b.top)) {
		size_t was = a.n;
		if (walk_up(&a, c->t->parent_dir, err)) {
			rc = -1;
			break;
		}
		if (a.n > was && (ib = index_in(&b, a.p[a.n - 1])) != SIZE_MAX) {
			ia = a.n - 1;
			break;
		}
		was = b.n;
		if (walk_up(&b, c->snap_dir, err)) {
			rc = -1;
			break;
		}
		if (b.n > was && (ia = index_in(&a, b.p[b.n - 1])) != SIZE_MAX)
			ib = b.n - 1;
	}
	/* no common ancestor (two full snapshots): every page either chain
	 * holds may differ */
	if (ia == SIZE_MAX)
		ia = a.n, ib = b.n;
	for (size_t i = 0; i < ia && rc == 1; i++)
		rc = add_present(c, a.p[i], why, len, err);
	for (size_t j = 0; j < ib && rc == 1; j++)
		rc = add_present(c, b.p[j], why, len, err);
	free(a.p);
	free(b.p);
	return rc;
}

void rb_free(struct rb_ctx *c)
{
	rb_locks_free(c);
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		if (p->have_mm)
			cr_mm_free(&p->mm);
		for (size_t k = 0; k < p->nth; k++) {
			cr_core_free(&p->th[k].core);
			free(p->th[k].old_xs);
		}
		free(p->th);
		for (size_t k = 0; k < p->nfdi; k++)
			cr_fdinfo_free(&p->fdi[k]);
		free(p->fdi);
		free(p->flat);
		free(p->flat_first);
		if (p->rd)
			pgs_close(p->rd);
		if (p->rd2)
			pgs_close(p->rd2);
		fp_rlist_free(&p->pre);
		free(p->pre_ptr);
		fp_rlist_free(&p->live);
		free(p->live_ptr);
		fp_rlist_free(&p->live_ok);
		free(p->live_ok_ptr);
		free(p->old_ptr);
		free(p->wr_ptr);
		free(p->pt_old);
		fp_rlist_free(&p->snap_pages);
		fp_rlist_free(&p->path_pages);
		fp_rlist_free(&p->keep);
		fp_rlist_free(&p->wr);
		fp_rlist_free(&p->wr_new);
		for (size_t k = 0; k < p->nvops; k++) {
			fp_rlist_free(&p->vops[k].saved);
			free(p->vops[k].data);
		}
		free(p->vops);
		free(p->fops);
		free(p->kf);
		free(p->lv);
	}
	free(c->procs);
	if (c->ps)
		cr_free_array(&cr_pstree_desc, c->ps, c->nps);
	free(c->file_by_id);
	if (c->files)
		cr_free_array(&cr_file_desc, c->files, c->nfiles);
	if (c->ttys)
		cr_free_array(&cr_tty_info_desc, c->ttys, c->nttys);
	if (c->snap_dirfd > 0)
		close(c->snap_dirfd);
}

/* A file SNAP kept as a ghost (deleted while open) is the live fd's file
 * when the fd names it "PATH (deleted)", has the ghost's inode and holds
 * exactly its bytes: the file itself is not written back in place. */
bool rb_ghost_unchanged(const struct rb_ctx *c, pid_t pid, int fd, const cr_file *f, const char *link)
{
	size_t l = strlen(f->reg.name);
	if (strncmp(link, f->reg.name, l) || strcmp(link + l, " (deleted)"))
		return false;
	fp_error err;
	cr_remap_fpath *r = NULL;
	size_t nr = 0;
	if (cr_read_remaps(c->snap_dirfd, &r, &nr, &err))
		return false;
	uint32_t gid = 0;
	for (size_t i = 0; i < nr && !gid; i++)
		if (r[i].orig_id == f->id && r[i].has_remap_type && r[i].remap_type == CR_REMAP_GHOST)
			gid = r[i].remap_id;
	if (r)
		cr_free_array(&cr_remap_fpath_desc, r, nr);
	cr_ghost_file g;
	uint8_t *want = NULL;
	if (!gid || cr_read_ghost(c->snap_dirfd, gid, FP_DUMP_GHOST_LIMIT, &g, &want, &err))
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	int rfd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	bool same = rfd >= 0 && !fstat(rfd, &st) && (!g.has_ino || st.st_ino == g.ino) && (uint64_t)st.st_size == g.size;
	uint8_t buf[65536];
	for (uint64_t at = 0; same && at < g.size;) {
		ssize_t n = pread(rfd, buf, sizeof(buf), (off_t)at);
		same = n > 0 && !memcmp(buf, want + at, (size_t)n);
		at += n > 0 ? (uint64_t)n : 0;
	}
	if (rfd >= 0)
		close(rfd);
	free(want);
	return same;
}
