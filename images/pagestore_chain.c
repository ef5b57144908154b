/* Resolving an incremental snapshot's pages through its parents
 * (pagestore_chain.h). */
#include "images/pagestore_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/pagehash.h"
#include "fp_fdlimit.h"

/* A store's per-page hashes, loaded once and shared by every map that
 * reads that store (a chain resolved over a kept parent's, pgs_chain_open_over). */
struct hashes {
	atomic_int refs;
	uint64_t *v;
};

struct level {
	int dirfd;            /* while resolving */
	char *path;           /* after: the directory, reopened when read */
	dev_t dev;            /* ... which is this directory (pgs_chain_intact) */
	ino_t ino;
	uint32_t pages_id;
	cr_pagemap_entry *pe; /* while resolving */
	uint64_t *first;      /* page index of each PE_PRESENT entry's first page */
	size_t npe;
	struct hashes *hv;    /* pgs_check_pages: loaded when first read */
};

struct run {
	uint64_t flat_first, src_first, n;
	uint32_t level;
};

struct map {
	atomic_int refs;
	pthread_mutex_t lock; /* hv of the levels: readers on two threads */
	struct level *lv;
	size_t nlv;
	struct run *runs;
	size_t nruns;
	uint64_t total;
};

/* A chain of hundreds of snapshots must not hold hundreds of open files
 * and chunk buffers per reader: at most this many levels stay open, the
 * least recently read one is closed to make room. Pages are read in address
 * order, which is each level's own order, so a level that is closed and
 * opened again decodes at most one chunk twice.
 *
 * But a rollback reads scattered pages, from every level of a long chain
 * in turn: with 16 levels open, a chain of 150 (1 GiB, 1% written per
 * step) closed and opened a level (its directory and its store) for
 * nearly every page, and its batched and mapped reads (pgs_locate) were
 * refused. So the bound follows the file limit: a 32nd of the soft
 * RLIMIT_NOFILE, from 16 to 256 levels. */
static size_t open_levels(void)
{
	static _Atomic size_t n;
	if (!n)
		n = fp_fdlimit_share(32, 16, 256);
	return n;
}

struct pgs_chain {
	struct map *m;
	pgs_reader **rd;   /* per level, opened when first read */
	uint64_t *used;    /* per level: when it was last read */
	uint64_t clock;
	size_t nopen;
	size_t hint;       /* the run found last (run_from) */
	bool check;        /* pgs_check_pages: levels get their page hashes */
};

int pgs_chain_has_parent(const cr_pagemap_entry *pe, size_t npe)
{
	for (size_t i = 0; i < npe; i++)
		if (cr_pagemap_flags(&pe[i]) & CR_PE_PARENT)
			return 1;
	return 0;
}

static void hashes_put(struct hashes *h)
{
	if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
		free(h->v);
		free(h);
	}
}

