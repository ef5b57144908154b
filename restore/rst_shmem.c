/* Shared memory objects in a native restore: shared anonymous memory
 * (vma_entry VMA_ANON_SHARED, shmid = the object's inode number) and memfds
 * (memfd.img, FileEntry MEMFD, vma_entry VMA_AREA_MEMFD whose shmid is the
 * FileEntry id), with their pages from pagemap-shmem-<shmid>.img.
 *
 * Each object is made once, here in the restorer, and filled; every process
 * that mapped it (or held an fd on it) takes the same object with
 * pidfd_getfd on us, so that after the restore a write by one process is
 * seen by the others, as before the dump. Shared anonymous memory is made
 * as such (mmap MAP_SHARED|MAP_ANONYMOUS, then its /proc/self/map_files
 * entry gives its file), so it still reads "/dev/zero (deleted)" in maps.
 * Seals go on last, once every mapping is made: a write seal forbids
 * shared writable mappings. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK_PAGES 256

typedef struct rst_shm_obj {
	uint64_t shmid;
	bool memfd;
	int fd;        /* ours */
	uint64_t size;
	uint32_t seals; /* to add at the end */
} rst_shm_obj;

static const cr_memfd_inode *memfd_inode(rst_shm *s, const rst_image *im, uint32_t inode_id, fp_error *err)
{
	if (!s->mi_loaded) {
		if (cr_read_memfd_inodes(im->dirfd, &s->mi, &s->nmi, err))
			return NULL;
		s->mi_loaded = true;
	}
	for (size_t i = 0; i < s->nmi; i++)
		if (s->mi[i].inode_id == inode_id)
			return &s->mi[i];
	fp_fail(err, EINVAL, "memfd inode %u is not in memfd.img; the image is corrupt", inode_id);
	return NULL;
}

/* Copies the object's pages from the image into it: through the mapping
 * at `map` when there is one, else with pwrite. */
int rst_shm_fill(const rst_image *im, uint64_t shmid, int fd, uint8_t *map, uint64_t size, fp_error *err)
{
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t n = 0;
	if (cr_read_pagemap_shmem(im->dirfd, shmid, &h, &pe, &n, err))
		return fp_wrap(err, "the pages of shared memory %" PRIu64, shmid);
	uint64_t pages = 0;
	if (cr_pagemap_present_pages(pe, n, &pages, err)) {
		free(pe);
		return -1;
	}
	if (!pages) {
		free(pe);
		return 0;
	}
	pgs_reader *r = pgs_open(im->dirfd, h.pages_id, err);
	uint8_t *buf = r && !map ? malloc(CHUNK_PAGES * CR_PAGE_SIZE) : NULL;
	int rc = !r || (!map && !buf) ? -1 : 0;
	if (r && !map && !buf)
		fp_fail(err, ENOMEM, "out of memory");
	uint64_t idx = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!(cr_pagemap_flags(&pe[i]) & CR_PE_PRESENT))
			continue;
		uint64_t room = (size + CR_PAGE_SIZE - 1) / CR_PAGE_SIZE * CR_PAGE_SIZE;
		if (pe[i].vaddr + pe[i].nr_pages * CR_PAGE_SIZE > room) {
			rc = fp_fail(err, EINVAL, "pagemap-shmem-%" PRIu64 ".img: pages past the object's %" PRIu64 " bytes",
				     shmid, size);
			break;
		}
		for (uint64_t k = 0; k < pe[i].nr_pages && !rc;) {
			uint64_t m = pe[i].nr_pages - k > CHUNK_PAGES ? CHUNK_PAGES : pe[i].nr_pages - k;
			uint64_t off = pe[i].vaddr + k * CR_PAGE_SIZE;
			if (map) {
				rc = pgs_read(r, idx, m, map + off, err);
			} else if (!(rc = pgs_read(r, idx, m, buf, err))) {
				/* the last page may pass the end: the size stays */
				size_t len = (size_t)(off + m * CR_PAGE_SIZE > size ? size - off : m * CR_PAGE_SIZE);
				if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
					rc = fp_fail(err, errno, "filling memfd %" PRIu64 ": %s", shmid, strerror(errno));
			}
			idx += m;
			k += m;
		}
	}
	free(buf);
	if (r)
		pgs_close(r);
	free(pe);
	return rc;
}

/* Where the object's saved pages end: another process may map further
 * than the one that makes it. */
