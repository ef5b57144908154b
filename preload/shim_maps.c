/* The mapping list: maps[0, map_count), sorted by start, never overlapping.
 *
 * Wrappers change it the way the kernel changes VMAs: a new mapping replaces
 * whatever it overlaps, munmap and mprotect split entries at the edges of
 * their range, mremap moves pieces. Adjacent entries are never merged (the
 * kernel merges compatible VMAs; the checker merges before comparing), so an
 * entry keeps what the program asked for (its flags, its fd and path).
 *
 * Ordering against the kernel: munmap (and the old range of mremap) are taken
 * out of the list BEFORE the system call, for the same reason close clears its
 * slot first: once the kernel has freed a range, another thread's mmap can get
 * it and record it, and a late removal would erase that new entry. mmap,
 * mprotect and the new range of mremap are recorded after success. Failures
 * that may have been partly applied (mprotect over a hole, munmap hitting the
 * map count limit) are repaired by a resync.
 *
 * Everything the wrappers cannot see (malloc's mmaps, thread stacks, brk,
 * ld.so, dlopen) is picked up by fp_maps_resync from /proc/self/maps. */
#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim_fdtype.h"
#include "shim_internal.h"

#define MAXM FP_SHIM_MAX_MAPS
#define N (FP_T->map_count)
#define LO (FP_T->map_lo)

/* Logical entry i of the gap buffer (see shim_table.h). A change moves only
 * the entries between the gap and where it happens: none when a program maps
 * and unmaps in one place, as malloc and most loops do. */
static inline struct fp_shim_map *E(uint32_t i)
{
	return &FP_T->maps[i < LO ? i : i + (MAXM - N)];
}

static void gap_to(uint32_t i)
{
	struct fp_shim_map *a = FP_T->maps;
	uint32_t gap = MAXM - N;
	if (i < LO)
		memmove(&a[i + gap], &a[i], (LO - i) * sizeof(*a));
	else if (i > LO)
		memmove(&a[LO], &a[LO + gap], (i - LO) * sizeof(*a));
	LO = i;
}

/* m becomes logical entry i (the caller checked there is room). The path is
 * copied up to its NUL: a whole entry is 320 bytes, most of them the unused
 * end of a path ("" for anonymous memory). */
static void put_at(uint32_t i, const struct fp_shim_map *m)
{
	gap_to(i);
	struct fp_shim_map *d = &FP_T->maps[LO];
	__builtin_memcpy(d, m, offsetof(struct fp_shim_map, path));
	if (m->path[0])
		fp_copy_path(d->path, m->path, NULL);
	else
		d->path[0] = '\0'; /* anonymous memory: the copy's setup cost 30 instructions */
	LO++;
	N++;
}

/* removes logical entries [i, j): they become part of the gap, and only
 * entries between the gap and the range move (none when the gap touches it,
 * as after inserting the entry that is now removed) */
static void drop(uint32_t i, uint32_t j)
{
	if (LO > j)
		gap_to(j);
	else if (LO < i)
		gap_to(i);
	LO = i;
	N -= j - i;
}

/* Scratch list and read buffer for resync; only used under the maps lock. */
static struct fp_shim_map fp_scratch[FP_SHIM_MAX_MAPS];
static char fp_maps_buf[65536];

FP_HIDDEN uint64_t fp_page_up(uint64_t x)
{
	return (x + FP_PAGE - 1) & ~(FP_PAGE - 1);
}

/* 0: a signal handler on top of this thread's own change of the list; the
 * change is left to the resync the interrupted writer then makes. */
static int maps_lock(void)
{
	if (fp_list_lock_w(&FP_T->maps_lock, &FP_T->maps_seq, FP_LOCK_MAPS))
		return 1;
	fp_list_missed(&fp_maps_lock);
	return 0;
}

static void maps_unlock(void)
{
	fp_list_unlock_w(&FP_T->maps_lock, &FP_T->maps_seq, FP_LOCK_MAPS);
	if (FP_UNLIKELY(fp_list_take_missed(&fp_maps_lock)))
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
}

