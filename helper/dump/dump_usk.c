/* Unix sockets, as CRIU's UNIXSK file entries: listeners, socket pairs and
 * connected sockets (stream, datagram, seqpacket), bound ones (a path, also
 * unlinked since, or an abstract name), with the messages waiting in their
 * receive queues (sk-queues.img).
 *
 * What a socket does not tell about itself comes from sock_diag: its peer,
 * its state, how it was shut down, the inode of its socket file. The queue
 * is read through the dumper's own reference to the socket with MSG_PEEK
 * and a peek offset (SO_PEEK_OFF), which takes nothing out of it; the
 * socket's own peek offset is put back afterwards. A peer must be in the
 * dumped tree too (checked once every process is read: dump_usk_check).
 * Fds in flight (SCM_RIGHTS) come to the dumper with the peek; each is
 * the file entry of the process that holds the same open file, or a new
 * one when it is a regular file no process holds. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "images/criu_io.h"

#define TCP_STATE_LISTEN 10
#define MAX_MSGS (1u << 20) /* a bound on the messages of one queue */

static int usk_reply(const struct nlmsghdr *h, uint32_t ino, void *arg)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	if (m->udiag_ino != ino)
		return 0;
	struct usk_diag *d = arg;
	d->state = m->udiag_state;
	d->type = m->udiag_type;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_RQLEN) {
			const struct unix_diag_rqlen *q = RTA_DATA(a);
			d->rq = q->udiag_rqueue;
			d->wq = q->udiag_wqueue;
		} else if (a->rta_type == UNIX_DIAG_PEER) {
			d->peer = *(const uint32_t *)RTA_DATA(a);
		} else if (a->rta_type == UNIX_DIAG_SHUTDOWN) {
			d->shutdown = *(const uint8_t *)RTA_DATA(a);
		} else if (a->rta_type == UNIX_DIAG_NAME) {
			size_t n = RTA_PAYLOAD(a);
			d->name_len = n < sizeof(d->name) ? n : sizeof(d->name);
			memcpy(d->name, RTA_DATA(a), d->name_len);
		} else if (a->rta_type == UNIX_DIAG_VFS) {
			const struct unix_diag_vfs *v = RTA_DATA(a);
			d->has_vfs = true;
			d->vfs_ino = v->udiag_vfs_ino;
		}
	}
	return 1;
}

int dump_usk_query(uint32_t ino, struct usk_diag *d)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = { 0 };
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = ino;
	req.r.udiag_show = UDIAG_SHOW_RQLEN | UDIAG_SHOW_PEER | UDIAG_SHOW_VFS | UDIAG_SHOW_NAME;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u; /* any */
	memset(d, 0, sizeof(*d));
	return dump_sock_diag(&req, sizeof(req), ino, usk_reply, d);
}

static int add_packet(struct dump_ctx *c, uint32_t id, const uint8_t *data, size_t len, fp_error *err)
{
	if (c->nskq == c->capskq) {
		size_t cap = c->capskq ? c->capskq * 2 : 16;
		cr_sk_packet *n = realloc(c->skq, cap * sizeof(*n));
		if (!n)
			return fp_fail(err, ENOMEM, "out of memory");
		c->skq = n;
		c->capskq = cap;
	}
	cr_sk_packet *pk = &c->skq[c->nskq];
	memset(pk, 0, sizeof(*pk));
	pk->data = malloc(len ? len : 1);
	if (!pk->data)
		return fp_fail(err, ENOMEM, "out of memory");
	memcpy(pk->data, data, len);
	pk->id_for = id;
	pk->length = (uint32_t)len;
	c->nskq++;
	return 0;
}

/* The fds a peeked message carried are ours now: each is kept until every
 * process is read, when its file entry is found (dump_usk_check). */
static int keep_rights(struct dump_ctx *c, cr_sk_packet *pk, const int *fds, size_t n, fp_error *err)
{
	cr_scm *scm = calloc(1, sizeof(*scm));
	uint32_t *ids = calloc(n ? n : 1, sizeof(*ids));
	struct dump_inflight *fl = realloc(c->inflight, (c->ninflight + n) * sizeof(*fl));
	if (fl)
		c->inflight = fl;
	if (!scm || !ids || !fl) {
		free(scm), free(ids);
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	scm->type = SCM_RIGHTS;
	scm->rights = ids;
	scm->n_rights = n;
	pk->scm = scm;
	pk->n_scm = 1;
	for (size_t i = 0; i < n; i++)
		c->inflight[c->ninflight++] = (struct dump_inflight){ fds[i], (size_t)(pk - c->skq), i };
	return 0;
}

/* The control data of a peeked message: its fds in flight (SCM_RIGHTS) into
 * the packet, the sender's credentials (with SO_PASSCRED). */
static int take_control(struct dump_ctx *c, struct msghdr *mh, fp_error *err)
{
	cr_sk_packet *pk = &c->skq[c->nskq - 1];
	int rc = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[253];
			memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
			if (rc || pk->n_scm) { /* (one SCM_RIGHTS per message) */
				for (size_t i = 0; i < n; i++)
					close(fds[i]);
				continue;
			}
			rc = keep_rights(c, pk, fds, n, err);
		} else if (cm->cmsg_type == SCM_CREDENTIALS) {
			const struct ucred *cr = (const struct ucred *)CMSG_DATA(cm);
			pk->has_ucred = true;
			pk->ucred = (cr_sk_ucred){ cr->uid, cr->gid, (uint32_t)cr->pid };
		}
	}
	return rc;
}

