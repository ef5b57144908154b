/* fd capture with as little as possible done while the tree is stopped
 * (issue 11: the pause grows linearly with the fd count, and stays small).
 *
 * Before the stop (dump_fds_look, dump_fdlook.c: each process of the tree): each fd's path and
 * stat, and its /proc/PID/fdinfo/N opened and kept. An open fdinfo file
 * shows the fd as it is at each read (pread at 0 reads it again, with no
 * path walk). An inode never changes its kind, so what the look found
 * holds as long as the fd names the same inode; what can change while the
 * process runs (which description an fd has, its offset, status flags,
 * close-on-exec, locks) is exactly what fdinfo shows at the stop.
 *
 * While stopped (dump_proc_files): the fd count (the size of /proc/PID/fd,
 * Linux 6.2+) against the look's, so the directory is listed again only
 * when fds came or went; one fdinfo read per fd; the look's path and stat
 * kept when fdinfo names the same inode (mnt_id and ino), else read now.
 * Pipes, FIFOs, terminals, memfds, sockets, event fds, deleted files and
 * /proc files are dumped at once (their state is read now: dump_fd_now).
 * Files reopened by path wait: only fds that share (inode, offset, flags)
 * with another can share a description, and only those are pinned with
 * pidfd_getfd (dump_fds_pin), the other ones are their own description;
 * a process with a frozen copy (dump_cow.c) is pinned from the copy after
 * the resume instead: the copy's fd table is the process's at the stop.
 *
 * After the resume (dump_fds_finish): their entries, descriptions told
 * apart with kcmp on the pinned copies, and each path that came from the
 * look checked to still name its inode (else the dump is done again
 * without the look: a file renamed or deleted just before the stop). */
#include "dump/dump_fdscan_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "images/criu_io.h"

static int later_push(struct dump_fdscan *s, struct later_fd **out)
{
	if (s->nlater == s->caplater) {
		size_t cap = s->caplater ? s->caplater * 2 : 256;
		struct later_fd *n = realloc(s->later, cap * sizeof(*n));
		if (!n)
			return -1;
		s->later = n;
		s->caplater = cap;
	}
	*out = &s->later[s->nlater++];
	memset(*out, 0, sizeof(**out));
	(*out)->pin = -1;
	return 0;
}

/* One fd of p (stopped), its fdinfo text in buf. */
static int one_fd(struct dump_ctx *c, struct dump_proc *p, const struct dump_fd_look *l, int fddir, int fd,
		  const char *buf, const struct dump_fd_seen *parsed, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	struct dump_fd_seen sn = { .fd = fd, .info = buf };
	if (parsed) /* by the shim's shortcut: no fdinfo text, so no locks */
		sn.pos = parsed->pos, sn.flags = parsed->flags, sn.mnt_id = parsed->mnt_id, sn.ino = parsed->ino;
	else if (dump_fdinfo_parse(buf, &sn))
		return fp_fail(err, EIO, "malformed /proc/%d/fdinfo/%d", p->pid, fd);
	char link[PATH_MAX];
	bool from_look = l && sn.mnt_id >= 0 && l->mnt_id == sn.mnt_id && l->ino == sn.ino;
	if (from_look) {
		sn.link = l->link;
		sn.st = l->st;
	} else {
		char name[16];
		snprintf(name, sizeof(name), "%d", fd);
		ssize_t n = readlinkat(fddir, name, link, sizeof(link) - 1);
		if (n < 0)
			return fp_fail(err, errno, "cannot read /proc/%d/fd/%d: %s", p->pid, fd, strerror(errno));
		link[n] = '\0';
		/* Its /proc directory may be gone with its process: no stat. */
		if (dump_fd_shim_transient(link, sn.flags)) {
			dlog(c, "%d fd %d (%s): the shim's own short-lived fd, not dumped", p->pid, fd, link);
			return 0;
		}
		if (fstatat(fddir, name, &sn.st, 0))
			return fp_fail(err, errno, "cannot stat fd %d of %d (%s): %s", fd, p->pid, link, strerror(errno));
		sn.link = link;
	}
	uint32_t type;
	if (dump_fd_type(c, p->pid, fd, sn.link, &sn.st, &type, err))
		return -1;
	struct dump_fd *o = &p->fds[p->nfds];
	if (!dump_fd_plain(type, sn.link)) {
		int r = dump_fd_now(c, p, &sn, o, err);
		p->nfds += r == 0;
		return r < 0 ? -1 : 0;
	}
	struct later_fd *w;
	if (later_push(s, &w))
		return fp_fail(err, ENOMEM, "out of memory");
	w->proc = (size_t)(p - c->procs);
	w->fd = fd;
	w->pos = sn.pos;
	w->flags = sn.flags & ~(uint32_t)O_CLOEXEC;
	w->st = sn.st;
	w->check = from_look;
	/* Nothing copied while stopped that the look already holds. */
	w->look_link = from_look ? l->link : NULL;
	w->link = from_look ? NULL : strdup(sn.link);
	w->locks = strstr(buf, "lock:") ? strdup(buf) : NULL;
	if (!wlink(w) || (strstr(buf, "lock:") && !w->locks))
		return fp_fail(err, ENOMEM, "out of memory");
	*o = (struct dump_fd){ .fd = fd, .fi = { .fd = (uint32_t)fd, .flags = (sn.flags & O_CLOEXEC) ? 1 : 0, .type = CR_FD_REG } };
	p->nfds++;
	return 0;
}

