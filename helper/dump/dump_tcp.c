/* Established TCP connections (`--tcp-established`, CRIU's meaning): the
 * socket's state is read through TCP repair mode, on the dumper's own
 * reference to it (pidfd_getfd), while the tree is stopped.
 *
 * Order, for every connection of the tree at once: the network lock
 * (fp_netlock.h: its packets are dropped both ways, so nothing arrives or
 * leaves behind the dumper's back), repair mode, then what a restore needs
 * to rebuild the connection exactly: both queues (peeked, not read), the
 * sequence numbers at their ends, the options agreed at the handshake
 * (mss, window scaling, SACK, timestamps), the windows and the timestamp
 * clock. A socket in repair mode sends nothing, not even when it is closed:
 * so the dump that kills the tree leaves the peer a silent path (and the
 * lock in place until the restore), and a --leave-running dump, or any
 * dump that lets the tree go, takes every socket out of repair mode
 * without a window probe and with its SO_REUSEADDR as it was (leaving
 * repair clears it) before the tree runs again, and lifts the lock right
 * after (dump_tcp_unlock): the peer sees a short silence. */
#include "dump/dump_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_netlock.h"
#include "images/criu_io.h"
#include "images/tcp_states.h"

struct dump_tcp {
	int sk;         /* our reference; -1 once let go */
	bool repaired;  /* in repair mode by us */
	int reuseaddr;  /* SO_REUSEADDR before repair mode */
	uint32_t state; /* FP_TCP_*, as the lock froze it */
	pid_t pid;
	int fd;
	uint32_t ino;
	fp_tcp_conn conn;
	cr_tcp_stream ts;
	bool urg;                 /* an urgent byte sent, not yet acknowledged */
	uint32_t snd_up, snd_una; /* ... the byte after it, and the queue's start */
};

static void addr_of(const struct sockaddr_storage *a, uint32_t *w, size_t *n, uint16_t *port)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
		w[0] = s4->sin_addr.s_addr;
		*n = 1;
		*port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
		memcpy(w, &s6->sin6_addr, 16);
		*n = 4;
		*port = ntohs(s6->sin6_port);
	}
}

int dump_tcp_conn(struct dump_ctx *c, pid_t pid, int fd, int s, cr_inet_sk *k, fp_error *err)
{
	if (!c->o->tcp_established)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is an established TCP connection; dump with --tcp-established to save it "
				    "(TCP repair mode, as `criu dump --tcp-established`; restore needs the same flag with "
				    "criu), or close the connection first",
				    fd, pid);
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return fp_fail(err, errno, "TCP_INFO of fd %d of %d: %s", fd, pid, strerror(errno));
	if (!fp_tcp_state_has(ti.tcpi_state, FP_TCPF_CONNECTED))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is a TCP connection in state %s; forkpoint saves connections that are "
				    "established or being closed (FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING) only: dump again "
				    "once it has left that state",
				    fd, pid, fp_tcp_state_name(ti.tcpi_state));
	struct sockaddr_storage me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	if (getsockname(s, (struct sockaddr *)&me, &ml) < 0 || getpeername(s, (struct sockaddr *)&peer, &pl) < 0)
		return fp_fail(err, errno, "the addresses of TCP connection fd %d of %d: %s", fd, pid, strerror(errno));
	struct dump_tcp *a = realloc(c->tcp, (c->ntcp + 1) * sizeof(*a));
	if (!a)
		return fp_fail(err, ENOMEM, "out of memory");
	c->tcp = a;
	struct dump_tcp *t = &a[c->ntcp];
	memset(t, 0, sizeof(*t));
	t->sk = fcntl(s, F_DUPFD_CLOEXEC, 3);
	if (t->sk < 0)
		return fp_fail(err, errno, "cannot keep a reference to TCP connection fd %d of %d: %s", fd, pid,
			       strerror(errno));
	c->ntcp++;
	t->pid = pid, t->fd = fd, t->ino = k->ino;
	t->conn.family = me.ss_family;
	uint16_t sport, dport;
	addr_of(&me, k->src_addr, &k->n_src_addr, &sport);
	addr_of(&peer, k->dst_addr, &k->n_dst_addr, &dport);
	memcpy(t->conn.src, k->src_addr, k->n_src_addr * 4);
	memcpy(t->conn.dst, k->dst_addr, k->n_dst_addr * 4);
	t->conn.sport = sport, t->conn.dport = dport;
	k->src_port = sport, k->dst_port = dport;
	k->state = t->state = ti.tcpi_state; /* final once the lock holds it (capture_one) */
	return 0;
}

