/* SysV shared memory in a native restore: the segments of ipcns-shm-*.img
 * (dump/dump_sysvshm.c) and the attaches (vma_entry VMA_AREA_SYSVIPC,
 * shmid = the segment's id).
 *
 * A program finds its segments by id (kept in its memory) and by key, so
 * each comes back with both, with its owner, mode and pages, before any
 * process exists. A segment still there with that id and key and nothing
 * attached (the dumped tree was killed, the segment outlived it) is
 * reused; an id or a key that is free is made again (shm_next_id gives the
 * id). When one is taken by a segment in use (the dumped tree still runs)
 * or by another key, the restore moves into a new IPC namespace, where
 * every id is free, as CRIU restores IPC objects only into a namespace of
 * their own. Each process then attaches its segments with shmat at their
 * addresses (injected), so the attach counts are the dumped ones. A segment
 * that had been removed while attached (IPC_RMID) is removed again once
 * every process has attached it.
 *
 * An attach without a segment in the image (a CRIU image of a tree in its
 * own IPC namespace, whose segments are restored by other means) attaches
 * the id as it is found. */
#include "restore/rst_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "images/criu_msgs_ipc.h"

struct rst_sysv {
	cr_ipc_shm *e;
	size_t n;
	bool *made; /* made here (removed again if the restore fails) */
	bool done;
};

static bool removed(const cr_ipc_shm *e)
{
	return e->desc.mode & SHM_DEST;
}

static int load(struct rst_sysv *v, const rst_image *im, fp_error *err)
{
	int fd = dup(im->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return fp_fail(err, errno, "cannot list %s: %s", im->dir, strerror(errno));
	}
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		if (strncmp(de->d_name, "ipcns-shm-", 10))
			continue;
		cr_ipc_shm *e = NULL;
		size_t n = 0;
		if (cr_read_ipc_shm(im->dirfd, de->d_name, &e, &n, err)) {
			rc = -1;
			break;
		}
		cr_ipc_shm *all = realloc(v->e, (v->n + n) * sizeof(*all));
		if (!all) {
			cr_free_array(&cr_ipc_shm_desc, e, n);
			rc = fp_fail(err, ENOMEM, "out of memory");
			break;
		}
		memcpy(all + v->n, e, n * sizeof(*e));
		free(e);
		v->e = all;
		v->n += n;
	}
	closedir(d);
	for (size_t i = 0; !rc && i < v->n; i++)
		if (v->e[i].desc.id > INT32_MAX || !v->e[i].size || v->e[i].size > (1ull << 40))
			rc = fp_fail(err, EINVAL, "ipcns-shm: segment %u of %" PRIu64 " bytes; the image is corrupt",
				     v->e[i].desc.id, v->e[i].size);
	return rc;
}

/* 1: the segment there under e's id can be this one (same key and size,
 * nothing attached); 0: the id is free and so is the key; -1: taken. */
static int state(const cr_ipc_shm *e)
{
	struct shmid_ds ds;
	key_t key = removed(e) ? IPC_PRIVATE : (key_t)e->desc.key;
	if (shmctl((int)e->desc.id, IPC_STAT, &ds) == 0) {
		bool same = ds.shm_perm.__key == key && ds.shm_segsz == e->size && !(ds.shm_perm.mode & SHM_DEST);
		return same && ds.shm_nattch == 0 ? 1 : -1;
	}
	if (key != IPC_PRIVATE && shmget(key, 0, 0) >= 0)
		return -1;
	return 0;
}

static int make(const cr_ipc_shm *e, fp_error *err)
{
	int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC);
	char num[16];
	int len = snprintf(num, sizeof(num), "%u", e->desc.id);
	if (fd < 0 || write(fd, num, (size_t)len) != len) {
		int e2 = errno;
		if (fd >= 0)
			close(fd);
		return fp_fail(err, e2, "cannot choose the id of SysV segment %u (/proc/sys/kernel/shm_next_id): %s",
			       e->desc.id, strerror(e2));
	}
	close(fd);
	key_t key = removed(e) ? IPC_PRIVATE : (key_t)e->desc.key;
	int id = shmget(key, e->size, IPC_CREAT | IPC_EXCL | (int)(e->desc.mode & 0777));
	if (id < 0)
		return fp_fail(err, errno, "cannot make SysV segment %u (key %#x, %" PRIu64 " bytes): %s", e->desc.id,
			       e->desc.key, e->size, strerror(errno));
	if (id != (int)e->desc.id) {
		shmctl(id, IPC_RMID, NULL);
		return fp_fail(err, EBUSY, "SysV segment %u came back as %d (another process made a segment at the same "
					   "time?); try again",
			       e->desc.id, id);
	}
	return 0;
}

