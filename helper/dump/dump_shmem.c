/* Shared memory objects: shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS,
 * "/dev/zero (deleted)" in maps, also between a parent and its forked
 * children) and memfds, as CRIU lays them out: each mapping is a vma_entry
 * whose shmid is the object's inode number, and each object's pages are
 * dumped once for the whole tree, in pagemap-shmem-<shmid>.img (vaddr = byte
 * offset in the object) with a pages file of its own.
 *
 * The pages are read while the tree is stopped, in every mode. A frozen
 * fork copy shares these pages with the running process (MAP_SHARED stays
 * shared across fork), and the pre-copy's write tracking covers private
 * memory only, so reading them after the resume could see later writes. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/pagestore.h"

bool dump_shmem_is_anon(const struct dump_vma *v)
{
	return v->perms[3] == 's' && (!strcmp(v->path, "/dev/zero (deleted)") || !strncmp(v->path, "[anon_shmem:", 12));
}

static bool is_memfd_path(const char *path)
{
	return !strncmp(path, "/memfd:", 7);
}

struct dump_shmem *dump_shmem_find(struct dump_ctx *c, uint64_t shmid)
{
	for (size_t i = 0; i < c->nshm; i++)
		if (c->shm[i].shmid == shmid)
			return &c->shm[i];
	return NULL;
}


/* The object shmid, known or new, at least size bytes long. */
struct dump_shmem *dump_shmem_note(struct dump_ctx *c, uint64_t shmid, uint64_t size, fp_error *err)
{
	struct dump_shmem *s = dump_shmem_find(c, shmid);
	if (!s) {
		if (c->nshm == c->capshm) {
			size_t cap = c->capshm ? c->capshm * 2 : 8;
			struct dump_shmem *n = realloc(c->shm, cap * sizeof(*n));
			if (!n) {
				fp_fail(err, ENOMEM, "out of memory");
				return NULL;
			}
			c->shm = n;
			c->capshm = cap;
		}
		s = &c->shm[c->nshm++];
		memset(s, 0, sizeof(*s));
		s->shmid = shmid;
		s->fd = -1;
	}
	if (size > s->size) {
		if (s->read) {
			fp_fail(err, EAGAIN, "shared memory %" PRIu64 " grew after its pages were read", shmid);
			return NULL;
		}
		s->size = size;
	}
	return s;
}

/* "/memfd:NAME (deleted)" -> "NAME"; "/dev/shm/x (deleted)" -> "/dev/shm/x" */
static char *memfd_name(const char *path)
{
	const char *b = is_memfd_path(path) ? path + 7 : path;
	size_t l = strlen(b);
	if (l >= 10 && !strcmp(b + l - 10, " (deleted)"))
		l -= 10;
	return strndup(b, l);
}

/* Registers memfd ino, first seen at (pid, fd) or (pid, start-end), and
 * reads it now (the tree is stopped). */
static struct dump_shmem *note_memfd(struct dump_ctx *c, uint64_t ino, dev_t dev, const char *path, pid_t pid, int fd,
				     uint64_t start, uint64_t end, fp_error *err);

static int add_run(struct dump_shmem *s, uint64_t off, uint64_t np, fp_error *err)
{
	if (s->npe && s->pe[s->npe - 1].vaddr + s->pe[s->npe - 1].nr_pages * CR_PAGE_SIZE == off) {
		s->pe[s->npe - 1].nr_pages += np;
		return 0;
	}
	cr_pagemap_entry *n = realloc(s->pe, (s->npe + 1) * sizeof(*n));
	if (!n)
		return fp_fail(err, ENOMEM, "out of memory");
	s->pe = n;
	s->pe[s->npe++] = (cr_pagemap_entry){ .vaddr = off, .nr_pages = np, .has_flags = true, .flags = CR_PE_PRESENT };
	return 0;
}

