/* ct_tcp: established TCP connections whose byte streams are checked end to
 * end. Every stream carries ct_tcp_byte(stream, i) at offset i, and each end
 * counts in its own memory what it sent and received, so a restored copy
 * knows exactly which bytes must come next.
 *
 * Default: two connections with both ends in this process, one over
 * 127.0.0.1 with small buffers (its client, with SO_REUSEADDR, writes until
 * the socket is full, so its send queue holds bytes never sent), one over
 * ::1. --peer=PORT: one
 * connection to a program outside the tree on 127.0.0.1:PORT that answers
 * every byte it receives with one byte of stream 9 (and may send more of it
 * on its own: the number of those bytes is in the file --gap-file names);
 * this process sends stream 8.
 *
 * --closing: three connections being closed, each end's TCP state checked.
 * A (127.0.0.1, small buffers): the client filled it until full, then shut
 * down its sending side, so its FIN waits behind bytes the server has no
 * room for: client FIN_WAIT1, server ESTABLISHED (it reads 100 bytes per
 * verification, too few to let the FIN through). B (::1): the server sent
 * bytes and shut down: server FIN_WAIT2, client CLOSE_WAIT. C (127.0.0.1):
 * the same with the client shutting down. Every verification checks that
 * a shut-down end cannot send (EPIPE), that its peer reads all it sent and
 * then EOF (again and again), that the other direction still carries bytes,
 * and leaves bytes unread on the open directions.
 *
 * --bulk: one connection (127.0.0.1) with 12 MiB send buffers and a 12 MiB
 * receive buffer at the client (SO_*BUFFORCE): the client writes until its
 * send queue is full (about 12 MiB) while the server reads nothing, and
 * the server sends 2 MiB the client does not read. --oob (with --bulk): in the middle
 * of those, one urgent byte (MSG_OOB), which each verification must find
 * with recv(MSG_OOB) before it reads the stream around it. --oobinline
 * (with --oob): the client reads urgent bytes inline (SO_OOBINLINE), so
 * each verification finds the byte in its place in the stream, at the
 * urgent mark (SIOCATMARK), and the option still set. --sndoob (with
 * --bulk): the client sends 1 MiB, one urgent byte, then fills its send
 * queue: the server's small window leaves the byte unsent in the client's
 * send queue; each verification has the server read up to it and find it
 * with recv(MSG_OOB), not in the stream.
 *
 * --held (with --closing): two more connections in states that last only
 * while some of their segments are dropped, by rules the test inserts
 * between the steps (it names the ports of D and E in an "info hold" line,
 * then creates STATUS.go1, then STATUS.go2 once its rules are in place).
 * D: the client shuts down, then the server, whose FIN the client takes
 * (its fd is then CLOSE: TIME_WAIT belongs to the kernel) but whose ACK is
 * dropped: server LAST_ACK. E: both shut down while everything is dropped,
 * then the server's segments pass, but not the client's: the client takes
 * the server's FIN, which does not acknowledge its own (CLOSING), the
 * server stays in FIN_WAIT1. Once the rules are gone (after a restore),
 * they may go on (to CLOSING, then CLOSE).
 *
 * A verification reads every stream up to what its sender sent (waiting
 * for the kernel to move what is still queued), checks each byte, passes a
 * round trip both ways, then leaves bytes queued and unread in every
 * direction again for the next dump. "verify N ok ... rx=R tx=T" (the
 * totals of the first connection, or of the outside one, before that).
 *
 *   ct_tcp STATUS [--peer=PORT [--gap-file=PATH] | --closing] [common options]
 */
#include "ct_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define DEADLINE_MS 60000 /* a peer's retransmission after a long dump gap backs off */

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline unsigned char ct_tcp_byte(unsigned stream, uint64_t i)
{
	return (unsigned char)(((i * 131) + (i >> 9) * 7 + stream * 29) ^ (i >> 17));
}

