/* ct_unix: unix sockets between a parent and its forked child, with
 * messages waiting in their queues.
 *
 * Channels, main's end first, the child's second:
 *  0 stream socketpair, 1 datagram socketpair, 2 seqpacket socketpair;
 *  3 a connection main accepted on its listener at DIR/ct-unix.sock from
 *    the child's client;
 *  4 main's datagram socket bound to an abstract name, and the child's
 *    datagram socket (non-blocking) connected to it: only child -> main;
 *  5 a stream socketpair of which main shut down its writing side.
 * Main alone also holds a listener at DIR/ct-gone.sock whose path it
 * unlinked, and the end of a stream socketpair whose other end it closed
 * after writing to it.
 *
 * At setup and again at the end of every verification, each side sends its
 * messages (fixed sizes and contents, among them a datagram of 100000
 * bytes, and with --empty-datagrams two of none) on channels 0-4, where they wait for the next
 * verification. A verification: each side reads every message queued for
 * it and compares it with what was sent, in order, and finds nothing more;
 * main sends a fresh token on channels 0-3 and 5 and the child must send
 * it back, changed, on the same channel (and a token of its own on 4);
 * main's listener takes a new connection; the unlinked listener still
 * listens under its old name, which is not on disk; the closed pair's end
 * still holds its bytes (peeked) and then the end (POLLRDHUP, EPIPE); the
 * shut-down socket cannot send and its peer reads the end. Then both sides
 * send their messages again.
 *
 * (CRIU 4.2's dump takes a datagram of no bytes for the end of the queue
 * and loses it and every message after it: hence the option.)
 *
 * With --rights, main's last message on channel 1 carries two fds in
 * flight (SCM_RIGHTS): a file main keeps open (DIR/ct-unix.held) and one
 * it opened only to send it (DIR/ct-unix.loose at offset 11); the child
 * checks with kcmp that the first is main's open file.
 *
 *   ct_unix STATUS --dir=DIR [--empty-datagrams] [--rights] [common options]
 */
#include "ct_proto.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define NCH 6
#define REPLY_TIMEOUT_MS 20000

static const int ch_type[NCH] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM };
static int mine[NCH]; /* this process's end of each channel */
static int req[2], rep[2];
static pid_t kid;
static bool is_kid;
static int listener = -1, gone = -1, widow = -1;
static struct sockaddr_un lis_addr, gone_addr;
static const char widow_words[] = "the last words of a closed peer";
static bool empty_dgrams; /* --empty-datagrams: send the datagrams of no bytes */
static bool rights;       /* --rights: fds in flight on channel 1 */
static int held = -1;     /* main's file, also in flight */
static char held_path[PATH_MAX], loose_path[PATH_MAX];
#define HELD_POS 7
#define LOOSE_POS 11

/* Main, after its messages on channel 1: one more carrying two fds, its
 * own file and a file it opens for this and closes. */
static void send_rights(void)
{
	int loose = open(loose_path, O_RDONLY | O_CLOEXEC);
	if (loose < 0 || lseek(loose, LOOSE_POS, SEEK_SET) != LOOSE_POS) {
		ct_fail("opening %s: %s", loose_path, strerror(errno));
		return;
	}
	int fds[2] = { held, loose };
	union {
		char b[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)"rights", 6 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS, cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(mine[1], &mh, MSG_NOSIGNAL) != 6)
		ct_fail("sending fds in flight: %s", strerror(errno));
	close(loose);
}

/* The child: the fds in flight are main's open file and the loose file at
 * its offset. */
static void check_rights(void)
{
	char b[16];
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	ssize_t r = recvmsg(mine[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (r != 6 || memcmp(b, "rights", 6) || !cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(2 * sizeof(int))) {
		ct_fail("channel 1: no message with two fds in flight (%zd)", r);
		return;
	}
	int fds[2];
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	if (syscall(SYS_kcmp, getppid(), getpid(), KCMP_FILE, held, fds[0]) != 0)
		ct_fail("the first fd in flight is not main's open file");
	char link[PATH_MAX], path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[1]);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strcmp(link, loose_path) || lseek(fds[1], 0, SEEK_CUR) != LOOSE_POS || (fcntl(fds[1], F_GETFL) & O_ACCMODE) != O_RDONLY)
		ct_fail("the second fd in flight is %s at %lld, not %s at %d", link, (long long)lseek(fds[1], 0, SEEK_CUR),
			loose_path, LOOSE_POS);
	close(fds[0]), close(fds[1]);
}