/* The pages the object holds (SEEK_DATA: holes were never written and read
 * as zeros), up to its size. The tree is stopped meanwhile: the runs are
 * found first, so that the copy goes into one buffer faulted in at once
 * (MAP_POPULATE), about twice as fast here as faulting it page by page
 * under pread. */
static int read_object(struct dump_shmem *s, int fd, fp_error *err)
{
	uint64_t end = (s->size + CR_PAGE_SIZE - 1) / CR_PAGE_SIZE * CR_PAGE_SIZE, off = 0;
	while (off < end) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0)
			return fp_fail(err, errno, "SEEK_DATA in shared memory %" PRIu64 ": %s", s->shmid, strerror(errno));
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return fp_fail(err, errno, "SEEK_HOLE in shared memory %" PRIu64 ": %s", s->shmid, strerror(errno));
		uint64_t a = (uint64_t)d / CR_PAGE_SIZE * CR_PAGE_SIZE;
		uint64_t b = ((uint64_t)h + CR_PAGE_SIZE - 1) / CR_PAGE_SIZE * CR_PAGE_SIZE;
		if (b > end)
			b = end;
		if (a >= b)
			break;
		if (add_run(s, a, (b - a) / CR_PAGE_SIZE, err))
			return -1;
		s->npages += (b - a) / CR_PAGE_SIZE;
		off = b;
	}
	if (s->npages) {
		void *m = mmap(NULL, s->npages * CR_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			       -1, 0);
		if (m == MAP_FAILED)
			return fp_fail(err, errno, "no memory for %" PRIu64 " pages of shared memory: %s", s->npages,
				       strerror(errno));
		s->data = m;
	}
	uint8_t *dst = s->data;
	for (size_t i = 0; i < s->npe; i++) {
		uint64_t a = s->pe[i].vaddr, len = s->pe[i].nr_pages * CR_PAGE_SIZE;
		for (uint64_t got = 0; got < len;) {
			ssize_t r = pread(fd, dst + got, len - got, (off_t)(a + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return fp_fail(err, errno, "reading shared memory %" PRIu64 ": %s", s->shmid, strerror(errno));
			if (r == 0) /* past the end of the object: zeros (the buffer is) */
				break;
			got += (uint64_t)r;
		}
		dst += len;
	}
	s->read = true; /* hashed when written, after the resume */
	return 0;
}

/* A memfd's own facts, from any open file of it. */
static int memfd_facts(struct dump_shmem *s, int fd, fp_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fp_fail(err, errno, "cannot stat memfd %" PRIu64 ": %s", s->shmid, strerror(errno));
	s->size = (uint64_t)st.st_size;
	s->uid = st.st_uid;
	s->gid = st.st_gid;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return fp_fail(err, errno, "F_GET_SEALS on memfd %s: %s", s->name, strerror(errno));
	s->seals = (uint32_t)seals;
	return 0;
}

static int open_object(const struct dump_shmem *s, fp_error *err)
{
	char path[96];
	if (s->fd >= 0)
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", s->pid, s->fd);
	else
		snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, s->pid, s->start, s->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open the shared memory %" PRIu64 " at %s: %s%s", s->shmid, path,
			       strerror(errno), errno == EPERM ? " (map_files needs CAP_SYS_ADMIN: run as root)" : "");
	return fd;
}

