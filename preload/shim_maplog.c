/* The mapping change log (shim_table.h): what the wrappers changed in the
 * address space, in order, for the helper to register new memory for its
 * write tracking without walking /proc/PID/maps. Appended under the maps
 * lock only, so writers never race each other; the reader outside sees a
 * slot's gen change last. */
#include "shim_internal.h"

FP_HIDDEN void fp_maplog_add(uint32_t kind, uint64_t start, uint64_t end, int prot, int flags)
{
	struct fp_shim_table *t = FP_T;
	uint64_t i = t->maplog_head;
	struct fp_shim_mapev *e = &t->maplog[i & (FP_SHIM_MAPLOG - 1)];
	__atomic_store_n(&e->gen, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	e->start = start;
	e->end = end;
	e->prot = prot;
	e->flags = flags;
	e->kind = kind;
	e->reserved = 0;
	__atomic_store_n(&e->gen, i + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&t->maplog_head, i + 1, __ATOMIC_RELEASE);
}
