/* Rollback in place: SNAP's pages copied from mappings of the page stores
 * (rollback_int.h).
 *
 * Each page to write back was one read from its store (io_uring,
 * rollback_uring.c): ~1-2.5 us a page on this VM, the kernel's cost per
 * read, 2.5-3 ms for the 2,630 pages of 1 GiB at 1% written, the larger
 * part of the read-ahead. A store mapped (read-only, shared: the page
 * cache itself) and its page tables filled once, in the background, a
 * page costs a memcpy: the same pages in 1.3-2 ms on one CPU (measured
 * beside pread's 2.2-6.7 ms). The pages are proven against their hashes as
 * after a read.
 *
 * Stores are immutable once their snapshot is complete. A store truncated
 * behind the helper's back would raise SIGBUS in the copy: the copy then
 * fails over to reading (and the read reports the short file); no other
 * SIGBUS is taken. At most RB_MAP_MAX bytes of stores are mapped (their page
 * tables: 2 MiB per GiB); a store whose file is gone (its snapshot removed)
 * is unmapped at the next rb_map_trim, so that its disk space comes back.
 * The stores of a new snapshot's chain are mapped right after the reply to
 * `snap` (rb_map_chain, from fp_rollback_preload), so that the filling runs
 * before the first rollback that needs them, not during it.
 * FP_ROLLBACK_MAP=0 reads every page as before (A/B). */
#include "session/rollback_int.h"
#include "config.h"
#include "fp_fdlimit.h"
#include "images/pagestore_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define RB_MAP_MAX (4ull << 30)
#define RB_MAPS 256

/* Each mapping keeps a descriptor: at most an eighth of the soft file
 * limit of them (256 with this machine's 20,000, 128 with 1,024). */
static size_t map_slots(void)
{
	static _Atomic size_t n;
	if (!n)
		n = fp_fdlimit_share(8, 16, RB_MAPS);
	return n;
}

struct store_map {
	dev_t dev;
	ino_t ino;
	off_t size;
	int fd; /* kept: its link count says when the file is gone */
	const uint8_t *base;
};

static struct {
	struct store_map m[RB_MAPS];
	size_t n;
	uint64_t bytes;
	bool handler;
} maps;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool map_off(void)
{
	return fp_env_off("FP_ROLLBACK_MAP");
}

/* ---- SIGBUS in a copy --------------------------------------------------- */

static _Thread_local sigjmp_buf *in_copy;
static struct sigaction before;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	if (in_copy)
		siglongjmp(*in_copy, 1);
	/* not a copy's: what the helper did before */
	if (before.sa_flags & SA_SIGINFO && before.sa_sigaction)
		before.sa_sigaction(sig, si, uc);
	else if (before.sa_handler != SIG_IGN && before.sa_handler != SIG_DFL && before.sa_handler)
		before.sa_handler(sig);
	else {
		signal(SIGBUS, SIG_DFL);
		raise(SIGBUS);
	}
}

int rb_map_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
	sigjmp_buf jb;
	if (sigsetjmp(jb, 0)) { /* SA_NODEFER: no mask to restore */
		in_copy = NULL;
		return -1;
	}
	in_copy = &jb;
	memcpy(dst, src, len);
	in_copy = NULL;
	return 0;
}

/* ---- the mappings ------------------------------------------------------- */

const uint8_t *rb_map_get(int fd, uint64_t *len)
{
	struct stat st;
	if (fd < 0 || map_off() || fstat(fd, &st) || st.st_size <= 0)
		return NULL;
	pthread_mutex_lock(&lock);
	const uint8_t *base = NULL;
	for (size_t i = 0; i < maps.n && !base; i++)
		if (maps.m[i].dev == st.st_dev && maps.m[i].ino == st.st_ino) {
			/* its size changed: not the store it was, read instead */
			base = maps.m[i].size == st.st_size ? maps.m[i].base : NULL;
			*len = (uint64_t)maps.m[i].size;
			pthread_mutex_unlock(&lock);
			return base;
		}
	if (maps.n >= map_slots() || maps.bytes + (uint64_t)st.st_size > RB_MAP_MAX)
		goto out;
	if (!maps.handler) {
		struct sigaction sa = { 0 };
		sa.sa_sigaction = on_bus;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &before))
			goto out;
		maps.handler = true;
	}
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	void *p = own < 0 ? MAP_FAILED : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, own, 0);
	if (p == MAP_FAILED) {
		if (own >= 0)
			close(own);
		goto out;
	}
	struct store_map *m = &maps.m[maps.n++];
	*m = (struct store_map){ st.st_dev, st.st_ino, st.st_size, own, p };
	maps.bytes += (uint64_t)st.st_size;
	rb_populate_later(p, (size_t)st.st_size, MADV_POPULATE_READ);
	base = p;
	*len = (uint64_t)st.st_size;
out:
	pthread_mutex_unlock(&lock);
	return base;
}

static int map_store(void *arg, pgs_reader *store, fp_error *err)
{
	(void)arg, (void)err;
	uint64_t len;
	rb_map_get(pgs_plain_fd(store), &len);
	return 0;
}

void rb_map_chain(pgs_reader *rd, size_t levels)
{
	fp_error err;
	if (rd && !map_off())
		pgs_stores(rd, levels, map_store, NULL, &err);
}

void rb_map_trim(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = maps.n; i-- > 0;) {
		struct store_map *m = &maps.m[i];
		struct stat st;
		if (!fstat(m->fd, &st) && st.st_nlink > 0)
			continue;
		munmap((void *)m->base, (size_t)m->size);
		close(m->fd);
		maps.bytes -= (uint64_t)m->size;
		*m = maps.m[--maps.n];
	}
	pthread_mutex_unlock(&lock);
}