static struct dump_shmem *note_memfd(struct dump_ctx *c, uint64_t ino, dev_t dev, const char *path, pid_t pid, int fd,
				     uint64_t start, uint64_t end, fp_error *err)
{
	struct dump_shmem *s = dump_shmem_note(c, ino, 0, err);
	if (s && s->memfd && s->dev != dev) {
		fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
			     "%d: two shared memory objects of the tree have inode %" PRIu64 " (%s and another); the image "
			     "cannot tell them apart",
			     pid, ino, path);
		return NULL;
	}
	if (!s || s->read)
		return s;
	s->memfd = true;
	s->dev = dev;
	s->pid = pid;
	s->fd = fd;
	s->start = start;
	s->end = end;
	uint32_t next = 1;
	for (size_t i = 0; i < c->nshm; i++)
		if (c->shm[i].memfd && c->shm[i].inode_id >= next)
			next = c->shm[i].inode_id + 1;
	s->inode_id = next;
	s->name = memfd_name(path);
	if (!s->name) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	int ofd = open_object(s, err);
	if (ofd < 0)
		return NULL;
	int rc = memfd_facts(s, ofd, err) || read_object(s, ofd, err) ? -1 : 0;
	close(ofd);
	if (rc)
		return NULL;
	dlogv(c, "memfd %s (inode %" PRIu64 "): %" PRIu64 " bytes, %" PRIu64 " pages held, seals %#x", s->name, s->shmid,
	      s->size, s->npages, s->seals);
	return s;
}

int dump_shmem_memfd_fd(struct dump_ctx *c, pid_t pid, int fd, const char *link, uint32_t flags, uint64_t pos,
			cr_file *f, fp_error *err)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	if (stat(path, &st) < 0)
		return fp_fail(err, errno, "cannot stat %s: %s", path, strerror(errno));
	const struct dump_shmem *s = note_memfd(c, st.st_ino, st.st_dev, link, pid, fd, 0, 0, err);
	if (!s)
		return fp_wrap(err, "fd %d of %d (%s)", fd, pid, link);
	f->type = CR_FD_MEMFD;
	f->has_memfd = true;
	f->memfd.id = f->id;
	f->memfd.flags = flags;
	f->memfd.pos = pos;
	f->memfd.inode_id = s->inode_id;
	return 0;
}

/* A shared mapping of a file deleted since (POSIX shared memory, or a
 * temporary file unlinked once mapped, as Python's multiprocessing makes
 * its shared values and semaphores): on tmpfs its pages are all it has, so
 * it is dumped as a memfd named after its old path, its mappings and fds
 * on it as that memfd's, and a restore makes one object for all of them.
 * Elsewhere it is left to dump_mm.c, which refuses it. */
static bool deleted_file_path(const char *path)
{
	size_t l = strlen(path);
	return path[0] == '/' && !is_memfd_path(path) && strncmp(path, "/SYSV", 5) &&
	       strcmp(path, "/dev/zero (deleted)") && l > 10 && !strcmp(path + l - 10, " (deleted)");
}

static int note_deleted_file(struct dump_ctx *c, pid_t pid, const struct dump_vma *v, fp_error *err)
{
	struct dump_shmem *s = dump_shmem_find(c, v->ino);
	if (s && s->file_obj && s->dev == v->dev)
		return 0;
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start, v->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct statfs sf;
	bool tmpfs = fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
	if (fd >= 0)
		close(fd);
	if (!tmpfs)
		return 0;
	if (s)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d maps %s, whose inode %" PRIu64 " is also another shared memory object's; the image "
				    "cannot tell them apart",
				    pid, v->path, v->ino);
	s = note_memfd(c, v->ino, v->dev, v->path, pid, -1, v->start, v->end, err);
	if (!s)
		return -1;
	s->file_obj = true;
	dlogv(c, "%d maps deleted tmpfs file %s: dumped as a memfd", pid, v->path);
	return 0;
}

bool dump_shmem_file_obj(struct dump_ctx *c, dev_t dev, uint64_t ino)
{
	const struct dump_shmem *s = dump_shmem_find(c, ino);
	return s && s->file_obj && s->dev == dev;
}

