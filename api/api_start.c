/* Starting session helpers for a caller that is not forkpoint (see
 * api_start in api/api_int.h). */
#include "api/api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hygiene.h"

struct start_report {
	int rc;
	fp_error err;
	struct api_started st;
};

static __attribute__((noreturn)) void starter(int (*start)(void *, struct api_started *, fp_error *), void *arg,
					      int wfd)
{
	fp_sanitize_self(NULL);
	if (wfd > 3)
		close_range(3, (unsigned)wfd - 1, 0);
	close_range((unsigned)wfd + 1, ~0U, 0);
	struct start_report rep = { 0 };
	rep.rc = start(arg, &rep.st, &rep.err);
	const char *p = (const char *)&rep;
	size_t left = sizeof(rep);
	while (left) {
		ssize_t w = write(wfd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(1);
		p += w;
		left -= (size_t)w;
	}
	_exit(0);
}

int api_start(int (*start)(void *arg, struct api_started *st, fp_error *err), void *arg,
	      struct api_started *st, forkpoint_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return api_fail(err, FORKPOINT_EFAIL, errno, "pipe: %s", strerror(errno));
	pid_t c = fork();
	if (c < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return api_fail(err, FORKPOINT_EFAIL, e, "cannot fork to start the session: %s", strerror(e));
	}
	if (c == 0) {
		close(p[0]);
		starter(start, arg, p[1]);
	}
	close(p[1]);
	struct start_report *rep = malloc(sizeof(*rep));
	size_t got = 0;
	while (rep && got < sizeof(*rep)) {
		ssize_t n = read(p[0], (char *)rep + got, sizeof(*rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
		;
	int rc = !rep ? api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory")
		 : got != sizeof(*rep) ? api_fail(err, FORKPOINT_EFAIL, EPIPE,
						  "the process starting the session died before it said how it went")
		 : rep->rc < 0 ? api_error(err, &rep->err)
			       : 0;
	if (rc == 0)
		*st = rep->st;
	free(rep);
	return rc;
}

int api_open_all(const struct api_started *st, forkpoint_session **out, forkpoint_error *err)
{
	for (int i = 0; i < st->n; i++) {
		if (forkpoint_session_open(st->names[i], &out[i], err) < 0) {
			while (i-- > 0)
				forkpoint_session_close(out[i]);
			return -1;
		}
	}
	return 0;
}
