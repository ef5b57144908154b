/* The address space: every VMA of the image mapped at its address, the page
 * data written into it, the kernel's vDSO moved to where the image had it,
 * and at the end the mm fields (brk, arg/env, auxv, exe) set in one
 * PR_SET_MM_MAP. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"

#define IOV_BATCH 1024

static bool skip_vma(const cr_vma *v)
{
	return (v->status & (CR_VMA_AREA_VDSO | CR_VMA_AREA_VVAR)) ||
	       ((v->status & CR_VMA_AREA_VSYSCALL) && !(v->status & CR_VMA_AREA_REGULAR));
}

/* Opens a file inside the target; returns its fd there. */
static int remote_open(rst_proc *p, const char *path, int flags, int *fd, fp_error *err)
{
	int64_t r = -1;
	char what[4200];
	snprintf(what, sizeof(what), "opening %s", path);
	if (rst_q_mem(p, p->pid, what, RST_MUST, SYS_openat, (uint64_t)AT_FDCWD, 0, (uint64_t)flags, 0, 0, 0, 1, path,
		      strlen(path) + 1, &r, err) ||
	    rst_flush(p, err))
		return -1;
	*fd = (int)r;
	return 0;
}

struct fdcache {
	uint64_t id;
	int flags;
	int64_t fd;
};

/* Two round trips whatever the number of VMAs: every file the mappings
 * need is opened, then every mmap, madvise and close is queued at once. */