/* The messages one side sends on channel ch: sizes, and contents from a
 * seed. Nothing flows main -> child on channel 4, nor on 5 (shut down). */
static const size_t sizes_main[NCH][4] = { { 1000, 5000, 17 }, { 33, 100000, 0, 7 }, { 10, 2000 }, { 4096, 3 } };
static const size_t sizes_kid[NCH][4] = { { 300, 70000 }, { 5, 4000 }, { 1, 2, 3 }, { 12 }, { 64, 0, 1500 } };
static const size_t nmsg_main[NCH] = { 3, 4, 2, 2, 0, 0 };
static const size_t nmsg_kid[NCH] = { 2, 2, 3, 1, 3, 0 };

static uint64_t msg_seed(bool from_kid, int ch, size_t i)
{
	return 0xc0ffee ^ ((uint64_t)from_kid << 40) ^ ((uint64_t)ch << 32) ^ i;
}

static void send_all(void)
{
	static unsigned char buf[100000];
	for (int ch = 0; ch < NCH; ch++) {
		size_t n = is_kid ? nmsg_kid[ch] : nmsg_main[ch];
		for (size_t i = 0; i < n; i++) {
			size_t len = is_kid ? sizes_kid[ch][i] : sizes_main[ch][i];
			if (!len && !empty_dgrams)
				continue;
			ct_fill(buf, len, msg_seed(is_kid, ch, i));
			if (send(mine[ch], buf, len, MSG_NOSIGNAL) != (ssize_t)len)
				ct_fail("channel %d: sending message %zu: %s", ch, i, strerror(errno));
		}
		if (ch == 1 && rights && !is_kid)
			send_rights();
	}
}

/* Reads every message queued for this side and compares it with what the
 * other side sent; nothing more may follow. */
static void check_queues(void)
{
	static unsigned char buf[200000], want[100000];
	for (int ch = 0; ch < NCH; ch++) {
		size_t n = is_kid ? nmsg_main[ch] : nmsg_kid[ch];
		const size_t *sz = is_kid ? sizes_main[ch] : sizes_kid[ch];
		if (ch_type[ch] == SOCK_STREAM) {
			size_t total = 0, got = 0;
			for (size_t i = 0; i < n; i++)
				total += sz[i];
			while (got < total) {
				ssize_t r = recv(mine[ch], buf + got, sizeof(buf) - got, MSG_DONTWAIT);
				if (r <= 0)
					break;
				got += (size_t)r;
			}
			if (got != total) {
				ct_fail("channel %d: %zu queued bytes, expected %zu", ch, got, total);
				continue;
			}
			size_t at = 0;
			for (size_t i = 0; i < n; at += sz[i], i++) {
				ct_fill(want, sz[i], msg_seed(!is_kid, ch, i));
				if (memcmp(buf + at, want, sz[i]))
					ct_fail("channel %d: bytes of message %zu differ", ch, i);
			}
		} else {
			for (size_t i = 0; i < n; i++) {
				if (!sz[i] && !empty_dgrams)
					continue;
				ssize_t r = recv(mine[ch], buf, sizeof(buf), MSG_DONTWAIT);
				ct_fill(want, sz[i], msg_seed(!is_kid, ch, i));
				if (r != (ssize_t)sz[i] || memcmp(buf, want, sz[i])) {
					ct_fail("channel %d: message %zu is %zd bytes (%s), expected %zu", ch, i, r,
						r < 0 ? strerror(errno) : "content", sz[i]);
					break;
				}
			}
			if (ch == 1 && rights && is_kid)
				check_rights();
		}
		ssize_t r = recv(mine[ch], buf, sizeof(buf), MSG_DONTWAIT);
		if (ch == 5 && is_kid) {
			if (r != 0)
				ct_fail("channel 5: the shut-down peer's end reads %zd, not the end", r);
		} else if (r >= 0 || errno != EAGAIN) {
			ct_fail("channel %d: more queued than was sent (%zd)", ch, r);
		}
	}
}

static void kid_reply(char ok, const char *why)
{
	char b[256] = { 0 };
	b[0] = ok;
	snprintf(b + 1, sizeof(b) - 1, "%s", why);
	if (write(rep[1], b, sizeof(b)) != (ssize_t)sizeof(b))
		_exit(3);
}

/* The child: 'v' checks its queues; 't' answers main's tokens and sends
 * its messages again. Each gets a reply. */
