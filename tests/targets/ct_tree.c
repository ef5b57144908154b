/* ct_tree: a process tree for dump and restore tests. The main process has
 * two children, A (in its process group) and B (in a group of its own), and
 * B has a child C. Every process holds patterned memory of its own; all
 * share the tree's pipes and one open file description of a data file
 * (opened before the forks, so one offset for all). At a verification the
 * main process checks itself, appends 8 bytes through the shared file, and
 * asks A, B and C in turn, over their request pipes, to check themselves:
 * memory, pid and parent pid (with --same-pid), process group and session,
 * and the offset of the shared file, which must be main's. Each answers over
 * its reply pipe. SIGTERM: a last verification, then each child is told to
 * exit and is reaped.
 *
 *   ct_tree STATUS --dir=DIR [common options]
 */
#include "ct_proto.h"

#include <poll.h>
#include <sys/wait.h>

#define NKIDS 3
#define KID_MEM (1u << 20)
#define REPLY_TIMEOUT_MS 20000

struct request {
	char cmd; /* 'v' verify, 'q' exit */
	int64_t offset;
};
struct reply {
	char ok;
	char why[240];
};

static const char *const kid_names[NKIDS] = { "A", "B", "C" };
static int req[NKIDS][2], rep[NKIDS][2];
static pid_t kid_pid[NKIDS];
static int shared_fd = -1;
static unsigned char *mem;
static uint64_t seed = 7;

static void kid_check(int k, const struct request *rq, struct reply *out, pid_t pid0, pid_t ppid0, pid_t pgid0,
		      pid_t sid0)
{
	size_t len = 0;
	out->ok = 1;
	out->why[0] = 0;
#define KFAIL(...)                                                                                                   \
	do {                                                                                                         \
		out->ok = 0;                                                                                         \
		if (len < sizeof(out->why))                                                                          \
			len += (size_t)snprintf(out->why + len, sizeof(out->why) - len, __VA_ARGS__);                \
	} while (0)
	long off = ct_check_fill(mem, KID_MEM, seed ^ (uint64_t)(k + 1));
	if (off >= 0)
		KFAIL("memory differs at %ld; ", off);
	if (ct.opt_same_pid && getpid() != pid0)
		KFAIL("pid %d, was %d; ", (int)getpid(), (int)pid0);
	if (ct.opt_same_pid && getppid() != ppid0)
		KFAIL("parent %d, was %d; ", (int)getppid(), (int)ppid0);
	if (getpgid(0) != (ct.opt_same_pid ? pgid0 : getpgid(0)) || (getpgid(0) == getpid()) != (pgid0 == pid0))
		KFAIL("process group %d, was %d; ", (int)getpgid(0), (int)pgid0);
	if (ct.opt_same_pid && getsid(0) != sid0)
		KFAIL("session %d, was %d; ", (int)getsid(0), (int)sid0);
	int64_t here = lseek(shared_fd, 0, SEEK_CUR);
	if (here != rq->offset)
		KFAIL("shared file offset %lld, main's is %lld (not one open file any more?); ", (long long)here,
		      (long long)rq->offset);
#undef KFAIL
}

static __attribute__((noreturn)) void kid_main(int k)
{
	signal(SIGUSR2, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	if (k == 1 && setpgid(0, 0) < 0)
		_exit(3);
	if (k == 1) { /* B forks C */
		pid_t c = fork();
		if (c < 0)
			_exit(3);
		if (c == 0)
			kid_main(2);
		kid_pid[2] = c;
	}
	mem = malloc(KID_MEM);
	if (!mem)
		_exit(3);
	ct_fill(mem, KID_MEM, seed ^ (uint64_t)(k + 1));
	pid_t pid0 = getpid(), ppid0 = getppid(), pgid0 = getpgid(0), sid0 = getsid(0);
	struct reply hello = { .ok = 2 };
	snprintf(hello.why, sizeof(hello.why), "%d", (int)pid0);
	if (write(rep[k][1], &hello, sizeof(hello)) != sizeof(hello))
		_exit(3);
	for (;;) {
		struct request rq;
		ssize_t n = read(req[k][0], &rq, sizeof(rq));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(rq) || rq.cmd == 'q') {
			if (k == 1) { /* take C along */
				struct request q = { .cmd = 'q' };
				if (write(req[2][1], &q, sizeof(q)) != sizeof(q))
					kill(kid_pid[2], SIGKILL);
				waitpid(kid_pid[2], NULL, 0);
			}
			_exit(n == sizeof(rq) ? 0 : 4);
		}
		struct reply out;
		kid_check(k, &rq, &out, pid0, ppid0, pgid0, sid0);
		if (write(rep[k][1], &out, sizeof(out)) != sizeof(out))
			_exit(3);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_tree STATUS --dir=DIR [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_tree";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	const char *dir = NULL;
	for (int i = 2; i < argc; i++)
		if (!ct_str_arg(argv[i], "--dir", &dir) && !ct_common_arg(argv[i]))
			usage();
	if (!dir)
		usage();
	ct_setup();
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ct_tree.data", dir);
	shared_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (shared_fd < 0)
		ct_die("cannot create %s: %s", path, strerror(errno));
	for (int k = 0; k < NKIDS; k++)
		if (pipe(req[k]) < 0 || pipe(rep[k]) < 0)
			ct_die("pipe: %s", strerror(errno));
	mem = malloc(KID_MEM);
	if (!mem)
		ct_die("out of memory");
	ct_fill(mem, KID_MEM, seed);
	for (int k = 0; k < 2; k++) {
		pid_t c = fork();
		if (c < 0)
			ct_die("fork: %s", strerror(errno));
		if (c == 0)
			kid_main(k);
		kid_pid[k] = c;
	}
	for (int k = 0; k < NKIDS; k++) {
		struct reply hello;
		if (!ct_read_answer(rep[k][0], &hello, sizeof(hello), REPLY_TIMEOUT_MS) || hello.ok != 2)
			ct_die("child %s did not start", kid_names[k]);
		kid_pid[k] = atoi(hello.why);
		ct_info("child %s pid %d", kid_names[k], (int)kid_pid[k]);
	}
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		long off = ct_check_fill(mem, KID_MEM, seed);
		if (off >= 0)
			ct_fail("main's memory differs at %ld", off);
		uint64_t tag = ct_mix(ct.n);
		if (write(shared_fd, &tag, sizeof(tag)) != sizeof(tag))
			ct_fail("cannot append to the shared file: %s", strerror(errno));
		struct request rq = { .cmd = 'v', .offset = lseek(shared_fd, 0, SEEK_CUR) };
		for (int k = 0; k < NKIDS; k++) {
			struct reply r;
			if (write(req[k][1], &rq, sizeof(rq)) != sizeof(rq) || !ct_read_answer(rep[k][0], &r, sizeof(r), REPLY_TIMEOUT_MS))
				ct_fail("child %s (%d) does not answer", kid_names[k], (int)kid_pid[k]);
			else if (!r.ok)
				ct_fail("child %s: %s", kid_names[k], r.why);
		}
		char extra[96];
		snprintf(extra, sizeof(extra), "kids=%d,%d,%d", (int)kid_pid[0], (int)kid_pid[1], (int)kid_pid[2]);
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM) {
			struct request q = { .cmd = 'q' };
			for (int k = 0; k < 2; k++) {
				if (write(req[k][1], &q, sizeof(q)) != sizeof(q))
					kill(kid_pid[k], SIGKILL);
				waitpid(kid_pid[k], NULL, 0);
			}
			return ok ? 0 : 1;
		}
	}
}
