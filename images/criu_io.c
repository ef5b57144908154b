#include "images/criu_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cr_write_one(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d,
		 const void *msg, fp_error *err)
{
	cr_imgw w;
	cr_imgw_init(&w, name, magic);
	cr_imgw_msg(&w, d, msg);
	return cr_imgw_commit(&w, dirfd, err);
}

/* The image's first entry decoded into msg: 0, or -1 with err (a missing
 * one is a truncated image). */
static int read_first(cr_img *img, const char *name, const pb_mdesc *d, void *msg, fp_error *err)
{
	const uint8_t *m;
	size_t len;
	int rc = cr_img_next(img, &m, &len, err);
	if (rc == 0)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL, "%s: no %s entry after the magic (truncated image)", name,
				    d->name);
	return rc < 0 ? -1 : pb_decode(d, msg, m, len, img->where, err);
}

int cr_read_one(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d, void *msg,
		fp_error *err)
{
	memset(msg, 0, d->size);
	cr_img img;
	if (cr_img_open(&img, dirfd, name, magic, err) < 0)
		return -1;
	const uint8_t *m;
	size_t len;
	int rc = read_first(&img, name, d, msg, err);
	if (rc == 0) {
		/* single-entry images: trailing data means corruption */
		if (cr_img_next(&img, &m, &len, err) != 0) {
			pb_free(d, msg);
			rc = fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
					  "%s: unexpected data after its single %s entry (corrupt "
					  "image)",
					  name, d->name);
		}
	}
	cr_img_close(&img);
	return rc < 0 ? -1 : 0;
}

int cr_write_array(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d,
		   const void *arr, size_t n, fp_error *err)
{
	cr_imgw w;
	cr_imgw_init(&w, name, magic);
	for (size_t i = 0; i < n; i++)
		cr_imgw_msg(&w, d, (const char *)arr + i * d->size);
	return cr_imgw_commit(&w, dirfd, err);
}

void cr_free_array(const pb_mdesc *d, void *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++)
		pb_free(d, (char *)arr + i * d->size);
	free(arr);
}

static void *grow(void *arr, size_t n, size_t es)
{
	if (n && (n & (n - 1)))
		return arr;
	size_t cap = n ? 2 * n : 8;
	if (cap > SIZE_MAX / es)
		return NULL;
	return realloc(arr, cap * es);
}

int cr_read_array(int dirfd, const char *name, uint32_t magic, const pb_mdesc *d, void **arrp,
		  size_t *np, fp_error *err)
{
	*arrp = NULL;
	*np = 0;
	cr_img img;
	if (cr_img_open(&img, dirfd, name, magic, err) < 0)
		return -1;
	char *arr = NULL;
	size_t n = 0;
	const uint8_t *m;
	size_t len;
	int rc;
	while ((rc = cr_img_next(&img, &m, &len, err)) > 0) {
		char *a = grow(arr, n, d->size);
		if (!a) {
			rc = fp_fail(err, ENOMEM, "%s: out of memory", name);
			break;
		}
		arr = a;
		if (pb_decode(d, arr + n * d->size, m, len, img.where, err) < 0) {
			rc = -1;
			break;
		}
		n++;
	}
	cr_img_close(&img);
	if (rc < 0) {
		cr_free_array(d, arr, n);
		return -1;
	}
	*arrp = arr;
	*np = n;
	return 0;
}

static const char *fname(char *buf, size_t len, const char *fmt, uint32_t id)
{
	snprintf(buf, len, fmt, id);
	return buf;
}

/* Images that are one message per process (or per id), named by a pattern
 * of the id: their write and read differ only in name, magic and type. */
#define CR_IO_PER_ID(kind, ctype, pattern, magic)                                                  \
	int cr_write_##kind(int dirfd, uint32_t id, const ctype *m, fp_error *err)                  \
	{                                                                                           \
		char b[64];                                                                         \
		return cr_write_one(dirfd, fname(b, sizeof(b), pattern, id), magic, &ctype##_desc, m, \
				    err);                                                           \
	}                                                                                           \
	int cr_read_##kind(int dirfd, uint32_t id, ctype *m, fp_error *err)                         \
	{                                                                                           \
		char b[64];                                                                         \
		return cr_read_one(dirfd, fname(b, sizeof(b), pattern, id), magic, &ctype##_desc, m, \
				   err);                                                            \
	}

