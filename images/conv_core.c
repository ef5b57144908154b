/* inventory, pstree, ids and core messages (criu-image-format.md 3.1-3.4)
 * between criu_msgs.h and the code protoc-c generates from proto/core.proto. */
#include "images/pb_conv.h"
#include "images/proto/core.pb-c.h"

/* ---- ids, inventory, pstree ------------------------------------------- */
#define IDS(X) X(VAL, vm_id) X(VAL, files_id) X(VAL, fs_id) X(VAL, sighand_id) \
	X(OPT, pid_ns_id) X(OPT, net_ns_id) X(OPT, ipc_ns_id) X(OPT, uts_ns_id) \
	X(OPT, mnt_ns_id) X(OPT, user_ns_id) X(OPT, cgroup_ns_id) X(OPT, time_ns_id)
PB_CONV(cr_ids, cr_ids, Fp__TaskKobjIdsEntry, fp__task_kobj_ids_entry, IDS);

#define PLUGINS(X)
PB_CONV(cr_plugins, struct cr_plugins, Fp__InventoryPluginsEntry, fp__inventory_plugins_entry, PLUGINS);

#define INVENTORY(X) X(VAL, img_version) X(OPT, fdinfo_per_id) X(OMSG, root_ids, cr_ids) \
	X(OPT, ns_per_id) X(OPT, root_cg_set) X(OPT, lsmtype) X(OPT, dump_uptime) \
	X(OPT, pre_dump_mode) X(OPT, tcp_close) X(OPT, network_lock_method) \
	X(OMSG, plugins_entry, cr_plugins) X(STR, dump_criu_run_id) X(OPT, allow_uprobes)
PB_CONV(cr_inventory, cr_inventory, Fp__InventoryEntry, fp__inventory_entry, INVENTORY);

#define PSTREE(X) X(VAL, pid) X(VAL, ppid) X(VAL, pgid) X(VAL, sid) X(ADYN, threads)
PB_CONV(cr_pstree, cr_pstree, Fp__PstreeEntry, fp__pstree_entry, PSTREE);

/* ---- thread_info_x86 -------------------------------------------------- */
#define REGS(X) X(VAL, r15) X(VAL, r14) X(VAL, r13) X(VAL, r12) X(VAL, bp) X(VAL, bx) \
	X(VAL, r11) X(VAL, r10) X(VAL, r9) X(VAL, r8) X(VAL, ax) X(VAL, cx) X(VAL, dx) \
	X(VAL, si) X(VAL, di) X(VAL, orig_ax) X(VAL, ip) X(VAL, cs) X(VAL, flags) X(VAL, sp) \
	X(VAL, ss) X(VAL, fs_base) X(VAL, gs_base) X(VAL, ds) X(VAL, es) X(VAL, fs) X(VAL, gs) \
	X(OPT, mode)
PB_CONV(cr_user_regs, cr_user_regs, Fp__UserX86RegsEntry, fp__user_x86_regs_entry, REGS);

#define CET(X) X(VAL, cet) X(VAL, ssp)
PB_CONV(cr_cet, cr_cet, Fp__UserX86CetEntry, fp__user_x86_cet_entry, CET);

#define XSAVE(X) X(VAL, xstate_bv) X(AFIX, ymmh_space) X(AFIX, bndreg_state) X(AFIX, bndcsr_state) \
	X(AFIX, opmask_reg) X(AFIX, zmm_upper) X(AFIX, hi16_zmm) X(AFIX, pkru) X(OMSG, cet, cr_cet)
PB_CONV(cr_xsave, cr_xsave, Fp__UserX86XsaveEntry, fp__user_x86_xsave_entry, XSAVE);

#define FPREGS(X) X(VAL, cwd) X(VAL, swd) X(VAL, twd) X(VAL, fop) X(VAL, rip) X(VAL, rdp) \
	X(VAL, mxcsr) X(VAL, mxcsr_mask) X(AFIX, st_space) X(AFIX, xmm_space) X(OMSG, xsave, cr_xsave)
PB_CONV(cr_fpregs, cr_fpregs, Fp__UserX86FpregsEntry, fp__user_x86_fpregs_entry, FPREGS);

#define UDESC(X) X(VAL, entry_number) X(VAL, base_addr) X(VAL, limit) X(VAL, seg_32bit) \
	X(VAL, contents_h) X(VAL, contents_l) X(VAL, read_exec_only) X(VAL, limit_in_pages) \
	X(VAL, seg_not_present) X(VAL, usable)
PB_CONV(cr_user_desc, cr_user_desc, Fp__UserDescT, fp__user_desc_t, UDESC);

#define TINFO(X) X(VAL, clear_tid_addr) X(MSG, gpregs, cr_user_regs) X(MSG, fpregs, cr_fpregs) \
	X(MFIX, tls, cr_user_desc)
PB_CONV(cr_thread_info, cr_thread_info, Fp__ThreadInfoX86, fp__thread_info_x86, TINFO);

/* ---- task_core_entry -------------------------------------------------- */
#define ITIMER(X) X(VAL, isec) X(VAL, iusec) X(VAL, vsec) X(VAL, vusec)
PB_CONV(cr_itimer, cr_itimer, Fp__ItimerEntry, fp__itimer_entry, ITIMER);

