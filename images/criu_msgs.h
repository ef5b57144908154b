/* The CRIU image messages forkpoint reads and writes, as plain C structs.
 * Field numbers and types follow shared/docs/criu-image-format.md (CRIU 4.1.1).
 *
 * Conventions, the same for every message:
 *  - proto2 required fields are plain members and are always written;
 *  - an optional scalar or nested message has a `has_<name>` bool: set it to
 *    write the field, and the decoder sets it when the field was present;
 *  - optional strings are `char *` (NULL = absent), owned by the struct;
 *  - repeated fields with an architectural size are fixed arrays with an
 *    `n_<name>` count (st_space[32], sigactions[64], ...); the others are
 *    malloc'd arrays with an `n_<name>` count;
 *  - cr_X_free() releases what a decoder (or the caller, with malloc) hung off
 *    a struct. Structs that own nothing need no free but accept one.
 * The wire codec is libprotobuf-c's, generated from images/proto/NAME.proto;
 * cr_X_desc (images/conv_*.c) maps struct X onto the generated one, and
 * pb_encode/pb_decode/pb_free (images/pb.h) do the work. images/criu_io.h
 * reads and writes whole image files. */
#ifndef FP_CRIU_MSGS_H
#define FP_CRIU_MSGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "images/pb.h"

/* ---- magics (criu/include/magic.h) ------------------------------------ */
#define CR_IMG_COMMON_MAGIC 0x54564319u
#define CR_IMG_SERVICE_MAGIC 0x55105940u
#define CR_RAW_IMAGE_MAGIC 0u

#define CR_INVENTORY_MAGIC 0x58313116u
#define CR_PSTREE_MAGIC 0x50273030u
#define CR_CORE_MAGIC 0x55053847u
#define CR_IDS_MAGIC 0x54432030u
#define CR_MM_MAGIC 0x57492820u
#define CR_VMAS_MAGIC 0x54123737u
#define CR_PAGEMAP_MAGIC 0x56084025u
#define CR_PAGES_MAGIC CR_RAW_IMAGE_MAGIC
#define CR_FILES_MAGIC 0x56303138u
#define CR_FDINFO_MAGIC 0x56213732u
#define CR_FS_MAGIC 0x51403912u
#define CR_REG_FILES_MAGIC 0x50363636u
#define CR_PIPES_MAGIC 0x56513555u
#define CR_PIPES_DATA_MAGIC 0x56453709u
#define CR_FIFO_MAGIC 0x58364939u
#define CR_FIFO_DATA_MAGIC 0x59333054u
#define CR_CREDS_MAGIC 0x54023547u
#define CR_SIGACT_MAGIC 0x55344201u
#define CR_RLIMIT_MAGIC 0x57113925u
#define CR_ITIMERS_MAGIC 0x57464056u
#define CR_POSIX_TIMERS_MAGIC 0x52603957u
#define CR_SIGNAL_MAGIC 0x59255647u
#define CR_TTY_MAGIC 0x59433025u
#define CR_TTY_INFO_MAGIC 0x59453036u
#define CR_TTY_DATA_MAGIC 0x59413026u
#define CR_SECCOMP_MAGIC 0x64413049u
#define CR_TIMENS_MAGIC 0x43114433u
#define CR_CGROUP_MAGIC 0x59383330u
#define CR_UTSNS_MAGIC 0x54473203u
#define CR_IPCNS_VAR_MAGIC 0x53115007u
#define CR_MNTS_MAGIC 0x55563928u
#define CR_NETDEV_MAGIC 0x57373951u
#define CR_NETNS_MAGIC 0x55933752u
#define CR_USERNS_MAGIC 0x55474906u
#define CR_PIDNS_MAGIC 0x61157326u
#define CR_REMAP_FPATH_MAGIC 0x59133954u
#define CR_GHOST_FILE_MAGIC 0x52583605u
#define CR_MEMFD_INODE_MAGIC 0x48453499u
#define CR_UNIXSK_MAGIC 0x54373943u
#define CR_INETSK_MAGIC 0x56443851u
#define CR_SK_QUEUES_MAGIC 0x56264026u
#define CR_TCP_STREAM_MAGIC 0x51465506u
#define CR_EVENTFD_FILE_MAGIC 0x44523722u
#define CR_EVENTPOLL_FILE_MAGIC 0x45023858u
#define CR_SIGNALFD_MAGIC 0x57323820u
#define CR_INOTIFY_FILE_MAGIC 0x48424431u
#define CR_TIMERFD_MAGIC 0x50493712u
#define CR_FILE_LOCKS_MAGIC 0x54323616u
#define CR_CPUINFO_MAGIC 0x61404013u
#define CR_APPARMOR_MAGIC 0x59423047u
#define CR_PIDFD_MAGIC 0x54435556u
#define CR_EXT_FILES_MAGIC 0x59255641u
#define CR_STATS_MAGIC 0x57093306u
#define CR_IRMAP_CACHE_MAGIC 0x57004059u

