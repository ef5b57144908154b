/* Rollback in place: the bytes queued in pipes and sockets (rollback_int.h).
 *
 * A rollback in place leaves pipes, FIFOs and sockets where they are
 * (rollback_fdkind.c proves they are SNAP's), and with them whatever they
 * hold now. SNAP recorded what they held (pipes-data.img, fifo-data.img,
 * sk-queues.img). If that is not what they hold now, the processes would
 * resume with their memory at SNAP and their input not: a reader that had
 * taken a message since SNAP would wait for it again, or one would find a
 * message SNAP never had. That is not SNAP's state, so the rollback is a
 * full restore then, which puts SNAP's bytes back, and says why.
 *
 * Pipes and FIFOs are compared byte for byte: tee() copies their buffers,
 * which stay queued (dump_pipepeek.c). A socket's queue cannot be read
 * without taking it (a peek sees one datagram at a time), so a socket is
 * compared by emptiness: nothing queued at SNAP and nothing now (SIOCINQ).
 * A listening socket's queue is of connections: a snapshot never has one
 * waiting (the dump refuses), so none may wait now either (sock_diag), or
 * the processes would accept a connection SNAP never saw. */
#include "session/rollback_int.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "images/criu_io.h"

#define UNIX_LISTEN 10 /* TCP_LISTEN, as CRIU records a unix socket's state */
#define TCP_LISTEN 10

struct queues {
	cr_pipe_data *pd, *fd;
	size_t npd, nfd;
	cr_sk_packet *pk;
	size_t npk;
	uint64_t *done; /* SNAP's objects compared already (several fds, processes) */
	size_t ndone;
};

static int read_opt(int rc, const fp_error *e, fp_error *err)
{
	if (rc && e->errnum != ENOENT) { /* absent: nothing was queued anywhere */
		*err = *e;
		return -1;
	}
	return 0;
}

static bool seen(struct queues *q, uint64_t id)
{
	for (size_t i = 0; i < q->ndone; i++)
		if (q->done[i] == id)
			return true;
	uint64_t *n = realloc(q->done, (q->ndone + 1) * sizeof(*n));
	if (n)
		q->done = n, q->done[q->ndone++] = id;
	return false;
}

static const cr_pipe_data *snap_bytes(const cr_pipe_data *pd, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (pd[i].pipe_id == id)
			return &pd[i];
	return NULL;
}

static int pipe_same(struct queues *q, pid_t pid, int fd, const cr_fdinfo *fi, const cr_file *f, char *why,
		     size_t len)
{
	bool fifo = fi->type == CR_FD_FIFO;
	uint32_t id = fifo ? f->fifo.pipe_id : f->pipe.pipe_id;
	if (seen(q, id))
		return 1;
	const cr_pipe_data *s = fifo ? snap_bytes(q->fd, q->nfd, id) : snap_bytes(q->pd, q->npd, id);
	struct dump_pipe_bytes now;
	fp_error le;
	if (dump_pipe_peek(pid, fd, id, &now, &le))
		return NOT("the bytes queued in fd %d of %d cannot be compared with SNAP's: %s", fd, (int)pid, le.msg);
	uint32_t want = s ? s->bytes : 0;
	bool same = (uint32_t)now.queued == want && (!want || !memcmp(now.data, s->data, want));
	free(now.data);
	if (!same)
		return NOT("the %s on fd %d of %d holds %d queued byte(s), not the %u SNAP had: they go back with a full "
			   "restore", fifo ? "FIFO" : "pipe", fd, (int)pid, now.queued, want);
	return 1;
}

/* 1 when listening socket fd of pid (inet family, 0: unix) has no
 * connection waiting to be accepted, else 0 with why. */
