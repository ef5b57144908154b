/* timens and seccomp messages (criu-image-format.md 3.8) between
 * criu_msgs.h and the code protoc-c generates from proto/misc.proto; and the
 * names of image magics, for error messages. */
#include "images/pb_conv.h"
#include "images/criu_msgs_ipc.h"
#include "images/proto/misc.pb-c.h"

#define TS(X) X(VAL, tv_sec) X(VAL, tv_nsec)
PB_CONV(cr_timespec, cr_timespec, Fp__Timespec, fp__timespec, TS);

#define TIMENS(X) X(MSG, monotonic, cr_timespec) X(MSG, boottime, cr_timespec)
PB_CONV(cr_timens, cr_timens, Fp__TimensEntry, fp__timens_entry, TIMENS);

#define SFILTER(X) X(BYTES, filter) X(OPT, prev) X(OPT, flags)
PB_CONV(cr_seccomp_filter, cr_seccomp_filter, Fp__SeccompFilter, fp__seccomp_filter, SFILTER);

#define SECCOMP(X) X(MDYN, seccomp_filters, cr_seccomp_filter)
PB_CONV(cr_seccomp, cr_seccomp, Fp__SeccompEntry, fp__seccomp_entry, SECCOMP);

void cr_seccomp_free(cr_seccomp *s)
{
	pb_free(&cr_seccomp_desc, s);
}

const char *cr_magic_name(uint32_t magic)
{
	static const struct { uint32_t m; const char *n; } tbl[] = {
		{ CR_INVENTORY_MAGIC, "INVENTORY" }, { CR_PSTREE_MAGIC, "PSTREE" },
		{ CR_CORE_MAGIC, "CORE" }, { CR_IDS_MAGIC, "IDS" }, { CR_MM_MAGIC, "MM" },
		{ CR_VMAS_MAGIC, "VMAS" }, { CR_PAGEMAP_MAGIC, "PAGEMAP" },
		{ CR_FILES_MAGIC, "FILES" }, { CR_FDINFO_MAGIC, "FDINFO" }, { CR_FS_MAGIC, "FS" },
		{ CR_REG_FILES_MAGIC, "REG_FILES" }, { CR_PIPES_MAGIC, "PIPES" },
		{ CR_PIPES_DATA_MAGIC, "PIPES_DATA" }, { CR_FIFO_MAGIC, "FIFO" },
		{ CR_FIFO_DATA_MAGIC, "FIFO_DATA" }, { CR_CREDS_MAGIC, "CREDS" },
		{ CR_SIGACT_MAGIC, "SIGACT" }, { CR_RLIMIT_MAGIC, "RLIMIT" },
		{ CR_ITIMERS_MAGIC, "ITIMERS" }, { CR_POSIX_TIMERS_MAGIC, "POSIX_TIMERS" },
		{ CR_SIGNAL_MAGIC, "SIGNAL" }, { CR_TTY_MAGIC, "TTY" },
		{ CR_TTY_INFO_MAGIC, "TTY_INFO" }, { CR_TTY_DATA_MAGIC, "TTY_DATA" },
		{ CR_SECCOMP_MAGIC, "SECCOMP" }, { CR_TIMENS_MAGIC, "TIMENS" },
		{ CR_CGROUP_MAGIC, "CGROUP" }, { CR_UTSNS_MAGIC, "UTSNS" },
		{ CR_IPCNS_VAR_MAGIC, "IPCNS_VAR" }, { CR_IPCNS_SHM_MAGIC, "IPCNS_SHM" },
		{ CR_MNTS_MAGIC, "MNTS" },
		{ CR_NETDEV_MAGIC, "NETDEV" }, { CR_NETNS_MAGIC, "NETNS" },
		{ CR_USERNS_MAGIC, "USERNS" }, { CR_PIDNS_MAGIC, "PIDNS" },
		{ CR_REMAP_FPATH_MAGIC, "REMAP_FPATH" }, { CR_GHOST_FILE_MAGIC, "GHOST_FILE" },
		{ CR_MEMFD_INODE_MAGIC, "MEMFD_INODE" }, { CR_UNIXSK_MAGIC, "UNIXSK" },
		{ CR_INETSK_MAGIC, "INETSK" }, { CR_SK_QUEUES_MAGIC, "SK_QUEUES" },
		{ CR_TCP_STREAM_MAGIC, "TCP_STREAM" }, { CR_EVENTFD_FILE_MAGIC, "EVENTFD_FILE" },
		{ CR_EVENTPOLL_FILE_MAGIC, "EVENTPOLL_FILE" }, { CR_SIGNALFD_MAGIC, "SIGNALFD" },
		{ CR_INOTIFY_FILE_MAGIC, "INOTIFY_FILE" }, { CR_TIMERFD_MAGIC, "TIMERFD" },
		{ CR_FILE_LOCKS_MAGIC, "FILE_LOCKS" }, { CR_CPUINFO_MAGIC, "CPUINFO" },
		{ CR_APPARMOR_MAGIC, "APPARMOR" }, { CR_PIDFD_MAGIC, "PIDFD" },
		{ CR_EXT_FILES_MAGIC, "EXT_FILES" }, { CR_STATS_MAGIC, "STATS" },
		{ CR_IRMAP_CACHE_MAGIC, "IRMAP_CACHE" }, { CR_IMG_COMMON_MAGIC, "IMG_COMMON" },
		{ CR_IMG_SERVICE_MAGIC, "IMG_SERVICE" },
	};
	for (size_t i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++)
		if (tbl[i].m == magic)
			return tbl[i].n;
	return "";
}
