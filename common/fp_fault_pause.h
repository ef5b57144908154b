/* A test's hold on one step of forkpoint (FORKPOINT_FAULT, docs/hacking.md). */
#ifndef FP_FAULT_PAUSE_H
#define FP_FAULT_PAUSE_H

#include <stdbool.h>

/* Whether FORKPOINT_FAULT (a comma-separated list) names point. */
bool fp_fault_named(const char *point);

/* When FORKPOINT_FAULT (a comma-separated list) names point: creates
 * DIR/POINT.paused and waits (at most 60 s) until DIR/POINT.go exists, then
 * removes both, so a test can act at this exact step. Else returns at once. */
void fp_fault_pause(const char *point, const char *dir);
/* The same, also let go once until() is true (a state the test brings
 * about through forkpoint itself, such as a request that came). */
void fp_fault_pause_until(const char *point, const char *dir, bool (*until)(void));

/* A numbered fault point: true when a token of FORKPOINT_FAULT matches
 * pattern (a scanf format with one %ld, then %n: the whole token), with
 * its number in *n. */
bool fp_fault_num(const char *pattern, long *n);

#endif
