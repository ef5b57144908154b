/* CRIU's smaller messages (timens, seccomp, tty, remaps, ghost files, file
 * locks), split out of criu_msgs.h to keep each header short; included
 * from it at this place, so it sees the types above. */
#ifndef FP_CRIU_MSGS_MISC_H
#define FP_CRIU_MSGS_MISC_H

/* ---- misc ------------------------------------------------------------- */
typedef struct cr_timespec {
	uint64_t tv_sec, tv_nsec;
} cr_timespec;

typedef struct cr_timens { /* timens_entry */
	cr_timespec monotonic, boottime;
} cr_timens;

typedef struct cr_seccomp_filter {
	uint8_t *filter; /* struct sock_filter array */
	size_t filter_len;
	bool has_prev;
	uint32_t prev;
	bool has_flags;
	uint32_t flags;
} cr_seccomp_filter;

typedef struct cr_seccomp { /* seccomp_entry */
	cr_seccomp_filter *seccomp_filters;
	size_t n_seccomp_filters;
} cr_seccomp;

typedef struct cr_termios {
	uint32_t c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_ispeed, c_ospeed;
	uint32_t c_cc[CR_TERMIOS_NCC];
	size_t n_c_cc;
} cr_termios;

typedef struct cr_winsize {
	uint32_t ws_row, ws_col, ws_xpixel, ws_ypixel;
} cr_winsize;

typedef struct cr_tty_pty {
	uint32_t index;
} cr_tty_pty;

typedef struct cr_tty_info { /* tty_info_entry */
	uint32_t id;
	uint32_t type; /* enum cr_tty_type */
	bool locked, exclusive, packet_mode;
	uint32_t sid, pgrp, rdev;
	bool has_termios;
	cr_termios termios;
	bool has_termios_locked;
	cr_termios termios_locked;
	bool has_winsize;
	cr_winsize winsize;
	bool has_pty;
	cr_tty_pty pty;
	bool has_dev, has_uid, has_gid;
	uint32_t dev, uid, gid;
} cr_tty_info;

/* remap-fpath.img: a file entry whose path is gone stands for a copy kept
 * in the image (GHOST: ghost-file-<remap_id in hex>.img). */
enum cr_remap_type { CR_REMAP_LINKED = 0, CR_REMAP_GHOST = 1, CR_REMAP_PROCFS = 2 };
typedef struct cr_remap_fpath { /* remap_file_path_entry */
	uint32_t orig_id, remap_id;
	bool has_remap_type;
	uint32_t remap_type;
} cr_remap_fpath;

typedef struct cr_timeval {
	uint64_t tv_sec, tv_usec;
} cr_timeval;

/* ghost-file-<id>.img: this entry, then the file's bytes: all of them
 * (chunks false), or ghost_chunk_entry {len, off} entries each followed by
 * len bytes (chunks true: holes left out). */
typedef struct cr_ghost_file { /* ghost_file_entry */
	uint32_t uid, gid, mode;
	bool has_dev, has_ino, has_rdev;
	uint32_t dev;
	uint64_t ino;
	uint32_t rdev;
	bool has_atim, has_mtim;
	cr_timeval atim, mtim;
	bool has_chunks, chunks;
	bool has_size;
	uint64_t size;
} cr_ghost_file;

typedef struct cr_ghost_chunk { /* ghost_chunk_entry */
	uint64_t len, off;
} cr_ghost_chunk;

/* filelocks.img: one entry per lock a dumped process holds. */
enum cr_lock_kind { CR_FL_POSIX = 1, CR_FL_FLOCK = 2, CR_FL_OFD = 4 };
typedef struct cr_file_lock { /* file_lock_entry */
	uint32_t flag;  /* enum cr_lock_kind */
	uint32_t type;  /* F_RDLCK 0, F_WRLCK 1 (flock locks too: CRIU's convention) */
	int32_t pid;    /* the process that holds it, or takes it back */
	int32_t fd;     /* an fd of that process on the locked file */
	uint64_t start; /* int64 on the wire; never negative here */
	uint64_t len;   /* 0: to the end of the file */
} cr_file_lock;

#endif
