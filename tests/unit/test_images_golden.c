/* Golden bytes for every CRIU message forkpoint writes. One image file per
 * kind, every field set to a distinct value, is written through the public
 * writers (cr_write_*) and compared byte for byte with tests/unit/golden/.
 * Each file is then read back (cr_read_*) and written again: the bytes must
 * not change, so the readers keep every field. The golden files were made by
 * the hand-written codec that preceded libprotobuf-c; keeping them proves the
 * two encode alike.
 *   FP_GOLDEN_UPDATE=1   rewrite the golden files instead of comparing
 *   FP_ROUNDTRIP_DIR=D   also read and rewrite every known image of D (a real
 *                        dump) and compare the bytes */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_io.h"
#include "images/criu_msgs_ipc.h"

static char golden[512];

/* ---- fixtures: every field of every message --------------------------- */

static cr_fown fown(uint32_t k)
{
	return (cr_fown){ .uid = k, .euid = k + 1, .signum = k + 2, .pid_type = k + 3, .pid = k + 4 };
}

static void fill_core(cr_core *c, bool leader)
{
	cr_core_init(c, leader);
	c->has_ids = true; /* legacy, but it is in the message */
	c->ids = (cr_ids){ .vm_id = 1, .files_id = 2, .fs_id = 3, .sighand_id = 4, .has_pid_ns_id = true,
			   .pid_ns_id = 5, .has_time_ns_id = true, .time_ns_id = 12 };
	cr_thread_info *ti = &c->thread_info;
	ti->clear_tid_addr = 0x7f00000002d0ull;
	uint64_t *regs = &ti->gpregs.r15;
	for (int i = 0; i < 27; i++)
		regs[i] = 0x100000001ull * (uint64_t)(i + 1);
	ti->gpregs.ax = (uint64_t)-4;
	ti->gpregs.mode = CR_REGS_COMPAT;
	cr_fpregs *fp = &ti->fpregs;
	fp->swd = 1, fp->twd = 2, fp->fop = 3, fp->rip = 0x401000, fp->rdp = 0x402000;
	fp->mxcsr_mask = 0xffbf;
	for (int i = 0; i < 32; i++)
		fp->st_space[i] = 0x11110000u + (uint32_t)i;
	for (int i = 0; i < 64; i++)
		fp->xmm_space[i] = 0xabcd0000u + (uint32_t)i;
	fp->has_xsave = true;
	cr_xsave *x = &fp->xsave;
	x->xstate_bv = 0x2e7;
	x->n_ymmh_space = 64, x->n_bndreg_state = 8, x->n_bndcsr_state = 8, x->n_opmask_reg = 8;
	x->n_zmm_upper = 64, x->n_hi16_zmm = 128, x->n_pkru = 2;
	for (int i = 0; i < 64; i++)
		x->ymmh_space[i] = 0x5a5a0000u + (uint32_t)i, x->zmm_upper[i] = 1ull << (i % 64);
	for (int i = 0; i < 8; i++)
		x->bndreg_state[i] = (uint64_t)i, x->bndcsr_state[i] = (uint64_t)i * 3,
		x->opmask_reg[i] = ~(uint64_t)i;
	for (int i = 0; i < 128; i++)
		x->hi16_zmm[i] = (uint64_t)i << 40;
	x->pkru[0] = 0x55555554;
	x->has_cet = true;
	x->cet = (cr_cet){ 3, 0x7ff000001000ull };
	ti->n_tls = 3;
	for (int i = 0; i < 3; i++)
		ti->tls[i] = (cr_user_desc){ .entry_number = 12 + (uint32_t)i, .base_addr = 0x1000u * (uint32_t)i,
					     .limit = 0xfffff, .seg_32bit = true, .contents_h = i == 0,
					     .contents_l = i == 1, .read_exec_only = true, .limit_in_pages = true,
					     .seg_not_present = i == 2, .usable = true };

	cr_thread_core *th = &c->thread_core;
	th->futex_rla = 0x7f00000002e0ull;
	th->has_sched_nice = true, th->sched_nice = -5;
	th->has_sched_policy = true, th->sched_policy = 3;
	th->has_sched_prio = true, th->sched_prio = 7;
	th->has_blk_sigset = true, th->blk_sigset = 0x4000;
	th->sas = (cr_sas){ 0x7f0000100000ull, 8192, 0 };
	th->has_pdeath_sig = true, th->pdeath_sig = 15;
	th->has_signals_p = true;
	th->signals_p.n_signals = 2;
	th->signals_p.signals = calloc(2, sizeof(cr_siginfo));
	for (int i = 0; i < 2; i++) {
		th->signals_p.signals[i].siginfo_len = 128;
		th->signals_p.signals[i].siginfo = calloc(1, 128);
		th->signals_p.signals[i].siginfo[0] = (uint8_t)(10 + i);
	}
	cr_creds *cr = &th->creds;
	cr->uid = 1000, cr->gid = 1001, cr->euid = 1002, cr->egid = 1003, cr->suid = 1004;
	cr->sgid = 1005, cr->fsuid = 1006, cr->fsgid = 1007;
	for (int i = 0; i < 2; i++)
		cr->cap_inh[i] = 1u + (uint32_t)i, cr->cap_prm[i] = 3u + (uint32_t)i,
		cr->cap_eff[i] = 5u + (uint32_t)i, cr->cap_bnd[i] = 0xfffffff0u + (uint32_t)i,
		cr->cap_amb[i] = 9u + (uint32_t)i;
	cr->n_cap_amb = 2;
	cr->secbits = 0x2f;
	cr->n_groups = 3;
	cr->groups = malloc(3 * sizeof(uint32_t));
	cr->groups[0] = 4, cr->groups[1] = 27, cr->groups[2] = 100001;
	cr->lsm_profile = strdup("unconfined");
	cr->lsm_sockcreate = strdup("sock-label");
	cr->has_apparmor_data = true;
	cr->apparmor_data_len = 5;
	cr->apparmor_data = malloc(5);
	memcpy(cr->apparmor_data, "aa\0bb", 5);
	cr->has_no_new_privs = true, cr->no_new_privs = 1;
	th->has_seccomp_mode = true, th->seccomp_mode = CR_SECCOMP_FILTER;
	th->has_seccomp_filter = true, th->seccomp_filter = 2;
	th->has_comm = true;
	snprintf(th->comm, sizeof(th->comm), "worker-%d", leader);
	th->has_blk_sigset_extended = true, th->blk_sigset_extended = 1ull << 40;
	th->has_rseq_entry = true;
	th->rseq_entry = (cr_rseq){ 0x7f00000008a0ull, 32, 0x53053053, true, 0x7f00000009a0ull };
	th->has_cg_set = true, th->cg_set = 6;

	if (!leader)
		return;
	cr_task_core *tc = &c->tc;
	tc->task_state = CR_TASK_STOPPED, tc->exit_code = 9, tc->personality = 0x8, tc->flags = 0x400000;
	tc->blk_sigset = 0x10002;
	snprintf(tc->comm, sizeof(tc->comm), "golden");
	tc->timers.real = (cr_itimer){ 1, 2, 3, 4 };
	tc->timers.virt = (cr_itimer){ 5, 6, 7, 8 };
	tc->timers.prof = (cr_itimer){ 9, 10, 11, 12 };
	tc->timers.n_posix = 2;
	tc->timers.posix = calloc(2, sizeof(cr_posix_timer));
	for (uint32_t i = 0; i < 2; i++)
		tc->timers.posix[i] = (cr_posix_timer){ .it_id = i, .clock_id = 1 + i, .si_signo = 14,
							.it_sigev_notify = 4, .sival_ptr = 0xdead0000ull + i,
							.overrun = 2, .isec = 3, .insec = 4, .vsec = 5,
							.vnsec = 6, .has_notify_thread_id = i == 1,
							.notify_thread_id = -1 };
	tc->rlimits.n_rlimits = 16;
	tc->rlimits.rlimits[7] = (cr_rlimit){ 1024, 524288 };
	tc->has_cg_set = true, tc->cg_set = 2;
	tc->has_signals_s = true;
	tc->signals_s.n_signals = 1;
	tc->signals_s.signals = calloc(1, sizeof(cr_siginfo));
	tc->signals_s.signals[0].siginfo_len = 3;
	tc->signals_s.signals[0].siginfo = (uint8_t *)strdup("sig");
	tc->loginuid = 1000;
	tc->has_oom_score_adj = true, tc->oom_score_adj = -500;
	for (int i = 0; i < CR_SIGACTIONS; i++)
		tc->sigactions[i] = (cr_sa){ .sigaction = 0x401000u + (uint64_t)i, .flags = 0x04000000,
					     .restorer = 0x7f0000005000ull, .mask = (uint64_t)i,
					     .has_compat_sigaction = true, .compat_sigaction = i == 3,
					     .has_mask_extended = i == 4, .mask_extended = 77 };
	tc->has_child_subreaper = true, tc->child_subreaper = true;
	tc->has_blk_sigset_extended = true, tc->blk_sigset_extended = 5;
	tc->has_stop_signo = true, tc->stop_signo = 19;
	tc->has_membarrier_registration_mask = true, tc->membarrier_registration_mask = 0x18;
}

