/* The contract between libforkpoint-preload.so (writer, inside the target)
 * and the helper (reader, outside it).
 *
 * The table is one static object in the shim's .bss, exported as the dynamic
 * symbol FP_SHIM_TABLE_SYMBOL. The helper finds it with libelf (symbol value +
 * load bias of the shim's mapping in /proc/PID/maps) and copies it with
 * process_vm_readv, without stopping the target.
 *
 * Because the table is ordinary private memory of the target:
 *  - fork() gives the child its own copy (the child inherits fds and maps, so
 *    the copy is right; the shim then fixes pid and the thread list);
 *  - a dump of the process contains the table, and a restored process finds a
 *    table that matches its restored fds and mappings.
 *
 * Consistency without stopping the target:
 *  - each fd slot has its own seqlock (`seq` odd while the slot is written);
 *  - the mapping list and thread list are guarded by `maps_seq`/`threads_seq`
 *    (odd while a writer holds the list lock).
 * The mapping list is a gap buffer, so that a change where the last one was
 * (a program mapping and unmapping in one place) moves no entries: the first
 * `map_lo` entries are at maps[0, map_lo), the other map_count - map_lo at the
 * end of the array, maps[FP_SHIM_MAX_MAPS - (map_count - map_lo), MAX). The
 * reader's copy is compacted (map_lo == map_count).
 * A reader copies, then re-reads any slot or list whose seq was odd or changed.
 * Under heavy churn (threads mapping and unmapping in a loop) a list may never
 * stay still for the length of a copy; the reader can then set `read_gate`
 * (process_vm_writev): list writers pause, each for at most
 * FP_SHIM_GATE_MAX_NS and then clear the gate themselves, so a reader that
 * dies with the gate set costs the target one short pause, not a hang. Writers
 * already inside a list finish first. Per-fd slots need no gate.
 *
 * If the target is stopped (ptrace) while one of its threads holds a list,
 * that list stays odd: the reader reports "busy" and the caller must let the
 * target run a little before reading again.
 *
 * All integers are native-endian; the layout is versioned by FP_SHIM_VERSION
 * and checked through magic, version and header_size.
 */
#ifndef FP_SHIM_TABLE_H
#define FP_SHIM_TABLE_H

#include <stdint.h>

#define FP_SHIM_MAGIC 0x31304d4948535046ULL /* "FPSHIM01" little-endian */
#define FP_SHIM_VERSION 5 /* 2: read_gate, shim_start/shim_end; 3: map_lo (gap);
                           * 4: 20480 fd slots; 5: the mapping change log */
#define FP_SHIM_TABLE_SYMBOL "forkpoint_shim_table"
#define FP_SHIM_SONAME "libforkpoint-preload.so"

/* Above the usual NOFILE hard limit (20000 here). The slots are .bss: only
 * the pages of fds the program used are ever touched, and a reader copies
 * fds[0, fd_hwm) only. */
#define FP_SHIM_MAX_FDS 20480
#define FP_SHIM_MAX_MAPS 4096
#define FP_SHIM_MAX_THREADS 1024
#define FP_SHIM_PATH_MAX 256
#define FP_SHIM_GATE_MAX_NS 2000000ULL /* 2 ms */
#define FP_SHIM_MAPLOG 8192 /* events in the mapping change log (a power of 2) */

/* Environment the launcher sets and the shim keeps alive across exec, also
 * when a program clears its environment. */
#define FP_ENV_SESSION "FORKPOINT_SESSION"   /* session name, informational */
#define FP_ENV_SHIM "FORKPOINT_SHIM"         /* absolute path of the shim */

enum fp_fd_type {
	FP_FD_UNKNOWN = 0,
	FP_FD_REG,
	FP_FD_DIR,
	FP_FD_PIPE,
	FP_FD_FIFO,
	FP_FD_SOCKET,
	FP_FD_CHR,
	FP_FD_BLK,
	FP_FD_EVENTFD,
	FP_FD_TIMERFD,
	FP_FD_SIGNALFD,
	FP_FD_EPOLL,
	FP_FD_INOTIFY,
	FP_FD_MEMFD,
	FP_FD_PIDFD,
	FP_FD_OTHER_ANON, /* some other anon_inode */
};

/* How an entry came to be in the table. */
enum fp_origin {
	FP_ORIGIN_NONE = 0,
	FP_ORIGIN_INHERITED = 1, /* present when the shim started (seeded from /proc) */
	FP_ORIGIN_PROGRAM = 2,   /* created by a wrapped call of the program */
	FP_ORIGIN_SHIM = 3,      /* the shim's own: never part of a dump */
	FP_ORIGIN_RESYNC = 4,    /* found by a resync from /proc after a libc-internal change */
};

struct fp_shim_fd {
	uint32_t seq;            /* seqlock; odd while being written. Every write
	                          * of the slot adds 2, so an unchanged even seq
	                          * between two reads means no wrapper touched the
	                          * fd in between (the dump's shortcut at the stop,
	                          * helper/dump/dump_fdshort.c) */
	uint8_t used;            /* 1 if fd is open according to the shim */
	uint8_t type;            /* enum fp_fd_type; UNKNOWN for files from open()
	                          * (the kernel's st_mode tells) */
	uint8_t origin;          /* enum fp_origin */
	uint8_t path_truncated;  /* path did not fit in FP_SHIM_PATH_MAX */
	int32_t fd_flags;        /* FD_CLOEXEC or 0 */
	int32_t open_flags;      /* flags as passed by the program (incl. O_CREAT...);
	                          * for fds not made by open: the access mode and
	                          * status flags the kernel gives them (pipe read
	                          * end O_RDONLY, socket O_RDWR, | O_NONBLOCK...);
	                          * for inherited fds: F_GETFL. F_SETFL updates the
	                          * status bits. */
	uint64_t dev;            /* st_dev / st_ino of the open file for fds seeded
	                          * from /proc; 0 for the fds wrappers record (no
	                          * fstat per call: /proc/PID/fd has it) */
	uint64_t ino;
	char path[FP_SHIM_PATH_MAX]; /* as the program named it (relative paths stay
	                              * relative); "" for pipes, sockets and anon
	                              * inodes; "memfd:NAME" for memfds; for inherited
	                              * or resynced fds the /proc/self/fd link */
};