static int map_vmas(rst_proc *p, const bool *has_pages, fp_error *err)
{
	rst_image *im = p->im;
	size_t n = im->mm.n_vmas;
	struct fdcache *fc = calloc(n + 1, sizeof(*fc));
	size_t *fdof = calloc(n + 1, sizeof(*fdof));
	int64_t *got = calloc(n + 1, sizeof(*got));
	size_t nadv_max = 0;
	for (size_t i = 0; i < n; i++)
		nadv_max += im->mm.vmas[i].has_madv ? (size_t)__builtin_popcountll(im->mm.vmas[i].madv) : 0;
	uint64_t *adv = calloc(nadv_max + 1, sizeof(*adv)); /* (vma << 6 | advice) of each madvise */
	int64_t *adv_ret = calloc(nadv_max + 1, sizeof(*adv_ret));
	size_t nfc = 0, nadv = 0;
	int rc = -1;
	if (!fc || !fdof || !got || !adv || !adv_ret) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const cr_vma *v = &im->mm.vmas[i];
		if (v->status & CR_VMA_AREA_SYSVIPC)
			continue; /* attached by id (rst_sysvshm.c) */
		if (!skip_vma(v) && (v->status & (CR_VMA_ANON_SHARED | CR_VMA_AREA_MEMFD))) {
			/* one object for the tree (rst_shmem.c), keyed apart from files */
			uint64_t key = v->shmid | (v->status & CR_VMA_ANON_SHARED ? 1ull << 62 : 1ull << 61);
			size_t k;
			for (k = 0; k < nfc && fc[k].id != key; k++)
				;
			if (k == nfc) {
				fc[nfc].id = key;
				fc[nfc].fd = -1;
				if (rst_shm_map_fd(p, v, &fc[nfc].fd, err))
					goto out;
				nfc++;
			}
			fdof[i] = k;
			continue;
		}
		if (skip_vma(v) || !(v->status & (CR_VMA_FILE_PRIVATE | CR_VMA_FILE_SHARED)))
			continue;
		bool shared = v->status & CR_VMA_FILE_SHARED;
		int oflags = v->has_fdflags ? (int)v->fdflags : shared && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
		oflags = (oflags & (O_ACCMODE | O_LARGEFILE)) | O_CLOEXEC;
		size_t k;
		for (k = 0; k < nfc; k++)
			if (fc[k].id == v->shmid && fc[k].flags == oflags)
				break;
		if (k == nfc) {
			fc[nfc].id = v->shmid;
			fc[nfc].flags = oflags;
			fc[nfc].fd = -1;
			const char *path = rst_reg_path(p, (uint32_t)v->shmid, err); /* a ghost's file first */
			if (!path)
				goto out;
			char what[4200];
			snprintf(what, sizeof(what), "opening %s", path);
			if (rst_q_mem(p, p->pid, what, RST_MUST, SYS_openat, (uint64_t)AT_FDCWD, 0, (uint64_t)oflags, 0, 0, 0, 1,
				      path, strlen(path) + 1, &fc[nfc].fd, err))
				goto out;
			nfc++;
		}
		fdof[i] = k;
	}
	if (rst_flush(p, err))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const cr_vma *v = &im->mm.vmas[i];
		got[i] = (int64_t)v->start;
		if (skip_vma(v))
			continue;
		uint32_t prot = v->prot | (has_pages[i] ? PROT_WRITE : 0);
		uint64_t len = v->end - v->start;
		uint64_t flags = MAP_FIXED | (v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN | MAP_NORESERVE));
		int64_t fd = -1;
		if (v->status & (CR_VMA_FILE_PRIVATE | CR_VMA_FILE_SHARED | CR_VMA_ANON_SHARED))
			fd = fc[fdof[i]].fd;
		else
			flags |= MAP_ANONYMOUS;
		char what[160];
		snprintf(what, sizeof(what), "mapping 0x%llx-0x%llx", (unsigned long long)v->start,
			 (unsigned long long)v->end);
		if (v->status & CR_VMA_AREA_SYSVIPC) {
			if (rst_sysv_attach(p, v, &got[i], err))
				goto out;
		} else if (rst_q(p, p->pid, what, RST_MUST, SYS_mmap, v->start, len, prot, flags, (uint64_t)fd, v->pgoff,
				 &got[i], err)) {
			goto out;
		}
		/* madvise advice kept by the image (bit n = advice n); DONTDUMP and
		 * the like are best effort. */
		for (int a = 0; v->has_madv && a < 64; a++)
			if (v->madv & (1ULL << a)) {
				adv[nadv] = (uint64_t)i << 6 | (uint64_t)a;
				if (rst_q(p, p->pid, NULL, 0, SYS_madvise, v->start, len, (uint64_t)a, 0, 0, 0, &adv_ret[nadv], err))
					goto out;
				nadv++;
			}
	}
	for (size_t k = 0; k < nfc; k++)
		if (rst_q(p, p->pid, NULL, 0, SYS_close, (uint64_t)fc[k].fd, 0, 0, 0, 0, 0, NULL, err))
			goto out;
	if (rst_flush(p, err))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (got[i] != (int64_t)im->mm.vmas[i].start) {
			fp_fail(err, EIO, "mapping 0x%llx-0x%llx: the kernel put it at 0x%llx",
				(unsigned long long)im->mm.vmas[i].start, (unsigned long long)im->mm.vmas[i].end,
				(unsigned long long)got[i]);
			goto out;
		}
	for (size_t k = 0; k < nadv; k++)
		if (adv_ret[k] < 0)
			rst_logf(p->log, 2, "madvise(0x%llx, %d) failed: %s", (unsigned long long)im->mm.vmas[adv[k] >> 6].start,
				 (int)(adv[k] & 63), strerror((int)-adv_ret[k]));
	rc = 0;
out:
	free(fc);
	free(fdof);
	free(got);
	free(adv);
	free(adv_ret);
	return rc;
}

/* Streams the page data into place: pgs_next hands out runs of pages in
 * page-index order, which is pagemap order, so a cursor over the PE_PRESENT
 * entries gives every page its address. */