static void fill_mm(cr_mm *mm)
{
	memset(mm, 0, sizeof(*mm));
	uint64_t *w = &mm->mm_start_code;
	for (int i = 0; i < 11; i++)
		w[i] = 0x400000ull + 0x1000ull * (uint64_t)i;
	mm->exe_file_id = 1;
	mm->n_mm_saved_auxv = 4;
	mm->mm_saved_auxv = calloc(4, sizeof(uint64_t));
	mm->mm_saved_auxv[0] = 6, mm->mm_saved_auxv[1] = 4096;
	mm->mm_saved_auxv[2] = 33, mm->mm_saved_auxv[3] = 0x7fff00001000ull;
	mm->n_vmas = 2;
	mm->vmas = calloc(2, sizeof(cr_vma));
	mm->vmas[0] = (cr_vma){ .start = 0x400000, .end = 0x401000, .pgoff = 4, .shmid = 1, .prot = 5,
				.flags = 2, .status = 0x41, .fd = -1, .has_madv = true, .madv = 0x10000,
				.has_fdflags = true, .fdflags = 2 };
	mm->vmas[1] = (cr_vma){ .start = 0x7fff00000000ull, .end = 0x7fff00001000ull, .prot = 3,
				.flags = 0x22, .status = 0x221, .fd = -1 };
	mm->has_dumpable = true, mm->dumpable = 1;
	mm->n_aios = 1;
	mm->aios = calloc(1, sizeof(cr_aio_ring));
	mm->aios[0] = (cr_aio_ring){ 0x7f0000300000ull, 128, 8192 };
	mm->has_thp_disabled = true, mm->thp_disabled = true;
}

