/* Sockets: TCP sockets that listen or are not connected (IPv4, IPv6), as
 * CRIU's INETSK file entries; unix sockets are dump_usk.c's.
 *
 * The dumper takes its own reference to the socket (pidfd_getfd) and asks
 * it directly: getsockname and getsockopt, as the process itself would. The
 * two facts a socket does not tell about itself come from sock_diag: the
 * backlog given to listen() and the connections waiting to be accepted.
 * Those waiting connections would be lost (a restored socket is a new one),
 * so such a socket is refused. Established connections are dump_tcp.c's. */
#include "dump/dump_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define TCP_STATE_CLOSE 7
#define TCP_STATE_LISTEN 10

int dump_sock_diag(const void *req, size_t len, uint32_t ino,
		      int (*fn)(const struct nlmsghdr *h, uint32_t ino, void *arg), void *arg)
{
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		return -1;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	int found = 0;
	if (sendto(s, req, len, 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
		found = -1;
		goto out;
	}
	static char buf[32768] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = recv(s, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			found = n < 0 ? -1 : found;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (e->error) {
					errno = -e->error;
					found = found ? found : -1;
				}
				goto out;
			}
			if (!found && fn(h, ino, arg))
				found = 1;
		}
		/* a dump ends with NLMSG_DONE; a single query is one reply */
		if (found || !(((const struct nlmsghdr *)req)->nlmsg_flags & NLM_F_DUMP))
			goto out;
	}
out:
	close(s);
	return found;
}

struct backlog {
	uint32_t waiting, max;
};

static int inet_reply(const struct nlmsghdr *h, uint32_t ino, void *arg)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	if (m->idiag_inode != ino)
		return 0;
	struct backlog *b = arg;
	b->waiting = m->idiag_rqueue; /* for a listener: the accept queue */
	b->max = m->idiag_wqueue;     /* and the backlog it was given */
	return 1;
}

static int inet_backlog(int family, uint32_t ino, struct backlog *b)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = { 0 };
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1u << TCP_STATE_LISTEN;
	return dump_sock_diag(&req, sizeof(req), ino, inet_reply, b);
}

int dump_inet_waiting(int family, uint32_t ino, uint32_t *waiting)
{
	struct backlog b = { 0 };
	int r = inet_backlog(family, ino, &b);
	*waiting = b.waiting;
	return r;
}

static int opt_int(int s, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);
	return getsockopt(s, level, name, &v, &l) == 0 ? v : 0;
}

void dump_sock_opts(int s, bool tcp, cr_sk_opts *o)
{
	o->so_sndbuf = (uint32_t)opt_int(s, SOL_SOCKET, SO_SNDBUF);
	o->so_rcvbuf = (uint32_t)opt_int(s, SOL_SOCKET, SO_RCVBUF);
	struct timeval tv;
	socklen_t l = sizeof(tv);
	if (getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) == 0)
		o->so_snd_tmo_sec = (uint64_t)tv.tv_sec, o->so_snd_tmo_usec = (uint64_t)tv.tv_usec;
	l = sizeof(tv);
	if (getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0)
		o->so_rcv_tmo_sec = (uint64_t)tv.tv_sec, o->so_rcv_tmo_usec = (uint64_t)tv.tv_usec;
	o->has_reuseaddr = true, o->reuseaddr = opt_int(s, SOL_SOCKET, SO_REUSEADDR) != 0;
	o->has_so_reuseport = true, o->so_reuseport = opt_int(s, SOL_SOCKET, SO_REUSEPORT) != 0;
	o->has_so_priority = true, o->so_priority = (uint32_t)opt_int(s, SOL_SOCKET, SO_PRIORITY);
	o->has_so_rcvlowat = true, o->so_rcvlowat = (uint32_t)opt_int(s, SOL_SOCKET, SO_RCVLOWAT);
	o->has_so_mark = true, o->so_mark = (uint32_t)opt_int(s, SOL_SOCKET, SO_MARK);
	o->has_so_passcred = true, o->so_passcred = opt_int(s, SOL_SOCKET, SO_PASSCRED) != 0;
	o->has_so_keepalive = true, o->so_keepalive = opt_int(s, SOL_SOCKET, SO_KEEPALIVE) != 0;
	o->has_so_oobinline = true, o->so_oobinline = (uint32_t)opt_int(s, SOL_SOCKET, SO_OOBINLINE);
	struct linger lg = { 0 };
	l = sizeof(lg);
	if (getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff)
		o->has_so_linger = true, o->so_linger = (uint32_t)lg.l_linger;
	if (tcp) {
		o->has_tcp_keepcnt = true, o->tcp_keepcnt = (uint32_t)opt_int(s, IPPROTO_TCP, TCP_KEEPCNT);
		o->has_tcp_keepidle = true, o->tcp_keepidle = (uint32_t)opt_int(s, IPPROTO_TCP, TCP_KEEPIDLE);
		o->has_tcp_keepintvl = true, o->tcp_keepintvl = (uint32_t)opt_int(s, IPPROTO_TCP, TCP_KEEPINTVL);
	}
}

