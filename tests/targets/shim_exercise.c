/* A target for the shim tests: it reads commands, one per line, from its
 * command fd (stdin, or --in-fd N), does what they say with the calls the
 * shim wraps, answers one line on stdout, and then blocks in read() for the
 * next command, so the test can compare the shim's table with /proc while
 * nothing changes. Plain C, no forkpoint code.
 *
 *   shim_exercise [--in-fd N] [--dir D]     (chdir to D; relative paths below)
 *
 * At start it prints "ready PID preload=0|1 shimvar=0|1 session=VALUE".
 * Commands (answers start with "ok" or "err"):
 *   files | pipes | sockets | anon | maps | stdio     open/close/map things, keep some
 *   threads N        start N threads blocked in read(); join half of them
 *   unthreads        release and join the remaining threads
 *   fork             fork a child that opens/maps things; "ok PID" when it is ready
 *   reap             let the forked child exit and wait for it
 *   exec MODE        exec this program again (--loop); MODE: execv clearenv empty
 *                    envi execl execle execlp execvp execvpe fexecve execveat
 *   spawn MODE       start a copy (posix_spawn, posix_spawnp, vfork, fork) with an
 *                    empty environment reading commands from a new pipe; it prints
 *                    its own "ready" line; "ok PID" after that
 *   spawn-exit       close that pipe and wait for the copy
 *   stress N T       N calls over T threads; at half way every thread waits and
 *                    "mid" is printed; "cont" lets them go on; then "ok"
 *   churn T          T threads change fds, maps and threads without pause
 *   stop             end the churn ("ok")
 *   raw / unraw      open, close, map, change behind the shim's back with raw
 *                    system calls (the checker must see it), and undo that
 *   cleanup          close every fd above 2 the exerciser made, unmap its maps
 *   exit             exit(0)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>


extern char **environ;

static int in_fd = 0;
static char self_exe[4096];
static char work_dir[4096] = ".";

static void reply(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		off += (int)w;
	}
}

static void die(const char *what)
{
	reply("err %s: %s", what, strerror(errno));
	_exit(2);
}

/* One line, byte by byte: after exec the new image reads the same fd, so
 * nothing may be buffered here. 0 on EOF. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
	}
	buf[n] = '\0';
	return 1;
}

/* ---- things kept open/mapped between commands ---- */

#define KEEP_MAX 4096
static int kept_fds[KEEP_MAX];
static int n_kept_fds;
static struct {
	void *p;
	size_t len;
} kept_maps[KEEP_MAX];
static int n_kept_maps;
static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_fd(int fd)
{
	if (fd < 0)
		die("keep_fd");
	pthread_mutex_lock(&keep_lock);
	if (n_kept_fds < KEEP_MAX)
		kept_fds[n_kept_fds++] = fd;
	pthread_mutex_unlock(&keep_lock);
}

static void keep_map(void *p, size_t len)
{
	if (p == MAP_FAILED)
		die("keep_map");
	pthread_mutex_lock(&keep_lock);
	if (n_kept_maps < KEEP_MAX) {
		kept_maps[n_kept_maps].p = p;
		kept_maps[n_kept_maps].len = len;
		n_kept_maps++;
	}
	pthread_mutex_unlock(&keep_lock);
}

static void cmd_cleanup(void)
{
	for (int i = 0; i < n_kept_fds; i++)
		close(kept_fds[i]);
	n_kept_fds = 0;
	for (int i = 0; i < n_kept_maps; i++)
		munmap(kept_maps[i].p, kept_maps[i].len);
	n_kept_maps = 0;
	reply("ok");
}

static int make_file(const char *name, size_t size)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		die(name);
	return fd;
}

/* ---- files, pipes, sockets, anon fds ---- */