struct end {
	int fd;
	unsigned out_stream, in_stream;
	uint64_t tx, rx;
	int reuseaddr; /* set on the first client end */
	int state;     /* the TCP state it must be in (0: ESTABLISHED) */
	bool shut;     /* it shut down its sending side */
	bool peer_shut; /* ... its peer did, and the FIN reaches it: EOF after the bytes */
	bool gone;      /* its connection is over (CLOSE): only its state is checked */
	bool may_close; /* it may reach CLOSE (then it has no peer name) */
	int alt_state;  /* another state it may be in */
	bool eof_maybe; /* its peer shut down, but the FIN may not have come yet */
	struct sockaddr_storage me, peer; /* as at setup */
};

static struct end ends[10];
static int nends;
static bool outside, closing, held, bulk, oob, oobinline;
static unsigned oob_sent, oob_got; /* urgent bytes: 0xa0 + their number */
static uint64_t oob_at; /* --oobinline: where the last one is in stream 2 */
static bool sndoob;
static unsigned soob_sent, soob_got; /* --sndoob: urgent bytes client -> server, 0xc0 + their number */
static uint64_t soob_at;             /* where the last one is in stream 1 */
#define BULK_BUF (6 << 20)
static const char *gap_file;

/* What the outside peer sent on its own (the test writes the total). */
static uint64_t unsolicited(void)
{
	FILE *f = gap_file ? fopen(gap_file, "re") : NULL;
	unsigned long long n = 0;
	if (f && fscanf(f, "%llu", &n) != 1)
		n = 0;
	if (f)
		fclose(f);
	return n;
}

static void send_bytes(struct end *e, size_t n, bool until_full)
{
	unsigned char buf[4096];
	while (n || until_full) {
		size_t k = n && n < sizeof(buf) ? n : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = ct_tcp_byte(e->out_stream, e->tx + i);
		ssize_t w = send(e->fd, buf, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN && until_full)
			return;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = e->fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0) {
			ct_fail("fd %d: send: %s", e->fd, w < 0 ? strerror(errno) : "0");
			return;
		}
		e->tx += (uint64_t)w;
		n -= n ? (size_t)w : 0;
	}
}

/* At the urgent mark, the urgent byte: inline (flag 0: --oobinline) or out
 * of line (MSG_OOB: --sndoob), the *got-th of its kind (base + its number). */
static bool mark_byte(struct end *e, int flag, unsigned base, unsigned *got, uint64_t at)
{
	long long deadline = now_ms() + DEADLINE_MS;
	unsigned char u = 0;
	ssize_t r;
	while ((r = recv(e->fd, &u, 1, flag | MSG_DONTWAIT)) < 0 && errno == EAGAIN && now_ms() < deadline) {
		struct pollfd p = { .fd = e->fd, .events = flag ? POLLPRI : POLLIN };
		poll(&p, 1, 100);
	}
	if (r != 1 || u != (unsigned char)(base + (*got & 0xf))) {
		char was[32];
		snprintf(was, sizeof(was), "%#x", u);
		ct_fail("fd %d: the urgent byte %u at %llu%s is %s, not %#x", e->fd, *got, (unsigned long long)at,
			flag ? "" : " (inline)", r == 1 ? was : r ? strerror(errno) : "EOF", base + (*got & 0xf));
		return false;
	}
	(*got)++;
	return true;
}

/* Reads until e has received `until` bytes (then whatever else is there
 * now, or up to EOF if its peer shut down), checking each. */
