/* Taking back the file locks a process held (filelocks.img), once its fds
 * are in place. Every lock is taken without waiting: a conflict means that
 * another process holds the lock now (the dumped process itself, when it
 * still runs), and the restore must fail rather than hang or come back
 * without the lock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include "rst_int.h"

static const char *kind_name(uint32_t flag)
{
	return flag == CR_FL_POSIX ? "POSIX" : flag == CR_FL_FLOCK ? "flock" : "OFD";
}

int rst_locks_take(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	for (size_t i = 0; i < im->nlocks; i++) {
		const cr_file_lock *l = &im->locks[i];
		if ((uint32_t)l->pid != im->pid)
			continue;
		char what[256];
		snprintf(what, sizeof(what),
			 "taking back the %s %s lock on fd %d (from byte %" PRIu64 ", %s%" PRIu64 " bytes; "
			 "another process may hold it: the dumped process, if it still runs)",
			 kind_name(l->flag), l->type == F_WRLCK ? "write" : "read", l->fd, l->start,
			 l->len ? "" : "to the end, ", l->len);
		int rc;
		if (l->flag == CR_FL_FLOCK) {
			rc = rst_q(p, p->pid, what, RST_MUST, SYS_flock, (uint64_t)l->fd,
				   (l->type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB, 0, 0, 0, 0, NULL, err);
		} else {
			struct flock fl = { .l_type = (short)l->type, .l_whence = SEEK_SET,
					    .l_start = (off_t)l->start, .l_len = (off_t)l->len };
			int cmd = l->flag == CR_FL_POSIX ? F_SETLK : F_OFD_SETLK;
			rc = rst_q_mem(p, p->pid, what, RST_MUST, SYS_fcntl, (uint64_t)l->fd, (uint64_t)cmd, 0, 0,
				       0, 0, 2, &fl, sizeof(fl), NULL, err);
		}
		if (rc)
			return -1;
	}
	if (rst_flush(p, err))
		return -1;
	if (im->nlocks)
		rst_logf(p->log, 3, "file locks taken back");
	return 0;
}