int dump_shmem_capture(struct dump_ctx *c, fp_error *err)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		struct dump_vma *v = NULL;
		size_t n = 0;
		if (dump_vmas_read(p->pid, false, &v, &n, err))
			return fp_wrap(err, "listing the shared memory of %d", p->pid);
		int rc = 0;
		for (size_t k = 0; k < n && !rc; k++) {
			if (is_memfd_path(v[k].path)) {
				if (!note_memfd(c, v[k].ino, v[k].dev, v[k].path, p->pid, -1, v[k].start, v[k].end, err))
					rc = -1;
				continue;
			}
			if (v[k].perms[3] == 's' && deleted_file_path(v[k].path)) {
				rc = note_deleted_file(c, p->pid, &v[k], err);
				continue;
			}
			if (dump_sysvshm_is(&v[k])) {
				rc = dump_sysvshm_note(c, p, &v[k], err);
				continue;
			}
			if (!dump_shmem_is_anon(&v[k]))
				continue;
			struct dump_shmem *s = dump_shmem_note(c, v[k].ino, v[k].pgoff + (v[k].end - v[k].start), err);
			if (!s) {
				rc = -1;
			} else if (s->sysv || s->file_obj) {
				rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
						  "%d: shared memory %" PRIu64 " has the number of a SysV segment or a deleted file of the tree; "
						  "the image cannot tell them apart",
						  p->pid, v[k].ino);
			} else if (!s->pid) {
				s->pid = p->pid;
				s->start = v[k].start;
				s->end = v[k].end;
			}
		}
		free(p->maps_stop);
		p->maps_stop = v; /* the VMAs' reader takes it */
		p->nmaps_stop = n;
		if (rc)
			return -1;
	}
	for (size_t i = 0; i < c->nshm; i++) {
		struct dump_shmem *s = &c->shm[i];
		if (s->read)
			continue;
		int fd = open_object(s, err);
		if (fd < 0)
			return -1;
		int rc = read_object(s, fd, err);
		close(fd);
		if (rc)
			return -1;
		dlogv(c, "shared memory %" PRIu64 ": %" PRIu64 " bytes, %" PRIu64 " pages held", s->shmid, s->size, s->npages);
	}
	return 0;
}

/* A memfd mapping: a MEMFD FileEntry per (memfd, open flags), as CRIU. */
static int memfd_vma(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, fp_error *err)
{
	const struct dump_shmem *s = dump_shmem_find(c, v->ino);
	if (!s || !s->memfd || !s->read)
		return fp_fail(err, EAGAIN, "%d maps memfd %s at 0x%" PRIx64 " that was not there while the tree was stopped",
			       p->pid, v->path, v->start);
	bool shared = v->perms[3] == 's';
	uint32_t fflags = shared && strstr(v->vmflags, "mw") ? O_RDWR : O_RDONLY;
	if (!v->vmflags[0] && shared) /* maps without VmFlags: writable now means writable */
		fflags = v->perms[1] == 'w' ? O_RDWR : O_RDONLY;
	uint32_t id = 0;
	for (size_t i = 0; i < c->nfiles && !id; i++)
		if (c->fkeys[i].kind == 2 && c->fkeys[i].ino == v->ino && c->fkeys[i].flags == fflags)
			id = c->files[i].id;
	if (!id) {
		struct dump_fkey k = { .kind = 2, .dev = v->dev, .ino = v->ino, .flags = fflags, .pid = p->pid, .fd = -1 };
		cr_file *f = dump_new_file(c, &k, err);
		if (!f)
			return -1;
		f->type = CR_FD_MEMFD;
		f->has_memfd = true;
		f->memfd.id = f->id;
		f->memfd.flags = fflags;
		f->memfd.inode_id = s->inode_id;
		id = f->id;
	}
	o->shmid = id;
	o->pgoff = v->pgoff;
	o->has_fdflags = true;
	o->fdflags = fflags;
	o->status = CR_VMA_AREA_REGULAR | CR_VMA_AREA_MEMFD | (shared ? CR_VMA_FILE_SHARED : CR_VMA_FILE_PRIVATE);
	if (!shared) { /* its pages copied on write are the process's own */
		v->dump_pages = true;
		v->file_private = true;
	}
	return 1;
}