CR_IO_PER_ID(ids, cr_ids, "ids-%u.img", CR_IDS_MAGIC)
CR_IO_PER_ID(core, cr_core, "core-%u.img", CR_CORE_MAGIC)
CR_IO_PER_ID(mm, cr_mm, "mm-%u.img", CR_MM_MAGIC)
CR_IO_PER_ID(fs, cr_fs, "fs-%u.img", CR_FS_MAGIC)
CR_IO_PER_ID(timens, cr_timens, "timens-%u.img", CR_TIMENS_MAGIC)

/* Images that are an array of one message type. An optional one that is
 * absent reads as empty (images of older writers have no such file). */
#define CR_IO_ARRAY(kind, ctype, file, magic, optional)                                             \
	int cr_write_##kind(int dirfd, const ctype *a, size_t n, fp_error *err)                     \
	{                                                                                           \
		return cr_write_array(dirfd, file, magic, &ctype##_desc, a, n, err);                \
	}                                                                                           \
	int cr_read_##kind(int dirfd, ctype **a, size_t *n, fp_error *err)                          \
	{                                                                                           \
		if ((optional) && faccessat(dirfd, file, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) { \
			*a = NULL;                                                                  \
			*n = 0;                                                                     \
			return 0;                                                                   \
		}                                                                                   \
		return cr_read_array(dirfd, file, magic, &ctype##_desc, (void **)a, n, err);        \
	}

CR_IO_ARRAY(pstree, cr_pstree, "pstree.img", CR_PSTREE_MAGIC, 0)
CR_IO_ARRAY(files, cr_file, "files.img", CR_FILES_MAGIC, 0)
CR_IO_ARRAY(memfd_inodes, cr_memfd_inode, "memfd.img", CR_MEMFD_INODE_MAGIC, 0)
CR_IO_ARRAY(tty_info, cr_tty_info, "tty-info.img", CR_TTY_INFO_MAGIC, 0)
CR_IO_ARRAY(file_locks, cr_file_lock, "filelocks.img", CR_FILE_LOCKS_MAGIC, 1)
CR_IO_ARRAY(remaps, cr_remap_fpath, "remap-fpath.img", CR_REMAP_FPATH_MAGIC, 1)

int cr_write_inventory(int dirfd, const cr_inventory *inv, fp_error *err)
{
	return cr_write_one(dirfd, "inventory.img", CR_INVENTORY_MAGIC, &cr_inventory_desc, inv,
			    err);
}

int cr_read_inventory(int dirfd, cr_inventory *inv, fp_error *err)
{
	if (cr_read_one(dirfd, "inventory.img", CR_INVENTORY_MAGIC, &cr_inventory_desc, inv,
			err) < 0)
		return -1;
	if (inv->img_version != CR_IMG_VERSION) {
		uint32_t v = inv->img_version;
		cr_inventory_free(inv);
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EINVAL,
				    "inventory.img: image version %u is not supported (only %d, "
				    "CRIU 3.x/4.x images)",
				    v, CR_IMG_VERSION);
	}
	return 0;
}

static int write_pagemap_named(int dirfd, const char *name, const cr_pagemap_head *h,
			       const cr_pagemap_entry *pe, size_t n, fp_error *err)
{
	cr_imgw w;
	cr_imgw_init(&w, name, CR_PAGEMAP_MAGIC);
	cr_imgw_msg(&w, &cr_pagemap_head_desc, h);
	for (size_t i = 0; i < n; i++)
		cr_imgw_msg(&w, &cr_pagemap_entry_desc, &pe[i]);
	return cr_imgw_commit(&w, dirfd, err);
}

int cr_write_pagemap(int dirfd, uint32_t pid, const cr_pagemap_head *h,
		     const cr_pagemap_entry *pe, size_t n, fp_error *err)
{
	char b[64];
	return write_pagemap_named(dirfd, fname(b, sizeof(b), "pagemap-%u.img", pid), h, pe, n, err);
}

int cr_write_pagemap_shmem(int dirfd, uint64_t shmid, const cr_pagemap_head *h,
			   const cr_pagemap_entry *pe, size_t n, fp_error *err)
{
	char b[64];
	snprintf(b, sizeof(b), "pagemap-shmem-%llu.img", (unsigned long long)shmid);
	return write_pagemap_named(dirfd, b, h, pe, n, err);
}

static int read_pagemap_named(int dirfd, const char *name, cr_pagemap_head *h, cr_pagemap_entry **pep,
			      size_t *np, fp_error *err)
{
	*pep = NULL;
	*np = 0;
	memset(h, 0, sizeof(*h));
	cr_img img;
	if (cr_img_open(&img, dirfd, name, CR_PAGEMAP_MAGIC, err) < 0)
		return -1;
	const uint8_t *m;
	size_t len;
	int rc = read_first(&img, name, &cr_pagemap_head_desc, h, err);
	cr_pagemap_entry *pe = NULL;
	size_t n = 0;
	uint64_t next_free = 0;
	while (rc >= 0 && (rc = cr_img_next(&img, &m, &len, err)) > 0) {
		cr_pagemap_entry *a = grow(pe, n, sizeof(*pe));
		if (!a) {
			rc = fp_fail(err, ENOMEM, "%s: out of memory", name);
			break;
		}
		pe = a;
		if (pb_decode(&cr_pagemap_entry_desc, &pe[n], m, len, img.where, err) < 0) {
			rc = -1;
			break;
		}
		const cr_pagemap_entry *e = &pe[n];
		if (e->vaddr % CR_PAGE_SIZE || e->nr_pages == 0 ||
		    e->nr_pages > (UINT64_MAX - e->vaddr) / CR_PAGE_SIZE) {
			rc = fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
					  "%s: vaddr 0x%llx with %llu pages is not a valid page "
					  "range (corrupt image)",
					  img.where, (unsigned long long)e->vaddr,
					  (unsigned long long)e->nr_pages);
			break;
		}
		if (e->vaddr < next_free) {
			rc = fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
					  "%s: vaddr 0x%llx overlaps or precedes the previous "
					  "entry (entries must be ascending; corrupt image)",
					  img.where, (unsigned long long)e->vaddr);
			break;
		}
		next_free = e->vaddr + e->nr_pages * CR_PAGE_SIZE;
		n++;
	}
	cr_img_close(&img);
	if (rc < 0) {
		free(pe);
		return -1;
	}
	*pep = pe;
	*np = n;
	return 0;
}

