/* CRIU image framing and messages: round trips of every message, corrupt and
 * truncated files, and a full synthetic image set checked with crit (the
 * CRIU image tool), which must decode what we write. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_io.h"

#define PID 4242
#define TID2 4243

static char dir[256];
static int dfd = -1;

/* ---- fixtures --------------------------------------------------------- */

static void make_core(cr_core *c, bool leader, uint32_t tid)
{
	cr_core_init(c, leader);
	cr_user_regs *r = &c->thread_info.gpregs;
	uint64_t *regs = &r->r15;
	for (int i = 0; i < 27; i++)
		regs[i] = 0x1000ull * (uint64_t)(i + 1) + tid;
	r->ip = 0x7f0011223344ull;
	r->sp = 0x7ffd00001000ull;
	r->cs = 0x33;
	r->ss = 0x2b;
	r->flags = 0x202;
	r->ax = (uint64_t)-4; /* -EINTR: needs all 10 varint bytes */
	c->thread_info.clear_tid_addr = 0x7f00000002d0ull + tid;
	cr_fpregs *fp = &c->thread_info.fpregs;
	for (int i = 0; i < 32; i++)
		fp->st_space[i] = 0x11110000u + (uint32_t)i;
	for (int i = 0; i < 64; i++)
		fp->xmm_space[i] = 0xabcd0000u + (uint32_t)i;
	fp->rip = 0x401000;
	fp->has_xsave = true;
	fp->xsave.xstate_bv = 0x2e7;
	fp->xsave.n_ymmh_space = 64;
	for (int i = 0; i < 64; i++)
		fp->xsave.ymmh_space[i] = 0x5a5a0000u + (uint32_t)i;
	fp->xsave.n_opmask_reg = 8;
	fp->xsave.opmask_reg[7] = 0xffffffffffffffffull;
	fp->xsave.n_zmm_upper = 64;
	fp->xsave.zmm_upper[63] = 0x123456789abcdef0ull;
	fp->xsave.n_hi16_zmm = 128;
	fp->xsave.hi16_zmm[127] = 42;
	fp->xsave.n_pkru = 2;
	fp->xsave.pkru[0] = 0x55555554;
	c->thread_info.n_tls = 3;
	for (int i = 0; i < 3; i++) {
		c->thread_info.tls[i].entry_number = 12 + (uint32_t)i;
		c->thread_info.tls[i].read_exec_only = true;
		c->thread_info.tls[i].seg_not_present = true;
	}

	cr_thread_core *th = &c->thread_core;
	th->futex_rla = 0x7f00000002e0ull + tid;
	th->has_sched_nice = true;
	th->sched_nice = -5;
	th->has_sched_policy = true;
	th->sched_policy = 0;
	th->has_blk_sigset = !leader;
	th->blk_sigset = 0x4000;
	th->has_pdeath_sig = true;
	th->pdeath_sig = 15;
	th->has_comm = true;
	snprintf(th->comm, sizeof(th->comm), "worker-%u", tid);
	th->has_rseq_entry = true;
	th->rseq_entry.rseq_abi_pointer = 0x7f00000008a0ull;
	th->rseq_entry.rseq_abi_size = 32;
	th->rseq_entry.signature = 0x53053053;
	cr_creds *cr = &th->creds;
	cr->uid = cr->euid = cr->suid = cr->fsuid = 1000;
	cr->gid = cr->egid = cr->sgid = cr->fsgid = 1001;
	cr->cap_bnd[0] = 0xffffffff;
	cr->cap_bnd[1] = 0x1ff;
	cr->n_groups = 3;
	cr->groups = malloc(3 * sizeof(uint32_t));
	cr->groups[0] = 4;
	cr->groups[1] = 27;
	cr->groups[2] = 1001;
	cr->n_cap_amb = 2;
	cr->has_no_new_privs = true;
	cr->no_new_privs = 0;
	th->has_signals_p = true;
	th->signals_p.n_signals = 1;
	th->signals_p.signals = calloc(1, sizeof(cr_siginfo));
	th->signals_p.signals[0].siginfo_len = 128;
	th->signals_p.signals[0].siginfo = calloc(1, 128);
	th->signals_p.signals[0].siginfo[0] = 10; /* SIGUSR1 */

	if (!leader)
		return;
	cr_task_core *tc = &c->tc;
	tc->personality = 0;
	tc->flags = 0x400000;
	tc->blk_sigset = 0x10002;
	snprintf(tc->comm, sizeof(tc->comm), "synthetic");
	tc->rlimits.rlimits[3].cur = 8 << 20; /* RLIMIT_STACK */
	tc->rlimits.rlimits[7].cur = 1024;    /* RLIMIT_NOFILE */
	tc->rlimits.rlimits[7].max = 524288;
	tc->timers.real.isec = 1;
	tc->timers.real.iusec = 500000;
	tc->timers.n_posix = 1;
	tc->timers.posix = calloc(1, sizeof(cr_posix_timer));
	tc->timers.posix[0].it_id = 7;
	tc->timers.posix[0].si_signo = 14;
	tc->timers.posix[0].has_notify_thread_id = true;
	tc->timers.posix[0].notify_thread_id = -1;
	for (int i = 0; i < CR_SIGACTIONS; i++) {
		tc->sigactions[i].mask = (uint64_t)i;
	}
	tc->sigactions[1].sigaction = 0x401234; /* SIGINT handler */
	tc->sigactions[1].flags = 0x04000000;
	tc->sigactions[1].restorer = 0x7f0000005000ull;
	tc->has_oom_score_adj = true;
	tc->oom_score_adj = -500;
	tc->has_child_subreaper = true;
	tc->child_subreaper = true;
}

