/* Unix sockets other than listeners in a native restore: socket pairs and
 * connected sockets (stream, datagram, seqpacket), bound ones, and the
 * messages queued for them (sk-queues.img).
 *
 * They are made all at once, here in the restorer, the first time a
 * process needs one: both ends of a connection may live in different
 * processes, and a datagram socket connects to a name another socket of
 * the tree must have bound first. Every process then takes its sockets
 * with pidfd_getfd on us, as it does shared memory (rst_shmem.c).
 *
 * Two ends that name each other become a socketpair: an accepted
 * connection comes back connected the same way, but its name is not its
 * listener's any more (the listener itself is made in its process by
 * rst_sock.c). A connected socket whose peer had closed becomes a
 * socketpair whose other end is closed once its queue is refilled, so it
 * reads its data, then the end. A socket bound to a path that was unlinked
 * is bound again, then its path unlinked. Once every process has its fds
 * (rst_usk_finish), queued messages are sent again in their order from the
 * other end of the pair, or, for a bound datagram socket, to its name from
 * a socket of ours; an fd in flight is taken from the process that holds
 * its file, or a regular file that none holds is opened again. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define TCP_STATE_ESTABLISHED 1
#define TCP_STATE_LISTEN 10
#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

typedef struct rst_usk_sk {
	const cr_unix_sk *u;
	int fd;    /* ours */
	int other; /* the other end of its socketpair, ours too: whom the queue comes from */
	bool orphan; /* other stands for a peer that had closed: closed after the refill */
} rst_usk_sk;

static rst_usk_sk *find_id(rst_usks *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->sk[i].u->id == id)
			return &s->sk[i];
	return NULL;
}

static rst_usk_sk *find_ino(rst_usks *s, uint32_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->sk[i].u->ino == ino)
			return &s->sk[i];
	return NULL;
}

bool rst_usk_is_listener(const cr_file *f)
{
	return f->type == CR_FD_UNIXSK && f->has_usk && f->usk.state == TCP_STATE_LISTEN;
}

static socklen_t sun_of(const cr_unix_sk *u, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, u->name, u->name_len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + u->name_len);
}

/* The name belongs to a listener of the image: this socket is one of its
 * accepted connections and does not bind it itself. */
static bool listeners_name(const rst_image *im, const cr_unix_sk *u)
{
	for (size_t i = 0; i < im->nfiles; i++) {
		const cr_file *f = &im->files[i];
		if (rst_usk_is_listener(f) && !f->usk.uflags && f->usk.name_len == u->name_len && &f->usk != u &&
		    !memcmp(f->usk.name, u->name, u->name_len))
			return true;
	}
	return false;
}

/* The entry of a socket outside the tree that ino names (CRIU's
 * USK_EXTERN: `--ext-unix-sk`), NULL if none. */
static const cr_unix_sk *external(const rst_image *im, uint32_t ino)
{
	for (size_t i = 0; i < im->nfiles; i++)
		if (im->files[i].type == CR_FD_UNIXSK && im->files[i].has_usk && im->files[i].usk.ino == ino &&
		    (im->files[i].usk.uflags & CR_USK_EXTERN))
			return &im->files[i].usk;
	return NULL;
}

/* A datagram socket connected to a named socket outside the tree: to that
 * name again, which the program outside must have bound by now. */
static int connect_external(const rst_usk_sk *k, const cr_unix_sk *x, fp_error *err)
{
	struct sockaddr_un a;
	socklen_t al = sun_of(x, &a);
	bool path = x->name_len && x->name[0];
	int n = (int)(path ? strnlen((const char *)x->name, x->name_len) : x->name_len - 1);
	const char *shown = (const char *)x->name + !path;
	if (x->name_len && !connect(k->fd, (struct sockaddr *)&a, al))
		return 0;
	return fp_fail(err, x->name_len ? errno : EINVAL,
		       "connecting unix socket %u again to %s%.*s, a socket outside the restored tree (--ext-unix-sk): %s; "
		       "start the program that binds it first",
		       k->u->ino, path ? "" : "@", n, shown, x->name_len ? strerror(errno) : "no name in the image");
}