static int opt(int s, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);
	*v = 0;
	return getsockopt(s, level, name, v, &l);
}

/* A queue's bytes and the sequence number at its end, peeked. */
static int read_queue(struct dump_tcp *t, int q, uint32_t len, uint32_t *seq, uint8_t **data, fp_error *err)
{
	int v;
	if (setsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) < 0 || opt(t->sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &v))
		return fp_fail(err, errno, "the %s queue of TCP connection fd %d of %d: %s",
			       q == TCP_RECV_QUEUE ? "receive" : "send", t->fd, t->pid, strerror(errno));
	*seq = (uint32_t)v;
	*data = malloc(len ? len : 1);
	if (!*data)
		return fp_fail(err, ENOMEM, "out of memory for a %u-byte TCP queue", len);
	ssize_t n = len ? recv(t->sk, *data, len, MSG_PEEK | MSG_DONTWAIT) : 0;
	if (n != (ssize_t)len)
		return fp_fail(err, n < 0 ? errno : EIO, "peeking the %u-byte %s queue of TCP connection fd %d of %d: %s", len,
			       q == TCP_RECV_QUEUE ? "receive" : "send", t->fd, t->pid,
			       n < 0 ? strerror(errno) : "short read");
	return 0;
}

/* The receive queue. An urgent byte (MSG_OOB, without SO_OOBINLINE) cuts
 * it: SIOCINQ and a read stop at its mark, and a read from the mark skips
 * the byte itself. So the bytes after it are peeked from past the mark
 * (SO_PEEK_OFF), and the byte is put back in its place, inline (as CRIU
 * restores it), with its offset (forkpoint restores it urgent). A byte the
 * process took already (MSG_OOB) is a hole reads skip: left out. */
static int read_recvq(struct dump_tcp *t, fp_error *err)
{
	cr_tcp_stream *ts = &t->ts;
	int peek_off = -1, none = -1; /* the process's own, put back after */
	opt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &peek_off);
	setsockopt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	if (read_queue(t, TCP_RECV_QUEUE, ts->inq_len, &ts->inq_seq, &ts->inq, err)) {
		setsockopt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));
		return -1;
	}
	unsigned char urg;
	bool pending = recv(t->sk, &urg, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1;
	int k = (int)ts->inq_len;
	if (setsockopt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &k, sizeof(k)) < 0) {
		if (pending)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, errno,
					    "TCP connection fd %d of %d has urgent data (MSG_OOB) not yet read, which this "
					    "kernel cannot look past (no SO_PEEK_OFF for TCP: Linux 6.9 or later)",
					    t->fd, t->pid);
		return 0;
	}
	size_t cap = 0, rest = 0;
	uint8_t *after = NULL;
	int rc = 0;
	for (;;) {
		if (cap - rest < 65536) {
			uint8_t *a = realloc(after, cap = cap * 2 + 262144);
			if (!a) {
				rc = fp_fail(err, ENOMEM, "out of memory");
				break;
			}
			after = a;
		}
		int off = k + 1 + (int)rest; /* the mark's byte counts in the sequence */
		if (rest && setsockopt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0) {
			rc = fp_fail(err, errno, "peeking past the urgent mark of TCP connection fd %d of %d: %s", t->fd,
				     t->pid, strerror(errno));
			break;
		}
		ssize_t n = recv(t->sk, after + rest, cap - rest, MSG_PEEK | MSG_DONTWAIT);
		if (n <= 0)
			break;
		rest += (size_t)n;
	}
	setsockopt(t->sk, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));
	if (!rc && (rest || pending)) {
		size_t len = (size_t)k + pending + rest;
		uint8_t *q = len > UINT32_MAX ? NULL : realloc(ts->inq, len);
		if (!q)
			rc = fp_fail(err, ENOMEM, "out of memory for a %zu-byte TCP queue", len);
		else {
			ts->inq = q;
			if (pending)
				q[k] = urg, ts->has_fp_urg_off = true, ts->fp_urg_off = (uint32_t)k;
			memcpy(q + k + pending, after, rest);
			ts->inq_len = (uint32_t)len;
		}
	}
	free(after);
	return rc;
}

