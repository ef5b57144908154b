#include "images/criu_img.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/criu_msgs.h"

/* Image files other than pages are small; a bigger one is corrupt. */
#define IMG_MAX_SIZE (1ull << 32)

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *mname(uint32_t m)
{
	const char *n = cr_magic_name(m);
	return *n ? n : "an image magic forkpoint knows";
}

static int check_magics(cr_img *img, fp_error *err)
{
	if (img->magic == CR_RAW_IMAGE_MAGIC)
		return fp_fail(err, EINVAL, "%s: a raw image has no entries to read", img->name);
	size_t need = img->magic == CR_INVENTORY_MAGIC ? 4 : 8;
	if (img->size < need)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: file is %zu bytes, too short for its magic (corrupt or "
				    "truncated image)",
				    img->name, img->size);
	uint32_t m0 = rd32(img->data);
	if (img->magic == CR_INVENTORY_MAGIC) {
		if (m0 != CR_INVENTORY_MAGIC)
			return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
					    "%s: magic 0x%08x is not INVENTORY 0x%08x (not a CRIU "
					    "inventory image)",
					    img->name, m0, CR_INVENTORY_MAGIC);
		img->off = 4;
		return 0;
	}
	uint32_t m1 = rd32(img->data + 4);
	if (m0 != CR_IMG_COMMON_MAGIC)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: magic 0x%08x is not the common image magic 0x%08x (not a "
				    "CRIU v1.1 image, or corrupt)",
				    img->name, m0, CR_IMG_COMMON_MAGIC);
	if (m1 != img->magic)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: magic 0x%08x is not %s 0x%08x%s%s%s", img->name, m1,
				    mname(img->magic), img->magic,
				    *cr_magic_name(m1) ? " (it is a " : "", cr_magic_name(m1),
				    *cr_magic_name(m1) ? " image)" : "");
	img->off = 8;
	return 0;
}

size_t img_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	errno = 0;
	while (got < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

int img_read_file(int dirfd, const char *name, size_t max, uint8_t **data, size_t *len,
		 fp_error *err)
{
	*data = NULL;
	*len = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", name, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fp_fail(err, e, "cannot stat %s: %s", name, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fp_fail(err, EINVAL, "%s is not a regular file", name);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return fp_fail(err, EFBIG, "%s: %lld bytes, more than the %zu expected (corrupt?)",
			       name, (long long)st.st_size, max);
	}
	size_t cap = (size_t)st.st_size;
	uint8_t *d = malloc(cap ? cap : 1);
	if (!d) {
		close(fd);
		return fp_fail(err, ENOMEM, "%s: out of memory for %zu bytes", name, cap);
	}
	size_t got = 0;
	while (got < cap) {
		ssize_t r = read(fd, d + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(d);
			close(fd);
			return fp_fail(err, e, "cannot read %s: %s", name, strerror(e));
		}
		if (r == 0)
			break; /* shrank under us: take what is there */
		got += (size_t)r;
	}
	close(fd);
	*data = d;
	*len = got;
	return 0;
}

int cr_img_open(cr_img *img, int dirfd, const char *name, uint32_t magic, fp_error *err)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	img->magic = magic;
	if (img_read_file(dirfd, name, IMG_MAX_SIZE, &img->data, &img->size, err) < 0)
		return -1;
	if (check_magics(img, err) < 0) {
		cr_img_close(img);
		return -1;
	}
	return 0;
}

int cr_img_open_mem(cr_img *img, const char *name, const void *data, size_t size,
		    uint32_t magic, fp_error *err)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	img->magic = magic;
	img->data = malloc(size ? size : 1);
	if (!img->data)
		return fp_fail(err, ENOMEM, "%s: out of memory", name);
	if (size)
		memcpy(img->data, data, size);
	img->size = size;
	if (check_magics(img, err) < 0) {
		cr_img_close(img);
		return -1;
	}
	return 0;
}