static void cmd_files(void)
{
	char abs[4200];
	int a = open("f_rel", O_RDWR | O_CREAT, 0600);
	snprintf(abs, sizeof(abs), "%s/f_abs", work_dir);
	int b = open(abs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int dfd = open(".", O_RDONLY | O_DIRECTORY);
	int c = openat(dfd, "f_at", O_RDWR | O_CREAT | O_NONBLOCK, 0600);
	int d = creat("f_creat", 0600);
	int p = open(".", O_PATH);
	if (a < 0 || b < 0 || dfd < 0 || c < 0 || d < 0 || p < 0)
		die("open");
	keep_fd(a);
	keep_fd(b);
	keep_fd(dfd);
	keep_fd(c);
	keep_fd(p);
	keep_fd(dup(a));
	int hi = dup2(b, 200);
	keep_fd(hi);
	keep_fd(dup3(c, 201, O_CLOEXEC));
	keep_fd(fcntl(a, F_DUPFD, 100));
	int e = fcntl(a, F_DUPFD_CLOEXEC, 110);
	keep_fd(e);
	if (fcntl(e, F_SETFD, 0) < 0 || fcntl(a, F_SETFD, FD_CLOEXEC) < 0)
		die("F_SETFD");
	if (fcntl(d, F_SETFL, O_APPEND | O_NONBLOCK) < 0)
		die("F_SETFL");
	keep_fd(d);
	/* dup2 over an open fd replaces it */
	int victim = open("f_victim", O_RDONLY | O_CREAT, 0600);
	if (victim < 0 || dup2(a, victim) != victim)
		die("dup2 over");
	keep_fd(victim);
	/* opened and closed again: must not stay in the table */
	int gone = open("f_gone", O_RDWR | O_CREAT, 0600);
	int gone2 = dup(gone);
	close(gone);
	close(gone2);
	char tmpl[] = "f_tmpXXXXXX";
	keep_fd(mkstemp(tmpl));
	char tmpl2[] = "f_otmpXXXXXX";
	keep_fd(mkostemp(tmpl2, O_CLOEXEC | O_APPEND));
	reply("ok");
}

static void cmd_stdio(void)
{
	FILE *r = fopen("s_r", "w+");
	FILE *a = fopen("s_a", "ae");
	FILE *x = fopen("s_x", "r+");
	if (!r || !a || x)
		die("fopen");
	fputs("hello\n", r);
	fflush(r);
	FILE *re = freopen("s_re", "w", r);
	if (!re)
		die("freopen");
	keep_fd(dup(fileno(re))); /* keep a copy; the stream stays open too */
	FILE *t = tmpfile();
	if (!t)
		die("tmpfile");
	int pfd[2];
	if (pipe(pfd) < 0)
		die("pipe");
	FILE *w = fdopen(pfd[1], "a");
	if (!w)
		die("fdopen");
	fclose(w); /* closes pfd[1] */
	keep_fd(pfd[0]);
	fclose(a);
	DIR *dir = opendir(".");
	DIR *dir2 = opendir("/");
	if (!dir || !dir2)
		die("opendir");
	closedir(dir2);
	/* leak on purpose: stays open */
	(void)dir;
	(void)t;
	reply("ok");
}

static void cmd_pipes(void)
{
	int p[2], q[2], r[2];
	if (pipe(p) < 0 || pipe2(q, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(r, 0) < 0)
		die("pipe");
	keep_fd(p[0]);
	keep_fd(p[1]);
	keep_fd(q[0]);
	close(q[1]);
	close(r[0]);
	close(r[1]);
	if (mkfifo("fifo", 0600) < 0 && errno != EEXIST)
		die("mkfifo");
	int f = open("fifo", O_RDWR);
	keep_fd(f);
	reply("ok");
}

static void cmd_sockets(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int sv[2];
	if (s < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) < 0)
		die("socket");
	keep_fd(sv[0]);
	close(sv[1]);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "sock");
	unlink("sock");
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0)
		die("bind");
	int c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c1 < 0 || c2 < 0 || connect(c1, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    connect(c2, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	int a1 = accept(s, NULL, NULL);
	int a2 = accept4(s, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (a1 < 0 || a2 < 0)
		die("accept");
	keep_fd(s);
	keep_fd(c1);
	keep_fd(a2);
	close(c2);
	/* pass an fd over the connection: SCM_RIGHTS makes a new fd */
	int tosend = open("f_sent", O_RDWR | O_CREAT, 0600);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	char one = 'x';
	struct iovec iov = {&one, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &tosend, sizeof(int));
	if (sendmsg(c1, &mh, 0) != 1)
		die("sendmsg");
	close(tosend);
	char rbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct msghdr rh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = rbuf,
			    .msg_controllen = sizeof(rbuf)};
	if (recvmsg(a1, &rh, MSG_CMSG_CLOEXEC) != 1)
		die("recvmsg");
	int got;
	memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rh)), sizeof(int));
	keep_fd(got);
	close(a1);
	reply("ok");
}