static void make_mm(cr_mm *mm)
{
	memset(mm, 0, sizeof(*mm));
	mm->mm_start_code = 0x400000;
	mm->mm_end_code = 0x401000;
	mm->mm_start_data = 0x402000;
	mm->mm_end_data = 0x403000;
	mm->mm_start_stack = 0x7ffd00002000ull;
	mm->mm_start_brk = mm->mm_brk = 0x500000;
	mm->mm_arg_start = 0x7ffd00003000ull;
	mm->mm_arg_end = 0x7ffd00003010ull;
	mm->mm_env_start = 0x7ffd00003010ull;
	mm->mm_env_end = 0x7ffd00003100ull;
	mm->exe_file_id = 1;
	mm->n_mm_saved_auxv = 4;
	mm->mm_saved_auxv = calloc(4, sizeof(uint64_t));
	mm->mm_saved_auxv[0] = 6; /* AT_PAGESZ */
	mm->mm_saved_auxv[1] = 4096;
	mm->mm_saved_auxv[2] = 33; /* AT_SYSINFO_EHDR */
	mm->mm_saved_auxv[3] = 0x7fff00001000ull;
	mm->has_dumpable = true;
	mm->dumpable = 1;
	mm->n_vmas = 3;
	mm->vmas = calloc(3, sizeof(cr_vma));
	cr_vma *v = mm->vmas;
	v[0] = (cr_vma){ .start = 0x400000, .end = 0x401000, .pgoff = 0, .shmid = 1, .prot = 5,
			 .flags = 2, .status = 0x41, .fd = -1, .has_fdflags = true };
	v[1] = (cr_vma){ .start = 0x500000, .end = 0x502000, .prot = 3, .flags = 0x22,
			 .status = 0x221, .fd = -1 };
	v[2] = (cr_vma){ .start = 0x7fff00000000ull, .end = 0x7fff00001000ull, .prot = 1,
			 .flags = 0x22, .status = 0x1201, .fd = -1, .has_madv = true,
			 .madv = 0x10000 };
}

static cr_fown zero_fown;

static void make_files(cr_file f[4])
{
	memset(f, 0, 4 * sizeof(*f));
	f[0].type = CR_FD_REG;
	f[0].id = 1;
	f[0].has_reg = true;
	f[0].reg = (cr_reg_file){ .id = 1, .flags = 0, .pos = 0, .fown = zero_fown,
				  .name = strdup("/usr/bin/synthetic") };
	f[1].type = CR_FD_REG;
	f[1].id = 2;
	f[1].has_reg = true;
	f[1].reg = (cr_reg_file){ .id = 2, .flags = 0x8002, .pos = 5, .name = strdup("/tmp/data"),
				  .has_size = true, .size = 1234, .has_mode = true,
				  .mode = 0100644 };
	f[2].type = CR_FD_PIPE;
	f[2].id = 3;
	f[2].has_pipe = true;
	f[2].pipe = (cr_pipe){ .id = 3, .pipe_id = 777, .flags = 0 };
	f[3].type = CR_FD_PIPE;
	f[3].id = 4;
	f[3].has_pipe = true;
	f[3].pipe = (cr_pipe){ .id = 4, .pipe_id = 777, .flags = 1 };
}

static void free_files(cr_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_file_free(&f[i]);
}

/* Encodes a message alone (for byte-exact round trips). */
static void enc(pb_buf *b, const pb_mdesc *d, const void *m)
{
	pb_buf_init(b);
	pb_encode(b, d, m);
}

static bool same_encoding(const pb_mdesc *d, const void *a, const void *b)
{
	pb_buf x, y;
	enc(&x, d, a);
	enc(&y, d, b);
	bool same = !x.oom && !y.oom && x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	pb_buf_free(&x);
	pb_buf_free(&y);
	return same;
}

/* ---- the synthetic image set ------------------------------------------ */

static uint8_t pipe_bytes[] = "hello-pipe";