static int pages_end(const rst_image *im, uint64_t shmid, uint64_t *end, fp_error *err)
{
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t n = 0;
	if (cr_read_pagemap_shmem(im->dirfd, shmid, &h, &pe, &n, err))
		return fp_wrap(err, "the pages of shared memory %" PRIu64, shmid);
	*end = n ? pe[n - 1].vaddr + pe[n - 1].nr_pages * CR_PAGE_SIZE : 0;
	free(pe);
	return 0;
}

static int make_anon(const rst_image *im, rst_shm_obj *o, rst_log *log, fp_error *err)
{
	uint64_t end = 0;
	if (pages_end(im, o->shmid, &end, err))
		return -1;
	if (end > o->size)
		o->size = end;
	uint8_t *m = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fp_fail(err, errno, "cannot make %" PRIu64 " bytes of shared memory: %s", o->size, strerror(errno));
	int rc = rst_shm_fill(im, o->shmid, -1, m, o->size, err);
	if (!rc) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/self/map_files/%" PRIxPTR "-%" PRIxPTR, (uintptr_t)m,
			 (uintptr_t)(m + o->size));
		o->fd = open(path, O_RDWR | O_CLOEXEC);
		if (o->fd < 0) { /* map_files wants CAP_SYS_ADMIN: a memfd shares as well */
			rst_logf(log, 2, "shared memory %" PRIu64 ": cannot open %s (%s); a memfd instead", o->shmid, path,
				 strerror(errno));
			o->fd = memfd_create("", MFD_CLOEXEC);
			if (o->fd < 0 || ftruncate(o->fd, (off_t)o->size) < 0 ||
			    pwrite(o->fd, m, o->size, 0) != (ssize_t)o->size)
				rc = fp_fail(err, errno, "cannot make shared memory %" PRIu64 ": %s", o->shmid, strerror(errno));
		}
	}
	munmap(m, o->size);
	return rc;
}

static int make_memfd(const rst_image *im, rst_shm_obj *o, const cr_memfd_inode *mi, fp_error *err)
{
	/* F_SEAL_SEAL alone: made without MFD_ALLOW_SEALING */
	unsigned flags = MFD_CLOEXEC | (mi->seals == F_SEAL_SEAL ? 0 : MFD_ALLOW_SEALING);
	o->fd = memfd_create(mi->name, flags);
	if (o->fd < 0)
		return fp_fail(err, errno, "memfd_create(%s): %s", mi->name, strerror(errno));
	if (ftruncate(o->fd, (off_t)mi->size) < 0)
		return fp_fail(err, errno, "sizing memfd %s to %" PRIu64 " bytes: %s", mi->name, mi->size, strerror(errno));
	if (rst_shm_fill(im, mi->shmid, o->fd, NULL, mi->size, err))
		return -1;
	if (fchown(o->fd, mi->uid, mi->gid) < 0 && errno != EPERM)
		return fp_fail(err, errno, "fchown of memfd %s: %s", mi->name, strerror(errno));
	o->seals = mi->seals == F_SEAL_SEAL ? 0 : mi->seals;
	return 0;
}

/* The object (made on first use) for shmid, at least size bytes long. */
static rst_shm_obj *object(rst_proc *p, bool memfd, uint64_t shmid, const cr_memfd_inode *mi, uint64_t size,
			   fp_error *err)
{
	rst_shm *s = p->shm;
	if (!s) {
		fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "shared memory restore without its context (internal)");
		return NULL;
	}
	rst_shm_obj *o = NULL;
	for (size_t i = 0; i < s->n && !o; i++)
		if (s->o[i].shmid == shmid && s->o[i].memfd == memfd)
			o = &s->o[i];
	if (!o) {
		rst_shm_obj *no = realloc(s->o, (s->n + 1) * sizeof(*no));
		if (!no) {
			fp_fail(err, ENOMEM, "out of memory");
			return NULL;
		}
		s->o = no;
		o = &s->o[s->n];
		memset(o, 0, sizeof(*o));
		o->shmid = shmid;
		o->memfd = memfd;
		o->fd = -1;
		o->size = mi ? mi->size : size;
		int rc = memfd ? make_memfd(p->im, o, mi, err) : make_anon(p->im, o, p->log, err);
		if (rc) {
			if (o->fd >= 0)
				close(o->fd);
			return NULL;
		}
		s->n++;
		rst_logf(p->log, 3, "%s %" PRIu64 " made (%" PRIu64 " bytes)", memfd ? "memfd" : "shared memory", shmid,
			 o->size);
	}
	if (size > o->size) { /* a later mapping reaches further */
		if (ftruncate(o->fd, (off_t)size) < 0) {
			fp_fail(err, errno, "growing shared memory %" PRIu64 " to %" PRIu64 " bytes: %s", shmid, size,
				strerror(errno));
			return NULL;
		}
		o->size = size;
	}
	return o;
}

