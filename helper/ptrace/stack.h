/* Stack traces of stopped threads (libunwind-ptrace, .eh_frame based), for
 * error messages ("thread 1234 did not stop: here is where it is") and
 * `forkpoint inspect`.
 *
 * The thread must be in a ptrace-stop held by this process (fp_pt_seize). */
#ifndef FP_STACK_H
#define FP_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

#define FP_STACK_MAX_DEPTH 64

typedef struct fp_frame {
	uint64_t ip;
	uint64_t sp;
	uint64_t offset;    /* ip - start of the function (0 if unknown) */
	char sym[128];      /* "" when unknown: no symbol, or the nearest symbol
			     * is not this function (static code in a stripped
			     * library); then offset is from the function start
			     * that the unwind info gives */
	char module[256];   /* path of the mapping holding ip, "" if none */
	uint64_t module_offset; /* ip as a file offset in module (for addr2line) */
} fp_frame;

/* Unwinds tid (of process pid) into frames[0..max), innermost first.
 * *n gets the number of frames; a partial stack (unwinding stopped early)
 * is not an error. max > FP_STACK_MAX_DEPTH is clamped. */
int fp_stack_unwind(pid_t pid, pid_t tid, fp_frame *frames, int max, int *n, fp_error *err);

/* Appends to buf:
 *   tid 1234 (comm) state t:
 *     #0  0x00007f...  read+0x12 (/usr/lib/x86_64-linux-gnu/libc.so.6)
 *     #3  0x00007f...  ?? (/usr/lib/x86_64-linux-gnu/libc.so.6+0x2724a)
 * (an unnamed frame shows its file offset, for addr2line with debug info)
 * Returns the length written (truncated to len - 1). */
size_t fp_stack_format(pid_t pid, pid_t tid, const fp_frame *frames, int n, char *buf, size_t len);

/* Unwind + format in one call; on unwind failure the text says why. */
size_t fp_stack_describe(pid_t pid, pid_t tid, char *buf, size_t len);

#endif