/* Every message queued for socket s (entry id), oldest first, left where
 * it is. A datagram is read whole: a buffer too small for one is grown
 * and the same offset read again. */
static int peek_queue(struct dump_ctx *c, pid_t pid, int fd, int s, const struct usk_diag *d, uint32_t id,
		      fp_error *err)
{
	int old = -1, zero = 0;
	socklen_t ol = sizeof(old);
	if (getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, &ol) || setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)))
		return fp_fail(err, errno, "cannot read the queue of unix socket fd %d of %d (SO_PEEK_OFF): %s", fd, pid,
			       strerror(errno));
	bool stream = d->type == SOCK_STREAM;
	size_t cap = 64 * 1024, pos = 0;
	uint8_t *buf = malloc(cap);
	union {
		char b[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	int rc = buf ? 0 : fp_fail(err, ENOMEM, "out of memory");
	for (unsigned n = 0; !rc && n < MAX_MSGS; n++) {
		struct iovec iov = { buf, cap };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		ssize_t r = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (stream ? 0 : MSG_TRUNC));
		if (r < 0 && errno == EINTR) {
			n--;
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0) {
			rc = fp_fail(err, errno, "peeking at the queue of unix socket fd %d of %d: %s", fd, pid, strerror(errno));
			break;
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			rc = fp_fail(err, EMSGSIZE, "a message queued on unix socket fd %d of %d carries more control data "
				     "than a message can (over 253 fds?)", fd, pid);
			break;
		}
		/* 0: the end of a stream, or of a seqpacket connection whose peer
		 * closed; a datagram of no bytes otherwise */
		if (r == 0 && (stream || (d->shutdown & 1)))
			break;
		if ((size_t)r > cap) { /* a datagram bigger than the buffer: again, whole */
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
				for (size_t i = 0; cm->cmsg_type == SCM_RIGHTS && i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
					close(((int *)CMSG_DATA(cm))[i]);
			free(buf);
			cap = (size_t)r;
			buf = malloc(cap);
			int at = (int)pos;
			if (!buf || setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &at, sizeof(at)))
				rc = fp_fail(err, buf ? errno : ENOMEM, "re-reading a datagram of %zd bytes", r);
			n--;
			continue;
		}
		pos += (size_t)r;
		if (add_packet(c, id, buf, (size_t)r, err))
			rc = -1;
		else
			rc = take_control(c, &mh, err);
	}
	free(buf);
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) && !rc)
		rc = fp_fail(err, errno, "cannot put back the peek offset of unix socket fd %d of %d: %s", fd, pid,
			     strerror(errno));
	return rc;
}

int dump_unix_socket(struct dump_ctx *c, pid_t pid, int fd, int s, cr_file *f, fp_error *err)
{
	cr_unix_sk *u = &f->usk;
	f->has_usk = true;
	struct usk_diag d;
	int r = dump_usk_query(u->ino, &d);
	if (r <= 0)
		return fp_fail(err, r < 0 ? errno : ENOENT, "cannot find unix socket %u (fd %d of %d) through sock_diag%s%s",
			       u->ino, fd, pid, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
	struct sockaddr_un me;
	socklen_t ml = sizeof(me);
	if (getsockname(s, (struct sockaddr *)&me, &ml) < 0)
		return fp_fail(err, errno, "getsockname of fd %d of %d: %s", fd, pid, strerror(errno));
	size_t nl = ml > offsetof(struct sockaddr_un, sun_path) ? ml - offsetof(struct sockaddr_un, sun_path) : 0;
	/* A path keeps its terminating NUL, as the kernel (and CRIU's image)
	 * has it: CRIU's restore uses the name as a C string (unlink, bind). */
	if (nl && me.sun_path[0] && me.sun_path[0] != '/')
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is a unix socket bound to a relative path (%.*s); only absolute paths and "
				    "abstract names are supported",
				    fd, pid, (int)nl, me.sun_path);
	u->type = d.type;
	u->state = d.state;
	u->peer = d.peer;
	if (d.shutdown) {
		u->has_shutdown = true;
		u->shutdown = d.shutdown & 3;
	}
	u->name = malloc(nl + 1);
	if (!u->name)
		return fp_fail(err, ENOMEM, "out of memory");
	memcpy(u->name, me.sun_path, nl);
	u->name[nl] = 0;
	u->name_len = nl;
	/* A path bound by an accepted socket is its listener's: only the
	 * socket that made the file can have lost it. */
	struct stat st;
	if (nl && me.sun_path[0] && d.has_vfs && (stat((char *)u->name, &st) || st.st_ino != d.vfs_ino))
		u->has_deleted = u->deleted = true;
	else if (nl && me.sun_path[0] && d.has_vfs) { /* who may connect: the file's mode and owner */
		u->has_file_perms = true;
		u->file_perms = (cr_file_perms){ .mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid };
	}
	dump_sock_opts(s, false, &u->opts);
	if (d.state == TCP_STATE_LISTEN) {
		if (d.type != SOCK_STREAM && d.type != SOCK_SEQPACKET)
			return fp_fail(err, EINVAL, "unix socket fd %d of %d listens but is of type %u", fd, pid, d.type);
		if (d.rq && c->o->drop_waiting)
			dlog(c, "listening unix socket fd %d of %d: %u connection(s) waiting to be accepted left out",
			     fd, pid, d.rq);
		else if (d.rq)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EAGAIN,
					    "listening unix socket fd %d of %d has %u connection(s) waiting to be accepted, "
					    "which a snapshot would drop; dump again once they are accepted",
					    fd, pid, d.rq);
		u->backlog = d.wq;
		return 0;
	}
	return peek_queue(c, pid, fd, s, &d, f->id, err);
}

