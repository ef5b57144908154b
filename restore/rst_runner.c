/* The syscall-list runner: a few dozen bytes of position-independent machine
 * code that the restorer copies into an executable page of the process being
 * built (rst_proc.c), so that one ptrace round trip runs a whole list of
 * system calls instead of one (rst_batch.c). A round trip - set registers,
 * resume, sleep until the tracee stops, read back - costs 35-130 µs here,
 * and restoring a 16-thread process took several hundred of them.
 *
 * Entry: r12 = the first rst_ent of the list, r13 = how many. For each
 * entry, in order: if RST_CTL_REF is set, argument (ctl >> 8) & 7 is
 * replaced by the result of the entry (ctl >> 16) places earlier; then
 * syscall nr runs with a[0..5] and its result goes into ret. With
 * RST_CTL_STOP, a result of -4095..-1 ends the list there. At the end it
 * executes int3: the tracer sees a SIGTRAP stop with rip at
 * fp_rst_runner_end and discards the signal.
 *
 * A thread or process created by a clone3/clone/fork/vfork in the list
 * returns 0 into this code too. It must not run the rest of the list (nor
 * write into it: a thread shares this memory), so it parks in pause(): new
 * threads wait there (every signal blocked) until the restorer seizes and
 * stops them; new processes are traced from their creation
 * (PTRACE_O_TRACEFORK) and never get here.
 *
 * No stack is used: the stub has none. Only rax, rcx, rdx, rdi, rsi, r8-r11
 * and r12, r13 change. fp_rst_runner_syscall is also a plain `syscall`
 * instruction for single-stepping one system call. */
#include "restore/rst_int.h"

_Static_assert(sizeof(rst_ent) == 72, "the runner below assumes 72-byte entries");

__asm__(".section .rodata\n"
	".balign 16\n"
	".globl fp_rst_runner\n"
	"fp_rst_runner:\n"
	"0:	test %r13, %r13\n"
	"	jz 9f\n"
	"	mov 8(%r12), %rcx\n"
	"	test $2, %ecx\n"
	"	jz 2f\n"
	"	mov %rcx, %rax\n"
	"	shr $16, %rax\n"
	"	imul $72, %rax, %rax\n"
	"	mov %r12, %rdx\n"
	"	sub %rax, %rdx\n"
	"	mov 64(%rdx), %rax\n"
	"	mov %ecx, %edx\n"
	"	shr $8, %edx\n"
	"	and $7, %edx\n"
	"	mov %rax, 16(%r12,%rdx,8)\n"
	"2:	mov (%r12), %rax\n"
	"	mov 16(%r12), %rdi\n"
	"	mov 24(%r12), %rsi\n"
	"	mov 32(%r12), %rdx\n"
	"	mov 40(%r12), %r10\n"
	"	mov 48(%r12), %r8\n"
	"	mov 56(%r12), %r9\n"
	".globl fp_rst_runner_syscall\n"
	"fp_rst_runner_syscall:\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 3f\n"
	"	cmpq $435, (%r12)\n" /* clone3 */
	"	je 8f\n"
	"	cmpq $56, (%r12)\n"  /* clone */
	"	je 8f\n"
	"	cmpq $57, (%r12)\n"  /* fork */
	"	je 8f\n"
	"	cmpq $58, (%r12)\n"  /* vfork */
	"	je 8f\n"
	"3:	mov %rax, 64(%r12)\n"
	"	testb $1, 8(%r12)\n"
	"	jz 4f\n"
	"	cmp $-4095, %rax\n"
	"	jae 9f\n"
	"4:	add $72, %r12\n"
	"	dec %r13\n"
	"	jmp 0b\n"
	"8:	mov $34, %eax\n" /* pause */
	"	syscall\n"
	"	jmp 8b\n"
	"9:	int3\n"
	".globl fp_rst_runner_end\n"
	"fp_rst_runner_end:\n"
	"	jmp 9b\n"
	".globl fp_rst_runner_stop\n"
	"fp_rst_runner_stop:\n"
	".previous\n");