static void recv_bytes_max(struct end *e, uint64_t until, uint64_t max)
{
	unsigned char buf[65536];
	long long deadline = now_ms() + DEADLINE_MS;
	for (;;) {
		if (oobinline && e == &ends[0] && oob_got < oob_sent && e->rx == oob_at && max > oob_at &&
		    !mark_byte(e, 0, 0xa0, &oob_got, oob_at))
			return;
		if (oobinline && e == &ends[0] && oob_got < oob_sent && e->rx < oob_at && max > oob_at)
			max = oob_at; /* a read stops at the mark anyway */
		if (sndoob && e == &ends[1] && soob_got < soob_sent && e->rx == soob_at && max > soob_at &&
		    !mark_byte(e, MSG_OOB, 0xc0, &soob_got, soob_at))
			return;
		if (sndoob && e == &ends[1] && soob_got < soob_sent && e->rx < soob_at && max > soob_at) {
			/* up to the mark, then the byte, then on */
			recv_bytes_max(e, soob_at, soob_at);
			if (ct.nfail)
				return;
			continue;
		}
		size_t want = max - e->rx < sizeof(buf) ? (size_t)(max - e->rx) : sizeof(buf);
		ssize_t r = want ? recv(e->fd, buf, want, MSG_DONTWAIT) : -1;
		if (!want)
			errno = EAGAIN;
		if (r == 0 && (e->peer_shut || e->eof_maybe) && e->rx >= until)
			return;
		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] != ct_tcp_byte(e->in_stream, e->rx + (uint64_t)i)) {
					ct_fail("fd %d: byte %llu of stream %u is %#x, not %#x", e->fd,
						(unsigned long long)(e->rx + (uint64_t)i), e->in_stream, buf[i],
						ct_tcp_byte(e->in_stream, e->rx + (uint64_t)i));
					return;
				}
			e->rx += (uint64_t)r;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			ct_fail("fd %d: stream %u ended after %llu bytes: %s", e->fd, e->in_stream,
				(unsigned long long)e->rx, r ? strerror(errno) : "EOF");
			return;
		}
		if (e->rx >= until && !e->peer_shut)
			return;
		long long left = deadline - now_ms();
		if (left <= 0) {
			ct_fail("fd %d: stream %u stopped at %llu of %llu bytes", e->fd, e->in_stream,
				(unsigned long long)e->rx, (unsigned long long)until);
			return;
		}
		struct pollfd p = { .fd = e->fd, .events = POLLIN };
		poll(&p, 1, (int)(left < 1000 ? left : 1000));
	}
}

static void recv_bytes(struct end *e, uint64_t until)
{
	recv_bytes_max(e, until, UINT64_MAX);
}

static void check_addrs(struct end *e)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	int want = e->state ? e->state : 1;
	if (getsockopt(e->fd, IPPROTO_TCP, TCP_INFO, &ti, &l) ||
	    (ti.tcpi_state != want && ti.tcpi_state != e->alt_state && !(e->may_close && ti.tcpi_state == 7)))
		ct_fail("fd %d: TCP state %d, not %d", e->fd, ti.tcpi_state, want);
	if (e->shut && (send(e->fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != -1 || errno != EPIPE))
		ct_fail("fd %d: it shut down its sending side, but send() does not fail with EPIPE", e->fd);
	char c;
	if (e->gone && recv(e->fd, &c, 1, MSG_DONTWAIT) != 0)
		ct_fail("fd %d: its connection ended, but it does not read EOF", e->fd);
	if (e->gone || ti.tcpi_state == 7)
		return;
	struct sockaddr_storage a;
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(e->fd, (struct sockaddr *)&a, &l) || memcmp(&a, &e->me, l))
		ct_fail("fd %d: its address changed", e->fd);
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(e->fd, (struct sockaddr *)&a, &l) || memcmp(&a, &e->peer, l))
		ct_fail("fd %d: its peer changed (or it is not connected: %s)", e->fd, strerror(errno));
	int v = 0;
	l = sizeof(v);
	getsockopt(e->fd, SOL_SOCKET, SO_REUSEADDR, &v, &l);
	if (!v != !e->reuseaddr)
		ct_fail("fd %d: SO_REUSEADDR is %d, was %d", e->fd, v, e->reuseaddr);
}

