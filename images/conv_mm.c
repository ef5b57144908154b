/* mm and pagemap messages (criu-image-format.md 3.5, 3.6 and 8) between
 * criu_msgs.h and the code protoc-c generates from proto/mm.proto. */
#include "images/pb_conv.h"
#include "images/proto/mm.pb-c.h"

#include <errno.h>

#define VMA(X) X(VAL, start) X(VAL, end) X(VAL, pgoff) X(VAL, shmid) X(VAL, prot) X(VAL, flags) \
	X(VAL, status) X(VAL, fd) X(OPT, madv) X(OPT, fdflags)
PB_CONV(cr_vma, cr_vma, Fp__VmaEntry, fp__vma_entry, VMA);

#define AIO(X) X(VAL, id) X(VAL, nr_req) X(VAL, ring_len)
PB_CONV(cr_aio_ring, cr_aio_ring, Fp__AioRingEntry, fp__aio_ring_entry, AIO);

#define MM(X) X(VAL, mm_start_code) X(VAL, mm_end_code) X(VAL, mm_start_data) X(VAL, mm_end_data) \
	X(VAL, mm_start_stack) X(VAL, mm_start_brk) X(VAL, mm_brk) X(VAL, mm_arg_start) \
	X(VAL, mm_arg_end) X(VAL, mm_env_start) X(VAL, mm_env_end) X(VAL, exe_file_id) \
	X(ADYN, mm_saved_auxv) X(MDYN, vmas, cr_vma) X(OPT, dumpable) X(MDYN, aios, cr_aio_ring) \
	X(OPT, thp_disabled)
PB_CONV(cr_mm, cr_mm, Fp__MmEntry, fp__mm_entry, MM);

#define PMHEAD(X) X(VAL, pages_id)
PB_CONV(cr_pagemap_head, cr_pagemap_head, Fp__PagemapHead, fp__pagemap_head, PMHEAD);

/* pagemap_entry by hand: nr_pages goes out twice (see proto/mm.proto). */
static ProtobufCMessage *pagemap_entry_to_pb(const void *cv, pb_arena *a)
{
	const cr_pagemap_entry *c = cv;
	Fp__PagemapEntry *p = pb_arena_alloc(a, sizeof(*p));
	if (!p)
		return NULL;
	fp__pagemap_entry__init(p);
	p->vaddr = c->vaddr;
	p->has_nr_pages = true;
	p->nr_pages = (uint32_t)c->nr_pages;
	p->has_in_parent = c->has_in_parent;
	p->in_parent = c->in_parent;
	p->has_flags = c->has_flags;
	p->flags = c->flags;
	p->has_nr_pages_u64 = true;
	p->nr_pages_u64 = c->nr_pages;
	return &p->base;
}

static int pagemap_entry_from_pb(const ProtobufCMessage *m, void *cv, const char *where, fp_error *err)
{
	const Fp__PagemapEntry *p = (const Fp__PagemapEntry *)m;
	cr_pagemap_entry *c = cv;
	if (!p->has_nr_pages && !p->has_nr_pages_u64)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: required field 2 (nr_pages) is missing (corrupt or truncated image)", where);
	c->vaddr = p->vaddr;
	c->nr_pages = p->has_nr_pages_u64 ? p->nr_pages_u64 : p->nr_pages;
	c->has_in_parent = p->has_in_parent;
	c->in_parent = p->in_parent;
	c->has_flags = p->has_flags;
	c->flags = p->flags;
	return 0;
}

static void pagemap_entry_free(void *cv)
{
	(void)cv;
}

const pb_mdesc cr_pagemap_entry_desc = { "pagemap_entry", sizeof(cr_pagemap_entry), &fp__pagemap_entry__descriptor,
					 pagemap_entry_to_pb, pagemap_entry_from_pb, pagemap_entry_free };

void cr_pagemap_entry_encode(pb_buf *b, const cr_pagemap_entry *pe)
{
	pb_encode(b, &cr_pagemap_entry_desc, pe);
}

int cr_pagemap_entry_decode(cr_pagemap_entry *pe, const void *data, size_t len, const char *where,
			    fp_error *err)
{
	return pb_decode(&cr_pagemap_entry_desc, pe, data, len, where, err);
}

void cr_mm_free(cr_mm *m)
{
	pb_free(&cr_mm_desc, m);
}

uint32_t cr_pagemap_flags(const cr_pagemap_entry *pe)
{
	if (pe->has_flags)
		return pe->flags;
	return pe->has_in_parent && pe->in_parent ? CR_PE_PARENT : CR_PE_PRESENT;
}