static void cmd_anon(void)
{
	keep_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	keep_fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	int sfd = signalfd(-1, &m, SFD_NONBLOCK);
	keep_fd(sfd);
	sigaddset(&m, SIGUSR2);
	if (signalfd(sfd, &m, 0) != sfd) /* changes the mask only */
		die("signalfd");
	keep_fd(epoll_create1(EPOLL_CLOEXEC));
	keep_fd(epoll_create(4));
	keep_fd(memfd_create("exercise", MFD_CLOEXEC));
	keep_fd(inotify_init1(IN_NONBLOCK));
	keep_fd(inotify_init());
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0); /* not through the wrapper */
	if (pfd >= 0)
		close(pfd);
	reply("ok");
}

/* ---- mappings ---- */

static void cmd_maps(void)
{
	const size_t pg = 4096;
	int fd = make_file("m_file", 16 * pg);
	keep_fd(fd);
	/* anonymous private, with a hole punched in the middle and a prot change */
	char *a = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		die("mmap");
	a[0] = 1;
	if (munmap(a + 4 * pg, 2 * pg) < 0 || mprotect(a + 8 * pg, 2 * pg, PROT_READ) < 0)
		die("munmap/mprotect");
	keep_map(a, 4 * pg);
	keep_map(a + 6 * pg, 10 * pg);
	/* anonymous shared */
	keep_map(mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
		 3 * pg);
	/* file, private and shared, with an offset */
	keep_map(mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE, fd, 2 * pg), 4 * pg);
	char *s = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		die("mmap shared");
	/* MAP_FIXED over part of it: an anonymous page replaces file pages */
	if (mmap(s + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		die("mmap fixed");
	keep_map(s, 8 * pg);
	/* mremap: grow in place or move, shrink, move to a fixed place */
	char *g = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g = mremap(g, 2 * pg, 6 * pg, MREMAP_MAYMOVE);
	if (g == MAP_FAILED)
		die("mremap grow");
	g = mremap(g, 6 * pg, 3 * pg, 0);
	if (g == MAP_FAILED)
		die("mremap shrink");
	char *dst = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *moved = mremap(g, 3 * pg, 3 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 4 * pg);
	if (moved == MAP_FAILED)
		die("mremap fixed");
	keep_map(dst, 8 * pg);
	/* a file mapping moved by mremap keeps its offset */
	char *fm = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE, fd, 4 * pg);
	fm = mremap(fm, 2 * pg, 4 * pg, MREMAP_MAYMOVE);
	if (fm == MAP_FAILED)
		die("mremap file");
	keep_map(fm, 4 * pg);
	/* /dev/zero, private (stays /dev/zero) and shared (becomes shmem) */
	int z = open("/dev/zero", O_RDWR);
	keep_map(mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0), 2 * pg);
	keep_map(mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0), 2 * pg);
	close(z);
	/* mapped and unmapped again */
	void *tmp = mmap(NULL, 5 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(tmp, 5 * pg);
	reply("ok");
}

/* ---- behind the shim's back: raw system calls it cannot see ---- */

static int raw_a = -1, raw_b = -1, raw_c = -1;
static void *raw_m, *raw_m2;

