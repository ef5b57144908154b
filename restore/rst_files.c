/* The fd table, cwd, root and umask. The stub starts with no fds at all;
 * every image fd is created inside it (open or pipe2, injected) and moved
 * onto its number with dup3, so open file descriptions are the target's own.
 * fds that shared a description in the image share one again (dup). */
#include "restore/rst_int.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "images/tcp_states.h"
#include "ptrace/pt_mem.h"

#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

struct placed {
	uint32_t id; /* file id */
	int fd;      /* an fd in the target that holds it */
};

struct pipe_ends {
	uint32_t pipe_id;
	int end[2]; /* temporary fds in the target (above every image fd), -1 once closed */
	bool shared; /* the tree's share closes them, once every process has its ends */
};

/* Opens path in the target now (its fd number is needed for the calls
 * queued after it); what was queued before runs in the same round trip. */
int rst_open_now(rst_proc *p, const char *what, const char *path, uint32_t flags, int *fd, fp_error *err)
{
	int64_t r = -1;
	if (rst_q_mem(p, p->pid, what, RST_MUST, SYS_openat, (uint64_t)AT_FDCWD, 0, flags, 0, 0, 0, 1, path,
		      strlen(path) + 1, &r, err) ||
	    rst_flush(p, err))
		return -1;
	*fd = (int)r;
	return 0;
}

/* Queues putting temporary fd tfd onto fd (closing tfd), with FD_CLOEXEC as
 * asked. */
static int place(rst_proc *p, int tfd, int fd, bool cloexec, bool keep_tmp, fp_error *err)
{
	char what[96];
	if (tfd == fd) {
		/* Temporary fds are made close-on-exec: it must go if the image's fd
		 * had none. */
		snprintf(what, sizeof(what), "setting the flags of fd %d", fd);
		return rst_q(p, p->pid, what, RST_MUST, SYS_fcntl, (uint64_t)fd, F_SETFD, cloexec ? FD_CLOEXEC : 0, 0, 0, 0,
			     NULL, err);
	}
	snprintf(what, sizeof(what), "dup3(%d, %d)", tfd, fd);
	if (rst_q(p, p->pid, what, RST_MUST, SYS_dup3, (uint64_t)tfd, (uint64_t)fd, cloexec ? O_CLOEXEC : 0, 0, 0, 0, NULL,
		  err))
		return -1;
	if (!keep_tmp)
		return rst_q(p, p->pid, "close", RST_MUST, SYS_close, (uint64_t)tfd, 0, 0, 0, 0, 0, NULL, err);
	return 0;
}

static const cr_pipe_data *pipe_data(const rst_image *im, uint32_t pipe_id)
{
	for (size_t i = 0; i < im->npd; i++)
		if (im->pd[i].pipe_id == pipe_id)
			return &im->pd[i];
	return NULL;
}

/* A new pipe in the target, its ends moved above every image fd, refilled
 * with the bytes it held at dump time. */
static int make_pipe(rst_proc *p, uint32_t pipe_id, int high, struct pipe_ends *pe, fp_error *err)
{
	int64_t r;
	uint64_t a;
	int fds[2];
	if (rst_scratch_put(p, 0, NULL, 0, &a, err) ||
	    rst_sys(p, p->pid, "pipe2", SYS_pipe2, a, O_CLOEXEC, 0, 0, 0, 0, &r, err) ||
	    fp_mem_read(p->pid, a, fds, sizeof(fds), err))
		return -1;
	pe->pipe_id = pipe_id;
	int64_t moved[2] = { -1, -1 };
	for (int i = 0; i < 2; i++)
		if (rst_q(p, p->pid, "moving a pipe end", RST_MUST, SYS_fcntl, (uint64_t)fds[i], F_DUPFD_CLOEXEC, (uint64_t)high,
			  0, 0, 0, &moved[i], err) ||
		    rst_q(p, p->pid, "close", RST_MUST, SYS_close, (uint64_t)fds[i], 0, 0, 0, 0, 0, NULL, err))
			return -1;
	if (rst_flush(p, err))
		return -1;
	pe->end[0] = (int)moved[0];
	pe->end[1] = (int)moved[1];
	return rst_pipe_refill(p, pe->end[1], pipe_data(p->im, pipe_id), err);
}

