/* Loading and validating an image directory before any process exists.
 * Everything that can be checked without the kernel is checked here, so a
 * bad image is refused with nothing created: decoding (framing, lengths),
 * format version, architecture, pagemap entries against the VMAs, the
 * length of the page data, and the files the image refers to. */
#include "restore/rst_int.h"
#include "images/pagestore_chain.h"
#include "images/tcp_states.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void rst_unsupported(rst_image *im, const char *fmt, ...)
{
	if (im->unsupported[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(im->unsupported, sizeof(im->unsupported), fmt, ap);
	va_end(ap);
}

const cr_file *rst_file(const rst_image *im, uint32_t id)
{
	for (size_t i = 0; i < im->nfiles; i++)
		if (im->files[i].id == id)
			return &im->files[i];
	return NULL;
}

const char *rst_file_path(const rst_image *im, uint32_t id)
{
	const cr_file *f = rst_file(im, id);
	return f && f->type == CR_FD_REG && f->has_reg && f->reg.name ? f->reg.name : NULL;
}

void rst_image_free(rst_image *im)
{
	if (im->pages)
		pgs_close(im->pages);
	for (size_t i = 0; i < im->nth; i++)
		cr_core_free(&im->th[i].core);
	free(im->th);
	if (im->ps)
		cr_free_array(&cr_pstree_desc, im->ps, im->nps);
	cr_inventory_free(&im->inv);
	cr_mm_free(&im->mm);
	free(im->pe);
	if (im->files)
		cr_free_array(&cr_file_desc, im->files, im->nfiles);
	if (im->ttys)
		cr_free_array(&cr_tty_info_desc, im->ttys, im->nttys);
	if (im->fdi)
		cr_free_array(&cr_fdinfo_desc, im->fdi, im->nfdi);
	cr_free_pipes_data(im->pd, im->npd);
	cr_free_pipes_data(im->fifod, im->nfifod);
	cr_free_sk_queues(im->skq, im->nskq);
	rst_ghosts_unlink(im);
	if (im->remaps)
		cr_free_array(&cr_remap_fpath_desc, im->remaps, im->nremaps);
	if (im->locks)
		cr_free_array(&cr_file_lock_desc, im->locks, im->nlocks);
	if (im->dirfd > 0)
		close(im->dirfd);
	memset(im, 0, sizeof(*im));
	im->dirfd = -1;
}

/* A REG file the restore will open or map must exist and, where the image
 * recorded them, have the same size and file type. */
static int check_reg(rst_image *im, uint32_t id, const char *use, fp_error *err)
{
	const cr_file *f = rst_file(im, id);
	if (!f)
		return fp_fail(err, EINVAL, "files.img has no entry %u (the %s); the image is corrupt", id, use);
	if (f->type != CR_FD_REG || !f->has_reg || !f->reg.name)
		return fp_fail(err, EINVAL, "files.img entry %u (the %s) is not a regular file entry; the image is corrupt",
			       id, use);
	const cr_reg_file *r = &f->reg;
	if (r->name[0] != '/')
		return fp_fail(err, EINVAL, "files.img entry %u (the %s) has a relative path '%s'", id, use, r->name);
	if (r->has_ext && r->ext) {
		rst_unsupported(im, "%s %s is an external (inherited) file", use, r->name);
		return 0;
	}
	const cr_remap_fpath *remap = rst_remap(im, id);
	if (remap && !rst_remap_is_ghost(remap)) {
		rst_unsupported(im, "%s %s is remapped (CRIU --link-remap or a /proc path), which forkpoint cannot follow",
				use, r->name);
		return 0;
	}
	if (remap) {
		if (strncmp(use, "file of fd", 10) && strcmp(use, "mapped file") && strcmp(use, "executable")) {
			rst_unsupported(im, "%s %s was deleted before the dump", use, r->name);
			return 0;
		}
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", r->name);
		char *slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		struct stat dst;
		if (stat(dir, &dst) < 0 || !S_ISDIR(dst.st_mode))
			return fp_fail(err, ENOENT, "%s %s was deleted before the dump, and its directory %s is gone too",
				       use, r->name, dir);
		return 0;
	}
	struct stat st;
	if (stat(r->name, &st) < 0) {
		if (strstr(r->name, " (deleted)")) {
			rst_unsupported(im, "%s %s was deleted before the dump (ghost files)", use, r->name);
			return 0;
		}
		return fp_fail(err, errno, "%s %s: %s; the process cannot be restored without it (restore the file or its "
				     "workspace first)", use, r->name, strerror(errno));
	}
	if (r->has_size && S_ISREG(st.st_mode) && (uint64_t)st.st_size != r->size)
		return fp_fail(err, ESTALE,
			       "%s %s has size %lld but had %llu at dump time: the file changed since the snapshot, so the "
			       "restored process would see other data (put the file back as it was)",
			       use, r->name, (long long)st.st_size, (unsigned long long)r->size);
	if (r->has_mode && (st.st_mode & S_IFMT) != (r->mode & S_IFMT))
		return fp_fail(err, ESTALE, "%s %s is now a different kind of file (mode 0%o, was 0%o)", use, r->name,
			       (unsigned)st.st_mode, (unsigned)r->mode);
	return 0;
}

static const cr_vma *vma_of(const rst_image *im, uint64_t addr, size_t *hint)
{
	const cr_mm *mm = &im->mm;
	while (*hint < mm->n_vmas && mm->vmas[*hint].end <= addr)
		(*hint)++;
	if (*hint < mm->n_vmas && mm->vmas[*hint].start <= addr)
		return &mm->vmas[*hint];
	return NULL;
}

static int check_vmas(rst_image *im, fp_error *err)
{
	cr_mm *mm = &im->mm;
	im->vdso_vma = im->vvar_vma = -1;
	if (!mm->n_vmas)
		return fp_fail(err, EINVAL, "mm-%u.img has no VMAs (a legacy vmas image?); the image is corrupt", im->pid);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const cr_vma *v = &mm->vmas[i];
		if (v->start >= v->end || (v->start | v->end) % CR_PAGE_SIZE || v->end > 0x800000000000ULL)
			if (!(v->status & CR_VMA_AREA_VSYSCALL))
				return fp_fail(err, EINVAL, "mm-%u.img: VMA %zu (0x%llx-0x%llx) is not a page-aligned range",
					       im->pid, i, (unsigned long long)v->start, (unsigned long long)v->end);
		if (i && v->start < mm->vmas[i - 1].end)
			return fp_fail(err, EINVAL, "mm-%u.img: VMAs %zu and %zu overlap or are out of order", im->pid, i - 1, i);
		uint32_t s = v->status;
		if ((s & CR_VMA_AREA_VSYSCALL) && !(s & CR_VMA_AREA_REGULAR))
			continue;
		if (s & CR_VMA_AREA_VDSO) {
			im->vdso_vma = (int)i;
			continue;
		}
		if (s & CR_VMA_AREA_VVAR) {
			im->vvar_vma = (int)i;
			continue;
		}
		if ((s & CR_VMA_ANON_SHARED) && !(s & CR_VMA_AREA_SYSVIPC))
			continue; /* rst_shmem.c */
		if ((s & CR_VMA_AREA_SYSVIPC) && (v->flags & MAP_SHARED) && !(s & CR_VMA_AREA_MEMFD))
			continue; /* rst_sysvshm.c */
		if (s & CR_VMA_AREA_MEMFD) {
			const cr_file *mf = rst_file(im, (uint32_t)v->shmid);
			if (!mf || mf->type != CR_FD_MEMFD || !mf->has_memfd)
				return fp_fail(err, EINVAL, "mm-%u.img: memfd mapping 0x%llx names file %llu, which is not a "
						   "memfd in files.img; the image is corrupt",
					       im->pid, (unsigned long long)v->start, (unsigned long long)v->shmid);
			continue;
		}
		const uint32_t odd = CR_VMA_ANON_SHARED | CR_VMA_AREA_SYSVIPC | CR_VMA_AREA_SOCKET | CR_VMA_AREA_AIORING |
				     CR_VMA_AREA_MEMFD | CR_VMA_AREA_SHSTK | CR_VMA_AREA_GUARD | CR_VMA_AREA_UPROBES;
		if (s & odd) {
			rst_unsupported(im, "mapping 0x%llx-0x%llx has status 0x%x (shared anonymous, SysV, AIO, memfd or "
					    "shadow-stack memory)",
					(unsigned long long)v->start, (unsigned long long)v->end, s);
			continue;
		}
		if (s & (CR_VMA_FILE_PRIVATE | CR_VMA_FILE_SHARED)) {
			if (check_reg(im, (uint32_t)v->shmid, "mapped file", err))
				return -1;
		} else if (!(s & CR_VMA_ANON_PRIVATE)) {
			rst_unsupported(im, "mapping 0x%llx-0x%llx has status 0x%x", (unsigned long long)v->start,
					(unsigned long long)v->end, s);
		}
		if (v->flags & 0x40000 /* MAP_HUGETLB */)
			rst_unsupported(im, "hugetlbfs mapping at 0x%llx", (unsigned long long)v->start);
	}
	if (mm->n_mm_saved_auxv > CR_AUXV_MAX || mm->n_mm_saved_auxv % 2)
		return fp_fail(err, EINVAL, "mm-%u.img: %zu auxv words (at most %d pairs); the image is corrupt", im->pid,
			       mm->n_mm_saved_auxv, CR_AUXV_MAX / 2);
	return check_reg(im, mm->exe_file_id, "executable", err);
}

static int check_pagemap(rst_image *im, fp_error *err)
{
	size_t hint = 0;
	/* An incremental snapshot: the flat pagemap and its pages, through
	 * the parents (images/pagestore_chain.h). */
	if (pgs_chain_has_parent(im->pe, im->npe)) {
		cr_pagemap_entry *flat;
		size_t nflat;
		if (pgs_chain_open(im->dirfd, im->pid, im->pmh.pages_id, im->pe, im->npe, &flat, &nflat, &im->pages, err))
			return fp_wrap(err, "pages of process %u", im->pid);
		free(im->pe);
		im->pe = flat;
		im->npe = nflat;
	}
	uint64_t prev_end = 0;
	for (size_t i = 0; i < im->npe; i++) {
		const cr_pagemap_entry *pe = &im->pe[i];
		if (pe->nr_pages > (1ULL << 36))
			return fp_fail(err, EINVAL, "pagemap-%u.img entry %zu: %llu pages is impossible; the image is corrupt",
				       im->pid, i, (unsigned long long)pe->nr_pages);
		uint64_t a = pe->vaddr, end = pe->vaddr + pe->nr_pages * CR_PAGE_SIZE;
		if (a % CR_PAGE_SIZE || !pe->nr_pages || end < a || end > 0x800000000000ULL || (i && a < prev_end))
			return fp_fail(err, EINVAL,
				       "pagemap-%u.img entry %zu (0x%llx, %llu pages) is empty, unaligned, out of order or "
				       "overlaps the one before; the image is corrupt",
				       im->pid, i, (unsigned long long)a, (unsigned long long)pe->nr_pages);
		prev_end = end;
		while (a < end) {
			const cr_vma *v = vma_of(im, a, &hint);
			if (!v)
				return fp_fail(err, EINVAL,
					       "pagemap-%u.img entry %zu: page 0x%llx lies outside every mapping of mm-%u.img; the "
					       "image is corrupt",
					       im->pid, i, (unsigned long long)a, im->pid);
			if (!(v->status & (CR_VMA_ANON_PRIVATE | CR_VMA_FILE_PRIVATE)) || (v->status & CR_VMA_AREA_VVAR))
				return fp_fail(err, EINVAL,
					       "pagemap-%u.img entry %zu: page 0x%llx lies in a mapping (status 0x%x) whose pages "
					       "are never dumped; the image is corrupt",
					       im->pid, i, (unsigned long long)a, v->status);
			a = v->end < end ? v->end : end;
		}
	}
	if (cr_pagemap_present_pages(im->pe, im->npe, &im->present_pages, err))
		return -1;
	if (!im->pages)
		im->pages = pgs_open(im->dirfd, im->pmh.pages_id, err);
	if (!im->pages)
		return fp_wrap(err, "page data of pagemap-%u.img", im->pid);
	uint64_t have = pgs_total_pages(im->pages);
	/* Exactly: pages the pagemap does not place mean the two files are
	 * not of the same dump. */
	if (have != im->present_pages)
		return fp_fail(err, EINVAL,
			       "the page data for pagemap-%u.img holds %llu pages but the pagemap places %llu: the pages file "
			       "is truncated or is not this pagemap's (an interrupted copy, or files of two dumps)",
			       im->pid, (unsigned long long)have, (unsigned long long)im->present_pages);
	return 0;
}

/* A terminal fd is restored only onto the terminal forkpoint itself runs
 * on (as CRIU's --shell-job does): reopening another user's terminal would
 * be a surprise. */
static int check_fds(rst_image *im, fp_error *err)
{
	for (size_t i = 0; i < im->nfdi; i++) {
		const cr_fdinfo *fi = &im->fdi[i];
		const cr_file *f = rst_file(im, fi->id);
		if (!f)
			return fp_fail(err, EINVAL, "fd %u refers to file %u, which files.img does not have; the image is corrupt",
				       fi->fd, fi->id);
		if (f->type != fi->type)
			return fp_fail(err, EINVAL, "fd %u: fdinfo says type %u but files.img entry %u has type %u", fi->fd,
				       fi->type, fi->id, f->type);
		if (i && fi->fd <= im->fdi[i - 1].fd)
			return fp_fail(err, EINVAL, "fdinfo-%u.img: fd %u is listed twice or out of order", im->ids.files_id,
				       fi->fd);
		switch (f->type) {
		case CR_FD_REG: {
			char use[64];
			snprintf(use, sizeof(use), "file of fd %u", fi->fd);
			if (check_reg(im, fi->id, use, err))
				return -1;
			break;
		}
		case CR_FD_PIPE:
			if (!f->has_pipe)
				return fp_fail(err, EINVAL, "files.img entry %u: a pipe without pipe data", fi->id);
			break;
		case CR_FD_TTY:
			if (!f->has_tty || !f->tty.has_regf_id || !rst_file_path(im, f->tty.regf_id))
				return fp_fail(err, EINVAL, "files.img entry %u: a terminal without its device path", fi->id);
		{
			char buf[64];
			if (!im->ttys && cr_read_tty_info(im->dirfd, &im->ttys, &im->nttys, err))
				return fp_wrap(err, "fd %u is a terminal", fi->fd);
			if (!rst_tty_info(im, f))
				return fp_fail(err, EINVAL, "files.img entry %u: terminal %u is not in tty-info.img; the image is corrupt",
					       fi->id, f->tty.tty_info_id);
			if (!rst_tty_path(im, f, buf, sizeof(buf)))
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENXIO,
						    "fd %u was the terminal %s, which is gone, and this restore runs without a "
						    "terminal to give it: run the restore from a terminal (the process comes back "
						    "in it, like criu --shell-job), or dump the program with its stdio on files",
						    fi->fd, rst_file_path(im, f->tty.regf_id));
			break;
		}
		case CR_FD_EVENTFD:
		case CR_FD_SIGNALFD:
		case CR_FD_TIMERFD:
			if (!f->has_efd && !f->has_sgfd && !f->has_tfd)
				return fp_fail(err, EINVAL, "files.img entry %u: an event fd without its data", fi->id);
			break;
		case CR_FD_EVENTPOLL:
			if (!f->has_epfd)
				return fp_fail(err, EINVAL, "files.img entry %u: an epoll without its data", fi->id);
			for (size_t k = 0; k < f->epfd.n_tfd; k++) {
				bool open_fd = false;
				for (size_t j = 0; j < im->nfdi && !open_fd; j++)
					open_fd = im->fdi[j].fd == f->epfd.tfd[k].tfd;
				if (!open_fd)
					rst_unsupported(im, "epoll fd %u watches fd %u, which the process does not have", fi->fd,
							f->epfd.tfd[k].tfd);
			}
			break;
		case CR_FD_INETSK:
			if (!f->has_isk || f->isk.type != SOCK_STREAM || f->isk.proto != IPPROTO_TCP ||
			    !fp_tcp_state_has(f->isk.state, FP_TCPF_CONNECTED | FP_TCPF(FP_TCP_LISTEN) |
								    FP_TCPF(FP_TCP_CLOSE)) ||
			    (f->isk.family != AF_INET && f->isk.family != AF_INET6))
				rst_unsupported(im, "fd %u is a socket other than a TCP socket that listens, is not connected or "
						"is a connection (established or being closed)", fi->fd);
			break;
		case CR_FD_FIFO: {
			const cr_file *reg = f->has_fifo && f->fifo.has_regf_id ? rst_file(im, f->fifo.regf_id) : NULL;
			struct stat st;
			if (!reg || !reg->has_reg || !reg->reg.name)
				return fp_fail(err, EINVAL, "fd %u: FIFO entry %u names no path; the image is corrupt", fi->fd,
					       f->id);
			if (stat(reg->reg.name, &st) < 0 || !S_ISFIFO(st.st_mode))
				return fp_fail(err, ENOENT, "fd %u is the FIFO %s, which %s; make it again (mkfifo) first",
					       fi->fd, reg->reg.name, errno == ENOENT ? "no longer exists" : "is no FIFO now");
			break;
		}
		case CR_FD_UNIXSK: {
			if (!f->has_usk)
				return fp_fail(err, EINVAL, "files.img entry %u: a unix socket without its data", fi->id);
			const cr_unix_sk *u = &f->usk;
			bool known_peer = !u->peer;
			for (size_t j = 0; j < im->nfiles && !known_peer; j++)
				known_peer = im->files[j].has_usk && im->files[j].usk.ino == u->peer;
			if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
				rst_unsupported(im, "fd %u is a unix socket of type %u", fi->fd, u->type);
			else if (u->uflags)
				rst_unsupported(im, "fd %u is a unix socket with CRIU flags %#x (external, ...)", fi->fd, u->uflags);
			else if (!known_peer)
				rst_unsupported(im, "fd %u is a unix socket connected to one outside the image", fi->fd);
			break;
		}
		case CR_FD_INOTIFY:
			if (!f->has_ify)
				return fp_fail(err, EINVAL, "files.img entry %u: an inotify without its data", fi->id);
			break;
		case CR_FD_MEMFD:
			if (!f->has_memfd)
				return fp_fail(err, EINVAL, "files.img entry %u: a memfd without its data", fi->id);
			break;
		default:
			rst_unsupported(im, "fd %u is of type %u (connected sockets, inotify, memfd, ... are not restored "
					    "natively yet)", fi->fd, f->type);
		}
	}
	return 0;
}

