/* The session helper's hot snapshots: see session_hot.h. */
#include "session_hot.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "session/snapshots.h"

struct hot_snap {
	char name[FP_SNAP_NAME_MAX + 1];
	struct fp_dump_hot h;
	unsigned long long seq; /* 0: free */
};

static struct hot_snap hots[FP_HOT_MAX];
static unsigned long long hot_seq;

static void write_list(const char *session_dir)
{
	char path[PATH_MAX + 8], buf[FP_HOT_MAX * (FP_SNAP_NAME_MAX + 2 + FP_DUMP_HOT_MAX * 24)];
	size_t off = 0;
	for (size_t i = 0; i < FP_HOT_MAX; i++) {
		if (!hots[i].seq)
			continue;
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s", hots[i].name);
		for (size_t k = 0; k < hots[i].h.n; k++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, " %d:%d", (int)hots[i].h.c[k].pid,
						(int)hots[i].h.c[k].copy);
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\n");
	}
	snprintf(path, sizeof(path), "%s/hot", session_dir);
	if (off == 0) {
		unlink(path);
		return;
	}
	/* Not fsynced: the list names processes, which no crash of the
	 * machine leaves alive; what matters is that a helper's crash leaves
	 * the old list or the new one (an fsync here cost 0.5-5 ms of every
	 * `snap --hot`). */
	fp_error e;
	if (fp_write_file_replace(path, buf, off, &e) < 0)
		fprintf(stderr, "forkpoint: warning: cannot record the hot snapshots: %s\n", e.msg);
}

/* Copies killed and not yet waited for: a copy of a big process takes
 * tens of ms to exit (the kernel frees its page tables and pages), which
 * an eviction by `snap --hot` used to wait for before its reply (the snap
 * spent 43.9 ms beyond the dump at 1 GiB). They are waited for at the
 * next eviction or release, and all of them when the helper ends. */
#define DYING_MAX 64
static pid_t dying[DYING_MAX];
static size_t ndying;

/* The copy is ours (its tracer): once killed, our wait takes its exit and
 * its parent, the process, keeps a zombie that it never sees (exit signal
 * 0) until the next snapshot reaps it or the process ends. */
static bool waited(pid_t copy, bool block)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t w = waitpid(copy, NULL, __WALL | WNOHANG);
		if (w == copy || (w < 0 && errno == ECHILD))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!block || t.tv_sec - t0.tv_sec > 10)
			return false;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
}

static void reap_dying(bool block)
{
	size_t k = 0;
	for (size_t i = 0; i < ndying; i++)
		if (!waited(dying[i], block))
			dying[k++] = dying[i];
	ndying = k;
}

/* later: the exits are waited for by reap_dying (unless the list is full) */
static void kill_copies(struct hot_snap *s, bool later)
{
	/* A killed copy frees its page tables in its own exit, ~20 ms of CPU
	 * for 1 GiB: at nice 19 it takes what the helper and the session's
	 * processes leave (at nice 0, a `snap --hot` that evicted one spent
	 * ~11 ms beyond its dump on 2 CPUs). */
	for (size_t k = 0; k < s->h.n; k++) {
		if (later)
			setpriority(PRIO_PROCESS, (id_t)s->h.c[k].copy, 19);
		kill(s->h.c[k].copy, SIGKILL);
	}
	for (size_t k = 0; k < s->h.n; k++)
		if (!later || ndying == DYING_MAX)
			waited(s->h.c[k].copy, true);
		else
			dying[ndying++] = s->h.c[k].copy;
	memset(s, 0, sizeof(*s));
}

void fp_hot_keep(const char *session_dir, const char *snap, const struct fp_dump_hot *h, int limit)
{
	if (limit < 1)
		limit = 1;
	if (limit > FP_HOT_MAX)
		limit = FP_HOT_MAX;
	reap_dying(false);
	for (;;) {
		int n = 0;
		struct hot_snap *oldest = NULL;
		for (size_t i = 0; i < FP_HOT_MAX; i++)
			if (hots[i].seq) {
				n++;
				if (!oldest || hots[i].seq < oldest->seq)
					oldest = &hots[i];
			}
		if (n < limit)
			break;
		kill_copies(oldest, true);
	}
	for (size_t i = 0; i < FP_HOT_MAX; i++)
		if (!hots[i].seq) {
			snprintf(hots[i].name, sizeof(hots[i].name), "%s", snap);
			hots[i].h = *h;
			hots[i].seq = ++hot_seq;
			break;
		}
	write_list(session_dir);
}

static struct hot_snap *find(const char *snap)
{
	for (size_t i = 0; i < FP_HOT_MAX; i++)
		if (hots[i].seq && !strcmp(hots[i].name, snap))
			return &hots[i];
	return NULL;
}

const struct fp_dump_hot *fp_hot_find(const char *snap)
{
	struct hot_snap *s = find(snap);
	return s ? &s->h : NULL;
}

bool fp_hot_release(const char *session_dir, const char *snap)
{
	reap_dying(false);
	struct hot_snap *s = find(snap);
	if (!s)
		return false;
	kill_copies(s, false);
	write_list(session_dir);
	return true;
}

void fp_hot_release_all(const char *session_dir)
{
	bool any = false;
	for (size_t i = 0; i < FP_HOT_MAX; i++)
		if (hots[i].seq) {
			kill_copies(&hots[i], false);
			any = true;
		}
	reap_dying(true);
	if (any)
		write_list(session_dir);
}

bool fp_hot_listed(const char *session_dir, const char *snap)
{
	char path[PATH_MAX + 8], buf[8192];
	snprintf(path, sizeof(path), "%s/hot", session_dir);
	if (fp_read_file(path, buf, sizeof(buf), NULL) < 0)
		return false;
	size_t len = strlen(snap);
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, snap, len) && (line[len] == ' ' || line[len] == '\n' || !line[len]))
			return true;
	return false;
}