static int capture_one(struct dump_tcp *t, fp_error *err)
{
	cr_tcp_stream *ts = &t->ts;
	int on = TCP_REPAIR_ON;
	opt(t->sk, SOL_SOCKET, SO_REUSEADDR, &t->reuseaddr);
	if (setsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return fp_fail(err, errno, "cannot put TCP connection fd %d of %d into repair mode: %s%s", t->fd, t->pid,
			       strerror(errno), errno == EPERM ? " (it needs CAP_NET_ADMIN: dump as root)" : "");
	t->repaired = true;
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	int inq = 0, outq = 0, unsq = 0, mss = 0, v = 0;
	if (getsockopt(t->sk, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || ioctl(t->sk, SIOCINQ, &inq) < 0 ||
	    ioctl(t->sk, SIOCOUTQ, &outq) < 0 || ioctl(t->sk, SIOCOUTQNSD, &unsq) < 0 ||
	    opt(t->sk, IPPROTO_TCP, TCP_MAXSEG, &mss))
		return fp_fail(err, errno, "the state of TCP connection fd %d of %d: %s", t->fd, t->pid, strerror(errno));
	if (!fp_tcp_state_has(ti.tcpi_state, FP_TCPF_CONNECTED))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "TCP connection fd %d of %d was closed (now %s) as it was dumped; dump again", t->fd, t->pid,
				    fp_tcp_state_name(ti.tcpi_state));
	t->state = ti.tcpi_state; /* it may have moved on (FIN_WAIT1 -> 2) before the lock */
	/* our FIN counts in SIOCOUTQ (and SIOCOUTQNSD while unsent), but is no
	 * byte of the queue: the image counts data (the restore shuts down) */
	if (fp_tcp_state_has(t->state, FP_TCPF_FIN_SENT)) {
		outq -= outq > 0;
		unsq -= unsq > 0;
	}
	ts->inq_len = (uint32_t)inq, ts->outq_len = (uint32_t)outq;
	ts->has_unsq_len = true, ts->unsq_len = (uint32_t)unsq;
	ts->mss_clamp = (uint32_t)mss;
	ts->opt_mask = ti.tcpi_options & (CR_TCPI_OPT_TIMESTAMPS | CR_TCPI_OPT_SACK | CR_TCPI_OPT_WSCALE);
	if (ts->opt_mask & CR_TCPI_OPT_WSCALE) {
		ts->snd_wscale = ti.tcpi_snd_wscale;
		ts->has_rcv_wscale = true, ts->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (ts->opt_mask & CR_TCPI_OPT_TIMESTAMPS) {
		if (opt(t->sk, IPPROTO_TCP, TCP_TIMESTAMP, &v))
			return fp_fail(err, errno, "the timestamp of TCP connection fd %d of %d: %s", t->fd, t->pid,
				       strerror(errno));
		ts->has_timestamp = true, ts->timestamp = (uint32_t)v;
	}
	struct tcp_repair_window w;
	l = sizeof(w);
	if (getsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l) == 0 && l == sizeof(w)) {
		ts->has_snd_wl1 = ts->has_snd_wnd = ts->has_max_window = ts->has_rcv_wnd = ts->has_rcv_wup = true;
		ts->snd_wl1 = w.snd_wl1, ts->snd_wnd = w.snd_wnd, ts->max_window = w.max_window;
		ts->rcv_wnd = w.rcv_wnd, ts->rcv_wup = w.rcv_wup;
	}
	if (opt(t->sk, IPPROTO_TCP, TCP_NODELAY, &v) == 0 && v)
		ts->has_nodelay = ts->nodelay = true;
	if (opt(t->sk, IPPROTO_TCP, TCP_CORK, &v) == 0 && v)
		ts->has_cork = ts->cork = true;
	if (read_recvq(t, err) || read_queue(t, TCP_SEND_QUEUE, ts->outq_len, &ts->outq_seq, &ts->outq, err))
		return -1;
	int none = TCP_NO_QUEUE;
	setsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &none, sizeof(none));
	uint32_t at = t->snd_up - t->snd_una - 1; /* snd_up: the byte after the urgent one */
	if (t->urg && at < ts->outq_len)
		ts->has_fp_snd_urg_off = true, ts->fp_snd_urg_off = at;
	return 0;
}

