/* Thread register state between the kernel's formats (PTRACE_GETREGS and the
 * NT_X86_XSTATE regset) and CRIU's core image (thread_info_x86). The dumper
 * goes one way, the native restorer the other; keeping both here means the
 * mapping of every byte is written once. */
#ifndef FP_REGS_CONVERT_H
#define FP_REGS_CONVERT_H

#include <stddef.h>
#include <sys/user.h>

#include "fp_error.h"
#include "ptrace/ptrace.h"
#include "images/criu_msgs.h"

/* gpregs <- user_regs_struct (mode NATIVE). */
void fp_regs_to_image(const struct user_regs_struct *r, cr_user_regs *out);
/* user_regs_struct <- gpregs. Fails on a COMPAT (32-bit) image. */
int fp_regs_from_image(const cr_user_regs *in, struct user_regs_struct *r, fp_error *err);

/* fpregs (+ xsave components the CPU has) <- an XSAVE buffer. */
int fp_xstate_to_image(const void *xsave, size_t len, const fp_xstate_layout *l,
		       cr_fpregs *out, fp_error *err);
/* An XSAVE buffer (standard format, len bytes, zeroed first) <- fpregs.
 * Components present in the image but absent on this CPU are an error when
 * they hold non-init state (the program may be using them). */
int fp_xstate_from_image(const cr_fpregs *in, const fp_xstate_layout *l, void *xsave,
			 size_t len, fp_error *err);

#endif