/* Image name for a magic, "" if unknown (for error messages). */
const char *cr_magic_name(uint32_t magic);

#define CR_IMG_VERSION 2 /* inventory.img_version: "v1.1", with common magics */

/* ---- enums and flags -------------------------------------------------- */
enum cr_march { CR_MARCH_UNKNOWN = 0, CR_MARCH_X86_64 = 1 };
enum cr_regs_mode { CR_REGS_NATIVE = 1, CR_REGS_COMPAT = 2 };
enum cr_task_state { CR_TASK_ALIVE = 1, CR_TASK_DEAD = 2, CR_TASK_STOPPED = 3 };
enum cr_lsmtype { CR_NO_LSM = 0, CR_SELINUX = 1, CR_APPARMOR = 2 };
enum cr_seccomp_mode { CR_SECCOMP_DISABLED = 0, CR_SECCOMP_STRICT = 1, CR_SECCOMP_FILTER = 2 };

enum cr_fd_type {
	CR_FD_UND = 0, CR_FD_REG = 1, CR_FD_PIPE = 2, CR_FD_FIFO = 3, CR_FD_INETSK = 4,
	CR_FD_UNIXSK = 5, CR_FD_EVENTFD = 6, CR_FD_EVENTPOLL = 7, CR_FD_INOTIFY = 8,
	CR_FD_SIGNALFD = 9, CR_FD_PACKETSK = 10, CR_FD_TTY = 11, CR_FD_FANOTIFY = 12,
	CR_FD_NETLINKSK = 13, CR_FD_NS = 14, CR_FD_TUNF = 15, CR_FD_EXT = 16,
	CR_FD_TIMERFD = 17, CR_FD_MEMFD = 18, CR_FD_BPFMAP = 19, CR_FD_PIDFD = 20,
};

enum cr_tty_type {
	CR_TTY_UNKNOWN = 0, CR_TTY_PTY = 1, CR_TTY_CONSOLE = 2, CR_TTY_VT = 3,
	CR_TTY_CTTY = 4, CR_TTY_EXT_TTY = 5, CR_TTY_SERIAL = 6,
};

/* VMA status bits (criu/include/image.h). */
#define CR_VMA_AREA_REGULAR (1u << 0)
#define CR_VMA_AREA_STACK (1u << 1)
#define CR_VMA_AREA_VSYSCALL (1u << 2)
#define CR_VMA_AREA_VDSO (1u << 3)
#define CR_VMA_AREA_HEAP (1u << 5)
#define CR_VMA_FILE_PRIVATE (1u << 6)
#define CR_VMA_FILE_SHARED (1u << 7)
#define CR_VMA_ANON_SHARED (1u << 8)
#define CR_VMA_ANON_PRIVATE (1u << 9)
#define CR_VMA_AREA_SYSVIPC (1u << 10)
#define CR_VMA_AREA_SOCKET (1u << 11)
#define CR_VMA_AREA_VVAR (1u << 12)
#define CR_VMA_AREA_AIORING (1u << 13)
#define CR_VMA_AREA_MEMFD (1u << 14)
#define CR_VMA_AREA_SHSTK (1u << 15)
#define CR_VMA_AREA_GUARD (1u << 16)   /* CRIU 4.2+ only: never write for 4.1.1 */
#define CR_VMA_AREA_UPROBES (1u << 17) /* CRIU 4.2+ only */