static int cmp_dump_fd(const void *a, const void *b)
{
	return ((const struct dump_fd *)a)->fd - ((const struct dump_fd *)b)->fd;
}

/* Sized for n more fds. */
static int fds_room(struct dump_proc *p, size_t *cap, size_t n)
{
	if (p->nfds + n <= *cap)
		return 0;
	size_t ncap = p->nfds + n + 16;
	struct dump_fd *nf = realloc(p->fds, ncap * sizeof(*nf));
	if (!nf)
		return -1;
	memset(nf + *cap, 0, (ncap - *cap) * sizeof(*nf));
	p->fds = nf;
	*cap = ncap;
	return 0;
}

int dump_proc_files(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_fdscan *s = scan(c);
	if (!s)
		return fp_fail(err, ENOMEM, "out of memory");
	int fddir, infodir, rc = -1, *fds = NULL;
	size_t n = 0, cap = 0, gone = 0;
	int64_t read_ns = 0, one_ns = 0;
	char *buf = malloc(16384);
	dump_fd_dirs(p->pid, &fddir, &infodir);
	if (!buf) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	if (fddir < 0 || infodir < 0) {
		fp_fail(err, errno, "cannot open /proc/%d/fd or fdinfo: %s", p->pid, strerror(errno));
		goto out;
	}
	/* The directory's size is its fd count: when it is the look's, the
	 * look's list holds unless one of its fds is gone. */
	struct stat dst;
	struct look_set *ls = set_of(s, p->pid);
	bool use_look = ls && fstat(fddir, &dst) == 0 && (size_t)dst.st_size == ls->nlook;
	if (!use_look && dump_list_fds(fddir, &fds, &n)) {
		fp_fail(err, errno, "cannot list /proc/%d/fd: %s", p->pid, strerror(errno));
		goto out;
	}
	size_t total = use_look ? ls->nlook : n, taken = 0;
	if (use_look && !p->fds && ls->fds) {
		p->fds = ls->fds;
		cap = ls->capfds;
		ls->fds = NULL;
	}
	if (fds_room(p, &cap, total))
		goto oom;
	if (s->caplater < s->nlater + total) {
		/* sized once: no copy of a growing array while stopped */
		struct later_fd *nl = realloc(s->later, (s->nlater + total) * sizeof(*nl));
		if (!nl)
			goto oom;
		s->later = nl;
		s->caplater = s->nlater + total;
	}
	dump_fdshort_stop(c, p->pid);
	int64_t tr0 = dump_now_ns();
	int threads = 0;
	bool texts = use_look && ls->kept && ls->texts;
	if (texts)
		dump_fdread(ls->kept, total, ls->texts, &threads);
	read_ns += dump_now_ns() - tr0;
	for (size_t i = 0; i < total; i++) {
		int fd = use_look ? ls->look[i].fd : fds[i];
		const struct dump_fd_look *l = use_look ? &ls->look[i] : find_look(ls, fd);
		int64_t tr = dump_now_ns();
		struct dump_fd_seen sn;
		if (l && dump_fdshort_take(c, p->pid, fd, &sn)) {
			int64_t to = dump_now_ns();
			read_ns += to - tr;
			taken++;
			if (one_fd(c, p, l, fddir, fd, "", &sn, err))
				goto out;
			one_ns += dump_now_ns() - to;
			continue;
		}
		const struct dump_fdtext *t = texts ? &ls->texts[i] : NULL;
		ssize_t got;
		const char *text = buf;
		if (t && t->len >= 0 && t->len != DUMP_FDTEXT_LONG) {
			got = t->len;
			text = t->txt;
		} else if (t && t->len < 0 && t->len != DUMP_FDTEXT_NONE) {
			got = -1;
			errno = -t->len;
		} else {
			got = dump_fdinfo_read(infodir, l ? l->info : -1, fd, buf, 16384);
			if (got > 0)
				buf[got] = '\0';
		}
		read_ns += dump_now_ns() - tr;
		if (got <= 0 && use_look && (got == 0 || errno == ENOENT)) {
			gone++; /* closed since the look: others may have come */
			continue;
		}
		if (got <= 0) {
			fp_fail(err, got < 0 ? errno : EIO, "cannot read /proc/%d/fdinfo/%d: %s", p->pid, fd,
				got < 0 ? strerror(errno) : "empty");
			goto out;
		}
		int64_t to = dump_now_ns();
		if (one_fd(c, p, l, fddir, fd, text, NULL, err))
			goto out;
		one_ns += dump_now_ns() - to;
	}
	if (gone) {
		if (dump_list_fds(fddir, &fds, &n)) {
			fp_fail(err, errno, "cannot list /proc/%d/fd: %s", p->pid, strerror(errno));
			goto out;
		}
		if (fds_room(p, &cap, n))
			goto oom;
		for (size_t i = 0; i < n; i++) {
			if (find_look(ls, fds[i]))
				continue; /* read above (or gone) */
			ssize_t got = dump_fdinfo_read(infodir, -1, fds[i], buf, 16384);
			if (got <= 0) {
				fp_fail(err, got < 0 ? errno : EIO, "cannot read /proc/%d/fdinfo/%d", p->pid, fds[i]);
				goto out;
			}
			buf[got] = '\0';
			if (one_fd(c, p, NULL, fddir, fds[i], buf, NULL, err))
				goto out;
		}
		qsort(p->fds, p->nfds, sizeof(*p->fds), cmp_dump_fd);
	}
	dlog(c, "%d: %zu fds read while stopped (%s), %zu of them by the shim's shortcut, %.3f ms of it reading fdinfo "
		"or offsets (%d thread%s), %.3f ms making entries", p->pid, p->nfds,
	     use_look ? (gone ? "the look's list, then listed again" : "the look's list") : "listed", taken,
	     (double)read_ns / 1e6, threads ? threads : 1, threads > 1 ? "s" : "", (double)one_ns / 1e6);
	rc = 0;
	goto out;
oom:
	fp_fail(err, ENOMEM, "out of memory");
out:
	free(buf);
	free(fds);
	if (fddir >= 0)
		close(fddir);
	if (infodir >= 0)
		close(infodir);
	return rc;
}

