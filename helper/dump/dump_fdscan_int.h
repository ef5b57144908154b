/* What dump_fdscan.c (the stop and after) and dump_fdlook.c (the looks
 * before the stop) share of the fd capture. */
#ifndef FP_DUMP_FDSCAN_INT_H
#define FP_DUMP_FDSCAN_INT_H

#include <stdlib.h>
#include <sys/resource.h>

#include "dump/dump_int.h"

struct later_fd {
	size_t proc;
	int fd;
	uint64_t pos;
	uint32_t flags; /* without O_CLOEXEC */
	struct stat st;
	char *link;            /* read at the stop, or NULL: look_link */
	const char *look_link; /* the look's (kept until the dump ends) */
	char *locks; /* the fdinfo text when it lists locks */
	int pin;     /* pidfd_getfd copy, -1 if it shares with no other fd */
	bool borrowed; /* pin is the shortcut's (dump_fdshort.c), not closed here */
	bool check;  /* the link came from the look */
	bool share;  /* another fd has the same inode, offset and flags */
	bool done;
};

/* One process's look. */
struct look_set {
	pid_t pid;
	struct dump_fd_look *look;
	size_t nlook;
	int *kept;                 /* look[i].info, for dump_fdread */
	struct dump_fdtext *texts; /* their texts at the stop (pre-faulted) */
	struct dump_fd *fds;       /* its fd table at the stop (pre-faulted), until taken */
	size_t capfds;
};

struct dump_fdscan {
	struct look_set *sets;     /* the processes looked at before the stop */
	size_t nsets;
	struct later_fd *later;
	size_t nlater, caplater;
	struct rlimit saved;
	bool raised;
	bool group_after; /* every process has a frozen copy: fds grouped after the resume */
};

static inline const char *wlink(const struct later_fd *w)
{
	return w->link ? w->link : w->look_link;
}

static inline struct dump_fdscan *scan(struct dump_ctx *c)
{
	if (!c->fdscan)
		c->fdscan = calloc(1, sizeof(*c->fdscan));
	return c->fdscan;
}

static inline struct look_set *set_of(const struct dump_fdscan *s, pid_t pid)
{
	for (size_t i = 0; s && i < s->nsets; i++)
		if (s->sets[i].pid == pid)
			return &s->sets[i];
	return NULL;
}

static inline const struct dump_fd_look *find_look(const struct look_set *s, int fd)
{
	size_t lo = 0, hi = s ? s->nlook : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->look[mid].fd == fd)
			return &s->look[mid];
		if (s->look[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* dump_fdlook.c: how many more fds the dumper may open (its soft limit
 * raised to the hard one for the dump, put back by dump_fds_free). */
long dump_fd_budget(struct dump_fdscan *s);

#endif