/* Pagemap entry flags. */
#define CR_PE_PARENT (1u << 0)
#define CR_PE_LAZY (1u << 1)
#define CR_PE_PRESENT (1u << 2)

#define CR_PAGE_SIZE 4096u
#define CR_SIGACTIONS 62     /* signals 1..64 without SIGKILL and SIGSTOP */
#define CR_SIGACTIONS_MAX 64
#define CR_RLIMITS 16        /* what CRIU writes: RLIMIT_* 0..15 */
#define CR_RLIMITS_MAX 32
#define CR_CAP_WORDS 2
#define CR_TLS_ENTRIES 3     /* GDT TLS slots 12..14 */
#define CR_AUXV_MAX 44       /* words CRIU 4.1.1 accepts in mm_saved_auxv */
#define CR_COMM_MAX 64       /* buffer; the kernel keeps 15 chars */
#define CR_TERMIOS_NCC 32

/* ---- ids, inventory, pstree ------------------------------------------- */
typedef struct cr_ids { /* task_kobj_ids_entry */
	uint32_t vm_id, files_id, fs_id, sighand_id;
	bool has_pid_ns_id, has_net_ns_id, has_ipc_ns_id, has_uts_ns_id;
	bool has_mnt_ns_id, has_user_ns_id, has_cgroup_ns_id, has_time_ns_id;
	uint32_t pid_ns_id, net_ns_id, ipc_ns_id, uts_ns_id;
	uint32_t mnt_ns_id, user_ns_id, cgroup_ns_id, time_ns_id;
} cr_ids;

typedef struct cr_inventory { /* inventory_entry */
	uint32_t img_version;
	bool has_fdinfo_per_id, fdinfo_per_id;
	bool has_root_ids;
	cr_ids root_ids;
	bool has_ns_per_id, ns_per_id;
	bool has_root_cg_set;
	uint32_t root_cg_set;
	bool has_lsmtype;
	uint32_t lsmtype;
	bool has_dump_uptime;
	uint64_t dump_uptime;
	bool has_pre_dump_mode;
	uint32_t pre_dump_mode;
	bool has_tcp_close, tcp_close;
	bool has_network_lock_method;
	uint32_t network_lock_method;
	bool has_plugins_entry; /* written as an empty message, as CRIU does */
	struct cr_plugins { char _unused; } plugins_entry;
	char *dump_criu_run_id;
	bool has_allow_uprobes, allow_uprobes; /* 4.2+: leave unset for 4.1.1 */
} cr_inventory;

typedef struct cr_pstree { /* pstree_entry */
	uint32_t pid, ppid, pgid, sid;
	uint32_t *threads;
	size_t n_threads;
} cr_pstree;

/* ---- core ------------------------------------------------------------- */
/* Same member order as the kernel's struct user_regs_struct, so a
 * PTRACE_GETREGS buffer can be copied member by member. */
typedef struct cr_user_regs {
	uint64_t r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	uint64_t orig_ax, ip, cs, flags, sp, ss, fs_base, gs_base, ds, es, fs, gs;
	bool has_mode;
	uint32_t mode; /* enum cr_regs_mode; decoder default NATIVE */
} cr_user_regs;

typedef struct cr_cet {
	uint64_t cet, ssp;
} cr_cet;

typedef struct cr_xsave { /* user_x86_xsave_entry; arrays exact-size when present */
	uint64_t xstate_bv;
	uint32_t ymmh_space[64];
	size_t n_ymmh_space;
	uint64_t bndreg_state[8];
	size_t n_bndreg_state;
	uint64_t bndcsr_state[8];
	size_t n_bndcsr_state;
	uint64_t opmask_reg[8];
	size_t n_opmask_reg;
	uint64_t zmm_upper[64];
	size_t n_zmm_upper;
	uint64_t hi16_zmm[128];
	size_t n_hi16_zmm;
	uint32_t pkru[2];
	size_t n_pkru;
	bool has_cet;
	cr_cet cet;
} cr_xsave;