int cr_read_pagemap(int dirfd, uint32_t pid, cr_pagemap_head *h, cr_pagemap_entry **pep,
		    size_t *np, fp_error *err)
{
	char name[64];
	return read_pagemap_named(dirfd, fname(name, sizeof(name), "pagemap-%u.img", pid), h, pep, np, err);
}

int cr_read_pagemap_shmem(int dirfd, uint64_t shmid, cr_pagemap_head *h, cr_pagemap_entry **pep,
			  size_t *np, fp_error *err)
{
	char name[64];
	snprintf(name, sizeof(name), "pagemap-shmem-%llu.img", (unsigned long long)shmid);
	return read_pagemap_named(dirfd, name, h, pep, np, err);
}

int cr_pagemap_present_pages(const cr_pagemap_entry *pe, size_t n, uint64_t *pages,
			     fp_error *err)
{
	uint64_t t = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(cr_pagemap_flags(&pe[i]) & CR_PE_PRESENT))
			continue;
		if (pe[i].nr_pages > UINT64_MAX / CR_PAGE_SIZE - t)
			return fp_fail(err, EOVERFLOW, "pagemap: page count overflows");
		t += pe[i].nr_pages;
	}
	*pages = t;
	return 0;
}

int cr_write_fdinfo(int dirfd, uint32_t files_id, const cr_fdinfo *fi, size_t n,
		    fp_error *err)
{
	char b[64];
	return cr_write_array(dirfd, fname(b, sizeof(b), "fdinfo-%u.img", files_id),
			      CR_FDINFO_MAGIC, &cr_fdinfo_desc, fi, n, err);
}

int cr_read_fdinfo(int dirfd, uint32_t files_id, cr_fdinfo **fi, size_t *n, fp_error *err)
{
	char b[64];
	return cr_read_array(dirfd, fname(b, sizeof(b), "fdinfo-%u.img", files_id),
			     CR_FDINFO_MAGIC, &cr_fdinfo_desc, (void **)fi, n, err);
}

