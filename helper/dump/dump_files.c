/* Files: one FileEntry per open-file description (files.img), the fd table
 * of each process (fdinfo-<files_id>.img), and the queued bytes of pipes
 * (pipes-data.img), read with tee() so the target's pipe keeps them.
 * Terminals are described in dump_tty.c. */
#include "dump/dump_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "images/criu_io.h"

cr_file *dump_new_file(struct dump_ctx *c, const struct dump_fkey *k, fp_error *err)
{
	if (c->nfiles == c->capfiles) {
		size_t cap = c->capfiles ? c->capfiles * 2 : 64;
		cr_file *nf = realloc(c->files, cap * sizeof(*nf));
		if (!nf)
			return fp_fail(err, ENOMEM, "out of memory"), NULL;
		c->files = nf;
		struct dump_fkey *nk = realloc(c->fkeys, cap * sizeof(*nk));
		if (!nk)
			return fp_fail(err, ENOMEM, "out of memory"), NULL;
		c->fkeys = nk;
		c->capfiles = cap;
	}
	cr_file *f = &c->files[c->nfiles];
	memset(f, 0, sizeof(*f));
	c->fkeys[c->nfiles] = *k;
	c->nfiles++;
	f->id = (uint32_t)c->nfiles; /* ids from 1, in order of discovery */
	return f;
}

cr_file *dump_new_reg_file(struct dump_ctx *c, const struct dump_fkey *k, const char *path, uint32_t flags,
			   uint64_t pos, fp_error *err)
{
	cr_file *f = dump_new_file(c, k, err);
	if (!f)
		return NULL;
	f->type = CR_FD_REG;
	f->has_reg = true;
	f->reg.id = f->id;
	f->reg.flags = flags;
	f->reg.pos = pos;
	f->reg.name = strdup(path);
	if (!f->reg.name) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	return f;
}

int dump_file_path(struct dump_ctx *c, const char *path, uint32_t flags, uint32_t *id, fp_error *err)
{
	if (dump_findex_path(c, path, flags, id))
		return 0;
	struct dump_fkey k = { .kind = 0, .flags = flags };
	cr_file *f = dump_new_reg_file(c, &k, path, flags, 0, err);
	if (!f)
		return -1;
	*id = f->id;
	return dump_findex_add_path(c, path, flags, c->nfiles - 1, err);
}

/* The bytes queued in a pipe (dump_pipepeek.c), kept for pipes-data.img. */
static int peek_pipe(struct dump_ctx *c, pid_t pid, int fd, uint64_t ino, bool fifo, fp_error *err)
{
	struct dump_pipe_bytes pb;
	if (dump_pipe_peek(pid, fd, ino, &pb, err))
		return -1;
	if (c->npipes == c->cappipes) {
		size_t cap = c->cappipes ? c->cappipes * 2 : 8;
		cr_pipe_data *np = realloc(c->pipes, cap * sizeof(*np));
		if (!np) {
			free(pb.data);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		c->pipes = np;
		c->cappipes = cap;
	}
	cr_pipe_data *pd = &c->pipes[c->npipes++];
	memset(pd, 0, sizeof(*pd));
	pd->pipe_id = (uint32_t)ino;
	pd->fifo = fifo;
	pd->bytes = (uint32_t)pb.queued;
	pd->has_size = true;
	pd->size = (uint32_t)pb.size;
	pd->data = pb.data;
	dlogv(c, "pipe %" PRIu64 ": %d byte(s) queued, capacity %d", ino, pb.queued, pb.size);
	return 0;
}

/* fds of one open file description agree on the inode, the offset and the
 * status flags (O_CLOEXEC, per fd, is not among them): only fds that agree
 * on all of them are told apart with kcmp. */
uint64_t dump_desc_key(const struct stat *st, uint64_t pos, uint32_t flags)
{
	return (uint64_t)st->st_dev ^ (pos * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)flags << 40);
}

