/* Tables for inventory, pstree, ids and core images (criu-image-format.md
 * sections 3.1-3.4). */
#include "images/msg_table.h"

#include <string.h>

/* ---- ids, inventory, pstree ------------------------------------------- */
#define T cr_ids
static const pb_fdesc ids_f[] = {
	F_REQ(1, T, U32, vm_id), F_REQ(2, T, U32, files_id),
	F_REQ(3, T, U32, fs_id), F_REQ(4, T, U32, sighand_id),
	F_OPT(5, T, U32, pid_ns_id), F_OPT(6, T, U32, net_ns_id),
	F_OPT(7, T, U32, ipc_ns_id), F_OPT(8, T, U32, uts_ns_id),
	F_OPT(9, T, U32, mnt_ns_id), F_OPT(10, T, U32, user_ns_id),
	F_OPT(11, T, U32, cgroup_ns_id), F_OPT(12, T, U32, time_ns_id),
};
DESC(cr_ids_desc, "task_kobj_ids_entry", T, ids_f);
#undef T

static const pb_mdesc plugins_desc = { "inventory_plugins_entry", sizeof(struct cr_plugins), NULL, 0 };

#define T cr_inventory
static const pb_fdesc inventory_f[] = {
	F_REQ(1, T, U32, img_version),
	F_OPT(2, T, BOOL, fdinfo_per_id),
	F_MSG_OPT(3, T, root_ids, cr_ids_desc),
	F_OPT(4, T, BOOL, ns_per_id),
	F_OPT(5, T, U32, root_cg_set),
	F_OPT(6, T, U32, lsmtype),
	F_OPT(8, T, U64, dump_uptime),
	F_OPT(9, T, U32, pre_dump_mode),
	F_OPT(10, T, BOOL, tcp_close),
	F_OPT(11, T, U32, network_lock_method),
	F_MSG_OPT(12, T, plugins_entry, plugins_desc),
	F_STR(13, T, dump_criu_run_id),
	F_OPT(14, T, BOOL, allow_uprobes),
};
DESC(cr_inventory_desc, "inventory_entry", T, inventory_f);
#undef T

#define T cr_pstree
static const pb_fdesc pstree_f[] = {
	F_REQ(1, T, U32, pid), F_REQ(2, T, U32, ppid),
	F_REQ(3, T, U32, pgid), F_REQ(4, T, U32, sid),
	F_REP_DYN(5, T, U32, threads),
};
DESC(cr_pstree_desc, "pstree_entry", T, pstree_f);
#undef T

/* ---- thread_info_x86 -------------------------------------------------- */
#define T cr_user_regs
static const pb_fdesc regs_f[] = {
	F_REQ(1, T, U64, r15), F_REQ(2, T, U64, r14), F_REQ(3, T, U64, r13),
	F_REQ(4, T, U64, r12), F_REQ(5, T, U64, bp), F_REQ(6, T, U64, bx),
	F_REQ(7, T, U64, r11), F_REQ(8, T, U64, r10), F_REQ(9, T, U64, r9),
	F_REQ(10, T, U64, r8), F_REQ(11, T, U64, ax), F_REQ(12, T, U64, cx),
	F_REQ(13, T, U64, dx), F_REQ(14, T, U64, si), F_REQ(15, T, U64, di),
	F_REQ(16, T, U64, orig_ax), F_REQ(17, T, U64, ip), F_REQ(18, T, U64, cs),
	F_REQ(19, T, U64, flags), F_REQ(20, T, U64, sp), F_REQ(21, T, U64, ss),
	F_REQ(22, T, U64, fs_base), F_REQ(23, T, U64, gs_base), F_REQ(24, T, U64, ds),
	F_REQ(25, T, U64, es), F_REQ(26, T, U64, fs), F_REQ(27, T, U64, gs),
	F_OPTD(28, T, U32, mode, CR_REGS_NATIVE),
};
DESC(cr_user_regs_desc, "user_x86_regs_entry", T, regs_f);
#undef T

#define T cr_cet
static const pb_fdesc cet_f[] = { F_REQ(1, T, U64, cet), F_REQ(2, T, U64, ssp) };
static DESC(cet_desc, "user_x86_cet_entry", T, cet_f);
#undef T