static __attribute__((noreturn)) void kid_loop(void)
{
	for (;;) {
		char cmd;
		if (read(req[0], &cmd, 1) != 1 || cmd == 'q')
			_exit(0);
		ct.nfail = 0, ct.why_len = 0, ct.why[0] = 0;
		if (cmd == 'v')
			check_queues();
		for (int ch = 0; ch < NCH && cmd == 't'; ch++) {
			uint64_t t = 0;
			if (ch == 4) {
				t = 0x4444; /* main cannot reach this socket: a token of our own */
			} else if (ch != 5) {
				struct pollfd p = { .fd = mine[ch], .events = POLLIN };
				if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1 || recv(mine[ch], &t, 8, 0) != 8) {
					ct_fail("channel %d: no token from main", ch);
					continue;
				}
			}
			t = ct_mix(t);
			if (send(mine[ch], &t, 8, MSG_NOSIGNAL) != 8)
				ct_fail("channel %d: cannot answer: %s", ch, strerror(errno));
		}
		if (cmd == 't')
			send_all();
		ct.why[ct.why_len] = 0;
		kid_reply(ct.nfail ? 0 : 1, ct.why);
	}
}

static int make_listener(struct sockaddr_un *a, const char *dir, const char *name)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, name);
	unlink(a->sun_path);
	if (s < 0 || bind(s, (struct sockaddr *)a, sizeof(*a)) || listen(s, 4))
		ct_die("listener at %s: %s", a->sun_path, strerror(errno));
	return s;
}

static void check_listener(void)
{
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int a = c >= 0 && !connect(c, (struct sockaddr *)&lis_addr, sizeof(lis_addr)) ?
			accept4(listener, NULL, NULL, SOCK_CLOEXEC) : -1;
	char b = 0;
	if (a < 0 || write(c, "L", 1) != 1 || read(a, &b, 1) != 1 || b != 'L')
		ct_fail("the listener takes no connection: %s", strerror(errno));
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	struct sockaddr_un now;
	socklen_t l = sizeof(now);
	int v = 0;
	socklen_t vl = sizeof(v);
	struct stat st;
	if (getsockname(gone, (struct sockaddr *)&now, &l) || strcmp(now.sun_path, gone_addr.sun_path))
		ct_fail("the unlinked listener's name is now '%s'", now.sun_path);
	if (getsockopt(gone, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) || !v)
		ct_fail("the unlinked listener does not listen");
	if (stat(gone_addr.sun_path, &st) == 0)
		ct_fail("the unlinked listener's path %s exists", gone_addr.sun_path);
}