/* Owner and mode, then the image's pages over zeros. */
static int fill(const rst_image *im, const cr_ipc_shm *e, bool reused, fp_error *err)
{
	int id = (int)e->desc.id;
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return fp_fail(err, errno, "IPC_STAT on SysV segment %d: %s", id, strerror(errno));
	ds.shm_perm.uid = e->desc.uid;
	ds.shm_perm.gid = e->desc.gid;
	ds.shm_perm.mode = e->desc.mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0)
		return fp_fail(err, errno, "cannot give SysV segment %d its owner %u:%u and mode %#o: %s", id, e->desc.uid,
			       e->desc.gid, e->desc.mode & 0777, strerror(errno));
	uint8_t *m = shmat(id, NULL, 0);
	if (m == (void *)-1)
		return fp_fail(err, errno, "cannot attach SysV segment %d to fill it: %s", id, strerror(errno));
	if (reused)
		memset(m, 0, e->size);
	int rc = rst_shm_fill(im, e->desc.id, -1, m, e->size, err);
	shmdt(m);
	return rc ? fp_wrap(err, "SysV segment %d", id) : 0;
}

/* The tree had an IPC namespace of its own (its ids differ from the
 * dumper's root_ids, as dump/dump_ipcns.c and CRIU write them): it gets a new
 * one again, before any segment is made. */
static bool own_namespace(const rst_image *im)
{
	return im->ids.has_ipc_ns_id && im->inv.has_root_ids && im->inv.root_ids.has_ipc_ns_id &&
	       im->ids.ipc_ns_id != im->inv.root_ids.ipc_ns_id;
}

static int write_sysctl(const char *name, const char *val, rst_log *log, fp_error *err)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		rst_logf(log, 2, "%s: not on this kernel; left out", path);
		return 0;
	}
	size_t n = strlen(val);
	if (fd < 0 || write(fd, val, n) != (ssize_t)n) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return fp_fail(err, e, "cannot set %s to %s in the new IPC namespace: %s", path, val, strerror(e));
	}
	close(fd);
	return 0;
}

/* ipcns-var-<id>.img's sysctls, into the new namespace; an image without it
 * (a CRIU image that carries none) keeps the kernel's defaults. */
static int set_sysctls(const rst_image *im, rst_log *log, fp_error *err)
{
	char name[64], val[80];
	snprintf(name, sizeof(name), "ipcns-var-%u.img", im->ids.ipc_ns_id);
	if (faccessat(im->dirfd, name, F_OK, 0) < 0)
		return 0;
	cr_ipc_var x = { 0 };
	if (cr_read_ipc_var(im->dirfd, name, &x, err))
		return -1;
	int rc = 0;
	if (x.n_sem_ctls == 4) {
		snprintf(val, sizeof(val), "%u %u %u %u", x.sem_ctls[0], x.sem_ctls[1], x.sem_ctls[2], x.sem_ctls[3]);
		rc = write_sysctl("kernel/sem", val, log, err);
	}
#define SET(path, fmt, v) \
	if (!rc) { \
		snprintf(val, sizeof(val), fmt, v); \
		rc = write_sysctl(path, val, log, err); \
	}
	SET("kernel/msgmax", "%u", x.msg_ctlmax)
	SET("kernel/msgmnb", "%u", x.msg_ctlmnb)
	SET("kernel/msgmni", "%u", x.msg_ctlmni)
	SET("kernel/shmmax", "%" PRIu64, x.shm_ctlmax)
	SET("kernel/shmall", "%" PRIu64, x.shm_ctlall)
	SET("kernel/shmmni", "%u", x.shm_ctlmni)
	SET("kernel/shm_rmid_forced", "%u", x.shm_rmid_forced)
	SET("fs/mqueue/queues_max", "%u", x.mq_queues_max)
	SET("fs/mqueue/msg_max", "%u", x.mq_msg_max)
	SET("fs/mqueue/msgsize_max", "%u", x.mq_msgsize_max)
	if (x.has_mq_msg_default)
		SET("fs/mqueue/msg_default", "%u", x.mq_msg_default)
	if (x.has_mq_msgsize_default)
		SET("fs/mqueue/msgsize_default", "%u", x.mq_msgsize_default)
#undef SET
	return rc ? fp_wrap(err, "%s", name) : 0;
}

