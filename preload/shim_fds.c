/* The fd slots.
 *
 * Each slot has its own seqlock. A writer makes seq odd with a compare-and-swap
 * (so two writers of one slot exclude each other), writes, and makes it even
 * again. The reader outside the process only ever sees a slot whose seq is even
 * and unchanged across its copy. No signals are blocked here (it would cost two
 * system calls per open/close): if a signal handler interrupts a slot write (or
 * a hold across a system call, shim_internal.h) and writes the same slot, it
 * notices through fp_slot_held that its own thread holds the slot and writes
 * without waiting, instead of deadlocking.
 *
 * A wrapper makes no system call of its own: it records the path as the
 * program named it, the flags it asked for, that the fd is the program's, and
 * the type when it knows it (eventfd() made an eventfd). Identity (dev/ino)
 * and the type of a file from open() are left 0/UNKNOWN: /proc/PID/fd gives
 * them back at any time, and the checker matches the name instead. Only the
 * slow paths (seeding from /proc at start and after fork, an fd the table did
 * not know being dup'ed, SCM_RIGHTS) fstat, and they learn the identity. */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>

#include "shim_fdtype.h"
#include "shim_internal.h"

/* fd + 1 of the slots this thread holds: two while a dup2/dup3 holds both of
 * its fds, one otherwise. */
static FP_TLS int fp_slot_held[2];
/* What a change no slot takes is written to (see give_up). */
static FP_TLS struct fp_shim_fd fp_slot_void;

static inline __attribute__((always_inline)) int held_here(int fd)
{
	return fp_slot_held[0] == fd + 1 || fp_slot_held[1] == fd + 1;
}

/* Whether this thread holds a slot other than may_hold (fd + 1, or 0). A
 * wrapper never starts a hold while it holds one, but for dup2/dup3's
 * second fd (taken in fd order, after the first): a thread that does is a
 * signal handler on top of its thread's hold. */
static inline __attribute__((always_inline)) int holds_other(int may_hold)
{
	return (fp_slot_held[0] && fp_slot_held[0] != may_hold) || (fp_slot_held[1] && fp_slot_held[1] != may_hold);
}

/* A signal handler must not wait for another thread's slot while its own
 * thread holds one: that thread may be waiting for ours (its dup2 holds its
 * first fd and waits for ours as its second, or its own handler waits for
 * ours), and neither would ever go on. Its change is written nowhere and
 * counted instead: the table no longer knows its fds, and the readers go
 * to /proc for every fd (helper/dump/shim_reader.c). */
static void give_up(struct fp_fd_hold *c)
{
	memset(&fp_slot_void, 0, sizeof(fp_slot_void));
	c->s = &fp_slot_void;
	c->nested = 1; /* no release */
	__atomic_fetch_add(&FP_T->fd_unrecorded, 1, __ATOMIC_RELAXED);
}

