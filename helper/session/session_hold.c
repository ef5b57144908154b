/* What keeps a failed session restore from costing the session.
 *
 * Design. A session restore gives the snapshot's processes their pids back
 * (clone3 set_tid), and those are mostly the live processes' own pids. Two
 * processes cannot hold one pid in one pid namespace, and the new ones
 * often need what the old ones hold (a listening port, a unix socket's
 * path), so the live tree is saved, held (ptrace-stopped by the save) and
 * killed at the swap, and the snapshot's made in its place. If that
 * restore fails, the saved state is restored instead. Both need pids that
 * the kill freed, and in the host's pid namespace any process of the
 * machine may take a freed pid before we ask for it (a busy machine, a
 * shell forking short-lived children). That can no longer cost the
 * session: a restore that cannot have its pids here, known before or
 * learned by failing, is made in a new pid namespace instead, where every
 * pid is free by construction, and the session lives there from then on
 * (session_pidns.c). A session already in a namespace of its own (moved,
 * or a branch) restores there, where no outside process allocates pids.
 *
 * What can be known in advance is checked here first, while the session
 * runs untouched:
 *   - permission to choose pids: a real clone3 with set_tid of our own pid.
 *     The kernel checks CAP_CHECKPOINT_RESTORE/CAP_SYS_ADMIN before it looks
 *     at the pid, so EPERM means no restore can work (a non-root user): it
 *     is refused and the session goes on as it was; EEXIST means it can; no
 *     process is ever created;
 *   - whether every pid and tid of the snapshot is free or belongs to the
 *     session itself (it is freed at the swap); if not, the restore goes
 *     straight to a new namespace (refused if we may not make one);
 *   - the image against its manifest, decoding, and what the engines can
 *     restore (fp_restore_check_ex, called before this).
 * Then the live state is saved while the processes are held (stopped), and
 * the saved image is itself checked (decoded, verified, restorable by an
 * engine that works here) before they are killed; if it fails they are let
 * go, untouched.
 * What is left is a failure of the kernel in the middle of both restores
 * (out of memory, say), which a namespace does not help.
 *
 * Faults for tests (FORKPOINT_FAULT, a comma-separated list, read by the
 * session helper at each restore):
 *   session-save     the save of the live state fails (the held processes
 *                    are let go, untouched);
 *   session-save-check  the saved state is found unrestorable (the same);
 *   session-restore  the snapshot's restore fails after the swap (the
 *                    saved state is restored);
 *   session-pause-before-restore  the helper waits, right before a
 *                    restore with the host's pids, for the test to take
 *                    one (fp_session_fault_pause). */
#include "session/session_hold.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "criu.h"
#include "fp_fault_pause.h"
#include "session/session_reap.h"
#include "images/criu_io.h"
#include "restore/restore.h"
#include "session/session_pidns.h"

#define HOLD_MAX_PROCS 8192

/* Calls match(token, arg) for each token of FORKPOINT_FAULT (a
 * comma-separated list) until one matches. */
static bool fault_any(bool (*match)(const char *tok, void *arg), void *arg)
{
	const char *e = getenv("FORKPOINT_FAULT");
	for (const char *p = e ? e : ""; *p;) {
		size_t len = strcspn(p, ",");
		char tok[128];
		if (len < sizeof(tok)) {
			memcpy(tok, p, len);
			tok[len] = '\0';
			if (match(tok, arg))
				return true;
		}
		p += len + (p[len] == ',');
	}
	return false;
}

static bool same(const char *tok, void *arg)
{
	return !strcmp(tok, arg);
}

int fp_session_fault(const char *point, fp_error *err)
{
	if (fault_any(same, (void *)point))
		return fp_fail(err, EIO, "failing on purpose (FORKPOINT_FAULT=%s)", getenv("FORKPOINT_FAULT"));
	return 0;
}

int fp_session_save_fault(void *arg, struct fp_pt_proc **procs, size_t n, fp_error *err)
{
	(void)arg;
	(void)procs;
	(void)n;
	return fp_session_fault("session-save", err);
}

/* clone3 with set_tid = our own pid: EPERM without the capability, EEXIST
 * with it. Should it ever create a process, the child leaves at once. */
