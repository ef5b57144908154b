/* ct_extusk: a unix socket whose peer is outside the tree, as a program's
 * socket to syslog's /dev/log is (`--ext-unix-sk`).
 *
 * --dgram=PATH: a datagram socket connected to PATH, which a process
 * outside binds. Every verification checks that the socket is still
 * connected to PATH (getpeername), that its own end has no name, and sends
 * "ct_extusk PID N" there (the test checks that the process outside got
 * it: a socket left unconnected would fail with EDESTADDRREQ, one connected
 * elsewhere would not reach it).
 * --stream=PATH: a stream connection to a listener outside at PATH, which
 * a dump refuses (half of a connection cannot come back); a verification
 * checks it is still connected and sends a line on it.
 *
 *   ct_extusk STATUS --dgram=PATH | --stream=PATH [common options]
 */
#include "ct_proto.h"

#include <sys/socket.h>
#include <sys/un.h>

static int sk = -1;
static const char *path;
static unsigned long long sent;

static void verify(void)
{
	ct_verify_begin();
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(sk, (struct sockaddr *)&a, &l) || strcmp(a.sun_path, path))
		ct_fail("fd %d: connected to %s, not %s (%s)", sk, a.sun_path, path, strerror(errno));
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(sk, (struct sockaddr *)&a, &l) || l != sizeof(sa_family_t))
		ct_fail("fd %d: its own name changed (length %u)", sk, (unsigned)l);
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "ct_extusk %d %llu\n", (int)getpid(), sent + 1);
	if (!ct.nfail && send(sk, msg, (size_t)n, MSG_NOSIGNAL) != n)
		ct_fail("fd %d: send to %s: %s", sk, path, strerror(errno));
	else if (!ct.nfail)
		sent++;
	char extra[32];
	snprintf(extra, sizeof(extra), "sent=%llu", sent);
	ct_verify_end(extra);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_extusk";
	const char *dgram = NULL, *stream = NULL;
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_extusk STATUS --dgram=PATH | --stream=PATH [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dgram", &dgram) &&
		    !ct_str_arg(argv[i], "--stream", &stream)) {
			fprintf(stderr, "ct_extusk: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dgram == !stream)
		ct_die("one of --dgram=PATH and --stream=PATH is needed");
	ct_setup();
	path = dgram ? dgram : stream;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		ct_die("%s: too long for a socket name", path);
	strcpy(a.sun_path, path);
	sk = socket(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (sk < 0 || connect(sk, (struct sockaddr *)&a, sizeof(a)))
		ct_die("connect to %s: %s", path, strerror(errno));
	ct_info("ext %d %s", sk, path);
	return ct_serve(verify);
}
