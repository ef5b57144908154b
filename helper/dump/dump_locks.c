/* File locks a dumped process holds: POSIX record locks, flock locks and
 * open-file-description (OFD) locks, into CRIU's filelocks.img.
 *
 * /proc/PID/fdinfo/FD lists ("lock:" lines) exactly the locks held through
 * that fd's open file description: POSIX locks only when PID's fd table owns
 * them, flock and OFD locks when the description does. So every lock is
 * found from the fds that can take it back, and no /proc/locks walk (which
 * would need every process's fd table to resolve) is needed. A lock seen
 * through several fds (dup'd, inherited) is one lock: it is kept once, per
 * owner for POSIX locks, per open file description otherwise. Leases and
 * delegations are refused: they cannot be taken back from an image. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump_attrs.h"
#include "dump_int.h"
#include "images/criu_io.h"

/* A lock and what makes it distinct. */
struct dump_held_lock {
	cr_file_lock e;
	uint32_t file_id; /* the open file description it was seen through */
	uint64_t ino;
};

static int same_lock(const struct dump_held_lock *a, const struct dump_held_lock *b)
{
	if (a->e.flag != b->e.flag || a->ino != b->ino || a->e.type != b->e.type ||
	    a->e.start != b->e.start || a->e.len != b->e.len)
		return 0;
	/* A POSIX lock belongs to a process, the others to a description. */
	return a->e.flag == CR_FL_POSIX ? a->e.pid == b->e.pid : a->file_id == b->file_id;
}

/* One "lock:" line: "1: POSIX  ADVISORY  WRITE 8828 fe:00:10963102 0 EOF". */
int dump_lock_parse(const char *l, pid_t pid, int fd, cr_file_lock *e, uint64_t *ino_out, fp_error *err)
{
	char kind[16], mode[16], rw[16], end[32];
	unsigned maj, min;
	long owner;
	unsigned long long ino, start;
	if (sscanf(l, "%*d: %15s %15s %15s %ld %x:%x:%llu %llu %31s", kind, mode, rw, &owner, &maj, &min,
		   &ino, &start, end) != 9)
		return fp_fail(err, EIO, "fd %d of %d: cannot parse the lock line \"%.80s\"", fd, (int)pid, l);
	memset(e, 0, sizeof(*e));
	if (!strcmp(kind, "POSIX"))
		e->flag = CR_FL_POSIX;
	else if (!strcmp(kind, "FLOCK"))
		e->flag = CR_FL_FLOCK;
	else if (!strcmp(kind, "OFDLCK"))
		e->flag = CR_FL_OFD;
	else
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d holds a %s (a lease or delegation), which cannot be taken back "
				    "after a restore; release it before the dump",
				    fd, (int)pid, kind);
	if (strcmp(mode, "ADVISORY"))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d holds a %s %s lock, which forkpoint does not restore", fd,
				    (int)pid, mode, kind);
	if (!strcmp(rw, "READ"))
		e->type = F_RDLCK;
	else if (!strcmp(rw, "WRITE"))
		e->type = F_WRLCK;
	else
		return fp_fail(err, EIO, "fd %d of %d: lock of unknown type %s", fd, (int)pid, rw);
	e->pid = pid;
	e->fd = fd;
	e->start = start;
	if (!strcmp(end, "EOF"))
		e->len = 0;
	else {
		unsigned long long last = strtoull(end, NULL, 10);
		if (last < start)
			return fp_fail(err, EIO, "fd %d of %d: lock ends (%llu) before it starts (%llu)", fd,
				       (int)pid, last, start);
		e->len = last - start + 1;
	}
	*ino_out = ino;
	return 0;
}

int dump_fd_locks(struct dump_ctx *c, pid_t pid, int fd, uint32_t file_id, const char *fdinfo,
		  fp_error *err)
{
	for (const char *l = strstr(fdinfo, "lock:"); l; l = strstr(l + 1, "\nlock:")) {
		l += l[0] == '\n';
		struct dump_held_lock h;
		if (dump_lock_parse(l + 5, pid, fd, &h.e, &h.ino, err))
			return -1;
		h.file_id = file_id;
		int seen = 0;
		for (size_t i = 0; i < c->nlocks && !seen; i++)
			seen = same_lock(&c->locks[i], &h);
		if (seen)
			continue;
		if (c->nlocks == c->caplocks) {
			size_t cap = c->caplocks ? c->caplocks * 2 : 8;
			struct dump_held_lock *n = realloc(c->locks, cap * sizeof(*n));
			if (!n)
				return fp_fail(err, ENOMEM, "out of memory");
			c->locks = n;
			c->caplocks = cap;
		}
		c->locks[c->nlocks++] = h;
		dlogv(c, "%d fd %d: %s lock (%s) on inode %" PRIu64 " from %" PRIu64 ", %" PRIu64 " bytes",
		      (int)pid, fd, h.e.flag == CR_FL_POSIX ? "POSIX" : h.e.flag == CR_FL_FLOCK ? "flock" : "OFD",
		      h.e.type == F_WRLCK ? "write" : "read", h.ino, h.e.start, h.e.len);
	}
	return 0;
}

int dump_write_locks(struct dump_ctx *c, fp_error *err)
{
	if (!c->nlocks)
		return 0;
	cr_file_lock *arr = calloc(c->nlocks, sizeof(*arr));
	if (!arr)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nlocks; i++)
		arr[i] = c->locks[i].e;
	int rc = cr_write_file_locks(c->dirfd, arr, c->nlocks, err);
	free(arr);
	return rc;
}
