/* Sockets without connection state, made anew inside the process: a TCP
 * socket (IPv4, IPv6) with its options, bound again to its address and
 * listening again with its backlog if it was; a unix stream listener bound
 * again to its name. The image's checks (rst_image.c) have refused every
 * other kind. */
#include "restore/rst_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "images/tcp_states.h"

#define TCP_STATE_LISTEN 10

static int q_opt(rst_proc *p, int fd, int level, int name, int v, fp_error *err)
{
	return rst_q_mem(p, p->pid, NULL, 0, SYS_setsockopt, (uint64_t)fd, (uint64_t)level, (uint64_t)name, 0,
			 sizeof(int), 0, 3, &v, sizeof(v), NULL, err);
}

/* The options as they were; best effort like the process's own setsockopt
 * calls (a value the kernel clamps differently is not an error). The
 * buffer sizes were read back doubled by the kernel: half is asked. */
int rst_sock_opts(rst_proc *p, int fd, const cr_sk_opts *o, bool tcp, fp_error *err)
{
	int rc = 0;
	rc |= q_opt(p, fd, SOL_SOCKET, SO_SNDBUF, (int)(o->so_sndbuf / 2), err);
	rc |= q_opt(p, fd, SOL_SOCKET, SO_RCVBUF, (int)(o->so_rcvbuf / 2), err);
	/* beyond net.core.[wr]mem_max (set by root, or grown by the kernel):
	 * as root only, else the clamped value above stays */
	rc |= q_opt(p, fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)(o->so_sndbuf / 2), err);
	rc |= q_opt(p, fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)(o->so_rcvbuf / 2), err);
	if (o->has_reuseaddr && o->reuseaddr)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_REUSEADDR, 1, err);
	if (o->has_so_reuseport && o->so_reuseport)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_REUSEPORT, 1, err);
	if (o->has_so_keepalive && o->so_keepalive)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_KEEPALIVE, 1, err);
	if (o->has_so_passcred && o->so_passcred)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_PASSCRED, 1, err);
	if (o->has_so_oobinline && o->so_oobinline)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_OOBINLINE, 1, err);
	if (o->has_so_priority && o->so_priority)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_PRIORITY, (int)o->so_priority, err);
	if (o->has_so_rcvlowat && o->so_rcvlowat > 1)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_RCVLOWAT, (int)o->so_rcvlowat, err);
	if (o->has_so_mark && o->so_mark)
		rc |= q_opt(p, fd, SOL_SOCKET, SO_MARK, (int)o->so_mark, err);
	if (o->so_snd_tmo_sec || o->so_snd_tmo_usec || o->so_rcv_tmo_sec || o->so_rcv_tmo_usec) {
		struct timeval s = { (time_t)o->so_snd_tmo_sec, (suseconds_t)o->so_snd_tmo_usec };
		struct timeval r = { (time_t)o->so_rcv_tmo_sec, (suseconds_t)o->so_rcv_tmo_usec };
		rc |= rst_q_mem(p, p->pid, NULL, 0, SYS_setsockopt, (uint64_t)fd, SOL_SOCKET, SO_SNDTIMEO, 0, sizeof(s), 0, 3,
				&s, sizeof(s), NULL, err);
		rc |= rst_q_mem(p, p->pid, NULL, 0, SYS_setsockopt, (uint64_t)fd, SOL_SOCKET, SO_RCVTIMEO, 0, sizeof(r), 0, 3,
				&r, sizeof(r), NULL, err);
	}
	if (o->has_so_linger) {
		struct linger l = { 1, (int)o->so_linger };
		rc |= rst_q_mem(p, p->pid, NULL, 0, SYS_setsockopt, (uint64_t)fd, SOL_SOCKET, SO_LINGER, 0, sizeof(l), 0, 3, &l,
				sizeof(l), NULL, err);
	}
	if (tcp && o->has_tcp_keepcnt && o->tcp_keepcnt)
		rc |= q_opt(p, fd, IPPROTO_TCP, TCP_KEEPCNT, (int)o->tcp_keepcnt, err);
	if (tcp && o->has_tcp_keepidle && o->tcp_keepidle)
		rc |= q_opt(p, fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)o->tcp_keepidle, err);
	if (tcp && o->has_tcp_keepintvl && o->tcp_keepintvl)
		rc |= q_opt(p, fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)o->tcp_keepintvl, err);
	return rc ? -1 : 0;
}

