/* Reading the shim's table out of a running process, without stopping it.
 *
 * The table is found through the shim's mapping in /proc/PID/maps: libelf
 * looks up the dynamic symbol FP_SHIM_TABLE_SYMBOL in that file, and its value
 * plus the mapping's load bias is the table's address in the target. The copy
 * is made with process_vm_readv: the header, then only the used parts (fds up
 * to fd_hwm, maps up to map_count, threads up to thread_count), never the
 * whole table (several MB). Slots and lists whose seq was odd or changed
 * during the copy are re-read (see shim_table.h), until a deadline. A copy
 * never contains a torn slot or list.
 *
 * Needs the right to read the target's memory (same user and ptrace access,
 * or root). */
#ifndef FP_SHIM_READER_H
#define FP_SHIM_READER_H

#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "preload/shim_table.h"

enum fp_shim_state {
	FP_SHIM_ABSENT = 0,   /* the shim is not loaded in the process */
	FP_SHIM_STARTING = 1, /* loaded, table not initialised yet (retry soon) */
	FP_SHIM_READY = 2,    /* table copied */
};

struct fp_shim_copy {
	enum fp_shim_state state;
	pid_t pid;
	uint64_t addr;          /* address of the table in the target */
	char shim_path[4096];   /* the shim's file as the target mapped it */
	/* Valid when READY: mapped (free with fp_shim_copy_free), sizeof(struct fp_shim_table) bytes, of
	 * which the header and fds[0, fd_hwm), maps[0, map_count),
	 * threads[0, thread_count) are filled; the rest is zero. */
	struct fp_shim_table *t;
	unsigned retries;       /* slots or lists that had to be read again */
	unsigned gated;         /* lists read with the writers' gate set */
};

struct fp_shim_read_opts {
	int timeout_ms;         /* give up after this (default 2000) */
	int no_gate;            /* never write the gate into the target */
	int fds_only;           /* the fd slots only: the mapping and thread
	                         * lists are left out (zero in the copy) */
};

/* Returns 1 when the table was copied (state READY), 0 when the process is not
 * under the shim (state ABSENT or STARTING: not an error), -1 on error: no
 * such process (ESRCH), no permission (EPERM), a shim of another version, or
 * the table stayed busy until the deadline (EAGAIN: a thread of the target was
 * stopped in the middle of a change; let it run and read again). opts may be
 * NULL. Free with fp_shim_copy_free. */
int fp_shim_read(pid_t pid, const struct fp_shim_read_opts *opts, struct fp_shim_copy *out,
		 fp_error *err);

/* The same when the table's address is already known (from an earlier read
 * of the same process image): skips /proc/PID/maps and the ELF lookup. out is
 * overwritten except shim_path (free an earlier copy first). */
int fp_shim_read_at(pid_t pid, uint64_t addr, const struct fp_shim_read_opts *opts,
		    struct fp_shim_copy *out, fp_error *err);

/* Only finds the table: 1 with *addr (and the shim's path in path, may be
 * NULL) set, 0 if the shim is not mapped, -1 on error. The address is found
 * once per process image: later calls for the same pid read only the table's
 * header at the address found last, and walk /proc/PID/maps again only when
 * that header is not pid's table any more (exec, another process). */
int fp_shim_locate(pid_t pid, uint64_t *addr, char *path, size_t path_len, fp_error *err);

/* The same, always from /proc/PID/maps and the shim's ELF file. */
int fp_shim_locate_proc(pid_t pid, uint64_t *addr, char *path, size_t path_len, fp_error *err);

/* How many times this process walked /proc to find a table (tests). */
unsigned long fp_shim_locate_walks(void);

void fp_shim_copy_free(struct fp_shim_copy *c);

/* The first bytes of an fd slot (struct fp_shim_fd): enough to tell whether
 * a wrapper touched the fd since an earlier read of its seq. */
struct fp_shim_fd_head {
	uint32_t seq;
	uint8_t used, type, origin, path_truncated;
};

/* A partial read: the heads of the slots of fds[0, n) only (8 bytes each, in
 * a few process_vm_readv calls), from the table at addr, an address found
 * earlier for this process. The header is read first and must still be
 * pid's table (else 0: find it again). A slot beyond the table, or one being
 * written, has an odd seq in out. *hwm (may be NULL): the table's fd_hwm, or
 * 0 when fds overflowed the table. 1 on success, -1 on error (the process is
 * gone). */
int fp_shim_read_heads(pid_t pid, uint64_t addr, const int *fds, size_t n, struct fp_shim_fd_head *out,
		       uint32_t *hwm, fp_error *err);

/* The mapping change log's events [from, head) (shim_table.h), from the
 * table at addr: 1 with *ev (malloc'd, *n events, oldest first) and *head
 * (where the next read starts), 0 when they cannot all be had (the ring
 * overflowed, another process image: why says so; *head is the current
 * head), -1 on error (the process is gone, a shim of another version). */
int fp_shim_maplog_read(pid_t pid, uint64_t addr, uint64_t from, struct fp_shim_mapev **ev, size_t *n,
			uint64_t *head, char *why, size_t why_len, fp_error *err);

#endif
