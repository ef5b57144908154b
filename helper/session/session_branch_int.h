/* Inside session_branch.c and session_branch_spare.c: one branch's start,
 * as its helper (pid 1 of the branch's pid namespace) runs it. */
#ifndef FP_SESSION_BRANCH_INT_H
#define FP_SESSION_BRANCH_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "session/session_store.h"

struct branch_report {
	int rc;
	int exit_code;
	pid_t pid, ns_pid, helper_pid;
	double ms, restore_ms;
	int engine_criu;
	int hot;
	int spare;       /* the fork was made before the branch was asked for */
	double fork_ms;
	char hot_why[256];
	char msg[1024];
};
struct branch_job {
	const struct fp_session_info *from;
	const char *snap;
	char snap_dir[PATH_MAX];
	struct fp_session_info info; /* reserved for the branch */
	double t0;
	int timeout_ms;
	bool hot;        /* SNAP is hot: try forking its frozen copy first */
	pid_t hot_pid;   /* the image's root pid (found in the branch) */
	bool ns_ready;   /* fp_branch_ns_begin done (a spare does it early) */
	unsigned long long helper_start;
	pid_t spare_pid; /* a spare's process, already forked from the frozen copy */
	uint64_t spare_ip;
};

/* This helper's own /proc and its pid outside (once, before anything). */
int fp_branch_ns_begin(struct branch_job *j, fp_error *err);
pid_t fp_branch_outer_self(void);
void fp_branch_close_inherited(int keep);
/* Asks SNAP's session helper for a fork of its frozen copy of j->hot_pid
 * into this branch's namespaces; *ip: where the fork may make system calls. */
int fp_branch_hotfork(const struct branch_job *j, double *fork_ms, uint64_t *ip, fp_error *err);
/* Names, records, workspace, restore; then the report (a struct
 * branch_report) on wfd, and the session served until it ends. */
__attribute__((noreturn)) void fp_branch_run(struct branch_job *j, int wfd);

#endif
