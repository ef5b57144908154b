/* Minimal assertion helpers for tests/unit programs. A test program exits 0
 * when every check passed, 1 otherwise, 77 to skip. Checks never abort, so one
 * run reports every failure. */
#ifndef FP_TEST_H
#define FP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fp_test_failures;
static int fp_test_checks;

#define CHECK(cond)                                                             \
	do {                                                                    \
		fp_test_checks++;                                               \
		if (!(cond)) {                                                  \
			fp_test_failures++;                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                               \
		}                                                               \
	} while (0)

#define CHECKF(cond, ...)                                                       \
	do {                                                                    \
		fp_test_checks++;                                               \
		if (!(cond)) {                                                  \
			fp_test_failures++;                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

#define SKIP(...)                                                               \
	do {                                                                    \
		printf(__VA_ARGS__);                                            \
		putchar('\n');                                                  \
		exit(77);                                                       \
	} while (0)

static inline int fp_test_done(void)
{
	printf("%d checks, %d failed\n", fp_test_checks, fp_test_failures);
	return fp_test_failures ? 1 : 0;
}

/* Path of a built artefact: $FP_BUILD/rel (FP_BUILD is set by tests/run.sh). */
static inline const char *fp_test_build_path(char *buf, size_t len, const char *rel)
{
	const char *b = getenv("FP_BUILD");
	snprintf(buf, len, "%s/%s", b ? b : "build", rel);
	return buf;
}

#endif
