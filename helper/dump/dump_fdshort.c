/* The shim's fd table as a shortcut at the stop (issue 16), with /proc as
 * the check.
 *
 * The look before the stop reads every fd from /proc (link, stat, fdinfo).
 * What the stop must add is what may have changed since. Every wrapped
 * call that touches an fd writes its slot, and every write adds 2 to the
 * slot's seq (shim_table.h). So an fd whose seq read before the look's
 * /proc reads is the one read while stopped was changed by no wrapper in
 * between: the look's reading holds, but for what moves without a wrapped
 * call. For a regular file that is its offset (read, write): the look took
 * a copy of the fd (pidfd_getfd, the same open file description), and the
 * stop reads the offset through it with one lseek(SEEK_CUR) instead of the
 * fdinfo text. /dev/null, /dev/zero, /dev/full, /dev/random and
 * /dev/urandom have no offset that anything moves: nothing is read. Locks
 * are not in the table: an fd with a lock at the stop is read from fdinfo.
 * Which fds have one: for a few fds, each one's fdinfo "lock:" lines; for
 * many, /proc/locks, whose read waits for an RCU grace period (up to 20 ms
 * here) when nothing read it in the last ~10 ms: see few_fds. Everything
 * else is read from fdinfo as before.
 *
 * The table is never trusted blindly:
 *  - an fd is offered to the shortcut only when the table agreed with /proc
 *    at the look (the slot in use, the program's, the same close-on-exec,
 *    the same file by identity or name) and its copy is the same inode;
 *  - after the resume, every fd taken by the shortcut is checked against
 *    /proc: its copy is still its open file description (kcmp) and fdinfo
 *    shows the inode and flags the look saw; or, where the BPF fd
 *    iterators are loaded, by the kernel's own records: the fd's
 *    description is its copy's (the same struct file, whose mount and
 *    inode the look checked through the copy with statx) and its status
 *    flags and close-on-exec bit are the look's. A difference means the fd
 *    changed behind the table's back (a raw system call) around the stop, or
 *    right after it: the dump says so (dump.log, shim_disagree when the
 *    table still claims no change) and is done again from /proc alone.
 * The images are the same as without the shim: the shortcut only replaces
 * one read of the same fact by a cheaper one. */
#include "dump/dump_int.h"
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump/shim_reader.h"
#include "fp_fault_pause.h"

enum { FS_NONE = 0, FS_OFFERED, FS_TAKEN };

struct short_fd {
	uint8_t state;
	int pin;      /* copy of the fd (regular files), -1 if none */
	int mnt_id;
	uint32_t flags; /* fdinfo flags at the look, with O_CLOEXEC */
	uint64_t ino;
	dev_t dev;    /* st_dev, for the shared-memory files found at the stop */
	uint64_t pos; /* the look's (files without an offset) */
	bool reg;     /* a regular file: its offset is read at the stop */
	bool pin_mnt; /* the copy's mount is the look's (statx): the check after
			 the resume may compare descriptions by the kernel's
			 addresses (dump_fdfiles_bpf) instead of fdinfo */
	/* the look's (they live until the dump ends), for dump_fdcarry.c */
	const char *link;
	const struct stat *st;
};

/* One process's. */
struct dump_fdshort {
	pid_t pid;
	int pidfd;
	uint64_t addr; /* the table in the target */
	uint32_t n;    /* slots followed: fds [0, n) */
	uint32_t *seq_look, *seq_stop;
	struct short_fd *fd;
	size_t offered, taken;
	bool verified; /* the taken fds agreed with /proc after the resume */
};

/* Every process's, and the locks of the system at the stop (one read
 * serves the whole tree: it is stopped at once). */
struct dump_fdshorts {
	struct dump_fdshort **p;
	size_t n;
	uint64_t *locked; /* inodes with locks at the stop, sorted */
	size_t nlocked;
	pthread_t locks_th; /* reading them, from the stop on: dump_fdshort_locks */
	bool locks_reading, locks_read;
};

static struct dump_fdshort *of(const struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; c->fdshort && i < c->fdshort->n; i++)
		if (c->fdshort->p[i]->pid == pid)
			return c->fdshort->p[i];
	return NULL;
}

