/* Files deleted while open (CRIU's "ghost files"). The path is gone, so the
 * file's bytes go into the image (ghost-file-<id>.img) and remap-fpath.img
 * says that the file entry, which keeps the old path, stands for that copy.
 * The bytes are read through the process's own fd (/proc/PID/fd/N opens the
 * deleted inode), while it is stopped. One copy per inode, whatever number
 * of descriptions or processes have it open. Files larger than the limit
 * are refused: the image would carry them whole. A deleted file that is
 * mapped (or the executable) is read through /proc/PID/map_files (or
 * /proc/PID/exe) into the same kind of copy; a private mapping's pages
 * copied on write are dumped as any private file mapping's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump_int.h"
#include "images/criu_io.h"

struct dump_ghost {
	dev_t dev;
	uint64_t ino;
	uint32_t id;
};

static int add_remap(struct dump_ctx *c, uint32_t orig_id, uint32_t ghost_id, fp_error *err)
{
	cr_remap_fpath *n = realloc(c->remaps, (c->nremaps + 1) * sizeof(*n));
	if (!n)
		return fp_fail(err, ENOMEM, "out of memory");
	c->remaps = n;
	c->remaps[c->nremaps++] = (cr_remap_fpath){ .orig_id = orig_id, .remap_id = ghost_id, .has_remap_type = true,
						     .remap_type = CR_REMAP_GHOST };
	return 0;
}

static int read_all(int fd, uint8_t *buf, uint64_t size)
{
	uint64_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got > (1 << 20) ? (1 << 20) : size - got, (off_t)got);
		if (n <= 0)
			return -1;
		got += (uint64_t)n;
	}
	return 0;
}

/* The ghost of the inode open as rfd (ours): one copy per inode. */
static int ghost_of(struct dump_ctx *c, int rfd, const struct stat *st, const char *what, uint32_t *id, fp_error *err)
{
	for (size_t i = 0; i < c->nghosts; i++)
		if (c->ghosts[i].dev == st->st_dev && c->ghosts[i].ino == st->st_ino) {
			*id = c->ghosts[i].id;
			return 0;
		}
	uint64_t limit = c->o->ghost_limit ? c->o->ghost_limit : FP_DUMP_GHOST_LIMIT;
	if (!S_ISREG(st->st_mode))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "%s is a deleted file that is not a regular file (mode 0%o)",
				    what, (unsigned)st->st_mode);
	if ((uint64_t)st->st_size > limit)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EFBIG,
				    "%s is a deleted file of %lld bytes, more than the %" PRIu64
				    " the image may carry (raise --ghost-limit)",
				    what, (long long)st->st_size, limit);
	uint8_t *data = malloc(st->st_size ? (size_t)st->st_size : 1);
	if (!data)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = 0;
	errno = 0;
	if (read_all(rfd, data, (uint64_t)st->st_size))
		rc = fp_fail(err, errno ? errno : EIO, "reading the deleted file of %s: %s", what,
			     errno ? strerror(errno) : "it shrank");
	struct dump_ghost *ng = rc ? NULL : realloc(c->ghosts, (c->nghosts + 1) * sizeof(*ng));
	if (!rc && !ng)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc) {
		c->ghosts = ng;
		*id = (uint32_t)c->nghosts + 1;
		c->ghosts[c->nghosts++] = (struct dump_ghost){ st->st_dev, st->st_ino, *id };
		cr_ghost_file g = {
			.uid = st->st_uid, .gid = st->st_gid, .mode = st->st_mode,
			.has_ino = true, .ino = st->st_ino,
			.has_atim = true, .atim = { (uint64_t)st->st_atim.tv_sec, (uint64_t)st->st_atim.tv_nsec / 1000 },
			.has_mtim = true, .mtim = { (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec / 1000 },
			.has_chunks = true, .chunks = false,
			.has_size = true, .size = (uint64_t)st->st_size,
		};
		rc = cr_write_ghost(c->dirfd, *id, &g, data, err);
		dlogv(c, "%s: deleted file kept as ghost %u (%lld bytes)", what, *id, (long long)st->st_size);
	}
	free(data);
	return rc;
}

int dump_ghost_file(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st, uint32_t file_id, fp_error *err)
{
	char what[64], path[64];
	snprintf(what, sizeof(what), "fd %d of %d", fd, (int)pid);
	uint32_t id = 0;
	for (size_t i = 0; i < c->nghosts && !id; i++)
		if (c->ghosts[i].dev == st->st_dev && c->ghosts[i].ino == st->st_ino)
			id = c->ghosts[i].id;
	if (!id) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			return fp_fail(err, errno, "cannot read the deleted file behind %s: %s", what, strerror(errno));
		int rc = ghost_of(c, rfd, st, what, &id, err);
		close(rfd);
		if (rc)
			return -1;
	}
	return add_remap(c, file_id, id, err);
}

int dump_ghost_mapped(struct dump_ctx *c, pid_t pid, const char *src, const char *link, uint32_t flags, const char *what,
		      uint32_t *file_id, fp_error *err)
{
	int rfd = open(src, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		return fp_fail_code(err, errno == EPERM || errno == EACCES ? FP_EXIT_UNSUPPORTED : 1, errno,
				    "cannot read the deleted file %s of %d (%s) through %s: %s%s", link, (int)pid, what, src,
				    strerror(errno),
				    errno == EPERM || errno == EACCES ? " (reading a mapped file needs CAP_CHECKPOINT_RESTORE)"
								      : "");
	struct stat st;
	int rc = fstat(rfd, &st) ? fp_fail(err, errno, "fstat of %s: %s", src, strerror(errno)) : 0;
	/* one entry per (inode, open flags), as for any mapped file; its path
	 * is the old one, which names another file (or none) by now, so it
	 * stays out of the index of files by path */
	*file_id = 0;
	for (size_t i = 0; !rc && i < c->nfiles && !*file_id; i++)
		if (c->fkeys[i].kind == 4 && c->fkeys[i].dev == st.st_dev && c->fkeys[i].ino == st.st_ino &&
		    c->fkeys[i].flags == flags)
			*file_id = c->files[i].id;
	if (!rc && !*file_id) {
		char name[PATH_MAX];
		size_t l = strlen(link);
		if (l >= 10 && !strcmp(link + l - 10, " (deleted)"))
			l -= 10;
		snprintf(name, sizeof(name), "%.*s", (int)l, link);
		struct dump_fkey k = { .kind = 4, .dev = st.st_dev, .ino = st.st_ino, .flags = flags, .pid = pid, .fd = -1 };
		cr_file *f = dump_new_reg_file(c, &k, name, flags, 0, err);
		uint32_t gid;
		char whose[PATH_MAX + 64];
		snprintf(whose, sizeof(whose), "%s of %d", what, (int)pid);
		if (!f || ghost_of(c, rfd, &st, whose, &gid, err) || add_remap(c, f->id, gid, err))
			rc = -1;
		else
			*file_id = f->id;
	}
	close(rfd);
	return rc;
}

int dump_write_remaps(struct dump_ctx *c, fp_error *err)
{
	return c->nremaps ? cr_write_remaps(c->dirfd, c->remaps, c->nremaps, err) : 0;
}
