/* Tables for mm-<pid>.img and pagemap-<pid>.img (criu-image-format.md 3.5,
 * 3.6 and 8). */
#include "images/msg_table.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define T cr_vma
static const pb_fdesc vma_f[] = {
	F_REQ(1, T, U64, start), F_REQ(2, T, U64, end), F_REQ(3, T, U64, pgoff),
	F_REQ(4, T, U64, shmid), F_REQ(5, T, U32, prot), F_REQ(6, T, U32, flags),
	F_REQ(7, T, U32, status), F_REQ(8, T, S64, fd),
	F_OPT(9, T, U64, madv), F_OPT(10, T, U32, fdflags),
};
DESC(cr_vma_desc, "vma_entry", T, vma_f);
#undef T

#define T cr_aio_ring
static const pb_fdesc aio_f[] = {
	F_REQ(1, T, U64, id), F_REQ(2, T, U32, nr_req), F_REQ(3, T, U32, ring_len),
};
static DESC(aio_desc, "aio_ring_entry", T, aio_f);
#undef T

#define T cr_mm
static const pb_fdesc mm_f[] = {
	F_REQ(1, T, U64, mm_start_code), F_REQ(2, T, U64, mm_end_code),
	F_REQ(3, T, U64, mm_start_data), F_REQ(4, T, U64, mm_end_data),
	F_REQ(5, T, U64, mm_start_stack), F_REQ(6, T, U64, mm_start_brk),
	F_REQ(7, T, U64, mm_brk), F_REQ(8, T, U64, mm_arg_start),
	F_REQ(9, T, U64, mm_arg_end), F_REQ(10, T, U64, mm_env_start),
	F_REQ(11, T, U64, mm_env_end), F_REQ(12, T, U32, exe_file_id),
	F_REP_DYN(13, T, U64, mm_saved_auxv),
	F_REPMSG_DYN(14, T, vmas, cr_vma_desc),
	F_OPT(15, T, I32, dumpable),
	F_REPMSG_DYN(16, T, aios, aio_desc),
	F_OPT(17, T, BOOL, thp_disabled),
};
DESC(cr_mm_desc, "mm_entry", T, mm_f);
#undef T

#define T cr_pagemap_head
static const pb_fdesc pmh_f[] = { F_REQ(1, T, U32, pages_id) };
DESC(cr_pagemap_head_desc, "pagemap_head", T, pmh_f);
#undef T

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

void cr_pagemap_entry_encode(pb_buf *b, const cr_pagemap_entry *pe)
{
	pb_put_u64(b, 1, pe->vaddr);
	pb_put_u64(b, 2, (uint32_t)pe->nr_pages);
	if (pe->has_in_parent)
		pb_put_u64(b, 3, pe->in_parent);
	if (pe->has_flags)
		pb_put_u64(b, 4, pe->flags);
	pb_put_u64(b, 5, pe->nr_pages);
}

int cr_pagemap_entry_decode(cr_pagemap_entry *pe, const void *data, size_t len,
			    const char *where, fp_error *err)
{
	char w[512];
	snprintf(w, sizeof(w), "%s: pagemap_entry", where ? where : "pagemap");
	pb_reader r;
	pb_reader_init(&r, data, len, w, err);
	memset(pe, 0, sizeof(*pe));
	bool seen1 = false, seen2 = false, seen5 = false;
	uint32_t compat = 0;
	pb_field f;
	int rc;
	static const char *const names[] = { "", "vaddr", "nr_pages", "in_parent", "flags",
					     "nr_pages (u64)" };
	while ((rc = pb_next(&r, &f)) > 0) {
		if (f.num > 5)
			continue;
		if (f.wt != PB_WT_VARINT)
			return pb_fail(&r, &f, names[f.num], "wire type %d, expected varint",
				       (int)f.wt);
		switch (f.num) {
		case 1: pe->vaddr = f.v; seen1 = true; break;
		case 2: compat = (uint32_t)f.v; seen2 = true; break;
		case 3: pe->has_in_parent = true; pe->in_parent = f.v != 0; break;
		case 4: pe->has_flags = true; pe->flags = (uint32_t)f.v; break;
		case 5: pe->nr_pages = f.v; seen5 = true; break;
		}
	}
	if (rc < 0)
		return -1;
	if (!seen1)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: required field 1 (vaddr) is missing (corrupt or truncated image)", w);
	if (!seen2 && !seen5)
		return fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				    "%s: required field 2 (nr_pages) is missing (corrupt or truncated image)", w);
	if (!seen5)
		pe->nr_pages = compat;
	return 0;
}