static int listener_same(pid_t pid, int pidfd, int fd, int family, char *why, size_t len)
{
	int sk = pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0) : -1;
	struct stat st;
	int ok = sk >= 0 && fstat(sk, &st) == 0;
	int e = errno;
	if (sk >= 0)
		close(sk);
	if (!ok)
		return NOT("the connections waiting on listening socket fd %d of %d cannot be counted: %s", fd, (int)pid,
			   strerror(e));
	uint32_t waiting = 0;
	int r;
	if (family) {
		r = dump_inet_waiting(family, (uint32_t)st.st_ino, &waiting);
	} else {
		struct usk_diag d = { 0 };
		r = dump_usk_query((uint32_t)st.st_ino, &d);
		waiting = d.rq;
	}
	if (r <= 0)
		return NOT("the connections waiting on listening socket fd %d of %d cannot be counted (sock_diag%s%s)", fd,
			   (int)pid, r < 0 ? ": " : ": not found", r < 0 ? strerror(errno) : "");
	if (waiting)
		return NOT("listening socket fd %d of %d has %u connection(s) waiting to be accepted, which SNAP had not: "
			   "a full restore drops them", fd, (int)pid, waiting);
	return 1;
}

static int socket_same(struct queues *q, pid_t pid, int pidfd, int fd, const cr_fdinfo *fi, const cr_file *f,
		       char *why, size_t len)
{
	bool usk_listen = fi->type == CR_FD_UNIXSK && f->has_usk && f->usk.state == UNIX_LISTEN;
	bool isk_listen = fi->type == CR_FD_INETSK && f->has_isk && f->isk.state == TCP_LISTEN;
	if (usk_listen || isk_listen)
		return listener_same(pid, pidfd, fd, isk_listen ? (int)f->isk.family : 0, why, len);
	bool had = false;
	for (size_t i = 0; i < q->npk && !had; i++)
		had = q->pk[i].id_for == fi->id;
	int sk = pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0) : -1;
	int queued = -1;
	if (sk >= 0 && ioctl(sk, SIOCINQ, &queued) < 0)
		queued = -1;
	if (sk >= 0)
		close(sk);
	if (queued < 0)
		return NOT("the data queued on socket fd %d of %d cannot be compared with SNAP's: %s", fd, (int)pid,
			   strerror(errno));
	if (had || queued > 0)
		return NOT("socket fd %d of %d %s: its queue goes back with a full restore", fd, (int)pid,
			   had ? "had data queued at SNAP" : "has data queued that SNAP had not");
	return 1;
}

int rb_diff_queues(struct rb_ctx *c, char *why, size_t len, fp_error *err)
{
	struct queues q = { 0 };
	fp_error e;
	int rc = read_opt(cr_read_pipes_data(c->snap_dirfd, &q.pd, &q.npd, &e), &e, err) ||
			 read_opt(cr_read_fifo_data(c->snap_dirfd, &q.fd, &q.nfd, &e), &e, err) ||
			 read_opt(cr_read_sk_queues(c->snap_dirfd, &q.pk, &q.npk, &e), &e, err)
		 ? -1
		 : 1;
	for (size_t i = 0; i < c->nprocs && rc == 1; i++) {
		struct rb_proc *p = &c->procs[i];
		int pidfd = -1;
		for (size_t k = 0; k < p->nfdi && rc == 1; k++) {
			const cr_fdinfo *fi = &p->fdi[k];
			const cr_file *f = rb_file(c, fi->id);
			if (!f)
				continue;
			if ((fi->type == CR_FD_PIPE && f->has_pipe) || (fi->type == CR_FD_FIFO && f->has_fifo)) {
				rc = pipe_same(&q, p->pid, (int)fi->fd, fi, f, why, len);
			} else if (fi->type == CR_FD_UNIXSK || fi->type == CR_FD_INETSK) {
				if (pidfd < 0)
					pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
				if (!seen(&q, ((uint64_t)1 << 32) | fi->id))
					rc = socket_same(&q, p->pid, pidfd, (int)fi->fd, fi, f, why, len);
			}
		}
		if (pidfd >= 0)
			close(pidfd);
	}
	cr_free_pipes_data(q.pd, q.npd);
	cr_free_pipes_data(q.fd, q.nfd);
	cr_free_sk_queues(q.pk, q.npk);
	free(q.done);
	return rc;
}
