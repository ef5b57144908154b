/* Target for the register tests: one thread spinning in a loop that ends
 * only when a tracer has set xmm0 (low 64 bits), the upper half of ymm0
 * (low 64 bits) and r12 to the magic values below. ymm3 holds a known
 * pattern for the tracer to read. Prints "ready <loop start> <loop end>"
 * first and "ok" when the loop ends. */
#include <stdint.h>
#include <stdio.h>

#define MAGIC1 0x1111222233334444ULL
#define MAGIC2 0x5555666677778888ULL
#define MAGIC3 0x0badc0ffee0ddf00ULL

extern char pt_spin_start[], pt_spin_end[];

static const uint64_t magic[3] = { MAGIC1, MAGIC2, MAGIC3 };
static const uint64_t pattern[4] = { 0x0101010102020202ULL, 0x0303030304040404ULL, 0x0505050506060606ULL,
				     0x0707070708080808ULL };

int main(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx")) {
		dprintf(1, "noavx\n");
		return 0;
	}
	dprintf(1, "ready %p %p\n", (void *)pt_spin_start, (void *)pt_spin_end);
	__asm__ volatile("vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
			 "xor %%r12d, %%r12d\n\t"
			 "vmovdqu (%1), %%ymm3\n\t"
			 ".globl pt_spin_start\n"
			 "pt_spin_start:\n\t"
			 "vmovq %%xmm0, %%rax\n\t"
			 "cmp 0(%0), %%rax\n\t"
			 "jne pt_spin_start\n\t"
			 "vextractf128 $1, %%ymm0, %%xmm1\n\t"
			 "vmovq %%xmm1, %%rax\n\t"
			 "cmp 8(%0), %%rax\n\t"
			 "jne pt_spin_start\n\t"
			 "cmp 16(%0), %%r12\n\t"
			 "jne pt_spin_start\n\t"
			 ".globl pt_spin_end\n"
			 "pt_spin_end:\n\t"
			 "vzeroupper\n\t"
			 :
			 : "r"(magic), "r"(pattern)
			 : "rax", "r12", "xmm0", "xmm1", "xmm3", "cc", "memory");
	dprintf(1, "ok\n");
	return 0;
}
