/* The PROCMAP_QUERY ioctl on /proc/PID/maps (Linux 6.11+; the build
 * headers may be older): the mapping covering an address, or the next one
 * with given permissions, in one call, without the whole maps text (which
 * costs O(mappings) while a process with 60,000 of them is stopped). */
#ifndef FP_PROCMAP_QUERY_H
#define FP_PROCMAP_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

struct fp_procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};

#define FP_PROCMAP_QUERY _IOWR('f', 17, struct fp_procmap_query)
#define FP_PROCMAP_READABLE 0x01
#define FP_PROCMAP_WRITABLE 0x02
#define FP_PROCMAP_EXECUTABLE 0x04
#define FP_PROCMAP_SHARED 0x08
#define FP_PROCMAP_COVERING_OR_NEXT 0x10

/* The first mapping at or after addr (fd: /proc/PID/maps) whose permissions
 * include want (FP_PROCMAP_*), its name into name (NUL-terminated, "" for
 * none). 1: found; 0: none; -1: errno (ENOTTY or EINVAL: no PROCMAP_QUERY). */
int fp_procmap_next(int fd, uint64_t addr, uint64_t want, struct fp_procmap_query *q, char *name, uint32_t len);

/* Each readable and executable mapping of pid in address order (never
 * [vsyscall]): fn(arg, start, end, name); nonzero from fn stops. By
 * PROCMAP_QUERY, else from the maps text. hints_only: only the first
 * executable mapping at or after the vDSO and after ld.so's base (auxv),
 * a few calls however many mappings there are (none without
 * PROCMAP_QUERY). 0, or -1 with errno when neither can be read. */
typedef int (*fp_exec_map_fn)(void *arg, uint64_t start, uint64_t end, const char *name);
int fp_exec_maps(pid_t pid, bool hints_only, fp_exec_map_fn fn, void *arg);

#endif