static int inet_entry(struct dump_ctx *c, pid_t pid, int fd, int s, int family, cr_file *f, fp_error *err)
{
	int type = opt_int(s, SOL_SOCKET, SO_TYPE), proto = opt_int(s, SOL_SOCKET, SO_PROTOCOL);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is a %s socket (type %d, protocol %d); forkpoint dumps TCP sockets that "
				    "listen or are not connected, and unix sockets",
				    fd, pid, family == AF_INET ? "IPv4" : "IPv6", type, proto);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	bool listening = opt_int(s, SOL_SOCKET, SO_ACCEPTCONN) != 0;
	cr_inet_sk *k = &f->isk;
	f->has_isk = true;
	k->family = (uint32_t)family, k->type = (uint32_t)type, k->proto = (uint32_t)proto;
	if (!listening && getpeername(s, (struct sockaddr *)&peer, &pl) == 0) {
		if (dump_tcp_conn(c, pid, fd, s, k, err))
			return -1;
		if (family == AF_INET6)
			k->has_v6only = true, k->v6only = opt_int(s, IPPROTO_IPV6, IPV6_V6ONLY) != 0;
		dump_sock_opts(s, true, &k->opts);
		return 0;
	}
	k->state = listening ? TCP_STATE_LISTEN : TCP_STATE_CLOSE;
	/* A connection that ended while the fd stayed open (its TIME_WAIT, if
	 * any, is the kernel's, outside the tree) leaves a closed socket that
	 * reads EOF: shut down both ways, as only poll() tells. */
	struct pollfd pf = { .fd = s, .events = POLLRDHUP };
	if (!listening && poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP)) {
		int unread = 0;
		if (ioctl(s, SIOCINQ, &unread) == 0 && unread > 0)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "fd %d of %d is a TCP connection that has ended with %d byte(s) not yet read, "
					    "which no image keeps (nor CRIU's); dump again once they are read",
					    fd, pid, unread);
		k->has_shutdown = true, k->shutdown = CR_SK_SHUT_BOTH;
	}
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	if (getsockname(s, (struct sockaddr *)&me, &ml) < 0)
		return fp_fail(err, errno, "getsockname of fd %d of %d: %s", fd, pid, strerror(errno));
	if (family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&me;
		k->src_port = ntohs(a->sin_port);
		k->src_addr[0] = a->sin_addr.s_addr;
		k->n_src_addr = 1;
		k->dst_addr[0] = 0;
		k->n_dst_addr = 1;
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&me;
		k->src_port = ntohs(a->sin6_port);
		memcpy(k->src_addr, &a->sin6_addr, 16);
		k->n_src_addr = 4;
		k->n_dst_addr = 4;
		k->has_v6only = true;
		k->v6only = opt_int(s, IPPROTO_IPV6, IPV6_V6ONLY) != 0;
	}
	/* An ended connection gave its port back (a TIME_WAIT of the kernel
	 * may hold it): the image does not claim it, or a restore that binds
	 * it again (CRIU's) collides. getsockname still names it, as a
	 * restored fd's does not. */
	if (k->has_shutdown && k->state == TCP_STATE_CLOSE)
		k->src_port = 0;
	if (listening) {
		struct backlog b = { 0 };
		int r = inet_backlog(family, k->ino, &b);
		if (r <= 0)
			return fp_fail(err, r < 0 ? errno : ENOENT,
				       "cannot find listening socket %u (fd %d of %d) through sock_diag%s%s", k->ino, fd, pid,
				       r < 0 ? ": " : " (is it in another network namespace?)", r < 0 ? strerror(errno) : "");
		if (b.waiting && c->o->drop_waiting)
			dlog(c, "listening socket fd %d of %d: %u connection(s) waiting to be accepted left out", fd, pid,
			     b.waiting);
		else if (b.waiting)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EAGAIN,
					    "listening socket fd %d of %d has %u connection(s) waiting to be accepted, which a "
					    "snapshot would drop; dump again once they are accepted",
					    fd, pid, b.waiting);
		k->backlog = b.max;
	}
	dump_sock_opts(s, true, &k->opts);
	return 0;
}

int dump_socket_file(struct dump_ctx *c, pid_t pid, int fd, uint64_t ino, uint32_t flags, cr_file *f, fp_error *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int s = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int e = errno;
	if (pidfd >= 0)
		close(pidfd);
	if (s < 0)
		return fp_fail(err, e, "cannot take a reference to socket fd %d of %d (pidfd_getfd): %s", fd, pid, strerror(e));
	int family = opt_int(s, SOL_SOCKET, SO_DOMAIN);
	int rc;
	if (family == AF_INET || family == AF_INET6) {
		f->type = CR_FD_INETSK;
		f->isk.id = f->id, f->isk.ino = (uint32_t)ino, f->isk.flags = flags;
		rc = inet_entry(c, pid, fd, s, family, f, err);
	} else if (family == AF_UNIX) {
		f->type = CR_FD_UNIXSK;
		f->usk.id = f->id, f->usk.ino = (uint32_t)ino, f->usk.flags = flags;
		rc = dump_unix_socket(c, pid, fd, s, f, err);
	} else {
		rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				  "fd %d of %d is a socket of family %d; forkpoint dumps TCP (IPv4, IPv6) and unix sockets only",
				  fd, pid, family);
	}
	close(s);
	return rc;
}