/* pipes-data.img and fifo-data.img: the same entries, each followed by its
 * bytes. Only entries whose `fifo` matches go into the file. */
static int write_queued(int dirfd, const char *name, uint32_t magic, bool fifo, const cr_pipe_data *pd,
			size_t n, fp_error *err)
{
	cr_imgw w;
	cr_imgw_init(&w, name, magic);
	for (size_t i = 0; i < n; i++) {
		if (pd[i].fifo != fifo)
			continue;
		if (pd[i].bytes && !pd[i].data) {
			cr_imgw_free(&w);
			return fp_fail(err, EINVAL, "%s: entry %zu (pipe %u) has %u bytes but no data", name, i,
				       pd[i].pipe_id, pd[i].bytes);
		}
		cr_imgw_msg(&w, &cr_pipe_data_desc, &pd[i]);
		cr_imgw_raw(&w, pd[i].data, pd[i].bytes);
	}
	return cr_imgw_commit(&w, dirfd, err);
}

int cr_write_pipes_data(int dirfd, const cr_pipe_data *pd, size_t n, fp_error *err)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += pd[i].fifo;
	if (k < n && write_queued(dirfd, "pipes-data.img", CR_PIPES_DATA_MAGIC, false, pd, n, err))
		return -1;
	return k ? write_queued(dirfd, "fifo-data.img", CR_FIFO_DATA_MAGIC, true, pd, n, err) : 0;
}

void cr_free_pipes_data(cr_pipe_data *pd, size_t n)
{
	for (size_t i = 0; pd && i < n; i++)
		cr_pipe_data_free(&pd[i]);
	free(pd);
}

/* Images whose entries are each followed by a payload (pipes-data,
 * fifo-data, sk-queues): es-byte messages of desc d, the payload's length
 * in the uint32_t at len_off and its copy kept in the uint8_t * at
 * data_off. On failure what was read is given to free_all. */
struct payload_layout {
	const pb_mdesc *d;
	size_t es, len_off, data_off;
	void (*free_all)(void *arr, size_t n);
};

static int read_with_payloads(int dirfd, const char *name, uint32_t magic, const struct payload_layout *l,
			      void **arrp, size_t *np, fp_error *err)
{
	*arrp = NULL;
	*np = 0;
	cr_img img;
	if (cr_img_open(&img, dirfd, name, magic, err) < 0)
		return -1;
	uint8_t *arr = NULL;
	size_t n = 0, len;
	const uint8_t *m, *payload;
	int rc;
	while ((rc = cr_img_next(&img, &m, &len, err)) > 0) {
		uint8_t *a = grow(arr, n, l->es);
		if (!a) {
			rc = fp_fail(err, ENOMEM, "%s: out of memory", name);
			break;
		}
		arr = a;
		uint8_t *e = arr + n * l->es;
		if (pb_decode(l->d, e, m, len, img.where, err) < 0) {
			rc = -1;
			break;
		}
		n++;
		uint32_t bytes;
		memcpy(&bytes, e + l->len_off, sizeof(bytes));
		if (cr_img_payload(&img, bytes, &payload, err) < 0) {
			rc = -1;
			break;
		}
		uint8_t *data = malloc(bytes ? bytes : 1);
		if (!data) {
			rc = fp_fail(err, ENOMEM, "%s: out of memory", name);
			break;
		}
		memcpy(data, payload, bytes);
		memcpy(e + l->data_off, &data, sizeof(data));
	}
	cr_img_close(&img);
	if (rc < 0) {
		l->free_all(arr, n);
		return -1;
	}
	*arrp = arr;
	*np = n;
	return 0;
}

static void free_pipes_data(void *arr, size_t n)
{
	cr_free_pipes_data(arr, n);
}

static int read_queued(int dirfd, const char *name, uint32_t magic, bool fifo, cr_pipe_data **pdp, size_t *np,
		       fp_error *err)
{
	static const struct payload_layout pipes = {
		&cr_pipe_data_desc, sizeof(cr_pipe_data), offsetof(cr_pipe_data, bytes), offsetof(cr_pipe_data, data),
		free_pipes_data,
	};
	void *arr;
	if (read_with_payloads(dirfd, name, magic, &pipes, &arr, np, err) < 0)
		return -1;
	*pdp = arr;
	for (size_t i = 0; i < *np; i++)
		(*pdp)[i].fifo = fifo;
	return 0;
}

