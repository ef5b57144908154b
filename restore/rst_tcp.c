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
#include <time.h>
#include <unistd.h>

#include "fp_netlock.h"
#include "images/tcp_states.h"

#define CLOSE_REPLAY_MS 5000 /* the socket takes the peer's segments in softirq, after the send */

struct rst_tcp_sk {
	uint32_t id;
	int fd; /* ours; -1: a lock to lift only (rst_tcp_ended) */
	bool repaired;
	bool unsent_sent; /* its never-sent bytes went before its FIN (shut_wr) */
	int sndbuf;       /* SO_SNDBUF as dumped (doubled by the kernel) */
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

/* Bytes into the selected queue (-1: sent, out of repair mode), in pieces
 * the socket's memory takes. */
static int fill(int s, int queue, const uint8_t *p, size_t len)
{
	if (len && queue >= 0 && set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
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

/* The same, with the byte at `urg` (if < len) sent urgent (MSG_OOB): the
 * socket's urgent pointer goes behind it, in repair mode too. */
static int fill_urg(int s, int queue, const uint8_t *p, size_t len, size_t urg)
{
	if (urg >= len)
		return fill(s, queue, p, len);
	if (fill(s, queue, p, urg) || (queue >= 0 && set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)) ||
	    send(s, p + urg, 1, MSG_OOB | MSG_DONTWAIT) != 1)
		return -1;
	return fill(s, queue, p + urg + 1, len - urg - 1);
}

/* Where the urgent byte the process sent is, from `from` on in its send
 * queue (SIZE_MAX: none there). */
static size_t urg_from(const cr_tcp_stream *ts, uint32_t from)
{
	return ts->has_fp_snd_urg_off && ts->fp_snd_urg_off >= from ? ts->fp_snd_urg_off - from : SIZE_MAX;
}

/* The bytes the process had written but the kernel never sent, sent now
 * (out of repair mode): into a send buffer made roomy for them, as the
 * kernel may pack them into more memory than the process's writes took,
 * then set back to what it was. */
static int send_unsent(struct rst_tcp_sk *k, const uint8_t *p, size_t len)
{
	if (!len)
		return 0;
	int room = len > INT32_MAX / 4 ? INT32_MAX / 2 : (int)len * 2 + (1 << 20);
	if (room > k->sndbuf / 2)
		set(k->fd, SOL_SOCKET, SO_SNDBUFFORCE, room);
	int rc = fill_urg(k->fd, -1, p, len, urg_from(&k->ts, (uint32_t)(p - k->ts.outq)));
	int e = errno;
	if (k->sndbuf && room > k->sndbuf / 2)
		set(k->fd, SOL_SOCKET, SO_SNDBUFFORCE, k->sndbuf / 2);
	errno = e;
	return rc;
}

/* Our FIN, by shutdown(). Acknowledged (FIN_WAIT2): put in the send queue
 * as sent, in repair mode, for the peer's ACK to take. Otherwise out of
 * repair mode, behind the bytes the process wrote before it and never
 * sent: it goes out as the window allows, dropped by the lock, and is sent
 * again by the retransmission timer. */
static int shut_wr(struct rst_tcp_sk *k, bool acked, uint32_t unsent)
{
	int s = k->fd;
	if (acked) {
		int rc = set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) || shutdown(s, SHUT_WR);
		set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
		return rc ? -1 : 0;
	}
	if (set(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
		return -1;
	k->unsent_sent = true;
	if (send_unsent(k, k->ts.outq + (k->ts.outq_len - unsent), unsent) || shutdown(s, SHUT_WR))
		return -1;
	return set(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON);
}

/* A connection being closed: made established, then its FINs replayed in
 * the order they came. Ours by shutdown(); the peer's, and its ACK of ours,
 * as segments from it (rst_tcp_seg.c). */
static int close_replay(struct rst_tcp_sk *k, uint32_t state, uint32_t inq_seq, uint32_t outq_seq, uint32_t unsent,
			fp_error *err)
{
	const cr_tcp_stream *ts = &k->ts;
	uint32_t snd_una = outq_seq - ts->outq_len;
	uint32_t wnd = ts->has_snd_wnd ? ts->snd_wnd : 0xffff;
	if (ts->opt_mask & CR_TCPI_OPT_WSCALE)
		wnd >>= ts->snd_wscale;
	uint16_t win = wnd > 0xffff ? 0xffff : (uint16_t)wnd;
	bool acked = fp_tcp_state_has(state, FP_TCPF_FIN_ACKED);
	const char *step = "shutdown";
	if (fp_tcp_state_has(state, FP_TCPF_FIN_SENT) && state != FP_TCP_LAST_ACK && shut_wr(k, acked, unsent))
		goto fail;
	if (fp_tcp_state_has(state, FP_TCPF_FIN_RCVD) &&
	    rst_tcp_segment(&k->conn, inq_seq, snd_una, TH_FIN | TH_ACK, win, 0, err))
		goto wrap;
	if (state == FP_TCP_LAST_ACK && shut_wr(k, false, unsent))
		goto fail;
	if (acked && rst_tcp_segment(&k->conn, inq_seq, outq_seq + 1, TH_ACK, win, 0, err))
		goto wrap;
	step = "its state";
	struct tcp_info ti;
	for (int waited = 0;; waited++) {
		socklen_t l = sizeof(ti);
		if (getsockopt(k->fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
			goto fail;
		if (ti.tcpi_state == state)
			return 0;
		if (waited >= CLOSE_REPLAY_MS)
			break;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return fp_fail(err, EPROTO,
		       "TCP connection %u -> %u was to be restored in state %s, but is %s after its FINs were replayed (is "
		       "something else filtering its packets?)",
		       k->conn.sport, k->conn.dport, fp_tcp_state_name(state), fp_tcp_state_name(ti.tcpi_state));
fail:
	return fp_fail(err, errno, "restoring TCP connection %u -> %u in state %s: %s: %s", k->conn.sport, k->conn.dport,
		       fp_tcp_state_name(state), step, strerror(errno));
wrap:
	return fp_wrap(err, "restoring TCP connection %u -> %u in state %s", k->conn.sport, k->conn.dport,
		       fp_tcp_state_name(state));
}

/* A receive queue with an urgent byte the process had not read: the bytes
 * before it, the byte from the peer as urgent, the bytes after it. */
static int recvq_urgent(struct rst_tcp_sk *k, uint32_t inq_seq, uint32_t outq_seq)
{
	const cr_tcp_stream *ts = &k->ts;
	uint32_t at = ts->fp_urg_off, start = inq_seq - ts->inq_len;
	if (fill(k->fd, TCP_RECV_QUEUE, ts->inq, at))
		return -1;
	/* a window open for it, whatever the bytes before took (the image's
	 * windows are put back after the queues) */
	struct tcp_repair_window w;
	socklen_t wl = sizeof(w);
	if (getsockopt(k->fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &wl))
		return -1;
	w.rcv_wup = w.snd_wl1 = start + at;
	w.rcv_wnd = w.rcv_wnd > 65535 ? w.rcv_wnd : 65535;
	if (setsockopt(k->fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		return -1;
	fp_error e;
	if (rst_tcp_segment(&k->conn, start + at, outq_seq - ts->outq_len, TH_ACK | TH_URG, 0xffff, ts->inq[at], &e)) {
		errno = e.errnum ? e.errnum : EIO;
		return -1;
	}
	for (int waited = 0;; waited++) { /* taken in softirq, after the send */
		int v = 0;
		socklen_t l = sizeof(v);
		if (set(k->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
		    getsockopt(k->fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &v, &l))
			return -1;
		if ((uint32_t)v == start + at + 1)
			break;
		if (waited >= CLOSE_REPLAY_MS) {
			errno = EPROTO;
			return -1;
		}
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return fill(k->fd, TCP_RECV_QUEUE, ts->inq + at + 1, ts->inq_len - at - 1);
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
	k->sndbuf = (int)ik->opts.so_sndbuf;
	if (ik->opts.so_sndbuf)
		set(s, SOL_SOCKET, SO_SNDBUFFORCE, (int)(ik->opts.so_sndbuf / 2));
	if (ik->opts.so_rcvbuf)
		set(s, SOL_SOCKET, SO_RCVBUFFORCE, (int)(ik->opts.so_rcvbuf / 2));
	struct sockaddr_storage a;
	socklen_t al = sockaddr_of((int)ik->family, ik->src_addr, ik->n_src_addr, ik->src_port, &a);
	step = "bind";
	if (bind(s, (struct sockaddr *)&a, al))
		goto fail;
	/* the FINs are replayed once the queues are in place (close_replay):
	 * the sequence numbers stop before them */
	uint32_t inq_seq = ts->inq_seq - fp_tcp_state_has(ik->state, FP_TCPF_FIN_RCVD);
	uint32_t outq_seq = ts->outq_seq - fp_tcp_state_has(ik->state, FP_TCPF_FIN_SENT);
	step = "the sequence numbers";
	if (set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(inq_seq - ts->inq_len)) ||
	    set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set(s, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(outq_seq - ts->outq_len)))
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
	if (ts->has_fp_urg_off ? recvq_urgent(k, inq_seq, outq_seq) : fill(s, TCP_RECV_QUEUE, ts->inq, ts->inq_len))
		goto fail;
	step = "the send queue";
	uint32_t unsent = ts->has_unsq_len ? ts->unsq_len : 0;
	if (fill_urg(s, TCP_SEND_QUEUE, ts->outq, ts->outq_len - unsent, urg_from(ts, 0)))
		goto fail;
	if (ts->has_snd_wl1 && ts->has_snd_wnd && ts->has_max_window && ts->has_rcv_wnd && ts->has_rcv_wup) {
		struct tcp_repair_window w = { ts->snd_wl1, ts->snd_wnd, ts->max_window, ts->rcv_wnd, ts->rcv_wup };
		if (fp_tcp_state_has(ik->state, FP_TCPF_FIN_RCVD))
			w.rcv_wup--, w.rcv_wnd++; /* the window's left edge may not pass the FIN yet to come */
		step = "the windows";
		if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
			goto fail;
	}
	set(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (ik->state != FP_TCP_ESTABLISHED)
		return close_replay(k, ik->state, inq_seq, outq_seq, unsent, err);
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

/* A connection that had ended (CLOSE) as CRIU's dump writes it, with its
 * peer: CRIU locked it like an open one, so its rules go with the others'
 * (the socket itself is made closed, rst_sock.c). forkpoint's dump writes
 * no peer for it and takes no lock. */
int rst_tcp_ended(rst_proc *p, const cr_file *f, fp_error *err)
{
	const cr_inet_sk *ik = &f->isk;
	if (!p->tcp || !f->has_isk || ik->state != FP_TCP_CLOSE || !ik->dst_port || !ik->src_port)
		return 0;
	rst_tcps *s = p->tcp;
	struct rst_tcp_sk *a = realloc(s->sk, (s->n + 1) * sizeof(*a));
	if (!a)
		return fp_fail(err, ENOMEM, "out of memory");
	s->sk = a;
	struct rst_tcp_sk *k = &a[s->n++];
	memset(k, 0, sizeof(*k));
	k->id = f->id;
	k->fd = -1;
	k->conn.family = (int)ik->family;
	memcpy(k->conn.src, ik->src_addr, ik->n_src_addr * 4);
	memcpy(k->conn.dst, ik->dst_addr, ik->n_dst_addr * 4);
	k->conn.sport = (uint16_t)ik->src_port, k->conn.dport = (uint16_t)ik->dst_port;
	return 0;
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
		if (k->fd < 0)
			continue;
		if (set(k->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF)) {
			free(conns);
			return fp_fail(err, errno, "TCP connection %u -> %u: leaving repair mode: %s", k->conn.sport,
				       k->conn.dport, strerror(errno));
		}
		k->repaired = false;
		if (k->reuseaddr)
			set(k->fd, SOL_SOCKET, SO_REUSEADDR, 1);
		uint32_t unsent = k->ts.has_unsq_len && !k->unsent_sent ? k->ts.unsq_len : 0;
		const uint8_t *u = k->ts.outq + (k->ts.outq_len - unsent);
		if (send_unsent(k, u, unsent)) {
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