static bool is_tty_major(unsigned maj)
{
	return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

/* The preload shim opens /proc/self/fd, /proc/self/task or /proc/self/maps
 * (close-on-exec, read-only) for a moment to resync its table, in a freshly
 * forked child for example. A dump that stops it then must not keep that
 * fd: it names a /proc entry of a process that may be gone at restore. The
 * shim sees its read fail after a restore and carries on. */
bool dump_fd_shim_transient(const char *link, uint32_t flags)
{
	if (!(flags & O_CLOEXEC) || (flags & O_ACCMODE) != O_RDONLY || strncmp(link, "/proc/", 6))
		return false;
	/* Of any pid: a child forked while its parent's shim held one
	 * inherits it for a moment, until the child's shim closes it. */
	const char *p = link + 6;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return !strcmp(p, "/fd") || !strcmp(p, "/task") || !strcmp(p, "/maps");
}

int dump_fd_type(struct dump_ctx *c, pid_t pid, int fd, const char *link, const struct stat *st, uint32_t *out, fp_error *err)
{
	uint32_t type;
	if (S_ISFIFO(st->st_mode) && !strncmp(link, "pipe:[", 6))
		type = CR_FD_PIPE;
	else if (S_ISREG(st->st_mode) && (!strncmp(link, "/memfd:", 7) || dump_shmem_file_obj(c, st->st_dev, st->st_ino)))
		type = CR_FD_MEMFD; /* dump_shmem.c */
	else if (S_ISFIFO(st->st_mode) && link[0] == '/' && !strstr(link, " (deleted)"))
		type = CR_FD_FIFO;
	else if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))
		type = CR_FD_REG;
	else if (dump_is_pty_slave(st))
		type = CR_FD_TTY;
	else if (S_ISCHR(st->st_mode)) {
		if (is_tty_major(major(st->st_rdev)))
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "fd %d of %d (%s) is a console, virtual or serial terminal, or /dev/tty; forkpoint "
					    "dumps pseudo-terminals (/dev/pts/N) only: give the program a pty (ssh, a terminal "
					    "emulator, `script`) or files",
					    fd, pid, link);
		type = CR_FD_REG; /* /dev/null, /dev/zero, /dev/urandom: reopened by path */
	} else if (dump_event_kind(link)) {
		type = (uint32_t)dump_event_kind(link);
	} else if (S_ISSOCK(st->st_mode)) {
		type = CR_FD_INETSK; /* or UNIXSK: dump_socket_file tells */
	} else {
		const char *what = S_ISFIFO(st->st_mode) ? "a deleted named FIFO" :
				   !strncmp(link, "anon_inode:", 11) ? link + 11 : "of an unsupported kind";
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d (%s) is %s; forkpoint dumps regular files, directories, pipes, terminals, "
				    "devices such as /dev/null, eventfd, epoll, signalfd, timerfd, inotify and sockets only "
				    "(use `criu dump` "
				    "for this process, or close the fd)",
				    fd, pid, link, what);
	}
	*out = type;
	return 0;
}

bool dump_fd_plain(uint32_t type, const char *link)
{
	size_t n = strlen(link);
	return type == CR_FD_REG && strncmp(link, "/proc/", 6) && !(n >= 10 && !strcmp(link + n - 10, " (deleted)"));
}