struct fp_shim_map {
	uint64_t start, end;     /* [start, end), page aligned */
	uint64_t offset;         /* file offset in bytes, 0 for anonymous */
	uint64_t dev, ino;       /* 0 for anonymous, and for a file mapping made
	                          * through an fd whose identity the table has not
	                          * learnt (filled in by the next resync) */
	int32_t prot;            /* PROT_* */
	int32_t flags;           /* MAP_* as passed (MAP_FIXED dropped); for entries
	                          * from /proc: MAP_PRIVATE or MAP_SHARED, plus
	                          * MAP_ANONYMOUS when there is no file */
	uint8_t origin;          /* enum fp_origin */
	uint8_t path_truncated;
	uint16_t reserved;
	int32_t fd;              /* fd used to map it, -1 for anonymous or from /proc */
	char path[FP_SHIM_PATH_MAX]; /* the fd's path as in fds[]; from /proc: the
	                              * path or the name ("[heap]", "[anon:x]") */
};

/* The mapping change log: a ring of the address-space changes the wrappers
 * made, in the order they made them, for the helper to consume (it keeps
 * the head it read last and takes the events after it; the list maps[]
 * above only says what is, and overflows).
 *
 * Writers append under the maps lock: the slot's gen is set to 0, the event
 * written, then gen = its number + 1 and maplog_head = number + 1 (release).
 * Event number i lives in maplog[i % FP_SHIM_MAPLOG]. A reader that wants
 * the events [from, head) copies them and reads maplog_head again after:
 * if head - from >= FP_SHIM_MAPLOG then, some may have been overwritten
 * (overflow: the helper goes back to /proc); each copied slot must also
 * carry gen == its number + 1.
 *
 * FP_ML_DOUBT says the list lost track (a resync from /proc: a change the
 * wrappers could not follow, dlopen, a new thread stack, a failed mremap):
 * the helper must not trust the log across it. Changes no wrapper sees at
 * all (libc's own mmap and brk inside malloc) are not in the log: the
 * helper checks against /proc. */
enum fp_maplog_kind {
	FP_ML_MAP = 1,     /* [start, end) mapped anew (mmap, mremap's new range,
	                    * brk/sbrk growth: prot and flags as mapped) */
	FP_ML_UNMAP = 2,   /* [start, end) unmapped (munmap, mremap's old range,
	                    * brk/sbrk shrinking) */
	FP_ML_PROTECT = 3, /* [start, end) given prot */
	FP_ML_DOUBT = 4,   /* the list was resynced from /proc */
};

struct fp_shim_mapev {
	uint64_t gen;            /* event number + 1; 0 while written */
	uint64_t start, end;
	int32_t prot, flags;     /* flags: MAP_* as for maps[] (MAP_ANONYMOUS
	                          * for anonymous memory) */
	uint32_t kind;           /* enum fp_maplog_kind */
	uint32_t reserved;
};

struct fp_shim_thread {
	int32_t tid;
	uint8_t origin;
	uint8_t reserved[3];
};

struct fp_shim_table {
	uint64_t magic;          /* FP_SHIM_MAGIC once initialised */
	uint32_t version;        /* FP_SHIM_VERSION */
	uint32_t header_size;    /* sizeof(struct fp_shim_table) */
	uint32_t max_fds, max_maps, max_threads, path_max;
	int32_t pid;             /* the process this copy belongs to */
	uint32_t init_done;

	uint32_t maps_lock;      /* spinlock word (writers only) */
	uint32_t maps_seq;       /* odd while maps[] is changed */
	uint32_t map_count;      /* entries in maps[], sorted by start (see map_lo) */
	uint32_t map_overflow;   /* mappings that did not fit (recounted by each resync) */

	uint32_t threads_lock;
	uint32_t threads_seq;
	uint32_t thread_count;
	uint32_t thread_overflow;

	uint32_t fd_hwm;         /* fds[0, fd_hwm) may be used */
	uint32_t fd_overflow;    /* fds >= max_fds that were opened */
	uint64_t calls;          /* wrapped calls seen (relaxed counter) */
	uint64_t resyncs;        /* resyncs of the mapping list from /proc */

	uint32_t read_gate;      /* written by a reader, see the top of this file */
	uint32_t map_lo;         /* entries before the gap in maps[], see above */
	uint64_t shim_start;     /* [shim_start, shim_end): the shim's own object */
	uint64_t shim_end;       /* (text, data and .bss, where this table lives) */

	uint64_t maplog_head;    /* events appended to maplog[] so far */
	uint32_t maplog_size;    /* FP_SHIM_MAPLOG */
	uint32_t fd_unrecorded;  /* fd changes no slot took: a signal handler's, on
	                          * a thread holding a slot, whose fd another
	                          * thread held (preload/shim_fds.c). Non-zero:
	                          * readers take no fd from the table */

	char shim_path[FP_SHIM_PATH_MAX];

	struct fp_shim_thread threads[FP_SHIM_MAX_THREADS];
	struct fp_shim_map maps[FP_SHIM_MAX_MAPS];
	struct fp_shim_fd fds[FP_SHIM_MAX_FDS];
	struct fp_shim_mapev maplog[FP_SHIM_MAPLOG];
};

#endif