const cr_file *dump_usk_by_ino(const struct dump_ctx *c, uint32_t ino)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (c->files[i].type == CR_FD_UNIXSK && c->files[i].has_usk && c->files[i].usk.ino == ino)
			return &c->files[i];
	return NULL;
}

/* The file entry of an fd in flight: the open file description a process
 * of the tree holds (kcmp), or else, for a regular file or a directory, a
 * new entry with its path, flags and offset. */
static int inflight_id(struct dump_ctx *c, int fd, uint32_t *id, fp_error *err)
{
	struct stat st;
	if (fstat(fd, &st))
		return fp_fail(err, errno, "fstat of an fd in flight: %s", strerror(errno));
	for (size_t i = 0; i < c->nfiles; i++) {
		const struct dump_fkey *k = &c->fkeys[i];
		if (k->kind == 1 && k->dev == st.st_dev && k->ino == st.st_ino &&
		    syscall(SYS_kcmp, getpid(), k->pid, KCMP_FILE, fd, k->fd) == 0) {
			*id = c->files[i].id;
			return 0;
		}
	}
	char path[64], link[PATH_MAX], info[4096];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "a unix socket's queue holds an fd in flight (%s) that no process of the tree has open; "
				    "forkpoint saves such fds only for regular files and directories: let the program "
				    "receive it first, or use `criu dump`", link);
	if (n <= 0 || link[0] != '/' || strstr(link, " (deleted)"))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "a unix socket's queue holds an fd in flight on a file without a path (%s)", link);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f0 = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = f0 < 0 ? -1 : read(f0, info, sizeof(info) - 1);
	if (f0 >= 0)
		close(f0);
	info[got > 0 ? got : 0] = 0;
	const char *pp = strstr(info, "pos:"), *fp = strstr(info, "flags:");
	if (!pp || !fp)
		return fp_fail(err, EIO, "cannot read the offset and flags of an fd in flight (%s)", link);
	struct dump_fkey k = { .kind = 3, .dev = st.st_dev, .ino = st.st_ino };
	cr_file *f = dump_new_reg_file(c, &k, link, (uint32_t)strtoul(fp + 6, NULL, 8) & ~(uint32_t)O_CLOEXEC,
				       strtoull(pp + 4, NULL, 10), err);
	if (!f)
		return -1;
	*id = f->id;
	dlogv(c, "fd in flight: %s -> file %u (held by no process)", link, f->id);
	return 0;
}

int dump_usk_check(struct dump_ctx *c, fp_error *err)
{
	for (size_t i = 0; i < c->ninflight; i++) {
		struct dump_inflight *fl = &c->inflight[i];
		if (inflight_id(c, fl->fd, &c->skq[fl->pkt].scm[0].rights[fl->slot], err))
			return -1;
	}
	/* (dump_usk_external may add entries: by index) */
	for (size_t i = 0; i < c->nfiles; i++) {
		const cr_file *f = &c->files[i];
		if (f->type == CR_FD_UNIXSK && f->has_usk && f->usk.peer && !dump_usk_by_ino(c, f->usk.peer) &&
		    dump_usk_external(c, i, err))
			return -1;
	}
	return 0;
}

int dump_usk_write(struct dump_ctx *c, fp_error *err)
{
	return c->nskq ? cr_write_sk_queues(c->dirfd, c->skq, c->nskq, err) : 0;
}

void dump_usk_free(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->ninflight; i++)
		close(c->inflight[i].fd);
	free(c->inflight);
	c->inflight = NULL;
	c->ninflight = 0;
	cr_free_sk_queues(c->skq, c->nskq);
	c->skq = NULL;
	c->nskq = c->capskq = 0;
}
