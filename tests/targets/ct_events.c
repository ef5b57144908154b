/* ct_events: a target holding every kind of event fd forkpoint dumps, each
 * in a state a restorer must rebuild exactly, checked without consuming it
 * (so every verification sees the same state):
 *
 *   eventfd   O_NONBLOCK, counter 5
 *   signalfd  for SIGRTMIN+3 (blocked), with one such signal pending
 *   timerfd   "armed": 1000 s to go, 100 s interval (CLOCK_MONOTONIC)
 *   timerfd   "fired": expired once, not read (ticks 1)
 *   epoll     watching the eventfd (EPOLLIN, data 0x1234), a pipe holding a
 *             byte (EPOLLIN, data 0x5678) and the fired timer (data 0x9abc)
 *
 * A verification checks each through the kernel: epoll_wait (level
 * triggered: reports the ready fds with their data), timerfd_gettime,
 * sigpending, and the counters the kernel shows in /proc/self/fdinfo.
 * "verify N ok".
 *
 * --moved: once watched, the eventfd and the pipe's read end are moved to
 * other fd numbers (dup, then close): the watches stay on the open files,
 * under numbers no longer open. A verification also empties the eventfd,
 * which must drop it (and only it) from epoll_wait, and fills it again.
 *
 *   ct_events STATUS [--moved] [common options]
 */
#include "ct_proto.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int efd, sfd, tarmed, tfired, epfd, pipefd[2];
static int sig;
static bool moved;

/* The number on fd's fdinfo line that starts with key; -1 if there is none. */
static long long fdinfo_num(int fd, const char *key, int base)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long long v = -1;
	size_t kl = strlen(key);
	while (v < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl))
			v = strtoll(line + kl, NULL, base);
	fclose(f);
	return v;
}

static void check_epoll(void)
{
	struct epoll_event ev[8];
	int n = epoll_wait(epfd, ev, 8, 0);
	if (n != 3) {
		ct_fail("epoll_wait reports %d ready fds, expected 3", n);
		return;
	}
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		if (!(ev[i].events & EPOLLIN))
			ct_fail("epoll event %d without EPOLLIN (%#x)", i, ev[i].events);
		seen |= ev[i].data.u64 == 0x1234 ? 1 : ev[i].data.u64 == 0x5678 ? 2 : ev[i].data.u64 == 0x9abc ? 4 : 8;
	}
	if (seen != 7)
		ct_fail("epoll data values wrong (seen mask %#x)", seen);
	if (!moved)
		return;
	/* the watch is on the eventfd's open file: empty, it is not ready */
	uint64_t c = 0;
	if (read(efd, &c, 8) != 8 || c != 5)
		ct_fail("cannot empty the eventfd (%llu)", (unsigned long long)c);
	n = epoll_wait(epfd, ev, 8, 0);
	for (int i = 0; i < n; i++)
		if (ev[i].data.u64 == 0x1234)
			ct_fail("an empty eventfd is reported ready");
	if (n != 2)
		ct_fail("epoll_wait reports %d ready fds with the eventfd empty, expected 2", n);
	c = 5;
	if (write(efd, &c, 8) != 8)
		ct_fail("cannot refill the eventfd: %s", strerror(errno));
}

static void verify(void)
{
	ct_verify_begin();
	long long count = fdinfo_num(efd, "eventfd-count:", 16);
	if (count != 5)
		ct_fail("eventfd counter %lld, expected 5", count);
	if (!(fcntl(efd, F_GETFL) & O_NONBLOCK))
		ct_fail("eventfd lost O_NONBLOCK");
	long long mask = fdinfo_num(sfd, "sigmask:", 16);
	if (mask != (1ll << (sig - 1)))
		ct_fail("signalfd mask %llx, expected %llx", mask, 1ll << (sig - 1));
	sigset_t pend;
	sigpending(&pend);
	if (!sigismember(&pend, sig))
		ct_fail("the signal for the signalfd is no longer pending");
	struct itimerspec its;
	if (timerfd_gettime(tarmed, &its))
		ct_fail("timerfd_gettime: %s", strerror(errno));
	else if (its.it_interval.tv_sec != 100 || its.it_interval.tv_nsec || its.it_value.tv_sec > 1000 ||
		 its.it_value.tv_sec < 500)
		ct_fail("armed timer: value %lld s, interval %lld s", (long long)its.it_value.tv_sec,
			(long long)its.it_interval.tv_sec);
	long long ticks = fdinfo_num(tfired, "ticks:", 10);
	if (ticks != 1)
		ct_fail("fired timer has %lld ticks, expected 1", ticks);
	if (fdinfo_num(tarmed, "clockid:", 10) != CLOCK_MONOTONIC)
		ct_fail("armed timer's clock changed");
	check_epoll();
	ct_verify_end(NULL);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_events";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_events STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--moved"))
			moved = true;
		else if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "ct_events: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	sig = SIGRTMIN + 3;
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, sig);
	sigprocmask(SIG_BLOCK, &m, NULL);
	efd = eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC);
	sfd = signalfd(-1, &m, SFD_CLOEXEC);
	tarmed = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	tfired = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || sfd < 0 || tarmed < 0 || tfired < 0 || epfd < 0 || pipe(pipefd))
		ct_die("cannot create the event fds: %s", strerror(errno));
	struct itimerspec armed = { .it_interval = { 100, 0 }, .it_value = { 1000, 0 } };
	struct itimerspec once = { .it_value = { 0, 1000000 } };
	if (timerfd_settime(tarmed, 0, &armed, NULL) || timerfd_settime(tfired, 0, &once, NULL))
		ct_die("timerfd_settime: %s", strerror(errno));
	if (write(pipefd[1], "x", 1) != 1)
		ct_die("write: %s", strerror(errno));
	struct epoll_event e1 = { .events = EPOLLIN, .data.u64 = 0x1234 };
	struct epoll_event e2 = { .events = EPOLLIN, .data.u64 = 0x5678 };
	struct epoll_event e3 = { .events = EPOLLIN, .data.u64 = 0x9abc };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &e1) || epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &e2) ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, tfired, &e3))
		ct_die("epoll_ctl: %s", strerror(errno));
	if (moved) { /* the watched files go to other numbers: 40 and 41 */
		if (dup3(efd, 40, O_CLOEXEC) != 40 || dup2(pipefd[0], 41) != 41)
			ct_die("dup: %s", strerror(errno));
		close(efd), close(pipefd[0]);
		efd = 40, pipefd[0] = 41;
	}
	union sigval v = { .sival_int = 42 };
	if (sigqueue(getpid(), sig, v))
		ct_die("sigqueue: %s", strerror(errno));
	/* the one-shot timer must have fired before the target is ready */
	struct pollfd pf = { .fd = tfired, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1)
		ct_die("the one-shot timer did not fire");
	return ct_serve(verify);
}