int cr_read_pipes_data(int dirfd, cr_pipe_data **pd, size_t *n, fp_error *err)
{
	return read_queued(dirfd, "pipes-data.img", CR_PIPES_DATA_MAGIC, false, pd, n, err);
}

int cr_read_fifo_data(int dirfd, cr_pipe_data **pd, size_t *n, fp_error *err)
{
	return read_queued(dirfd, "fifo-data.img", CR_FIFO_DATA_MAGIC, true, pd, n, err);
}

int cr_write_sk_queues(int dirfd, const cr_sk_packet *pk, size_t n, fp_error *err)
{
	cr_imgw w;
	cr_imgw_init(&w, "sk-queues.img", CR_SK_QUEUES_MAGIC);
	for (size_t i = 0; i < n; i++) {
		cr_imgw_msg(&w, &cr_sk_packet_desc, &pk[i]);
		cr_imgw_raw(&w, pk[i].data, pk[i].length);
	}
	return cr_imgw_commit(&w, dirfd, err);
}

void cr_free_sk_queues(cr_sk_packet *pk, size_t n)
{
	for (size_t i = 0; pk && i < n; i++)
		cr_sk_packet_free(&pk[i]);
	free(pk);
}

static void free_sk_queues(void *arr, size_t n)
{
	cr_free_sk_queues(arr, n);
}

int cr_read_sk_queues(int dirfd, cr_sk_packet **pkp, size_t *np, fp_error *err)
{
	static const struct payload_layout packets = {
		&cr_sk_packet_desc, sizeof(cr_sk_packet), offsetof(cr_sk_packet, length), offsetof(cr_sk_packet, data),
		free_sk_queues,
	};
	void *arr;
	if (read_with_payloads(dirfd, "sk-queues.img", CR_SK_QUEUES_MAGIC, &packets, &arr, np, err) < 0) {
		*pkp = NULL;
		return -1;
	}
	*pkp = arr;
	return 0;
}

int cr_write_seccomp(int dirfd, const cr_seccomp *s, fp_error *err)
{
	return cr_write_one(dirfd, "seccomp.img", CR_SECCOMP_MAGIC, &cr_seccomp_desc, s, err);
}

int cr_read_seccomp(int dirfd, cr_seccomp *s, fp_error *err)
{
	return cr_read_one(dirfd, "seccomp.img", CR_SECCOMP_MAGIC, &cr_seccomp_desc, s, err);
}

int cr_write_ghost(int dirfd, uint32_t id, const cr_ghost_file *g, const void *data, fp_error *err)
{
	char b[64];
	cr_imgw w;
	cr_imgw_init(&w, fname(b, sizeof(b), "ghost-file-%x.img", id), CR_GHOST_FILE_MAGIC);
	cr_imgw_msg(&w, &cr_ghost_file_desc, g);
	cr_imgw_raw(&w, data, g->size);
	return cr_imgw_commit(&w, dirfd, err);
}

int cr_read_ghost(int dirfd, uint32_t id, uint64_t max_size, cr_ghost_file *g, uint8_t **data, fp_error *err)
{
	char b[64];
	cr_img img;
	*data = NULL;
	memset(g, 0, sizeof(*g));
	if (cr_img_open(&img, dirfd, fname(b, sizeof(b), "ghost-file-%x.img", id), CR_GHOST_FILE_MAGIC, err) < 0)
		return -1;
	const uint8_t *m, *p;
	size_t len;
	int rc = cr_img_next(&img, &m, &len, err);
	if (rc == 0)
		rc = fp_fail(err, EINVAL, "%s has no entry", img.name);
	if (rc > 0)
		rc = pb_decode(&cr_ghost_file_desc, g, m, len, img.where, err);
	/* Without chunks the bytes run to the end of the file. */
	uint64_t size = g->has_size ? g->size : g->chunks ? 0 : img.size - img.off;
	if (rc >= 0 && size > max_size)
		rc = fp_fail(err, EFBIG, "%s holds a %llu-byte file, more than the %llu this restore accepts", img.name,
			     (unsigned long long)size, (unsigned long long)max_size);
	if (rc >= 0 && !(*data = calloc(1, size ? size : 1)))
		rc = fp_fail(err, ENOMEM, "%s: out of memory", img.name);
	if (rc >= 0 && !g->chunks) {
		if (cr_img_payload(&img, size, &p, err) < 0)
			rc = -1;
		else
			memcpy(*data, p, size);
	}
	while (rc >= 0 && g->chunks && (rc = cr_img_next(&img, &m, &len, err)) > 0) {
		cr_ghost_chunk ch;
		if (pb_decode(&cr_ghost_chunk_desc, &ch, m, len, img.where, err) < 0 ||
		    cr_img_payload(&img, ch.len, &p, err) < 0)
			rc = -1;
		else if (ch.off > size || ch.len > size - ch.off)
			rc = fp_fail(err, EINVAL, "%s: a chunk at %llu (%llu bytes) lies past the file's %llu bytes",
				     img.name, (unsigned long long)ch.off, (unsigned long long)ch.len,
				     (unsigned long long)size);
		else
			memcpy(*data + ch.off, p, ch.len);
	}
	cr_img_close(&img);
	if (rc < 0) {
		free(*data);
		*data = NULL;
		return -1;
	}
	g->size = size;
	g->has_size = true;
	return 0;
}