static inline __attribute__((always_inline)) void slot_take(int fd, struct fp_fd_hold *c, int may_hold)
{
	struct fp_shim_fd *s = &FP_T->fds[fd];
	c->s = s;
	c->nested = 0;
	c->idx = -1;
	for (unsigned spins = 0;; spins++) {
		uint32_t v = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		if (!(v & 1)) {
			if (__atomic_compare_exchange_n(&s->seq, &v, v + 1, 0, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				break;
			continue;
		}
		if (held_here(fd)) {
			/* a handler on top of our own held slot */
			c->nested = 1;
			return;
		}
		if (holds_other(may_hold)) {
			give_up(c);
			return;
		}
		if (spins > 1000)
			fp_sys0(SYS_sched_yield);
		else
			fp_cpu_relax();
	}
	c->idx = !fp_slot_held[0] ? 0 : !fp_slot_held[1] ? 1 : -1;
	if (c->idx >= 0)
		fp_slot_held[c->idx] = fd + 1;
}

static inline __attribute__((always_inline)) void slot_begin(int fd, struct fp_fd_hold *c)
{
	slot_take(fd, c, 0);
}

static inline __attribute__((always_inline)) void slot_end(struct fp_fd_hold *c)
{
	if (c->nested)
		return;
	uint32_t v = __atomic_load_n(&c->s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&c->s->seq, v + 1, __ATOMIC_RELEASE);
	if (c->idx >= 0)
		fp_slot_held[c->idx] = 0;
}

/* copy(s, arg) of fd's slot, again until no writer changed the slot during
 * it. 1: copied, and the slot is in use; 0: not in use, or it never became
 * stable (a writer stuck in a stopped thread, or this thread's own write
 * interrupted by a signal handler): the caller treats it as unknown.
 * Inlined with each copy, which takes only the fields its caller needs. */
static inline __attribute__((always_inline)) int
slot_stable(int fd, void (*copy)(const struct fp_shim_fd *s, void *arg), void *arg)
{
	const struct fp_shim_fd *s = &FP_T->fds[fd];
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t v1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (v1 & 1) {
			if (held_here(fd))
				return 0;
			fp_cpu_relax();
			continue;
		}
		int used = s->used;
		copy(s, arg);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == v1)
			return used;
	}
	return 0;
}

static void copy_whole(const struct fp_shim_fd *s, void *out)
{
	memcpy(out, (const void *)s, sizeof(*s));
}

/* A consistent copy of a slot in use (the slow paths). */
static int slot_read(int fd, struct fp_shim_fd *out)
{
	return slot_stable(fd, copy_whole, out);
}

/* Eight bytes at a time: a byte loop cost about 8 instructions per byte of
 * every path a program opens. The source is read in aligned words once it is
 * aligned, and an aligned word never crosses into the next page, so the bytes
 * read past the NUL are always readable (they are not copied). */
FP_HIDDEN void fp_copy_path(char *dst, const char *src, uint8_t *truncated)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t i = 0;
	if (src) {
		for (; ((uintptr_t)(src + i) & 7) && src[i] && i < FP_SHIM_PATH_MAX - 1; i++)
			dst[i] = src[i];
		if (!((uintptr_t)(src + i) & 7))
			for (; i + 8 <= FP_SHIM_PATH_MAX - 1; i += 8) {
				uint64_t w;
				__builtin_memcpy(&w, src + i, 8);
				uint64_t nul = (w - ones) & ~w & highs;
				if (nul) { /* the lowest flagged byte is the first NUL */
					unsigned at = (unsigned)__builtin_ctzll(nul) / 8;
					w &= at ? ~0ULL >> (64 - 8 * at) : 0;
					__builtin_memcpy(dst + i, &w, 8);
					if (truncated)
						*truncated = 0;
					return;
				}
				__builtin_memcpy(dst + i, &w, 8);
			}
		for (; src[i] && i < FP_SHIM_PATH_MAX - 1; i++)
			dst[i] = src[i];
	}
	dst[i] = '\0';
	if (truncated)
		*truncated = src && src[i] != '\0';
}

