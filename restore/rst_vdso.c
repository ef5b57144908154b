/* Is the dumped vDSO the running kernel's? The native restorer puts the
 * kernel's live vDSO (and its vvar data pages) where the image had them, so
 * the program's saved pointers into the vDSO (glibc caches the addresses of
 * __vdso_clock_gettime and friends) must land on the same functions: the
 * size, the vvar layout in front of it and every dynamic symbol (name,
 * offset, size) must match. When they do not (a dump from another kernel),
 * the native engine refuses and CRIU, which can patch jump trampolines into
 * the old vDSO, takes over. */
#include "restore/rst_int.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

struct vsym {
	char name[64];
	uint64_t value, size;
};

/* Dynamic symbols of an in-memory vDSO image, sorted as found. */
static int vdso_syms(char *buf, size_t len, struct vsym **out, size_t *n, const char *what, fp_error *err)
{
	*out = NULL;
	*n = 0;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fp_fail(err, EINVAL, "libelf is unusable: %s", elf_errmsg(-1));
	Elf *e = elf_memory(buf, len);
	if (!e)
		return fp_fail(err, EINVAL, "%s is not an ELF image: %s", what, elf_errmsg(-1));
	int rc = -1;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			break;
		size_t cnt = sh.sh_size / sh.sh_entsize;
		*out = calloc(cnt ? cnt : 1, sizeof(**out));
		if (!*out)
			break;
		for (size_t i = 0; i < cnt; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s))
				continue;
			const char *nm = elf_strptr(e, sh.sh_link, s.st_name);
			struct vsym *v = &(*out)[(*n)++];
			snprintf(v->name, sizeof(v->name), "%s", nm ? nm : "");
			v->value = s.st_value;
			v->size = s.st_size;
		}
		rc = 0;
		break;
	}
	elf_end(e);
	if (rc)
		fp_fail(err, EINVAL, "%s has no dynamic symbol table", what);
	return rc;
}

/* Page index (in the page data) of the first page of [start, end), or -1 if
 * the range is not fully present. */
static int64_t page_index(const rst_image *im, uint64_t start, uint64_t end)
{
	uint64_t idx = 0;
	for (size_t i = 0; i < im->npe; i++) {
		const cr_pagemap_entry *pe = &im->pe[i];
		if (!(cr_pagemap_flags(pe) & CR_PE_PRESENT))
			continue;
		uint64_t pe_end = pe->vaddr + pe->nr_pages * CR_PAGE_SIZE;
		if (pe->vaddr <= start && end <= pe_end)
			return (int64_t)(idx + (start - pe->vaddr) / CR_PAGE_SIZE);
		idx += pe->nr_pages;
	}
	return -1;
}

struct live_layout {
	uint64_t vvar_s, vvar_e, vdso_s, vdso_e;
};

static int live_layout(struct live_layout *l, fp_error *err)
{
	memset(l, 0, sizeof(*l));
	rst_map *m;
	size_t n;
	if (rst_read_maps(getpid(), &m, &n, err))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(m[i].name, "[vdso]"))
			l->vdso_s = m[i].start, l->vdso_e = m[i].end;
		else if (!strncmp(m[i].name, "[vvar", 5)) { /* [vvar] and [vvar_vclock] */
			if (!l->vvar_s || m[i].start < l->vvar_s)
				l->vvar_s = m[i].start;
			if (m[i].end > l->vvar_e)
				l->vvar_e = m[i].end;
		}
	}
	free(m);
	return 0;
}

int rst_vdso_check(rst_image *im, fp_error *err)
{
	const cr_vma *v = &im->mm.vmas[im->vdso_vma];
	size_t len = (size_t)(v->end - v->start);
	struct live_layout live;
	if (live_layout(&live, err))
		return -1;
	uint64_t live_base = getauxval(AT_SYSINFO_EHDR);
	if (!live.vdso_s || live_base != live.vdso_s) {
		rst_unsupported(im, "vDSO differs: this kernel gives processes no vDSO (use --engine criu)");
		return 0;
	}
	if (live.vdso_e - live.vdso_s != len) {
		rst_unsupported(im, "vDSO differs: the dumped vDSO is %zu bytes, this kernel's %llu (dumped on another "
				    "kernel; use --engine criu)",
				len, (unsigned long long)(live.vdso_e - live.vdso_s));
		return 0;
	}
	if (im->vvar_vma >= 0) {
		const cr_vma *w = &im->mm.vmas[im->vvar_vma];
		if (w->end - w->start != live.vvar_e - live.vvar_s || v->start - w->start != live.vdso_s - live.vvar_s) {
			rst_unsupported(im, "vDSO differs: the vvar area is laid out differently on this kernel (use --engine "
					    "criu)");
			return 0;
		}
	}
	int64_t idx = page_index(im, v->start, v->end);
	if (idx < 0)
		return fp_fail(err, EINVAL, "the vDSO pages (0x%llx-0x%llx) are not in the page data; the image is "
				     "corrupt or incomplete",
			       (unsigned long long)v->start, (unsigned long long)v->end);
	char *dumped = malloc(len), *mine = malloc(len);
	if (!dumped || !mine) {
		free(dumped);
		free(mine);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	memcpy(mine, (void *)live_base, len);
	int rc = pgs_read(im->pages, (uint64_t)idx, len / CR_PAGE_SIZE, dumped, err);
	struct vsym *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	if (!rc && vdso_syms(dumped, len, &a, &na, "the dumped vDSO", err) == 0 &&
	    vdso_syms(mine, len, &b, &nb, "this kernel's vDSO", err) == 0) {
		if (na != nb)
			rst_unsupported(im, "vDSO differs: %zu symbols dumped, %zu in this kernel's (use --engine criu)", na, nb);
		for (size_t i = 0; i < na && i < nb; i++)
			if (strcmp(a[i].name, b[i].name) || a[i].value != b[i].value || a[i].size != b[i].size) {
				rst_unsupported(im, "vDSO differs: symbol %s at 0x%llx in the image, %s at 0x%llx here (use "
						    "--engine criu)",
						a[i].name, (unsigned long long)a[i].value, b[i].name,
						(unsigned long long)b[i].value);
				break;
			}
	} else if (!rc) {
		rc = -1;
	}
	free(a);
	free(b);
	free(dumped);
	free(mine);
	return rc;
}
