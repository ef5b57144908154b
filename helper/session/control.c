#include "control.h"
#include "fp_clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int make_addr(const char *path, struct sockaddr_un *sa, fp_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return fp_fail(err, ENAMETOOLONG,
			       "control socket path %s is longer than %zu bytes; use a shorter FORKPOINT_HOME",
			       path, sizeof(sa->sun_path) - 1);
	strcpy(sa->sun_path, path);
	return 0;
}

int fp_ctl_listen(const char *sock_path, fp_error *err)
{
	struct sockaddr_un sa;
	if (make_addr(sock_path, &sa, err) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fp_fail(err, errno, "cannot create control socket: %s", strerror(errno));
	unlink(sock_path);
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		return fp_fail(err, e, "cannot listen on %s: %s", sock_path, strerror(e));
	}
	return fd;
}

int fp_ctl_request(const char *sock_path, const char *req, char *resp, size_t len,
		   int timeout_ms, fp_error *err)
{
	struct sockaddr_un sa;
	if (make_addr(sock_path, &sa, err) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fp_fail(err, errno, "cannot create socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return fp_fail(err, e, "cannot reach the session helper at %s: %s", sock_path,
			       strerror(e));
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		int e = errno;
		close(fd);
		return fp_fail(err, e, "cannot send to the session helper: %s", strerror(e));
	}
	long long deadline = fp_mono_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - fp_mono_ms();
		if (left <= 0) {
			close(fd);
			return fp_fail(err, ETIMEDOUT,
				       "the session helper did not answer within %d ms", timeout_ms);
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return fp_fail(err, e, "poll: %s", strerror(e));
		}
		if (r == 0)
			continue;
		ssize_t n = recv(fd, resp, len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		close(fd);
		if (n <= 0)
			return fp_fail(err, n < 0 ? errno : EPIPE,
				       "the session helper closed the connection without answering");
		resp[n] = '\0';
		return 0;
	}
}