/* (by qsort_r: no sorting state in a global) */
static int cmp_later(const void *a, const void *b, void *arg)
{
	const struct dump_fdscan *sc = arg;
	const struct later_fd *x = &sc->later[*(const size_t *)a], *y = &sc->later[*(const size_t *)b];
	if (x->st.st_dev != y->st.st_dev)
		return x->st.st_dev < y->st.st_dev ? -1 : 1;
	if (x->st.st_ino != y->st.st_ino)
		return x->st.st_ino < y->st.st_ino ? -1 : 1;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return x->flags < y->flags ? -1 : x->flags > y->flags;
}

static bool same_key(const struct later_fd *x, const struct later_fd *y)
{
	return x->st.st_dev == y->st.st_dev && x->st.st_ino == y->st.st_ino && x->pos == y->pos && x->flags == y->flags;
}

static struct dump_fd *fd_slot(struct dump_proc *p, int fd)
{
	struct dump_fd key = { .fd = fd };
	return bsearch(&key, p->fds, p->nfds, sizeof(*p->fds), cmp_dump_fd);
}

/* w's fd is file id's. */
static int fd_gets(struct dump_ctx *c, struct later_fd *w, uint32_t id, fp_error *err)
{
	struct dump_proc *p = &c->procs[w->proc];
	struct dump_fd *o = fd_slot(p, w->fd);
	if (!o)
		return fp_fail(err, EIO, "fd %d of %d: lost from its fd table", w->fd, p->pid);
	o->fi.id = id;
	w->done = true;
	return w->locks ? dump_fd_locks(c, p->pid, w->fd, id, w->locks, err) : 0;
}