static int make_all(rst_usks *s, const rst_image *im, fp_error *err)
{
	s->sk = calloc(im->nfiles ? im->nfiles : 1, sizeof(*s->sk));
	if (!s->sk)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < im->nfiles; i++)
		if (im->files[i].type == CR_FD_UNIXSK && im->files[i].has_usk && !rst_usk_is_listener(&im->files[i]))
			s->sk[s->n++] = (rst_usk_sk){ &im->files[i].usk, -1, -1, false };
	for (size_t i = 0; i < s->n; i++) {
		rst_usk_sk *k = &s->sk[i];
		if (k->fd >= 0)
			continue;
		rst_usk_sk *peer = k->u->peer ? find_ino(s, k->u->peer) : NULL;
		bool pair = peer && peer->u->peer == k->u->ino && peer != k;
		/* (a datagram socket has no connection to lose: unpaired, it is
		 * unconnected, and a server's state reads "established" too) */
		bool orphan = !k->u->peer && k->u->state == TCP_STATE_ESTABLISHED && k->u->type != SOCK_DGRAM;
		int sv[2];
		if (pair || orphan) {
			if (socketpair(AF_UNIX, (int)k->u->type | SOCK_CLOEXEC, 0, sv))
				return fp_fail(err, errno, "socketpair for unix socket %u: %s", k->u->ino, strerror(errno));
			k->fd = sv[0];
			k->other = sv[1];
			k->orphan = orphan;
			if (pair)
				peer->fd = sv[1], peer->other = sv[0];
		} else if ((k->fd = socket(AF_UNIX, (int)k->u->type | SOCK_CLOEXEC, 0)) < 0) {
			return fp_fail(err, errno, "socket(AF_UNIX) for unix socket %u: %s", k->u->ino, strerror(errno));
		}
	}
	/* names first, then the connections to them */
	for (size_t i = 0; i < s->n; i++) {
		rst_usk_sk *k = &s->sk[i];
		if (!k->u->name_len || listeners_name(im, k->u))
			continue;
		struct sockaddr_un a;
		socklen_t al = sun_of(k->u, &a);
		if (k->u->name[0])
			rst_unix_clear_stale(a.sun_path, (int)k->u->type);
		if (bind(k->fd, (struct sockaddr *)&a, al))
			return fp_fail(err, errno, "binding a unix socket to %.*s again: %s (is the dumped process still "
				       "running?)", (int)k->u->name_len, k->u->name[0] ? (const char *)k->u->name : "", strerror(errno));
	}
	for (size_t i = 0; i < s->n; i++) {
		rst_usk_sk *k = &s->sk[i];
		rst_usk_sk *peer = k->u->peer ? find_ino(s, k->u->peer) : NULL;
		const cr_unix_sk *x = !peer && k->u->peer ? external(im, k->u->peer) : NULL;
		if (x && connect_external(k, x, err))
			return -1;
		if (!peer || k->other >= 0)
			continue;
		struct sockaddr_un a;
		socklen_t al = sun_of(peer->u, &a);
		if (!peer->u->name_len || connect(k->fd, (struct sockaddr *)&a, al))
			return fp_fail(err, peer->u->name_len ? errno : EINVAL,
				       "connecting unix socket %u to %u again: %s", k->u->ino, peer->u->ino,
				       peer->u->name_len ? strerror(errno) : "the peer has no name to connect to");
	}
	return 0;
}

/* A datagram for a bound, unpaired socket: sent to its name by a socket
 * of ours. */