static void hwm_raise(int fd)
{
	uint32_t want = (uint32_t)fd + 1;
	uint32_t cur = __atomic_load_n(&FP_T->fd_hwm, __ATOMIC_RELAXED);
	while (cur < want &&
	       !__atomic_compare_exchange_n(&FP_T->fd_hwm, &cur, want, 0, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
}

static void slot_fill(struct fp_shim_fd *s, const char *path, int open_flags, int fd_flags,
		      int type, int origin, uint64_t dev, uint64_t ino)
{
	s->used = 1;
	s->type = (uint8_t)type;
	s->origin = (uint8_t)origin;
	s->fd_flags = fd_flags;
	s->open_flags = open_flags;
	s->dev = dev;
	s->ino = ino;
	fp_copy_path(s->path, path, &s->path_truncated);
}

static void slot_write(int fd, const char *path, int open_flags, int fd_flags, int type,
		       int origin, uint64_t dev, uint64_t ino)
{
	hwm_raise(fd);
	struct fp_fd_hold c;
	slot_begin(fd, &c);
	slot_fill(c.s, path, open_flags, fd_flags, type, origin, dev, ino);
	slot_end(&c);
}

static int fd_in_table(int fd)
{
	if (fd < 0)
		return 0;
	if (fd >= FP_SHIM_MAX_FDS) {
		__atomic_fetch_add(&FP_T->fd_overflow, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return 1;
}

FP_HIDDEN void fp_fd_proc_path(int fd, char p[32])
{
	memcpy(p, "/proc/self/fd/", 14);
	char num[12];
	int n = 0, i = 14;
	unsigned u = (unsigned)fd;
	do
		num[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	while (n)
		p[i++] = num[--n];
	p[i] = '\0';
}

static long fd_readlink(int fd, char *buf, size_t len)
{
	char p[32];
	fp_fd_proc_path(fd, p);
	long r = fp_sys4(SYS_readlinkat, AT_FDCWD, p, buf, len - 1);
	if (fp_sys_failed(r))
		r = 0;
	buf[r] = '\0';
	return r;
}

/* What the kernel cannot give back later is recorded: the path as the program
 * named it, the flags it asked for, and that the fd is the program's own. The
 * type is recorded when the wrapper knows it (pipe(), socket(), eventfd()...);
 * identity (dev/ino) and the type of a file from open() are the kernel's to
 * tell (/proc/PID/fd, fdinfo), so a wrapper makes no fstat for them. */
FP_HIDDEN void fp_fd_record(int fd, const char *path, int open_flags, int fd_flags, int type,
			    int origin)
{
	if (!fd_in_table(fd))
		return;
	if (type == FP_FD_UNKNOWN && (open_flags & O_DIRECTORY) &&
	    (open_flags & O_TMPFILE) != O_TMPFILE)
		type = FP_FD_DIR;
	slot_write(fd, path, open_flags, fd_flags, type, origin, 0, 0);
}

/* The full description from fstat (and the /proc link for anon inodes), for
 * seeding and the slow paths. link: the fd's /proc link if the caller has it. */
static void stat_fill(struct fp_shim_fd *s, int fd, const char *path, int open_flags,
		      int fd_flags, int origin, const char *link)
{
	struct stat st;
	uint64_t dev = 0, ino = 0;
	int type = FP_FD_UNKNOWN;
	if (!fp_sys_failed(fp_sys2(SYS_fstat, fd, &st))) {
		dev = st.st_dev;
		ino = st.st_ino;
		char lbuf[FP_SHIM_PATH_MAX];
		if (!link && (st.st_mode & S_IFMT) == 0) {
			fd_readlink(fd, lbuf, sizeof(lbuf));
			link = lbuf;
		}
		type = fp_fdtype_classify(st.st_mode, link, dev, fp_pipefs_dev);
	}
	slot_fill(s, path, open_flags, fd_flags, type, origin, dev, ino);
}

static void record_stat(int fd, const char *path, int open_flags, int fd_flags, int origin,
			const char *link)
{
	if (!fd_in_table(fd))
		return;
	hwm_raise(fd);
	struct fp_fd_hold c;
	slot_begin(fd, &c);
	stat_fill(c.s, fd, path, open_flags, fd_flags, origin, link);
	slot_end(&c);
}

/* An fd the table did not know, described from the kernel (made behind the
 * table's back, or copied from such an fd). */
static void describe_from_kernel(struct fp_shim_fd *s, int fd, int fd_flags)
{
	long fl = fp_sys3(SYS_fcntl, fd, F_GETFL, 0);
	stat_fill(s, fd, NULL, fp_sys_failed(fl) ? 0 : (int)fl, fd_flags, FP_ORIGIN_PROGRAM, NULL);
}

FP_HIDDEN int fp_fd_hold(int fd, struct fp_fd_hold *h)
{
	/* not taken: the held operations and the release do nothing */
	h->s = NULL;
	h->nested = 1;
	if (fd < 0 || fd >= FP_SHIM_MAX_FDS)
		return 0;
	slot_begin(fd, h);
	return 1;
}

FP_HIDDEN int fp_fd_hold_after(int fd, const struct fp_fd_hold *first, struct fp_fd_hold *h)
{
	h->s = NULL;
	h->nested = 1;
	if (fd < 0 || fd >= FP_SHIM_MAX_FDS)
		return 0;
	slot_take(fd, h, first->idx >= 0 ? fp_slot_held[first->idx] : 0);
	return 1;
}

FP_HIDDEN void fp_fd_release(struct fp_fd_hold *h)
{
	slot_end(h);
}

FP_HIDDEN void fp_fd_release_cb(void *h)
{
	slot_end(h);
}

static void slot_clear(struct fp_shim_fd *s)
{
	s->used = 0;
	s->type = FP_FD_UNKNOWN;
	s->origin = FP_ORIGIN_NONE;
	s->path[0] = '\0';
	s->dev = s->ino = 0;
}

FP_HIDDEN void fp_fd_forget_held(struct fp_fd_hold *h)
{
	if (h->s)
		slot_clear(h->s);
}

FP_HIDDEN void fp_fd_forget(int fd)
{
	if (fd < 0 || fd >= FP_SHIM_MAX_FDS)
		return;
	struct fp_shim_fd *s = &FP_T->fds[fd];
	if (!__atomic_load_n(&s->used, __ATOMIC_RELAXED) &&
	    !(__atomic_load_n(&s->seq, __ATOMIC_RELAXED) & 1))
		return;
	struct fp_fd_hold c;
	slot_begin(fd, &c);
	slot_clear(s);
	slot_end(&c);
}

/* [first, last] cut to the fds the table has seen; false if none. */
static int range_seen(unsigned first, unsigned *last)
{
	uint32_t hwm = __atomic_load_n(&FP_T->fd_hwm, __ATOMIC_ACQUIRE);
	if (hwm == 0 || first >= hwm)
		return 0;
	if (*last >= hwm)
		*last = hwm - 1;
	return 1;
}

FP_HIDDEN void fp_fd_forget_range(unsigned first, unsigned last)
{
	if (!range_seen(first, &last))
		return;
	for (unsigned fd = first; fd <= last; fd++)
		fp_fd_forget((int)fd);
}

FP_HIDDEN void fp_fd_cloexec_range(unsigned first, unsigned last)
{
	if (!range_seen(first, &last))
		return;
	for (unsigned fd = first; fd <= last; fd++)
		if (__atomic_load_n(&FP_T->fds[fd].used, __ATOMIC_RELAXED))
			fp_fd_set_fdflags((int)fd, FD_CLOEXEC);
}

/* What a dup takes from the old fd's slot, straight into the new fd's slot
 * (which the caller holds): not a copy of the whole slot on the stack first,
 * which cost a 296-byte memcpy and a second copy of the path per dup. */
static void copy_for_dup(const struct fp_shim_fd *o, void *arg)
{
	struct fp_shim_fd *d = arg;
	d->type = o->type;
	d->open_flags = o->open_flags;
	d->dev = o->dev;
	d->ino = o->ino;
	d->path_truncated = o->path_truncated;
	fp_copy_path(d->path, o->path, NULL);
}

static void dup_fill(struct fp_shim_fd *d, const struct fp_shim_fd *o, int newfd, int fd_flags)
{
	if (o && o->used) {
		copy_for_dup(o, d);
		d->used = 1;
		d->origin = FP_ORIGIN_PROGRAM;
		d->fd_flags = fd_flags;
	} else {
		describe_from_kernel(d, newfd, fd_flags);
	}
}

/* The new fd shares the old one's open file: same path, flags and identity.
 * Only an fd the table does not know (made behind its back) costs system
 * calls, to describe it from scratch. */
FP_HIDDEN void fp_fd_dup_held(const struct fp_fd_hold *old, struct fp_fd_hold *nw, int newfd,
			      int fd_flags)
{
	if (nw->s) {
		hwm_raise(newfd);
		dup_fill(nw->s, old->s, newfd, fd_flags);
	}
}

FP_HIDDEN int fp_fd_take_copy(struct fp_fd_hold *h, struct fp_shim_fd *out)
{
	int known = h->s && h->s->used;
	if (known) {
		copy_for_dup(h->s, out);
		out->used = 1;
	}
	slot_end(h);
	return known;
}

FP_HIDDEN void fp_fd_dup_copied(const struct fp_shim_fd *copy, int newfd, int fd_flags)
{
	if (!fd_in_table(newfd))
		return;
	hwm_raise(newfd);
	struct fp_fd_hold c;
	slot_begin(newfd, &c);
	dup_fill(c.s, copy, newfd, fd_flags);
	slot_end(&c);
}

FP_HIDDEN void fp_fd_set_fdflags_held(struct fp_fd_hold *h, int fd_flags)
{
	if (h->s && h->s->used)
		h->s->fd_flags = fd_flags;
}

FP_HIDDEN void fp_fd_set_status_held(struct fp_fd_hold *h, int status_flags)
{
	/* the bits F_SETFL can change */
	const int mask = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;
	if (h->s && h->s->used)
		h->s->open_flags = (h->s->open_flags & ~mask) | (status_flags & mask);
}

FP_HIDDEN void fp_fd_set_fdflags(int fd, int fd_flags)
{
	if (fd < 0 || fd >= FP_SHIM_MAX_FDS || !__atomic_load_n(&FP_T->fds[fd].used, __ATOMIC_RELAXED))
		return;
	struct fp_fd_hold c;
	slot_begin(fd, &c);
	fp_fd_set_fdflags_held(&c, fd_flags);
	slot_end(&c);
}

struct describe_out {
	char *path;
	uint64_t *dev, *ino;
	int *truncated;
};

static void copy_for_describe(const struct fp_shim_fd *s, void *arg)
{
	struct describe_out *o = arg;
	*o->dev = s->dev;
	*o->ino = s->ino;
	*o->truncated = s->path_truncated;
	fp_copy_path(o->path, s->path, NULL);
}

FP_HIDDEN void fp_fd_describe(int fd, char path[FP_SHIM_PATH_MAX], uint64_t *dev, uint64_t *ino,
			      int *truncated)
{
	/* the fields wanted, straight from the slot (not a copy of the whole
	 * slot first) */
	struct describe_out o = { path, dev, ino, truncated };
	if (fd >= 0 && fd < FP_SHIM_MAX_FDS && slot_stable(fd, copy_for_describe, &o))
		return;
	path[0] = '\0';
	*dev = *ino = 0;
	*truncated = 0;
}

FP_HIDDEN int fp_shim_open(const char *path, int flags)
{
	long fd = fp_sys4(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0);
	if (fp_sys_failed(fd))
		return -1;
	if (fd < FP_SHIM_MAX_FDS)
		slot_write((int)fd, path, flags | O_CLOEXEC, FD_CLOEXEC,
			   (flags & O_DIRECTORY) ? FP_FD_DIR : FP_FD_REG, FP_ORIGIN_SHIM, 0, 0);
	return (int)fd;
}

FP_HIDDEN void fp_shim_close(int fd)
{
	fp_fd_forget(fd);
	fp_sys1(SYS_close, fd);
}

/* ---- seeding from /proc/self/fd ---- */

static uint64_t fp_seen[FP_SHIM_MAX_FDS / 64]; /* only used single-threaded */

static int parse_fd_name(const char *s)
{
	int v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Does the slot still describe the open file? By identity when the slot
 * has one, else (a wrapper recorded it without fstat) by name or type. */
static int slot_matches(const struct fp_shim_fd *cur, const struct stat *st, const char *link)
{
	if (cur->ino)
		return cur->dev == (uint64_t)st->st_dev && cur->ino == (uint64_t)st->st_ino;
	if (cur->path[0])
		return fp_same_basename(cur->path, fp_strlen(cur->path), link, fp_strlen(link));
	int t = fp_fdtype_classify(st->st_mode, link, st->st_dev, fp_pipefs_dev);
	return cur->type == FP_FD_UNKNOWN || cur->type == t;
}

static void seed_one(int fd, int reconcile)
{
	char link[FP_SHIM_PATH_MAX];
	struct stat st;
	if (fp_sys_failed(fp_sys2(SYS_fstat, fd, &st)))
		return;
	fd_readlink(fd, link, sizeof(link));
	if (reconcile) {
		struct fp_shim_fd cur;
		if (slot_read(fd, &cur) && slot_matches(&cur, &st, link)) {
			long fdfl = fp_sys3(SYS_fcntl, fd, F_GETFD, 0);
			int fdflags = fp_sys_failed(fdfl) ? cur.fd_flags : (int)(fdfl & FD_CLOEXEC);
			/* keep what the program said; learn the identity */
			slot_write(fd, cur.path, cur.open_flags, fdflags, cur.type, cur.origin,
				   (uint64_t)st.st_dev, (uint64_t)st.st_ino);
			return;
		}
	}
	long fl = fp_sys3(SYS_fcntl, fd, F_GETFL, 0);
	long fdfl = fp_sys3(SYS_fcntl, fd, F_GETFD, 0);
	record_stat(fd, link, fp_sys_failed(fl) ? 0 : (int)fl,
		    fp_sys_failed(fdfl) ? 0 : (int)(fdfl & FD_CLOEXEC),
		    reconcile ? FP_ORIGIN_RESYNC : FP_ORIGIN_INHERITED, link);
}

FP_HIDDEN void fp_fd_seed(int reconcile)
{
	uint32_t hwm = __atomic_load_n(&FP_T->fd_hwm, __ATOMIC_ACQUIRE);
	if (reconcile) {
		/* a slot left odd by a thread of the parent that was writing it */
		for (uint32_t fd = 0; fd < hwm; fd++) {
			struct fp_shim_fd *s = &FP_T->fds[fd];
			uint32_t v = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
			if (v & 1) {
				s->used = 0;
				__atomic_store_n(&s->seq, v + 1, __ATOMIC_RELEASE);
			}
		}
		/* The shim's own short-lived fds belong to operations of parent
		 * threads that do not exist here: close the inherited copies. */
		for (uint32_t fd = 0; fd < hwm; fd++)
			if (FP_T->fds[fd].used && FP_T->fds[fd].origin == FP_ORIGIN_SHIM)
				fp_shim_close((int)fd);
		memset(fp_seen, 0, sizeof(fp_seen));
	}
	int dfd = fp_shim_open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return;
	char buf[4096] __attribute__((aligned(8)));
	for (;;) {
		long n = fp_sys3(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct fp_dirent64 *d = (struct fp_dirent64 *)(buf + off);
			off += d->d_reclen;
			int fd = parse_fd_name(d->d_name);
			if (fd < 0 || fd == dfd)
				continue;
			if (fd < FP_SHIM_MAX_FDS)
				fp_seen[fd / 64] |= 1ULL << (fd % 64);
			seed_one(fd, reconcile);
		}
	}
	fp_shim_close(dfd);
	if (reconcile) {
		hwm = __atomic_load_n(&FP_T->fd_hwm, __ATOMIC_ACQUIRE);
		for (uint32_t fd = 0; fd < hwm; fd++)
			if (FP_T->fds[fd].used && (int)fd != dfd &&
			    !(fp_seen[fd / 64] & (1ULL << (fd % 64))))
				fp_fd_forget((int)fd);
	}
}
