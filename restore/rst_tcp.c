/* Established TCP connections in a native restore (tcp-stream-<ino>.img,
 * written by a `--tcp-established` dump, forkpoint's or CRIU's).
 *
 * Each socket is made here, in the restorer, in TCP repair mode, and the
 * process takes it with pidfd_getfd, as it does unix sockets (rst_usk.c).
 * In repair mode a socket binds to its old address even if it is taken,
 * gets its sequence numbers before it connects, and connects without a
 * handshake; then the options agreed at the original handshake, the
 * timestamp clock, the receive queue and the sent part of the send queue
 * are put back as they were, without a byte on the wire, and the windows.
 * Once every process has its fds (rst_tcp_finish), each socket leaves
 * repair mode (with a window probe, which tells the peer where it stands),
 * the never-sent part of its send queue is sent as the process had asked,
 * and the network lock the dump took (fp_netlock.h) is lifted: what the
 * peer sent meanwhile arrives with its retransmissions. Both ends of a
 * connection inside the tree are two such sockets; a peer outside never
 * knew. */
#include "restore/rst_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_netlock.h"

struct rst_tcp_sk {
	uint32_t id;
	int fd; /* ours */
	bool repaired;
	bool reuseaddr; /* leaving repair mode clears SO_REUSEADDR: set again after */
	fp_tcp_conn conn;
	cr_tcp_stream ts;
};

static socklen_t sockaddr_of(int family, const uint32_t *addr, size_t n, uint32_t port, struct sockaddr_storage *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)a;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = n ? addr[0] : 0;
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	if (n == 4)
		memcpy(&s6->sin6_addr, addr, 16);
	return sizeof(*s6);
}

static int set(int s, int level, int name, int v)
{
	return setsockopt(s, level, name, &v, sizeof(v));
}

