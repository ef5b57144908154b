/* SysV shared memory (shmget/shmat): "/SYSV<key> (deleted)" in maps, whose
 * inode number is the segment's id.
 *
 * CRIU dumps a segment only with the IPC namespace it lives in, and refuses
 * a tree that shares the host's. forkpoint dumps the segments the tree has
 * attached, in the tree's IPC namespace (the dumper's, or one of the tree's
 * own, read from inside: dump_ipcns.c): each segment once,
 * as CRIU lays out a namespace's segments (ipcns-shm-<ns>.img: key, owner,
 * mode, id, size; its pages in pagemap-shmem-<id>.img like any shared
 * object, read while the tree is stopped), and each attach as CRIU's
 * vma_entry (VMA_AREA_SYSVIPC, shmid = the id). Segments nothing in the
 * tree has attached are not the tree's and are left out. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "images/criu_msgs_ipc.h"

bool dump_sysvshm_is(const struct dump_vma *v)
{
	return v->perms[3] == 's' && !strncmp(v->path, "/SYSV", 5);
}

int dump_sysvshm_note(struct dump_ctx *c, const struct dump_proc *p, const struct dump_vma *v, fp_error *err)
{
	if (v->ino > INT32_MAX)
		return fp_fail(err, EINVAL, "%d: SysV segment number %" PRIu64 " is out of range", p->pid, v->ino);
	struct shmid_ds ds;
	int saved, rc = dump_ipcns_enter(c, &saved, err);
	if (rc)
		return -1;
	rc = shmctl((int)v->ino, IPC_STAT, &ds);
	int e = errno;
	dump_ipcns_leave(c, saved);
	if (rc < 0)
		return fp_fail(err, e, "%d has SysV segment %" PRIu64 " attached at 0x%" PRIx64 ", but IPC_STAT "
					   "on it fails: %s",
			       p->pid, v->ino, v->start, strerror(e));
	struct dump_shmem *s = dump_shmem_find(c, v->ino);
	if (s && !s->sysv)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d: SysV segment %" PRIu64 " has the number of another shared memory object of "
				    "the tree; the image cannot tell them apart",
				    p->pid, v->ino);
	if (!s && !(s = dump_shmem_note(c, v->ino, ds.shm_segsz, err)))
		return -1;
	if (s->sysv)
		return 0;
	s->sysv = true;
	s->pid = p->pid; /* read through this attach's map_files entry */
	s->start = v->start;
	s->end = v->end;
	s->key = (uint32_t)ds.shm_perm.__key;
	s->uid = ds.shm_perm.uid;
	s->gid = ds.shm_perm.gid;
	s->cuid = ds.shm_perm.cuid;
	s->cgid = ds.shm_perm.cgid;
	s->mode = ds.shm_perm.mode;
	dlogv(c, "SysV segment %" PRIu64 ": key %#x, %" PRIu64 " bytes, mode %#o, %lu attaches", s->shmid, s->key,
	      s->size, s->mode, (unsigned long)ds.shm_nattch);
	return 0;
}

int dump_sysvshm_vma(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, fp_error *err)
{
	const struct dump_shmem *s = dump_shmem_find(c, v->ino);
	if (!s || !s->sysv || !s->read)
		return fp_fail(err, EAGAIN, "%d attaches SysV segment %" PRIu64 " at 0x%" PRIx64 " that was not there "
					    "while the tree was stopped",
			       p->pid, v->ino, v->start);
	uint64_t room = (s->size + CR_PAGE_SIZE - 1) / CR_PAGE_SIZE * CR_PAGE_SIZE;
	/* shmat maps a whole segment; a part left by munmap has no way back */
	if (v->pgoff || v->end - v->start != room)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d has a part (0x%" PRIx64 "-0x%" PRIx64 ", offset %" PRIu64 ") of SysV segment %" PRIu64
				    " attached; only whole attaches are supported",
				    p->pid, v->start, v->end, v->pgoff * CR_PAGE_SIZE, v->ino);
	bool writable = v->vmflags[0] ? strstr(v->vmflags, "mw") != NULL : v->perms[1] == 'w';
	o->flags = MAP_SHARED | MAP_ANONYMOUS;
	o->status = CR_VMA_AREA_REGULAR | CR_VMA_ANON_SHARED | CR_VMA_AREA_SYSVIPC;
	o->shmid = v->ino;
	o->pgoff = 0;
	o->has_fdflags = true;
	o->fdflags = writable ? O_RDWR : O_RDONLY;
	return 1;
}

int dump_sysvshm_write(struct dump_ctx *c, fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nshm; i++)
		n += c->shm[i].sysv;
	if (dump_ipcns_write(c, n, err))
		return -1;
	if (!n)
		return 0;
	cr_ipc_shm *e = calloc(n, sizeof(*e));
	if (!e)
		return fp_fail(err, ENOMEM, "out of memory");
	n = 0;
	for (size_t i = 0; i < c->nshm; i++) {
		const struct dump_shmem *s = &c->shm[i];
		if (!s->sysv)
			continue;
		cr_ipc_shm *x = &e[n++];
		x->desc = (cr_ipc_desc){ .key = s->key, .uid = s->uid, .gid = s->gid, .cuid = s->cuid, .cgid = s->cgid,
					 .mode = s->mode, .id = (uint32_t)s->shmid };
		x->size = s->size;
		x->has_in_pagemaps = x->in_pagemaps = true;
	}
	char name[64];
	if (c->ipcns_own)
		snprintf(name, sizeof(name), "ipcns-shm-%u.img", DUMP_IPCNS_ID);
	else
		snprintf(name, sizeof(name), "ipcns-shm-%" PRIu64 ".img", c->ipcns_ino);
	int rc = cr_write_ipc_shm(c->dirfd, name, e, n, err);
	free(e);
	return rc;
}