static int probe_set_tid(fp_error *err)
{
	pid_t self = getpid();
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&self;
	ca.set_tid_size = 1;
	long r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0)
		_exit(0);
	if (r > 0)
		return fp_fail(err, EINVAL, "clone3 gave us pid %ld, our own pid %d (kernel bug?)", r, (int)self);
	if (errno == EEXIST)
		return 0;
	if (errno == EPERM)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "a session restore gives the processes their pids back, which needs "
				    "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (run the session as root)");
	if (errno == ENOSYS || errno == E2BIG || errno == EINVAL)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, errno,
				    "this kernel cannot create a process with a chosen pid (clone3 set_tid: %s)",
				    strerror(errno));
	return fp_fail(err, errno, "cannot probe clone3 set_tid: %s", strerror(errno));
}

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	pid_t tgid = -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = (pid_t)atoi(line + 5);
			break;
		}
	fclose(f);
	return tgid;
}

static bool in_list(const pid_t *l, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == p)
			return true;
	return false;
}

/* A pid of the image is fine when free or when a process of this session
 * (a descendant of the helper) has it as its pid or one of its tids. */
static int check_pid(uint32_t id, const pid_t *ours, size_t nours, fp_error *err)
{
	pid_t p = (pid_t)id;
	if (kill(p, 0) < 0 && errno == ESRCH)
		return 0;
	pid_t tgid = tgid_of(p);
	if (tgid < 0 || in_list(ours, nours, tgid))
		return 0; /* gone since, or ours */
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)tgid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = 0;
	return fp_fail(err, EEXIST,
		       "pid %d of the snapshot is used by process %d ('%s') outside the session; the snapshot's "
		       "processes need their pids back (end that process, or restore another snapshot)",
		       (int)p, (int)tgid, comm);
}

/* Every pid and tid of the snapshot free or ours: 0, else -1 with err
 * naming the first one taken and its owner. */
static int pids_free(const char *snapdir, fp_error *err)
{
	int dfd = open(snapdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return fp_fail(err, errno, "cannot open snapshot %s: %s", snapdir, strerror(errno));
	cr_pstree *ps = NULL;
	size_t nps = 0;
	int rc = cr_read_pstree(dfd, &ps, &nps, err);
	close(dfd);
	if (rc < 0)
		return fp_wrap(err, "reading the snapshot's process tree");
	pid_t *ours = malloc(HOLD_MAX_PROCS * sizeof(*ours));
	if (!ours) {
		cr_free_array(&cr_pstree_desc, ps, nps);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t nours = fp_proc_descendants(getpid(), ours, HOLD_MAX_PROCS, 0);
	for (size_t i = 0; i < nps && !rc; i++) {
		/* A zombie's thread list is not its own (see rst_image.c). */
		bool zombie_like = !ps[i].n_threads || ps[i].threads[0] != ps[i].pid;
		rc = check_pid(ps[i].pid, ours, nours, err);
		for (size_t t = 0; !zombie_like && t < ps[i].n_threads && !rc; t++)
			rc = check_pid(ps[i].threads[t], ours, nours, err);
	}
	free(ours);
	cr_free_array(&cr_pstree_desc, ps, nps);
	return rc;
}

bool fp_session_pids_free(const char *snapdir, char *why, size_t len)
{
	fp_error e;
	fp_error_clear(&e);
	if (pids_free(snapdir, &e) == 0)
		return true;
	if (why)
		snprintf(why, len, "%s", e.msg);
	return false;
}

int fp_session_restore_preflight(const char *snapdir, bool *here, char *why, size_t len, fp_error *err)
{
	if (probe_set_tid(err) < 0)
		return -1;
	*here = fp_session_pids_free(snapdir, why, len);
	if (*here || fp_session_in_own_pidns() || fp_session_pidns_allowed())
		return 0;
	return fp_fail(err, EEXIST, "%s; and this helper may not make a pid namespace where the pids are free "
		       "(CAP_SYS_ADMIN)", why);
}

void fp_session_fault_pause(const char *point, const char *dir)
{
	fp_fault_pause(point, dir);
}

int fp_session_save_check(void *arg, const char *dir, fp_error *err)
{
	(void)arg;
	char why[512];
	if (fp_session_fault("session-save-check", err) < 0 ||
	    fp_restore_check_ex(dir, false, why, sizeof(why), err) < 0)
		return fp_wrap(err, "the saved state of the session could not be proved restorable");
	if (why[0]) {
		char criu[4096];
		if (fp_criu_find(criu, sizeof(criu), err) < 0)
			return fp_fail(err, ENOTSUP,
				       "the session's current state holds what only CRIU restores (%s), and there is no "
				       "working CRIU to bring it back should the restore fail", why);
	}
	return 0;
}