static int inet_sock(rst_proc *p, const cr_inet_sk *k, int *fd, fp_error *err)
{
	int64_t r = -1;
	uint64_t type = k->type | SOCK_CLOEXEC | ((k->flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
	if (rst_q(p, p->pid, "socket", RST_MUST, SYS_socket, k->family, type, k->proto, 0, 0, 0, &r, err) ||
	    rst_flush(p, err))
		return -1;
	*fd = (int)r;
	if (k->family == AF_INET6 && k->has_v6only && k->v6only && q_opt(p, *fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, err))
		return -1;
	if (rst_sock_opts(p, *fd, &k->opts, true, err))
		return -1;
	struct sockaddr_storage a = { 0 };
	socklen_t al;
	if (k->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)k->src_port);
		s4->sin_addr.s_addr = k->n_src_addr ? k->src_addr[0] : 0;
		al = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)k->src_port);
		if (k->n_src_addr == 4)
			memcpy(&s6->sin6_addr, k->src_addr, 16);
		al = sizeof(*s6);
	}
	char what[160];
	/* a connection that ended gave its port back (one bound by hand stays
	 * the socket's: not restored), and reads EOF */
	bool ended = k->has_shutdown && k->state == FP_TCP_CLOSE;
	bool bound = (k->src_port && !ended) || k->state == TCP_STATE_LISTEN;
	snprintf(what, sizeof(what), "binding a TCP socket to port %u again (is the dumped process still running, "
		 "or another one on that port?)", k->src_port);
	if (bound && rst_q_mem(p, p->pid, what, RST_MUST, SYS_bind, (uint64_t)*fd, 0, al, 0, 0, 0, 1, &a, al, NULL, err))
		return -1;
	if (k->state == TCP_STATE_LISTEN &&
	    rst_q(p, p->pid, "listen", RST_MUST, SYS_listen, (uint64_t)*fd, k->backlog, 0, 0, 0, 0, NULL, err))
		return -1;
	/* sets the socket's shutdown flags and fails ENOTCONN: unchecked */
	if (k->has_shutdown && k->shutdown >= CR_SK_SHUT_READ && k->shutdown <= CR_SK_SHUT_BOTH &&
	    rst_q(p, p->pid, NULL, 0, SYS_shutdown, (uint64_t)*fd, k->shutdown - 1, 0, 0, 0, 0, NULL, err))
		return -1;
	return 0;
}

/* A socket file left at path by the dumped process (which no longer
 * listens): removed, as a restarted server does. One that still answers
 * belongs to a live listener: left alone, and the bind reports it. */
void rst_unix_clear_stale(const char *path, int type)
{
	struct stat st;
	if (lstat(path, &st) || !S_ISSOCK(st.st_mode))
		return;
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNREFUSED)
		unlink(path);
	if (s >= 0)
		close(s);
}

static int unix_sock(rst_proc *p, const cr_unix_sk *u, int *fd, fp_error *err)
{
	int64_t r = -1;
	uint64_t type = u->type | SOCK_CLOEXEC | ((u->flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
	if (rst_q(p, p->pid, "socket(AF_UNIX)", RST_MUST, SYS_socket, AF_UNIX, type, 0, 0, 0, 0, &r, err) ||
	    rst_flush(p, err))
		return -1;
	*fd = (int)r;
	if (rst_sock_opts(p, *fd, &u->opts, false, err))
		return -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (u->name_len > sizeof(a.sun_path))
		return fp_fail(err, EINVAL, "unix socket name of %zu bytes", u->name_len);
	memcpy(a.sun_path, u->name, u->name_len);
	socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + u->name_len);
	if (u->name_len && u->name[0])
		rst_unix_clear_stale(a.sun_path, (int)u->type);
	char what[200];
	snprintf(what, sizeof(what), "binding a unix socket to %.*s again", (int)(u->name_len && u->name[0] ? u->name_len : 0),
		 (const char *)u->name);
	if (u->name_len && rst_q_mem(p, p->pid, what, RST_MUST, SYS_bind, (uint64_t)*fd, 0, al, 0, 0, 0, 1, &a, al, NULL, err))
		return -1;
	if (rst_q(p, p->pid, "listen", RST_MUST, SYS_listen, (uint64_t)*fd, u->backlog, 0, 0, 0, 0, NULL, err))
		return -1;
	/* the file's mode and owner say who may connect (a server running as
	 * another user, or one that chmods its socket, as PostgreSQL does) */
	if (u->has_file_perms && u->name_len && u->name[0] && !(u->has_deleted && u->deleted)) {
		if (rst_flush(p, err))
			return -1;
		if (lchown(a.sun_path, u->file_perms.uid, u->file_perms.gid) < 0 ||
		    chmod(a.sun_path, u->file_perms.mode & 07777) < 0)
			return fp_fail(err, errno, "cannot give the socket file %s its owner %u:%u and mode %#o: %s", a.sun_path,
				       u->file_perms.uid, u->file_perms.gid, u->file_perms.mode & 07777, strerror(errno));
	}
	/* a listener whose path was unlinked: bound again, then unlinked */
	if (u->has_deleted && u->deleted && u->name_len && u->name[0] && (rst_flush(p, err) || (unlink(a.sun_path), 0)))
		return -1;
	return 0;
}

int rst_sock_make(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	if (f->type == CR_FD_INETSK && f->has_isk)
		return inet_sock(p, &f->isk, fd, err);
	if (f->type == CR_FD_UNIXSK && f->has_usk)
		return unix_sock(p, &f->usk, fd, err);
	return fp_fail(err, EINVAL, "internal: file %u is not a socket the native restorer makes", f->id);
}