static int send_to_name(rst_usks *s, const rst_usk_sk *k, const cr_sk_packet *pk, fp_error *err)
{
	if (s->sender < 0 && (s->sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return fp_fail(err, errno, "socket: %s", strerror(errno));
	struct sockaddr_un a;
	socklen_t al = sun_of(k->u, &a);
	if (sendto(s->sender, pk->data, pk->length, MSG_DONTWAIT, (struct sockaddr *)&a, al) != (ssize_t)pk->length)
		return fp_fail(err, errno, "putting back a queued message of unix socket %u: %s", k->u->ino, strerror(errno));
	return 0;
}

/* An fd of ours on file entry id, for a message in flight: the open file
 * of the process that holds it, or the regular file opened again. */
static int inflight_fd(const rst_proc *ps, size_t n, uint32_t id, fp_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const rst_image *im = ps[i].im;
		for (size_t j = 0; !im->zombie && j < im->nfdi; j++) {
			if (im->fdi[j].id != id)
				continue;
			int pidfd = (int)syscall(SYS_pidfd_open, ps[i].pid, 0);
			int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)im->fdi[j].fd, 0);
			int e = errno;
			if (pidfd >= 0)
				close(pidfd);
			if (fd < 0)
				return fp_fail(err, e, "taking fd %u of %d for a message in flight: %s", im->fdi[j].fd, (int)ps[i].pid,
					       strerror(e));
			return fd;
		}
	}
	const cr_file *f = rst_file(ps[0].im, id);
	if (!f || f->type != CR_FD_REG || !f->has_reg || !f->reg.name)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "a unix socket's queue holds file %u in flight, which no process holds and which is "
				    "not a regular file", id);
	int fd = open(f->reg.name, (int)(f->reg.flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || lseek(fd, (off_t)f->reg.pos, SEEK_SET) != (off_t)f->reg.pos) {
		fp_fail(err, errno, "opening %s again for a message in flight: %s", f->reg.name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends one message with its fds in flight from `from`. */
static int send_rights(const rst_proc *ps, size_t n, int from, const cr_sk_packet *pk, fp_error *err)
{
	int fds[253];
	size_t nf = pk->scm[0].n_rights;
	if (pk->n_scm != 1 || pk->scm[0].type != SCM_RIGHTS || nf > 253)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "a queued message has control data of a kind the native "
				    "restorer cannot send again");
	size_t got = 0;
	int rc = 0;
	for (; got < nf && !rc; got++)
		if ((fds[got] = inflight_fd(ps, n, pk->scm[0].rights[got], err)) < 0)
			rc = -1;
	if (rc)
		got--;
	union {
		char b[CMSG_SPACE(sizeof(int) * 253)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { pk->data, pk->length };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = CMSG_SPACE(sizeof(int) * nf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nf);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nf);
	if (!rc && sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)pk->length)
		rc = fp_fail(err, errno, "putting back a queued message with %zu fds in flight: %s", nf, strerror(errno));
	for (size_t i = 0; i < got; i++)
		close(fds[i]);
	return rc;
}

static int refill(rst_usks *s, const rst_proc *ps, size_t nps, fp_error *err)
{
	const rst_image *im = ps[0].im;
	for (size_t i = 0; i < im->nskq; i++) {
		const cr_sk_packet *pk = &im->skq[i];
		rst_usk_sk *k = find_id(s, pk->id_for);
		if (!k)
			return fp_fail(err, EINVAL, "sk-queues.img: messages for file %u, which is no unix socket of the image",
				       pk->id_for);
		if (k->other < 0) {
			if (k->u->type != SOCK_DGRAM || !k->u->name_len || pk->n_scm)
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
						    "unix socket %u has queued messages but no peer to send them again",
						    k->u->ino);
			if (send_to_name(s, k, pk, err))
				return -1;
			continue;
		}
		/* The queue may hold more than the sender's buffer takes by
		 * default; the image's own size is set when a process takes it. */
		int big = 64 << 20;
		setsockopt(k->other, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		if (pk->n_scm) {
			if (send_rights(ps, nps, k->other, pk, err))
				return -1;
		} else if (send(k->other, pk->data, pk->length, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)pk->length)
			return fp_fail(err, errno, "putting back %u queued bytes of unix socket %u: %s", pk->length, k->u->ino,
				       strerror(errno));
	}
	return 0;
}

static int finish(rst_usks *s, const rst_image *im, fp_error *err)
{
	for (size_t i = 0; i < s->n; i++) {
		rst_usk_sk *k = &s->sk[i];
		if (k->orphan)
			close(k->other), k->other = -1;
		static const int how[4] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };
		if (k->u->has_shutdown && how[k->u->shutdown & 3] >= 0 && shutdown(k->fd, how[k->u->shutdown & 3]) &&
		    errno != ENOTCONN)
			return fp_fail(err, errno, "shutdown of unix socket %u: %s", k->u->ino, strerror(errno));
		int fl = fcntl(k->fd, F_GETFL);
		if (fl < 0 || fcntl(k->fd, F_SETFL, (fl & ~SETFL_MASK) | (int)(k->u->flags & SETFL_MASK)))
			return fp_fail(err, errno, "flags of unix socket %u: %s", k->u->ino, strerror(errno));
		if (k->u->has_deleted && k->u->deleted && k->u->name_len && k->u->name[0] && !listeners_name(im, k->u))
			unlink((const char *)k->u->name);
	}
	return 0;
}

int rst_usk_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	rst_usks *s = p->usk;
	if (!s->made) {
		s->made = true;
		s->sender = -1;
		if (make_all(s, p->im, err))
			return fp_wrap(err, "making the unix sockets of the tree");
	}
	rst_usk_sk *k = find_id(s, f->id);
	if (!k || k->fd < 0)
		return fp_fail(err, EINVAL, "internal: unix socket file %u was not made", f->id);
	return rst_fetch_fd(p, getpid(), k->fd, fd, err) || rst_sock_opts(p, *fd, &f->usk.opts, false, err) ? -1 : 0;
}

int rst_usk_finish(rst_usks *s, const rst_proc *ps, size_t n, fp_error *err)
{
	if (!s->made)
		return 0;
	if (refill(s, ps, n, err) || finish(s, ps[0].im, err))
		return fp_wrap(err, "refilling the queues of the unix sockets");
	return 0;
}

void rst_usk_free(rst_usks *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->sk[i].fd >= 0)
			close(s->sk[i].fd);
		if (s->sk[i].orphan && s->sk[i].other >= 0)
			close(s->sk[i].other);
	}
	if (s->made && s->sender >= 0)
		close(s->sender);
	free(s->sk);
	memset(s, 0, sizeof(*s));
}
