/* libFuzzer target: the image decoders and the page store reader, through
 * the entry points the restorer and the verifier use (images/criu_io.h,
 * images/pagestore.h, images/pagestore_chain.h, images/img_verify.h), never
 * the wire coding underneath, so it keeps working whatever decodes the
 * messages.
 *
 * An input is a small image directory: records of
 *     u8 name_len, name, u32 data_len (little-endian), data
 * each written as one file of a private directory (names limited to
 * [a-z0-9.-], no leading dot: nothing leaves the directory). Then the
 * directory is read as a restore reads it: inventory, pstree, and for each
 * process its ids, core, mm, fs, pagemap and pages (every page through the
 * chain reader, decoded and checksummed), its fds; the files, pipes, FIFOs,
 * memfds, terminals, remaps, ghost files and locks; and the whole directory
 * against its manifest. tests/fuzz/mkseeds.py makes inputs from real dumps.
 *
 * Decoders may refuse anything; they must not crash, leak, read out of
 * bounds, hang or allocate without bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/img_verify.h"
#include "images/pagestore.h"
#include "images/pagestore_chain.h"

#define MAX_PROCS 4
#define MAX_GHOST (1u << 20)

static int g_dirfd = -1;
static char g_dir[64];

static void cleanup_dir(void)
{
	if (g_dirfd < 0)
		return;
	DIR *d = fdopendir(dup(g_dirfd));
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(g_dirfd, de->d_name, 0);
		closedir(d);
	}
}

static void at_exit(void)
{
	cleanup_dir();
	if (g_dirfd >= 0)
		close(g_dirfd);
	rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* tmpfs when there is one: every input is written as files. libFuzzer
	 * may end without atexit handlers: FP_FUZZ_TMP is a directory the
	 * caller removes. */
	const char *base = getenv("FP_FUZZ_TMP");
	if (!base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(g_dir, sizeof(g_dir), "%.40s/fp-fuzz-XXXXXX", base);
	if (!mkdtemp(g_dir) || (g_dirfd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror("fuzz_images: private directory");
		exit(1);
	}
	atexit(at_exit);
	return 0;
}

static int name_ok(const uint8_t *n, size_t len)
{
	if (!len || len > 64 || n[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '.' || n[i] == '-'))
			return 0;
	return 1;
}

/* Writes the records as files; stops at the first malformed one. */
static void unpack(const uint8_t *p, size_t len)
{
	while (len >= 1) {
		size_t nl = p[0];
		if (len < 1 + nl + 4)
			return;
		const uint8_t *name = p + 1;
		uint32_t dl;
		memcpy(&dl, p + 1 + nl, 4);
		p += 1 + nl + 4;
		len -= 1 + nl + 4;
		if (dl > len)
			dl = (uint32_t)len;
		if (name_ok(name, nl)) {
			char fn[65];
			memcpy(fn, name, nl);
			fn[nl] = 0;
			int fd = openat(g_dirfd, fn, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd >= 0) {
				if (dl && write(fd, p, dl) != (ssize_t)dl) {
					close(fd);
					return;
				}
				close(fd);
			}
		}
		p += dl;
		len -= dl;
	}
}

static void read_pages(uint32_t pid)
{
	fp_error err;
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t npe = 0;
	if (cr_read_pagemap(g_dirfd, pid, &h, &pe, &npe, &err) < 0)
		return;
	uint64_t want = 0;
	cr_pagemap_present_pages(pe, npe, &want, &err);
	pgs_reader *r = NULL;
	cr_pagemap_entry *flat = NULL;
	size_t nflat = 0;
	if (pgs_chain_open(g_dirfd, pid, h.pages_id, pe, npe, &flat, &nflat, &r, &err) == 0 && r) {
		static uint8_t buf[16 * PGS_PAGE_SIZE];
		uint64_t total = pgs_total_pages(r);
		for (uint64_t i = 0; i < total && i < 4096; i += 16) {
			uint64_t n = total - i < 16 ? total - i : 16;
			if (pgs_read(r, i, n, buf, &err) < 0)
				break;
		}
		pgs_close(r);
		free(flat);
	}
	r = pgs_open(g_dirfd, h.pages_id, &err);
	if (r) {
		const void *pages;
		uint64_t first, n;
		while (pgs_next(r, &pages, &first, &n, &err) > 0)
			;
		for (size_t i = 0; i < pgs_chunk_count(r) && i < 64; i++)
			if (pgs_chunk(r, i, &pages, &first, &n, &err) < 0)
				break;
		pgs_close(r);
	}
	pgs_verify(g_dirfd, h.pages_id, &err);
	free(pe);
}

static void read_proc(uint32_t pid, uint32_t tid)
{
	fp_error err;
	cr_core core;
	memset(&core, 0, sizeof(core));
	if (cr_read_core(g_dirfd, tid, &core, &err) == 0)
		cr_core_free(&core);
	if (tid != pid)
		return;
	cr_ids ids;
	if (cr_read_ids(g_dirfd, pid, &ids, &err) == 0) {
		cr_fdinfo *fi = NULL;
		size_t n = 0;
		if (cr_read_fdinfo(g_dirfd, ids.files_id, &fi, &n, &err) == 0)
			cr_free_array(&cr_fdinfo_desc, fi, n);
	}
	cr_mm mm;
	memset(&mm, 0, sizeof(mm));
	if (cr_read_mm(g_dirfd, pid, &mm, &err) == 0)
		cr_mm_free(&mm);
	cr_fs fs;
	cr_read_fs(g_dirfd, pid, &fs, &err);
	cr_timens tn;
	cr_read_timens(g_dirfd, pid, &tn, &err);
	read_pages(pid);
}

static void read_shared(void)
{
	fp_error err;
	size_t n = 0;
	cr_file *f = NULL;
	if (cr_read_files(g_dirfd, &f, &n, &err) == 0)
		cr_free_array(&cr_file_desc, f, n);
	cr_pipe_data *pd = NULL;
	if (cr_read_pipes_data(g_dirfd, &pd, &n, &err) == 0)
		cr_free_pipes_data(pd, n);
	pd = NULL;
	if (cr_read_fifo_data(g_dirfd, &pd, &n, &err) == 0)
		cr_free_pipes_data(pd, n);
	cr_memfd_inode *m = NULL;
	if (cr_read_memfd_inodes(g_dirfd, &m, &n, &err) == 0)
		cr_free_array(&cr_memfd_inode_desc, m, n);
	cr_tty_info *t = NULL;
	if (cr_read_tty_info(g_dirfd, &t, &n, &err) == 0)
		cr_free_array(&cr_tty_info_desc, t, n);
	cr_remap_fpath *rm = NULL;
	if (cr_read_remaps(g_dirfd, &rm, &n, &err) == 0)
		cr_free_array(&cr_remap_fpath_desc, rm, n);
	cr_file_lock *l = NULL;
	if (cr_read_file_locks(g_dirfd, &l, &n, &err) == 0)
		cr_free_array(&cr_file_lock_desc, l, n);
	for (uint32_t id = 0; id < 4; id++) {
		cr_ghost_file g;
		uint8_t *data = NULL;
		if (cr_read_ghost(g_dirfd, id, MAX_GHOST, &g, &data, &err) == 0)
			free(data);
	}
	cr_seccomp sc;
	memset(&sc, 0, sizeof(sc));
	if (cr_read_seccomp(g_dirfd, &sc, &err) == 0)
		cr_seccomp_free(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cleanup_dir();
	unpack(data, size);
	fp_error err;
	cr_inventory inv;
	memset(&inv, 0, sizeof(inv));
	if (cr_read_inventory(g_dirfd, &inv, &err) == 0)
		cr_inventory_free(&inv);
	cr_pstree *ps = NULL;
	size_t nps = 0;
	if (cr_read_pstree(g_dirfd, &ps, &nps, &err) == 0) {
		for (size_t i = 0; i < nps && i < MAX_PROCS; i++)
			for (size_t t = 0; t < ps[i].n_threads && t < 4; t++)
				read_proc(ps[i].pid, ps[i].threads[t]);
		cr_free_array(&cr_pstree_desc, ps, nps);
	}
	read_shared();
	struct img_verify_info vi;
	img_verify(g_dirfd, g_dir, IMG_VERIFY_FULL, &vi, &err);
	return 0;
}