/* The seq of fds [0, n): odd (never equal to a read one) where unreadable.
 * The slots are copied whole, in runs: one remote range per run costs far
 * less than one per slot. */
static void read_seqs(struct dump_fdshort *s, uint32_t *out)
{
	enum { RUN = 512 };
	struct fp_shim_fd *buf = malloc(RUN * sizeof(*buf));
	for (uint32_t at = 0; at < s->n; at += RUN) {
		uint32_t k = s->n - at < RUN ? s->n - at : RUN;
		uint64_t a = s->addr + offsetof(struct fp_shim_table, fds) + (uint64_t)at * sizeof(struct fp_shim_fd);
		struct iovec local = { buf, k * sizeof(*buf) }, remote = { (void *)(uintptr_t)a, k * sizeof(*buf) };
		ssize_t r = buf ? process_vm_readv(s->pid, &local, 1, &remote, 1, 0) : -1;
		uint32_t got = r > 0 ? (uint32_t)((size_t)r / sizeof(*buf)) : 0;
		for (uint32_t i = 0; i < k; i++)
			out[at + i] = i < got ? buf[i].seq : 1;
	}
	free(buf);
}

static void free_one(struct dump_fdshort *s)
{
	for (uint32_t i = 0; s->fd && i < s->n; i++)
		if (s->fd[i].pin >= 0)
			close(s->fd[i].pin);
	if (s->pidfd >= 0)
		close(s->pidfd);
	free(s->seq_look);
	free(s->seq_stop);
	free(s->fd);
	free(s);
}

/* pid's state gone (a second look of it starts over) */
static void drop(struct dump_ctx *c, pid_t pid)
{
	struct dump_fdshorts *h = c->fdshort;
	for (size_t i = 0; h && i < h->n; i++)
		if (h->p[i]->pid == pid) {
			free_one(h->p[i]);
			h->p[i] = h->p[--h->n];
			return;
		}
}

void dump_fdshort_free(struct dump_ctx *c)
{
	struct dump_fdshorts *h = c->fdshort;
	if (!h)
		return;
	if (h->locks_reading)
		pthread_join(h->locks_th, NULL);
	for (size_t i = 0; i < h->n; i++)
		free_one(h->p[i]);
	free(h->p);
	free(h->locked);
	free(h);
	c->fdshort = NULL;
}

void dump_fdshort_begin(struct dump_ctx *c, pid_t pid, int maxfd)
{
	/* A caller's work while stopped (a workspace's freeze) re-points fds
	 * behind the table, and must find no copy of a writable file of its
	 * mount in the dumper: every fd is read at the stop then. */
	drop(c, pid); /* a second look (dump_fdcarry.c gave up) */
	if (getenv("FORKPOINT_NO_FD_SHORTCUT") || maxfd < 0 || c->o->while_stopped)
		return;
	uint64_t addr;
	fp_error le;
	if (fp_shim_locate(pid, &addr, NULL, 0, &le) != 1)
		return;
	if (!c->fdshort && !(c->fdshort = calloc(1, sizeof(*c->fdshort))))
		return;
	struct dump_fdshorts *h = c->fdshort;
	struct dump_fdshort **more = realloc(h->p, (h->n + 1) * sizeof(*more));
	if (!more)
		return;
	h->p = more;
	struct dump_fdshort *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->pid = pid;
	s->addr = addr;
	s->n = (uint32_t)maxfd + 1 < FP_SHIM_MAX_FDS ? (uint32_t)maxfd + 1 : FP_SHIM_MAX_FDS;
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	s->seq_look = malloc(s->n * sizeof(uint32_t));
	s->seq_stop = malloc(s->n * sizeof(uint32_t));
	s->fd = calloc(s->n, sizeof(*s->fd));
	for (uint32_t i = 0; s->fd && i < s->n; i++)
		s->fd[i].pin = -1;
	if (s->pidfd < 0 || !s->seq_look || !s->seq_stop || !s->fd) {
		free_one(s);
		return;
	}
	read_seqs(s, s->seq_look);
	h->p[h->n++] = s;
}