static void cmd_raw(void)
{
	raw_a = (int)syscall(SYS_openat, AT_FDCWD, "raw_a", O_RDWR | O_CREAT, 0600);
	raw_b = open("raw_b", O_RDWR | O_CREAT, 0600);
	raw_c = open("raw_c", O_RDWR | O_CREAT, 0600);
	if (raw_a < 0 || raw_b < 0 || raw_c < 0)
		die("raw open");
	syscall(SYS_fcntl, raw_b, F_SETFD, FD_CLOEXEC);
	syscall(SYS_close, raw_c);
	raw_m = (void *)syscall(SYS_mmap, 0, 3 * 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	raw_m2 = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (raw_m == MAP_FAILED || raw_m2 == MAP_FAILED)
		die("raw mmap");
	syscall(SYS_mprotect, raw_m2, 4096, PROT_READ);
	reply("ok");
}

static void cmd_unraw(void)
{
	syscall(SYS_close, raw_a);
	close(raw_b);
	close(raw_c); /* EBADF, but the shim forgets it */
	syscall(SYS_munmap, raw_m, 3 * 4096);
	munmap(raw_m2, 2 * 4096);
	reply("ok");
}

/* ---- threads ---- */

#define MAX_THREADS 64
static pthread_t thr[MAX_THREADS];
static int thr_pipe[MAX_THREADS][2];
static int n_thr, first_live;

static void *blocker(void *arg)
{
	int fd = (int)(long)arg;
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void *exiter(void *arg)
{
	(void)arg;
	pthread_exit(NULL);
}

static void cmd_threads(int n)
{
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	n_thr = first_live = 0;
	for (int i = 0; i < n; i++) {
		if (pipe(thr_pipe[i]) < 0 ||
		    pthread_create(&thr[i], NULL, blocker, (void *)(long)thr_pipe[i][0]) != 0)
			die("pthread_create");
		n_thr++;
	}
	/* one that ends through pthread_exit */
	pthread_t x;
	if (pthread_create(&x, NULL, exiter, NULL) != 0 || pthread_join(x, NULL) != 0)
		die("pthread_exit thread");
	for (int i = 0; i < n / 2; i++) {
		close(thr_pipe[i][1]);
		pthread_join(thr[i], NULL);
		close(thr_pipe[i][0]);
	}
	first_live = n / 2;
	reply("ok");
}

static void cmd_unthreads(void)
{
	for (int i = first_live; i < n_thr; i++) {
		close(thr_pipe[i][1]);
		pthread_join(thr[i], NULL);
		close(thr_pipe[i][0]);
	}
	n_thr = first_live = 0;
	reply("ok");
}

/* ---- fork ---- */

static pid_t child_pid;
static int child_release = -1;

static void cmd_fork(void)
{
	int rel[2], ready[2];
	if (pipe(rel) < 0 || pipe(ready) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(rel[1]);
		close(ready[0]);
		int fd = open("f_child", O_RDWR | O_CREAT, 0600);
		void *m = mmap(NULL, 4 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		(void)fd;
		(void)m;
		char c = 'r';
		if (write(ready[1], &c, 1) != 1)
			_exit(4);
		while (read(rel[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(rel[0]);
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		die("child ready");
	close(ready[0]);
	child_pid = pid;
	child_release = rel[1];
	reply("ok %d", (int)pid);
}

static void cmd_reap(void)
{
	int st;
	close(child_release);
	child_release = -1;
	if (waitpid(child_pid, &st, 0) != child_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("reap");
	reply("ok");
}

/* ---- exec and spawn ---- */

static char *loop_argv[8];

static void set_loop_argv(const char *fd_arg)
{
	int k = 0;
	loop_argv[k++] = self_exe;
	loop_argv[k++] = "--dir";
	loop_argv[k++] = work_dir;
	if (fd_arg) {
		loop_argv[k++] = "--in-fd";
		loop_argv[k++] = (char *)fd_arg;
	}
	loop_argv[k] = NULL;
}

static void cmd_exec(const char *mode)
{
	char fdbuf[16];
	char *empty[] = {NULL};
	snprintf(fdbuf, sizeof(fdbuf), "%d", in_fd);
	set_loop_argv(in_fd ? fdbuf : NULL);
	if (!strcmp(mode, "execv")) {
		execv(self_exe, loop_argv);
	} else if (!strcmp(mode, "clearenv")) {
		clearenv();
		execv(self_exe, loop_argv);
	} else if (!strcmp(mode, "empty")) {
		execve(self_exe, loop_argv, empty);
	} else if (!strcmp(mode, "envi")) {
		char *argv[] = {"env", "-i", self_exe, "--dir", work_dir, NULL};
		execvp("env", argv);
	} else if (!strcmp(mode, "execl")) {
		clearenv();
		execl(self_exe, self_exe, "--dir", work_dir, (char *)NULL);
	} else if (!strcmp(mode, "execle")) {
		execle(self_exe, self_exe, "--dir", work_dir, (char *)NULL, empty);
	} else if (!strcmp(mode, "execlp")) {
		clearenv();
		execlp(self_exe, self_exe, "--dir", work_dir, (char *)NULL);
	} else if (!strcmp(mode, "execvp")) {
		clearenv();
		execvp(self_exe, loop_argv);
	} else if (!strcmp(mode, "execvpe")) {
		execvpe(self_exe, loop_argv, empty);
	} else if (!strcmp(mode, "fexecve")) {
		int fd = open(self_exe, O_RDONLY | O_CLOEXEC);
		fexecve(fd, loop_argv, empty);
	} else if (!strcmp(mode, "execveat")) {
		execveat(AT_FDCWD, self_exe, loop_argv, empty, 0);
	} else {
		reply("err unknown exec mode %s", mode);
		return;
	}
	die("exec");
}

static pid_t spawn_pid;
static int spawn_cmd = -1;

static void cmd_spawn(const char *mode)
{
	int p[2];
	char fdbuf[16];
	char *empty[] = {NULL};
	/* the copy reads its commands from p[0], which it inherits */
	if (pipe2(p, 0) < 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) < 0)
		die("pipe");
	snprintf(fdbuf, sizeof(fdbuf), "%d", p[0]);
	set_loop_argv(fdbuf);
	pid_t pid = -1;
	int rc = 0;
	if (!strcmp(mode, "posix_spawn")) {
		rc = posix_spawn(&pid, self_exe, NULL, NULL, loop_argv, empty);
	} else if (!strcmp(mode, "posix_spawnp")) {
		rc = posix_spawnp(&pid, self_exe, NULL, NULL, loop_argv, empty);
	} else if (!strcmp(mode, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			execve(self_exe, loop_argv, empty);
			_exit(127);
		}
	} else if (!strcmp(mode, "fork")) {
		pid = fork();
		if (pid == 0) {
			execve(self_exe, loop_argv, empty);
			_exit(127);
		}
	} else {
		reply("err unknown spawn mode %s", mode);
		return;
	}
	if (rc != 0 || pid < 0) {
		errno = rc ? rc : errno;
		die("spawn");
	}
	close(p[0]);
	spawn_pid = pid;
	spawn_cmd = p[1];
	/* the copy prints its own ready line on our stdout; the test reads it */
}

static void cmd_spawn_exit(void)
{
	int st;
	if (write(spawn_cmd, "exit\n", 5) != 5)
		die("spawn-exit");
	close(spawn_cmd);
	spawn_cmd = -1;
	if (waitpid(spawn_pid, &st, 0) != spawn_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("spawn wait");
	reply("ok");
}

/* ---- stress ---- */

static pthread_barrier_t mid_barrier;
static int go_pipe[2];
static long stress_per_thread;

struct held {
	int fds[24];
	int nfds;
	struct {
		char *p;
		size_t len;
	} maps[12];
	int nmaps;
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static void *tiny(void *arg)
{
	return arg;
}

static void drop_fd(struct held *h, int i)
{
	close(h->fds[i]);
	h->fds[i] = h->fds[--h->nfds];
}

static void add_fd(struct held *h, int fd)
{
	if (fd < 0)
		return;
	if (h->nfds == 24)
		drop_fd(h, 0);
	h->fds[h->nfds++] = fd;
}

static void drop_map(struct held *h, int i)
{
	munmap(h->maps[i].p, h->maps[i].len);
	h->maps[i] = h->maps[--h->nmaps];
}

static void add_map(struct held *h, char *p, size_t len)
{
	if (p == MAP_FAILED)
		return;
	if (h->nmaps == 12)
		drop_map(h, 0);
	h->maps[h->nmaps].p = p;
	h->maps[h->nmaps].len = len;
	h->nmaps++;
}

static void stress_op(struct held *h, unsigned *seed, int file_fd, long i)
{
	const size_t pg = 4096;
	char name[64];
	int p[2];
	switch (rnd(seed) % 16) {
	case 0:
		snprintf(name, sizeof(name), "st_%ld_%u", i % 7, rnd(seed) % 5);
		add_fd(h, open(name, O_RDWR | O_CREAT | ((i & 1) ? O_CLOEXEC : 0), 0600));
		break;
	case 1:
		if (h->nfds)
			add_fd(h, dup(h->fds[rnd(seed) % h->nfds]));
		break;
	case 2:
		if (h->nfds)
			add_fd(h, fcntl(h->fds[rnd(seed) % h->nfds], F_DUPFD_CLOEXEC, 50));
		break;
	case 3:
		if (pipe2(p, (i & 1) ? O_CLOEXEC : 0) == 0) {
			add_fd(h, p[0]);
			add_fd(h, p[1]);
		}
		break;
	case 4:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0) {
			add_fd(h, p[0]);
			close(p[1]);
		}
		break;
	case 5:
		add_fd(h, eventfd(0, (i & 1) ? EFD_CLOEXEC : 0));
		break;
	case 6:
	case 7:
		if (h->nfds)
			drop_fd(h, (int)(rnd(seed) % h->nfds));
		break;
	case 8: {
		size_t len = (1 + rnd(seed) % 4) * pg;
		add_map(h, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
			len);
		break;
	}
	case 9:
		add_map(h, mmap(NULL, 4 * pg, PROT_READ, MAP_SHARED, file_fd, (rnd(seed) % 4) * pg),
			4 * pg);
		break;
	case 10:
		if (h->nmaps)
			drop_map(h, (int)(rnd(seed) % h->nmaps));
		break;
	case 11: {
		/* partial unmap: the middle page of a 3-page mapping */
		char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (m != MAP_FAILED) {
			munmap(m + pg, pg);
			add_map(h, m, pg);
			add_map(h, m + 2 * pg, pg);
		}
		break;
	}
	case 12:
		if (h->nmaps) {
			int k = (int)(rnd(seed) % h->nmaps);
			mprotect(h->maps[k].p, pg, (rnd(seed) & 1) ? PROT_READ : PROT_READ | PROT_WRITE);
		}
		break;
	case 13: {
		char *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED) {
			char *n = mremap(m, pg, 3 * pg, MREMAP_MAYMOVE);
			if (n == MAP_FAILED)
				munmap(m, pg);
			else
				add_map(h, n, 3 * pg);
		}
		break;
	}
	case 14:
		if (rnd(seed) % 8 == 0) {
			pthread_t t;
			if (pthread_create(&t, NULL, tiny, NULL) == 0)
				pthread_join(t, NULL);
		} else if (h->nfds) {
			int fd = h->fds[rnd(seed) % h->nfds];
			fcntl(fd, F_SETFD, (rnd(seed) & 1) ? FD_CLOEXEC : 0);
		}
		break;
	case 15:
		if (rnd(seed) % 64 == 0) {
			pid_t c = fork();
			if (c == 0)
				_exit(0);
			if (c > 0)
				waitpid(c, NULL, 0);
		} else if (h->nfds) {
			int fd = h->fds[rnd(seed) % h->nfds];
			add_fd(h, dup3(fd, 1000 + (int)(rnd(seed) % 1000), O_CLOEXEC));
		}
		break;
	}
}

static void *stress_worker(void *arg)
{
	unsigned seed = (unsigned)(long)arg * 7919u + 1;
	struct held *h = calloc(1, sizeof(*h));
	int file_fd = open("st_map", O_RDONLY);
	if (!h || file_fd < 0)
		die("worker");
	for (long i = 0; i < stress_per_thread; i++) {
		if (i == stress_per_thread / 2) {
			pthread_barrier_wait(&mid_barrier);
			char c;
			while (read(go_pipe[0], &c, 1) < 0 && errno == EINTR)
				;
		}
		stress_op(h, &seed, file_fd, i);
	}
	/* what is still held stays open/mapped for the final check */
	for (int i = 0; i < h->nfds; i++)
		keep_fd(h->fds[i]);
	for (int i = 0; i < h->nmaps; i++)
		keep_map(h->maps[i].p, h->maps[i].len);
	keep_fd(file_fd);
	free(h);
	return NULL;
}

static void cmd_stress(long n, int t)
{
	if (t < 1 || t > 64)
		t = 8;
	stress_per_thread = n / t;
	int f = make_file("st_map", 8 * 4096);
	close(f);
	/* dup3 targets (1000..1999) may collide between threads: then one
	 * thread's fd silently becomes another file, which the table must follow */
	if (pipe(go_pipe) < 0)
		die("pipe");
	pthread_barrier_init(&mid_barrier, NULL, (unsigned)t + 1);
	pthread_t th[64];
	for (int i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, stress_worker, (void *)(long)i) != 0)
			die("pthread_create");
	pthread_barrier_wait(&mid_barrier);
	reply("mid");
	char line[64];
	if (!read_line(in_fd, line, sizeof(line)) || strcmp(line, "cont"))
		die("expected cont");
	char go[64];
	memset(go, 'g', sizeof(go));
	if (write(go_pipe[1], go, (size_t)t) != t)
		die("go");
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&mid_barrier);
	close(go_pipe[0]);
	close(go_pipe[1]);
	reply("ok");
}

/* ---- churn (for reading while running) ---- */

static atomic_int churn_stop;
static pthread_t churn_th[16];
static int churn_n;

/* cK is opened with flags that depend on K only, mK (opened O_RDONLY |
 * O_CLOEXEC) is mapped shared with a length of K+1 pages: any fd slot or
 * mapping entry that mixes two operations is visibly torn */
static int churn_flags(int k)
{
	static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_APPEND};
	return acc[k % 4] | ((k % 2) ? O_CLOEXEC : 0);
}

static void *churner(void *arg)
{
	unsigned seed = (unsigned)(long)arg * 31u + 7;
	int fds[8], nf = 0;
	struct {
		char *p;
		size_t len;
	} mp[4];
	int nm = 0;
	while (!atomic_load(&churn_stop)) {
		int k = (int)(rnd(&seed) % 16);
		char name[16];
		snprintf(name, sizeof(name), "c%d", k);
		switch (rnd(&seed) % 6) {
		case 0:
		case 1: {
			int fd = open(name, churn_flags(k));
			if (fd >= 0 && nf < 8)
				fds[nf++] = fd;
			else if (fd >= 0)
				close(fd);
			break;
		}
		case 2:
			if (nf) {
				int i = (int)(rnd(&seed) % nf);
				close(fds[i]);
				fds[i] = fds[--nf];
			}
			break;
		case 3:
			if (nm < 4) {
				snprintf(name, sizeof(name), "m%d", k);
				int fd = open(name, O_RDONLY | O_CLOEXEC);
				if (fd >= 0) {
					size_t len = (size_t)(k + 1) * 4096;
					char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
					close(fd);
					if (p != MAP_FAILED) {
						mp[nm].p = p;
						mp[nm].len = len;
						nm++;
					}
				}
			}
			break;
		case 4:
			if (nm) {
				nm--;
				munmap(mp[nm].p, mp[nm].len);
			}
			break;
		case 5:
			if (rnd(&seed) % 16 == 0) {
				pthread_t t;
				if (pthread_create(&t, NULL, tiny, NULL) == 0)
					pthread_join(t, NULL);
			} else {
				int p[2];
				if (pipe(p) == 0) {
					close(p[0]);
					close(p[1]);
				}
			}
			break;
		}
	}
	while (nf)
		close(fds[--nf]);
	while (nm) {
		nm--;
		munmap(mp[nm].p, mp[nm].len);
	}
	return NULL;
}

static void cmd_churn(int t)
{
	if (t < 1 || t > 16)
		t = 4;
	for (int k = 0; k < 16; k++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", k);
		close(make_file(name, 4096));
		snprintf(name, sizeof(name), "m%d", k);
		close(make_file(name, (size_t)(k + 1) * 4096));
	}
	atomic_store(&churn_stop, 0);
	churn_n = 0;
	for (int i = 0; i < t; i++) {
		if (pthread_create(&churn_th[i], NULL, churner, (void *)(long)i) != 0)
			die("pthread_create");
		churn_n++;
	}
	reply("ok");
}

static void cmd_stop(void)
{
	atomic_store(&churn_stop, 1);
	for (int i = 0; i < churn_n; i++)
		pthread_join(churn_th[i], NULL);
	churn_n = 0;
	reply("ok");
}

static int has_shim_preload(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "libforkpoint-preload.so") != NULL;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--in-fd") && i + 1 < argc)
			in_fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			snprintf(work_dir, sizeof(work_dir), "%s", argv[++i]);
	}
	if (chdir(work_dir) < 0)
		die("chdir");
	if (!getcwd(work_dir, sizeof(work_dir)))
		die("getcwd");
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n < 0)
		die("readlink");
	self_exe[n] = '\0';
	/* One malloc arena: memory malloc takes for other threads would
	 * otherwise come from arenas it maps inside libc, which no wrapper sees
	 * (the checker would rightly report them between two resyncs). */
	mallopt(M_ARENA_MAX, 1);
	const char *sess = getenv("FORKPOINT_SESSION");
	reply("ready %d preload=%d shimvar=%d session=%s", (int)getpid(), has_shim_preload(),
	      getenv("FORKPOINT_SHIM") != NULL, sess ? sess : "-");
	char line[256];
	while (read_line(in_fd, line, sizeof(line))) {
		char arg[200] = "";
		long a = 0, b = 0;
		if (!strcmp(line, "files"))
			cmd_files();
		else if (!strcmp(line, "stdio"))
			cmd_stdio();
		else if (!strcmp(line, "pipes"))
			cmd_pipes();
		else if (!strcmp(line, "sockets"))
			cmd_sockets();
		else if (!strcmp(line, "anon"))
			cmd_anon();
		else if (!strcmp(line, "maps"))
			cmd_maps();
		else if (sscanf(line, "threads %ld", &a) == 1)
			cmd_threads((int)a);
		else if (!strcmp(line, "unthreads"))
			cmd_unthreads();
		else if (!strcmp(line, "fork"))
			cmd_fork();
		else if (!strcmp(line, "reap"))
			cmd_reap();
		else if (sscanf(line, "exec %199s", arg) == 1)
			cmd_exec(arg);
		else if (!strcmp(line, "spawn-exit"))
			cmd_spawn_exit();
		else if (sscanf(line, "spawn %199s", arg) == 1)
			cmd_spawn(arg);
		else if (sscanf(line, "stress %ld %ld", &a, &b) == 2)
			cmd_stress(a, (int)b);
		else if (sscanf(line, "churn %ld", &a) == 1)
			cmd_churn((int)a);
		else if (!strcmp(line, "stop"))
			cmd_stop();
		else if (!strcmp(line, "raw"))
			cmd_raw();
		else if (!strcmp(line, "unraw"))
			cmd_unraw();
		else if (!strcmp(line, "cleanup"))
			cmd_cleanup();
		else if (!strcmp(line, "exit"))
			exit(0);
		else
			reply("err unknown command \"%s\"", line);
	}
	return 0;
}