typedef struct cr_fpregs { /* user_x86_fpregs_entry: the fxsave area */
	uint32_t cwd, swd, twd, fop;
	uint64_t rip, rdp;
	uint32_t mxcsr, mxcsr_mask;
	uint32_t st_space[32];
	size_t n_st_space;  /* must be 32 */
	uint32_t xmm_space[64];
	size_t n_xmm_space; /* must be 64 */
	bool has_xsave;
	cr_xsave xsave;
} cr_fpregs;

typedef struct cr_user_desc { /* user_desc_t */
	uint32_t entry_number, base_addr, limit;
	bool seg_32bit, contents_h, contents_l, read_exec_only, limit_in_pages;
	bool seg_not_present, usable;
} cr_user_desc;

typedef struct cr_thread_info { /* thread_info_x86 */
	uint64_t clear_tid_addr;
	cr_user_regs gpregs;
	cr_fpregs fpregs;
	cr_user_desc tls[CR_TLS_ENTRIES];
	size_t n_tls;
} cr_thread_info;

typedef struct cr_itimer {
	uint64_t isec, iusec, vsec, vusec;
} cr_itimer;

typedef struct cr_posix_timer {
	uint32_t it_id, clock_id, si_signo, it_sigev_notify;
	uint64_t sival_ptr;
	uint32_t overrun;
	uint64_t isec, insec, vsec, vnsec;
	bool has_notify_thread_id;
	int32_t notify_thread_id;
} cr_posix_timer;

typedef struct cr_timers { /* task_timers_entry */
	cr_itimer real, virt, prof;
	cr_posix_timer *posix;
	size_t n_posix;
} cr_timers;

typedef struct cr_rlimit {
	uint64_t cur, max; /* RLIM_INFINITY = UINT64_MAX */
} cr_rlimit;

typedef struct cr_rlimits { /* task_rlimits_entry */
	cr_rlimit rlimits[CR_RLIMITS_MAX];
	size_t n_rlimits;
} cr_rlimits;

typedef struct cr_siginfo {
	uint8_t *siginfo; /* raw siginfo_t, 128 bytes */
	size_t siginfo_len;
} cr_siginfo;

typedef struct cr_sigqueue { /* signal_queue_entry */
	cr_siginfo *signals;
	size_t n_signals;
} cr_sigqueue;

typedef struct cr_sa { /* sa_entry */
	uint64_t sigaction, flags, restorer, mask;
	bool has_compat_sigaction, compat_sigaction;
	bool has_mask_extended;
	uint64_t mask_extended;
} cr_sa;

typedef struct cr_task_core { /* task_core_entry: leader core only */
	uint32_t task_state, exit_code, personality, flags;
	uint64_t blk_sigset;
	char comm[CR_COMM_MAX];
	bool has_timers;
	cr_timers timers;
	bool has_rlimits;
	cr_rlimits rlimits;
	bool has_cg_set;
	uint32_t cg_set;
	bool has_signals_s;
	cr_sigqueue signals_s;
	bool has_loginuid;
	uint32_t loginuid;
	bool has_oom_score_adj;
	int32_t oom_score_adj;
	cr_sa sigactions[CR_SIGACTIONS_MAX];
	size_t n_sigactions; /* CRIU requires exactly 62 */
	bool has_child_subreaper, child_subreaper;
	bool has_blk_sigset_extended;
	uint64_t blk_sigset_extended;
	bool has_stop_signo;
	uint32_t stop_signo;
	bool has_membarrier_registration_mask;
	uint32_t membarrier_registration_mask;
} cr_task_core;

typedef struct cr_sas { /* thread_sas_entry */
	uint64_t ss_sp, ss_size;
	uint32_t ss_flags; /* SS_DISABLE = 2 when none */
} cr_sas;

