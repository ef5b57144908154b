/* ct_sharedfiles: a child made with clone(CLONE_FILES | CLONE_FS) shares
 * main's fd table and its fs info (cwd, umask).
 *
 * Verification: kcmp says the two share one fd table and one fs struct
 * (KCMP_FILES, KCMP_FS); main opens DIR/shared.N and the child must find
 * that fd open on that file, then closes it, and main must find it closed;
 * main changes into DIR/sub and the child must be there too, then main
 * changes back (so every verification starts from the same state). The
 * child answers over a pipe pair. "verify N ok pid=PID kid=KID".
 *
 * --files-only: the child shares the fd table only (CLONE_FILES), and has
 * fs info of its own (CRIU 4.2 restores no shared fs info).
 *
 *   ct_sharedfiles STATUS --dir=DIR [--files-only] [common options]
 */
#include "ct_proto.h"

#include <sched.h>
#include <sys/wait.h>

#define REPLY_TIMEOUT_MS 20000

static int req[2], rep[2];
static pid_t kid;
static const char *dir;
static char home[PATH_MAX];
static bool files_only;

struct ask {
	char cmd; /* 'f' check fd, 'c' check cwd, 'q' exit */
	int fd;
	char path[PATH_MAX];
};

static int kid_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct ask a;
		if (read(req[0], &a, sizeof(a)) != (ssize_t)sizeof(a) || a.cmd == 'q')
			_exit(0);
		char ok = 1, got[PATH_MAX] = "", link[64];
		if (a.cmd == 'f') {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", a.fd);
			ssize_t n = readlink(link, got, sizeof(got) - 1);
			got[n > 0 ? n : 0] = 0;
			ok = n > 0 && !strcmp(got, a.path) && close(a.fd) == 0;
		} else {
			ok = getcwd(got, sizeof(got)) && !strcmp(got, a.path);
		}
		if (write(rep[1], &ok, 1) != 1)
			_exit(3);
	}
}

static bool ask_kid(struct ask *a)
{
	char ok = 0;
	struct pollfd p = { .fd = rep[0], .events = POLLIN };
	return write(req[1], a, sizeof(*a)) == (ssize_t)sizeof(*a) && poll(&p, 1, REPLY_TIMEOUT_MS) == 1 &&
	       read(rep[0], &ok, 1) == 1 && ok;
}

static void verify(void)
{
	pid_t me = getpid();
	if (syscall(SYS_kcmp, me, kid, KCMP_FILES, 0, 0) != 0)
		ct_fail("the child no longer shares main's fd table");
	if ((syscall(SYS_kcmp, me, kid, KCMP_FS, 0, 0) != 0) != files_only)
		ct_fail(files_only ? "the child shares main's fs info" : "the child no longer shares main's fs info");
	struct ask a = { .cmd = 'f' };
	snprintf(a.path, sizeof(a.path), "%s/shared.%u", dir, ct.n);
	a.fd = open(a.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (a.fd < 0)
		ct_fail("open %s: %s", a.path, strerror(errno));
	else if (!ask_kid(&a))
		ct_fail("the child does not see main's new fd %d on %s", a.fd, a.path);
	else if (fcntl(a.fd, F_GETFD) != -1)
		ct_fail("the child closed fd %d, yet main still has it", a.fd);
	unlink(a.path);
	struct ask c = { .cmd = 'c' };
	snprintf(c.path, sizeof(c.path), "%s/sub", dir);
	if (files_only)
		snprintf(c.path, sizeof(c.path), "%s", home);
	if (chdir(c.path))
		ct_fail("chdir %s: %s", c.path, strerror(errno));
	else if (!ask_kid(&c))
		ct_fail("the child is not in %s", c.path);
	if (chdir(home))
		ct_fail("chdir back to %s: %s", home, strerror(errno));
}

int main(int argc, char **argv)
{
	ct.prog = "ct_sharedfiles";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_sharedfiles STATUS --dir=DIR [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--files-only"))
			files_only = true;
		else if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir)) {
			fprintf(stderr, "ct_sharedfiles: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir)
		ct_die("--dir=DIR is needed");
	ct_setup();
	if (!getcwd(home, sizeof(home)))
		ct_die("getcwd: %s", strerror(errno));
	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	if (mkdir(sub, 0700) && errno != EEXIST)
		ct_die("mkdir %s: %s", sub, strerror(errno));
	if (pipe2(req, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
		ct_die("pipe: %s", strerror(errno));
	static char stack[256 * 1024] __attribute__((aligned(16)));
	kid = clone(kid_main, stack + sizeof(stack), CLONE_FILES | (files_only ? 0 : CLONE_FS) | SIGCHLD, NULL);
	if (kid < 0)
		ct_die("clone: %s", strerror(errno));
	ct_info("child pid %d", (int)kid);
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		verify();
		struct ask q = { .cmd = 'q' };
		int status = ct_verify_end_with_child(ev, kid, req[1], &q, sizeof(q));
		if (status >= 0)
			return status;
	}
}