int dump_tcp_capture(struct dump_ctx *c, fp_error *err)
{
	if (!c->ntcp)
		return 0;
	int64_t t0 = dump_now_ns();
	fp_tcp_conn *conns = calloc(c->ntcp, sizeof(*conns));
	if (!conns)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->ntcp; i++)
		conns[i] = c->tcp[i].conn;
	int rc = fp_netlock(conns, c->ntcp, true, err);
	free(conns);
	if (rc)
		return fp_wrap(err, "locking the network of %zu TCP connection(s)", c->ntcp);
	c->tcp_locked = true;
	int64_t t1 = dump_now_ns();
	int *sks = calloc(c->ntcp, sizeof(*sks));
	uint32_t *up = calloc(c->ntcp, sizeof(*up)), *una = calloc(c->ntcp, sizeof(*una));
	bool *urg = calloc(c->ntcp, sizeof(*urg));
	if (!sks || !up || !una || !urg) {
		free(sks), free(up), free(una), free(urg);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < c->ntcp; i++)
		sks[i] = c->tcp[i].sk;
	dump_tcp_snd_urg(c, sks, c->ntcp, up, una, urg); /* (a kernel that cannot tell: logged) */
	for (size_t i = 0; i < c->ntcp; i++) {
		struct dump_tcp *t = &c->tcp[i];
		t->urg = urg[i], t->snd_up = up[i], t->snd_una = una[i];
	}
	free(sks), free(up), free(una), free(urg);
	for (size_t i = 0; i < c->ntcp; i++) {
		struct dump_tcp *t = &c->tcp[i];
		/* Urgent data read inline (SO_OOBINLINE) still has its mark, where
		 * a peek stops, but SIOCINQ counts past it: read as if out of
		 * line, the byte and its place are found as there (read_recvq),
		 * and the option is put back (the image has it, sk-opts). */
		int inl = 0, no = 0;
		opt(t->sk, SOL_SOCKET, SO_OOBINLINE, &inl);
		if (inl)
			setsockopt(t->sk, SOL_SOCKET, SO_OOBINLINE, &no, sizeof(no));
		int r = capture_one(t, err);
		if (inl && setsockopt(t->sk, SOL_SOCKET, SO_OOBINLINE, &inl, sizeof(inl)) && !r)
			r = fp_fail(err, errno, "cannot set SO_OOBINLINE of TCP connection fd %d of %d again: %s", t->fd,
				     t->pid, strerror(errno));
		if (r)
			return -1;
		for (size_t j = 0; j < c->nfiles; j++)
			if (c->files[j].type == CR_FD_INETSK && c->files[j].has_isk && c->files[j].isk.ino == t->ino)
				c->files[j].isk.state = t->state;
		dlog(c, "%d fd %d: TCP connection %u -> %u, %s: %u bytes to read (seq %u), %u to send (%u unsent, seq %u), "
		     "urgent byte sent at %d",
		     t->pid, t->fd, t->conn.sport, t->conn.dport, fp_tcp_state_name(t->state), t->ts.inq_len, t->ts.inq_seq,
		     t->ts.outq_len, t->ts.unsq_len, t->ts.outq_seq, t->ts.has_fp_snd_urg_off ? (int)t->ts.fp_snd_urg_off : -1);
	}
	dlog(c, "%zu TCP connection(s): network locked in %.3f ms, read in %.3f ms", c->ntcp, (double)(t1 - t0) / 1e6,
	     (double)(dump_now_ns() - t1) / 1e6);
	return 0;
}

