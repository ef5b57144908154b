/* What we need to know about an executable before launching it. */
#ifndef FP_ELFINFO_H
#define FP_ELFINFO_H

#include "fp_error.h"

enum fp_exe_kind {
	FP_EXE_DYNAMIC = 0, /* has PT_INTERP: the shim can be preloaded */
	FP_EXE_STATIC,      /* no PT_INTERP: LD_PRELOAD is ignored */
	FP_EXE_SCRIPT,      /* starts with #!: judged by its interpreter */
	FP_EXE_OTHER,       /* not ELF and not a script (binfmt_misc, ...) */
};

/* Classifies `path` using libelf. A script is resolved to its interpreter. */
int fp_exe_kind(const char *path, enum fp_exe_kind *kind, fp_error *err);

#endif