int dump_fd_now(struct dump_ctx *c, struct dump_proc *p, const struct dump_fd_seen *s, struct dump_fd *out,
		fp_error *err)
{
	pid_t pid = p->pid;
	int fd = s->fd;
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s", s->link);
	uint64_t pos = s->pos;
	uint32_t flags = s->flags;
	const char *info = s->info;
	if (dump_fd_shim_transient(link, flags)) {
		dlog(c, "%d fd %d (%s): the shim's own short-lived fd, not dumped", pid, fd, link);
		return 1;
	}
	struct stat st = s->st;
	out->fd = fd;
	out->fi.fd = (uint32_t)fd;
	out->fi.flags = (flags & O_CLOEXEC) ? 1 : 0;
	flags &= ~(uint32_t)O_CLOEXEC;

	uint32_t type;
	if (dump_fd_type(c, pid, fd, link, &st, &type, err))
		return -1;
	/* A deleted file keeps its old path in the entry; its bytes go into a
	 * ghost file (dump_ghost.c). */
	char *deleted = type == CR_FD_REG ? strstr(link, " (deleted)") : NULL;
	if (deleted && deleted[10] == '\0')
		*deleted = '\0';
	else
		deleted = NULL;
	out->fi.type = type;

	uint32_t id;
	size_t slot;
	if (dump_findex_desc(c, 1, pid, fd, dump_desc_key(&st, pos, flags), st.st_ino, &id, &slot)) {
		out->fi.id = id;
		out->fi.type = c->files[id - 1].type; /* a socket's kind is known once its entry is made */
		return dump_fd_locks(c, pid, fd, id, info, err);
	}
	uint32_t tty_info_id = 0, tty_regf_id = 0;
	if (type == CR_FD_TTY && dump_tty_file(c, p, fd, link, &st, flags, &tty_info_id, &tty_regf_id, err))
		return -1;
	struct dump_fkey k = { .kind = 1, .dev = st.st_dev, .ino = st.st_ino, .flags = flags, .pid = pid, .fd = fd };
	cr_file *f = dump_new_file(c, &k, err);
	if (!f || dump_findex_add_desc(c, 1, dump_desc_key(&st, pos, flags), st.st_ino, slot, c->nfiles - 1, err))
		return -1;
	f->type = type;
	out->fi.id = f->id;
	if (type == CR_FD_PIPE) {
		f->has_pipe = true;
		f->pipe.id = f->id;
		f->pipe.pipe_id = (uint32_t)st.st_ino;
		f->pipe.flags = flags;
		bool seen = false;
		for (size_t i = 0; i < c->npipes; i++)
			seen |= c->pipes[i].pipe_id == (uint32_t)st.st_ino;
		if (!seen && peek_pipe(c, pid, fd, st.st_ino, false, err))
			return -1;
	} else if (type == CR_FD_FIFO) {
		/* CRIU's shape: a FIFO entry naming a REG entry that has the path
		 * and the open flags; its queued bytes go to fifo-data.img. */
		size_t at = (size_t)(f - c->files); /* dump_file_path may move c->files */
		uint32_t regf_id;
		if (dump_file_path(c, link, flags, &regf_id, err))
			return -1;
		f = &c->files[at];
		f->has_fifo = true;
		f->fifo.id = f->id;
		f->fifo.pipe_id = (uint32_t)st.st_ino;
		f->fifo.has_regf_id = true;
		f->fifo.regf_id = regf_id;
		bool seen = false;
		for (size_t i = 0; i < c->npipes; i++)
			seen |= c->pipes[i].pipe_id == (uint32_t)st.st_ino && c->pipes[i].fifo;
		if (!seen && peek_pipe(c, pid, fd, st.st_ino, true, err))
			return -1;
	} else if (type == CR_FD_TTY) {
		f->has_tty = true;
		f->tty.id = f->id;
		f->tty.tty_info_id = tty_info_id;
		f->tty.flags = flags;
		f->tty.has_regf_id = true;
		f->tty.regf_id = tty_regf_id;
	} else if (type == CR_FD_MEMFD) {
		if (dump_shmem_memfd_fd(c, pid, fd, link, flags, pos, f, err))
			return -1;
	} else if (type == CR_FD_INETSK) {
		if (dump_socket_file(c, pid, fd, st.st_ino, flags, f, err))
			return -1;
		out->fi.type = type = f->type;
	} else if (type != CR_FD_REG) {
		if (dump_event_file(c, pid, fd, flags, f, err))
			return -1;
	} else {
		f->has_reg = true;
		f->reg.id = f->id;
		f->reg.flags = flags;
		f->reg.pos = pos;
		/* No size: files that grow (logs) would fail CRIU's check. */
		f->reg.name = strdup(link);
		if (!f->reg.name)
			return fp_fail(err, ENOMEM, "out of memory");
		if (deleted && dump_ghost_file(c, pid, fd, &st, f->id, err))
			return -1;
	}
	dlogv(c, "%d fd %d -> file %u type %u flags %#o pos %" PRIu64 " %s", pid, fd, f->id, type, flags, pos, link);
	return dump_fd_locks(c, pid, fd, f->id, info, err);
}

int dump_write_files(struct dump_ctx *c, fp_error *err)
{
	cr_file *ordered = NULL;
	if (dump_usk_file_order(c, &ordered, err))
		return -1;
	int wrc = cr_write_files(c->dirfd, ordered ? ordered : c->files, c->nfiles, err);
	free(ordered);
	if (wrc)
		return -1;
	size_t with_data = 0;
	for (size_t i = 0; i < c->npipes; i++)
		if (c->pipes[i].bytes)
			c->pipes[with_data++] = c->pipes[i];
	/* Entries without data were only markers; their data pointers are NULL. */
	c->npipes = with_data;
	if (with_data && cr_write_pipes_data(c->dirfd, c->pipes, with_data, err))
		return -1;
	return dump_write_ttys(c, err) || dump_write_locks(c, err) || dump_write_remaps(c, err) ? -1 : 0;
}

int dump_write_fdinfo(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *q = &c->procs[i];
		if (q == p)
			break;
		if (q->ids.files_id == p->ids.files_id)
			return 0; /* shared fd table (CLONE_FILES): written once */
	}
	cr_fdinfo *fi = calloc(p->nfds ? p->nfds : 1, sizeof(*fi));
	if (!fi)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nfds; i++)
		fi[i] = p->fds[i].fi;
	int rc = cr_write_fdinfo(c->dirfd, p->ids.files_id, fi, p->nfds, err);
	free(fi);
	return rc;
}
