/* Spare branches: see session_branch_spare.h. */
#include "session_branch_spare.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_clock.h"
#include "restore/restore.h"
#include "session/session_branch.h"
#include "session/session_branch_int.h"
#include "session/session_hot.h"
#include "session/session_pidns.h"
#include "session/snapshots.h"

static int slot_addr(const char *dir, const char *snap, const char *slot, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/spare.%s.%s.sock", dir, snap, slot);
	return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -1;
}

/* Slot K: "K.claim" while its spare forks, "K" too once it is ready. */
static int slot_k(const char *dir, const char *snap, int k, bool ready, struct sockaddr_un *sa)
{
	char s[16];
	snprintf(s, sizeof(s), ready ? "%d" : "%d.claim", k);
	return slot_addr(dir, snap, s, sa);
}

static int dial(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ---- the spare (pid 1 of its namespace) ---- */

static struct sockaddr_un slot, ready; /* the slot this spare holds, and its name once ready */
static ino_t slot_ino;

static bool ours(const struct sockaddr_un *sa)
{
	struct stat st;
	return slot_ino && stat(sa->sun_path, &st) == 0 && st.st_ino == slot_ino;
}

static void slot_free(void)
{
	if (ours(&ready))
		unlink(ready.sun_path);
	if (ours(&slot))
		unlink(slot.sun_path);
	slot_ino = 0;
}

static __attribute__((noreturn)) void spare_end(void)
{
	slot_free();
	_exit(0); /* as pid 1: the forked process goes with it */
}

/* A listening socket under a name of its own, linked to the first free
 * slot: link() fails on a taken one, so two spares never share a slot. A
 * slot whose spare is gone (nothing listens) is taken over. */
static int claim_slot(const struct fp_session_info *from, const char *snap, int want)
{
	struct sockaddr_un tmp;
	char me[32];
	snprintf(me, sizeof(me), "new%d", (int)fp_branch_outer_self());
	if (slot_addr(from->dir, snap, me, &tmp) < 0)
		return -1;
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(tmp.sun_path);
	if (l < 0 || bind(l, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || listen(l, 8) < 0)
		return -1;
	for (int k = 1; k <= want && !slot_ino; k++) {
		if (slot_k(from->dir, snap, k, false, &slot) < 0 || slot_k(from->dir, snap, k, true, &ready) < 0)
			break;
		for (int tries = 0; tries < 2; tries++) {
			if (link(tmp.sun_path, slot.sun_path) == 0) {
				struct stat st;
				if (stat(slot.sun_path, &st) == 0)
					slot_ino = st.st_ino;
				break;
			}
			int probe = errno == EEXIST ? dial(&slot) : 0;
			if (probe >= 0 || errno != ECONNREFUSED) {
				if (probe > 0)
					close(probe); /* a live spare: it reads nothing and goes on */
				break;
			}
			unlink(slot.sun_path); /* its spare is gone */
		}
	}
	unlink(tmp.sun_path);
	if (!slot_ino) {
		close(l);
		return -1;
	}
	return l;
}

/* Waits for "take NAME T0 TIMEOUT" (anything else: a probe, ignored).
 * Returns the connection, or -1 when the spare should end. */
static int wait_taken(int l, int helper_fd, const struct fp_session_info *from, const char *snap,
		      pid_t proc, struct branch_job *j)
{
	for (;;) {
		struct pollfd pf[2] = { { .fd = l, .events = POLLIN }, { .fd = helper_fd, .events = POLLIN } };
		int r = poll(pf, helper_fd >= 0 ? 2 : 1, 1000);
		if (r < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents) /* the session's helper ended: its copies with it */
			return -1;
		if (r == 0) {
			if (!fp_hot_listed(from->dir, snap) || !ours(&slot) ||
			    waitpid(proc, NULL, WNOHANG | __WALL) == proc)
				return -1;
			continue;
		}
		if (!(pf[0].revents & POLLIN))
			continue;
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		struct pollfd cp = { .fd = c, .events = POLLIN };
		char req[256], name[FP_SESSION_NAME_MAX + 1];
		ssize_t n = poll(&cp, 1, 2000) == 1 ? recv(c, req, sizeof(req) - 1, 0) : -1;
		double t0 = 0;
		int timeout = 0;
		if (n <= 0 || (req[n] = '\0', sscanf(req, "take %64s %lf %d", name, &t0, &timeout) != 3)) {
			close(c);
			continue;
		}
		slot_free();
		close(l);
		char ack[64];
		int al = snprintf(ack, sizeof(ack), "taken %d", (int)fp_branch_outer_self());
		send(c, ack, (size_t)al, MSG_NOSIGNAL);
		j->t0 = t0;
		j->timeout_ms = timeout > 0 ? timeout : 120000;
		fp_error err;
		if (fp_session_load(name, &j->info, &err) < 0) {
			struct branch_report rep = { .rc = -1, .exit_code = err.exit_code };
			snprintf(rep.msg, sizeof(rep.msg), "%s", err.msg);
			send(c, &rep, sizeof(rep), MSG_NOSIGNAL);
			return -1;
		}
		return c;
	}
}

static __attribute__((noreturn)) void spare_main(const struct fp_session_info *from_at_start, const char *snap,
						 int want, int hfd)
{
	setsid();
	fp_branch_close_inherited(hfd);
	static struct fp_session_info from;
	from = *from_at_start;
	static struct branch_job j;
	j.from = &from;
	j.snap = snap;
	j.hot = true;
	j.timeout_ms = 120000;
	snprintf(j.snap_dir, sizeof(j.snap_dir), "%s/snapshots/%s", from.dir, snap);
	fp_error err;
	fp_error_clear(&err);
	if (fp_branch_ns_begin(&j, &err) < 0)
		_exit(1);
	int l = claim_slot(&from, snap, want);
	if (l < 0)
		_exit(0); /* enough spares already */
	char why[256] = "";
	j.hot_pid = fp_restore_adopt_check(j.snap_dir, why, sizeof(why), &err);
	if (why[0])
		spare_end(); /* branches of it restore from disk: no spare helps */
	struct fp_snap_info si;
	/* The image may name workspace files that only the branch's own
	 * workspace shows: then the root's pid from the manifest (its first),
	 * and the check again when the spare is taken. */
	if (j.hot_pid <= 0 && fp_snap_read(j.snap_dir, &si, &err) == 0)
		j.hot_pid = (pid_t)atoi(si.pids);
	if (j.hot_pid <= 0)
		spare_end();
	double fork_ms;
	if (fp_branch_hotfork(&j, &fork_ms, &j.spare_ip, &err) < 0)
		spare_end();
	j.spare_pid = j.hot_pid;
	unlink(ready.sun_path); /* left by a spare that was killed */
	if (link(slot.sun_path, ready.sun_path) < 0)
		spare_end();
	int c = wait_taken(l, hfd, &from, snap, j.spare_pid, &j);
	if (c < 0)
		spare_end();
	close(hfd);
	struct fp_session_info now;
	if (fp_session_load(from.name, &now, &err) == 0)
		from = now; /* its cwd or command may have changed meanwhile */
	fp_branch_run(&j, c);
}

/* ---- in the caller ---- */

void fp_branch_spare_spawn(const struct fp_session_info *from, const char *snap, int want)
{
	if (geteuid() != 0)
		return;
	want = want < 1 ? 1 : want > FP_SPARE_MAX ? FP_SPARE_MAX : want;
	char parent[FP_SESSION_NAME_MAX + 1], psnap[256];
	if (fp_session_branch_of(from->dir, parent, sizeof(parent), psnap, sizeof(psnap)) ||
	    !fp_session_helper_alive(from) || !fp_hot_listed(from->dir, snap))
		return;
	int have = 0;
	for (int k = 1; k <= want; k++) {
		struct sockaddr_un sa;
		struct stat st;
		if (slot_k(from->dir, snap, k, false, &sa) < 0)
			return; /* the path is too long for a socket: no spares */
		have += stat(sa.sun_path, &st) == 0;
	}
	/* Opened here: the spare's pid namespace does not see the helper. */
	int hfd = (int)syscall(SYS_pidfd_open, from->helper_pid, 0);
	if (hfd < 0)
		return;
	if (fp_proc_starttime(from->helper_pid) == from->helper_start) {
		fflush(NULL);
		for (int i = have; i < want; i++)
			if (fp_fork_new_pidns() == 0)
				spare_main(from, snap, want, hfd);
	}
	close(hfd);
}

int fp_branch_spare_take(const struct fp_session_info *from, const char *snap, const char *name, double t0,
			 int timeout_ms, unsigned *used, int *fd, pid_t *pid)
{
	for (int k = 1; k <= FP_SPARE_MAX; k++) {
		struct sockaddr_un sa;
		if ((*used & (1u << k)) || slot_k(from->dir, snap, k, true, &sa) < 0)
			continue;
		int s = dial(&sa);
		if (s < 0)
			continue;
		char req[256], ack[64];
		int rl = snprintf(req, sizeof(req), "take %s %.6f %d", name, t0, timeout_ms);
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n = -1;
		/* The ack comes at once from a ready spare, or once its fork is
		 * made; no ack (another caller took it): the next. */
		if (send(s, req, (size_t)rl, MSG_NOSIGNAL) == rl && poll(&p, 1, timeout_ms) == 1)
			n = recv(s, ack, sizeof(ack) - 1, 0);
		if (n > 6 && !strncmp(ack, "taken ", 6)) {
			ack[n] = '\0';
			*used |= 1u << k;
			*fd = s;
			*pid = (pid_t)atoi(ack + 6);
			return 1;
		}
		close(s);
	}
	return 0;
}