/* Bytes left unread in every direction for the next dump. */
static void queue_more(void)
{
	if (bulk) {
		if (sndoob) {
			send_bytes(&ends[0], 1 << 20, false);
			unsigned char u = (unsigned char)(0xc0 + (soob_sent & 0xf));
			soob_at = ends[0].tx;
			if (send(ends[0].fd, &u, 1, MSG_OOB | MSG_NOSIGNAL) != 1)
				ct_fail("send(MSG_OOB): %s", strerror(errno));
			soob_sent++;
		}
		send_bytes(&ends[0], 0, true);
		send_bytes(&ends[1], 1 << 20, false);
		unsigned char u = (unsigned char)(0xa0 + (oob_sent & 0xf));
		oob_at = ends[1].tx;
		if (oob && send(ends[1].fd, &u, 1, MSG_OOB | MSG_NOSIGNAL) != 1)
			ct_fail("send(MSG_OOB): %s", strerror(errno));
		oob_sent += oob;
		send_bytes(&ends[1], 1 << 20, false);
		return;
	}
	if (closing) {
		for (int i = 0; i < nends; i++)
			if (!ends[i].shut)
				send_bytes(&ends[i], 2000, false);
		return;
	}
	if (outside) {
		send_bytes(&ends[0], 1500, false); /* answered into our receive queue */
		return;
	}
	for (int i = 0; i < nends; i++)
		send_bytes(&ends[i], 3000 + 1000 * (unsigned)i, i == 0); /* 0: until its queue is full */
}

static void verify(void)
{
	ct_verify_begin();
	for (int i = 0; i < nends && !ct.nfail; i++)
		check_addrs(&ends[i]);
	if (oobinline) {
		int v = 0, mark = 0;
		socklen_t l = sizeof(v);
		if (getsockopt(ends[0].fd, SOL_SOCKET, SO_OOBINLINE, &v, &l) || !v)
			ct_fail("fd %d: SO_OOBINLINE is off", ends[0].fd);
		if (oob_got < oob_sent)
			recv_bytes_max(&ends[0], oob_at, oob_at); /* up to the mark */
		if (!ct.nfail && oob_got < oob_sent && (ioctl(ends[0].fd, SIOCATMARK, &mark) || !mark))
			ct_fail("fd %d: at byte %llu, before the urgent byte, but not at the urgent mark (SIOCATMARK %d)",
				ends[0].fd, (unsigned long long)ends[0].rx, mark);
	} else if (oob && oob_got < oob_sent) {
		/* The urgent pointer travels in the segments sent after the
		 * urgent byte. When the bytes before it fill the receive window,
		 * none has come yet and recv says EINVAL (no urgent data known),
		 * as a real reader finds too: it reads the stream up to the mark
		 * (never past it: a read stops there), which opens the window,
		 * and asks again. (Seen after a native restore, 2 in 16 runs of
		 * e2e/dump_tcp_bulk, before this file read on.) A byte that lost
		 * its urgency stays EINVAL at the mark: still a failure. */
		unsigned char u = 0;
		long long deadline = now_ms() + DEADLINE_MS;
		ssize_t r;
		while ((r = recv(ends[0].fd, &u, 1, MSG_OOB | MSG_DONTWAIT)) < 0 &&
		       (errno == EAGAIN || (errno == EINVAL && ends[0].rx < oob_at)) && now_ms() < deadline) {
			if (errno == EINVAL)
				recv_bytes_max(&ends[0], ends[0].rx, oob_at);
			if (ct.nfail)
				break;
			struct pollfd p = { .fd = ends[0].fd, .events = POLLPRI };
			poll(&p, 1, 100);
		}
		if (r != 1 || u != (unsigned char)(0xa0 + (oob_got & 0xf)))
			ct_fail("fd %d: urgent byte %u is %s%#x, not %#x", ends[0].fd, oob_got, r == 1 ? "" : strerror(errno),
				u, 0xa0 + (oob_got & 0xf));
		oob_got++;
	}
	if (closing) {
		recv_bytes_max(&ends[1], ends[1].rx + 100, ends[1].rx + 100); /* not enough to let A's FIN through */
		for (int i = 2; i < nends && !ct.nfail; i++)
			if (!ends[i].gone)
				recv_bytes(&ends[i], ends[i ^ 1].tx); /* to EOF where the peer shut down */
		for (int i = 0; i < nends && !ct.nfail; i++)
			if (!ends[i].shut && !ends[i ^ 1].gone) {
				send_bytes(&ends[i], 100, false);
				recv_bytes(&ends[i ^ 1], ends[i].tx);
			}
	} else if (outside) {
		struct end *e = &ends[0];
		recv_bytes(e, e->rx); /* what is there */
		send_bytes(e, 2000, false);
		recv_bytes(e, e->tx + unsolicited()); /* the peer answers byte for byte */
	} else {
		for (int i = 0; i < nends && !ct.nfail; i++)
			recv_bytes(&ends[i], ends[i ^ 1].tx);
		for (int i = 0; i < nends && !ct.nfail; i++) {
			send_bytes(&ends[i], 100, false);
			recv_bytes(&ends[i ^ 1], ends[i].tx);
		}
	}
	char extra[64]; /* before more is queued */
	snprintf(extra, sizeof(extra), "rx=%llu tx=%llu", (unsigned long long)ends[0].rx, (unsigned long long)ends[0].tx);
	if (!ct.nfail)
		queue_more();
	ct_verify_end(extra);
}