int cr_write_tcp_stream(int dirfd, uint32_t ino, const cr_tcp_stream *t, fp_error *err)
{
	char b[64];
	if ((t->inq_len && !t->inq) || (t->outq_len && !t->outq))
		return fp_fail(err, EINVAL, "tcp stream %x: %u+%u queued bytes but no data", ino, t->inq_len, t->outq_len);
	cr_imgw w;
	cr_imgw_init(&w, fname(b, sizeof(b), "tcp-stream-%x.img", ino), CR_TCP_STREAM_MAGIC);
	cr_imgw_msg(&w, &cr_tcp_stream_desc, t);
	cr_imgw_raw(&w, t->inq, t->inq_len);
	cr_imgw_raw(&w, t->outq, t->outq_len);
	return cr_imgw_commit(&w, dirfd, err);
}

int cr_read_tcp_stream(int dirfd, uint32_t ino, cr_tcp_stream *t, fp_error *err)
{
	char b[64];
	memset(t, 0, sizeof(*t));
	cr_img img;
	if (cr_img_open(&img, dirfd, fname(b, sizeof(b), "tcp-stream-%x.img", ino), CR_TCP_STREAM_MAGIC, err) < 0)
		return -1;
	const uint8_t *p;
	int rc = read_first(&img, img.name, &cr_tcp_stream_desc, t, err);
	if (rc == 0 && t->has_unsq_len && t->unsq_len > t->outq_len)
		rc = fp_fail(err, EINVAL, "%s: %u unsent bytes of a %u-byte send queue (corrupt image)", img.name,
			     t->unsq_len, t->outq_len);
	if (rc == 0 && t->has_fp_urg_off && t->fp_urg_off >= t->inq_len)
		rc = fp_fail(err, EINVAL, "%s: an urgent byte at %u of a %u-byte receive queue (corrupt image)", img.name,
			     t->fp_urg_off, t->inq_len);
	if (rc == 0 && t->has_fp_snd_urg_off && t->fp_snd_urg_off >= t->outq_len)
		rc = fp_fail(err, EINVAL, "%s: an urgent byte at %u of a %u-byte send queue (corrupt image)", img.name,
			     t->fp_snd_urg_off, t->outq_len);
	if (rc == 0 && (!(t->inq = malloc((size_t)t->inq_len + 1)) || !(t->outq = malloc((size_t)t->outq_len + 1))))
		rc = fp_fail(err, ENOMEM, "%s: out of memory", img.name);
	if (rc == 0 && cr_img_payload(&img, t->inq_len, &p, err) == 0)
		memcpy(t->inq, p, t->inq_len);
	else if (rc == 0)
		rc = -1;
	if (rc == 0 && cr_img_payload(&img, t->outq_len, &p, err) == 0)
		memcpy(t->outq, p, t->outq_len);
	else if (rc == 0)
		rc = -1;
	cr_img_close(&img);
	if (rc < 0)
		cr_tcp_stream_free(t);
	return rc < 0 ? -1 : 0;
}

bool cr_has_tcp_streams(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d)))
		found = !strncmp(e->d_name, "tcp-stream-", 11);
	if (d)
		closedir(d);
	return found;
}
