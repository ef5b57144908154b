/* The looks before the stop (dump_fdscan.c says what they are for): each
 * process of the tree, its fds' paths, stats and fdinfo files kept open,
 * from the fds the last snapshot carried where it can (dump_fdcarry.c),
 * and the shim's shortcut offered (dump_fdshort.c). */
#include "dump/dump_fdscan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A look keeps one fdinfo file per fd and pins take one more each: the
 * soft limit goes up to the hard one for the dump (put back after). */
long dump_fd_budget(struct dump_fdscan *s)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (!s->raised && rl.rlim_cur < rl.rlim_max) {
		s->saved = rl;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			s->raised = true;
		else
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	struct stat st;
	long open_now = stat("/proc/self/fd", &st) == 0 ? (long)st.st_size : 1024;
	long room = (long)(rl.rlim_cur > 1L << 30 ? 1L << 30 : rl.rlim_cur) - open_now - 256;
	return room > 0 ? room : 0;
}

/* One process's look (a set of its own in s->sets). */
static void look_one(struct dump_ctx *c, struct dump_fdscan *s, pid_t pid)
{
	int64_t t0 = dump_now_ns();
	if (set_of(s, pid))
		return;
	struct look_set *more = realloc(s->sets, (s->nsets + 1) * sizeof(*more));
	if (!more)
		return;
	s->sets = more;
	long keep = dump_fd_budget(s) / 2;
	int fddir, infodir, *fds = NULL;
	size_t n = 0, kept = 0;
	dump_fd_dirs(pid, &fddir, &infodir);
	/* The fds the last snapshot read, unchanged by any wrapper, are taken
	 * from it (dump_fdcarry.c); else the table's seqs before any fd is
	 * read (dump_fdshort.c). */
	bool carry = fddir >= 0 && dump_fdcarry_list(c, pid, &fds, &n) == 1;
	struct look_set ls = { .pid = pid };
	if (fddir < 0 || infodir < 0 || (!carry && dump_list_fds(fddir, &fds, &n)) ||
	    !(ls.look = calloc(n ? n : 1, sizeof(*ls.look)))) {
		dlog(c, "fds of %d not looked at before the stop (%s): read while stopped", pid, strerror(errno));
		goto out;
	}
	if (!carry)
		dump_fdshort_begin(c, pid, n ? fds[n - 1] : -1);
	for (size_t i = 0; i < n; i++) {
		struct dump_fd_look *l = &ls.look[ls.nlook];
		char name[16], link[PATH_MAX], buf[4096];
		const struct dump_fd_look *r = carry ? dump_fdcarry_get(c, pid, fds[i]) : NULL;
		if (r && (l->link = strdup(r->link))) {
			char *link_copy = l->link;
			*l = *r;
			l->info = -1;
			l->link = link_copy;
			ls.nlook++;
			continue;
		}
		snprintf(name, sizeof(name), "%d", fds[i]);
		ssize_t k = readlinkat(fddir, name, link, sizeof(link) - 1);
		if (k < 0 || fstatat(fddir, name, &l->st, 0))
			continue;
		link[k] = '\0';
		l->fd = fds[i];
		l->info = (long)kept < keep ? openat(infodir, name, O_RDONLY | O_CLOEXEC) : -1;
		struct dump_fd_seen sn = { 0 };
		ssize_t got = dump_fdinfo_read(infodir, l->info, fds[i], buf, sizeof(buf));
		if (got <= 0 || (buf[got] = '\0', dump_fdinfo_parse(buf, &sn)) || !(l->link = strdup(link))) {
			if (l->info >= 0)
				close(l->info);
			continue;
		}
		kept += l->info >= 0;
		l->mnt_id = sn.mnt_id;
		l->ino = sn.ino;
		l->flags = sn.flags;
		l->pos = sn.pos;
		ls.nlook++;
	}
	dump_shim_fds_read(c, pid);
	size_t offered = 0;
	for (size_t i = 0; i < ls.nlook; i++) {
		/* An fd the shortcut follows keeps a copy instead of its fdinfo. */
		struct dump_fd_look *l = &ls.look[i];
		struct dump_fd_seen sn = { .fd = l->fd, .pos = l->pos, .flags = l->flags, .mnt_id = l->mnt_id, .ino = l->ino };
		int r = dump_fdshort_offer(c, pid, l->fd, &l->st, l->link, &sn,
					   l->info >= 0 || dump_fdcarry_get(c, pid, l->fd));
		if (r && l->info >= 0) {
			close(l->info);
			l->info = -1;
			kept--;
		}
		offered += r != 0;
	}
	/* Room for the texts read at the stop, touched now: no page faults
	 * then. */
	ls.kept = malloc((ls.nlook ? ls.nlook : 1) * sizeof(*ls.kept));
	ls.texts = malloc((ls.nlook ? ls.nlook : 1) * sizeof(*ls.texts));
	if (ls.texts)
		memset(ls.texts, 0, ls.nlook * sizeof(*ls.texts));
	for (size_t i = 0; ls.kept && i < ls.nlook; i++)
		ls.kept[i] = ls.look[i].info;
	/* and for the stop's records of the fds of every process looked at
	 * (nothing is recorded yet: no copy of records) */
	size_t want = s->nlater + ls.nlook + 16;
	for (size_t i = 0; i < s->nsets; i++)
		want += s->sets[i].nlook;
	struct later_fd *nl = s->caplater < want ? realloc(s->later, want * sizeof(*nl)) : NULL;
	if (nl) {
		memset(nl + s->caplater, 0, (want - s->caplater) * sizeof(*nl));
		s->later = nl;
		s->caplater = want;
	}
	if ((ls.fds = malloc((ls.nlook + 16) * sizeof(*ls.fds)))) {
		memset(ls.fds, 0, (ls.nlook + 16) * sizeof(*ls.fds));
		ls.capfds = ls.nlook + 16;
	}
	s->sets[s->nsets++] = ls;
	ls.look = NULL;
	dlog(c, "fds of %d looked at before the stop: %zu, fdinfo kept open for %zu, %zu followed by the shim's shortcut, "
		"in %.3f ms", pid, s->sets[s->nsets - 1].nlook, kept, offered, (double)(dump_now_ns() - t0) / 1e6);
out:
	free(ls.look); /* only when the look failed */
	free(fds);
	if (fddir >= 0)
		close(fddir);
	if (infodir >= 0)
		close(infodir);
}