/* Queues, in p: a copy of our descriptor fd, its number into *out. */
static int queue_getfd(rst_proc *p, int fd, int64_t *out, fp_error *err)
{
	return rst_q_room(p, 3, 0, err) ||
	       rst_q(p, p->pid, "pidfd_open of the restorer", RST_MUST, SYS_pidfd_open, (uint64_t)getpid(), 0, 0, 0, 0, 0,
		     NULL, err) ||
	       rst_q(p, p->pid, "pidfd_getfd of shared memory from the restorer", RST_MUST | RST_REF(0, 1),
		     SYS_pidfd_getfd, 0, (uint64_t)fd, 0, 0, 0, 0, out, err) ||
	       rst_q(p, p->pid, "close", RST_MUST | RST_REF(0, 2), SYS_close, 0, 0, 0, 0, 0, 0, NULL, err)
		       ? -1
		       : 0;
}

static const cr_memfd_inode *memfd_of_file(rst_proc *p, uint32_t file_id, fp_error *err)
{
	const cr_file *f = rst_file(p->im, file_id);
	if (!f || f->type != CR_FD_MEMFD || !f->has_memfd) {
		fp_fail(err, EINVAL, "file %u is not a memfd in files.img; the image is corrupt", file_id);
		return NULL;
	}
	return p->shm ? memfd_inode(p->shm, p->im, f->memfd.inode_id, err) : NULL;
}

int rst_shm_map_fd(rst_proc *p, const cr_vma *v, int64_t *out, fp_error *err)
{
	uint64_t need = v->pgoff + (v->end - v->start);
	const cr_memfd_inode *mi = NULL;
	if (v->status & CR_VMA_AREA_MEMFD) {
		mi = memfd_of_file(p, (uint32_t)v->shmid, err);
		if (!mi)
			return -1;
		need = 0; /* a memfd keeps its size: mapping past it is the program's business */
	}
	rst_shm_obj *o = object(p, mi != NULL, mi ? mi->shmid : v->shmid, mi, need, err);
	return o ? queue_getfd(p, o->fd, out, err) : -1;
}

int rst_shm_file_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	const cr_memfd_inode *mi = memfd_of_file(p, f->id, err);
	rst_shm_obj *o = mi ? object(p, true, mi->shmid, mi, 0, err) : NULL;
	if (!o)
		return -1;
	/* An open file description of its own (its offset and flags), as a
	 * new open of the memfd gives. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd);
	/* O_NOFOLLOW (kept from a file opened by name) would refuse the /proc link */
	int own = open(path, (int)(f->memfd.flags & ~(uint32_t)(O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
	if (own < 0)
		return fp_fail(err, errno, "reopening memfd %s: %s", mi->name, strerror(errno));
	int64_t r = -1;
	int rc = 0;
	if (lseek(own, (off_t)f->memfd.pos, SEEK_SET) < 0)
		rc = fp_fail(err, errno, "memfd %s: cannot seek to %" PRIu64 ": %s", mi->name, f->memfd.pos, strerror(errno));
	if (!rc)
		rc = queue_getfd(p, own, &r, err) || rst_flush(p, err) ? -1 : 0;
	close(own);
	if (!rc)
		*fd = (int)r;
	return rc;
}

int rst_shm_seal(rst_shm *s, fp_error *err)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->o[i].seals && fcntl(s->o[i].fd, F_ADD_SEALS, s->o[i].seals) < 0)
			return fp_fail(err, errno, "sealing memfd %" PRIu64 " (seals %#x): %s", s->o[i].shmid, s->o[i].seals,
				       strerror(errno));
	return 0;
}

void rst_shm_free(rst_shm *s)
{
	rst_ghosts_unlink_tree(s); /* a restore that failed before the end */
	rst_sysv_free(s);
	for (size_t i = 0; i < s->n; i++)
		close(s->o[i].fd);
	free(s->o);
	cr_free_array(&cr_memfd_inode_desc, s->mi, s->nmi);
	memset(s, 0, sizeof(*s));
}
