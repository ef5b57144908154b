/* The stub executable (restore/stub/fp_stub.c, built by restore/Makefile.inc)
 * embedded as bytes, so `forkpoint` needs no separate file at run time. */
#include "restore/rst_int.h"

#ifndef FP_STUB_BIN
#error "FP_STUB_BIN is set by restore/Makefile.inc"
#endif

__asm__(".section .rodata\n"
	".balign 16\n"
	".globl fp_rst_stub_elf\n"
	"fp_rst_stub_elf:\n"
	".incbin \"" FP_STUB_BIN "\"\n"
	".globl fp_rst_stub_elf_end\n"
	"fp_rst_stub_elf_end:\n"
	".byte 0\n"
	".previous\n");
