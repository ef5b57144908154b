/* The tree's IPC namespace.
 *
 * A tree in forkpoint's own IPC namespace (the usual case) is dumped as
 * before: nothing about the namespace goes into the image. A tree in an IPC
 * namespace of its own (unshare -i, a container) is dumped the way CRIU
 * dumps it, so that both restorers put it back into a new namespace of its
 * own: ids-<pid>.img carry ipc_ns_id 2 against the dumper's 1 in
 * inventory.img's root_ids, ipcns-var-2.img holds the namespace's sysctls,
 * and ipcns-shm-2.img its shared memory segments (dump_sysvshm.c).
 *
 * Reading a namespace's segments and sysctls needs this thread inside it
 * (the kernel answers shmctl and /proc/sys/kernel for the caller's
 * namespace), so those reads happen between dump_ipcns_enter and
 * dump_ipcns_leave; setns of an IPC namespace moves the calling thread only.
 *
 * What is refused, not left out: processes of one tree in different IPC
 * namespaces, and message queues, semaphore sets or segments that no
 * process has attached in a namespace of the tree's own; they would be
 * lost on restore. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/criu_msgs_ipc.h"

static int ns_ino(pid_t pid, uint64_t *ino, fp_error *err)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	else
		snprintf(path, sizeof(path), "/proc/thread-self/ns/ipc");
	struct stat st;
	if (stat(path, &st) < 0)
		return fp_fail(err, errno, "cannot stat %s: %s", path, strerror(errno));
	*ino = st.st_ino;
	return 0;
}

int dump_ipcns_probe(struct dump_ctx *c, fp_error *err)
{
	uint64_t ours, root;
	if (ns_ino(0, &ours, err) || ns_ino(c->procs[0].pid, &root, err))
		return -1;
	for (size_t i = 1; i < c->nprocs; i++) {
		uint64_t x;
		if (ns_ino(c->procs[i].pid, &x, err))
			return -1;
		if (x != root)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "%d and %d are in different IPC namespaces; forkpoint dumps a tree in one IPC "
					    "namespace only (dump each part on its own)",
					    c->procs[0].pid, c->procs[i].pid);
	}
	c->ipcns_ino = root;
	c->ipcns_own = root != ours;
	if (!c->ipcns_own)
		return 0;
	for (size_t i = 0; i < c->nprocs; i++) {
		c->procs[i].ids.has_ipc_ns_id = true;
		c->procs[i].ids.ipc_ns_id = DUMP_IPCNS_ID;
	}
	dlog(c, "the tree has an IPC namespace of its own (inode %" PRIu64 "): dumped as CRIU does, restored into a new one",
	     root);
	return 0;
}

int dump_ipcns_enter(struct dump_ctx *c, int *saved, fp_error *err)
{
	*saved = -1;
	if (!c->ipcns_own)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", c->procs[0].pid);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	*saved = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || *saved < 0 || setns(ns, CLONE_NEWIPC) < 0) {
		int e = errno;
		if (ns >= 0)
			close(ns);
		if (*saved >= 0)
			close(*saved);
		*saved = -1;
		return fp_fail(err, e, "cannot enter the IPC namespace of %d to read its SysV objects: %s (forkpoint needs "
				       "CAP_SYS_ADMIN there)",
			       c->procs[0].pid, strerror(e));
	}
	close(ns);
	return 0;
}

void dump_ipcns_leave(struct dump_ctx *c, int saved)
{
	if (saved < 0)
		return;
	if (setns(saved, CLONE_NEWIPC) < 0)
		dlog(c, "WARNING: cannot go back to forkpoint's IPC namespace: %s", strerror(errno));
	close(saved);
}

static int read_sysctl(const char *name, uint64_t *out, int n, fp_error *err)
{
	char path[96], buf[256];
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) { /* a sysctl this kernel lacks: 0, as CRIU writes it */
		memset(out, 0, (size_t)n * sizeof(*out));
		return 0;
	}
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r < 0)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	buf[r] = 0;
	char *p = buf;
	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		out[i] = strtoull(p, &end, 10);
		if (end == p || errno)
			return fp_fail(err, EINVAL, "%s: cannot parse '%s'", path, buf);
		p = end;
	}
	return 0;
}

/* In the namespace: every object must be one the image carries. */
static int check_objects(struct dump_ctx *c, size_t segs, fp_error *err)
{
	struct msginfo mi;
	struct seminfo si;
	struct shm_info hi;
	if (msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) < 0 || semctl(0, 0, SEM_INFO, &si) < 0 ||
	    shmctl(0, SHM_INFO, (struct shmid_ds *)&hi) < 0)
		return fp_fail(err, errno, "cannot count the SysV objects of %d's IPC namespace: %s", c->procs[0].pid,
			       strerror(errno));
	if (mi.msgpool || si.semusz)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d's IPC namespace has %d message queue(s) and %d semaphore set(s); forkpoint "
				    "dumps SysV shared memory only (use criu for these)",
				    c->procs[0].pid, mi.msgpool, si.semusz);
	if ((size_t)hi.used_ids != segs)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d's IPC namespace has %d SysV segment(s), %zu of them attached by the tree; a "
				    "segment no process has attached is not dumped (use criu for it)",
				    c->procs[0].pid, hi.used_ids, segs);
	return 0;
}

int dump_ipcns_write(struct dump_ctx *c, size_t segs, fp_error *err)
{
	if (!c->ipcns_own)
		return 0;
	int saved;
	if (dump_ipcns_enter(c, &saved, err))
		return -1;
	cr_ipc_var v = { .n_sem_ctls = 4 };
	uint64_t sem[4], x;
	int rc = check_objects(c, segs, err);
	if (!rc && !(rc = read_sysctl("kernel/sem", sem, 4, err)))
		for (int i = 0; i < 4; i++)
			v.sem_ctls[i] = (uint32_t)sem[i];
#define U32(name, field) \
	if (!rc && !(rc = read_sysctl(name, &x, 1, err))) \
		v.field = (uint32_t)x;
#define OPT32(name, field) \
	if (!rc && !(rc = read_sysctl(name, &x, 1, err))) \
		v.field = (uint32_t)x, v.has_##field = true;
	U32("kernel/msgmax", msg_ctlmax)
	U32("kernel/msgmnb", msg_ctlmnb)
	U32("kernel/msgmni", msg_ctlmni)
	U32("kernel/auto_msgmni", auto_msgmni)
	if (!rc && !(rc = read_sysctl("kernel/shmmax", &x, 1, err)))
		v.shm_ctlmax = x;
	if (!rc && !(rc = read_sysctl("kernel/shmall", &x, 1, err)))
		v.shm_ctlall = x;
	U32("kernel/shmmni", shm_ctlmni)
	U32("kernel/shm_rmid_forced", shm_rmid_forced)
	U32("fs/mqueue/queues_max", mq_queues_max)
	U32("fs/mqueue/msg_max", mq_msg_max)
	U32("fs/mqueue/msgsize_max", mq_msgsize_max)
	OPT32("fs/mqueue/msg_default", mq_msg_default)
	OPT32("fs/mqueue/msgsize_default", mq_msgsize_default)
#undef U32
#undef OPT32
	dump_ipcns_leave(c, saved);
	if (rc)
		return fp_wrap(err, "reading %d's IPC namespace", c->procs[0].pid);
	char name[64];
	snprintf(name, sizeof(name), "ipcns-var-%u.img", DUMP_IPCNS_ID);
	return cr_write_ipc_var(c->dirfd, name, &v, err);
}