static void map_put(struct map *m)
{
	if (!m || atomic_fetch_sub(&m->refs, 1) > 1)
		return;
	for (size_t i = 0; i < m->nlv; i++) {
		if (m->lv[i].dirfd >= 0)
			close(m->lv[i].dirfd);
		hashes_put(m->lv[i].hv);
		free(m->lv[i].path);
		free(m->lv[i].pe);
		free(m->lv[i].first);
	}
	free(m->lv);
	free(m->runs);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct map *map_new(void)
{
	struct map *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

struct resolver {
	struct map *m;
	uint32_t pid;
	cr_pagemap_entry *flat;
	size_t nflat, capflat;
	size_t caplv, capruns;
	size_t phint; /* the parent's run found last (emit_parent, in order) */
};

static int set_level(struct level *l, int dirfd, cr_pagemap_entry *pe, size_t npe, uint32_t pages_id, fp_error *err)
{
	l->dirfd = dirfd;
	l->pe = pe;
	l->npe = npe;
	l->pages_id = pages_id;
	l->first = malloc((npe ? npe : 1) * sizeof(*l->first));
	if (!l->first)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t k = 0;
	for (size_t i = 0; i < npe; i++) {
		l->first[i] = k;
		if (cr_pagemap_flags(&pe[i]) & CR_PE_PRESENT)
			k += pe[i].nr_pages;
	}
	return 0;
}

/* Level L+1, loaded through level L's `parent` link when first needed. */
static int load_parent(struct resolver *rs, size_t L, fp_error *err)
{
	struct map *m = rs->m;
	if (L + 1 < m->nlv)
		return 0;
	if (L + 1 >= PGS_CHAIN_MAX_DEPTH)
		return fp_fail(err, ELOOP, "the chain of parent snapshots is deeper than %d (a loop of `parent` links?)",
			       PGS_CHAIN_MAX_DEPTH);
	int fd = openat(m->lv[L].dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno,
			       "pages of process %u are in the parent snapshot, but its `parent` link (level %zu) cannot be "
			       "opened: %s; the parent was removed or moved, this snapshot cannot be restored",
			       rs->pid, L, strerror(errno));
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t npe = 0;
	if (cr_read_pagemap(fd, rs->pid, &h, &pe, &npe, err)) {
		close(fd);
		return fp_wrap(err, "the parent snapshot (level %zu) of process %u", L + 1, rs->pid);
	}
	if (m->nlv == rs->caplv) {
		size_t nc = rs->caplv ? rs->caplv * 2 : 8;
		struct level *nl = realloc(m->lv, nc * sizeof(*nl));
		if (!nl) {
			close(fd);
			free(pe);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		m->lv = nl;
		rs->caplv = nc;
	}
	memset(&m->lv[m->nlv], 0, sizeof(m->lv[0]));
	m->nlv++;
	if (set_level(&m->lv[m->nlv - 1], fd, pe, npe, h.pages_id, err))
		return -1;
	return 0;
}

static int emit(struct resolver *rs, uint64_t vaddr, uint64_t n, uint32_t level, uint64_t src, fp_error *err)
{
	struct map *m = rs->m;
	if (rs->nflat && rs->flat[rs->nflat - 1].vaddr + rs->flat[rs->nflat - 1].nr_pages * CR_PAGE_SIZE == vaddr) {
		rs->flat[rs->nflat - 1].nr_pages += n;
	} else {
		if (rs->nflat == rs->capflat) {
			size_t nc = rs->capflat ? rs->capflat * 2 : 256;
			cr_pagemap_entry *x = realloc(rs->flat, nc * sizeof(*x));
			if (!x)
				return fp_fail(err, ENOMEM, "out of memory");
			rs->flat = x;
			rs->capflat = nc;
		}
		cr_pagemap_entry *e = &rs->flat[rs->nflat++];
		memset(e, 0, sizeof(*e));
		e->vaddr = vaddr;
		e->nr_pages = n;
		e->has_flags = true;
		e->flags = CR_PE_PRESENT;
	}
	if (m->nruns) {
		struct run *r = &m->runs[m->nruns - 1];
		if (r->level == level && r->src_first + r->n == src) {
			r->n += n;
			m->total += n;
			return 0;
		}
	}
	if (m->nruns == rs->capruns) {
		size_t nc = rs->capruns ? rs->capruns * 2 : 256;
		struct run *x = realloc(m->runs, nc * sizeof(*x));
		if (!x)
			return fp_fail(err, ENOMEM, "out of memory");
		m->runs = x;
		rs->capruns = nc;
	}
	m->runs[m->nruns++] = (struct run){ m->total, src, n, level };
	m->total += n;
	return 0;
}

/* The pages [s, e) as level L has them (every one must be there). */
static int resolve(struct resolver *rs, size_t L, uint64_t s, uint64_t e, fp_error *err)
{
	if (load_parent(rs, L - 1, err))
		return -1;
	const struct level *lv = &rs->m->lv[L];
	size_t lo = 0, hi = lv->npe;
	while (lo < hi) { /* first entry ending after s */
		size_t mid = (lo + hi) / 2;
		if (lv->pe[mid].vaddr + lv->pe[mid].nr_pages * CR_PAGE_SIZE <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; s < e; i++) {
		if (i >= lv->npe || lv->pe[i].vaddr > s)
			return fp_fail(err, EINVAL,
				       "page 0x%" PRIx64 " of process %u is marked as in the parent snapshot, but the parent "
				       "(level %zu) does not have it: the chain is broken",
				       s, rs->pid, L);
		const cr_pagemap_entry *pe = &lv->pe[i];
		uint64_t pend = pe->vaddr + pe->nr_pages * CR_PAGE_SIZE, to = pend < e ? pend : e;
		uint32_t fl = cr_pagemap_flags(pe);
		int rc;
		if (fl & CR_PE_PRESENT)
			rc = emit(rs, s, (to - s) / CR_PAGE_SIZE, (uint32_t)L, lv->first[i] + (s - pe->vaddr) / CR_PAGE_SIZE, err);
		else if (fl & CR_PE_PARENT)
			rc = resolve(rs, L + 1, s, to, err);
		else
			rc = fp_fail(err, EINVAL, "pagemap entry at 0x%" PRIx64 " of process %u (level %zu) has flags 0x%x",
				     pe->vaddr, rs->pid, L, fl);
		if (rc)
			return -1;
		lv = &rs->m->lv[L]; /* resolve may have moved the levels */
		s = to;
	}
	return 0;
}

static struct pgs_chain *chain_new(struct map *m)
{
	struct pgs_chain *c = calloc(1, sizeof(*c));
	if (c) {
		c->rd = calloc(m->nlv, sizeof(*c->rd));
		c->used = calloc(m->nlv, sizeof(*c->used));
	}
	if (!c || !c->rd || !c->used) {
		if (c) {
			free(c->rd);
			free(c->used);
		}
		free(c);
		return NULL;
	}
	c->m = m;
	return c;
}

static int finish(struct resolver *rs, int rc, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **reader,
		  fp_error *err);

int pgs_chain_open(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
		   cr_pagemap_entry **flat, size_t *nflat, pgs_reader **reader, fp_error *err)
{
	struct resolver rs = { 0 };
	rs.pid = pid;
	rs.m = map_new();
	cr_pagemap_entry *top = malloc((npe ? npe : 1) * sizeof(*top));
	if (!rs.m || !top) {
		if (rs.m)
			map_put(rs.m);
		free(top);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	memcpy(top, pe, npe * sizeof(*top));
	rs.m->lv = calloc(8, sizeof(*rs.m->lv));
	rs.caplv = 8;
	int rc = rs.m->lv ? 0 : fp_fail(err, ENOMEM, "out of memory");
	int fd0 = rc ? -1 : fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (!rc && fd0 < 0)
		rc = fp_fail(err, errno, "dup: %s", strerror(errno));
	if (!rc) {
		rs.m->nlv = 1;
		rc = set_level(&rs.m->lv[0], fd0, top, npe, pages_id, err);
	} else {
		free(top);
	}
	for (size_t i = 0; i < npe && !rc; i++) {
		uint32_t fl = cr_pagemap_flags(&pe[i]);
		uint64_t s = pe[i].vaddr, e = s + pe[i].nr_pages * CR_PAGE_SIZE;
		if (fl & CR_PE_PRESENT)
			rc = emit(&rs, s, pe[i].nr_pages, 0, rs.m->lv[0].first[i], err);
		else if (fl & CR_PE_PARENT)
			rc = resolve(&rs, 1, s, e, err);
	}
	return finish(&rs, rc, flat, nflat, reader, err);
}

/* The pagemaps are not needed any more; the directories are, by path. */
static int finish(struct resolver *rs_, int rc, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **reader,
		  fp_error *err)
{
	struct resolver rs = *rs_;
	for (size_t i = 0; rs.m->lv && i < rs.m->nlv; i++) {
		struct level *l = &rs.m->lv[i];
		if (l->dirfd < 0)
			continue; /* a parent's level, named already */
		free(l->pe);
		free(l->first);
		l->pe = NULL;
		l->first = NULL;
		char proc[64], path[PATH_MAX];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", l->dirfd);
		ssize_t n = l->dirfd >= 0 ? readlink(proc, path, sizeof(path) - 1) : -1;
		if (!rc && n <= 0)
			rc = fp_fail(err, errno, "cannot name the snapshot directory of level %zu: %s", i, strerror(errno));
		struct stat st;
		if (!rc && fstat(l->dirfd, &st) < 0)
			rc = fp_fail(err, errno, "cannot stat the snapshot directory of level %zu: %s", i, strerror(errno));
		if (!rc) {
			path[n] = '\0';
			l->dev = st.st_dev, l->ino = st.st_ino;
			if (!(l->path = strdup(path)))
				rc = fp_fail(err, ENOMEM, "out of memory");
		}
		if (l->dirfd >= 0)
			close(l->dirfd);
		l->dirfd = -1;
	}
	struct pgs_chain *ch = rc ? NULL : chain_new(rs.m);
	if (!rc && !ch)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc) {
		free(rs.flat);
		map_put(rs.m);
		return -1;
	}
	pgs_reader *r = pgs_reader_of_chain(ch, err);
	if (!r) {
		free(rs.flat);
		return -1;
	}
	*flat = rs.flat;
	*nflat = rs.nflat;
	*reader = r;
	return 0;
}

uint64_t pgs_chain_total(const struct pgs_chain *ch)
{
	return ch->m->total;
}

/* The level's per-page hashes, loaded by the first reader that needs
 * them and lent to every reader of it after (a big store's are MiBs). */
static int level_hashes(struct map *m, uint32_t level, pgs_reader *rd, int dirfd, fp_error *err)
{
	struct level *l = &m->lv[level];
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (!l->hv) {
		struct hashes *h = calloc(1, sizeof(*h));
		if (!h)
			rc = fp_fail(err, ENOMEM, "out of memory");
		else if (pgh_load(dirfd, l->pages_id, pgs_total_pages(rd), &h->v, err)) {
			free(h);
			rc = fp_wrap(err, "%s: its pages cannot be checked one by one", l->path);
		} else {
			atomic_init(&h->refs, 1);
			l->hv = h;
		}
	}
	if (!rc)
		pgs_reader_lend_hashes(rd, l->hv->v);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int open_level(struct pgs_chain *ch, uint32_t level, fp_error *err)
{
	const struct level *l = &ch->m->lv[level];
	if (ch->nopen >= open_levels()) {
		size_t lru = SIZE_MAX;
		for (size_t i = 0; i < ch->m->nlv; i++)
			if (ch->rd[i] && (lru == SIZE_MAX || ch->used[i] < ch->used[lru]))
				lru = i;
		pgs_close(ch->rd[lru]);
		ch->rd[lru] = NULL;
		ch->nopen--;
	}
	int fd = open(l->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open the parent snapshot %s (level %u): %s", l->path, level, strerror(errno));
	ch->rd[level] = pgs_open(fd, l->pages_id, err);
	if (ch->rd[level] && ch->check && level_hashes(ch->m, level, ch->rd[level], fd, err)) {
		pgs_close(ch->rd[level]);
		ch->rd[level] = NULL;
	}
	close(fd);
	if (!ch->rd[level])
		return fp_wrap(err, "the page data of the parent snapshot %s (level %u)", l->path, level);
	ch->nopen++;
	return 0;
}

/* The run that holds flat page f. */
static size_t run_at(const struct map *m, uint64_t f)
{
	size_t lo = 0, hi = m->nruns;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (m->runs[mid].flat_first <= f)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The same, searched from the run found last: a rollback reads a long
 * chain's scattered pages in order, and a binary search of the whole run
 * list for each (~200,000 runs after 120 steps of 1% of 1 GiB: a cache
 * miss at nearly every step) was a tenth of the rollback's CPU time
 * (perf: pgs_locate, nearly all of it on one instruction of the search).
 * Galloping from the last run touches a few neighbours instead. */
static size_t run_from(const struct map *m, size_t *hint, uint64_t f)
{
	size_t lo = *hint;
	if (lo >= m->nruns || m->runs[lo].flat_first > f)
		return *hint = run_at(m, f);
	size_t step = 1, hi = lo + 1;
	while (hi < m->nruns && m->runs[hi].flat_first <= f) {
		lo = hi;
		step *= 2;
		hi = lo + step;
	}
	if (hi > m->nruns)
		hi = m->nruns;
	while (hi - lo > 1) { /* runs[lo] starts at or before f, runs[hi] after it (or is the end) */
		size_t mid = (lo + hi) / 2;
		if (m->runs[mid].flat_first <= f)
			lo = mid;
		else
			hi = mid;
	}
	return *hint = lo;
}

int pgs_chain_read(struct pgs_chain *ch, uint64_t first, uint64_t n, void *dst, fp_error *err)
{
	const struct map *m = ch->m;
	if (first > m->total || n > m->total - first)
		return fp_fail(err, ERANGE, "pages %" PRIu64 "..%" PRIu64 " requested, the snapshot chain holds %" PRIu64, first,
			       first + n - 1, m->total);
	uint8_t *d = dst;
	for (size_t i = run_from(m, &ch->hint, first); n; i++) {
		const struct run *r = &m->runs[i];
		uint64_t in = first - r->flat_first, take = r->n - in < n ? r->n - in : n;
		if (!ch->rd[r->level] && open_level(ch, r->level, err))
			return -1;
		ch->used[r->level] = ++ch->clock;
		if (pgs_read(ch->rd[r->level], r->src_first + in, take, d, err))
			return -1;
		d += take * CR_PAGE_SIZE;
		first += take;
		n -= take;
	}
	return 0;
}

struct pgs_chain *pgs_chain_dup(const struct pgs_chain *ch, fp_error *err)
{
	struct pgs_chain *c = chain_new(ch->m);
	if (!c) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	atomic_fetch_add(&ch->m->refs, 1);
	return c;
}

void pgs_chain_check(struct pgs_chain *ch)
{
	for (size_t i = 0; i < ch->m->nlv; i++) /* opened unchecked: again when needed */
		if (ch->rd[i] && !ch->check) {
			pgs_close(ch->rd[i]);
			ch->rd[i] = NULL;
			ch->nopen--;
		}
	ch->check = true;
}

void pgs_chain_free(struct pgs_chain *ch)
{
	if (!ch)
		return;
	for (size_t i = 0; i < ch->m->nlv; i++)
		pgs_close(ch->rd[i]);
	free(ch->rd);
	free(ch->used);
	map_put(ch->m);
	free(ch);
}

/* ---- a chain over a resolved parent ------------------------------------ */

/* Parent levels become levels 1.. of rs->m (shared hashes, by path). */
static int adopt_levels(struct resolver *rs, const struct map *pm, fp_error *err)
{
	struct map *m = rs->m;
	struct level *nl = realloc(m->lv, (1 + pm->nlv) * sizeof(*nl));
	if (!nl)
		return fp_fail(err, ENOMEM, "out of memory");
	m->lv = nl;
	rs->caplv = 1 + pm->nlv;
	for (size_t i = 0; i < pm->nlv; i++) {
		struct level *l = &m->lv[m->nlv];
		memset(l, 0, sizeof(*l));
		l->dirfd = -1;
		l->dev = pm->lv[i].dev, l->ino = pm->lv[i].ino;
		l->pages_id = pm->lv[i].pages_id;
		if (!(l->path = strdup(pm->lv[i].path)))
			return fp_fail(err, ENOMEM, "out of memory");
		m->nlv++;
		pthread_mutex_lock((pthread_mutex_t *)&pm->lock);
		l->hv = pm->lv[i].hv;
		if (l->hv)
			atomic_fetch_add(&l->hv->refs, 1);
		pthread_mutex_unlock((pthread_mutex_t *)&pm->lock);
	}
	return 0;
}

/* Parent flat pages [f, f+n) (indexes into pm's flat order) as runs of
 * rs's map, one level down. */
static int emit_parent(struct resolver *rs, const struct map *pm, uint64_t vaddr, uint64_t f, uint64_t n,
		       fp_error *err)
{
	for (size_t i = run_from(pm, &rs->phint, f); n; i++) {
		if (i >= pm->nruns)
			return fp_fail(err, EINVAL, "the parent's page map of process %u is shorter than its pagemap", rs->pid);
		const struct run *r = &pm->runs[i];
		uint64_t in = f - r->flat_first, take = r->n - in < n ? r->n - in : n;
		if (emit(rs, vaddr, take, r->level + 1, r->src_first + in, err))
			return -1;
		vaddr += take * CR_PAGE_SIZE, f += take, n -= take;
	}
	return 0;
}

int pgs_chain_open_over(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
			const pgs_reader *parent, const cr_pagemap_entry *pflat, size_t npflat, cr_pagemap_entry **flat,
			size_t *nflat, pgs_reader **reader, fp_error *err)
{
	const struct pgs_chain *pch = pgs_reader_chain(parent);
	if (!pch)
		return fp_fail(err, EINVAL, "the parent's pages are not a resolved chain");
	const struct map *pm = pch->m;
	struct resolver rs = { 0 };
	rs.pid = pid;
	rs.m = map_new();
	cr_pagemap_entry *top = malloc((npe ? npe : 1) * sizeof(*top));
	uint64_t *pfirst = malloc((npflat + 1) * sizeof(*pfirst));
	int rc = rs.m && top && pfirst ? 0 : fp_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rs.m->lv = calloc(1, sizeof(*rs.m->lv));
	if (!rc && !rs.m->lv)
		rc = fp_fail(err, ENOMEM, "out of memory");
	int fd0 = rc ? -1 : fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (!rc && fd0 < 0)
		rc = fp_fail(err, errno, "dup: %s", strerror(errno));
	if (!rc) {
		memcpy(top, pe, npe * sizeof(*top));
		rs.m->nlv = 1;
		rc = set_level(&rs.m->lv[0], fd0, top, npe, pages_id, err);
		top = NULL;
	}
	if (!rc)
		rc = adopt_levels(&rs, pm, err);
	uint64_t k = 0;
	for (size_t i = 0; !rc && i < npflat; i++)
		pfirst[i] = k, k += pflat[i].nr_pages;
	size_t j = 0; /* the parent's flat entry that may hold the next PE_PARENT page */
	for (size_t i = 0; i < npe && !rc; i++) {
		uint32_t fl = cr_pagemap_flags(&pe[i]);
		uint64_t s = pe[i].vaddr, e = s + pe[i].nr_pages * CR_PAGE_SIZE;
		if (fl & CR_PE_PRESENT) {
			rc = emit(&rs, s, pe[i].nr_pages, 0, rs.m->lv[0].first[i], err);
			continue;
		}
		if (!(fl & CR_PE_PARENT))
			continue;
		while (!rc && s < e) {
			while (j < npflat && pflat[j].vaddr + pflat[j].nr_pages * CR_PAGE_SIZE <= s)
				j++;
			if (j == npflat || pflat[j].vaddr > s) {
				rc = fp_fail(err, EINVAL,
					     "page 0x%" PRIx64 " of process %u is marked as in the parent snapshot, but the "
					     "parent does not have it: the chain is broken", s, pid);
				break;
			}
			uint64_t pe_end = pflat[j].vaddr + pflat[j].nr_pages * CR_PAGE_SIZE, to = pe_end < e ? pe_end : e;
			rc = emit_parent(&rs, pm, s, pfirst[j] + (s - pflat[j].vaddr) / CR_PAGE_SIZE, (to - s) / CR_PAGE_SIZE,
					 err);
			s = to;
		}
	}
	free(top);
	free(pfirst);
	if (!rs.m)
		return -1;
	return finish(&rs, rc, flat, nflat, reader, err);
}

int pgs_chain_intact(const pgs_reader *r)
{
	const struct pgs_chain *ch = pgs_reader_chain(r);
	if (!ch)
		return 0;
	for (size_t i = 0; i < ch->m->nlv; i++) {
		struct stat st;
		const struct level *l = &ch->m->lv[i];
		if (stat(l->path, &st) < 0 || st.st_dev != l->dev || st.st_ino != l->ino)
			return 0;
	}
	return 1;
}

int pgs_locate(pgs_reader *r, uint64_t first, uint64_t n,
	       int (*fn)(void *arg, pgs_reader *store, uint64_t at, uint64_t n, fp_error *err), void *arg,
	       fp_error *err)
{
	struct pgs_chain *ch = pgs_reader_chain(r);
	if (!ch)
		return pgs_plain_fd(r) < 0 ? 1 : fn(arg, r, first, n, err);
	const struct map *m = ch->m;
	/* a level closed to make room (open_level) would close a descriptor
	 * that the caller's batch still reads */
	if (m->nlv > open_levels())
		return 1;
	if (first > m->total || n > m->total - first)
		return fp_fail(err, ERANGE, "pages %" PRIu64 "..%" PRIu64 " requested, the snapshot chain holds %" PRIu64, first,
			       first + n - 1, m->total);
	for (size_t i = run_from(m, &ch->hint, first); n; i++) {
		const struct run *rn = &m->runs[i];
		uint64_t in = first - rn->flat_first, take = rn->n - in < n ? rn->n - in : n;
		if (!ch->rd[rn->level] && open_level(ch, rn->level, err))
			return -1;
		if (pgs_plain_fd(ch->rd[rn->level]) < 0)
			return 1;
		int rc = fn(arg, ch->rd[rn->level], rn->src_first + in, take, err);
		if (rc)
			return rc;
		first += take;
		n -= take;
	}
	return 0;
}

int pgs_stores(pgs_reader *r, size_t levels, int (*fn)(void *arg, pgs_reader *store, fp_error *err), void *arg,
	       fp_error *err)
{
	struct pgs_chain *ch = pgs_reader_chain(r);
	if (!ch)
		return pgs_plain_fd(r) < 0 ? 1 : fn(arg, r, err);
	size_t n = levels && levels < ch->m->nlv ? levels : ch->m->nlv;
	if (n > open_levels())
		return 1;
	for (size_t l = 0; l < n; l++) {
		if (!ch->rd[l] && open_level(ch, (uint32_t)l, err))
			return -1;
		if (pgs_plain_fd(ch->rd[l]) < 0)
			continue;
		int rc = fn(arg, ch->rd[l], err);
		if (rc)
			return rc;
	}
	return 0;
}
