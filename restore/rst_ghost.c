/* Files that were deleted while open (ghost files: remap-fpath.img plus
 * ghost-file-<id>.img, from forkpoint or CRIU). The restorer writes the
 * kept bytes to a new file beside the old path (at the old path itself when
 * nothing is there now, so /proc names it as before), with the old mode,
 * owner and times; the process opens it like any file; once its fds are in
 * place, and its mappings and executable too, the file is unlinked again:
 * the process holds the deleted file as it did. A private mapping's pages
 * copied on write come from the page store over the file's bytes. A ghost
 * is made once for the tree (in rst_shm), so processes that shared the
 * deleted file, a MAP_SHARED mapping above all, share it again; it is
 * unlinked once every process has its mappings and fds. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rst_int.h"

#define GHOST_MAX_BYTES (1ull << 32)

struct rst_ghost {
	uint32_t id;
	char path[PATH_MAX];
};

const cr_remap_fpath *rst_remap(const rst_image *im, uint32_t file_id)
{
	for (size_t i = 0; i < im->nremaps; i++)
		if (im->remaps[i].orig_id == file_id)
			return &im->remaps[i];
	return NULL;
}

bool rst_remap_is_ghost(const cr_remap_fpath *r)
{
	/* Without a type, CRIU's older images mark a ghost in the id's top bit. */
	return r->has_remap_type ? r->remap_type == CR_REMAP_GHOST : (r->remap_id & (1u << 31)) != 0;
}

static uint32_t ghost_id(const cr_remap_fpath *r)
{
	return r->has_remap_type ? r->remap_id : r->remap_id & ~(1u << 31);
}

static int write_all(int fd, const uint8_t *p, uint64_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
		if (w <= 0)
			return -1;
		p += w, n -= (uint64_t)w;
	}
	return 0;
}

/* Makes the file for ghost r (once per process) and gives its path. */
static int make_ghost(rst_proc *p, const cr_remap_fpath *r, const char *orig, const char **path, fp_error *err)
{
	rst_image *im = p->im;
	struct rst_ghost **made = p->shm ? &p->shm->ghosts : &im->ghosts_made;
	size_t *nmade = p->shm ? &p->shm->nghosts : &im->nghosts_made;
	uint32_t id = ghost_id(r);
	for (size_t i = 0; i < *nmade; i++)
		if ((*made)[i].id == id) {
			*path = (*made)[i].path;
			return 0;
		}
	struct rst_ghost *ng = realloc(*made, (*nmade + 1) * sizeof(*ng));
	if (!ng)
		return fp_fail(err, ENOMEM, "out of memory");
	*made = ng;
	struct rst_ghost *g = &ng[*nmade];
	cr_ghost_file gf;
	uint8_t *data;
	if (cr_read_ghost(im->dirfd, id, GHOST_MAX_BYTES, &gf, &data, err))
		return -1;
	int fd = -1;
	snprintf(g->path, sizeof(g->path), "%s", orig);
	for (unsigned k = 0; fd < 0 && k < 100; k++) {
		if (k)
			snprintf(g->path, sizeof(g->path), "%s.forkpoint-ghost.%d.%u.%u", orig, (int)getpid(), id, k);
		fd = open(g->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	int rc = 0;
	if (fd < 0)
		rc = fp_fail(err, errno, "cannot recreate the deleted file %s: %s (its directory must exist)", orig,
			     strerror(errno));
	else if (write_all(fd, data, gf.size) || fchown(fd, gf.uid, gf.gid) || fchmod(fd, gf.mode & 07777))
		rc = fp_fail(err, errno, "recreating the deleted file %s: %s", orig, strerror(errno));
	if (!rc && (gf.has_atim || gf.has_mtim)) {
		struct timespec ts[2] = { { (time_t)gf.atim.tv_sec, (long)gf.atim.tv_usec * 1000 },
					  { (time_t)gf.mtim.tv_sec, (long)gf.mtim.tv_usec * 1000 } };
		futimens(fd, ts);
	}
	if (fd >= 0)
		close(fd);
	free(data);
	if (rc) {
		if (fd >= 0)
			unlink(g->path);
		return -1;
	}
	g->id = id;
	(*nmade)++;
	*path = g->path;
	rst_logf(p->log, 3, "ghost %u (%s): %llu bytes at %s", id, orig, (unsigned long long)gf.size, g->path);
	return 0;
}

const char *rst_ghost_path(rst_proc *p, const cr_file *f, fp_error *err)
{
	const cr_remap_fpath *r = rst_remap(p->im, f->id);
	if (!r || !rst_remap_is_ghost(r))
		return f->reg.name;
	const char *path = NULL;
	return make_ghost(p, r, f->reg.name, &path, err) ? NULL : path;
}

const char *rst_reg_path(rst_proc *p, uint32_t id, fp_error *err)
{
	const cr_file *f = rst_file(p->im, id);
	if (!f || f->type != CR_FD_REG || !f->has_reg || !f->reg.name)
		return fp_fail(err, EINVAL, "files.img has no regular file entry %u; the image is corrupt", id), NULL;
	return rst_ghost_path(p, f, err);
}

static void unlink_all(struct rst_ghost **g, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		unlink((*g)[i].path);
	free(*g);
	*g = NULL;
	*n = 0;
}

void rst_ghosts_unlink(rst_image *im)
{
	unlink_all(&im->ghosts_made, &im->nghosts_made);
}

void rst_ghosts_unlink_tree(rst_shm *s)
{
	unlink_all(&s->ghosts, &s->nghosts);
}