/* FORKPOINT_FAULT=dump-pause-after-look (tests): after the look, before
 * the stop, the dumper creates DIR/dump-pause-after-look.paused beside the
 * snapshot and waits (60 s at most) for ….go, so a test can change an fd
 * behind the table's back in that very window. Every dump, not once: it
 * fails nothing, and a dump done again has no look. */
void dump_fdshort_fault_pause(const struct dump_ctx *c)
{
	if (!c->o->dir)
		return;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", c->o->dir);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	fp_fault_pause("dump-pause-after-look", dir);
}

static bool same_name(const char *a, const char *b)
{
	const char *x = strrchr(a, '/'), *y = strrchr(b, '/');
	x = x ? x + 1 : a;
	y = y ? y + 1 : b;
	return !strcmp(x, y);
}

/* Devices whose offset nothing moves (mem major 1). */
bool dump_fd_fixed_chr(const struct stat *st)
{
	unsigned mi = minor(st->st_rdev);
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && (mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9);
}

/* The table's slot agrees with what /proc said at the look. */
static bool table_agrees(const struct fp_shim_fd *t, uint32_t seq, const struct stat *st, const char *link,
			 uint32_t flags)
{
	if (t->seq != seq || !t->used || (t->origin != FP_ORIGIN_PROGRAM && t->origin != FP_ORIGIN_INHERITED &&
					  t->origin != FP_ORIGIN_RESYNC))
		return false;
	if (((t->fd_flags & FD_CLOEXEC) != 0) != ((flags & O_CLOEXEC) != 0))
		return false;
	if (t->ino)
		return t->dev == (uint64_t)st->st_dev && t->ino == (uint64_t)st->st_ino;
	return t->path[0] && !t->path_truncated && same_name(t->path, link);
}