static void write_set(void)
{
	fp_error e = { 0 };
	cr_inventory inv = { .img_version = 2, .has_fdinfo_per_id = true, .fdinfo_per_id = true,
			     .has_root_ids = true,
			     .root_ids = { .vm_id = 1, .files_id = 1, .fs_id = 1, .sighand_id = 1 },
			     .has_ns_per_id = true, .ns_per_id = true, .has_lsmtype = true,
			     .lsmtype = CR_NO_LSM, .has_plugins_entry = true };
	CHECKF(cr_write_inventory(dfd, &inv, &e) == 0, "%s", e.msg);

	uint32_t threads[2] = { PID, TID2 };
	cr_pstree ps = { .pid = PID, .ppid = 0, .pgid = PID, .sid = PID, .threads = threads,
			 .n_threads = 2 };
	CHECKF(cr_write_pstree(dfd, &ps, 1, &e) == 0, "%s", e.msg);

	cr_ids ids = { .vm_id = 2, .files_id = 2, .fs_id = 2, .sighand_id = 2 };
	CHECKF(cr_write_ids(dfd, PID, &ids, &e) == 0, "%s", e.msg);

	cr_core c;
	make_core(&c, true, PID);
	CHECKF(cr_write_core(dfd, PID, &c, &e) == 0, "%s", e.msg);
	cr_core_free(&c);
	make_core(&c, false, TID2);
	CHECKF(cr_write_core(dfd, TID2, &c, &e) == 0, "%s", e.msg);
	cr_core_free(&c);

	cr_mm mm;
	make_mm(&mm);
	CHECKF(cr_write_mm(dfd, PID, &mm, &e) == 0, "%s", e.msg);
	cr_mm_free(&mm);

	cr_pagemap_head h = { .pages_id = 1 };
	cr_pagemap_entry pe[3] = {
		{ .vaddr = 0x500000, .nr_pages = 2, .has_flags = true, .flags = CR_PE_PRESENT },
		{ .vaddr = 0x7ffd00000000ull, .nr_pages = 1, .has_flags = true,
		  .flags = CR_PE_PARENT },
		{ .vaddr = 0x7ffd00001000ull, .nr_pages = 3, .has_flags = true,
		  .flags = CR_PE_PRESENT | CR_PE_LAZY },
	};
	CHECKF(cr_write_pagemap(dfd, PID, &h, pe, 3, &e) == 0, "%s", e.msg);

	cr_file f[4];
	make_files(f);
	CHECKF(cr_write_files(dfd, f, 4, &e) == 0, "%s", e.msg);
	free_files(f, 4);

	cr_fdinfo fi[4] = {
		{ .id = 2, .flags = 0, .type = CR_FD_REG, .fd = 0 },
		{ .id = 2, .flags = 0, .type = CR_FD_REG, .fd = 1 },
		{ .id = 3, .flags = 1, .type = CR_FD_PIPE, .fd = 5 },
		{ .id = 4, .flags = 1, .type = CR_FD_PIPE, .fd = 6 },
	};
	CHECKF(cr_write_fdinfo(dfd, 2, fi, 4, &e) == 0, "%s", e.msg);

	cr_fs fs = { .cwd_id = 1, .root_id = 1, .has_umask = true, .umask = 022 };
	CHECKF(cr_write_fs(dfd, PID, &fs, &e) == 0, "%s", e.msg);

	cr_pipe_data pd[2] = {
		{ .pipe_id = 777, .bytes = 10, .has_size = true, .size = 65536, .data = pipe_bytes },
		{ .pipe_id = 778, .bytes = 0, .data = NULL },
	};
	CHECKF(cr_write_pipes_data(dfd, pd, 2, &e) == 0, "%s", e.msg);

	cr_timens tn = { .monotonic = { 12345, 678 }, .boottime = { 23456, 789 } };
	CHECKF(cr_write_timens(dfd, 0, &tn, &e) == 0, "%s", e.msg);

	uint8_t filt[16] = { 6, 0, 0, 0, 0, 0, 0xff, 0x7f };
	cr_seccomp_filter sf = { .filter = filt, .filter_len = 8 };
	cr_seccomp sc = { .seccomp_filters = &sf, .n_seccomp_filters = 1 };
	CHECKF(cr_write_seccomp(dfd, &sc, &e) == 0, "%s", e.msg);

	cr_tty_info ti = { .id = 9, .type = CR_TTY_PTY, .sid = PID, .pgrp = PID,
			   .rdev = 0x8800, .has_termios = true, .has_winsize = true,
			   .winsize = { 24, 80, 0, 0 }, .has_pty = true, .pty = { 3 },
			   .has_uid = true, .uid = 0, .has_gid = true, .gid = 5 };
	ti.termios.c_iflag = 0x500;
	ti.termios.c_lflag = 0x8a3b;
	ti.termios.n_c_cc = 19;
	ti.termios.c_cc[0] = 3;
	CHECKF(cr_write_tty_info(dfd, &ti, 1, &e) == 0, "%s", e.msg);
}