static cr_sk_opts skopts(void)
{
	return (cr_sk_opts){ .so_sndbuf = 212992, .so_rcvbuf = 131072, .so_snd_tmo_sec = 1,
			     .so_snd_tmo_usec = 2, .so_rcv_tmo_sec = 3, .so_rcv_tmo_usec = 4,
			     .has_reuseaddr = true, .reuseaddr = true, .has_so_priority = true,
			     .so_priority = 6, .has_so_rcvlowat = true, .so_rcvlowat = 1,
			     .has_so_mark = true, .so_mark = 9, .has_so_passcred = true,
			     .has_so_reuseport = true, .so_reuseport = true, .has_so_broadcast = true,
			     .has_so_keepalive = true, .so_keepalive = true, .has_tcp_keepcnt = true,
			     .tcp_keepcnt = 9, .has_tcp_keepidle = true, .tcp_keepidle = 7200,
			     .has_tcp_keepintvl = true, .tcp_keepintvl = 75, .has_so_oobinline = true,
			     .so_oobinline = 1, .has_so_linger = true, .so_linger = 30 };
}

#define NFILES 12
static void fill_files(cr_file f[NFILES])
{
	memset(f, 0, NFILES * sizeof(*f));
	for (uint32_t i = 0; i < NFILES; i++)
		f[i].id = i + 1;
	f[0].type = CR_FD_REG, f[0].has_reg = true;
	f[0].reg = (cr_reg_file){ .id = 1, .flags = 0x8002, .pos = 5, .fown = fown(1),
				  .name = strdup("/tmp/data"), .has_mnt_id = true, .mnt_id = -1,
				  .has_size = true, .size = 1234, .has_ext = true, .ext = false,
				  .has_mode = true, .mode = 0100644, .has_checksum = true, .checksum = 11,
				  .has_checksum_config = true, .checksum_config = 12,
				  .has_checksum_parameter = true, .checksum_parameter = 13 };
	f[0].reg.n_build_id = 2;
	f[0].reg.build_id = malloc(2 * sizeof(uint32_t));
	f[0].reg.build_id[0] = 0xdeadbeef, f[0].reg.build_id[1] = 7;
	f[1].type = CR_FD_INETSK, f[1].has_isk = true;
	f[1].isk = (cr_inet_sk){ .id = 2, .ino = 333, .family = 10, .type = 1, .proto = 6, .state = 10,
				 .src_port = 8080, .dst_port = 0, .flags = 2, .backlog = 128,
				 .n_src_addr = 4, .src_addr = { 0, 0, 0, 0x01000000 }, .n_dst_addr = 1,
				 .dst_addr = { 0x0100007f }, .fown = fown(2), .opts = skopts(),
				 .has_v6only = true, .v6only = true };
	f[2].type = CR_FD_EVENTFD, f[2].has_efd = true;
	f[2].efd = (cr_eventfd){ .id = 3, .flags = 0x800, .fown = fown(3), .counter = 1ull << 50 };
	f[3].type = CR_FD_EVENTPOLL, f[3].has_epfd = true;
	f[3].epfd = (cr_eventpoll){ .id = 4, .flags = 2, .fown = fown(4), .n_tfd = 2 };
	f[3].epfd.tfd = calloc(2, sizeof(cr_epoll_tfd));
	f[3].epfd.tfd[0] = (cr_epoll_tfd){ .id = 3, .tfd = 5, .events = 1, .data = 99 };
	f[3].epfd.tfd[1] = (cr_epoll_tfd){ .id = 2, .tfd = 6, .events = 0x80000001u, .data = 1ull << 63,
					   .has_dev = true, .dev = 8, .has_inode = true, .inode = 4242,
					   .has_pos = true, .pos = 17 };
	f[4].type = CR_FD_SIGNALFD, f[4].has_sgfd = true;
	f[4].sgfd = (cr_signalfd){ .id = 5, .flags = 0x800, .fown = fown(5), .sigmask = 0x4002 };
	f[5].type = CR_FD_TIMERFD, f[5].has_tfd = true;
	f[5].tfd = (cr_timerfd){ .id = 6, .flags = 0x80800, .fown = fown(6), .clockid = 1, .ticks = 3,
				 .settime_flags = 1, .vsec = 4, .vnsec = 5, .isec = 6, .insec = 7 };
	f[6].type = CR_FD_UNIXSK, f[6].has_usk = true;
	f[6].usk = (cr_unix_sk){ .id = 7, .ino = 444, .type = 1, .state = 1, .flags = 2, .uflags = 3,
				 .backlog = 4, .peer = 445, .fown = fown(7), .opts = skopts(),
				 .name_len = 6, .has_file_perms = true,
				 .file_perms = { .mode = 0140777, .uid = 106, .gid = 112 } };
	f[6].usk.name = malloc(6);
	memcpy(f[6].usk.name, "\0abs-x", 6);
	f[7].type = CR_FD_FIFO, f[7].has_fifo = true;
	f[7].fifo = (cr_fifo){ .id = 8, .pipe_id = 9999, .has_regf_id = true, .regf_id = 12,
			       .has_wait_writer = true, .wait_writer = true };
	f[8].type = CR_FD_PIPE, f[8].has_pipe = true;
	f[8].pipe = (cr_pipe){ .id = 9, .pipe_id = 777, .flags = 1, .fown = fown(9) };
	f[9].type = CR_FD_TTY, f[9].has_tty = true;
	f[9].tty = (cr_tty_file){ .id = 10, .tty_info_id = 9, .flags = 2, .fown = fown(10),
				  .has_regf_id = true, .regf_id = 11 };
	f[10].type = CR_FD_MEMFD, f[10].has_memfd = true;
	f[10].memfd = (cr_memfd_file){ .id = 11, .flags = 2, .pos = 100, .fown = fown(11), .inode_id = 3 };
	f[11].type = CR_FD_REG, f[11].has_reg = true;
	f[11].reg = (cr_reg_file){ .id = 12, .flags = 0, .name = strdup("/tmp/fifo") };
}

