/* A statically linked program: LD_PRELOAD cannot enter it. It reports ready
 * on stdout, then waits for stdin to close, or with "pause" for a signal. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "pause")) {
		for (;;)
			pause();
	}
	char c;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