int dump_tcp_write(struct dump_ctx *c, fp_error *err)
{
	for (size_t i = 0; i < c->ntcp; i++)
		if (cr_write_tcp_stream(c->dirfd, c->tcp[i].ino, &c->tcp[i].ts, err))
			return -1;
	return 0;
}

void dump_tcp_release(struct dump_ctx *c, bool killed)
{
	bool any = false;
	for (size_t i = 0; i < c->ntcp; i++) {
		struct dump_tcp *t = &c->tcp[i];
		if (t->sk < 0)
			continue;
		any = true;
		if (t->repaired && !killed) {
			int off = TCP_REPAIR_OFF_NO_WP, off_probe = TCP_REPAIR_OFF;
			if (setsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0 &&
			    setsockopt(t->sk, IPPROTO_TCP, TCP_REPAIR, &off_probe, sizeof(off_probe)) < 0)
				dlog(c, "WARNING: %d fd %d: cannot take the TCP connection out of repair mode: %s", t->pid, t->fd,
				     strerror(errno));
			if (t->reuseaddr)
				setsockopt(t->sk, SOL_SOCKET, SO_REUSEADDR, &t->reuseaddr, sizeof(t->reuseaddr));
		}
		close(t->sk);
		t->sk = -1;
	}
	if (any && c->tcp_locked && killed) {
		dlog(c, "%zu TCP connection(s) closed in repair mode; their network lock stays until they are restored", c->ntcp);
		c->tcp_locked = false;
		fp_tcp_conn *conns = calloc(c->ntcp, sizeof(*conns));
		fp_error e;
		for (size_t i = 0; conns && i < c->ntcp; i++)
			conns[i] = c->tcp[i].conn;
		if (!conns || !c->final_dir || fp_netlock_record(c->final_dir, conns, c->ntcp, &e))
			dlog(c, "WARNING: the lock's owner is not recorded (a later dump cannot lift it if %s is deleted): %s",
			     c->final_dir ? c->final_dir : "the snapshot", conns && c->final_dir ? e.msg : "out of memory");
		free(conns);
	}
}

void dump_tcp_unlock(struct dump_ctx *c)
{
	if (!c->tcp_locked)
		return;
	int64_t t0 = dump_now_ns();
	fp_tcp_conn *conns = calloc(c->ntcp, sizeof(*conns));
	fp_error e;
	for (size_t i = 0; conns && i < c->ntcp; i++)
		conns[i] = c->tcp[i].conn;
	if (!conns || fp_netlock(conns, c->ntcp, false, &e))
		dlog(c, "WARNING: cannot lift the network lock of the TCP connections: %s", conns ? e.msg : "out of memory");
	else
		dlog(c, "network lock of %zu TCP connection(s) lifted in %.3f ms", c->ntcp, (double)(dump_now_ns() - t0) / 1e6);
	free(conns);
	c->tcp_locked = false;
}

void dump_tcp_free(struct dump_ctx *c)
{
	dump_tcp_release(c, false);
	dump_tcp_unlock(c);
	for (size_t i = 0; i < c->ntcp; i++)
		cr_tcp_stream_free(&c->tcp[i].ts);
	free(c->tcp);
	c->tcp = NULL;
	c->ntcp = 0;
}
