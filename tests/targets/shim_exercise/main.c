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
 *   collide N T      N calls over T threads on the same four fd numbers (dup3,
 *                    dup2, close, F_SETFD, FIOCLEX onto them; dup
 *                    and F_DUPFD from them); "ok" when all have ended
 *   churn T          T threads change fds, maps and threads without pause
 *   stop             end the churn ("ok")
 *   nested           a signal handler changes an fd held by another thread
 *                    while its own thread holds a slot ("ok": it did not wait)
 *   raw / unraw      open, close, map, change behind the shim's back with raw
 *                    system calls (the checker must see it), and undo that
 *   cleanup          close every fd above 2 the exerciser made, unmap its maps
 *   exit             exit(0)
 */

#include "ex.h"

int in_fd = 0;
char self_exe[4096];
char work_dir[4096] = ".";

void reply(const char *fmt, ...)
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

void die(const char *what)
{
	reply("err %s: %s", what, strerror(errno));
	_exit(2);
}

/* One line, byte by byte: after exec the new image reads the same fd, so
 * nothing may be buffered here. 0 on EOF. */
int read_line(int fd, char *buf, size_t len)
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

void keep_fd(int fd)
{
	if (fd < 0)
		die("keep_fd");
	pthread_mutex_lock(&keep_lock);
	if (n_kept_fds < KEEP_MAX)
		kept_fds[n_kept_fds++] = fd;
	pthread_mutex_unlock(&keep_lock);
}

void keep_map(void *p, size_t len)
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

void cmd_cleanup(void)
{
	for (int i = 0; i < n_kept_fds; i++)
		close(kept_fds[i]);
	n_kept_fds = 0;
	for (int i = 0; i < n_kept_maps; i++)
		munmap(kept_maps[i].p, kept_maps[i].len);
	n_kept_maps = 0;
	reply("ok");
}

int make_file(const char *name, size_t size)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		die(name);
	return fd;
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
		else if (sscanf(line, "collide %ld %ld", &a, &b) == 2)
			cmd_collide(a, (int)b);
		else if (sscanf(line, "maplog %ld", &a) == 1)
			cmd_maplog(a);
		else if (sscanf(line, "churn %ld", &a) == 1)
			cmd_churn((int)a);
		else if (!strcmp(line, "stop"))
			cmd_stop();
		else if (!strcmp(line, "nested"))
			cmd_nested();
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