/* w's entry: looked up (kcmp of kpid's kfd) among those of kind when
 * index, else new. */
static int make_entry(struct dump_ctx *c, struct later_fd *w, int kind, pid_t kpid, int kfd, bool index,
		      fp_error *err)
{
	struct dump_proc *p = &c->procs[w->proc];
	uint64_t key = dump_desc_key(&w->st, w->pos, w->flags);
	uint32_t id;
	size_t at = 0;
	if (!index || !dump_findex_desc(c, kind, kpid, kfd, key, w->st.st_ino, &id, &at)) {
		struct dump_fkey k = { .kind = kind, .dev = w->st.st_dev, .ino = w->st.st_ino, .flags = w->flags,
				       .pid = kpid, .fd = kfd };
		cr_file *f = dump_new_file(c, &k, err);
		if (!f || (index && dump_findex_add_desc(c, kind, key, w->st.st_ino, at, c->nfiles - 1, err)))
			return -1;
		f->type = CR_FD_REG;
		f->has_reg = true;
		f->reg.id = f->id;
		f->reg.flags = w->flags;
		f->reg.pos = w->pos;
		f->reg.name = w->link ? w->link : strdup(w->look_link); /* No size: files that grow (logs) would fail CRIU's check. */
		w->link = NULL;
		if (!f->reg.name)
			return fp_fail(err, ENOMEM, "out of memory");
		id = f->id;
		dlogv(c, "%d fd %d -> file %u flags %#o pos %" PRIu64 " %s", p->pid, w->fd, id, w->flags, w->pos,
		      f->reg.name);
	}
	return fd_gets(c, w, id, err);
}

static int group_fds(struct dump_ctx *c, fp_error *err);

/* A copy of fd of pid (process number proc of the tree, or its frozen
 * copy), through one pidfd kept in *pidfd while proc stays *cur. */
static int take_fd(pid_t pid, size_t proc, int fd, int *pidfd, size_t *cur)
{
	if (*cur != proc) {
		if (*pidfd >= 0)
			close(*pidfd);
		*cur = proc;
		*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	}
	return *pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, *pidfd, fd, 0);
}

/* Whether every later fd has a copy, taking the few the shortcut did not
 * take now. */