static int write_pages(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	size_t ei = 0;          /* current pagemap entry */
	uint64_t eoff = 0;      /* pages of it already placed */
	struct iovec *rem = malloc(IOV_BATCH * sizeof(*rem)), *loc = malloc(IOV_BATCH * sizeof(*loc));
	if (!rem || !loc) {
		free(rem);
		free(loc);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	uint64_t done = 0;
	int rc = -1;
	for (;;) {
		const void *pages;
		uint64_t first, n;
		int got = pgs_next(im->pages, &pages, &first, &n, err);
		if (got < 0)
			goto out;
		if (got == 0 || done >= im->present_pages)
			break;
		if (first != done) {
			fp_fail(err, EIO, "internal: page data out of order (%llu, expected %llu)", (unsigned long long)first,
				(unsigned long long)done);
			goto out;
		}
		if (n > im->present_pages - done)
			n = im->present_pages - done; /* extra pages at the end are ignored */
		const char *src = pages;
		uint64_t left = n;
		uint64_t vd_s = 0, vd_e = 0;
		if (im->vdso_vma >= 0)
			vd_s = im->mm.vmas[im->vdso_vma].start, vd_e = im->mm.vmas[im->vdso_vma].end;
		while (left) {
			size_t nr = 0;
			uint64_t bytes = 0;
			while (left && nr < IOV_BATCH) {
				while (ei < im->npe && (!(cr_pagemap_flags(&im->pe[ei]) & CR_PE_PRESENT) ||
							eoff == im->pe[ei].nr_pages)) {
					ei++;
					eoff = 0;
				}
				if (ei == im->npe) {
					fp_fail(err, EIO, "internal: more page data than present pagemap entries");
					goto out;
				}
				uint64_t take = im->pe[ei].nr_pages - eoff;
				if (take > left)
					take = left;
				uint64_t addr = im->pe[ei].vaddr + eoff * CR_PAGE_SIZE;
				/* the vDSO is the kernel's live one now (checked equal) */
				if (!(addr >= vd_s && addr < vd_e)) {
					loc[nr].iov_base = (void *)src;
					rem[nr].iov_base = (void *)(uintptr_t)addr;
					loc[nr].iov_len = rem[nr].iov_len = (size_t)(take * CR_PAGE_SIZE);
					bytes += take * CR_PAGE_SIZE;
					nr++;
				}
				src += take * CR_PAGE_SIZE;
				eoff += take;
				left -= take;
			}
			if (!nr)
				continue;
			ssize_t w = process_vm_writev(p->pid, loc, nr, rem, nr, 0);
			if (w != (ssize_t)bytes) {
				rst_logf(p->log, 4, "process_vm_writev wrote %zd of %llu bytes (%s); going range by range", w,
					 (unsigned long long)bytes, w < 0 ? strerror(errno) : "partial");
				/* a page the kernel would not take through this path:
				 * go range by range, through /proc/PID/mem if needed */
				for (size_t k = 0; k < nr; k++)
					if (fp_mem_write(p->pid, (uint64_t)(uintptr_t)rem[k].iov_base, loc[k].iov_base,
							 rem[k].iov_len, err))
						goto out;
			}
		}
		done += n;
	}
	if (done < im->present_pages) {
		fp_fail(err, EIO, "the page data ended after %llu of %llu pages", (unsigned long long)done,
			(unsigned long long)im->present_pages);
		goto out;
	}
	rst_logf(p->log, 3, "wrote %llu pages", (unsigned long long)done);
	rc = 0;
out:
	free(rem);
	free(loc);
	return rc;
}

static int move_vdso(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	int64_t r;
	if (!p->kvdso_start)
		return 0;
	if (im->vdso_vma < 0) {
		/* the program had unmapped its vDSO: so does the restored one */
		uint64_t lo = p->kvvar_start ? p->kvvar_start : p->kvdso_start;
		return rst_sys(p, p->pid, "unmapping the vDSO", SYS_munmap, lo, p->kvdso_end - lo, 0, 0, 0, 0, &r, err);
	}
	const cr_vma *vd = &im->mm.vmas[im->vdso_vma];
	uint64_t lo = p->kvvar_start ? p->kvvar_start : p->kvdso_start;
	uint64_t to = vd->start - (p->kvdso_start - lo);
	struct {
		uint64_t s, e;
		const char *what;
	} parts[] = { { p->kvvar_start, p->kvvar_end, "moving the vvar pages" },
		      { p->kvclock_start, p->kvclock_end, "moving the vvar_vclock pages" },
		      { p->kvdso_start, p->kvdso_end, "moving the vDSO" } };
	for (size_t i = 0; i < 3; i++) {
		if (!parts[i].s)
			continue;
		uint64_t dst = to + (parts[i].s - lo);
		if (rst_q(p, p->pid, parts[i].what, RST_MUST, SYS_mremap, parts[i].s, parts[i].e - parts[i].s,
			  parts[i].e - parts[i].s, MREMAP_MAYMOVE | MREMAP_FIXED, dst, 0, NULL, err))
			return -1;
	}
	rst_logf(p->log, 3, "vDSO at 0x%llx", (unsigned long long)vd->start);
	return 0;
}

/* Uncompressed page data: the restored process reads it itself, with
 * preadv from the pages file straight into its memory, as CRIU's restorer
 * does: one copy, from the page cache, and no buffer of ours in between.
 * Runs of present pages are contiguous in the file, so one call covers many
 * pagemap entries; the vDSO's pages (the kernel's own now) are skipped.
 * 1 done, 0 declined (the caller streams the pages instead), -1 error. */
#define PREADV_IOVS 1024
static int target_reads_pages(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	if (pgs_is_compressed(im->pages) || !im->present_pages)
		return 0;
	char name[64], path[4200];
	pgs_plain_name(name, sizeof(name), im->pmh.pages_id);
	snprintf(path, sizeof(path), "%s/%s", im->dir, name);
	int fd;
	if (remote_open(p, path, O_RDONLY | O_CLOEXEC, &fd, err))
		return -1;
	struct iovec *iov = malloc(PREADV_IOVS * sizeof(*iov));
	if (!iov)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t vd_s = 0, vd_e = 0;
	if (im->vdso_vma >= 0)
		vd_s = im->mm.vmas[im->vdso_vma].start, vd_e = im->mm.vmas[im->vdso_vma].end;
	uint64_t page = 0, batch_off = 0, batch_bytes = 0, calls = 0;
	size_t n = 0;
	int rc = 1;
	for (size_t i = 0; i <= im->npe && rc == 1; i++) {
		bool last = i == im->npe;
		const cr_pagemap_entry *e = last ? NULL : &im->pe[i];
		if (e && !(cr_pagemap_flags(e) & CR_PE_PRESENT))
			continue;
		uint64_t s = e ? e->vaddr : 0, len = e ? e->nr_pages * CR_PAGE_SIZE : 0;
		bool skip = e && s >= vd_s && s < vd_e;
		if (n && (last || skip || n == PREADV_IOVS)) {
			uint64_t a;
			int64_t r;
			if (rst_scratch_put(p, 8192, iov, n * sizeof(*iov), &a, err) ||
			    rst_sys_raw(p, p->pid, SYS_preadv, (uint64_t)fd, a, n, batch_off, 0, 0, &r, err))
				rc = -1;
			else if (r != (int64_t)batch_bytes) {
				rst_logf(p->log, 2, "preadv of %llu bytes at %llu returned %lld; streaming the pages instead",
					 (unsigned long long)batch_bytes, (unsigned long long)batch_off, (long long)r);
				rc = 0;
			}
			calls++;
			n = 0;
		}
		if (last)
			break;
		if (!n) {
			batch_off = page * CR_PAGE_SIZE;
			batch_bytes = 0;
		}
		if (!skip) {
			iov[n].iov_base = (void *)(uintptr_t)s;
			iov[n].iov_len = (size_t)len;
			n++;
			batch_bytes += len;
		}
		page += e->nr_pages;
	}
	free(iov);
	int64_t r;
	if (rst_sys_raw(p, p->pid, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &r, rc < 0 ? NULL : err))
		rc = -1;
	if (rc == 1)
		rst_logf(p->log, 3, "the process read its %llu pages itself (%llu preadv calls)", (unsigned long long)page,
			 (unsigned long long)calls);
	return rc;
}

/* has[i]: VMA i holds pages of the image (it is mapped writable until they
 * are written). */
static bool *vmas_with_pages(const rst_image *im, fp_error *err)
{
	bool *has = calloc(im->mm.n_vmas + 1, sizeof(bool));
	if (!has) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	size_t vi = 0;
	for (size_t i = 0; i < im->npe; i++) {
		if (!(cr_pagemap_flags(&im->pe[i]) & CR_PE_PRESENT))
			continue;
		uint64_t s = im->pe[i].vaddr, e = s + im->pe[i].nr_pages * CR_PAGE_SIZE;
		while (vi < im->mm.n_vmas && im->mm.vmas[vi].end <= s)
			vi++;
		for (size_t k = vi; k < im->mm.n_vmas && im->mm.vmas[k].start < e; k++)
			has[k] = true;
	}
	return has;
}

int rst_mem_pages_done(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	p->pages_pending = false;
	if (rst_pages_wait(p, err))
		return -1;
	bool *has_pages = vmas_with_pages(im, err);
	if (!has_pages)
		return -1;
	int rc = 0;
	for (size_t i = 0; !rc && i < im->mm.n_vmas; i++) {
		const cr_vma *v = &im->mm.vmas[i];
		if (skip_vma(v) || !has_pages[i] || (v->prot & PROT_WRITE))
			continue;
		rc = rst_q(p, p->pid, "mprotect", RST_MUST, SYS_mprotect, v->start, v->end - v->start, v->prot, 0, 0, 0, NULL,
			   err);
	}
	/* Locked memory is locked only now: MAP_LOCKED at mmap time would fault
	 * in every page before the page writers' UFFDIO_COPY, which then fails. */
	for (size_t i = 0; !rc && i < im->mm.n_vmas; i++) {
		const cr_vma *v = &im->mm.vmas[i];
		if (skip_vma(v) || !(v->flags & MAP_LOCKED))
			continue;
		char what[128];
		snprintf(what, sizeof(what), "mlock of %#" PRIx64 "-%#" PRIx64 " (locked at dump time; RLIMIT_MEMLOCK?)",
			 v->start, v->end);
		rc = rst_q(p, p->pid, what, RST_MUST, SYS_mlock, v->start, v->end - v->start, 0, 0, 0, 0, NULL, err);
	}
	free(has_pages);
	return rc ? -1 : rst_flush(p, err);
}

int rst_mem_restore(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	bool *has_pages = vmas_with_pages(im, err);
	if (!has_pages)
		return -1;
	long long t0 = rst_now_ns();
	int rc = map_vmas(p, has_pages, err);
	free(has_pages);
	long long t1 = rst_now_ns();
	if (!rc)
		rc = move_vdso(p, err);
	if (!rc && !p->pw && rst_pages_start(p, im, err) < 0)
		rc = -1;
	if (!rc && p->pw) {
		/* Written by our threads while the restore goes on;
		 * rst_mem_pages_done waits for them. */
		if (rst_pages_uffd(p, err) || rst_flush(p, err))
			rc = -1;
		else
			rst_pages_go(p);
	} else if (!rc) {
		int done = target_reads_pages(p, err);
		rc = done < 0 ? -1 : done ? 0 : write_pages(p, err);
	}
	long long t2 = rst_now_ns();
	if (rc)
		return -1;
	rst_logf(p->log, 3, "memory: %zu VMAs mapped in %.2f ms, %llu pages %s in %.2f ms", im->mm.n_vmas, (t1 - t0) / 1e6,
		 (unsigned long long)im->present_pages, p->pw ? "being written" : "written", (t2 - t1) / 1e6);
	/* The stub's text goes (PR_SET_MM_EXE_FILE refuses while the old exe
	 * is mapped); the runner has its own page. */
	if (rst_q(p, p->pid, "unmapping the restorer stub", RST_MUST, SYS_munmap, p->stub_start, p->stub_end - p->stub_start,
		  0, 0, 0, 0, NULL, err) ||
	    rst_flush(p, err))
		return -1;
	rst_logf(p->log, 3, "stub unmapped");
	p->stub_start = p->stub_end = 0;
	p->pages_pending = true;
	return p->pw && p->pages_async ? 0 : rst_mem_pages_done(p, err);
}

int rst_mem_finish(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	const cr_mm *mm = &im->mm;
	int exe_fd;
	/* The process is in its own root by now (rst_files_restore), and the
	 * image's paths are the dumper's view: look from inside that root. */
	const char *exe = rst_reg_path(p, mm->exe_file_id, err);
	if (!exe)
		return -1;
	const char *root = rst_file_path(im, im->fs.root_id);
	size_t rl = root ? strlen(root) : 0;
	if (exe && rl > 1 && !strncmp(exe, root, rl) && exe[rl] == '/')
		exe += rl;
	if (remote_open(p, exe, O_RDONLY | O_CLOEXEC, &exe_fd, err))
		return -1;
	struct prctl_mm_map map;
	memset(&map, 0, sizeof(map));
	map.start_code = mm->mm_start_code;
	map.end_code = mm->mm_end_code;
	map.start_data = mm->mm_start_data;
	map.end_data = mm->mm_end_data;
	map.start_stack = mm->mm_start_stack;
	map.start_brk = mm->mm_start_brk;
	map.brk = mm->mm_brk;
	map.arg_start = mm->mm_arg_start;
	map.arg_end = mm->mm_arg_end;
	map.env_start = mm->mm_env_start;
	map.env_end = mm->mm_env_end;
	map.exe_fd = (uint32_t)exe_fd;
	uint64_t auxv_addr = 0, map_addr;
	size_t auxv_len = mm->n_mm_saved_auxv * 8;
	if (rst_q_room(p, 4, auxv_len + sizeof(map) + 32, err))
		return -1;
	if (auxv_len) {
		void *a = rst_q_data(p, auxv_len, &auxv_addr, err);
		if (!a)
			return -1;
		memcpy(a, mm->mm_saved_auxv, auxv_len);
		map.auxv = (__u64 *)(uintptr_t)auxv_addr;
		map.auxv_size = (uint32_t)auxv_len;
	}
	void *m = rst_q_data(p, sizeof(map), &map_addr, err);
	if (!m)
		return -1;
	memcpy(m, &map, sizeof(map));
	if (rst_q(p, p->pid, "prctl(PR_SET_MM_MAP) (brk, arguments, environment, auxv, executable)", RST_MUST, SYS_prctl,
		  PR_SET_MM, PR_SET_MM_MAP, map_addr, sizeof(map), 0, 0, NULL, err) ||
	    rst_q(p, p->pid, NULL, 0, SYS_close, (uint64_t)exe_fd, 0, 0, 0, 0, 0, NULL, err))
		return -1;
	/* mappings, fds and the executable hold the ghosts' files now */
	rst_ghosts_unlink(im);
	if (mm->has_dumpable && rst_q(p, p->pid, "prctl(PR_SET_DUMPABLE)", RST_MUST, SYS_prctl, PR_SET_DUMPABLE,
				      (uint64_t)mm->dumpable, 0, 0, 0, 0, NULL, err))
		return -1;
	if (mm->has_thp_disabled && mm->thp_disabled &&
	    rst_q(p, p->pid, "prctl(PR_SET_THP_DISABLE)", RST_MUST, SYS_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0, 0, NULL, err))
		return -1;
	return rst_flush(p, err);
}