static int check_core(rst_image *im, rst_thread *t, bool leader, fp_error *err)
{
	cr_core *c = &t->core;
	if (c->mtype != CR_MARCH_X86_64)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EINVAL,
				    "core-%u.img is for another architecture (march %u, x86_64 is 1); this machine is x86_64",
				    t->tid, c->mtype);
	if (!c->has_thread_info || !c->has_thread_core)
		return fp_fail(err, EINVAL, "core-%u.img lacks thread_info or thread_core; the image is corrupt", t->tid);
	if (leader && !c->has_tc)
		return fp_fail(err, EINVAL, "core-%u.img (the main thread) lacks its task data; the image is corrupt", t->tid);
	if (c->thread_info.gpregs.has_mode && c->thread_info.gpregs.mode != CR_REGS_NATIVE)
		rst_unsupported(im, "thread %u is a 32-bit (compat) thread", t->tid);
	if (c->thread_info.fpregs.n_st_space != 32 || c->thread_info.fpregs.n_xmm_space != 64)
		return fp_fail(err, EINVAL, "core-%u.img: FPU state has %zu/%zu words (32/64 expected); the image is corrupt",
			       t->tid, c->thread_info.fpregs.n_st_space, c->thread_info.fpregs.n_xmm_space);
	const cr_thread_core *tc = &c->thread_core;
	if (tc->has_seccomp_mode && tc->seccomp_mode != CR_SECCOMP_DISABLED)
		rst_unsupported(im, "thread %u runs under seccomp", t->tid);
	if (leader) {
		const cr_task_core *k = &c->tc;
		if (k->task_state != CR_TASK_ALIVE && k->task_state != CR_TASK_STOPPED)
			rst_unsupported(im, "the process was dead (a zombie) at dump time");
		if (k->n_sigactions != CR_SIGACTIONS && k->n_sigactions != 0)
			return fp_fail(err, EINVAL, "core-%u.img: %zu signal actions (62 expected); the image is corrupt", t->tid,
				       k->n_sigactions);
		if (k->has_timers && k->timers.n_posix && !rst_timers_supported())
			rst_unsupported(im, "the process has %zu POSIX timers, and this kernel cannot give a new timer "
					"its old id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15+)",
					k->timers.n_posix);
	}
	return 0;
}