static void check_widow(void)
{
	char b[64];
	ssize_t r = recv(widow, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	if (r != (ssize_t)sizeof(widow_words) || memcmp(b, widow_words, sizeof(widow_words)))
		ct_fail("the closed pair's end holds %zd bytes, not its last words", r);
	struct pollfd p = { .fd = widow, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLRDHUP) || !(p.revents & POLLHUP))
		ct_fail("the closed pair's end does not see its peer gone (revents %#x)", p.revents);
	if (send(widow, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE)
		ct_fail("the closed pair's end can still send (%s)", strerror(errno));
}

static void verify(void)
{
	check_queues();
	check_listener();
	check_widow();
	if (send(mine[5], "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		ct_fail("channel 5: main's shut-down end can still send (%s)", strerror(errno));
	char b[256];
	if (write(req[1], "v", 1) != 1 || !ct_read_answer(rep[0], b, sizeof(b), REPLY_TIMEOUT_MS)) {
		ct_fail("child %d does not answer", (int)kid);
		return;
	}
	if (!b[0])
		ct_fail("child: %s", b + 1);
	uint64_t token = ct_mix(((uint64_t)ct.n << 32) ^ (uint64_t)getpid() ^ (uint64_t)time(NULL));
	for (int ch = 0; ch < 4; ch++)
		if (send(mine[ch], &token, 8, MSG_NOSIGNAL) != 8)
			ct_fail("channel %d: sending the token: %s", ch, strerror(errno));
	if (write(req[1], "t", 1) != 1 || !ct_read_answer(rep[0], b, sizeof(b), REPLY_TIMEOUT_MS)) {
		ct_fail("child %d does not answer", (int)kid);
		return;
	}
	if (!b[0])
		ct_fail("child: %s", b + 1);
	for (int ch = 0; ch < 5; ch++) {
		uint64_t t = 0;
		if (recv(mine[ch], &t, 8, MSG_DONTWAIT) != 8 || t != ct_mix(ch == 4 ? 0x4444 : token))
			ct_fail("channel %d: the child's answer is wrong or missing", ch);
	}
	uint64_t t = 0;
	struct pollfd p = { .fd = mine[5], .events = POLLIN };
	if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1 || recv(mine[5], &t, 8, 0) != 8 || t != ct_mix(0))
		ct_fail("channel 5: the child's answer is wrong or missing");
	send_all();
}

int main(int argc, char **argv)
{
	ct.prog = "ct_unix";
	const char *dir = NULL;
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_unix STATUS --dir=DIR [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--empty-datagrams"))
			empty_dgrams = true;
		else if (!strcmp(argv[i], "--rights"))
			rights = true;
		else if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir)) {
			fprintf(stderr, "ct_unix: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir)
		ct_die("--dir=DIR is needed (for the socket files)");
	ct_setup();
	snprintf(held_path, sizeof(held_path), "%s/ct-unix.held", dir);
	snprintf(loose_path, sizeof(loose_path), "%s/ct-unix.loose", dir);
	if (rights) {
		int lf = open(loose_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		held = open(held_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (lf < 0 || held < 0 || write(lf, "0123456789abcdef", 16) != 16 || write(held, "held file", 9) != 9 ||
		    lseek(held, HELD_POS, SEEK_SET) != HELD_POS)
			ct_die("files for the fds in flight: %s", strerror(errno));
		close(lf);
	}
	int other[NCH];
	for (int ch = 0; ch < NCH; ch++) {
		if (ch == 3 || ch == 4)
			continue;
		int sv[2];
		if (socketpair(AF_UNIX, ch_type[ch] | SOCK_CLOEXEC, 0, sv))
			ct_die("socketpair: %s", strerror(errno));
		mine[ch] = sv[0], other[ch] = sv[1];
	}
	listener = make_listener(&lis_addr, dir, "ct-unix.sock");
	other[3] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (other[3] < 0 || connect(other[3], (struct sockaddr *)&lis_addr, sizeof(lis_addr)) ||
	    (mine[3] = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0)
		ct_die("connecting to the listener: %s", strerror(errno));
	struct sockaddr_un ab = { .sun_family = AF_UNIX };
	int an = snprintf(ab.sun_path + 1, sizeof(ab.sun_path) - 1, "ct_unix-%d", (int)getpid());
	socklen_t abl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)an);
	mine[4] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	other[4] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (mine[4] < 0 || other[4] < 0 || bind(mine[4], (struct sockaddr *)&ab, abl) ||
	    connect(other[4], (struct sockaddr *)&ab, abl))
		ct_die("abstract datagram sockets: %s", strerror(errno));
	gone = make_listener(&gone_addr, dir, "ct-gone.sock");
	if (unlink(gone_addr.sun_path))
		ct_die("unlink %s: %s", gone_addr.sun_path, strerror(errno));
	int wv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wv) ||
	    write(wv[1], widow_words, sizeof(widow_words)) != (ssize_t)sizeof(widow_words))
		ct_die("the pair to close: %s", strerror(errno));
	close(wv[1]);
	widow = wv[0];
	if (shutdown(mine[5], SHUT_WR))
		ct_die("shutdown: %s", strerror(errno));
	if (pipe2(req, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
		ct_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		ct_die("fork: %s", strerror(errno));
	if (kid == 0) {
		is_kid = true;
		for (int ch = 0; ch < NCH; ch++)
			close(mine[ch]), mine[ch] = other[ch];
		close(listener), close(gone), close(widow);
		if (held >= 0)
			close(held); /* (its number is main's, for kcmp) */
		close(req[1]), close(rep[0]);
		send_all();
		kid_reply(1, "");
		kid_loop();
	}
	for (int ch = 0; ch < NCH; ch++)
		close(other[ch]);
	close(req[0]), close(rep[1]);
	char b[256];
	if (!ct_read_answer(rep[0], b, sizeof(b), REPLY_TIMEOUT_MS))
		ct_die("the child did not start");
	send_all();
	if (ct.nfail)
		ct_die("sending the first messages: %s", ct.why);
	ct_info("child pid %d", (int)kid);
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		verify();
		int status = ct_verify_end_with_child(ev, kid, req[1], "q", 1);
		if (status >= 0)
			return status;
	}
}