int dump_shmem_vma(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, fp_error *err)
{
	if (is_memfd_path(v->path) || dump_shmem_file_obj(c, v->dev, v->ino))
		return memfd_vma(c, p, v, o, err);
	if (dump_sysvshm_is(v))
		return dump_sysvshm_vma(c, p, v, o, err);
	if (!dump_shmem_is_anon(v))
		return 0;
	const struct dump_shmem *s = dump_shmem_find(c, v->ino);
	if (!s || !s->read || v->pgoff + (v->end - v->start) > s->size)
		return fp_fail(err, EAGAIN,
			       "%d maps shared memory %" PRIu64 " at 0x%" PRIx64 " that was not there while the tree was "
			       "stopped",
			       p->pid, v->ino, v->start);
	o->flags |= MAP_ANONYMOUS;
	o->status = CR_VMA_AREA_REGULAR | CR_VMA_ANON_SHARED;
	o->shmid = v->ino;
	o->pgoff = v->pgoff;
	return 1;
}

int dump_shmem_write(struct dump_ctx *c, fp_error *err)
{
	pgs_opts po = { 0 };
	po.compress = c->o->compress == FP_DUMP_NONE ? PGS_COMPRESS_NONE : PGS_COMPRESS_ZSTD;
	po.level = c->o->zstd_level ? c->o->zstd_level : FP_DUMP_DEFAULT_LEVEL;
	po.threads = 1;
	for (size_t i = 0; i < c->nshm; i++) {
		struct dump_shmem *s = &c->shm[i];
		/* after the processes' own pages ids (1..nprocs) */
		s->pages_id = (uint32_t)(c->nprocs + 1 + i);
		pgh_list ph = { 0 }; /* per-page hashes too, as for a process's pages */
		s->hash = pgh_add(&ph, s->data, s->npages);
		cr_pagemap_head h = { .pages_id = s->pages_id };
		pgs_writer *w = NULL;
		if (cr_write_pagemap_shmem(c->dirfd, s->shmid, &h, s->pe, s->npe, err) ||
		    !(w = pgs_writer_open(c->dirfd, s->pages_id, &po, err))) {
			pgh_free(&ph);
			return -1;
		}
		if (s->npages && pgs_writer_add(w, s->data, s->npages, err)) {
			pgs_writer_abort(w);
			pgh_free(&ph);
			return -1;
		}
		pgs_stats ps;
		int rc = pgs_writer_close(w, &ps, err);
		if (!rc)
			rc = pgh_write(c->dirfd, s->pages_id, &ph, err);
		pgh_free(&ph);
		if (rc)
			return -1;
		c->st->bytes_pages += ps.bytes_in;
		c->st->pages += s->npages;
	}
	if (dump_sysvshm_write(c, err))
		return -1;
	size_t nm = 0;
	for (size_t i = 0; i < c->nshm; i++)
		nm += c->shm[i].memfd;
	if (!nm)
		return 0;
	cr_memfd_inode *mi = calloc(nm, sizeof(*mi));
	if (!mi)
		return fp_fail(err, ENOMEM, "out of memory");
	nm = 0;
	for (size_t i = 0; i < c->nshm; i++) {
		const struct dump_shmem *s = &c->shm[i];
		if (!s->memfd)
			continue;
		cr_memfd_inode *m = &mi[nm++];
		m->name = s->name;
		m->uid = s->uid;
		m->gid = s->gid;
		m->size = s->size;
		m->shmid = (uint32_t)s->shmid;
		m->seals = s->seals;
		m->inode_id = s->inode_id;
	}
	int rc = cr_write_memfd_inodes(c->dirfd, mi, nm, err);
	free(mi);
	return rc;
}

void dump_shmem_free(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nshm; i++) {
		free(c->shm[i].pe);
		if (c->shm[i].data)
			munmap(c->shm[i].data, c->shm[i].npages * CR_PAGE_SIZE);
		free(c->shm[i].name);
	}
	free(c->shm);
	c->shm = NULL;
	c->nshm = c->capshm = 0;
}