/* img->where: "<name> entry N", made for each entry (an error message
 * names it) by hand: snprintf per entry was 10% of reading 10,000 fds'
 * images. */
static void where_is(cr_img *img)
{
	static const char mid[] = " entry ";
	char num[12];
	size_t k = sizeof(num);
	unsigned v = img->idx;
	do
		num[--k] = (char)('0' + v % 10);
	while ((v /= 10) && k);
	size_t nl = strnlen(img->name, sizeof(img->where) - sizeof(mid) - sizeof(num));
	char *w = img->where;
	memcpy(w, img->name, nl);
	memcpy(w + nl, mid, sizeof(mid) - 1);
	memcpy(w + nl + sizeof(mid) - 1, num + k, sizeof(num) - k);
	w[nl + sizeof(mid) - 1 + sizeof(num) - k] = '\0';
}

int cr_img_next(cr_img *img, const uint8_t **msg, size_t *len, fp_error *err)
{
	size_t left = img->size - img->off;
	if (left == 0)
		return 0;
	where_is(img);
	if (left < 4)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: only %zu bytes left at offset %zu, too few for an entry "
				    "length (truncated image)",
				    img->where, left, img->off);
	uint32_t n = rd32(img->data + img->off);
	if (n > left - 4)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: entry at offset %zu claims %u bytes but only %zu remain "
				    "(truncated or corrupt image)",
				    img->where, img->off, n, left - 4);
	*msg = img->data + img->off + 4;
	*len = n;
	img->off += 4 + (size_t)n;
	img->idx++;
	return 1;
}

int cr_img_payload(cr_img *img, size_t n, const uint8_t **p, fp_error *err)
{
	size_t left = img->size - img->off;
	if (n > left)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: payload of %zu bytes but only %zu remain (truncated image)",
				    img->where[0] ? img->where : img->name, n, left);
	*p = img->data + img->off;
	img->off += n;
	return 0;
}

void cr_img_close(cr_img *img)
{
	free(img->data);
	img->data = NULL;
	img->size = img->off = 0;
}

/* ---- writing ---------------------------------------------------------- */

void cr_imgw_init(cr_imgw *w, const char *name, uint32_t magic)
{
	pb_buf_init(&w->buf);
	snprintf(w->name, sizeof(w->name), "%s", name);
	if (magic == CR_RAW_IMAGE_MAGIC)
		return;
	if (magic != CR_INVENTORY_MAGIC)
		pb_put_le32(&w->buf, CR_IMG_COMMON_MAGIC);
	pb_put_le32(&w->buf, magic);
}

size_t cr_imgw_begin(cr_imgw *w)
{
	pb_put_le32(&w->buf, 0);
	return w->buf.len;
}

void cr_imgw_end(cr_imgw *w, size_t mark)
{
	if (w->buf.oom)
		return;
	uint64_t n = w->buf.len - mark;
	if (n > UINT32_MAX) {
		w->buf.oom = true;
		return;
	}
	uint8_t *p = w->buf.data + mark - 4;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(n >> (8 * i));
}

void cr_imgw_msg(cr_imgw *w, const pb_mdesc *d, const void *msg)
{
	size_t m = cr_imgw_begin(w);
	pb_encode(&w->buf, d, msg);
	cr_imgw_end(w, m);
}

void cr_imgw_entry(cr_imgw *w, const void *msg, size_t len)
{
	size_t m = cr_imgw_begin(w);
	pb_put_raw(&w->buf, msg, len);
	cr_imgw_end(w, m);
}

void cr_imgw_raw(cr_imgw *w, const void *p, size_t n)
{
	pb_put_raw(&w->buf, p, n);
}

int cr_imgw_commit(cr_imgw *w, int dirfd, fp_error *err)
{
	int rc;
	if (w->buf.oom)
		rc = fp_fail(err, ENOMEM, "cannot encode %s: out of memory", w->name);
	else
		rc = img_write_atomic(dirfd, w->name, w->buf.data, w->buf.len, false, err);
	cr_imgw_free(w);
	return rc;
}