typedef struct cr_creds { /* creds_entry */
	uint32_t uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	uint32_t cap_inh[CR_CAP_WORDS], cap_prm[CR_CAP_WORDS];
	uint32_t cap_eff[CR_CAP_WORDS], cap_bnd[CR_CAP_WORDS];
	size_t n_cap_inh, n_cap_prm, n_cap_eff, n_cap_bnd; /* 2 each, low word first */
	uint32_t secbits;
	uint32_t *groups;
	size_t n_groups;
	char *lsm_profile, *lsm_sockcreate;
	bool has_apparmor_data;
	uint8_t *apparmor_data;
	size_t apparmor_data_len;
	bool has_no_new_privs;
	uint32_t no_new_privs;
	uint32_t cap_amb[CR_CAP_WORDS];
	size_t n_cap_amb;
} cr_creds;

typedef struct cr_rseq { /* rseq_entry */
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size, signature;
	bool has_rseq_cs_pointer;
	uint64_t rseq_cs_pointer;
} cr_rseq;

typedef struct cr_thread_core { /* thread_core_entry: every thread */
	uint64_t futex_rla;
	uint32_t futex_rla_len;
	bool has_sched_nice;
	int32_t sched_nice;
	bool has_sched_policy;
	uint32_t sched_policy;
	bool has_sched_prio;
	uint32_t sched_prio;
	bool has_blk_sigset;
	uint64_t blk_sigset;
	bool has_sas;
	cr_sas sas;
	bool has_pdeath_sig;
	uint32_t pdeath_sig;
	bool has_signals_p;
	cr_sigqueue signals_p;
	bool has_creds;
	cr_creds creds;
	bool has_seccomp_mode;
	uint32_t seccomp_mode;
	bool has_seccomp_filter;
	uint32_t seccomp_filter;
	bool has_comm;
	char comm[CR_COMM_MAX];
	bool has_blk_sigset_extended;
	uint64_t blk_sigset_extended;
	bool has_rseq_entry;
	cr_rseq rseq_entry;
	bool has_cg_set;
	uint32_t cg_set;
} cr_thread_core;

typedef struct cr_core { /* core_entry */
	uint32_t mtype; /* CR_MARCH_X86_64 */
	bool has_thread_info;
	cr_thread_info thread_info;
	bool has_tc; /* leader only */
	cr_task_core tc;
	bool has_ids; /* legacy; never write */
	cr_ids ids;
	bool has_thread_core;
	cr_thread_core thread_core;
} cr_core;

/* ---- mm, pagemap ------------------------------------------------------ */
typedef struct cr_vma { /* vma_entry */
	uint64_t start, end, pgoff, shmid;
	uint32_t prot, flags, status;
	int64_t fd; /* always -1 */
	bool has_madv;
	uint64_t madv;
	bool has_fdflags;
	uint32_t fdflags;
} cr_vma;

typedef struct cr_aio_ring {
	uint64_t id;
	uint32_t nr_req, ring_len;
} cr_aio_ring;

typedef struct cr_mm { /* mm_entry */
	uint64_t mm_start_code, mm_end_code, mm_start_data, mm_end_data;
	uint64_t mm_start_stack, mm_start_brk, mm_brk;
	uint64_t mm_arg_start, mm_arg_end, mm_env_start, mm_env_end;
	uint32_t exe_file_id;
	uint64_t *mm_saved_auxv; /* (type, value) words, at most CR_AUXV_MAX */
	size_t n_mm_saved_auxv;
	cr_vma *vmas;
	size_t n_vmas;
	bool has_dumpable;
	int32_t dumpable;
	cr_aio_ring *aios;
	size_t n_aios;
	bool has_thp_disabled, thp_disabled;
} cr_mm;

typedef struct cr_pagemap_head {
	uint32_t pages_id;
} cr_pagemap_head;

/* pagemap_entry. nr_pages is written both as field 2 (uint32, what 4.1.1
 * reads) and field 5 (uint64, what 4.2 reads); the decoder prefers field 5. */
typedef struct cr_pagemap_entry {
	uint64_t vaddr;
	uint64_t nr_pages;
	bool has_in_parent, in_parent;
	bool has_flags;
	uint32_t flags;
} cr_pagemap_entry;

