#include "session_shell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* +o history: the helper's typed lines stay out of `history` and out of
 * ~/.bash_history. */
char *const fp_shell_argv[] = { "bash", "--norc", "--noprofile", "--noediting", "+o", "history", "-i", NULL };

int fp_shell_pty_open(struct fp_shell *sh, fp_error *err)
{
	memset(sh, 0, sizeof(*sh));
	sh->master = sh->slave = -1;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return fp_fail(err, errno, "cannot make a pseudo-terminal for the shell: posix_openpt: %s "
			       "(is /dev/pts mounted?)", strerror(errno));
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, sh->slave_path, sizeof(sh->slave_path))) {
		int e = errno;
		close(m);
		return fp_fail(err, e, "cannot set up the shell's pseudo-terminal: %s", strerror(e));
	}
	int s = open(sh->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		close(m);
		return fp_fail(err, e, "cannot open %s: %s", sh->slave_path, strerror(e));
	}
	/* No echo: nobody reads the typed lines back. NOFLSH: a ^C must not
	 * drop the status line typed after the command (session_exec.c). */
	struct termios t;
	if (tcgetattr(s, &t) == 0) {
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL);
		t.c_lflag |= NOFLSH;
		tcsetattr(s, TCSANOW, &t);
	}
	struct winsize ws = { .ws_row = 50, .ws_col = 200 };
	ioctl(s, TIOCSWINSZ, &ws);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	sh->master = m;
	sh->slave = s;
	return 0;
}

void fp_shell_close(struct fp_shell *sh)
{
	if (sh->master >= 0)
		close(sh->master);
	if (sh->slave >= 0)
		close(sh->slave);
	sh->master = sh->slave = -1;
}

int fp_shell_child_attach(const struct fp_shell *sh)
{
	if (setsid() < 0)
		return -1;
	int s = open(sh->slave_path, O_RDWR);
	if (s < 0)
		return -1;
	if (ioctl(s, TIOCSCTTY, 0) < 0)
		return -1;
	for (int fd = 0; fd < 3; fd++)
		if (dup2(s, fd) < 0)
			return -1;
	if (s > 2)
		close(s);
	return 0;
}

void fp_shell_flush_input(struct fp_shell *sh)
{
	if (sh->slave >= 0)
		tcflush(sh->slave, TCIFLUSH);
}

int fp_shell_type(struct fp_shell *sh, const char *line, fp_error *err)
{
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t n = write(sh->master, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fp_fail(err, errno, "cannot type on the shell's terminal %s: %s%s",
				       sh->slave_path, strerror(errno),
				       errno == EAGAIN ? " (its input queue is full: the shell reads nothing)" : "");
		off += (size_t)n;
	}
	return 0;
}

void fp_shell_drain(struct fp_shell *sh)
{
	char buf[4096];
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(sh->master, buf, sizeof(buf));
		if (n <= 0)
			break;
	}
}

pid_t fp_shell_foreground(const struct fp_shell *sh)
{
	return sh->master >= 0 ? tcgetpgrp(sh->master) : -1;
}

int fp_shell_waits_for_input(const struct fp_shell *sh, pid_t shell, unsigned long long *rchar)
{
	int queued = 0;
	if (fp_shell_foreground(sh) != shell || ioctl(sh->slave, FIONREAD, &queued) < 0 || queued)
		return 0;
	/* "0 0x0 ...": blocked in read(0, ...), its terminal. */
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)shell);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 6 || strncmp(buf, "0 0x0 ", 6))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/io", (int)shell);
	FILE *f = fopen(path, "re");
	int ok = f && fscanf(f, "rchar: %llu", rchar) == 1;
	if (f)
		fclose(f);
	return ok;
}