static int enter_new_namespace(const rst_image *im, rst_log *log, fp_error *err)
{
	if (unshare(CLONE_NEWIPC) < 0)
		return fp_fail(err, errno, "the tree had an IPC namespace of its own, and a new one cannot be made: %s "
					   "(restore as root)",
			       strerror(errno));
	rst_logf(log, 2, "the tree had an IPC namespace of its own (id %u): restoring into a new IPC namespace",
		 im->ids.ipc_ns_id);
	return set_sysctls(im, log, err);
}

int rst_sysv_prepare(rst_shm *s, const rst_image *im, rst_log *log, fp_error *err)
{
	struct rst_sysv *v = calloc(1, sizeof(*v));
	if (!v)
		return fp_fail(err, ENOMEM, "out of memory");
	s->sysv = v;
	if (load(v, im, err))
		return -1;
	bool own_ns = own_namespace(im);
	if (own_ns && enter_new_namespace(im, log, err))
		return -1;
	if (!v->n)
		return 0;
	v->made = calloc(v->n, sizeof(*v->made));
	int *st = calloc(v->n, sizeof(*st));
	if (!v->made || !st) {
		free(st);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t taken = v->n;
	for (size_t i = 0; i < v->n; i++)
		if ((st[i] = state(&v->e[i])) < 0 && taken == v->n)
			taken = i;
	if (taken < v->n && !own_ns) {
		if (unshare(CLONE_NEWIPC) < 0) {
			int e2 = errno;
			free(st);
			return fp_fail(err, e2, "SysV segment %u (key %#x) is in use here, and a new IPC namespace cannot be "
						"made: %s",
				       v->e[taken].desc.id, v->e[taken].desc.key, strerror(e2));
		}
		rst_logf(log, 2, "SysV segment %u (key %#x) is in use here (by the dumped tree?): restoring into a new IPC "
				 "namespace",
			 v->e[taken].desc.id, v->e[taken].desc.key);
		memset(st, 0, v->n * sizeof(*st));
	}
	int rc = 0;
	for (size_t i = 0; i < v->n && !rc; i++) {
		if (!st[i]) {
			rc = make(&v->e[i], err);
			v->made[i] = !rc;
		}
		if (!rc)
			rc = fill(im, &v->e[i], st[i] == 1, err);
		if (!rc)
			rst_logf(log, 3, "SysV segment %u (key %#x, %" PRIu64 " bytes) %s", v->e[i].desc.id, v->e[i].desc.key,
				 v->e[i].size, st[i] == 1 ? "reused and refilled" : "made");
	}
	free(st);
	return rc;
}

int rst_sysv_attach(rst_proc *p, const cr_vma *v, int64_t *got, fp_error *err)
{
	bool rdonly = v->has_fdflags ? (v->fdflags & O_ACCMODE) == O_RDONLY : !(v->prot & PROT_WRITE);
	uint64_t fl = SHM_REMAP | (rdonly ? SHM_RDONLY : 0) | (v->prot & PROT_EXEC ? SHM_EXEC : 0);
	char what[160];
	snprintf(what, sizeof(what), "attaching SysV segment %llu at 0x%llx", (unsigned long long)v->shmid,
		 (unsigned long long)v->start);
	if (rst_q(p, p->pid, what, RST_MUST, SYS_shmat, v->shmid, v->start, fl, 0, 0, 0, got, err))
		return -1;
	uint32_t given = PROT_READ | (rdonly ? 0 : PROT_WRITE) | (v->prot & PROT_EXEC);
	if (v->prot != given &&
	    rst_q(p, p->pid, "mprotect of a SysV attach", RST_MUST, SYS_mprotect, v->start, v->end - v->start, v->prot, 0, 0,
		  0, NULL, err))
		return -1;
	return 0;
}

int rst_sysv_finish(rst_shm *s, fp_error *err)
{
	struct rst_sysv *v = s->sysv;
	for (size_t i = 0; v && i < v->n; i++)
		if (removed(&v->e[i]) && shmctl((int)v->e[i].desc.id, IPC_RMID, NULL) < 0)
			return fp_fail(err, errno, "cannot remove SysV segment %u again: %s", v->e[i].desc.id, strerror(errno));
	if (v)
		v->done = true;
	return 0;
}

void rst_sysv_free(rst_shm *s)
{
	struct rst_sysv *v = s->sysv;
	if (!v)
		return;
	for (size_t i = 0; !v->done && v->made && i < v->n; i++)
		if (v->made[i])
			shmctl((int)v->e[i].desc.id, IPC_RMID, NULL);
	cr_free_array(&cr_ipc_shm_desc, v->e, v->n);
	free(v->made);
	free(v);
	s->sysv = NULL;
}