/* The effective PE_* flags of an entry (CRIU's rule when flags is absent). */
uint32_t cr_pagemap_flags(const cr_pagemap_entry *pe);

/* ---- files ------------------------------------------------------------ */
typedef struct cr_fown {
	uint32_t uid, euid, signum, pid_type, pid;
} cr_fown;

typedef struct cr_reg_file { /* reg_file_entry */
	uint32_t id;
	uint32_t flags; /* open flags without O_CLOEXEC */
	uint64_t pos;
	cr_fown fown;
	char *name; /* absolute path */
	bool has_mnt_id;
	int32_t mnt_id; /* decoder default -1 */
	bool has_size;
	uint64_t size; /* validated by restore when present */
	bool has_ext, ext;
	bool has_mode;
	uint32_t mode; /* validated by restore when present */
	uint32_t *build_id;
	size_t n_build_id;
	bool has_checksum, has_checksum_config, has_checksum_parameter;
	uint32_t checksum, checksum_config, checksum_parameter;
} cr_reg_file;

typedef struct cr_pipe { /* pipe_entry */
	uint32_t id, pipe_id, flags;
	cr_fown fown;
} cr_pipe;

typedef struct cr_fifo { /* fifo_entry */
	uint32_t id, pipe_id; /* pipe_id: the FIFO's inode number */
	bool has_regf_id;
	uint32_t regf_id;     /* a REG entry: the FIFO's path and open flags */
	bool has_wait_writer, wait_writer;
} cr_fifo;

typedef struct cr_tty_file { /* tty_file_entry */
	uint32_t id, tty_info_id, flags;
	cr_fown fown;
	bool has_regf_id;
	uint32_t regf_id;
} cr_tty_file;

typedef struct cr_eventfd { /* eventfd_file_entry */
	uint32_t id, flags;
	cr_fown fown;
	uint64_t counter;
} cr_eventfd;

typedef struct cr_epoll_tfd { /* eventpoll_tfd_entry: one watched fd */
	uint32_t id;  /* the epoll's FileEntry id */
	uint32_t tfd; /* the watched fd's number */
	uint32_t events;
	uint64_t data;
	bool has_dev, has_inode, has_pos;
	uint32_t dev;
	uint64_t inode, pos;
} cr_epoll_tfd;

typedef struct cr_eventpoll { /* eventpoll_file_entry */
	uint32_t id, flags;
	cr_fown fown;
	cr_epoll_tfd *tfd;
	size_t n_tfd;
} cr_eventpoll;

typedef struct cr_signalfd { /* signalfd_entry */
	uint32_t id, flags;
	cr_fown fown;
	uint64_t sigmask;
} cr_signalfd;

typedef struct cr_timerfd { /* timerfd_entry */
	uint32_t id, flags;
	cr_fown fown;
	uint32_t clockid;
	uint64_t ticks;
	uint32_t settime_flags;
	uint64_t vsec, vnsec, isec, insec; /* it_value (time left), it_interval */
} cr_timerfd;

typedef struct cr_sk_opts { /* sk_opts_entry */
	uint32_t so_sndbuf, so_rcvbuf;
	uint64_t so_snd_tmo_sec, so_snd_tmo_usec, so_rcv_tmo_sec, so_rcv_tmo_usec;
	bool has_reuseaddr, reuseaddr;
	bool has_so_priority, has_so_rcvlowat, has_so_mark;
	uint32_t so_priority, so_rcvlowat, so_mark;
	bool has_so_passcred, so_passcred;
	bool has_so_reuseport, so_reuseport;
	bool has_so_broadcast, so_broadcast;
	bool has_so_keepalive, so_keepalive;
	bool has_tcp_keepcnt, has_tcp_keepidle, has_tcp_keepintvl;
	uint32_t tcp_keepcnt, tcp_keepidle, tcp_keepintvl;
	bool has_so_oobinline;
	uint32_t so_oobinline;
	bool has_so_linger;
	uint32_t so_linger;
} cr_sk_opts;

