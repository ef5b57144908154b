#include "elfinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int classify_elf(int fd, const char *path, enum fp_exe_kind *kind, fp_error *err)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fp_fail(err, EINVAL, "libelf is too old: %s", elf_errmsg(-1));
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return fp_fail(err, EINVAL, "%s: cannot read ELF: %s", path, elf_errmsg(-1));
	if (elf_kind(elf) != ELF_K_ELF) {
		elf_end(elf);
		*kind = FP_EXE_OTHER;
		return 0;
	}
	size_t nphdr;
	if (elf_getphdrnum(elf, &nphdr) < 0) {
		elf_end(elf);
		return fp_fail(err, EINVAL, "%s: bad program headers: %s", path, elf_errmsg(-1));
	}
	*kind = FP_EXE_STATIC;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_INTERP) {
			*kind = FP_EXE_DYNAMIC;
			break;
		}
	}
	elf_end(elf);
	return 0;
}

int fp_exe_kind(const char *path, enum fp_exe_kind *kind, fp_error *err)
{
	char cur[4096];
	snprintf(cur, sizeof(cur), "%s", path);
	for (int depth = 0; depth < 4; depth++) {
		int fd = open(cur, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fp_fail(err, errno, "cannot open %s: %s", cur, strerror(errno));
		char head[256];
		ssize_t n = pread(fd, head, sizeof(head) - 1, 0);
		if (n >= 2 && head[0] == '#' && head[1] == '!') {
			close(fd);
			head[n] = '\0';
			char *p = head + 2;
			while (*p == ' ' || *p == '\t')
				p++;
			size_t len = strcspn(p, " \t\n");
			if (len == 0) {
				*kind = FP_EXE_OTHER;
				return 0;
			}
			p[len] = '\0';
			snprintf(cur, sizeof(cur), "%s", p);
			continue;
		}
		int rc = classify_elf(fd, cur, kind, err);
		close(fd);
		if (rc == 0 && depth > 0 && *kind == FP_EXE_DYNAMIC)
			*kind = FP_EXE_SCRIPT;
		return rc;
	}
	return fp_fail(err, ELOOP, "%s: too many levels of #! interpreters", path);
}