#define T cr_xsave
static const pb_fdesc xsave_f[] = {
	F_REQ(1, T, U64, xstate_bv),
	F_REP_FIXED(2, T, U32, ymmh_space),
	F_REP_FIXED(3, T, U64, bndreg_state),
	F_REP_FIXED(4, T, U64, bndcsr_state),
	F_REP_FIXED(5, T, U64, opmask_reg),
	F_REP_FIXED(6, T, U64, zmm_upper),
	F_REP_FIXED(7, T, U64, hi16_zmm),
	F_REP_FIXED(8, T, U32, pkru),
	F_MSG_OPT(9, T, cet, cet_desc),
};
DESC(cr_xsave_desc, "user_x86_xsave_entry", T, xsave_f);
#undef T

#define T cr_fpregs
static const pb_fdesc fpregs_f[] = {
	F_REQ(1, T, U32, cwd), F_REQ(2, T, U32, swd), F_REQ(3, T, U32, twd),
	F_REQ(4, T, U32, fop), F_REQ(5, T, U64, rip), F_REQ(6, T, U64, rdp),
	F_REQ(7, T, U32, mxcsr), F_REQ(8, T, U32, mxcsr_mask),
	F_REP_FIXED(9, T, U32, st_space),
	F_REP_FIXED(10, T, U32, xmm_space),
	/* 11 padding: unused by CRIU, skipped */
	F_MSG_OPT(13, T, xsave, cr_xsave_desc),
};
DESC(cr_fpregs_desc, "user_x86_fpregs_entry", T, fpregs_f);
#undef T

#define T cr_user_desc
static const pb_fdesc udesc_f[] = {
	F_REQ(1, T, U32, entry_number), F_REQ(2, T, U32, base_addr), F_REQ(3, T, U32, limit),
	F_REQ(4, T, BOOL, seg_32bit), F_REQ(5, T, BOOL, contents_h),
	F_REQ(6, T, BOOL, contents_l), F_REQ(7, T, BOOL, read_exec_only),
	F_REQ(8, T, BOOL, limit_in_pages), F_REQ(9, T, BOOL, seg_not_present),
	F_REQ(10, T, BOOL, usable),
};
static DESC(udesc_desc, "user_desc_t", T, udesc_f);
#undef T

#define T cr_thread_info
static const pb_fdesc tinfo_f[] = {
	F_REQ(1, T, U64, clear_tid_addr),
	F_MSG_REQ(2, T, gpregs, cr_user_regs_desc),
	F_MSG_REQ(3, T, fpregs, cr_fpregs_desc),
	F_REPMSG_FIXED(4, T, tls, udesc_desc),
};
DESC(cr_thread_info_desc, "thread_info_x86", T, tinfo_f);
#undef T

/* ---- task_core_entry -------------------------------------------------- */
#define T cr_itimer
static const pb_fdesc itimer_f[] = {
	F_REQ(1, T, U64, isec), F_REQ(2, T, U64, iusec),
	F_REQ(3, T, U64, vsec), F_REQ(4, T, U64, vusec),
};
static DESC(itimer_desc, "itimer_entry", T, itimer_f);
#undef T

#define T cr_posix_timer
static const pb_fdesc ptimer_f[] = {
	F_REQ(1, T, U32, it_id), F_REQ(2, T, U32, clock_id), F_REQ(3, T, U32, si_signo),
	F_REQ(4, T, U32, it_sigev_notify), F_REQ(5, T, U64, sival_ptr),
	F_REQ(6, T, U32, overrun), F_REQ(7, T, U64, isec), F_REQ(8, T, U64, insec),
	F_REQ(9, T, U64, vsec), F_REQ(10, T, U64, vnsec),
	F_OPT(11, T, I32, notify_thread_id),
};
static DESC(ptimer_desc, "posix_timer_entry", T, ptimer_f);
#undef T

#define T cr_timers
static const pb_fdesc timers_f[] = {
	F_MSG_REQ(1, T, real, itimer_desc), F_MSG_REQ(2, T, virt, itimer_desc),
	F_MSG_REQ(3, T, prof, itimer_desc), F_REPMSG_DYN(4, T, posix, ptimer_desc),
};
static DESC(timers_desc, "task_timers_entry", T, timers_f);
#undef T