int dump_fdshort_offer(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st, const char *link,
		       const struct dump_fd_seen *sn, bool may_pin)
{
	struct dump_fdshort *s = of(c, pid);
	const struct fp_shim_copy *cp = dump_shim_fds_of(c, pid);
	const struct fp_shim_table *t = cp ? cp->t : NULL;
	if (!s || !t || cp->addr != s->addr || fd < 0 || (uint32_t)fd >= s->n || (uint32_t)fd >= t->fd_hwm ||
	    (s->seq_look[fd] & 1) || link[0] != '/' || !strncmp(link, "/proc/", 6) || strstr(link, " (deleted)") ||
	    !strncmp(link, "/memfd:", 7) || !table_agrees(&t->fds[fd], s->seq_look[fd], st, link, sn->flags))
		return 0;
	struct short_fd *f = &s->fd[fd];
	bool reg = S_ISREG(st->st_mode);
	if ((!reg && !dump_fd_fixed_chr(st)) || (reg && !may_pin))
		return 0;
	/* A device without an offset needs no copy, but one lets the fds
	 * that may share a description be told apart after the resume
	 * (dump_fdscan.c's pinned_before), and checked by kcmp. */
	f->pin_mnt = false;
	if (may_pin) {
		struct statx px;
		f->pin = (int)syscall(SYS_pidfd_getfd, s->pidfd, fd, 0);
		if (f->pin >= 0 && (statx(f->pin, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &px) ||
				    makedev(px.stx_dev_major, px.stx_dev_minor) != st->st_dev || px.stx_ino != st->st_ino)) {
			close(f->pin);
			f->pin = -1;
		}
		f->pin_mnt = f->pin >= 0 && (px.stx_mask & STATX_MNT_ID) && px.stx_mnt_id == (uint64_t)sn->mnt_id;
	}
	if (reg && f->pin < 0)
		return 0;
	/* The status flags of the description move without a wrapped call
	 * too (a raw fcntl, another process sharing it): read through the
	 * copy, the look's (or the carried) flags may be older. A change
	 * between here and the stop is found by the check after the resume. */
	int fl = f->pin >= 0 ? fcntl(f->pin, F_GETFL) : -1;
	uint32_t flags = fl >= 0 ? (uint32_t)fl | (sn->flags & O_CLOEXEC) : sn->flags;
	f->state = FS_OFFERED;
	f->mnt_id = sn->mnt_id;
	f->ino = sn->ino;
	f->dev = st->st_dev;
	f->flags = flags;
	f->pos = sn->pos;
	f->reg = reg;
	f->link = link;
	f->st = st;
	s->offered++;
	return f->pin >= 0 ? 1 : 2;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The inodes of every lock in the system (a lock line's MAJ:MIN:INO). */
static void read_locks(struct dump_fdshorts *s)
{
	FILE *f = fopen("/proc/locks", "re");
	size_t cap = 0;
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char *tok = strtok(line, " \t\n");
		for (int i = 0; tok && i < 5; i++)
			tok = strtok(NULL, " \t\n");
		if (tok && !strcmp(tok, "->"))
			tok = NULL; /* a waiter: its lock's own line says the same */
		unsigned maj, mi;
		unsigned long long ino;
		if (!tok || sscanf(tok, "%x:%x:%llu", &maj, &mi, &ino) != 3)
			continue;
		if (s->nlocked == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *n = realloc(s->locked, cap * sizeof(*n));
			if (!n) {
				s->nlocked = 0;
				break;
			}
			s->locked = n;
		}
		s->locked[s->nlocked++] = ino;
	}
	if (f)
		fclose(f);
	if (s->locked)
		qsort(s->locked, s->nlocked, sizeof(*s->locked), cmp_u64);
}

/* Reading /proc/locks takes the kernel's file lock list for writing
 * (percpu_down_write): the first read after a quiet while waits for an RCU
 * grace period, 6-20 ms on this VM under load, and that read was inside the
 * stop (dump_fdshort_stop: the "files" phase). A read in the ~10 ms before
 * leaves the next one fast (0.02 ms). So (stopped false) the incremental
 * snapshot's preparation starts one in a detached thread (asleep in the
 * kernel, it costs no CPU), and (stopped true) the stop's own read starts
 * in a thread as soon as the tree is stopped (any moment of the stop is as
 * good as another), beside the registers and the page walk, and
 * dump_fdshort_stop only joins it: what is left of a grace period then
 * overlaps the rest of the stop. FP_DUMP_NO_LOCKS_WARM=1: neither (for
 * A/B measurements). */
static void *locks_warm_run(void *arg)
{
	(void)arg;
	FILE *f = fopen("/proc/locks", "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f))
		;
	if (f)
		fclose(f);
	return NULL;
}

static void *locks_stop_run(void *arg)
{
	read_locks(arg);
	return NULL;
}

/* Up to this many fds followed, their locks are found in their own fdinfo
 * (3 system calls each, ~5 us) rather than /proc/locks (0.02 ms just after
 * another read, 6-20 ms of the pause after a quiet while). */
#define FEW_FDS 64

static bool few_fds(const struct dump_fdshort *s)
{
	return s->offered <= FEW_FDS;
}

/* fd has a lock through it (fdinfo lists a process's locks set through
 * that open file description, POSIX, OFD and flock alike); true when in
 * doubt. */
static bool fd_locked(pid_t pid, int fd)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return true;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0 || n == (ssize_t)sizeof(buf) - 1)
		return true;
	buf[n] = '\0';
	return strstr(buf, "\nlock:") != NULL;
}

/* Whether some process's locks are found in /proc/locks (not in its fds'
 * fdinfo). */
static bool any_many(const struct dump_fdshorts *h)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (h->p[i]->offered && !few_fds(h->p[i]))
			return true;
	return false;
}

void dump_fdshort_locks(struct dump_ctx *c, bool stopped)
{
	if (fp_env_flag("FP_DUMP_NO_LOCKS_WARM"))
		return;
	struct dump_fdshorts *h = c->fdshort;
	if (stopped) {
		if (any_many(h) && !h->locks_reading && !h->locks_read)
			h->locks_reading = pthread_create(&h->locks_th, NULL, locks_stop_run, h) == 0;
		return;
	}
	pthread_t th;
	pthread_attr_t a;
	if (pthread_attr_init(&a))
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	if (pthread_create(&th, &a, locks_warm_run, NULL) == 0)
		(void)th;
	pthread_attr_destroy(&a);
}