/* The processes of the tree looked at: the root, and the descendants that
 * the session's last snapshot had too (the same process: its start time),
 * up to this many; the others are read at the stop. A process forked
 * since is left out: a busy shell's pipeline children come and go by the
 * millisecond and move their fds right after they start (a dup2 onto 0),
 * so the check after the resume could seldom prove what the shortcut took
 * of them, and each such failure takes the snapshot again from /proc. */
#define LOOK_MAX_PROCS 64

static bool lived_through(const struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->npre; i++) /* the tracking, taken over by this dump */
		if (c->pre[i].pid == pid)
			return c->pre[i].tracked;
	return false;
}

static void look_tree(struct dump_ctx *c, struct dump_fdscan *s, pid_t pid, bool root, size_t *n)
{
	if (*n >= LOOK_MAX_PROCS)
		return;
	if (root || lived_through(c, pid)) {
		look_one(c, s, pid);
		(*n)++;
	}
	pid_t *kids = NULL;
	size_t nk = 0;
	if (dump_list_children(pid, &kids, &nk)) {
		dlog(c, "the children of %d not listed before the stop (%s): their fds are read while stopped", pid,
		     strerror(errno));
		return;
	}
	for (size_t i = 0; i < nk; i++)
		look_tree(c, s, kids[i], false, n);
	free(kids);
}

void dump_fds_look(struct dump_ctx *c, pid_t root)
{
	struct dump_fdscan *s = scan(c);
	size_t n = 0;
	if (s)
		look_tree(c, s, root, true, &n);
	dump_fdshort_fault_pause(c);
}

bool dump_fds_looked(const struct dump_ctx *c, pid_t pid, int fd, bool *cloexec)
{
	const struct dump_fdscan *s = c->fdscan;
	const struct dump_fd_look *l = find_look(set_of(s, pid), fd);
	if (l)
		*cloexec = (l->flags & O_CLOEXEC) != 0;
	return l != NULL;
}