/* ---- writing the set -------------------------------------------------- */

static uint8_t pipe_bytes[] = "hello-pipe";
static uint8_t ghost_bytes[] = "ghost contents";

/* Writes one image of every kind into dfd. */
static void write_set(int dfd)
{
	fp_error e = { 0 };
	cr_inventory inv = { .img_version = 2, .has_fdinfo_per_id = true, .fdinfo_per_id = true,
			     .has_root_ids = true,
			     .root_ids = { .vm_id = 1, .files_id = 1, .fs_id = 1, .sighand_id = 1,
					   .has_net_ns_id = true, .net_ns_id = 6, .has_ipc_ns_id = true,
					   .ipc_ns_id = 7, .has_uts_ns_id = true, .uts_ns_id = 8,
					   .has_mnt_ns_id = true, .mnt_ns_id = 9, .has_user_ns_id = true,
					   .user_ns_id = 10, .has_cgroup_ns_id = true, .cgroup_ns_id = 11 },
			     .has_ns_per_id = true, .ns_per_id = true, .has_root_cg_set = true,
			     .root_cg_set = 1, .has_lsmtype = true, .lsmtype = CR_APPARMOR,
			     .has_dump_uptime = true, .dump_uptime = 123456789, .has_pre_dump_mode = true,
			     .pre_dump_mode = 2, .has_tcp_close = true, .tcp_close = true,
			     .has_network_lock_method = true, .network_lock_method = 1,
			     .has_plugins_entry = true, .dump_criu_run_id = "run-id-1",
			     .has_allow_uprobes = true, .allow_uprobes = true };
	CHECKF(cr_write_inventory(dfd, &inv, &e) == 0, "%s", e.msg);

	uint32_t threads[3] = { 4242, 4243, 100000 };
	cr_pstree ps[2] = { { .pid = 4242, .ppid = 1, .pgid = 4242, .sid = 4240, .threads = threads,
			      .n_threads = 3 },
			    { .pid = 4250, .ppid = 4242, .pgid = 4242, .sid = 4240 } };
	CHECKF(cr_write_pstree(dfd, ps, 2, &e) == 0, "%s", e.msg);

	cr_ids ids = { .vm_id = 2, .files_id = 3, .fs_id = 4, .sighand_id = 5, .has_pid_ns_id = true,
		       .pid_ns_id = 6, .has_time_ns_id = true, .time_ns_id = 7 };
	CHECKF(cr_write_ids(dfd, 4242, &ids, &e) == 0, "%s", e.msg);

	cr_core c;
	fill_core(&c, true);
	CHECKF(cr_write_core(dfd, 4242, &c, &e) == 0, "%s", e.msg);
	cr_core_free(&c);
	fill_core(&c, false);
	CHECKF(cr_write_core(dfd, 4243, &c, &e) == 0, "%s", e.msg);
	cr_core_free(&c);

	cr_mm mm;
	fill_mm(&mm);
	CHECKF(cr_write_mm(dfd, 4242, &mm, &e) == 0, "%s", e.msg);
	cr_mm_free(&mm);

	cr_pagemap_head h = { .pages_id = 1 };
	cr_pagemap_entry pe[3] = {
		{ .vaddr = 0x500000, .nr_pages = 2, .has_flags = true, .flags = CR_PE_PRESENT },
		{ .vaddr = 0x7ffd00000000ull, .nr_pages = 1, .has_in_parent = true, .in_parent = true },
		{ .vaddr = 0x7ffd00001000ull, .nr_pages = 1ull << 33, .has_flags = true,
		  .flags = CR_PE_PRESENT | CR_PE_LAZY },
	};
	CHECKF(cr_write_pagemap(dfd, 4242, &h, pe, 3, &e) == 0, "%s", e.msg);
	CHECKF(cr_write_pagemap_shmem(dfd, 5, &h, pe, 1, &e) == 0, "%s", e.msg);

	cr_file f[NFILES];
	fill_files(f);
	CHECKF(cr_write_files(dfd, f, NFILES, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < NFILES; i++)
		cr_file_free(&f[i]);

	cr_fdinfo fi[2] = { { .id = 2, .flags = 1, .type = CR_FD_INETSK, .fd = 3,
			      .xattr_security_selinux = "system_u:object_r:x" },
			    { .id = 9, .type = CR_FD_PIPE, .fd = 1000 } };
	CHECKF(cr_write_fdinfo(dfd, 3, fi, 2, &e) == 0, "%s", e.msg);

	cr_fs fs = { .cwd_id = 1, .root_id = 2, .has_umask = true, .umask = 022 };
	CHECKF(cr_write_fs(dfd, 4242, &fs, &e) == 0, "%s", e.msg);

	cr_pipe_data pd[3] = {
		{ .pipe_id = 777, .bytes = 10, .has_size = true, .size = 65536, .data = pipe_bytes },
		{ .pipe_id = 778, .bytes = 0, .data = NULL },
		{ .pipe_id = 9999, .bytes = 5, .data = pipe_bytes, .fifo = true },
	};
	CHECKF(cr_write_pipes_data(dfd, pd, 3, &e) == 0, "%s", e.msg);

	cr_timens tn = { .monotonic = { 12345, 678 }, .boottime = { 23456, 789 } };
	CHECKF(cr_write_timens(dfd, 0, &tn, &e) == 0, "%s", e.msg);

	uint8_t filt[16] = { 6, 0, 0, 0, 0, 0, 0xff, 0x7f, 0x20, 0, 0, 0, 4, 0, 0, 0 };
	cr_seccomp_filter sf[2] = { { .filter = filt, .filter_len = 16 },
				    { .filter = filt, .filter_len = 8, .has_prev = true, .prev = 0,
				      .has_flags = true, .flags = 1 } };
	cr_seccomp sc = { .seccomp_filters = sf, .n_seccomp_filters = 2 };
	CHECKF(cr_write_seccomp(dfd, &sc, &e) == 0, "%s", e.msg);

	cr_memfd_inode mi[2] = { { .name = "ct-shmem", .uid = 1, .gid = 2, .size = 1 << 20, .shmid = 5,
				   .seals = 0xf, .inode_id = 3 },
				 { .name = "", .inode_id = 1ull << 40 } };
	CHECKF(cr_write_memfd_inodes(dfd, mi, 2, &e) == 0, "%s", e.msg);

	cr_ipc_shm shm[2] = { { .desc = { .key = 0x46500917, .uid = 1, .gid = 2, .cuid = 3, .cgid = 4, .mode = 0640,
					  .id = 6 },
				.size = 262144, .has_in_pagemaps = true, .in_pagemaps = true },
			      { .desc = { .mode = 01600, .id = 1u << 31 >> 1 }, .size = 56, .has_in_pagemaps = true,
				.in_pagemaps = true, .has_hugetlb_flag = true, .hugetlb_flag = 0 } };
	CHECKF(cr_write_ipc_shm(dfd, "ipcns-shm-4026531839.img", shm, 2, &e) == 0, "%s", e.msg);

	cr_tty_info ti[2] = { { .id = 9, .type = CR_TTY_PTY, .locked = true, .exclusive = true,
				.packet_mode = true, .sid = 4242, .pgrp = 4243, .rdev = 0x8800,
				.has_termios = true, .has_termios_locked = true, .has_winsize = true,
				.winsize = { 24, 80, 640, 480 }, .has_pty = true, .pty = { 3 },
				.has_dev = true, .dev = 0x17, .has_uid = true, .uid = 1000,
				.has_gid = true, .gid = 5 },
			      { .id = 10, .type = CR_TTY_CONSOLE } };
	ti[0].termios = (cr_termios){ 1, 2, 3, 4, 5, 6, 7, .n_c_cc = 19 };
	for (int i = 0; i < 19; i++)
		ti[0].termios.c_cc[i] = (uint32_t)i * 3;
	ti[0].termios_locked = (cr_termios){ 8, 9, 10, 11, 12, 13, 14, .n_c_cc = 0 };
	CHECKF(cr_write_tty_info(dfd, ti, 2, &e) == 0, "%s", e.msg);

	cr_remap_fpath rm[2] = { { .orig_id = 1, .remap_id = 0x10 },
				 { .orig_id = 2, .remap_id = 0x11, .has_remap_type = true,
				   .remap_type = CR_REMAP_GHOST } };
	CHECKF(cr_write_remaps(dfd, rm, 2, &e) == 0, "%s", e.msg);

	cr_ghost_file g = { .uid = 1000, .gid = 1001, .mode = 0100600, .has_dev = true, .dev = 0x803,
			    .has_ino = true, .ino = 1ull << 35, .has_rdev = true, .rdev = 0,
			    .has_atim = true, .atim = { 1700000000, 5 }, .has_mtim = true,
			    .mtim = { 1700000001, 6 }, .has_size = true, .size = sizeof(ghost_bytes) };
	CHECKF(cr_write_ghost(dfd, 0x11, &g, ghost_bytes, &e) == 0, "%s", e.msg);

	cr_file_lock fl[3] = { { .flag = CR_FL_POSIX, .type = 1, .pid = 4242, .fd = 3, .start = 10, .len = 0 },
			       { .flag = CR_FL_FLOCK, .type = 0, .pid = 4250, .fd = 4 },
			       { .flag = CR_FL_OFD, .type = 1, .pid = -1, .fd = 5, .start = 1ull << 40,
				 .len = 4096 } };
	CHECKF(cr_write_file_locks(dfd, fl, 3, &e) == 0, "%s", e.msg);

	uint8_t inq[] = "bytes to read", outq[] = "sent, then unsent";
	cr_tcp_stream ts = { .inq_len = 13, .inq_seq = 0xfedcba98u, .outq_len = 17, .outq_seq = 0x12345678u,
			     .opt_mask = 7, .snd_wscale = 9, .mss_clamp = 65495, .has_rcv_wscale = true, .rcv_wscale = 10,
			     .has_timestamp = true, .timestamp = 0x89abcdefu, .has_cork = true, .cork = true,
			     .has_nodelay = true, .nodelay = true, .has_unsq_len = true, .unsq_len = 6,
			     .has_snd_wl1 = true, .snd_wl1 = 0xfedcba80u, .has_snd_wnd = true, .snd_wnd = 65536,
			     .has_max_window = true, .max_window = 131072, .has_rcv_wnd = true, .rcv_wnd = 65535,
			     .has_rcv_wup = true, .rcv_wup = 0xfedcba90u, .inq = inq, .outq = outq };
	CHECKF(cr_write_tcp_stream(dfd, 0x201c6ac, &ts, &e) == 0, "%s", e.msg);
}

/* ---- reading back and writing again ----------------------------------- */

static unsigned long parse_id(const char *name, const char *prefix, int base)
{
	return strtoul(name + strlen(prefix), NULL, base);
}

/* Reads name from src with its cr_read_* and writes it to dst with the
 * matching cr_write_*. 1 done, 0 not an image this test knows, -1 error. */
static int rewrite(int src, int dst, const char *name, fp_error *e)
{
#define PFX(p) (strncmp(name, p, strlen(p)) == 0)
	int rc = 1;
	if (!strcmp(name, "inventory.img")) {
		cr_inventory v;
		if (cr_read_inventory(src, &v, e) || cr_write_inventory(dst, &v, e))
			rc = -1;
		cr_inventory_free(&v);
	} else if (!strcmp(name, "pstree.img")) {
		cr_pstree *p;
		size_t n;
		if (cr_read_pstree(src, &p, &n, e) || cr_write_pstree(dst, p, n, e))
			rc = -1;
		else
			cr_free_array(&cr_pstree_desc, p, n);
	} else if (PFX("ids-")) {
		cr_ids v;
		uint32_t id = (uint32_t)parse_id(name, "ids-", 10);
		rc = cr_read_ids(src, id, &v, e) || cr_write_ids(dst, id, &v, e) ? -1 : 1;
	} else if (PFX("core-")) {
		cr_core v;
		uint32_t id = (uint32_t)parse_id(name, "core-", 10);
		if (cr_read_core(src, id, &v, e) || cr_write_core(dst, id, &v, e))
			rc = -1;
		cr_core_free(&v);
	} else if (PFX("mm-")) {
		cr_mm v;
		uint32_t id = (uint32_t)parse_id(name, "mm-", 10);
		if (cr_read_mm(src, id, &v, e) || cr_write_mm(dst, id, &v, e))
			rc = -1;
		cr_mm_free(&v);
	} else if (PFX("pagemap-shmem-")) {
		cr_pagemap_head h;
		cr_pagemap_entry *pe;
		size_t n;
		uint64_t id = parse_id(name, "pagemap-shmem-", 10);
		if (cr_read_pagemap_shmem(src, id, &h, &pe, &n, e))
			return -1;
		rc = cr_write_pagemap_shmem(dst, id, &h, pe, n, e) ? -1 : 1;
		free(pe);
	} else if (PFX("pagemap-")) {
		cr_pagemap_head h;
		cr_pagemap_entry *pe;
		size_t n;
		uint32_t id = (uint32_t)parse_id(name, "pagemap-", 10);
		if (cr_read_pagemap(src, id, &h, &pe, &n, e))
			return -1;
		rc = cr_write_pagemap(dst, id, &h, pe, n, e) ? -1 : 1;
		free(pe);
	} else if (!strcmp(name, "files.img")) {
		cr_file *f;
		size_t n;
		if (cr_read_files(src, &f, &n, e))
			return -1;
		rc = cr_write_files(dst, f, n, e) ? -1 : 1;
		cr_free_array(&cr_file_desc, f, n);
	} else if (PFX("fdinfo-")) {
		cr_fdinfo *f;
		size_t n;
		uint32_t id = (uint32_t)parse_id(name, "fdinfo-", 10);
		if (cr_read_fdinfo(src, id, &f, &n, e))
			return -1;
		rc = cr_write_fdinfo(dst, id, f, n, e) ? -1 : 1;
		cr_free_array(&cr_fdinfo_desc, f, n);
	} else if (PFX("fs-")) {
		cr_fs v;
		uint32_t id = (uint32_t)parse_id(name, "fs-", 10);
		rc = cr_read_fs(src, id, &v, e) || cr_write_fs(dst, id, &v, e) ? -1 : 1;
	} else if (!strcmp(name, "pipes-data.img") || !strcmp(name, "fifo-data.img")) {
		cr_pipe_data *p;
		size_t n;
		bool fifo = name[0] == 'f';
		if ((fifo ? cr_read_fifo_data(src, &p, &n, e) : cr_read_pipes_data(src, &p, &n, e)))
			return -1;
		for (size_t i = 0; i < n; i++)
			p[i].fifo = fifo;
		rc = cr_write_pipes_data(dst, p, n, e) ? -1 : 1;
		cr_free_pipes_data(p, n);
	} else if (PFX("timens-")) {
		cr_timens v;
		uint32_t id = (uint32_t)parse_id(name, "timens-", 10);
		rc = cr_read_timens(src, id, &v, e) || cr_write_timens(dst, id, &v, e) ? -1 : 1;
	} else if (!strcmp(name, "seccomp.img")) {
		cr_seccomp v;
		if (cr_read_seccomp(src, &v, e) || cr_write_seccomp(dst, &v, e))
			rc = -1;
		cr_seccomp_free(&v);
	} else if (!strcmp(name, "memfd.img")) {
		cr_memfd_inode *m;
		size_t n;
		if (cr_read_memfd_inodes(src, &m, &n, e))
			return -1;
		rc = cr_write_memfd_inodes(dst, m, n, e) ? -1 : 1;
		cr_free_array(&cr_memfd_inode_desc, m, n);
	} else if (PFX("ipcns-shm-")) {
		cr_ipc_shm *m;
		size_t n;
		if (cr_read_ipc_shm(src, name, &m, &n, e))
			return -1;
		rc = cr_write_ipc_shm(dst, name, m, n, e) ? -1 : 1;
		cr_free_array(&cr_ipc_shm_desc, m, n);
	} else if (!strcmp(name, "tty-info.img")) {
		cr_tty_info *t;
		size_t n;
		if (cr_read_tty_info(src, &t, &n, e))
			return -1;
		rc = cr_write_tty_info(dst, t, n, e) ? -1 : 1;
		cr_free_array(&cr_tty_info_desc, t, n);
	} else if (!strcmp(name, "remap-fpath.img")) {
		cr_remap_fpath *r;
		size_t n;
		if (cr_read_remaps(src, &r, &n, e))
			return -1;
		rc = cr_write_remaps(dst, r, n, e) ? -1 : 1;
		cr_free_array(&cr_remap_fpath_desc, r, n);
	} else if (PFX("ghost-file-")) {
		cr_ghost_file g;
		uint8_t *data;
		uint32_t id = (uint32_t)parse_id(name, "ghost-file-", 16);
		if (cr_read_ghost(src, id, 1 << 26, &g, &data, e))
			return -1;
		rc = cr_write_ghost(dst, id, &g, data, e) ? -1 : 1;
		free(data);
	} else if (PFX("tcp-stream-")) {
		cr_tcp_stream t;
		uint32_t ino = (uint32_t)parse_id(name, "tcp-stream-", 16);
		if (cr_read_tcp_stream(src, ino, &t, e))
			return -1;
		rc = cr_write_tcp_stream(dst, ino, &t, e) ? -1 : 1;
		cr_tcp_stream_free(&t);
	} else if (!strcmp(name, "filelocks.img")) {
		cr_file_lock *l;
		size_t n;
		if (cr_read_file_locks(src, &l, &n, e))
			return -1;
		rc = cr_write_file_locks(dst, l, n, e) ? -1 : 1;
		cr_free_array(&cr_file_lock_desc, l, n);
	} else {
		rc = 0;
	}
	return rc;
#undef PFX
}

static bool same_file(int a, int b, const char *name)
{
	uint8_t *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	fp_error e = { 0 };
	bool same = img_read_file(a, name, 1 << 26, &x, &nx, &e) == 0 &&
		    img_read_file(b, name, 1 << 26, &y, &ny, &e) == 0 && nx == ny && !memcmp(x, y, nx);
	if (!same) {
		size_t i = 0;
		while (x && y && i < nx && i < ny && x[i] == y[i])
			i++;
		fprintf(stderr, "%s: %zu and %zu bytes, first difference at byte %zu\n", name, nx, ny, i);
	}
	free(x);
	free(y);
	return same;
}

static int opendir_fd(const char *p)
{
	return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Every known image of src, read and written into a fresh directory,
 * comes out byte-identical. Returns how many images were compared. */
static int roundtrip_dir(const char *src, const char *tmp)
{
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(tmp, &e) == 0, "%s", e.msg);
	int sfd = opendir_fd(src), tfd = opendir_fd(tmp);
	DIR *d = opendir(src);
	CHECKF(sfd >= 0 && tfd >= 0 && d, "%s or %s: %s", src, tmp, strerror(errno));
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		const char *name = de->d_name;
		size_t l = strlen(name);
		if (l < 5 || strcmp(name + l - 4, ".img"))
			continue;
		int rc = rewrite(sfd, tfd, name, &e);
		CHECKF(rc >= 0, "%s/%s: %s", src, name, e.msg);
		if (rc == 1) {
			CHECKF(same_file(sfd, tfd, name), "%s/%s changes when read and written again", src, name);
			n++;
		}
	}
	if (d)
		closedir(d);
	close(sfd);
	close(tfd);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return n;
}