void dump_fdshort_stop(struct dump_ctx *c, pid_t pid)
{
	struct dump_fdshort *s = of(c, pid);
	struct dump_fdshorts *h = c->fdshort;
	if (!s || !s->offered)
		return;
	int64_t t0 = dump_now_ns();
	read_seqs(s, s->seq_stop);
	if (h->locks_reading) {
		pthread_join(h->locks_th, NULL); /* started at the stop */
		h->locks_reading = false;
		h->locks_read = true;
	} else if (!few_fds(s) && !h->locks_read) {
		read_locks(h);
		h->locks_read = true;
	}
	if (few_fds(s))
		dlog(c, "%d: the shim's table read again while stopped (%u slots; locks from each fd's fdinfo) in %.3f ms",
		     pid, s->n, (double)(dump_now_ns() - t0) / 1e6);
	else
		dlog(c, "%d: the shim's table read again while stopped (%u slots, %zu locks in the system) in %.3f ms",
		     pid, s->n, h->nlocked, (double)(dump_now_ns() - t0) / 1e6);
}

bool dump_fdshort_take(struct dump_ctx *c, pid_t pid, int fd, struct dump_fd_seen *sn)
{
	struct dump_fdshort *s = of(c, pid);
	const struct dump_fdshorts *h = c->fdshort;
	if (!s || fd < 0 || (uint32_t)fd >= s->n || s->fd[fd].state != FS_OFFERED || s->seq_stop[fd] != s->seq_look[fd] ||
	    (!few_fds(s) && !h->locks_read) ||
	    (h->nlocked && bsearch(&s->fd[fd].ino, h->locked, h->nlocked, sizeof(uint64_t), cmp_u64)) ||
	    (few_fds(s) && fd_locked(pid, fd)))
		return false;
	struct short_fd *f = &s->fd[fd];
	if (dump_shmem_file_obj(c, f->dev, f->ino))
		return false; /* a file mapped shared: dumped as memory, from fdinfo */
	*sn = (struct dump_fd_seen){ .fd = fd, .pos = f->pos, .flags = f->flags, .mnt_id = f->mnt_id, .ino = f->ino };
	if (f->pin >= 0 && f->reg) {
		off_t o = lseek(f->pin, 0, SEEK_CUR);
		if (o < 0)
			return false;
		sn->pos = (uint64_t)o;
	}
	f->state = FS_TAKEN;
	s->taken++;
	return true;
}

int dump_fdshort_pin(const struct dump_ctx *c, pid_t pid, int fd)
{
	const struct dump_fdshort *s = of(c, pid);
	if (!s || fd < 0 || (uint32_t)fd >= s->n || s->fd[fd].state != FS_TAKEN)
		return -1;
	return s->fd[fd].pin;
}

/* fd's fdinfo now, by name. */
static int fdinfo_now(pid_t pid, int fd, struct dump_fd_seen *sn)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return dump_fdinfo_parse(buf, sn);
}