static int is_file(const struct fp_shim_map *m)
{
	return !(m->flags & MAP_ANONYMOUS);
}

/* index of the first entry with end > a. The entries on either side of the
 * gap are tried first: a program that maps and unmaps in one place (malloc,
 * most loops) changes the list where it changed it last, and the binary
 * search cost about 70 instructions per call. */
static uint32_t first_end_after(uint64_t a)
{
	uint32_t lo = 0, hi = N;
	const struct fp_shim_map *a_ = FP_T->maps;
	if (LO == 0 || a_[LO - 1].end <= a) {
		if (LO == N || a_[LO + (MAXM - N)].end > a)
			return LO;
	} else if (LO == 1 || a_[LO - 2].end <= a) {
		return LO - 1; /* the entry just put there (an munmap of what was mapped) */
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (E(mid)->end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void overflow(void)
{
	FP_T->map_overflow++;
}

/* Splits the entry that strictly contains a. Returns 0, or -1 when the list
 * is full (the caller then loses precision and counts an overflow). */
static int split_at(uint64_t a)
{
	uint32_t i = first_end_after(a);
	if (i >= N || E(i)->start >= a)
		return 0;
	if (N >= MAXM) {
		overflow();
		return -1;
	}
	struct fp_shim_map upper = *E(i);
	E(i)->end = a;
	if (is_file(&upper))
		upper.offset += a - upper.start;
	upper.start = a;
	put_at(i + 1, &upper);
	return 0;
}

/* removes [a, b) from the list; i is first_end_after(a) */
static void remove_range_at(uint32_t i, uint64_t a, uint64_t b)
{
	if (i < N && E(i)->start == a && E(i)->end == b) {
		drop(i, i + 1); /* exactly one entry: an munmap of what was mapped */
		return;
	}
	if (i < N && E(i)->start < a) {
		if (E(i)->end > b) {
			/* [a, b) is inside one entry: cut a hole (when the list
			 * is full, [b, end) is lost, counted) */
			split_at(b);
			E(i)->end = a;
			return;
		}
		E(i)->end = a;
		i++;
	}
	uint32_t j = i;
	while (j < N && E(j)->end <= b)
		j++;
	if (j < N && E(j)->start < b) {
		struct fp_shim_map *m = E(j);
		if (is_file(m))
			m->offset += b - m->start;
		m->start = b;
	}
	if (j > i)
		drop(i, j);
}

static void remove_range(uint64_t a, uint64_t b)
{
	if (a < b)
		remove_range_at(first_end_after(a), a, b);
}

static void insert(const struct fp_shim_map *m)
{
	uint32_t i = first_end_after(m->start);
	if (i < N && E(i)->start < m->end && m->start < m->end) {
		/* it replaces what the list had there (MAP_FIXED, or entries
		 * libc unmapped unseen); otherwise, as for nearly every mmap
		 * the kernel places, i is already where it goes */
		remove_range_at(i, m->start, m->end);
		i = first_end_after(m->start);
	}
	if (N >= MAXM) {
		overflow();
		return;
	}
	put_at(i, m);
}

static uint64_t map_len(uint64_t len, int flags)
{
	if (flags & MAP_HUGETLB) {
		unsigned shift = ((unsigned)flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
		uint64_t hp = shift ? (1ULL << shift) : (2ULL << 20);
		return (len + hp - 1) & ~(hp - 1);
	}
	return fp_page_up(len);
}

/* Where a file mapping came from is the fd's slot: the path as the program
 * named it, and the file's identity when the slot knows it (inherited fds).
 * No fstat: the kernel gives the inode back at any time (/proc/PID/maps), and
 * a resync or the checker fills it in. */
FP_HIDDEN void fp_maps_mapped(uint64_t addr, uint64_t len, int prot, int flags, int fd,
			      uint64_t off)
{
	struct fp_shim_map m;
	m.start = addr;
	m.end = addr + map_len(len, flags);
	m.offset = 0;
	m.dev = m.ino = 0;
	m.prot = prot;
	m.flags = flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE);
	m.origin = FP_ORIGIN_PROGRAM;
	m.path_truncated = 0;
	m.reserved = 0;
	m.fd = -1;
	m.path[0] = '\0';
	if (!(flags & MAP_ANONYMOUS) && fd >= 0) {
		int trunc = 0;
		fp_fd_describe(fd, m.path, &m.dev, &m.ino, &trunc);
		if ((flags & MAP_SHARED) && !__builtin_strcmp(m.path, "/dev/zero")) {
			/* shared /dev/zero is a new shmem object, exactly like
			 * MAP_SHARED|MAP_ANONYMOUS (a private one stays /dev/zero
			 * in /proc on current kernels) */
			m.flags |= MAP_ANONYMOUS;
			m.path[0] = '\0';
			m.dev = m.ino = 0;
		} else {
			m.offset = off;
			m.fd = fd;
			m.path_truncated = (uint8_t)trunc;
		}
	} else {
		m.flags |= MAP_ANONYMOUS;
	}
	if (!maps_lock())
		return;
	insert(&m);
	fp_maplog_add(FP_ML_MAP, m.start, m.end, m.prot, m.flags);
	maps_unlock();
}

FP_HIDDEN void fp_maps_unmapped(uint64_t addr, uint64_t len)
{
	if (!maps_lock())
		return;
	remove_range(addr, addr + fp_page_up(len));
	fp_maplog_add(FP_ML_UNMAP, addr, addr + fp_page_up(len), 0, 0);
	maps_unlock();
}

FP_HIDDEN void fp_maps_protected(uint64_t addr, uint64_t len, int prot)
{
	uint64_t a = addr, b = addr + fp_page_up(len);
	if (!maps_lock())
		return;
	split_at(a);
	split_at(b);
	for (uint32_t i = first_end_after(a); i < N && E(i)->start < b; i++)
		E(i)->prot = prot;
	fp_maplog_add(FP_ML_PROTECT, a, b, prot, 0);
	maps_unlock();
}

FP_HIDDEN void fp_maps_mremap_begin(uint64_t old, uint64_t old_len, int flags,
				    struct fp_mremap_save *s)
{
	uint64_t a = old, b = old + fp_page_up(old_len);
	s->n = 0;
	s->removed = 0;
	if (!maps_lock()) {
		s->n = -1;
		return;
	}
	for (uint32_t i = first_end_after(a); i < N && E(i)->start < b; i++) {
		if (s->n >= FP_MREMAP_PIECES) {
			s->n = -1;
			break;
		}
		struct fp_shim_map *p = &s->piece[s->n++];
		*p = *E(i);
		if (p->start < a) {
			if (is_file(p))
				p->offset += a - p->start;
			p->start = a;
		}
		if (p->end > b)
			p->end = b;
	}
	/* old_len 0 duplicates a shared mapping; DONTUNMAP leaves the old range */
	if (old_len && !(flags & MREMAP_DONTUNMAP)) {
		remove_range(a, b);
		fp_maplog_add(FP_ML_UNMAP, a, b, 0, 0);
		s->removed = 1;
	}
	maps_unlock();
}

FP_HIDDEN void fp_maps_mremap_end(uint64_t old, uint64_t old_len, uint64_t new_addr,
				  uint64_t new_len, int ok, struct fp_mremap_save *s)
{
	uint64_t olen = fp_page_up(old_len), nlen = fp_page_up(new_len);
	if (!ok) {
		if (s->removed)
			fp_maps_resync(0, FP_ORIGIN_RESYNC);
		return;
	}
	/* The pieces must cover the old range exactly (the kernel only moves a
	 * range within one VMA); otherwise the list was already incomplete. */
	int exact = s->n > 0 && s->piece[0].start == old;
	for (int i = 1; exact && i < s->n; i++)
		exact = s->piece[i].start == s->piece[i - 1].end;
	if (exact && olen)
		exact = s->piece[s->n - 1].end == old + olen;
	if (!exact || olen == 0) {
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
		return;
	}
	if (!maps_lock())
		return;
	for (int i = 0; i < s->n; i++) {
		struct fp_shim_map p = s->piece[i];
		uint64_t delta = p.start - old;
		if (delta >= nlen)
			break; /* shrunk away */
		uint64_t len = p.end - p.start;
		if (i == s->n - 1 && nlen > olen)
			len += nlen - olen; /* grown: the last piece extends */
		if (delta + len > nlen)
			len = nlen - delta;
		p.start = new_addr + delta;
		p.end = p.start + len;
		insert(&p);
		fp_maplog_add(FP_ML_MAP, p.start, p.end, p.prot, p.flags);
	}
	maps_unlock();
}

FP_HIDDEN void fp_maps_brk(uint64_t old, uint64_t new_brk)
{
	uint64_t a = fp_page_up(old), b = fp_page_up(new_brk);
	if (a == b || !maps_lock())
		return;
	if (b > a)
		fp_maplog_add(FP_ML_MAP, a, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	else
		fp_maplog_add(FP_ML_UNMAP, b, a, 0, 0);
	maps_unlock();
}

/* ---- thread stacks ----
 *
 * glibc maps a thread's stack inside libc (no wrapper sees it), keeps the
 * stacks of ended threads in a cache for the next pthread_create, and unmaps
 * cached stacks when the cache grows too big, at a join or when a detached
 * thread ends. Instead of reading /proc at every pthread_create and join, the
 * shim remembers one address inside each thread stack it knows (the thread's
 * descriptor, pthread_t, which glibc puts at the top of the stack block):
 *  - after pthread_create: a descriptor inside a mapping of the table means a
 *    stack from the cache (already known); otherwise a resync;
 *  - after a join: glibc unmaps cached stacks only when the cache holds more
 *    than its limit (40 MiB unless the glibc.pthread.stack_cache_size tunable
 *    says otherwise). While the known stacks add up to less than
 *    FP_STACK_CACHE_SAFE nothing can have gone; beyond that (or with the
 *    tunable set), one process_vm_readv of a byte at each known descriptor
 *    tells whether any stack went away. Only then a resync (also when glibc
 *    loaded a library for itself, see libs_changed). */

#define FP_STACKS 256
#define FP_STACK_CACHE_SAFE (32ULL << 20) /* below glibc's 40 MiB, for guard pages */
static uint64_t fp_stack_at[FP_STACKS]; /* under the maps lock */
static uint64_t fp_stack_len[FP_STACKS];
static uint64_t fp_stack_bytes; /* sum of fp_stack_len */
static int fp_cache_tuned;      /* GLIBC_TUNABLES sets the stack cache size */
static uint32_t fp_nstacks;
static int fp_stacks_lost; /* more stacks than fit: every join resyncs */
static struct iovec fp_probe_local[FP_STACKS], fp_probe_remote[FP_STACKS];
static char fp_probe_buf[FP_STACKS];

/* The size of the table's mapping that holds a, 0 if none. */
static uint64_t known(uint64_t a)
{
	uint32_t i = first_end_after(a);
	if (i < N && E(i)->start <= a && E(i)->origin != FP_ORIGIN_SHIM)
		return E(i)->end - E(i)->start;
	return 0;
}

FP_HIDDEN void fp_maps_stacks_init(void)
{
	for (char **e = environ; e && *e; e++)
		if (fp_starts(*e, "GLIBC_TUNABLES=")) {
			for (const char *p = *e; *p; p++)
				if (fp_starts(p, "stack_cache_size"))
					fp_cache_tuned = 1;
		}
}

/* Drops the addresses that are no longer in a mapping (after a resync). */
static void stacks_prune(void)
{
	uint32_t w = 0;
	fp_stack_bytes = 0;
	for (uint32_t i = 0; i < fp_nstacks; i++)
		if (known(fp_stack_at[i])) {
			fp_stack_at[w] = fp_stack_at[i];
			fp_stack_len[w] = fp_stack_len[i];
			fp_stack_bytes += fp_stack_len[w++];
		}
	fp_nstacks = w;
}

static int stack_note(uint64_t at)
{
	uint64_t len = known(at);
	if (!len)
		return 0;
	for (uint32_t i = 0; i < fp_nstacks; i++)
		if (fp_stack_at[i] == at)
			return 1;
	if (fp_nstacks < FP_STACKS) {
		fp_stack_at[fp_nstacks] = at;
		fp_stack_len[fp_nstacks++] = len;
		fp_stack_bytes += len;
	} else {
		fp_stacks_lost = 1;
	}
	return 1;
}

FP_HIDDEN void fp_maps_thread_stack(uint64_t at)
{
	if (!maps_lock())
		return;
	int ok = stack_note(at);
	maps_unlock();
	if (ok)
		return;
	fp_maps_resync(0, FP_ORIGIN_RESYNC);
	if (!maps_lock())
		return;
	stack_note(at);
	maps_unlock();
}

/* glibc loads libraries for itself (libgcc_s for pthread_exit and
 * cancellation) without the dlopen wrapper; its counters of loads and unloads
 * (dl_iterate_phdr's dlpi_adds/dlpi_subs) show that without a system call. */
static unsigned long long fp_dl_adds, fp_dl_subs;

static int dl_counts(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	unsigned long long *v = data;
	v[0] = info->dlpi_adds;
	v[1] = info->dlpi_subs;
	return 1;
}

static int libs_changed(void)
{
	unsigned long long v[2] = {fp_dl_adds, fp_dl_subs};
	dl_iterate_phdr(dl_counts, v);
	int changed = v[0] != __atomic_load_n(&fp_dl_adds, __ATOMIC_RELAXED) ||
		      v[1] != __atomic_load_n(&fp_dl_subs, __ATOMIC_RELAXED);
	__atomic_store_n(&fp_dl_adds, v[0], __ATOMIC_RELAXED);
	__atomic_store_n(&fp_dl_subs, v[1], __ATOMIC_RELAXED);
	return changed;
}

FP_HIDDEN void fp_maps_libs_seen(void)
{
	libs_changed();
}

FP_HIDDEN void fp_maps_check_stacks(void)
{
	int libs = libs_changed();
	if (!libs && !fp_stacks_lost && !fp_cache_tuned &&
	    __atomic_load_n(&fp_stack_bytes, __ATOMIC_RELAXED) <= FP_STACK_CACHE_SAFE)
		return; /* glibc's cache cannot have overflowed */
	if (!maps_lock())
		return;
	uint32_t n = fp_nstacks;
	for (uint32_t i = 0; i < n; i++) {
		fp_probe_local[i] = (struct iovec){&fp_probe_buf[i], 1};
		fp_probe_remote[i] = (struct iovec){(void *)(uintptr_t)fp_stack_at[i], 1};
	}
	long r = n ? fp_sys6(SYS_process_vm_readv, FP_T->pid, (long)fp_probe_local, n,
			     (long)fp_probe_remote, n, 0)
		   : 0;
	int gone = libs || fp_stacks_lost || r != (long)n;
	maps_unlock();
	if (!gone)
		return;
	fp_maps_resync(0, FP_ORIGIN_RESYNC);
	if (!maps_lock())
		return;
	stacks_prune();
	maps_unlock();
}

/* ---- resync from /proc/self/maps ---- */

struct fp_pvma {
	uint64_t start, end, off, dev, ino;
	int prot, shared;
	const char *path;
	size_t plen;
	unsigned id;
};

struct fp_merge {
	uint32_t out_n, old_n, j;
	uint64_t last_end;
	unsigned last_id; /* pvma id the last scratch entry came from, 0 if old */
	uint32_t dropped;
	int origin;
};

static int pvma_is_file(const struct fp_pvma *v)
{
	return v->ino != 0 || (v->plen && v->path[0] == '/');
}

static int path_eq(const char *tp, const struct fp_pvma *v)
{
	size_t i = 0;
	for (; i < v->plen && i < FP_SHIM_PATH_MAX - 1; i++)
		if (tp[i] != v->path[i])
			return 0;
	return tp[i] == '\0' || i == FP_SHIM_PATH_MAX - 1;
}

static int is_shared_zero(const struct fp_pvma *v)
{
	static const char z[] = "/dev/zero (deleted)";
	return v->shared && v->plen == sizeof(z) - 1 && memcmp(v->path, z, v->plen) == 0;
}

/* Does old table entry o still describe /proc's v at address x? */
static int compatible(const struct fp_shim_map *o, const struct fp_pvma *v, uint64_t x)
{
	if (o->prot != v->prot || !!(o->flags & MAP_SHARED) != v->shared)
		return 0;
	if (!is_file(o)) {
		if (!pvma_is_file(v))
			return path_eq(o->path, v);
		return is_shared_zero(v) && o->path[0] == '\0';
	}
	if (!pvma_is_file(v) || is_shared_zero(v))
		return 0;
	if (o->ino == 0) /* recorded without fstat: the name must not contradict */
		return (o->path[0] == '\0' ||
			fp_same_basename(o->path, fp_strlen(o->path), v->path, v->plen)) &&
		       o->offset + (x - o->start) == v->off + (x - v->start);
	/* inode only: st_dev from fstat and the VMA's device can differ on
	 * stacked filesystems; with equal inode, range and offset it is the file */
	if (o->ino != v->ino)
		return 0;
	return o->offset + (x - o->start) == v->off + (x - v->start);
}

static struct fp_shim_map *emit_slot(struct fp_merge *ms)
{
	if (ms->out_n >= FP_SHIM_MAX_MAPS) {
		ms->dropped++;
		return NULL;
	}
	return &fp_scratch[ms->out_n++];
}

static void emit_proc(struct fp_merge *ms, const struct fp_pvma *v, uint64_t x, uint64_t y,
		      int origin)
{
	if (ms->out_n && ms->last_id == v->id && fp_scratch[ms->out_n - 1].end == x &&
	    fp_scratch[ms->out_n - 1].origin == origin) {
		fp_scratch[ms->out_n - 1].end = y;
		return;
	}
	struct fp_shim_map *m = emit_slot(ms);
	if (!m)
		return;
	int file = pvma_is_file(v);
	m->start = x;
	m->end = y;
	m->offset = file ? v->off + (x - v->start) : 0;
	m->dev = file ? v->dev : 0;
	m->ino = file ? v->ino : 0;
	m->prot = v->prot;
	m->flags = (v->shared ? MAP_SHARED : MAP_PRIVATE) | (file ? 0 : MAP_ANONYMOUS);
	m->origin = (uint8_t)origin;
	m->reserved = 0;
	m->fd = -1;
	size_t n = v->plen < FP_SHIM_PATH_MAX - 1 ? v->plen : FP_SHIM_PATH_MAX - 1;
	memcpy(m->path, v->path, n);
	m->path[n] = '\0';
	m->path_truncated = n < v->plen;
	ms->last_id = v->id;
}

static void emit_old(struct fp_merge *ms, const struct fp_shim_map *o, const struct fp_pvma *v,
		     uint64_t x, uint64_t y)
{
	struct fp_shim_map *m = emit_slot(ms);
	if (!m)
		return;
	*m = *o;
	if (is_file(o))
		m->offset += x - o->start;
	if (is_file(o) && o->ino == 0 && v) {
		m->dev = v->dev; /* learnt from the kernel */
		m->ino = v->ino;
	}
	m->start = x;
	m->end = y;
	ms->last_id = 0;
}

static void merge_vma(struct fp_merge *ms, const struct fp_pvma *v)
{
	uint64_t x = v->start, e = v->end;
	const uint64_t ss = FP_T->shim_start, se = FP_T->shim_end;
	if (x < ms->last_end)
		x = ms->last_end; /* the kernel's listing moved under our chunked reads */
	while (x < e) {
		uint64_t y;
		if (x >= ss && x < se) {
			y = e < se ? e : se;
			emit_proc(ms, v, x, y, FP_ORIGIN_SHIM);
			x = y;
			continue;
		}
		uint64_t lim = (x < ss && ss < e) ? ss : e;
		while (ms->j < ms->old_n && E(ms->j)->end <= x)
			ms->j++;
		if (ms->j < ms->old_n && E(ms->j)->start <= x) {
			const struct fp_shim_map *o = E(ms->j);
			y = o->end < lim ? o->end : lim;
			if (o->origin != FP_ORIGIN_SHIM && compatible(o, v, x))
				emit_old(ms, o, v, x, y);
			else
				emit_proc(ms, v, x, y, ms->origin);
		} else {
			y = lim;
			if (ms->j < ms->old_n && E(ms->j)->start < y)
				y = E(ms->j)->start;
			emit_proc(ms, v, x, y, ms->origin);
		}
		x = y;
	}
	if (e > ms->last_end)
		ms->last_end = e;
}

static const char *parse_hex(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int any = 0;
	for (; p < end; p++) {
		unsigned c = (unsigned char)*p, d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		v = v * 16 + d;
		any = 1;
	}
	*out = v;
	return any ? p : NULL;
}

static const char *parse_dec(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int any = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++, any = 1)
		v = v * 10 + (uint64_t)(*p - '0');
	*out = v;
	return any ? p : NULL;
}

/* "start-end perms offset maj:min inode   path" */
static int parse_line(const char *p, const char *end, struct fp_pvma *v)
{
	uint64_t maj, min;
	if (!(p = parse_hex(p, end, &v->start)) || p >= end || *p++ != '-')
		return 0;
	if (!(p = parse_hex(p, end, &v->end)) || end - p < 6 || *p++ != ' ')
		return 0;
	v->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	v->shared = p[3] == 's';
	p += 4;
	if (p >= end || *p++ != ' ' || !(p = parse_hex(p, end, &v->off)))
		return 0;
	if (p >= end || *p++ != ' ' || !(p = parse_hex(p, end, &maj)))
		return 0;
	if (p >= end || *p++ != ':' || !(p = parse_hex(p, end, &min)))
		return 0;
	if (p >= end || *p++ != ' ' || !(p = parse_dec(p, end, &v->ino)))
		return 0;
	while (p < end && *p == ' ')
		p++;
	v->dev = ((maj & 0xfffff000ULL) << 32) | ((maj & 0xfffULL) << 8) |
		 ((min & 0xffffff00ULL) << 12) | (min & 0xffULL);
	v->path = p;
	v->plen = (size_t)(end - p);
	return v->end > v->start;
}

FP_HIDDEN void fp_maps_resync(int full, int origin)
{
	if (!maps_lock())
		return;
	int fd = fp_shim_open("/proc/self/maps", O_RDONLY);
	if (fd < 0) {
		maps_unlock();
		return;
	}
	struct fp_merge ms = {0, full ? 0 : N, 0, 0, 0, 0, origin};
	size_t have = 0;
	unsigned id = 0;
	int eof = 0;
	while (!eof) {
		long r = fp_sys3(SYS_read, fd, fp_maps_buf + have, sizeof(fp_maps_buf) - have);
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			eof = 1;
			if (have == 0 || have == sizeof(fp_maps_buf))
				break;
			fp_maps_buf[have++] = '\n'; /* last line without newline */
		} else {
			have += (size_t)r;
		}
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (fp_maps_buf[i] != '\n')
				continue;
			struct fp_pvma v;
			if (parse_line(fp_maps_buf + start, fp_maps_buf + i, &v)) {
				v.id = ++id;
				merge_vma(&ms, &v);
			}
			start = i + 1;
		}
		if (start == 0 && have == sizeof(fp_maps_buf))
			start = have; /* a line longer than the buffer: skip it */
		memmove(fp_maps_buf, fp_maps_buf + start, have - start);
		have -= start;
	}
	fp_shim_close(fd);
	if (id > 0) {
		memcpy(FP_T->maps, fp_scratch, ms.out_n * sizeof(fp_scratch[0]));
		N = ms.out_n;
		LO = ms.out_n;
		FP_T->map_overflow = ms.dropped;
		FP_T->resyncs++;
		fp_maplog_add(FP_ML_DOUBT, 0, 0, 0, 0);
	}
	maps_unlock();
}