int main(void)
{
	const char *src = getenv("FP_ROOT");
	snprintf(golden, sizeof(golden), "%s/tests/unit/golden", src ? src : ".");
	char dir[256], tmp[300];
	snprintf(dir, sizeof(dir), "/tmp/fp-test-golden.%d", (int)getpid());
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(dir, &e) == 0, "%s", e.msg);
	int dfd = opendir_fd(dir);
	if (dfd < 0) {
		perror(dir);
		return 1;
	}
	write_set(dfd);
	char cmd[1200];
	if (getenv("FP_GOLDEN_UPDATE")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", golden, dir, golden);
		CHECKF(system(cmd) == 0, "%s", cmd);
		printf("golden files written to %s\n", golden);
	}
	int gfd = opendir_fd(golden);
	CHECKF(gfd >= 0, "%s: %s (run from the source tree, or set FP_ROOT)", golden, strerror(errno));
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (gfd >= 0 && d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		CHECKF(same_file(dfd, gfd, de->d_name), "%s differs from the golden file", de->d_name);
		n++;
	}
	if (d)
		closedir(d);
	CHECKF(n == 22, "%d images written, 22 expected", n);

	/* what the readers give back is written to the same bytes */
	snprintf(tmp, sizeof(tmp), "%s.again", dir);
	CHECKF(roundtrip_dir(dir, tmp) == n, "not every image was read back");
	const char *rt = getenv("FP_ROUNDTRIP_DIR");
	if (rt) {
		snprintf(tmp, sizeof(tmp), "%s.rt", dir);
		printf("%s: %d images read and written again\n", rt, roundtrip_dir(rt, tmp));
	}

	if (gfd >= 0)
		close(gfd);
	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return fp_test_done();
}