static void connect_end(struct end *e, int family, int port, int sndbuf)
{
	e->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->fd < 0)
		ct_die("socket: %s", strerror(errno));
	if (sndbuf)
		setsockopt(e->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	socklen_t l;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a;
		s4->sin_family = AF_INET, s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
		s6->sin6_family = AF_INET6, s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
		l = sizeof(*s6);
	}
	if (connect(e->fd, (struct sockaddr *)&a, l))
		ct_die("connect to port %d: %s", port, strerror(errno));
}

static void record(struct end *e)
{
	socklen_t l = sizeof(e->me);
	getsockname(e->fd, (struct sockaddr *)&e->me, &l);
	l = sizeof(e->peer);
	getpeername(e->fd, (struct sockaddr *)&e->peer, &l);
}

/* A connection with both ends here: ends[k] the client, ends[k+1] the server. */
static void pair(int family, int bufsz)
{
	int ls = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	a.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	socklen_t l = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (bufsz)
		setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, l) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &l))
		ct_die("listener: %s", strerror(errno));
	int port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port : ((struct sockaddr_in6 *)&a)->sin6_port);
	struct end *c = &ends[nends], *s = &ends[nends + 1];
	connect_end(c, family, port, bufsz);
	if (!nends) {
		c->reuseaddr = 1;
		setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &c->reuseaddr, sizeof(c->reuseaddr));
	}
	s->fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (s->fd < 0)
		ct_die("accept: %s", strerror(errno));
	close(ls);
	c->out_stream = s->in_stream = (unsigned)nends + 1;
	s->out_stream = c->in_stream = (unsigned)nends + 2;
	record(c), record(s);
	nends += 2;
}

static void forced(int fd, int rcvbuf)
{
	int v = BULK_BUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		ct_die("SO_SNDBUFFORCE/SO_RCVBUFFORCE (root only): %s", strerror(errno));
}

/* --bulk: pair()'s connection, with big buffers set before the handshake
 * (the window scale is chosen there). */
static void bulk_setup(void)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	forced(ls, 256 << 10); /* the server's window stays small: the client's send queue keeps the MiB */
	if (bind(ls, (struct sockaddr *)&a, l) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &l))
		ct_die("listener: %s", strerror(errno));
	struct end *c = &ends[0], *sv = &ends[1];
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	forced(c->fd, BULK_BUF);
	int on = 1;
	if (oobinline && setsockopt(c->fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on)))
		ct_die("SO_OOBINLINE: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&a, l))
		ct_die("connect: %s", strerror(errno));
	sv->fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (sv->fd < 0)
		ct_die("accept: %s", strerror(errno));
	close(ls);
	c->out_stream = sv->in_stream = 1;
	sv->out_stream = c->in_stream = 2;
	record(c), record(sv);
	nends = 2;
}

static void shut(struct end *e)
{
	if (shutdown(e->fd, SHUT_WR))
		ct_die("shutdown: %s", strerror(errno));
	e->shut = true;
}

