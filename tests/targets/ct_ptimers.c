/* ct_ptimers: POSIX timers (timer_create), the kind vim and many servers
 * hold, in every shape a restorer must rebuild:
 *
 *   id 0  CLOCK_MONOTONIC, signal SIGRTMIN+1 (blocked) with value 0x1234,
 *         1000 s to go, 7 s interval
 *   id 1  CLOCK_REALTIME, no notification, 500 s to go
 *   id 2  deleted: its id must stay free
 *   id 3  CLOCK_PROCESS_CPUTIME_ID, signal SIGRTMIN+2, disarmed
 *   id 4  CLOCK_BOOTTIME, signal SIGRTMIN+3 to the second thread
 *         (SIGEV_THREAD_ID), 800 s to go
 *   id 5  CLOCK_MONOTONIC, fired once (its signal SIGRTMIN+4 stays pending,
 *         blocked), now disarmed
 *
 * A verification checks each timer with timer_gettime (time left within
 * its range, interval exact), that /proc/self/timers still says what it
 * said at ready (ids, signals, values, notification, clocks), that id 2
 * does not exist, and that the fired timer's signal is still pending.
 * "verify N ok".
 *
 *   ct_ptimers STATUS [common options]
 */
#include "ct_proto.h"

#include <pthread.h>
#include <time.h>

#define NTIMERS 6

static timer_t tid[NTIMERS];
static char timers0[4096]; /* /proc/self/timers at ready */
static pid_t thread_tid;

static void proc_timers(char *buf, size_t len)
{
	int f = open("/proc/self/timers", O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, len - 1);
	if (f >= 0)
		close(f);
	buf[n < 0 ? 0 : n] = 0;
}

static void *waiter(void *arg)
{
	(void)arg;
	thread_tid = ct_gettid();
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;)
		pause();
	return NULL;
}

static void check_left(int i, long lo, long hi, long interval)
{
	struct itimerspec v;
	if (syscall(SYS_timer_gettime, (int)(intptr_t)tid[i], &v)) {
		ct_fail("timer %d: timer_gettime: %s", i, strerror(errno));
		return;
	}
	if (v.it_value.tv_sec < lo || v.it_value.tv_sec > hi || v.it_interval.tv_sec != interval ||
	    v.it_interval.tv_nsec)
		ct_fail("timer %d: %lld s left (want %ld-%ld), interval %lld s (want %ld)", i, (long long)v.it_value.tv_sec,
			lo, hi, (long long)v.it_interval.tv_sec, interval);
}

static void verify(void)
{
	ct_verify_begin();
	check_left(0, 500, 1000, 7);
	check_left(1, 250, 500, 0);
	check_left(3, 0, 0, 0);
	check_left(4, 400, 800, 0);
	check_left(5, 0, 0, 0);
	struct itimerspec v;
	if (syscall(SYS_timer_gettime, 2, &v) == 0 || errno != EINVAL)
		ct_fail("deleted timer id 2 exists again");
	char now[sizeof(timers0)];
	proc_timers(now, sizeof(now));
	if (strcmp(now, timers0))
		ct_fail("/proc/self/timers was [%s], now [%s]", timers0, now);
	sigset_t pend;
	sigpending(&pend);
	if (!sigismember(&pend, SIGRTMIN + 4))
		ct_fail("the fired timer's signal is no longer pending");
	ct_verify_end(NULL);
}

static void make(int i, clockid_t clock, int notify, int signo, long value, long secs, long interval)
{
	struct sigevent ev = { .sigev_notify = notify, .sigev_signo = signo };
	ev.sigev_value.sival_ptr = (void *)value;
	if (notify & SIGEV_THREAD_ID)
		ev._sigev_un._tid = thread_tid;
	if (timer_create(clock, &ev, &tid[i]))
		ct_die("timer_create %d: %s", i, strerror(errno));
	if ((intptr_t)tid[i] != i)
		ct_die("timer %d got id %ld", i, (long)(intptr_t)tid[i]);
	struct itimerspec v = { .it_value = { secs, 0 }, .it_interval = { interval, 0 } };
	if (secs && timer_settime(tid[i], 0, &v, NULL))
		ct_die("timer_settime %d: %s", i, strerror(errno));
}

int main(int argc, char **argv)
{
	ct.prog = "ct_ptimers";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_ptimers STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "ct_ptimers: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	sigset_t rt;
	sigemptyset(&rt);
	for (int s = 1; s <= 4; s++)
		sigaddset(&rt, SIGRTMIN + s);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, waiter, NULL))
		ct_die("pthread_create failed");
	ct.nthreads = 2;
	while (!__atomic_load_n(&thread_tid, __ATOMIC_ACQUIRE))
		sched_yield();

	make(0, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0x1234, 1000, 7);
	make(1, CLOCK_REALTIME, SIGEV_NONE, 0, 0, 500, 0);
	make(2, CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, 0);
	make(3, CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 2, 0, 0, 0);
	make(4, CLOCK_BOOTTIME, SIGEV_SIGNAL | SIGEV_THREAD_ID, SIGRTMIN + 3, 0x4444, 800, 0);
	if (timer_delete(tid[2]))
		ct_die("timer_delete: %s", strerror(errno));
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 4 };
	if (timer_create(CLOCK_MONOTONIC, &ev, &tid[5]) || (intptr_t)tid[5] != 5)
		ct_die("timer 5: %s", strerror(errno));
	struct itimerspec soon = { .it_value = { 0, 1000000 } };
	if (timer_settime(tid[5], 0, &soon, NULL))
		ct_die("timer_settime 5: %s", strerror(errno));
	for (int i = 0; i < 5000; i++) {
		sigset_t pend;
		sigpending(&pend);
		if (sigismember(&pend, SIGRTMIN + 4))
			break;
		usleep(1000);
	}
	proc_timers(timers0, sizeof(timers0));
	ct_info("thread %d", (int)thread_tid);
	return ct_serve(verify);
}