static bool pinned_before(struct dump_ctx *c, struct dump_fdscan *s)
{
	enum { FEW = 64 };
	size_t missing = 0;
	for (size_t i = 0; i < s->nlater && missing <= FEW; i++)
		missing += dump_fdshort_pin(c, c->procs[s->later[i].proc].pid, s->later[i].fd) < 0;
	if (missing > FEW)
		return false;
	int pidfd = -1;
	size_t proc = (size_t)-1;
	bool ok = true;
	for (size_t i = 0; i < s->nlater && ok; i++) {
		struct later_fd *w = &s->later[i];
		w->pin = dump_fdshort_pin(c, c->procs[w->proc].pid, w->fd);
		w->borrowed = w->pin >= 0;
		if (w->borrowed)
			continue;
		w->pin = take_fd(c->procs[w->proc].pid, w->proc, w->fd, &pidfd, &proc);
		ok = w->pin >= 0;
	}
	if (pidfd >= 0)
		close(pidfd);
	for (size_t i = 0; i < s->nlater && !ok; i++) {
		struct later_fd *w = &s->later[i];
		if (w->pin >= 0 && !w->borrowed)
			close(w->pin);
		w->pin = -1;
		w->borrowed = false;
	}
	return ok;
}

int dump_fds_pin(struct dump_ctx *c, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	if (s && s->nlater && c->ninflight) {
		/* fds in flight in a unix socket's queue are matched to the
		 * tree's open files (dump_usk_check) while it is stopped: every
		 * entry is made now, from the stopped processes' own fds. */
		for (size_t i = 0; i < s->nlater; i++)
			if (make_entry(c, &s->later[i], 1, c->procs[s->later[i].proc].pid, s->later[i].fd, true, err))
				return -1;
		dlog(c, "fds with entries made while stopped (fds in flight): %zu", s->nlater);
		return 0;
	}
	if (!s || s->nlater < 2)
		return 0;
	bool all_copies = true;
	for (size_t i = 0; i < c->nprocs; i++)
		all_copies &= c->procs[i].cow != 0;
	if (all_copies || pinned_before(c, s)) {
		/* Every fd is pinned from a frozen copy after the resume, or
		 * has a copy already (the shim's shortcut took it before the
		 * stop, dump_fdshort.c; its check after the resume finds an fd
		 * moved since): the sort that finds the fds that may share
		 * waits until then. */
		s->group_after = true;
		return 0;
	}
	return group_fds(c, err);
}

/* Groups the later fds by (inode, offset, flags): fds alone in their
 * group are their own description; the others are pinned (now, or from
 * the frozen copies after the resume) for kcmp. */
static int group_fds(struct dump_ctx *c, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	int64_t t0 = dump_now_ns();
	size_t *ix = malloc(s->nlater * sizeof(*ix));
	int *pidfd = malloc(c->nprocs * sizeof(*pidfd));
	if (!ix || !pidfd) {
		free(ix);
		free(pidfd);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->nlater; i++)
		ix[i] = i;
	for (size_t i = 0; i < c->nprocs; i++)
		pidfd[i] = -1;
	qsort_r(ix, s->nlater, sizeof(*ix), cmp_later, s);
	long budget = dump_fd_budget(s);
	size_t pinned = 0, now = 0;
	int rc = 0;
	for (size_t a = 0, b; a < s->nlater && !rc; a = b) {
		for (b = a + 1; b < s->nlater && same_key(&s->later[ix[a]], &s->later[ix[b]]); b++)
			;
		if (b - a < 2)
			continue;
		bool from_copy = true;
		size_t need = 0;
		for (size_t k = a; k < b; k++) {
			struct later_fd *w = &s->later[ix[k]];
			w->share = true;
			from_copy &= c->procs[w->proc].cow != 0;
			/* the shortcut's copy, taken before the stop (or by
			 * pinned_before while stopped) */
			if (w->pin < 0) {
				w->pin = dump_fdshort_pin(c, c->procs[w->proc].pid, w->fd);
				w->borrowed = w->pin >= 0;
			}
			need += w->pin < 0;
		}
		bool ok = (long)(pinned + need) <= budget;
		if (ok && from_copy) {
			/* The frozen copies have the fd tables as they are now:
			 * pinned from them after the resume. */
			pinned += b - a;
			continue;
		}
		for (size_t k = a; k < b && ok; k++) {
			struct later_fd *w = &s->later[ix[k]];
			if (w->pin >= 0)
				continue;
			if (pidfd[w->proc] < 0)
				pidfd[w->proc] = (int)syscall(SYS_pidfd_open, c->procs[w->proc].pid, 0);
			w->pin = pidfd[w->proc] < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd[w->proc], w->fd, 0);
			ok = w->pin >= 0;
		}
		if (ok) {
			pinned += need;
			continue;
		}
		/* No copies (fd limit, old kernel): told apart now, by kcmp of
		 * the stopped processes' own fds, or after the resume of their
		 * frozen copies' (whose fd tables are the ones of the stop). */
		for (size_t k = a; k < b && !rc; k++) {
			struct later_fd *w = &s->later[ix[k]];
			if (w->pin >= 0 && !w->borrowed)
				close(w->pin);
			w->pin = -1;
			w->borrowed = false;
			const struct dump_proc *p = &c->procs[w->proc];
			rc = make_entry(c, w, 1, s->group_after ? p->cow : p->pid, w->fd, true, err);
			now++;
		}
	}
	for (size_t i = 0; i < c->nprocs; i++)
		if (pidfd[i] >= 0)
			close(pidfd[i]);
	free(pidfd);
	free(ix);
	dlog(c, "fds for after the resume: %zu, %zu of them pinned (may share a description), %zu done now, in %.3f ms",
	     s->nlater, pinned, now, (double)(dump_now_ns() - t0) / 1e6);
	return rc;
}

