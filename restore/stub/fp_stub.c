/* The native restorer's stub: the program a restored process starts as.
 *
 * It never does anything on its own. The restorer seizes it at exec, steps
 * it once, and from then on drives it purely from outside: every mmap, open,
 * clone3 and prctl is a syscall injected at the `syscall` instruction below,
 * and the stub's own pages are unmapped before the restored program runs.
 *
 * Why so small and so odd:
 *   - freestanding and static (no libc, no loader, no TLS, no stack use), so
 *     the whole address space after exec is one text page plus what the
 *     kernel adds (stack, vDSO, vvar): almost nothing can collide with the
 *     image's mappings, and what can is moved away by the restorer;
 *   - linked at an unusual address (restore/Makefile.inc) that neither PIE
 *     executables (0x55..) nor shared libraries and stacks (0x7f..) use;
 *   - built without ASan/UBSan even in `make SAN=1`: the sanitizer runtime
 *     needs libc, reserves terabytes of shadow memory at fixed addresses
 *     (which would collide with the restored program's mappings) and runs
 *     code at start-up, which is exactly what the stub must not have.
 *
 * If it is ever resumed by accident it only loops in pause(). */
__asm__(".text\n"
	".globl _start\n"
	".type _start, @function\n"
	"_start:\n"
	"	mov $34, %eax\n" /* SYS_pause */
	"	syscall\n"
	"	jmp _start\n");
