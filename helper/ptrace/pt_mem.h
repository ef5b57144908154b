/* Reading and writing another process's memory in large vectors.
 *
 * process_vm_readv with 1-4 MiB iovecs into a reused buffer is the fastest
 * way out of a process on this machine (8-17 GB/s, machine-limits.md §1);
 * never read into freshly mmapped memory (page faults cap it at 1-2 GB/s).
 * A range that process_vm_readv cannot read (PROT_NONE, a page unmapped
 * meanwhile) is retried through /proc/PID/mem, which also reads protected
 * pages; only then is it an error naming the address.
 *
 * The target need not be stopped, but for a consistent copy it should be. */
#ifndef FP_PT_MEM_H
#define FP_PT_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

/* Reads exactly len bytes at remote addr into buf. */
int fp_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len, fp_error *err);
/* Writes exactly len bytes; falls back to /proc/PID/mem, which can write
 * read-only private pages (copy-on-write), like a debugger does. */
int fp_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len, fp_error *err);

typedef struct fp_mem_range {
	uint64_t addr; /* remote */
	size_t len;
	void *local;   /* len bytes of caller memory */
} fp_mem_range;

/* Reads every range into its local buffer, up to 1024 ranges per syscall. */
int fp_mem_read_ranges(pid_t pid, const fp_mem_range *r, size_t n, fp_error *err);

typedef struct fp_mem_span {
	uint64_t addr;
	size_t len;
} fp_mem_span;

/* Receives the next piece of the stream. Return 0 to go on, -1 (with err
 * set) to stop. */
typedef int (*fp_mem_sink)(void *ctx, const void *data, size_t len, fp_error *err);

typedef struct fp_mem_reader {
	pid_t pid;
	char *buf;   /* reused chunk buffer, touched once at open */
	size_t cap;
	int mem_fd;  /* /proc/PID/mem for the fallback, -1 until needed */
} fp_mem_reader;

/* chunk = 0 picks 4 MiB. */
int fp_mem_reader_open(fp_mem_reader *r, pid_t pid, size_t chunk, fp_error *err);
/* Streams the spans' bytes, in order, through the chunk buffer into sink.
 * A chunk holds the data of many small spans or part of a large one; the
 * boundaries follow the buffer, not the spans. */
int fp_mem_stream(fp_mem_reader *r, const fp_mem_span *s, size_t n, fp_mem_sink sink, void *ctx, fp_error *err);
void fp_mem_reader_close(fp_mem_reader *r);

#endif