static void read_set(void)
{
	fp_error e = { 0 };
	cr_inventory inv;
	CHECKF(cr_read_inventory(dfd, &inv, &e) == 0, "%s", e.msg);
	CHECK(inv.img_version == 2 && inv.fdinfo_per_id && inv.has_root_ids &&
	      inv.root_ids.vm_id == 1 && inv.has_plugins_entry && !inv.has_root_cg_set);
	cr_inventory_free(&inv);

	cr_pstree *ps;
	size_t n;
	CHECKF(cr_read_pstree(dfd, &ps, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 1 && ps[0].pid == PID && ps[0].n_threads == 2 && ps[0].threads[1] == TID2);
	cr_free_array(&cr_pstree_desc, ps, n);

	cr_ids ids;
	CHECKF(cr_read_ids(dfd, PID, &ids, &e) == 0, "%s", e.msg);
	CHECK(ids.files_id == 2 && !ids.has_pid_ns_id);

	cr_core c, want;
	CHECKF(cr_read_core(dfd, PID, &c, &e) == 0, "%s", e.msg);
	make_core(&want, true, PID);
	CHECK(same_encoding(&cr_core_desc, &c, &want));
	CHECK(c.has_tc && c.tc.n_sigactions == 62 && c.tc.sigactions[1].sigaction == 0x401234);
	CHECK(c.thread_info.gpregs.ax == (uint64_t)-4 && c.thread_info.gpregs.ip == 0x7f0011223344ull);
	CHECK(c.thread_info.fpregs.n_st_space == 32 && c.thread_info.fpregs.xmm_space[63] == 0xabcd003f);
	CHECK(c.thread_info.fpregs.xsave.hi16_zmm[127] == 42);
	CHECK(c.thread_core.sched_nice == -5 && c.thread_core.creds.n_groups == 3);
	CHECK(c.tc.oom_score_adj == -500 && c.tc.timers.posix[0].notify_thread_id == -1);
	CHECK(strcmp(c.tc.comm, "synthetic") == 0 && c.tc.rlimits.n_rlimits == 16);
	cr_core_free(&c);
	cr_core_free(&want);
	CHECKF(cr_read_core(dfd, TID2, &c, &e) == 0, "%s", e.msg);
	make_core(&want, false, TID2);
	CHECK(same_encoding(&cr_core_desc, &c, &want));
	CHECK(!c.has_tc && c.thread_core.has_blk_sigset);
	cr_core_free(&c);
	cr_core_free(&want);

	cr_mm mm, mwant;
	CHECKF(cr_read_mm(dfd, PID, &mm, &e) == 0, "%s", e.msg);
	make_mm(&mwant);
	CHECK(same_encoding(&cr_mm_desc, &mm, &mwant));
	CHECK(mm.n_vmas == 3 && mm.vmas[0].fd == -1 && mm.vmas[2].madv == 0x10000);
	cr_mm_free(&mm);
	cr_mm_free(&mwant);

	cr_pagemap_head h;
	cr_pagemap_entry *pe;
	CHECKF(cr_read_pagemap(dfd, PID, &h, &pe, &n, &e) == 0, "%s", e.msg);
	CHECK(h.pages_id == 1 && n == 3 && pe[2].nr_pages == 3 &&
	      cr_pagemap_flags(&pe[1]) == CR_PE_PARENT);
	uint64_t pages = 0;
	CHECK(cr_pagemap_present_pages(pe, n, &pages, &e) == 0 && pages == 5);
	free(pe);

	cr_file *f, fw[4];
	CHECKF(cr_read_files(dfd, &f, &n, &e) == 0, "%s", e.msg);
	make_files(fw);
	CHECK(n == 4);
	for (size_t i = 0; i < n && i < 4; i++)
		CHECK(same_encoding(&cr_file_desc, &f[i], &fw[i]));
	CHECK(n == 4 && strcmp(f[1].reg.name, "/tmp/data") == 0 && f[1].reg.pos == 5 &&
	      f[0].reg.mnt_id == -1 && !f[0].reg.has_mnt_id && f[3].pipe.flags == 1);
	cr_free_array(&cr_file_desc, f, n);
	free_files(fw, 4);

	cr_fdinfo *fi;
	CHECKF(cr_read_fdinfo(dfd, 2, &fi, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 4 && fi[2].fd == 5 && fi[2].flags == 1 && fi[3].type == CR_FD_PIPE);
	cr_free_array(&cr_fdinfo_desc, fi, n);

	cr_fs fs;
	CHECKF(cr_read_fs(dfd, PID, &fs, &e) == 0, "%s", e.msg);
	CHECK(fs.cwd_id == 1 && fs.has_umask && fs.umask == 022);

	cr_pipe_data *pd;
	CHECKF(cr_read_pipes_data(dfd, &pd, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 2 && pd[0].bytes == 10 && memcmp(pd[0].data, "hello-pipe", 10) == 0 &&
	      pd[0].size == 65536 && pd[1].pipe_id == 778 && pd[1].bytes == 0);
	cr_free_pipes_data(pd, n);

	cr_timens tn;
	CHECKF(cr_read_timens(dfd, 0, &tn, &e) == 0, "%s", e.msg);
	CHECK(tn.monotonic.tv_sec == 12345 && tn.boottime.tv_nsec == 789);

	cr_seccomp sc;
	CHECKF(cr_read_seccomp(dfd, &sc, &e) == 0, "%s", e.msg);
	CHECK(sc.n_seccomp_filters == 1 && sc.seccomp_filters[0].filter_len == 8 &&
	      sc.seccomp_filters[0].filter[7] == 0x7f);
	cr_seccomp_free(&sc);

	cr_tty_info *ti;
	CHECKF(cr_read_tty_info(dfd, &ti, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 1 && ti[0].type == CR_TTY_PTY && ti[0].pty.index == 3 &&
	      ti[0].winsize.ws_col == 80 && ti[0].termios.n_c_cc == 19 && ti[0].gid == 5);
	cr_free_array(&cr_tty_info_desc, ti, n);
}

/* ---- permissions, magics, corruption ---------------------------------- */

static void check_modes(void)
{
	struct stat st;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(fstatat(dfd, "core-4242.img", &st, 0) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(fstatat(dfd, "inventory.img", &st, 0) == 0 && (st.st_mode & 0777) == 0600);
	/* fs-N.img is exactly magic, magic, len, message */
	uint8_t *d;
	size_t n;
	fp_error e;
	CHECK(img_read_file(dfd, "fs-4242.img", 1 << 20, &d, &n, &e) == 0);
	static const uint8_t want[] = { 0x19, 0x43, 0x56, 0x54, 0x12, 0x39, 0x40, 0x51,
					0x06, 0x00, 0x00, 0x00, 0x08, 0x01, 0x10, 0x01,
					0x18, 0x12 };
	CHECK(n == sizeof(want) && memcmp(d, want, n) == 0);
	free(d);
}

static void check_bad_magic(void)
{
	fp_error e = { 0 };
	/* pstree read as core */
	cr_img img;
	CHECK(cr_img_open(&img, dfd, "pstree.img", CR_CORE_MAGIC, &e) < 0);
	CHECKF(strstr(e.msg, "pstree.img: magic 0x50273030 is not CORE 0x55053847") != NULL,
	       "%s", e.msg);
	/* a file with a wrong per-image magic under the pstree name */
	uint8_t bad[12] = { 0x19, 0x43, 0x56, 0x54, 0x47, 0x38, 0x05, 0x55 };
	CHECK(img_write_atomic(dfd, "pstree.img", bad, 8, false, &e) == 0);
	cr_pstree *ps;
	size_t n;
	CHECK(cr_read_pstree(dfd, &ps, &n, &e) < 0);
	CHECKF(strstr(e.msg, "magic 0x55053847 is not PSTREE 0x50273030") != NULL, "%s", e.msg);
	CHECK(cr_read_ids(dfd, 99999, &(cr_ids){ 0 }, &e) < 0 && e.errnum == ENOENT);
	/* a wrong common magic */
	bad[0] = 0;
	CHECK(cr_img_open_mem(&img, "x.img", bad, 8, CR_PSTREE_MAGIC, &e) < 0);
	CHECKF(strstr(e.msg, "common image magic") != NULL, "%s", e.msg);
	CHECK(cr_img_open_mem(&img, "x.img", bad, 3, CR_INVENTORY_MAGIC, &e) < 0);
	/* inventory with a version we do not speak */
	cr_inventory inv = { .img_version = 1 };
	CHECK(cr_write_inventory(dfd, &inv, &e) == 0);
	CHECK(cr_read_inventory(dfd, &inv, &e) < 0 && strstr(e.msg, "version 1") != NULL);
}

/* Reads a file with the reader that fits it. Returns the reader's result. */
static int read_any(const char *name, fp_error *e)
{
	int rc;
	size_t n;
	if (!strcmp(name, "inventory.img")) {
		cr_inventory x;
		rc = cr_read_inventory(dfd, &x, e);
		if (!rc)
			cr_inventory_free(&x);
	} else if (!strcmp(name, "core-4242.img") || !strcmp(name, "core-4243.img")) {
		cr_core x;
		rc = cr_read_core(dfd, (uint32_t)atoi(name + 5), &x, e);
		if (!rc)
			cr_core_free(&x);
	} else if (!strcmp(name, "mm-4242.img")) {
		cr_mm x;
		rc = cr_read_mm(dfd, PID, &x, e);
		if (!rc)
			cr_mm_free(&x);
	} else if (!strcmp(name, "pagemap-4242.img")) {
		cr_pagemap_head h;
		cr_pagemap_entry *pe;
		rc = cr_read_pagemap(dfd, PID, &h, &pe, &n, e);
		if (!rc)
			free(pe);
	} else if (!strcmp(name, "files.img")) {
		cr_file *f;
		rc = cr_read_files(dfd, &f, &n, e);
		if (!rc)
			cr_free_array(&cr_file_desc, f, n);
	} else if (!strcmp(name, "pipes-data.img")) {
		cr_pipe_data *pd;
		rc = cr_read_pipes_data(dfd, &pd, &n, e);
		if (!rc)
			cr_free_pipes_data(pd, n);
	} else if (!strcmp(name, "timens-0.img")) {
		cr_timens t;
		rc = cr_read_timens(dfd, 0, &t, e);
	} else {
		cr_fs fs;
		rc = cr_read_fs(dfd, PID, &fs, e);
	}
	return rc;
}

/* Every proper prefix of a single-entry image must be refused; random byte
 * flips must never crash (ASan/UBSan watch this). */
static void check_corruption(const char *name, bool single)
{
	uint8_t *orig;
	size_t len;
	fp_error e = { 0 };
	if (img_read_file(dfd, name, 1 << 24, &orig, &len, &e) < 0) {
		CHECKF(0, "%s", e.msg);
		return;
	}
	int refused = 0, total = 0;
	for (size_t cut = 0; cut < len; cut++) {
		CHECK(img_write_atomic(dfd, name, orig, cut, false, &e) == 0);
		int rc = read_any(name, &e);
		total++;
		if (rc < 0) {
			refused++;
			CHECKF(strstr(e.msg, name) != NULL, "error does not name %s: %s", name,
			       e.msg);
		}
	}
	if (single)
		CHECKF(refused == total, "%s: %d of %d truncations accepted", name, total - refused,
		       total);
	unsigned seed = 12345;
	uint8_t *mut = malloc(len);
	for (int round = 0; round < 400; round++) {
		memcpy(mut, orig, len);
		int flips = 1 + round % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = 8 + (seed >> 8) % (len > 8 ? len - 8 : 1);
			if (at < len)
				mut[at] ^= (uint8_t)(1u << ((seed >> 4) & 7));
		}
		img_write_atomic(dfd, name, mut, len, false, &e);
		read_any(name, &e);
	}
	free(mut);
	CHECK(img_write_atomic(dfd, name, orig, len, false, &e) == 0);
	free(orig);
}

/* A few protobuf fields written by hand, for messages the writers would
 * refuse to produce. */
typedef struct wbuf {
	uint8_t d[512];
	size_t n;
} wbuf;

static void wvar(wbuf *b, uint64_t v)
{
	while (v >= 0x80) {
		b->d[b->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->d[b->n++] = (uint8_t)v;
}

static void wfield(wbuf *b, uint32_t field, uint64_t v)
{
	wvar(b, (uint64_t)field << 3);
	wvar(b, v);
}

static void wlen(wbuf *b, uint32_t field, const void *p, size_t len)
{
	wvar(b, (uint64_t)field << 3 | 2);
	wvar(b, len);
	memcpy(b->d + b->n, p, len);
	b->n += len;
}

static void wfixed(wbuf *b, uint32_t field, uint64_t v, int bytes)
{
	wvar(b, (uint64_t)field << 3 | (bytes == 4 ? 5 : 1));
	for (int i = 0; i < bytes; i++)
		b->d[b->n++] = (uint8_t)(v >> (8 * i));
}

static void check_field_errors(void)
{
	fp_error e = { 0 };
	/* a pstree entry whose threads field claims 100 bytes */
	uint8_t m[] = { 0x08, 0x01, 0x10, 0x00, 0x18, 0x01, 0x20, 0x01, 0x2a, 100, 1, 2 };
	cr_pstree ps;
	CHECK(pb_decode(&cr_pstree_desc, &ps, m, sizeof(m), "pstree.img entry 3", &e) < 0);
	CHECKF(strstr(e.msg, "pstree.img entry 3: pstree_entry") != NULL &&
		       strstr(e.msg, "length 100") != NULL,
	       "%s", e.msg);
	/* a required field missing */
	CHECK(pb_decode(&cr_pstree_desc, &ps, m, 6, "pstree.img entry 0", &e) < 0);
	CHECKF(strstr(e.msg, "required field 4 (sid)") != NULL, "%s", e.msg);
	/* wrong wire type for a known field: pid as a string */
	uint8_t w[] = { 0x0a, 0x01, 0x41, 0x10, 0x00, 0x18, 0x01, 0x20, 0x01 };
	CHECK(pb_decode(&cr_pstree_desc, &ps, w, sizeof(w), "pstree.img entry 1", &e) < 0);
	CHECKF(strstr(e.msg, "field 1 (pid)") != NULL, "%s", e.msg);
	/* nested error names the path: a core whose gpregs has only ip */
	wbuf regs = { 0 }, ti = { 0 }, t = { 0 };
	wfield(&regs, 17, 1);
	wfield(&ti, 1, 0x1234);
	wlen(&ti, 2, regs.d, regs.n);
	wfield(&t, 1, 1);
	wlen(&t, 2, ti.d, ti.n);
	cr_core c;
	CHECK(pb_decode(&cr_core_desc, &c, t.d, t.n, "core-1.img entry 0", &e) < 0);
	CHECKF(strstr(e.msg, "core-1.img entry 0: core_entry.thread_info.gpregs") != NULL &&
		       strstr(e.msg, "required field 1 (r15)") != NULL,
	       "%s", e.msg);
	/* too many st_space words for the fixed array */
	t.n = 0;
	for (uint32_t f = 1; f <= 8; f++)
		wfield(&t, f, 0);
	for (int i = 0; i < 33; i++)
		wfield(&t, 9, 1);
	cr_fpregs fp;
	CHECK(pb_decode(&cr_fpregs_desc, &fp, t.d, t.n, "core-1.img entry 0", &e) < 0);
	CHECKF(strstr(e.msg, "st_space") != NULL && strstr(e.msg, "more than 32") != NULL, "%s",
	       e.msg);
	/* a comm longer than its buffer */
	t.n = 0;
	wfield(&t, 1, 0x1234);
	wfield(&t, 2, 24);
	char longname[CR_COMM_MAX + 1];
	memset(longname, 'x', sizeof(longname));
	wlen(&t, 13, longname, sizeof(longname));
	cr_thread_core th;
	CHECK(pb_decode(&cr_thread_core_desc, &th, t.d, t.n, "core-1.img entry 0", &e) < 0);
	CHECKF(strstr(e.msg, "comm") != NULL && strstr(e.msg, "at most 63") != NULL, "%s", e.msg);
	/* unknown fields (all wire types) are skipped */
	t.n = 0;
	wfield(&t, 1, 10);
	wfield(&t, 2, 20);
	wlen(&t, 99, "future", 6);
	wfixed(&t, 100, 1, 4);
	wfixed(&t, 101, 2, 8);
	wfield(&t, 3, 30);
	wfield(&t, 4, 40);
	CHECK(pb_decode(&cr_pstree_desc, &ps, t.d, t.n, "x", &e) == 0 && ps.sid == 40);
	cr_pstree_free(&ps);
	/* packed threads decode too */
	t.n = 0;
	wfield(&t, 1, 1);
	wfield(&t, 2, 0);
	wfield(&t, 3, 1);
	wfield(&t, 4, 1);
	wbuf packed = { 0 };
	uint32_t thr[5] = { 1, 2, 300, 70000, 4000000000u };
	for (int i = 0; i < 5; i++)
		wvar(&packed, thr[i]);
	wlen(&t, 5, packed.d, packed.n);
	wfield(&t, 5, 9);
	CHECK(pb_decode(&cr_pstree_desc, &ps, t.d, t.n, "x", &e) == 0);
	CHECK(ps.n_threads == 6 && ps.threads[3] == 70000 && ps.threads[4] == 4000000000u &&
	      ps.threads[5] == 9);
	cr_pstree_free(&ps);

	/* pagemap entry: field 5 wins, field 2 alone works, neither is refused */
	cr_pagemap_entry pe;
	t.n = 0;
	wfield(&t, 1, 0x1000);
	CHECK(pb_decode(&cr_pagemap_entry_desc, &pe, t.d, t.n, "pm", &e) < 0 &&
	      strstr(e.msg, "nr_pages") != NULL);
	wfield(&t, 2, 7);
	CHECK(pb_decode(&cr_pagemap_entry_desc, &pe, t.d, t.n, "pm", &e) == 0 && pe.nr_pages == 7 &&
	      cr_pagemap_flags(&pe) == CR_PE_PRESENT);
	wfield(&t, 5, 1ull << 33);
	wfield(&t, 3, 1);
	CHECK(pb_decode(&cr_pagemap_entry_desc, &pe, t.d, t.n, "pm", &e) == 0 &&
	      pe.nr_pages == 1ull << 33 && cr_pagemap_flags(&pe) == CR_PE_PARENT);
}

/* ---- crit ------------------------------------------------------------- */

/* Runs crit decode on dir/img and evaluates a python expression on the JSON
 * (bound to d, entries to e). */
static bool crit_check(const char *img, const char *expr)
{
	char py[512], cmd[2048];
	snprintf(py, sizeof(py), "%s/.crit-check.py", dir);
	FILE *f = fopen(py, "w");
	if (!f)
		return false;
	fprintf(f,
		"import json, sys\n"
		"d = json.load(open(sys.argv[1])); e = d['entries']\n"
		"ok = (%s)\n"
		"if not ok: print(json.dumps(d)[:3000])\n"
		"sys.exit(0 if ok else 1)\n",
		expr);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "crit decode -i '%s/%s' > '%s/.crit.json' 2>'%s/.crit.err' && "
		 "python3 '%s' '%s/.crit.json'",
		 dir, img, dir, dir, py, dir);
	int rc = system(cmd);
	if (rc != 0) {
		char errf[512];
		snprintf(errf, sizeof(errf), "%s/.crit.err", dir);
		FILE *ef = fopen(errf, "r");
		char line[512];
		while (ef && fgets(line, sizeof(line), ef))
			fprintf(stderr, "crit %s: %s", img, line);
		if (ef)
			fclose(ef);
	}
	return rc == 0;
}

static void check_with_crit(void)
{
	if (access("/usr/bin/crit", X_OK) != 0) {
		printf("crit not installed (apt-get install criu): crit checks skipped\n");
		return;
	}
	CHECK(crit_check("inventory.img", "d['magic']=='INVENTORY' and e[0]['img_version']==2 "
					  "and e[0]['fdinfo_per_id'] and e[0]['root_ids']['vm_id']==1"));
	CHECK(crit_check("pstree.img",
			 "d['magic']=='PSTREE' and e[0]['pid']==4242 and e[0]['threads']==[4242,4243]"));
	CHECK(crit_check("ids-4242.img", "e[0]['files_id']==2 and e[0]['sighand_id']==2"));
	CHECK(crit_check("core-4242.img",
			 "e[0]['mtype']=='X86_64' and len(e[0]['tc']['sigactions'])==62 and "
			 "e[0]['tc']['comm']=='synthetic' and "
			 "len(e[0]['tc']['rlimits']['rlimits'])==16 and "
			 "int(str(e[0]['thread_info']['gpregs']['ip']),0)==0x7f0011223344 and "
			 "int(str(e[0]['thread_info']['gpregs']['ax']),0)==2**64-4 and "
			 "len(e[0]['thread_info']['fpregs']['st_space'])==32 and "
			 "len(e[0]['thread_info']['fpregs']['xmm_space'])==64 and "
			 "len(e[0]['thread_info']['fpregs']['xsave']['hi16_zmm'])==128 and "
			 "e[0]['thread_core']['sched_nice']==-5 and "
			 "e[0]['thread_core']['creds']['groups']==[4,27,1001] and "
			 "e[0]['thread_core']['rseq_entry']['rseq_abi_size']==32 and "
			 "e[0]['tc']['oom_score_adj']==-500 and "
			 "e[0]['tc']['timers']['posix'][0]['notify_thread_id']==-1"));
	CHECK(crit_check("core-4243.img", "'tc' not in e[0] and e[0]['thread_core']['comm']=="
					  "'worker-4243'"));
	CHECK(crit_check("mm-4242.img",
			 "len(e[0]['vmas'])==3 and e[0]['vmas'][0]['fd']==-1 and "
			 "int(str(e[0]['vmas'][1]['start']),0)==0x500000 and "
			 "len(e[0]['mm_saved_auxv'])==4 and e[0]['exe_file_id']==1 and "
			 "e[0]['dumpable']==1"));
	CHECK(crit_check("pagemap-4242.img",
			 "e[0]['pages_id']==1 and len(e)==4 and e[1]['nr_pages']==2 and "
			 "int(str(e[1]['vaddr']),0)==0x500000 and e[3]['nr_pages']==3"));
	CHECK(crit_check("files.img",
			 "len(e)==4 and e[0]['type']=='REG' and e[1]['reg']['name']=='/tmp/data' and "
			 "e[1]['reg']['pos']==5 and e[2]['type']=='PIPE' and "
			 "e[3]['pipe']['pipe_id']==777"));
	CHECK(crit_check("fdinfo-2.img", "len(e)==4 and e[2]['fd']==5 and e[2]['type']=='PIPE'"));
	CHECK(crit_check("fs-4242.img", "e[0]['cwd_id']==1 and e[0]['umask']==18"));
	CHECK(crit_check("pipes-data.img",
			 "len(e)==2 and e[0]['bytes']==10 and e[0]['pipe_id']==777 and "
			 "__import__('base64').b64decode(e[0]['extra'])==b'hello-pipe'"));
	CHECK(crit_check("timens-0.img", "e[0]['monotonic']['tv_sec']==12345 and "
					 "e[0]['boottime']['tv_nsec']==789"));
	CHECK(crit_check("seccomp.img", "len(e[0]['seccomp_filters'])==1"));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "crit x '%s' ps | grep -q ' 4242 .*synthetic'", dir);
	CHECKF(system(cmd) == 0, "crit x ps");
	snprintf(cmd, sizeof(cmd), "crit x '%s' fds | grep -q '/tmp/data'", dir);
	CHECKF(system(cmd) == 0, "crit x fds");
	CHECK(crit_check("tty-info.img",
			 "e[0]['type']=='PTY' and e[0]['pty']['index']==3 and "
			 "e[0]['winsize']['ws_col']==80"));
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fp-test-images.%d", (int)getpid());
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(dir, &e) == 0, "%s", e.msg);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		perror(dir);
		return 1;
	}
	write_set();
	read_set();
	check_modes();
	check_with_crit();
	check_field_errors();

	check_corruption("core-4242.img", true);
	check_corruption("mm-4242.img", true);
	check_corruption("inventory.img", true);
	check_corruption("fs-4242.img", true);
	check_corruption("timens-0.img", true);
	check_corruption("pagemap-4242.img", false);
	check_corruption("files.img", false);
	check_corruption("pipes-data.img", false);
	check_bad_magic();
	CHECK(img_sync_dir(dfd, &e) == 0);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (getenv("FP_TEST_KEEP"))
		printf("kept %s\n", dir);
	else if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	close(dfd);
	return fp_test_done();
}
