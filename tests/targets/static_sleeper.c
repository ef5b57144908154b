/* A statically linked program: LD_PRELOAD cannot enter it. It reports ready
 * on stdout and then waits for stdin to close. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
