/* Reading a process's state from /proc: mappings, fds, threads, stat and
 * status. Every function works on any pid we may read (our own included) and
 * reports failures as fp_error values; a process that does not exist (or has
 * gone while we read) is ESRCH "no process PID".
 *
 * The results are snapshots: /proc of a running process changes under us.
 * Entries that disappear between listing and reading (an fd closed meanwhile)
 * are skipped, not errors. */
#ifndef FP_PROCFS_H
#define FP_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include "fp_error.h"

/* ---- /proc/PID/maps ---- */

enum fp_map_kind {
	FP_MAP_FILE = 0,     /* backed by a file (incl. deleted, memfd, shmem) */
	FP_MAP_ANON,         /* no name */
	FP_MAP_ANON_NAMED,   /* "[anon:NAME]" (PR_SET_VMA_ANON_NAME) */
	FP_MAP_HEAP,         /* "[heap]" */
	FP_MAP_STACK,        /* "[stack]" */
	FP_MAP_VDSO,         /* "[vdso]" */
	FP_MAP_VVAR,         /* "[vvar]" */
	FP_MAP_VVAR_VCLOCK,  /* "[vvar_vclock]" */
	FP_MAP_VSYSCALL,     /* "[vsyscall]" */
	FP_MAP_SPECIAL,      /* any other "[...]" name ("[uprobes]", "[anon_shmem:x]") */
};

struct fp_map {
	uint64_t start, end;   /* [start, end) */
	uint64_t offset;       /* file offset in bytes (0 for anonymous) */
	int prot;              /* PROT_READ | PROT_WRITE | PROT_EXEC */
	int flags;             /* MAP_PRIVATE or MAP_SHARED */
	dev_t dev;             /* from "major:minor" */
	ino_t ino;
	enum fp_map_kind kind;
	bool deleted;          /* the kernel showed " (deleted)"; removed from path */
	char *path;            /* file path or "[name]"; NULL for FP_MAP_ANON */
};

struct fp_maps {
	struct fp_map *v;
	size_t n;
};

int fp_proc_read_maps(pid_t pid, struct fp_maps *out, fp_error *err);
void fp_proc_maps_free(struct fp_maps *m);
/* One line of a maps file (no newline needed). out->path is malloc'd. */
int fp_proc_parse_maps_line(const char *line, struct fp_map *out, fp_error *err);
const char *fp_map_kind_name(enum fp_map_kind k);

/* ---- /proc/PID/fd and fdinfo ---- */

struct fp_fd {
	int fd;
	char *target;          /* readlink("/proc/PID/fd/N") */
	uint64_t pos;          /* fdinfo "pos" */
	int flags;             /* fdinfo "flags" (octal): O_* incl. O_CLOEXEC */
	int mnt_id;            /* fdinfo "mnt_id" */
	bool stat_ok;          /* stat through /proc/PID/fd/N worked */
	dev_t dev;
	ino_t ino;
	mode_t mode;
};

struct fp_fds {
	struct fp_fd *v;       /* sorted by fd */
	size_t n;
};

int fp_proc_read_fds(pid_t pid, struct fp_fds *out, fp_error *err);
void fp_proc_fds_free(struct fp_fds *f);

/* ---- /proc/PID/task ---- */

/* Thread ids, sorted; *tids is malloc'd (free it). */
int fp_proc_read_tids(pid_t pid, pid_t **tids, size_t *n, fp_error *err);

/* The kernel's new_encode_dev(): how /proc (stat's tty_nr) and CRIU's
 * images write a device number. */
static inline uint32_t fp_dev_encode(dev_t d)
{
	unsigned maj = major(d), min = minor(d);
	return (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
}

/* A UNIX98 pseudo-terminal slave (/dev/pts/N): majors 136-143. */
static inline bool fp_dev_is_pty_slave(dev_t rdev)
{
	return major(rdev) >= 136 && major(rdev) <= 143;
}

/* ---- /proc/PID/stat (or /proc/PID/task/TID/stat) ---- */

struct fp_proc_stat {
	pid_t pid;
	char comm[64];
	char state;            /* R S D Z T t X I ... */
	pid_t ppid, pgrp, session;
	int tty_nr;
	pid_t tpgid;
	unsigned flags;
	uint64_t minflt, majflt;
	uint64_t utime, stime; /* clock ticks */
	long priority, nice, num_threads;
	uint64_t starttime;    /* clock ticks after boot */
	uint64_t vsize;
	long rss;              /* pages */
	uint64_t startcode, endcode, startstack;
	int exit_signal, processor;
	unsigned rt_priority, policy;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_code;
};

/* tid 0: the process's stat; else the thread's. */
int fp_proc_read_stat(pid_t pid, pid_t tid, struct fp_proc_stat *out, fp_error *err);

/* ---- /proc/PID/status ---- */

struct fp_proc_status {
	char name[64];
	char state;
	pid_t tgid, pid, ppid, tracer_pid;
	uid_t uid[4];          /* real, effective, saved, fs */
	gid_t gid[4];
	int threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd;
	pid_t nspid[8];        /* NSpid: this pid in each nested pid namespace */
	int nspid_n;
	uint64_t vm_rss_kb, vm_size_kb;
	int seccomp;
};

int fp_proc_read_status(pid_t pid, struct fp_proc_status *out, fp_error *err);
/* The value of one "Key:" line (leading blanks removed, no newline). ENOENT
 * if the key is not there. */
int fp_proc_status_field(pid_t pid, const char *key, char *val, size_t len, fp_error *err);

/* ---- the machine ---- */

/* /proc/meminfo's MemAvailable in bytes (0 if it cannot be read). */
size_t fp_mem_available(void);
/* A whole file (a /proc file read to its end, not one read's worth) in a
 * NUL-terminated malloc'd buffer; NULL with *eno set. len may be NULL. */
char *fp_slurp(const char *path, size_t *len, int *eno);
/* An eighth of it, within [lo, hi]: how much the helper holds of its own
 * between operations (a buffer kept faulted in, pages held resident). */
size_t fp_mem_share(size_t lo, size_t hi);

#endif
