/* A process's fds for a rollback in place, from the shim's table instead of
 * /proc/PID/fd (issue 16: the fds created or closed since a snapshot are
 * listed for rollback in place from the table; /proc stays the check).
 *
 * SNAP's dump marked where the table stood (helper/dump/dump_fdmark.c):
 * per fd, its slot's seq. At the rollback, while the process is stopped,
 * the heads of the slots [0, fd_hwm) are read (8 bytes each, a few
 * process_vm_readv), and:
 *  - the fds open now are the slots in use (no readdir of /proc/PID/fd,
 *    no readlink of each fd);
 *  - an fd whose seq is still SNAP's is SNAP's file (no wrapper opened,
 *    closed or dup'ed over it since): only its offset and status flags are
 *    read, with its inode's identity, which must be SNAP's: from the
 *    kernel's fd iterator (rb_kfiles, one BPF read for all fds), or where
 *    that is not loaded or names another inode, through a copy of the fd
 *    (rb_fdpos_same, the proof); not even that for devices whose offset
 *    nothing moves (/dev/null...);
 *  - every other fd (changed, new, or not marked) is read from /proc as
 *    the /proc path reads it.
 * The close-on-exec flag is per fd and moves by a raw fcntl(F_SETFD)
 * unseen by the table: it is read for every fd at once from the kernel's
 * bitmap (a BPF iterator, dump_fdfiles_bpf.c); where that cannot be read,
 * a marked fd is read from its fdinfo as an unmarked one is.
 * The check that the table is complete: stat() of /proc/PID/fd gives the
 * number of open fds as st_size (Linux 6.2 on), which must be the number
 * of slots in use; a slot being written (odd seq) or an fd of the shim's
 * own open also sends the rollback to /proc. An fd made by a raw system
 * call changes the count. A raw dup2 onto an fd the table calls unchanged
 * is seen by the inode: a regular file's and one of the fixed devices' (by
 * the fd iterator, or a stat of the fd's /proc link); pipes and sockets
 * are not taken by the dump's shortcut, so they have no mark, and are
 * compared by inode (rollback_fdkind.c). */
#include "session/rollback_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/dirty_tracker.h"
#include "dump/dump_int.h"
#include "dump/dump_fdmark.h"
#include "dump/shim_reader.h"

#define WHY(...) (snprintf(why, len, __VA_ARGS__), 0)

void rb_fdtab_free(struct rb_fdtab *x)
{
	free(x->fds);
	free(x->mark_of);
	free(x->coe);
	*x = (struct rb_fdtab){ 0 };
}

int rb_fdtab_list(struct rb_ctx *c, struct rb_proc *p, struct rb_fdtab *x, char *why, size_t len)
{
	*x = (struct rb_fdtab){ 0 };
	if (getenv("FORKPOINT_ROLLBACK_FDS_PROC"))
		return WHY("FORKPOINT_ROLLBACK_FDS_PROC is set");
	const struct fp_fdmark *m = fp_fdmark_find(c->t, p->pid, c->snap_dir);
	if (!m)
		return WHY("SNAP's snapshot marked no position of the shim's table for %d", (int)p->pid);
	uint32_t hwm = 0;
	fp_error e;
	int rc = fp_shim_read_heads(p->pid, m->addr, NULL, 0, NULL, &hwm, &e);
	if (rc != 1)
		return WHY("the shim's table is not where SNAP's snapshot found it%s%s", rc < 0 ? ": " : "",
			   rc < 0 ? e.msg : "");
	if (!hwm)
		return WHY("the shim's table has no fds or overflowed");
	int *all = malloc(hwm * sizeof(*all));
	struct fp_shim_fd_head *hd = malloc(hwm * sizeof(*hd));
	x->fds = malloc(hwm * sizeof(*x->fds));
	x->mark_of = malloc(hwm * sizeof(*x->mark_of));
	for (uint32_t i = 0; all && i < hwm; i++)
		all[i] = (int)i;
	rc = all && hd && x->fds && x->mark_of ? fp_shim_read_heads(p->pid, m->addr, all, hwm, hd, NULL, &e) : -1;
	free(all);
	if (rc != 1) {
		free(hd);
		rb_fdtab_free(x);
		return WHY("the heads of the shim's fd slots could not be read");
	}
	size_t same = 0;
	for (uint32_t fd = 0; fd < hwm; fd++) {
		if (hd[fd].seq & 1) {
			free(hd);
			rb_fdtab_free(x);
			return WHY("the slot of fd %u is being written or unreadable", fd);
		}
		if (!hd[fd].used)
			continue;
		if (hd[fd].origin == FP_ORIGIN_SHIM) {
			free(hd);
			rb_fdtab_free(x);
			return WHY("the shim has an fd of its own open (%u)", fd);
		}
		const struct fp_fdmark_fd *mf = fp_fdmark_fd(m, (int)fd);
		x->mark_of[x->n] = mf && mf->seq == hd[fd].seq ? mf : NULL;
		same += x->mark_of[x->n] != NULL;
		x->fds[x->n++] = (int)fd;
	}
	free(hd);
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	if (stat(path, &st) || (size_t)st.st_size != x->n) {
		size_t n = x->n;
		rb_fdtab_free(x);
		return WHY("/proc/%d/fd has %lld fds, the shim's table %zu", (int)p->pid, (long long)st.st_size, n);
	}
	x->same = same;
	if (same && dump_cloexec_bpf(p->pid, &x->coe, &x->ncoe))
		x->coe = NULL, x->ncoe = 0;
	return 1;
}

const struct dump_kfile *rb_kfiles(struct rb_proc *p, size_t *n)
{
	if (!p->kf_read && dump_fdfiles_bpf(p->pid, &p->kf, &p->nkf))
		p->kf = NULL, p->nkf = 0;
	p->kf_read = true;
	*n = p->nkf;
	return p->kf;
}

int rb_fdtab_cloexec(const struct rb_fdtab *x, int fd)
{
	return dump_cloexec_bit(x->coe, x->ncoe, fd);
}

int rb_fdpos_same(struct rb_fdpos *x, int fd, const struct fp_fdmark_fd *mf, uint64_t *pos, uint32_t *flags)
{
	int copy = x->pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, x->pidfd, fd, 0) : -1;
	if (copy < 0)
		return -1;
	struct stat st;
	int rc = fstat(copy, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_dev == mf->dev &&
				 (uint64_t)st.st_ino == mf->ino
			 ? 1
			 : 0;
	off_t at = rc ? lseek(copy, 0, SEEK_CUR) : -1;
	int fl = rc ? fcntl(copy, F_GETFL) : -1;
	*flags = fl < 0 ? UINT32_MAX : (uint32_t)fl;
	close(copy);
	if (rc && at < 0)
		return -1;
	*pos = (uint64_t)at;
	return rc;
}