typedef struct cr_inet_sk { /* inet_sk_entry */
	uint32_t id, ino, family, type, proto, state, src_port, dst_port, flags, backlog;
	uint32_t src_addr[4]; /* network order; 1 word for IPv4, 4 for IPv6 */
	size_t n_src_addr;
	uint32_t dst_addr[4];
	size_t n_dst_addr;
	cr_fown fown;
	cr_sk_opts opts;
	bool has_v6only, v6only;
	bool has_shutdown;
	uint32_t shutdown; /* enum cr_sk_shutdown: a socket that is not connected, whose connection ended */
} cr_inet_sk;

typedef struct cr_file_perms { /* file_perms_entry: a socket file's mode and owner */
	uint32_t mode, uid, gid;
} cr_file_perms;

/* unix_sk_entry.uflags: the entry stands for a socket outside the tree (a
 * named datagram socket others connect to: CRIU's --ext-unix-sk), no fd. */
#define CR_USK_EXTERN 1u

typedef struct cr_unix_sk { /* unix_sk_entry */
	uint32_t id, ino, type, state, flags, uflags, backlog, peer;
	cr_fown fown;
	cr_sk_opts opts;
	uint8_t *name; /* sun_path bytes (abstract: leading NUL) */
	size_t name_len;
	bool has_shutdown;
	uint32_t shutdown; /* enum cr_sk_shutdown */
	bool has_deleted, deleted; /* its socket file was unlinked since the bind */
	bool has_file_perms;
	cr_file_perms file_perms;
} cr_unix_sk;

/* sk_shutdown (CRIU's sk-opts.proto): which ways shutdown() closed. */
enum cr_sk_shutdown { CR_SK_SHUT_NONE = 0, CR_SK_SHUT_READ = 1, CR_SK_SHUT_WRITE = 2, CR_SK_SHUT_BOTH = 3 };

typedef struct cr_memfd_file { /* memfd_file_entry: an fd (or mapping) on a memfd */
	uint32_t id, flags;
	uint64_t pos;
	cr_fown fown;
	uint32_t inode_id; /* the memfd_inode_entry in memfd.img */
} cr_memfd_file;

typedef struct cr_memfd_inode { /* memfd_inode_entry (memfd.img) */
	char *name;        /* without the "memfd:" prefix */
	uint32_t uid, gid;
	uint64_t size;
	uint32_t shmid;    /* its pages: pagemap-shmem-<shmid>.img */
	uint32_t seals;    /* F_GET_SEALS */
	uint64_t inode_id;
} cr_memfd_inode;

/* inotify (CRIU's fsnotify.proto and fh.proto): a watch names its inode by
 * a file handle (open_by_handle_at), and by path when one is known. */
#define CR_FH_WORDS 16 /* handle words CRIU writes: 128 bytes, MAX_HANDLE_SZ */
typedef struct cr_fh { /* fh_entry */
	uint32_t bytes, type;
	uint64_t handle[CR_FH_WORDS]; /* the handle's bytes, little-endian words */
	size_t n_handle;
	char *path;
	bool has_mnt_id;
	uint32_t mnt_id;
} cr_fh;

typedef struct cr_inotify_wd { /* inotify_wd_entry */
	uint32_t id; /* the inotify's file entry */
	uint64_t i_ino;
	uint32_t mask, ignored_mask;
	uint32_t s_dev; /* the kernel's encoding, as fdinfo shows it: major << 20 | minor */
	uint32_t wd;
	cr_fh f_handle;
} cr_inotify_wd;

typedef struct cr_inotify { /* inotify_file_entry */
	uint32_t id, flags;
	cr_fown fown;
	cr_inotify_wd *wd;
	size_t n_wd;
} cr_inotify;

