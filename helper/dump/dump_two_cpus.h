/* Work split over two CPUs (dump_two_cpus.c), for the dump and for
 * rollbacks in place. */
#ifndef FP_DUMP_TWO_CPUS_H
#define FP_DUMP_TWO_CPUS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ptrace/pt_mem.h"

/* fn over [0, n) in chunks, by this thread and (for many) one on another
 * CPU; returns once every chunk taken is done (not waiting for a second
 * thread that has not started yet) and says how many threads took work. */
int dump_two_cpus(size_t n, void (*fn)(void *arg, size_t from, size_t to), void *arg);
/* The same with items taken `chunk` at a time, a second thread from `min`
 * items on. */
int dump_two_cpus_by(size_t n, size_t chunk, size_t min, void (*fn)(void *arg, size_t from, size_t to), void *arg);
/* The CPUs other than this one (false: there are none). */
bool dump_other_cpus(cpu_set_t *others);
/* fp_mem_read_ranges of n ranges on two CPUs; the first failure in err. */
int dump_mem_read_two_cpus(pid_t pid, fp_mem_range *rg, size_t n, fp_error *err);

#endif