/* Whether link, as the process sees it (its root), still names w's inode. */
static bool path_holds(struct dump_ctx *c, const struct later_fd *w)
{
	char path[PATH_MAX + 32];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/root%s", c->procs[w->proc].pid, wlink(w));
	return stat(path, &st) == 0 && st.st_dev == w->st.st_dev && st.st_ino == w->st.st_ino;
}

static int pin_from_copies(struct dump_ctx *c, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	int pidfd = -1;
	size_t proc = (size_t)-1;
	for (size_t i = 0; i < s->nlater; i++) {
		struct later_fd *w = &s->later[i];
		if (!w->share || w->done || w->pin >= 0)
			continue;
		w->pin = take_fd(c->procs[w->proc].cow, w->proc, w->fd, &pidfd, &proc);
		if (w->pin < 0) {
			int e = errno;
			if (pidfd >= 0)
				close(pidfd);
			return fp_fail(err, e, "cannot take fd %d from the frozen copy %d of %d: %s", w->fd,
				       c->procs[w->proc].cow, c->procs[w->proc].pid, strerror(e));
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return 0;
}

struct addr_sort {
	const struct dump_kfile *k;
	size_t n;
	const struct later_fd *w;
};

static int by_pin_addr(const void *a, const void *b, void *arg)
{
	const struct addr_sort *o = arg;
	uint64_t x = dump_fdfile_of(o->k, o->n, o->w[*(const size_t *)a].pin);
	uint64_t y = dump_fdfile_of(o->k, o->n, o->w[*(const size_t *)b].pin);
	return (x > y) - (x < y);
}

/* The fds that may share a description, told apart by the kernel's
 * addresses of their copies' descriptions (the BPF fd iterator over the
 * dumper itself, whose copies hold them: no address is reused meanwhile)
 * instead of kcmp in the index (log k calls per fd: 80 ms for 3,333
 * opens of /dev/null): one entry per address. 1 when that cannot be (the
 * iterator not loaded, a copy not in its list): kcmp then, for all. */
static int entries_by_addr(struct dump_ctx *c, pid_t self, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	size_t n = 0;
	for (size_t i = 0; i < s->nlater; i++)
		n += !s->later[i].done && s->later[i].pin >= 0 && s->later[i].share;
	if (!n)
		return 1;
	const struct dump_kfile *k = NULL;
	size_t nk = 0;
	size_t *ix = malloc(n * sizeof(*ix));
	if (!ix || dump_self_kfiles(c, &k, &nk)) {
		free(ix);
		return 1;
	}
	n = 0;
	bool all = true;
	for (size_t i = 0; i < s->nlater && all; i++) {
		const struct later_fd *w = &s->later[i];
		if (w->done || w->pin < 0 || !w->share)
			continue;
		all = dump_fdfile_of(k, nk, w->pin) != 0;
		ix[n++] = i;
	}
	int rc = all ? 0 : 1;
	if (all) {
		struct addr_sort o = { k, nk, s->later };
		qsort_r(ix, n, sizeof(*ix), by_pin_addr, &o);
	}
	uint64_t last = 0;
	uint32_t id = 0;
	for (size_t j = 0; j < n && !rc; j++) {
		struct later_fd *w = &s->later[ix[j]];
		uint64_t a = dump_fdfile_of(k, nk, w->pin);
		if (j && a == last) {
			rc = fd_gets(c, w, id, err);
			continue;
		}
		rc = make_entry(c, w, 3, self, w->pin, false, err);
		const struct dump_fd *o = rc ? NULL : fd_slot(&c->procs[w->proc], w->fd);
		id = o ? o->fi.id : 0;
		last = a;
	}
	free(ix);
	return rc;
}

int dump_fds_finish(struct dump_ctx *c, bool *stale, fp_error *err)
{
	struct dump_fdscan *s = c->fdscan;
	if (dump_fdshort_verify(c, stale, err))
		return -1;
	if (!s || !s->nlater)
		return 0;
	int64_t t0 = dump_now_ns();
	const char *last = NULL; /* fds of one file come in runs: checked once per run */
	dev_t last_dev = 0;
	ino_t last_ino = 0;
	for (size_t i = 0; i < s->nlater; i++) {
		struct later_fd *w = &s->later[i];
		if (w->done || !w->check)
			continue;
		if (last && w->st.st_dev == last_dev && w->st.st_ino == last_ino && !strcmp(last, wlink(w)))
			continue;
		if (!path_holds(c, w)) {
			*stale = true;
			return fp_fail(err, EAGAIN,
				       "fd %d of %d: %s no longer names the file it had (renamed or deleted as the dump "
				       "began); done again, reading every path while stopped",
				       w->fd, c->procs[w->proc].pid, wlink(w));
		}
		last = wlink(w), last_dev = w->st.st_dev, last_ino = w->st.st_ino;
	}
	if ((s->group_after && group_fds(c, err)) || pin_from_copies(c, err))
		return -1;
	pid_t self = getpid();
	int ba = entries_by_addr(c, self, err);
	if (ba < 0)
		return -1;
	for (size_t i = 0; i < s->nlater; i++) {
		struct later_fd *w = &s->later[i];
		if (w->done)
			continue;
		if (w->pin >= 0 && w->share ? make_entry(c, w, 3, self, w->pin, true, err) :
				  make_entry(c, w, 1, c->procs[w->proc].pid, w->fd, false, err))
			return -1;
	}
	dlog(c, "%zu fd entries made after the resume in %.3f ms (descriptions told apart by %s)", s->nlater,
	     (double)(dump_now_ns() - t0) / 1e6, ba == 0 ? "the kernel's addresses" : "kcmp");
	return 0;
}

void dump_fds_free(struct dump_ctx *c)
{
	struct dump_fdscan *s = c->fdscan;
	if (!s)
		return;
	for (size_t k = 0; k < s->nsets; k++) {
		struct look_set *ls = &s->sets[k];
		for (size_t i = 0; i < ls->nlook; i++) {
			if (ls->look[i].info >= 0)
				close(ls->look[i].info);
			free(ls->look[i].link);
		}
		free(ls->look);
		free(ls->kept);
		free(ls->texts);
		free(ls->fds);
	}
	free(s->sets);
	for (size_t i = 0; i < s->nlater; i++) {
		if (s->later[i].pin >= 0 && !s->later[i].borrowed)
			close(s->later[i].pin);
		free(s->later[i].link);
		free(s->later[i].locks);
	}
	free(s->later);
	if (s->raised)
		setrlimit(RLIMIT_NOFILE, &s->saved);
	free(s);
	c->fdscan = NULL;
}