#define PTIMER(X) X(VAL, it_id) X(VAL, clock_id) X(VAL, si_signo) X(VAL, it_sigev_notify) \
	X(VAL, sival_ptr) X(VAL, overrun) X(VAL, isec) X(VAL, insec) X(VAL, vsec) X(VAL, vnsec) \
	X(OPT, notify_thread_id)
PB_CONV(cr_posix_timer, cr_posix_timer, Fp__PosixTimerEntry, fp__posix_timer_entry, PTIMER);

#define TIMERS(X) X(MSG, real, cr_itimer) X(MSG, virt, cr_itimer) X(MSG, prof, cr_itimer) \
	X(MDYN, posix, cr_posix_timer)
PB_CONV(cr_timers, cr_timers, Fp__TaskTimersEntry, fp__task_timers_entry, TIMERS);

#define RLIMIT(X) X(VAL, cur) X(VAL, max)
PB_CONV(cr_rlimit, cr_rlimit, Fp__RlimitEntry, fp__rlimit_entry, RLIMIT);

#define RLIMITS(X) X(MFIX, rlimits, cr_rlimit)
PB_CONV(cr_rlimits, cr_rlimits, Fp__TaskRlimitsEntry, fp__task_rlimits_entry, RLIMITS);

#define SIGINFO(X) X(BYTES, siginfo)
PB_CONV(cr_siginfo, cr_siginfo, Fp__SiginfoEntry, fp__siginfo_entry, SIGINFO);

#define SIGQ(X) X(MDYN, signals, cr_siginfo)
PB_CONV(cr_sigqueue, cr_sigqueue, Fp__SignalQueueEntry, fp__signal_queue_entry, SIGQ);

#define SA(X) X(VAL, sigaction) X(VAL, flags) X(VAL, restorer) X(VAL, mask) \
	X(OPT, compat_sigaction) X(OPT, mask_extended)
PB_CONV(cr_sa, cr_sa, Fp__SaEntry, fp__sa_entry, SA);

#define TC(X) X(VAL, task_state) X(VAL, exit_code) X(VAL, personality) X(VAL, flags) \
	X(VAL, blk_sigset) X(SBUF, comm) X(OMSG, timers, cr_timers) X(OMSG, rlimits, cr_rlimits) \
	X(OPT, cg_set) X(OMSG, signals_s, cr_sigqueue) X(OPT, loginuid) X(OPT, oom_score_adj) \
	X(MFIX, sigactions, cr_sa) X(OPT, child_subreaper) X(OPT, blk_sigset_extended) \
	X(OPT, stop_signo) X(OPT, membarrier_registration_mask)
PB_CONV(cr_task_core, cr_task_core, Fp__TaskCoreEntry, fp__task_core_entry, TC);

/* ---- thread_core_entry ------------------------------------------------ */
#define SAS(X) X(VAL, ss_sp) X(VAL, ss_size) X(VAL, ss_flags)
PB_CONV(cr_sas, cr_sas, Fp__ThreadSasEntry, fp__thread_sas_entry, SAS);

#define CREDS(X) X(VAL, uid) X(VAL, gid) X(VAL, euid) X(VAL, egid) X(VAL, suid) X(VAL, sgid) \
	X(VAL, fsuid) X(VAL, fsgid) X(AFIX, cap_inh) X(AFIX, cap_prm) X(AFIX, cap_eff) \
	X(AFIX, cap_bnd) X(VAL, secbits) X(ADYN, groups) X(STR, lsm_profile) \
	X(STR, lsm_sockcreate) X(OBYTES, apparmor_data) X(OPT, no_new_privs) X(AFIX, cap_amb)
PB_CONV(cr_creds, cr_creds, Fp__CredsEntry, fp__creds_entry, CREDS);

#define RSEQ(X) X(VAL, rseq_abi_pointer) X(VAL, rseq_abi_size) X(VAL, signature) \
	X(OPT, rseq_cs_pointer)
PB_CONV(cr_rseq, cr_rseq, Fp__RseqEntry, fp__rseq_entry, RSEQ);

#define THC(X) X(VAL, futex_rla) X(VAL, futex_rla_len) X(OPT, sched_nice) X(OPT, sched_policy) \
	X(OPT, sched_prio) X(OPT, blk_sigset) X(OMSG, sas, cr_sas) X(OPT, pdeath_sig) \
	X(OMSG, signals_p, cr_sigqueue) X(OMSG, creds, cr_creds) X(OPT, seccomp_mode) \
	X(OPT, seccomp_filter) X(OSBUF, comm) X(OPT, blk_sigset_extended) \
	X(OMSG, rseq_entry, cr_rseq) X(OPT, cg_set)
PB_CONV(cr_thread_core, cr_thread_core, Fp__ThreadCoreEntry, fp__thread_core_entry, THC);

#define CORE(X) X(VAL, mtype) X(OMSG, thread_info, cr_thread_info) X(OMSG, tc, cr_task_core) \
	X(OMSG, ids, cr_ids) X(OMSG, thread_core, cr_thread_core)
PB_CONV(cr_core, cr_core, Fp__CoreEntry, fp__core_entry, CORE);

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
	for (size_t i = 0; i < CR_SIGACTIONS; i++)
		tc->sigactions[i].has_compat_sigaction = true; /* CRIU writes false */
	tc->has_loginuid = true;
	tc->loginuid = UINT32_MAX;
}
