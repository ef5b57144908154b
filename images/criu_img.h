/* CRIU image framing and safe file writing.
 *
 * An image file is: u32 IMG_COMMON_MAGIC, u32 per-image magic (inventory.img
 * has only its own magic), then entries, each a u32 little-endian length and
 * that many bytes of protobuf. Some entries (pipes-data) are followed by a raw
 * payload whose length is inside the message. Raw images (pages-<id>.img)
 * have no framing and are not read through here.
 *
 * Reading loads the whole file (images other than pages are small) and checks
 * every length against the file size before handing out a pointer. Writing
 * builds the file in memory and publishes it atomically: a temp file created
 * 0600 in the same directory, renamed over the final name. Images hold process
 * memory, so directories are 0700 and files 0600. */
#ifndef FP_CRIU_IMG_H
#define FP_CRIU_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"
#include "images/pb.h"

/* ---- reading ---------------------------------------------------------- */
typedef struct cr_img {
	char name[256];  /* file name, for messages */
	uint8_t *data;
	size_t size;
	size_t off;      /* start of the next entry */
	unsigned idx;    /* index of the next entry */
	uint32_t magic;
	char where[300]; /* "<name> entry N", for the entry last returned */
} cr_img;

/* Opens dirfd/name and checks the magic(s). A missing file fails with errnum
 * ENOENT (callers decide whether an absent image is fatal). */
int cr_img_open(cr_img *img, int dirfd, const char *name, uint32_t magic, fp_error *err);
/* The same on a copy of an in-memory file image (tests, streaming). */
int cr_img_open_mem(cr_img *img, const char *name, const void *data, size_t size,
		    uint32_t magic, fp_error *err);
/* Next entry: 1 with *msg and *len set, 0 at a clean end of file, -1 on a
 * truncated or oversized entry. *msg stays valid until cr_img_close. */
int cr_img_next(cr_img *img, const uint8_t **msg, size_t *len, fp_error *err);
/* Takes n raw payload bytes that follow the entry last returned. */
int cr_img_payload(cr_img *img, size_t n, const uint8_t **p, fp_error *err);
void cr_img_close(cr_img *img);

/* ---- writing ---------------------------------------------------------- */
typedef struct cr_imgw {
	pb_buf buf;
	char name[256];
} cr_imgw;

/* Starts a file with the right magic(s) for `magic`. */
void cr_imgw_init(cr_imgw *w, const char *name, uint32_t magic);
/* One entry: the u32 length, then the encoded message. */
void cr_imgw_msg(cr_imgw *w, const pb_mdesc *d, const void *msg);
/* One entry from an already encoded message. */
void cr_imgw_entry(cr_imgw *w, const void *msg, size_t len);
/* An entry encoded directly into the file: mark = begin(); pb_put_*(&w->buf);
 * end(mark). */
size_t cr_imgw_begin(cr_imgw *w);
void cr_imgw_end(cr_imgw *w, size_t mark);
/* Raw payload after the last entry. */
void cr_imgw_raw(cr_imgw *w, const void *p, size_t n);
/* Publishes dirfd/name atomically (0600, no fsync: see img_sync_dir) and frees
 * the buffer, whatever the outcome. */
int cr_imgw_commit(cr_imgw *w, int dirfd, fp_error *err);
void cr_imgw_free(cr_imgw *w);

/* ---- files ------------------------------------------------------------ */
/* A file written under a temp name and renamed into place on commit, so that
 * a reader sees either nothing or the whole file. */
typedef struct img_afile {
	int dirfd, fd;
	char name[256];
	char tmp[300];
	uint64_t written;
} img_afile;

int img_afile_open(img_afile *f, int dirfd, const char *name, fp_error *err);
int img_afile_write(img_afile *f, const void *p, size_t n, fp_error *err);
/* do_fsync: fsync the file before the rename and the directory after it. */
int img_afile_commit(img_afile *f, bool do_fsync, fp_error *err);
void img_afile_abort(img_afile *f);

/* Whole-file form of the above. */
int img_write_atomic(int dirfd, const char *name, const void *data, size_t len,
			 bool do_fsync, fp_error *err);
/* mkdir 0700 (an existing directory is tightened to 0700). */
int img_mkdir_private(const char *path, fp_error *err);
/* Makes everything written in the directory's file system durable (syncfs),
 * then the directory itself: call before writing the manifest, which is
 * written last with do_fsync. */
int img_sync_dir(int dirfd, fp_error *err);
/* pread until len bytes, the end of the file or an error (errno then):
 * the bytes read. */
size_t img_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Reads a whole file (at most max bytes) into a malloc'd buffer. */
int img_read_file(int dirfd, const char *name, size_t max, uint8_t **data, size_t *len,
		 fp_error *err);

#endif