static int verify_one(struct dump_ctx *c, struct dump_fdshort *s, bool *stale, fp_error *err)
{
	if (!s->offered)
		return 0;
	dlog(c, "the shim's table as a shortcut for %d: %zu fds offered at the look, %zu taken at the stop", s->pid,
	     s->offered, s->taken);
	if (!s->taken)
		return 0;
	int64_t t0 = dump_now_ns();
	uint32_t *seq_now = s->seq_look; /* the look's are not needed any more */
	uint32_t *was = malloc(s->n * sizeof(uint32_t));
	if (!was)
		return fp_fail(err, ENOMEM, "out of memory");
	memcpy(was, s->seq_look, s->n * sizeof(uint32_t));
	read_seqs(s, seq_now);
	pid_t self = getpid();
	int bad = -1;
	bool lied = false;
	/* The kernel's word for all fds at once: an fd whose description is
	 * its copy's (the same address; the copy holds it, so no other can
	 * take that address) has the copy's inode and mount, which the look
	 * checked; its status flags and close-on-exec are compared. */
	struct dump_kfile *kt = NULL;
	const struct dump_kfile *kh = NULL;
	uint64_t *coe = NULL;
	size_t nkt = 0, nkh = 0, ncoe = 0, by_addr = 0;
	bool bpf = !dump_fdfiles_bpf(s->pid, &kt, &nkt) && !dump_self_kfiles(c, &kh, &nkh) &&
		   !dump_cloexec_bpf(s->pid, &coe, &ncoe);
	for (uint32_t fd = 0; fd < s->n && bad < 0; fd++) {
		const struct short_fd *f = &s->fd[fd];
		if (f->state != FS_TAKEN)
			continue;
		const struct dump_kfile *k = bpf && f->pin_mnt ? dump_fdfile_find(kt, nkt, (int)fd) : NULL;
		const struct dump_kfile *h = k ? dump_fdfile_find(kh, nkh, f->pin) : NULL;
		int ce = h ? dump_cloexec_bit(coe, ncoe, (int)fd) : -1;
		if (ce >= 0) {
			if (k->file != h->file || (k->flags | (ce ? O_CLOEXEC : 0)) != f->flags) {
				bad = (int)fd;
				lied = seq_now[fd] == was[fd];
			}
			by_addr++;
			continue;
		}
		struct dump_fd_seen sn = { 0 };
		bool same = fdinfo_now(s->pid, (int)fd, &sn) == 0 && sn.mnt_id == f->mnt_id && sn.ino == f->ino &&
			    sn.flags == f->flags &&
			    (f->pin < 0 || syscall(SYS_kcmp, self, s->pid, KCMP_FILE, f->pin, (int)fd) == 0);
		if (!same) {
			bad = (int)fd;
			lied = seq_now[fd] == was[fd];
		}
	}
	free(was);
	free(kt);
	free(coe);
	dlog(c, "%zu fds taken by the shortcut checked after the resume in %.3f ms (%zu by the kernel's addresses, the "
	     "others against /proc)", s->taken, (double)(dump_now_ns() - t0) / 1e6, by_addr);
	s->verified = bad < 0;
	if (bad < 0)
		return 0;
	char line[256];
	if (lied) {
		snprintf(line, sizeof(line), "fd %d changed behind the table's back at the stop", bad);
		dump_shim_disagree_note(c, line);
	} else {
		snprintf(line, sizeof(line), "fd %d changed right after the stop", bad);
		dlog(c, "%s: not provably the same at the stop", line);
	}
	*stale = true;
	return fp_fail(err, EAGAIN, "the shim's table and /proc disagree (%s of %d); the snapshot is taken again from /proc alone",
		       line, s->pid);
}

int dump_fdshort_verify(struct dump_ctx *c, bool *stale, fp_error *err)
{
	for (size_t i = 0; c->fdshort && i < c->fdshort->n; i++)
		if (verify_one(c, c->fdshort->p[i], stale, err))
			return -1;
	return 0;
}

uint32_t dump_fdshort_seq(const struct dump_ctx *c, pid_t pid, int fd)
{
	const struct dump_fdshort *s = of(c, pid);
	return s && fd >= 0 && (uint32_t)fd < s->n ? s->seq_look[fd] : 1;
}

bool dump_fdshort_seq_ok(const struct dump_ctx *c, pid_t pid)
{
	return of(c, pid) != NULL;
}

uint32_t dump_fdshort_slots(const struct dump_ctx *c, pid_t pid, uint64_t *addr)
{
	const struct dump_fdshort *s = of(c, pid);
	*addr = s ? s->addr : 0;
	return s && s->verified && s->taken ? s->n : 0;
}

bool dump_fdshort_taken(const struct dump_ctx *c, pid_t pid, int fd, struct dump_fd_look *r)
{
	const struct dump_fdshort *s = of(c, pid);
	if (!s || !s->verified || fd < 0 || (uint32_t)fd >= s->n || s->fd[fd].state != FS_TAKEN)
		return false;
	const struct short_fd *f = &s->fd[fd];
	/* seq_stop: the seq the facts hold for (seq_look is the check's now) */
	*r = (struct dump_fd_look){ .fd = fd, .info = -1, .seq = s->seq_stop[fd], .flags = f->flags, .mnt_id = f->mnt_id,
					.ino = f->ino, .pos = f->pos, .link = (char *)f->link };
	if (!f->link || !f->st)
		return false;
	r->st = *f->st;
	return true;
}
