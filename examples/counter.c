/* The demo program: a small stateful process worth snapshotting. It keeps a
 * counter and a 16 MiB pattern in memory and a worker thread that folds the
 * pattern into a checksum. Every tick it prints the counter and checks its
 * memory, so after a restore it proves (or disproves) that its state came
 * back: the counter continues from the snapshot's value.
 *
 * With a LOG argument it also appends one line per tick to LOG and checks
 * that LOG holds exactly `count` lines: memory and files must agree, which
 * only holds across a restore when the file system is restored with the
 * memory (a workspace). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_WORDS (16u << 20) / 8

static uint64_t *pattern;
static volatile uint64_t worker_sum;

static uint64_t expected_word(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull ^ (i >> 7);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t s = 0;
		for (uint64_t i = 0; i < PATTERN_WORDS; i++)
			s += pattern[i];
		worker_sum = s;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long n = 0;
	int c;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	const char *log = argc > 1 && argv[1][0] ? argv[1] : NULL;
	int ticks = argc > 2 ? atoi(argv[2]) : -1;
	pattern = malloc(PATTERN_WORDS * 8);
	if (!pattern) {
		perror("malloc");
		return 1;
	}
	uint64_t want = 0;
	for (uint64_t i = 0; i < PATTERN_WORDS; i++) {
		pattern[i] = expected_word(i);
		want += pattern[i];
	}
	int fd = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644) : -1;
	if (log && fd < 0) {
		fprintf(stderr, "counter: cannot open %s: %s\n", log, strerror(errno));
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	for (long count = 1; ticks < 0 || count <= ticks; count++) {
		long lines = count;
		if (log) {
			dprintf(fd, "tick %ld\n", count);
			lines = count_lines(log);
		}
		int mem_ok = worker_sum == 0 || worker_sum == want;
		if (!mem_ok)
			printf("tick %ld pid %d: BROKEN: the 16 MiB pattern's checksum changed\n", count,
			       (int)getpid());
		else if (lines != count)
			printf("tick %ld pid %d: BROKEN: %s has %ld lines, expected %ld\n", count,
			       (int)getpid(), log, lines, count);
		else
			printf("tick %ld pid %d: memory%s ok\n", count, (int)getpid(), log ? " and log" : "");
		fflush(stdout);
		if (!mem_ok || lines != count)
			return 2;
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}
