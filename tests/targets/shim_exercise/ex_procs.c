/* shim_exercise: threads, fork, exec and spawn. */
#include "ex.h"

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

void cmd_threads(int n)
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

void cmd_unthreads(void)
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

void cmd_fork(void)
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

void cmd_reap(void)
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

void cmd_exec(const char *mode)
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

void cmd_spawn(const char *mode)
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

void cmd_spawn_exit(void)
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