static bool pid_free(uint32_t pid, char *who, size_t len)
{
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	FILE *f = fopen(path, "re");
	who[0] = 0;
	if (f) {
		if (!fgets(who, (int)len, f))
			who[0] = 0;
		fclose(f);
	}
	who[strcspn(who, "\n")] = 0;
	return false;
}

int rst_image_load(rst_image *im, const char *dir, fp_error *err)
{
	return rst_image_load_ex(im, dir, true, err);
}

int rst_image_load_ex(rst_image *im, const char *dir, bool check_pids, fp_error *err)
{
	return rst_image_load_proc(im, dir, 0, check_pids, err);
}

/* What the native engine needs of a tree: every process with its own
 * memory and fd table (no CLONE_VM/CLONE_FILES sharing between processes),
 * each child in its parent's session or a session of its own, parents
 * listed before children. */
static void check_tree(rst_image *im, fp_error *err)
{
	for (size_t i = 1; i < im->nps; i++) {
		const cr_pstree *c = &im->ps[i];
		size_t j;
		for (j = 0; j < i && im->ps[j].pid != c->ppid; j++)
			;
		if (j == i) {
			rst_unsupported(im, "process %u is listed before its parent %u, or its parent is not in the image",
					c->pid, c->ppid);
			return;
		}
		if (c->sid != c->pid && c->sid != im->ps[j].sid) {
			rst_unsupported(im, "process %u is in session %u, neither its own nor its parent's", c->pid, c->sid);
			return;
		}
		bool group = c->pgid == c->pid || c->pgid == im->ps[j].pgid;
		for (size_t k = 0; k < i && !group; k++)
			group = im->ps[k].pgid == c->pgid && im->ps[k].sid == c->sid;
		if (!group) {
			rst_unsupported(im, "process %u is in process group %u, which no process made before it leads or "
					    "joins", c->pid, c->pgid);
			return;
		}
		cr_ids a, b;
		fp_error e;
		if (cr_read_ids(im->dirfd, c->pid, &a, &e) == 0 && cr_read_ids(im->dirfd, c->ppid, &b, &e) == 0 &&
		    (a.vm_id == b.vm_id || a.sighand_id == b.sighand_id)) {
			rst_unsupported(im, "process %u shares its memory or signal handlers with its parent %u (vfork or "
					    "clone)", c->pid, c->ppid);
			return;
		}
	}
	(void)err;
}