typedef struct cr_file { /* file_entry */
	uint32_t type; /* enum cr_fd_type */
	uint32_t id;   /* must equal the inner id */
	bool has_reg;
	cr_reg_file reg;
	bool has_pipe;
	cr_pipe pipe;
	bool has_tty;
	cr_tty_file tty;
	bool has_fifo;
	cr_fifo fifo;
	bool has_efd;
	cr_eventfd efd;
	bool has_epfd;
	cr_eventpoll epfd;
	bool has_sgfd;
	cr_signalfd sgfd;
	bool has_tfd;
	cr_timerfd tfd;
	bool has_isk;
	cr_inet_sk isk;
	bool has_usk;
	cr_unix_sk usk;
	bool has_memfd;
	cr_memfd_file memfd;
	bool has_ify;
	cr_inotify ify;
	/* other kinds (fanotify, ...) decode with only type and id */
} cr_file;

typedef struct cr_fdinfo { /* fdinfo_entry */
	uint32_t id;
	uint32_t flags; /* fd flags: FD_CLOEXEC = 1 */
	uint32_t type;  /* enum cr_fd_type */
	uint32_t fd;
	char *xattr_security_selinux;
} cr_fdinfo;

typedef struct cr_fs { /* fs_entry */
	uint32_t cwd_id, root_id;
	bool has_umask;
	uint32_t umask;
} cr_fs;

/* pipe_data_entry. In pipes-data.img each entry is followed by `bytes` raw
 * bytes; criu_io reads them into data (malloc'd) and writes them from there. */
typedef struct cr_pipe_data {
	uint32_t pipe_id;
	uint32_t bytes;
	bool has_size;
	uint32_t size; /* pipe capacity, F_GETPIPE_SZ */
	uint8_t *data; /* not part of the message */
	bool fifo;     /* neither: a named FIFO's, for fifo-data.img */
} cr_pipe_data;

#include "images/criu_msgs_misc.h"

/* ---- descriptors ------------------------------------------------------ */
extern const pb_mdesc cr_ids_desc, cr_inventory_desc, cr_pstree_desc;
extern const pb_mdesc cr_core_desc, cr_thread_info_desc, cr_task_core_desc;
extern const pb_mdesc cr_thread_core_desc, cr_creds_desc, cr_user_regs_desc;
extern const pb_mdesc cr_fpregs_desc, cr_xsave_desc, cr_sa_desc;
extern const pb_mdesc cr_mm_desc, cr_vma_desc, cr_pagemap_head_desc;
extern const pb_mdesc cr_file_desc, cr_reg_file_desc, cr_pipe_desc, cr_tty_file_desc;
extern const pb_mdesc cr_fown_desc, cr_fdinfo_desc, cr_fs_desc, cr_pipe_data_desc;
extern const pb_mdesc cr_timens_desc, cr_seccomp_desc, cr_tty_info_desc, cr_file_lock_desc;
extern const pb_mdesc cr_remap_fpath_desc, cr_ghost_file_desc, cr_ghost_chunk_desc;
extern const pb_mdesc cr_memfd_file_desc, cr_memfd_inode_desc, cr_pagemap_entry_desc;
extern const pb_mdesc cr_inotify_desc;

/* pagemap_entry alone (pb_encode/pb_decode with cr_pagemap_entry_desc). */
void cr_pagemap_entry_encode(pb_buf *b, const cr_pagemap_entry *pe);
int cr_pagemap_entry_decode(cr_pagemap_entry *pe, const void *data, size_t len,
			    const char *where, fp_error *err);

/* Frees for the messages that own memory. */
void cr_pstree_free(cr_pstree *p);
void cr_core_free(cr_core *c);
void cr_mm_free(cr_mm *m);
void cr_file_free(cr_file *f);
void cr_fdinfo_free(cr_fdinfo *f);
void cr_inventory_free(cr_inventory *i);
void cr_pipe_data_free(cr_pipe_data *p);
void cr_seccomp_free(cr_seccomp *s);

/* Fills the fields CRIU requires to be present with neutral values:
 * core: mtype x86_64, gpregs mode NATIVE, 32/64 FPU words, cwd 0x37f,
 * mxcsr 0x1f80, sas SS_DISABLE, futex_rla_len 24; tc (when leader): state
 * alive, 62 default sigactions, 16 infinite rlimits, timers, loginuid unset.
 * The dumper then overwrites what it captured. */
void cr_core_init(cr_core *c, bool leader);

#include "images/criu_msgs_skq.h"

#endif