void cr_imgw_free(cr_imgw *w)
{
	pb_buf_free(&w->buf);
}

/* ---- files ------------------------------------------------------------ */

static int write_fail(fp_error *err, int e, const char *what, const char *name)
{
	if (e == ENOSPC || e == EDQUOT)
		return fp_fail(err, e, "cannot %s %s: %s; free some space in the image directory",
			       what, name, strerror(e));
	return fp_fail(err, e, "cannot %s %s: %s", what, name, strerror(e));
}

int img_afile_open(img_afile *f, int dirfd, const char *name, fp_error *err)
{
	memset(f, 0, sizeof(*f));
	f->dirfd = dirfd;
	f->fd = -1;
	if (strchr(name, '/') || strlen(name) >= sizeof(f->name))
		return fp_fail(err, EINVAL, "bad image file name '%s'", name);
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->tmp, sizeof(f->tmp), ".%s.tmp%d", name, (int)getpid());
	unlinkat(dirfd, f->tmp, 0); /* a crashed writer's; never written through */
	f->fd = openat(dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f->fd < 0)
		return write_fail(err, errno, "create", f->tmp);
	/* umask can only take bits away; make the mode exact anyway */
	if (fchmod(f->fd, 0600) < 0) {
		int e = errno;
		img_afile_abort(f);
		return write_fail(err, e, "chmod", f->tmp);
	}
	return 0;
}

int img_afile_write(img_afile *f, const void *p, size_t n, fp_error *err)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(f->fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return write_fail(err, errno, "write", f->name);
		b += w;
		n -= (size_t)w;
		f->written += (uint64_t)w;
	}
	return 0;
}

int img_afile_commit(img_afile *f, bool do_fsync, fp_error *err)
{
	if (do_fsync && fsync(f->fd) < 0) {
		int e = errno;
		img_afile_abort(f);
		return write_fail(err, e, "fsync", f->name);
	}
	if (close(f->fd) < 0) {
		int e = errno;
		f->fd = -1;
		img_afile_abort(f);
		return write_fail(err, e, "close", f->name);
	}
	f->fd = -1;
	if (renameat(f->dirfd, f->tmp, f->dirfd, f->name) < 0) {
		int e = errno;
		img_afile_abort(f);
		return write_fail(err, e, "rename into place", f->name);
	}
	if (do_fsync && fsync(f->dirfd) < 0)
		return write_fail(err, errno, "fsync the directory of", f->name);
	return 0;
}

void img_afile_abort(img_afile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp[0])
		unlinkat(f->dirfd, f->tmp, 0);
	f->tmp[0] = '\0';
}

int img_write_atomic(int dirfd, const char *name, const void *data, size_t len,
			 bool do_fsync, fp_error *err)
{
	img_afile f;
	if (img_afile_open(&f, dirfd, name, err) < 0)
		return -1;
	if (img_afile_write(&f, data, len, err) < 0) {
		img_afile_abort(&f);
		return -1;
	}
	return img_afile_commit(&f, do_fsync, err);
}

int img_mkdir_private(const char *path, fp_error *err)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return write_fail(err, errno, "create directory", path);
	struct stat st;
	if (stat(path, &st) < 0)
		return fp_fail(err, errno, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fp_fail(err, ENOTDIR, "%s exists and is not a directory", path);
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
		return fp_fail(err, errno, "cannot make %s private (chmod 0700): %s", path,
			       strerror(errno));
	return 0;
}

int img_sync_dir(int dirfd, fp_error *err)
{
	if (syncfs(dirfd) < 0)
		return fp_fail(err, errno, "syncfs on the image directory failed: %s",
			       strerror(errno));
	if (fsync(dirfd) < 0)
		return fp_fail(err, errno, "fsync of the image directory failed: %s",
			       strerror(errno));
	return 0;
}