#define T cr_rlimit
static const pb_fdesc rlimit_f[] = { F_REQ(1, T, U64, cur), F_REQ(2, T, U64, max) };
static DESC(rlimit_desc, "rlimit_entry", T, rlimit_f);
#undef T

#define T cr_rlimits
static const pb_fdesc rlimits_f[] = { F_REPMSG_FIXED(1, T, rlimits, rlimit_desc) };
static DESC(rlimits_desc, "task_rlimits_entry", T, rlimits_f);
#undef T

#define T cr_siginfo
static const pb_fdesc siginfo_f[] = { F_BYTES_REQ(1, T, siginfo) };
static DESC(siginfo_desc, "siginfo_entry", T, siginfo_f);
#undef T

#define T cr_sigqueue
static const pb_fdesc sigq_f[] = { F_REPMSG_DYN(1, T, signals, siginfo_desc) };
static DESC(sigq_desc, "signal_queue_entry", T, sigq_f);
#undef T

#define T cr_sa
static const pb_fdesc sa_f[] = {
	F_REQ(1, T, U64, sigaction), F_REQ(2, T, U64, flags),
	F_REQ(3, T, U64, restorer), F_REQ(4, T, U64, mask),
	F_OPT(5, T, BOOL, compat_sigaction), F_OPT(6, T, U64, mask_extended),
};
DESC(cr_sa_desc, "sa_entry", T, sa_f);
#undef T

#define T cr_task_core
static const pb_fdesc tc_f[] = {
	F_REQ(1, T, U32, task_state), F_REQ(2, T, U32, exit_code),
	F_REQ(3, T, U32, personality), F_REQ(4, T, U32, flags),
	F_REQ(5, T, U64, blk_sigset), F_STRBUF_REQ(6, T, comm),
	F_MSG_OPT(7, T, timers, timers_desc),
	F_MSG_OPT(8, T, rlimits, rlimits_desc),
	F_OPT(9, T, U32, cg_set),
	F_MSG_OPT(10, T, signals_s, sigq_desc),
	/* 11, 12 old_seccomp_mode/filter: legacy, skipped */
	F_OPT(13, T, U32, loginuid),
	F_OPT(14, T, I32, oom_score_adj),
	F_REPMSG_FIXED(15, T, sigactions, cr_sa_desc),
	F_OPT(18, T, BOOL, child_subreaper),
	F_OPT(20, T, U64, blk_sigset_extended),
	F_OPT(21, T, U32, stop_signo),
	F_OPT(22, T, U32, membarrier_registration_mask),
};
DESC(cr_task_core_desc, "task_core_entry", T, tc_f);
#undef T

/* ---- thread_core_entry ------------------------------------------------ */
#define T cr_sas
static const pb_fdesc sas_f[] = {
	F_REQ(1, T, U64, ss_sp), F_REQ(2, T, U64, ss_size), F_REQ(3, T, U32, ss_flags),
};
static DESC(sas_desc, "thread_sas_entry", T, sas_f);
#undef T

#define T cr_creds
static const pb_fdesc creds_f[] = {
	F_REQ(1, T, U32, uid), F_REQ(2, T, U32, gid), F_REQ(3, T, U32, euid),
	F_REQ(4, T, U32, egid), F_REQ(5, T, U32, suid), F_REQ(6, T, U32, sgid),
	F_REQ(7, T, U32, fsuid), F_REQ(8, T, U32, fsgid),
	F_REP_FIXED(9, T, U32, cap_inh), F_REP_FIXED(10, T, U32, cap_prm),
	F_REP_FIXED(11, T, U32, cap_eff), F_REP_FIXED(12, T, U32, cap_bnd),
	F_REQ(13, T, U32, secbits),
	F_REP_DYN(14, T, U32, groups),
	F_STR(15, T, lsm_profile), F_STR(16, T, lsm_sockcreate),
	F_BYTES_OPT(17, T, apparmor_data),
	F_OPT(18, T, U32, no_new_privs),
	F_REP_FIXED(19, T, U32, cap_amb),
};
DESC(cr_creds_desc, "creds_entry", T, creds_f);
#undef T