int rst_pipe_refill(rst_proc *p, int wfd, const cr_pipe_data *pd, fp_error *err)
{
	int64_t r;
	if (!pd || !pd->bytes)
		return 0;
	uint32_t pipe_id = pd->pipe_id;
	if (pd->has_size && pd->size > 65536 &&
	    rst_sys_raw(p, p->pid, SYS_fcntl, (uint64_t)wfd, F_SETPIPE_SZ, pd->size, 0, 0, 0, &r, err))
		return -1;
	/* Write the queued bytes from here through a copy of the write end. */
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	int local = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, wfd, 0);
	int e = errno;
	if (pidfd >= 0)
		close(pidfd);
	if (local < 0)
		return fp_fail(err, e, "cannot reach the restored pipe %u to refill it: %s", pipe_id, strerror(e));
	int cap = fcntl(local, F_GETPIPE_SZ);
	int rc = 0;
	if (cap >= 0 && (uint32_t)cap < pd->bytes)
		rc = fp_fail(err, ENOSPC,
			     "pipe %u held %u bytes but a pipe here holds at most %d (pipe-max-size; CAP_SYS_RESOURCE is "
			     "missing)", pipe_id, pd->bytes, cap);
	else if (write(local, pd->data, pd->bytes) != (ssize_t)pd->bytes)
		rc = fp_fail(err, errno, "refilling pipe %u: %s", pipe_id, strerror(errno));
	close(local);
	rst_logf(p->log, 3, "pipe %u refilled with %u bytes", pipe_id, pd->bytes);
	return rc;
}

int rst_fetch_fd(rst_proc *p, pid_t pid, int fd, int *out, fp_error *err)
{
	int64_t r = -1;
	char what[96];
	snprintf(what, sizeof(what), "pidfd_getfd of fd %d of process %d", fd, (int)pid);
	if (rst_q_room(p, 3, 0, err) ||
	    rst_q(p, p->pid, "pidfd_open", RST_MUST, SYS_pidfd_open, (uint64_t)pid, 0, 0, 0, 0, 0, NULL, err) ||
	    rst_q(p, p->pid, what, RST_MUST | RST_REF(0, 1), SYS_pidfd_getfd, 0, (uint64_t)fd, 0, 0, 0, 0, &r, err) ||
	    rst_q(p, p->pid, "close", RST_MUST | RST_REF(0, 2), SYS_close, 0, 0, 0, 0, 0, 0, NULL, err) || rst_flush(p, err))
		return -1;
	*out = (int)r;
	return 0;
}

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : 16;
	void *a = realloc(arr, nc * size);
	if (a)
		*cap = nc;
	return a;
}

static int share_note_file(rst_share *sh, uint32_t id, pid_t pid, int fd, fp_error *err)
{
	rst_share_file *f = grow(sh->files, &sh->capfiles, sh->nfiles, sizeof(*f));
	if (!f)
		return fp_fail(err, ENOMEM, "out of memory");
	sh->files = f;
	sh->files[sh->nfiles++] = (rst_share_file){ id, pid, fd };
	return 0;
}

static const rst_share_file *share_file(const rst_share *sh, uint32_t id, pid_t not_pid)
{
	for (size_t i = 0; sh && i < sh->nfiles; i++)
		if (sh->files[i].id == id && sh->files[i].pid != not_pid)
			return &sh->files[i];
	return NULL;
}

static const rst_share_pipe *share_pipe(const rst_share *sh, uint32_t pipe_id, const rst_proc *not_p)
{
	for (size_t i = 0; sh && i < sh->npipes; i++)
		if (sh->pipes[i].pipe_id == pipe_id && sh->pipes[i].owner != not_p)
			return &sh->pipes[i];
	return NULL;
}

int rst_share_done(rst_share *sh, fp_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < sh->npipes; i++)
		for (int e = 0; e < 2; e++)
			if (sh->pipes[i].owner && sh->pipes[i].owner->pid > 0 &&
			    rst_sys_raw(sh->pipes[i].owner, sh->pipes[i].owner->pid, SYS_close, (uint64_t)sh->pipes[i].end[e], 0,
					0, 0, 0, 0, &(int64_t){ 0 }, rc ? NULL : err))
				rc = -1; /* the first error is kept */
	free(sh->files);
	free(sh->pipes);
	memset(sh, 0, sizeof(*sh));
	return rc;
}