int rst_image_load_proc(rst_image *im, const char *dir, size_t index, bool check_pids, fp_error *err)
{
	memset(im, 0, sizeof(*im));
	im->skip_pid_check = !check_pids;
	im->vdso_vma = im->vvar_vma = -1;
	snprintf(im->dir, sizeof(im->dir), "%s", dir);
	im->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im->dirfd < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, errno, "cannot open the image directory %s: %s", dir,
				    strerror(errno));
	if (cr_read_inventory(im->dirfd, &im->inv, err))
		return -1;
	if (!im->inv.has_fdinfo_per_id || !im->inv.fdinfo_per_id)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EINVAL,
				    "inventory.img: an old image layout (no fdinfo_per_id) that no current restorer reads");
	if (cr_read_pstree(im->dirfd, &im->ps, &im->nps, err))
		return -1;
	if (!im->nps || !im->ps[0].n_threads)
		return fp_fail(err, EINVAL, "pstree.img lists no process; the image is corrupt");
	if (index >= im->nps)
		return fp_fail(err, EINVAL, "internal: process %zu of a tree of %zu", index, im->nps);
	im->index = index;
	if (index == 0 && im->nps > 1)
		check_tree(im, err);
	const cr_pstree *root = &im->ps[index];
	im->pid = root->pid;
	/* A zombie child has a core (its wait status) and nothing else. Its
	 * core says so; its pstree thread list cannot be trusted. */
	if (index > 0) {
		im->th = calloc(1, sizeof(*im->th));
		if (!im->th)
			return fp_fail(err, ENOMEM, "out of memory");
		im->th[0].tid = root->pid;
		if (cr_read_core(im->dirfd, root->pid, &im->th[0].core, err))
			return -1;
		im->nth = 1;
		if (im->th[0].core.has_tc && im->th[0].core.tc.task_state == CR_TASK_DEAD) {
			im->zombie = true;
			return 0;
		}

		cr_core_free(&im->th[0].core);
		free(im->th);
		im->th = NULL;
		im->nth = 0;
	}
	/* A zombie's thread list means nothing (CRIU 4.2 writes garbage there);
	 * a live process's starts with itself. */
	if (!root->n_threads || root->threads[0] != root->pid)
		return fp_fail(err, EINVAL, "pstree.img: the first thread of %u is %u; the image is corrupt", root->pid,
			       root->n_threads ? root->threads[0] : 0);
	/* Not a session leader: it joins the restorer's session (and group,
	 * unless it led its own), as `criu restore --shell-job` does. */
	if (cr_read_ids(im->dirfd, im->pid, &im->ids, err))
		return -1;
	im->th = calloc(root->n_threads, sizeof(*im->th));
	if (!im->th)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < root->n_threads; i++) {
		im->th[i].tid = root->threads[i];
		if (cr_read_core(im->dirfd, root->threads[i], &im->th[i].core, err))
			return -1;
		im->nth++;
		if (check_core(im, &im->th[i], i == 0, err))
			return -1;
	}
	if (cr_read_mm(im->dirfd, im->pid, &im->mm, err) || cr_read_files(im->dirfd, &im->files, &im->nfiles, err) ||
	    cr_read_fdinfo(im->dirfd, im->ids.files_id, &im->fdi, &im->nfdi, err) ||
	    cr_read_fs(im->dirfd, im->pid, &im->fs, err) ||
	    cr_read_pagemap(im->dirfd, im->pid, &im->pmh, &im->pe, &im->npe, err))
		return -1;
	if (cr_read_file_locks(im->dirfd, &im->locks, &im->nlocks, err) ||
	    cr_read_remaps(im->dirfd, &im->remaps, &im->nremaps, err))
		return -1;
	fp_error e2;
	if (cr_read_fifo_data(im->dirfd, &im->fifod, &im->nfifod, &e2)) {
		if (e2.errnum != ENOENT) {
			*err = e2;
			return -1;
		}
		im->fifod = NULL, im->nfifod = 0;
	}
	if (cr_read_pipes_data(im->dirfd, &im->pd, &im->npd, &e2)) {
		if (e2.errnum != ENOENT) {
			*err = e2;
			return -1;
		}
		im->pd = NULL, im->npd = 0;
	}
	if (cr_read_sk_queues(im->dirfd, &im->skq, &im->nskq, &e2)) {
		if (e2.errnum != ENOENT) {
			*err = e2;
			return -1;
		}
		im->skq = NULL, im->nskq = 0;
	}
	if (cr_read_timens(im->dirfd, 0, &im->timens, &e2) == 0)
		im->has_timens = true;
	else if (e2.errnum != ENOENT) {
		*err = e2;
		return -1;
	}
	if (check_vmas(im, err) || check_pagemap(im, err) || check_fds(im, err) ||
	    check_reg(im, im->fs.cwd_id, "working directory", err) || check_reg(im, im->fs.root_id, "root directory", err))
		return -1;
	if (im->vdso_vma >= 0 && rst_vdso_check(im, err))
		return -1;
	return im->skip_pid_check || index ? 0 : rst_image_check_pids(im, err);
}

int rst_image_check_pids(const rst_image *im, fp_error *err)
{
	char who[64];
	for (size_t i = 0; i < im->nps; i++) {
		const cr_pstree *p = &im->ps[i];
		/* A thread list that does not start with the pid is a zombie's
		 * (CRIU writes garbage there): only its pid counts. */
		bool zombie_like = !p->n_threads || p->threads[0] != p->pid;
		for (size_t t = 0; t < (zombie_like ? 1 : p->n_threads); t++) {
			uint32_t tid = zombie_like ? p->pid : p->threads[t];
			if (!pid_free(tid, who, sizeof(who)))
				return fp_fail(err, EEXIST,
					       "pid %u is in use (by '%s'); the image's pids must be free to restore it exactly "
					       "(stop that process, or wait until the dumped one has been reaped)",
					       tid, who);
		}
	}
	return 0;
}