/* Until the kernel has moved the connection to the states it must show. */
static void settle(void)
{
	long long deadline = now_ms() + DEADLINE_MS;
	for (int i = 0; i < nends; i++) {
		struct tcp_info ti;
		socklen_t l = sizeof(ti);
		while (ends[i].state && !getsockopt(ends[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &l) && ti.tcpi_state != ends[i].state) {
			if (now_ms() > deadline)
				ct_die("fd %d stays in TCP state %d, not %d", ends[i].fd, ti.tcpi_state, ends[i].state);
			struct pollfd p = { .fd = ends[i].fd, .events = POLLRDHUP };
			poll(&p, 1, 10);
		}
	}
}

static void closing_setup(void)
{
	pair(AF_INET, 4096);
	send_bytes(&ends[0], 0, true);
	shut(&ends[0]);
	ends[0].state = 4 /* FIN_WAIT1 */, ends[1].state = 1;
	pair(AF_INET6, 0);
	send_bytes(&ends[3], 4000, false);
	shut(&ends[3]);
	ends[2].peer_shut = true;
	ends[2].state = 8 /* CLOSE_WAIT */, ends[3].state = 5 /* FIN_WAIT2 */;
	pair(AF_INET, 0);
	send_bytes(&ends[4], 5000, false);
	shut(&ends[4]);
	ends[5].peer_shut = true;
	ends[4].state = 5, ends[5].state = 8;
	settle();
}

static uint16_t port_of(const struct end *e)
{
	return ntohs(((const struct sockaddr_in *)&e->me)->sin_port);
}

static void wait_go(const char *suffix)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s.%s", ct.status_path, suffix);
	long long deadline = now_ms() + DEADLINE_MS;
	while (access(path, F_OK)) {
		if (now_ms() > deadline)
			ct_die("no %s from the test", path);
		struct timespec ms10 = { 0, 10000000 };
		nanosleep(&ms10, NULL);
	}
}

static void held_setup(void)
{
	pair(AF_INET, 0); /* D: 6 client, 7 server */
	pair(AF_INET, 0); /* E: 8, 9 */
	ct_info("hold %u %u %u %u", port_of(&ends[6]), port_of(&ends[7]), port_of(&ends[8]), port_of(&ends[9]));
	wait_go("go1");
	send_bytes(&ends[6], 3000, false);
	shut(&ends[6]);
	ends[6].state = 5, ends[7].state = 8;
	settle();
	send_bytes(&ends[7], 2000, false); /* taken, but never acknowledged */
	recv_bytes(&ends[6], ends[7].tx);
	shut(&ends[7]);
	ends[6].state = 7, ends[6].gone = true;
	ends[7].state = 9, ends[7].peer_shut = ends[7].may_close = true;
	shut(&ends[8]);
	shut(&ends[9]);
	wait_go("go2");
	ends[8].state = 11, ends[8].peer_shut = ends[8].may_close = true;
	ends[9].state = 4, ends[9].alt_state = 11, ends[9].eof_maybe = ends[9].may_close = true;
	settle();
}

int main(int argc, char **argv)
{
	ct.prog = "ct_tcp";
	unsigned long long peer = 0;
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_tcp STATUS [--peer=PORT] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--closing"))
			closing = true;
		else if (!strcmp(argv[i], "--held"))
			held = true;
		else if (!strcmp(argv[i], "--bulk"))
			bulk = true;
		else if (!strcmp(argv[i], "--oob"))
			oob = true;
		else if (!strcmp(argv[i], "--oobinline"))
			oob = oobinline = true;
		else if (!strcmp(argv[i], "--sndoob"))
			sndoob = true;
		else if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--peer", &peer) &&
			 !ct_str_arg(argv[i], "--gap-file", &gap_file)) {
			fprintf(stderr, "ct_tcp: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	if (peer) {
		outside = true;
		connect_end(&ends[0], AF_INET, (int)peer, 0);
		ends[0].out_stream = 8, ends[0].in_stream = 9;
		record(&ends[0]);
		nends = 1;
	} else if (bulk) {
		bulk_setup();
	} else if (closing) {
		closing_setup();
		if (held)
			held_setup();
	} else {
		pair(AF_INET, 4096);
		pair(AF_INET6, 0);
	}
	queue_more();
	return ct_serve(verify);
}