static int restore_fds(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	int high = 0;
	for (size_t i = 0; i < im->nfdi; i++)
		if ((int)im->fdi[i].fd >= high)
			high = (int)im->fdi[i].fd + 1;
	/* pipe ends wait above high until placed: two per fd at most */
	if (rst_fd_room(p, high, 2 * im->nfdi + 16, err))
		return -1;
	struct placed *pl = calloc(im->nfdi + 1, sizeof(*pl));
	struct pipe_ends *pp = calloc(im->nfdi + 1, sizeof(*pp));
	struct {
		int fd;
		int64_t want, got;
	} *seek = calloc(im->nfdi + 1, sizeof(*seek));
	size_t npl = 0, npp = 0, nseek = 0;
	int rc = -1;
	if (!pl || !pp || !seek) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < im->nfdi; i++) {
		const cr_fdinfo *fi = &im->fdi[i];
		const cr_file *f = rst_file(im, fi->id);
		int fd = (int)fi->fd;
		bool cloexec = fi->flags & 1;
		size_t k;
		for (k = 0; k < npl && pl[k].id != fi->id; k++)
			;
		if (k < npl) { /* the same open file description as an earlier fd */
			if (place(p, pl[k].fd, fd, cloexec, true, err))
				goto out;
			continue;
		}
		const rst_share_file *sf = share_file(p->share, fi->id, p->pid);
		if (sf) { /* another process of the tree holds it: the same description */
			int tmp;
			if (rst_fetch_fd(p, sf->pid, sf->fd, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
			pl[npl].id = fi->id;
			pl[npl].fd = fd;
			npl++;
			continue;
		}
		int own = f->type == CR_FD_TTY ? rst_tty_own_fd() : -1;
		if (own >= 0) {
			/* The restorer's own terminal, as the very open file
			 * description it holds: what a process started from
			 * this terminal inherits (same flags, same file). */
			int tmp;
			if (rst_fetch_fd(p, getpid(), own, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else if (f->type == CR_FD_REG || f->type == CR_FD_TTY) {
			char ttybuf[64];
			const char *path = f->type == CR_FD_REG ? rst_ghost_path(p, f, err)
							       : rst_tty_path(im, f, ttybuf, sizeof(ttybuf));
			if (!path && f->type == CR_FD_REG)
				goto out;
			if (!path) {
				fp_fail(err, ENXIO, "fd %d: its terminal %s is gone (run the restore from a terminal)", fd,
					rst_file_path(im, f->tty.regf_id));
				goto out;
			}
			uint32_t flags = f->type == CR_FD_REG ? f->reg.flags : f->tty.flags;
			/* never acquire a controlling terminal by accident */
			flags = (flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY;
			char what[4200];
			int tmp;
			snprintf(what, sizeof(what), "opening %s for fd %d", path, fd);
			if (rst_open_now(p, what, path, flags, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
			if (f->type == CR_FD_REG && f->reg.pos) {
				snprintf(what, sizeof(what), "fd %d (%s): seeking to offset %llu", fd, path,
					 (unsigned long long)f->reg.pos);
				seek[nseek].fd = fd;
				seek[nseek].want = (int64_t)f->reg.pos;
				if (rst_q(p, p->pid, what, RST_MUST, SYS_lseek, (uint64_t)fd, f->reg.pos, SEEK_SET, 0, 0, 0,
					  &seek[nseek].got, err))
					goto out;
				nseek++;
			}
		} else if (f->type == CR_FD_PIPE) {
			int end = (f->pipe.flags & O_ACCMODE) == O_WRONLY ? 1 : 0;
			const rst_share_pipe *sp = share_pipe(p->share, f->pipe.pipe_id, p);
			size_t j;
			for (j = 0; j < npp && pp[j].pipe_id != f->pipe.pipe_id; j++)
				;
			if (j == npp && sp) { /* made by another process of the tree */
				int tmp;
				if (rst_fetch_fd(p, sp->owner->pid, sp->end[end], &tmp, err) || place(p, tmp, fd, cloexec, false, err))
					goto out;
			} else {
				if (j == npp) {
					if (make_pipe(p, f->pipe.pipe_id, high, &pp[npp], err))
						goto out;
					npp++;
					if (p->share) { /* its ends stay open for the rest of the tree */
						rst_share *sh = p->share;
						rst_share_pipe *np = grow(sh->pipes, &sh->cappipes, sh->npipes, sizeof(*np));
						if (!np) {
							fp_fail(err, ENOMEM, "out of memory");
							goto out;
						}
						sh->pipes = np;
						sh->pipes[sh->npipes++] = (rst_share_pipe){ f->pipe.pipe_id, p,
											    { pp[j].end[0], pp[j].end[1] } };
						pp[j].shared = true;
					}
				}
				if (place(p, pp[j].end[end], fd, cloexec, true, err))
					goto out;
			}
			uint32_t fl = f->pipe.flags & SETFL_MASK;
			if (fl && rst_q(p, p->pid, "fcntl(F_SETFL) on a pipe", RST_MUST, SYS_fcntl, (uint64_t)fd, F_SETFL, fl, 0, 0,
					0, NULL, err))
				goto out;
		} else if (f->type == CR_FD_FIFO) {
			int tmp;
			if (rst_fifo_open(p, f, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else if (f->type == CR_FD_INETSK && f->has_isk && fp_tcp_state_has(f->isk.state, FP_TCPF_CONNECTED)) {
			int tmp;
			if (!p->tcp) {
				fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					     "fd %d is a TCP connection (%s), which this kind of restore cannot make", fd,
					     fp_tcp_state_name(f->isk.state));
				goto out;
			}
			if (rst_tcp_fd(p, f, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else if ((f->type == CR_FD_UNIXSK && !rst_usk_is_listener(f)) || f->type == CR_FD_INOTIFY) {
			int tmp;
			if ((f->type == CR_FD_INOTIFY ? rst_inotify_fd(p, f, &tmp, err) : rst_usk_fd(p, f, &tmp, err)) ||
			    place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else if (f->type == CR_FD_EVENTFD || f->type == CR_FD_SIGNALFD || f->type == CR_FD_TIMERFD ||
			   f->type == CR_FD_EVENTPOLL || f->type == CR_FD_INETSK || f->type == CR_FD_UNIXSK) {
			int tmp;
			bool sock = f->type == CR_FD_INETSK || f->type == CR_FD_UNIXSK;
			if ((sock ? rst_sock_make(p, f, &tmp, err) || (f->type == CR_FD_INETSK && rst_tcp_ended(p, f, err))
				  : rst_evfd_make(p, f, &tmp, err)) ||
			    place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else if (f->type == CR_FD_MEMFD) {
			int tmp;
			if (rst_shm_file_fd(p, f, &tmp, err) || place(p, tmp, fd, cloexec, false, err))
				goto out;
		} else {
			fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "fd %d has a type (%u) the native restorer cannot make",
				     fd, f->type);
			goto out;
		}
		pl[npl].id = fi->id;
		pl[npl].fd = fd;
		npl++;
	}
	/* every fd is in place: epoll watches name them by number */
	if (rst_flush(p, err) || rst_evfd_watches(p, err))
		goto out;
	for (size_t k = 0; k < nseek; k++)
		if (seek[k].got != seek[k].want) {
			fp_fail(err, EIO, "fd %d: cannot seek to offset %lld (got %lld)", seek[k].fd, (long long)seek[k].want,
				(long long)seek[k].got);
			goto out;
		}
	for (size_t k = 0; p->share && k < npl; k++)
		if (share_note_file(p->share, pl[k].id, p->pid, pl[k].fd, err))
			goto out;
	rc = 0;
out:
	for (size_t j = 0; j < npp; j++)
		for (int e = 0; e < 2; e++)
			if (pp[j].end[e] >= 0 && !pp[j].shared &&
			    rst_q(p, p->pid, NULL, 0, SYS_close, (uint64_t)pp[j].end[e], 0, 0, 0, 0, 0, NULL, rc ? NULL : err))
				rc = -1;
	if (rst_flush(p, rc ? NULL : err))
		rc = -1;
	free(pl);
	free(pp);
	free(seek);
	return rc;
}

int rst_files_restore(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	int rc = p->files_shared ? 0 : restore_fds(p, err); /* (the parent filled the shared table) */
	if (rc || rst_tty_finish(p, err) || rst_locks_take(p, err))
		return -1;
	const char *root = rst_file_path(im, im->fs.root_id), *cwd = rst_file_path(im, im->fs.cwd_id);
	/* Both paths are the dumper's view, so the working directory is entered
	 * first: chroot() keeps it, and after chroot the path would resolve
	 * below the new root. */
	char what[4200];
	snprintf(what, sizeof(what), "changing the working directory to %s", cwd);
	if (rst_q_mem(p, p->pid, what, RST_MUST, SYS_chdir, 0, 0, 0, 0, 0, 0, 0, cwd, strlen(cwd) + 1, NULL, err))
		return -1;
	if (root && strcmp(root, "/") &&
	    rst_q_mem(p, p->pid, "chroot", RST_MUST, SYS_chroot, 0, 0, 0, 0, 0, 0, 0, root, strlen(root) + 1, NULL, err))
		return -1;
	if (im->fs.has_umask &&
	    rst_q(p, p->pid, "umask", RST_MUST, SYS_umask, im->fs.umask, 0, 0, 0, 0, 0, NULL, err))
		return -1;
	if (rst_flush(p, err))
		return -1;
	rst_logf(p->log, 3, "%zu fds, cwd %s", im->nfdi, cwd);
	return 0;
}