/* Bytes into the selected queue, in pieces the socket's memory takes. */
static int fill(int s, int queue, const uint8_t *p, size_t len)
{
	if (len && set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return -1;
	size_t chunk = len;
	while (len) {
		ssize_t n = send(s, p, len < chunk ? len : chunk, MSG_DONTWAIT);
		if (n < 0 && (errno == ENOMEM || errno == EAGAIN) && chunk > 4096) {
			chunk /= 2;
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int make(struct rst_tcp_sk *k, const cr_inet_sk *ik, int dirfd, fp_error *err)
{
	cr_tcp_stream *ts = &k->ts;
	if (cr_read_tcp_stream(dirfd, ik->ino, ts, err))
		return fp_wrap(err, "TCP connection %u -> %u", ik->src_port, ik->dst_port);
	const char *step = "socket";
	int s = k->fd = socket((int)ik->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		goto fail;
	step = "repair mode (it needs CAP_NET_ADMIN: restore as root)";
	if (set(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))
		goto fail;
	k->repaired = true;
	step = "IPV6_V6ONLY";
	if (ik->family == AF_INET6 && ik->has_v6only && ik->v6only && set(s, IPPROTO_IPV6, IPV6_V6ONLY, 1))
		goto fail;
	/* the buffers before the queues they must hold; the kernel doubles them */
	if (ik->opts.so_sndbuf)
		set(s, SOL_SOCKET, SO_SNDBUFFORCE, (int)(ik->opts.so_sndbuf / 2));
	if (ik->opts.so_rcvbuf)
		set(s, SOL_SOCKET, SO_RCVBUFFORCE, (int)(ik->opts.so_rcvbuf / 2));
	struct sockaddr_storage a;
	socklen_t al = sockaddr_of((int)ik->family, ik->src_addr, ik->n_src_addr, ik->src_port, &a);
	step = "bind";
	if (bind(s, (struct sockaddr *)&a, al))
		goto fail;
	step = "the sequence numbers";
	if (set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(ts->inq_seq - ts->inq_len)) ||
	    set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(ts->outq_seq - ts->outq_len)))
		goto fail;
	al = sockaddr_of((int)ik->family, ik->dst_addr, ik->n_dst_addr, ik->dst_port, &a);
	step = "connect";
	if (connect(s, (struct sockaddr *)&a, al))
		goto fail;
	struct tcp_repair_opt o[4];
	int no = 0;
	o[no++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, ts->mss_clamp };
	if (ts->opt_mask & CR_TCPI_OPT_WSCALE)
		o[no++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, ts->snd_wscale | (ts->rcv_wscale << 16) };
	if (ts->opt_mask & CR_TCPI_OPT_TIMESTAMPS)
		o[no++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (ts->opt_mask & CR_TCPI_OPT_SACK)
		o[no++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	step = "the options (mss, window scale, timestamps, SACK)";
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(no * sizeof(o[0]))))
		goto fail;
	step = "the timestamp";
	if (ts->has_timestamp && set(s, IPPROTO_TCP, TCP_TIMESTAMP, (int)ts->timestamp))
		goto fail;
	step = "the receive queue";
	if (fill(s, TCP_RECV_QUEUE, ts->inq, ts->inq_len))
		goto fail;
	step = "the send queue";
	uint32_t unsent = ts->has_unsq_len ? ts->unsq_len : 0;
	if (fill(s, TCP_SEND_QUEUE, ts->outq, ts->outq_len - unsent))
		goto fail;
	if (ts->has_snd_wl1 && ts->has_snd_wnd && ts->has_max_window && ts->has_rcv_wnd && ts->has_rcv_wup) {
		struct tcp_repair_window w = { ts->snd_wl1, ts->snd_wnd, ts->max_window, ts->rcv_wnd, ts->rcv_wup };
		step = "the windows";
		if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
			goto fail;
	}
	set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	return 0;
fail:
	return fp_fail(err, errno, "TCP connection %u -> %u (%u+%u queued bytes): %s: %s", ik->src_port, ik->dst_port,
		       ts->inq_len, ts->outq_len, step, strerror(errno));
}

int rst_tcp_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	rst_tcps *s = p->tcp;
	struct rst_tcp_sk *k = NULL;
	for (size_t i = 0; i < s->n && !k; i++)
		if (s->sk[i].id == f->id)
			k = &s->sk[i];
	if (!k) {
		struct rst_tcp_sk *a = realloc(s->sk, (s->n + 1) * sizeof(*a));
		if (!a)
			return fp_fail(err, ENOMEM, "out of memory");
		s->sk = a;
		k = &a[s->n++];
		memset(k, 0, sizeof(*k));
		k->id = f->id;
		k->fd = -1;
		const cr_inet_sk *ik = &f->isk;
		k->reuseaddr = ik->opts.has_reuseaddr && ik->opts.reuseaddr;
		k->conn.family = (int)ik->family;
		memcpy(k->conn.src, ik->src_addr, ik->n_src_addr * 4);
		memcpy(k->conn.dst, ik->dst_addr, ik->n_dst_addr * 4);
		k->conn.sport = (uint16_t)ik->src_port, k->conn.dport = (uint16_t)ik->dst_port;
		if (make(k, ik, p->im->dirfd, err))
			return -1;
		rst_logf(p->log, 3, "TCP connection %u -> %u made in repair mode: %u bytes to read, %u to send", ik->src_port,
			 ik->dst_port, k->ts.inq_len, k->ts.outq_len);
	}
	return rst_fetch_fd(p, getpid(), k->fd, fd, err) || rst_sock_opts(p, *fd, &f->isk.opts, true, err) ? -1 : 0;
}

int rst_tcp_finish(rst_tcps *s, rst_log *log, fp_error *err)
{
	if (!s->n)
		return 0;
	fp_tcp_conn *conns = calloc(s->n, sizeof(*conns));
	if (!conns)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		struct rst_tcp_sk *k = &s->sk[i];
		conns[i] = k->conn;
		if (set(k->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF)) {
			free(conns);
			return fp_fail(err, errno, "TCP connection %u -> %u: leaving repair mode: %s", k->conn.sport,
				       k->conn.dport, strerror(errno));
		}
		k->repaired = false;
		if (k->reuseaddr)
			set(k->fd, SOL_SOCKET, SO_REUSEADDR, 1);
		uint32_t unsent = k->ts.has_unsq_len ? k->ts.unsq_len : 0;
		const uint8_t *u = k->ts.outq + (k->ts.outq_len - unsent);
		if (unsent && send(k->fd, u, unsent, MSG_DONTWAIT) != (ssize_t)unsent) {
			free(conns);
			return fp_fail(err, errno, "TCP connection %u -> %u: sending its %u unsent bytes: %s", k->conn.sport,
				       k->conn.dport, unsent, strerror(errno));
		}
		if (k->ts.has_nodelay && k->ts.nodelay)
			set(k->fd, IPPROTO_TCP, TCP_NODELAY, 1);
		if (k->ts.has_cork && k->ts.cork)
			set(k->fd, IPPROTO_TCP, TCP_CORK, 1);
	}
	int rc = fp_netlock(conns, s->n, false, err);
	free(conns);
	if (rc)
		return fp_wrap(err, "lifting the network lock of %zu TCP connection(s)", s->n);
	rst_logf(log, 3, "%zu TCP connection(s) out of repair mode, network lock lifted", s->n);
	return 0;
}

void rst_tcp_free(rst_tcps *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->sk[i].fd >= 0)
			close(s->sk[i].fd);
		cr_tcp_stream_free(&s->sk[i].ts);
	}
	free(s->sk);
	memset(s, 0, sizeof(*s));
}
