/* Whole CRIU image files, read and written as the structs of criu_msgs.h.
 * File names follow CRIU: pstree.img, core-<tid>.img, fdinfo-<files_id>.img,
 * pages-<pages_id>.img... Readers fail with errnum ENOENT when the file is
 * missing, and with a message naming the file, entry and field when it is
 * corrupt. Arrays returned by readers are malloc'd: release them with the
 * matching cr_free_* (or cr_free_array). Writers publish each file atomically
 * with mode 0600 and do not fsync (see img_sync_dir). */
#ifndef FP_CRIU_IO_H
#define FP_CRIU_IO_H

#include "images/criu_img.h"
#include "images/criu_msgs.h"

/* Generic: a single-entry image, and an image of n entries. */
int cr_write_one(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d,
		 const void *msg, fp_error *err);
int cr_read_one(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d, void *msg,
		fp_error *err);
int cr_write_array(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d,
		   const void *arr, size_t n, fp_error *err);
int cr_read_array(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d, void **arr,
		  size_t *n, fp_error *err);
void cr_free_array(const pb_mdesc *d, void *arr, size_t n);

int cr_write_inventory(int dirfd, const cr_inventory *inv, fp_error *err);
int cr_read_inventory(int dirfd, cr_inventory *inv, fp_error *err);

int cr_write_pstree(int dirfd, const cr_pstree *p, size_t n, fp_error *err);
int cr_read_pstree(int dirfd, cr_pstree **p, size_t *n, fp_error *err);

int cr_write_ids(int dirfd, uint32_t pid, const cr_ids *ids, fp_error *err);
int cr_read_ids(int dirfd, uint32_t pid, cr_ids *ids, fp_error *err);

int cr_write_core(int dirfd, uint32_t tid, const cr_core *c, fp_error *err);
int cr_read_core(int dirfd, uint32_t tid, cr_core *c, fp_error *err);

int cr_write_mm(int dirfd, uint32_t pid, const cr_mm *mm, fp_error *err);
int cr_read_mm(int dirfd, uint32_t pid, cr_mm *mm, fp_error *err);

/* pagemap-<pid>.img: the head, then the entries. The reader also checks that
 * entries are page aligned, ascending and non-overlapping. */
int cr_write_pagemap(int dirfd, uint32_t pid, const cr_pagemap_head *h,
		     const cr_pagemap_entry *pe, size_t n, fp_error *err);
int cr_read_pagemap(int dirfd, uint32_t pid, cr_pagemap_head *h, cr_pagemap_entry **pe,
		    size_t *n, fp_error *err);
/* pagemap-shmem-<shmid>.img: the same layout for a shared memory object
 * (shared anonymous memory, memfd, SysV); vaddr is the byte offset in it. */
int cr_write_pagemap_shmem(int dirfd, uint64_t shmid, const cr_pagemap_head *h,
			   const cr_pagemap_entry *pe, size_t n, fp_error *err);
int cr_read_pagemap_shmem(int dirfd, uint64_t shmid, cr_pagemap_head *h, cr_pagemap_entry **pe,
			  size_t *n, fp_error *err);
/* Pages that a pages-<id>.img must hold for these entries (PE_PRESENT ones);
 * -1 on overflow. */
int cr_pagemap_present_pages(const cr_pagemap_entry *pe, size_t n, uint64_t *pages,
			     fp_error *err);

int cr_write_files(int dirfd, const cr_file *f, size_t n, fp_error *err);
int cr_read_files(int dirfd, cr_file **f, size_t *n, fp_error *err);

int cr_write_fdinfo(int dirfd, uint32_t files_id, const cr_fdinfo *fi, size_t n,
		    fp_error *err);
int cr_read_fdinfo(int dirfd, uint32_t files_id, cr_fdinfo **fi, size_t *n, fp_error *err);

int cr_write_fs(int dirfd, uint32_t pid, const cr_fs *fs, fp_error *err);
int cr_read_fs(int dirfd, uint32_t pid, cr_fs *fs, fp_error *err);

/* pipes-data.img: each entry followed by its `bytes` of data (from ->data);
 * entries marked fifo go to fifo-data.img. */
int cr_write_pipes_data(int dirfd, const cr_pipe_data *pd, size_t n, fp_error *err);
int cr_read_pipes_data(int dirfd, cr_pipe_data **pd, size_t *n, fp_error *err);
/* fifo-data.img: the same for named FIFOs (pd[i].fifo); cr_write_pipes_data
 * writes the entries marked fifo there. */
int cr_read_fifo_data(int dirfd, cr_pipe_data **pd, size_t *n, fp_error *err);
void cr_free_pipes_data(cr_pipe_data *pd, size_t n);
/* sk-queues.img: every socket's queued messages, each entry followed by
 * its bytes. Reading a missing file is an error with errnum ENOENT. */
int cr_write_sk_queues(int dirfd, const cr_sk_packet *pk, size_t n, fp_error *err);
int cr_read_sk_queues(int dirfd, cr_sk_packet **pk, size_t *n, fp_error *err);
void cr_free_sk_queues(cr_sk_packet *pk, size_t n);
/* tcp-stream-<ino in hex>.img with its queues; a missing one fails with
 * errnum ENOENT. The read checks the queues' lengths against the file. */
int cr_write_tcp_stream(int dirfd, uint32_t ino, const cr_tcp_stream *t, fp_error *err);
int cr_read_tcp_stream(int dirfd, uint32_t ino, cr_tcp_stream *t, fp_error *err);
/* Whether image directory dir holds a tcp-stream image (a dump made with
 * --tcp-established that found established connections). */
bool cr_has_tcp_streams(const char *dir);

int cr_write_timens(int dirfd, uint32_t id, const cr_timens *t, fp_error *err);
int cr_read_timens(int dirfd, uint32_t id, cr_timens *t, fp_error *err);

int cr_write_seccomp(int dirfd, const cr_seccomp *s, fp_error *err);
int cr_read_seccomp(int dirfd, cr_seccomp *s, fp_error *err);

/* memfd.img: one memfd_inode_entry per memfd (FileEntries name them by
 * inode_id). */
int cr_write_memfd_inodes(int dirfd, const cr_memfd_inode *m, size_t n, fp_error *err);
int cr_read_memfd_inodes(int dirfd, cr_memfd_inode **m, size_t *n, fp_error *err);

int cr_write_tty_info(int dirfd, const cr_tty_info *t, size_t n, fp_error *err);
int cr_read_tty_info(int dirfd, cr_tty_info **t, size_t *n, fp_error *err);
/* remap-fpath.img; reading a directory without one gives none. */
int cr_write_remaps(int dirfd, const cr_remap_fpath *r, size_t n, fp_error *err);
int cr_read_remaps(int dirfd, cr_remap_fpath **r, size_t *n, fp_error *err);
/* ghost-file-<id>.img with the file's size bytes of data (written whole, no
 * chunks). Reading takes both layouts and gives the contents with holes as
 * zeros in *data (malloc'd, g->size bytes; at most max_size). */
int cr_write_ghost(int dirfd, uint32_t id, const cr_ghost_file *g, const void *data, fp_error *err);
int cr_read_ghost(int dirfd, uint32_t id, uint64_t max_size, cr_ghost_file *g, uint8_t **data, fp_error *err);
/* filelocks.img; reading a directory without one gives no locks. */
int cr_write_file_locks(int dirfd, const cr_file_lock *l, size_t n, fp_error *err);
int cr_read_file_locks(int dirfd, cr_file_lock **l, size_t *n, fp_error *err);

#endif
