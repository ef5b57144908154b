/* Room above the image's fds while they are placed (rst_int.h).
 *
 * restore_fds keeps pipe ends (and a moved description now and then) above
 * the image's highest fd until each reaches its number. A process that had
 * an fd close to its soft file limit (a server near 1,024 connections, a
 * shell's fd 255 under `ulimit -n 256`) then needs more than that limit
 * for a moment, and the stub, which inherits the restorer's limit, got
 * EMFILE half way through its files (found with ct_tree under a soft limit
 * of 256). The soft limit goes up to the hard one for the files, from
 * here (prlimit, no call in the target); rst_task_restore then sets the
 * image's own limits, or puts this one back when the image has none. */
#include "restore/rst_int.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

int rst_fd_room(rst_proc *p, int high, size_t extra, fp_error *err)
{
	struct rlimit now;
	if (prlimit(p->pid, RLIMIT_NOFILE, NULL, &now))
		return fp_fail(err, errno, "reading the file limit of %d: %s", (int)p->pid, strerror(errno));
	uint64_t need = (uint64_t)high + extra;
	if (now.rlim_cur >= need || now.rlim_cur == RLIM_INFINITY)
		return 0;
	if (now.rlim_max < need)
		rst_logf(p->log, 2,
			 "process %d: its fds go up to %d and placing them may take %zu more, above its hard file "
			 "limit %llu: if the restore fails with \"Too many open files\", raise the hard limit "
			 "(ulimit -Hn) of the shell that restores",
			 (int)p->pid, high - 1, extra, (unsigned long long)now.rlim_max);
	struct rlimit up = { now.rlim_max, now.rlim_max };
	if (prlimit(p->pid, RLIMIT_NOFILE, &up, NULL))
		return fp_fail(err, errno, "raising the soft file limit of %d to %llu for its fds: %s", (int)p->pid,
			       (unsigned long long)now.rlim_max, strerror(errno));
	if (!p->nofile_raised) {
		p->nofile_raised = true;
		p->nofile_soft = now.rlim_cur;
	}
	rst_logf(p->log, 3, "process %d: soft file limit %llu -> %llu while its fds (up to %d) are placed", (int)p->pid,
		 (unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max, high - 1);
	return 0;
}

void rst_fd_room_back(rst_proc *p)
{
	if (!p->nofile_raised)
		return;
	struct rlimit now;
	if (prlimit(p->pid, RLIMIT_NOFILE, NULL, &now) == 0) {
		now.rlim_cur = p->nofile_soft;
		if (prlimit(p->pid, RLIMIT_NOFILE, &now, NULL))
			rst_logf(p->log, 2, "process %d: its soft file limit %llu not put back: %s", (int)p->pid,
				 (unsigned long long)p->nofile_soft, strerror(errno));
	}
	p->nofile_raised = false;
}
