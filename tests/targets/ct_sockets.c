/* ct_sockets: a target with the sockets forkpoint dumps: TCP listeners on
 * 127.0.0.1 and ::1 (ports chosen by the kernel, SO_REUSEADDR, backlog 7,
 * the IPv6 one v6-only and non-blocking), a TCP socket bound but not
 * connected, and a unix stream listener at DIR/ct.sock. A verification
 * proves each listener listens: it connects to it, accepts the connection
 * and passes a byte through, then closes both ends (so the state it checks
 * is the same every time). "verify N ok".
 *
 * --connect=PATH adds a unix stream socket connected to a listener at PATH
 * of another program: a dump of this process alone must refuse it.
 *
 *   ct_sockets STATUS --dir=DIR [--connect=PATH] [common options]
 */
#include "ct_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static int l4, l6, bound, lu;
static struct sockaddr_storage a4, a6, ab;
static struct sockaddr_un au;

static int listener(int family, struct sockaddr_storage *at, bool nonblock)
{
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int one = 1;
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		ct_die("socket: %s", strerror(errno));
	memset(at, 0, sizeof(*at));
	socklen_t l;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)at;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)at;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		l = sizeof(*a);
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(s, (struct sockaddr *)at, l) || listen(s, 7))
		ct_die("bind/listen: %s", strerror(errno));
	l = sizeof(*at);
	getsockname(s, (struct sockaddr *)at, &l);
	return s;
}

/* Connects to the listener ls (address at, length al) and passes a byte. */
static void prove_listening(const char *what, int ls, const void *at, socklen_t al, int family)
{
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, at, al)) {
		ct_fail("%s: cannot connect: %s", what, strerror(errno));
		if (c >= 0)
			close(c);
		return;
	}
	struct pollfd p = { .fd = ls, .events = POLLIN };
	int a = poll(&p, 1, 5000) == 1 ? accept4(ls, NULL, NULL, SOCK_CLOEXEC) : -1;
	char b = 0;
	if (a < 0)
		ct_fail("%s: accept: %s", what, strerror(errno));
	else if (write(c, "z", 1) != 1 || read(a, &b, 1) != 1 || b != 'z')
		ct_fail("%s: the byte did not pass", what);
	if (a >= 0)
		close(a);
	close(c);
}

static void verify(void)
{
	ct_verify_begin();
	struct sockaddr_storage now;
	socklen_t l = sizeof(now);
	getsockname(l4, (struct sockaddr *)&now, &l);
	if (memcmp(&now, &a4, sizeof(struct sockaddr_in)))
		ct_fail("the IPv4 listener's address changed");
	int v = 0;
	socklen_t vl = sizeof(v);
	getsockopt(l4, SOL_SOCKET, SO_REUSEADDR, &v, &vl);
	if (!v)
		ct_fail("SO_REUSEADDR lost");
	vl = sizeof(v);
	getsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl);
	if (!v)
		ct_fail("IPV6_V6ONLY lost");
	if (!(fcntl(l6, F_GETFL) & O_NONBLOCK))
		ct_fail("the IPv6 listener lost O_NONBLOCK");
	l = sizeof(now);
	getsockname(bound, (struct sockaddr *)&now, &l);
	if (memcmp(&now, &ab, sizeof(struct sockaddr_in)))
		ct_fail("the bound socket's address changed");
	vl = sizeof(v);
	getsockopt(bound, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
	if (v)
		ct_fail("the bound socket listens");
	prove_listening("IPv4", l4, &a4, sizeof(struct sockaddr_in), AF_INET);
	prove_listening("IPv6", l6, &a6, sizeof(struct sockaddr_in6), AF_INET6);
	prove_listening("unix", lu, &au, sizeof(au), AF_UNIX);
	ct_verify_end(NULL);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_sockets";
	const char *dir = NULL, *connect_to = NULL;
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_sockets STATUS --dir=DIR [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir) &&
		    !ct_str_arg(argv[i], "--connect", &connect_to)) {
			fprintf(stderr, "ct_sockets: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir)
		ct_die("--dir=DIR is needed (for the unix socket)");
	ct_setup();
	l4 = listener(AF_INET, &a4, false);
	l6 = listener(AF_INET6, &a6, true);
	bound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in *b = (struct sockaddr_in *)&ab;
	b->sin_family = AF_INET;
	b->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t bl = sizeof(*b);
	if (bound < 0 || bind(bound, (struct sockaddr *)b, bl) || getsockname(bound, (struct sockaddr *)b, &bl))
		ct_die("bound socket: %s", strerror(errno));
	lu = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	au.sun_family = AF_UNIX;
	snprintf(au.sun_path, sizeof(au.sun_path), "%s/ct%s.sock", dir, connect_to ? "-c" : "");
	unlink(au.sun_path);
	if (lu < 0 || bind(lu, (struct sockaddr *)&au, sizeof(au)) || listen(lu, 5))
		ct_die("unix listener at %s: %s", au.sun_path, strerror(errno));
	struct sockaddr_un out = { .sun_family = AF_UNIX };
	int c = connect_to ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
	if (connect_to) {
		snprintf(out.sun_path, sizeof(out.sun_path), "%s", connect_to);
		if (c < 0 || connect(c, (struct sockaddr *)&out, sizeof(out)))
			ct_die("connecting to %s: %s", connect_to, strerror(errno));
	}
	return ct_serve(verify);
}