#define T cr_rseq
static const pb_fdesc rseq_f[] = {
	F_REQ(1, T, U64, rseq_abi_pointer), F_REQ(2, T, U32, rseq_abi_size),
	F_REQ(3, T, U32, signature), F_OPT(4, T, U64, rseq_cs_pointer),
};
static DESC(rseq_desc, "rseq_entry", T, rseq_f);
#undef T

#define T cr_thread_core
static const pb_fdesc thc_f[] = {
	F_REQ(1, T, U64, futex_rla), F_REQ(2, T, U32, futex_rla_len),
	F_OPT(3, T, S32, sched_nice), F_OPT(4, T, U32, sched_policy),
	F_OPT(5, T, U32, sched_prio), F_OPT(6, T, U64, blk_sigset),
	F_MSG_OPT(7, T, sas, sas_desc), F_OPT(8, T, U32, pdeath_sig),
	F_MSG_OPT(9, T, signals_p, sigq_desc),
	F_MSG_OPT(10, T, creds, cr_creds_desc),
	F_OPT(11, T, U32, seccomp_mode), F_OPT(12, T, U32, seccomp_filter),
	F_STRBUF_OPT(13, T, comm),
	F_OPT(14, T, U64, blk_sigset_extended),
	F_MSG_OPT(15, T, rseq_entry, rseq_desc),
	F_OPT(16, T, U32, cg_set),
};
DESC(cr_thread_core_desc, "thread_core_entry", T, thc_f);
#undef T

#define T cr_core
static const pb_fdesc core_f[] = {
	F_REQ(1, T, U32, mtype),
	F_MSG_OPT(2, T, thread_info, cr_thread_info_desc),
	F_MSG_OPT(3, T, tc, cr_task_core_desc),
	F_MSG_OPT(4, T, ids, cr_ids_desc),
	F_MSG_OPT(5, T, thread_core, cr_thread_core_desc),
};
DESC(cr_core_desc, "core_entry", T, core_f);
#undef T

void cr_pstree_free(cr_pstree *p)
{
	pb_free(&cr_pstree_desc, p);
}

void cr_core_free(cr_core *c)
{
	pb_free(&cr_core_desc, c);
}

void cr_inventory_free(cr_inventory *i)
{
	pb_free(&cr_inventory_desc, i);
}

void cr_core_init(cr_core *c, bool leader)
{
	memset(c, 0, sizeof(*c));
	c->mtype = CR_MARCH_X86_64;
	c->has_thread_info = true;
	cr_thread_info *ti = &c->thread_info;
	ti->gpregs.has_mode = true;
	ti->gpregs.mode = CR_REGS_NATIVE;
	ti->fpregs.cwd = 0x37f;
	ti->fpregs.mxcsr = 0x1f80;
	ti->fpregs.mxcsr_mask = 0xffff;
	ti->fpregs.n_st_space = 32;
	ti->fpregs.n_xmm_space = 64;

	c->has_thread_core = true;
	cr_thread_core *th = &c->thread_core;
	th->futex_rla_len = 24;
	th->has_sas = true;
	th->sas.ss_flags = 2; /* SS_DISABLE */
	th->has_creds = true;
	th->creds.n_cap_inh = th->creds.n_cap_prm = CR_CAP_WORDS;
	th->creds.n_cap_eff = th->creds.n_cap_bnd = CR_CAP_WORDS;

	if (!leader)
		return;
	c->has_tc = true;
	cr_task_core *tc = &c->tc;
	tc->task_state = CR_TASK_ALIVE;
	tc->has_timers = true;
	tc->has_rlimits = true;
	tc->rlimits.n_rlimits = CR_RLIMITS;
	for (size_t i = 0; i < CR_RLIMITS; i++)
		tc->rlimits.rlimits[i].cur = tc->rlimits.rlimits[i].max = UINT64_MAX;
	tc->n_sigactions = CR_SIGACTIONS;
	for (size_t i = 0; i < CR_SIGACTIONS; i++) {
		tc->sigactions[i].has_compat_sigaction = true; /* CRIU writes false */
	}
	tc->has_loginuid = true;
	tc->loginuid = UINT32_MAX;
}
