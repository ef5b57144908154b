/* The table object, initialisation, and what happens in a forked child.
 *
 * Initialisation runs in our constructor, or earlier on the first wrapped call
 * if another library's constructor makes one (fp_enter -> fp_init_slow). It
 * fills the header, seeds fds from /proc/self/fd (INHERITED), threads from
 * /proc/self/task and mappings from /proc/self/maps, marks the shim's own
 * object (text, data, and the .bss holding this table) as SHIM, and only then
 * publishes the magic: a reader that sees the magic sees a complete table.
 *
 * Fork: pthread_atfork handlers take both list locks before fork (so the child
 * gets lists that are not half-changed) and release them on both sides; the
 * child then sets its pid, keeps only its own thread, reconciles fds with
 * /proc (a slot another thread was writing during the fork) and resyncs the
 * mappings. _Fork and our vfork skip the handlers: their child fix-up assumes
 * nothing about the locks ("forced"). */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim_internal.h"

FP_EXPORT struct fp_shim_table forkpoint_shim_table;
extern struct fp_shim_table fp_table
	__attribute__((alias("forkpoint_shim_table"), visibility("hidden")));

FP_HIDDEN int fp_init_state;
static int fp_init_owner;
FP_HIDDEN uint64_t fp_pipefs_dev;
FP_HIDDEN char fp_env_shim[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN char fp_env_session[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN char fp_env_preload[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN int fp_have_session;
FP_HIDDEN FP_TLS uint32_t fp_calls_pending;

/* Linker-defined bounds of this object (hidden: our own, not the program's). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern char _end[] __attribute__((visibility("hidden")));

static void str_cat(char *dst, size_t cap, const char *a, const char *b)
{
	size_t n = 0;
	for (; *a && n + 1 < cap; a++)
		dst[n++] = *a;
	for (; *b && n + 1 < cap; b++)
		dst[n++] = *b;
	dst[n] = '\0';
}

static const char *env_get(const char *name_eq)
{
	if (!environ)
		return NULL;
	for (char **e = environ; *e; e++)
		if (fp_starts(*e, name_eq))
			return *e + fp_strlen(name_eq);
	return NULL;
}

static void learn_pipefs_dev(void)
{
	int p[2];
	struct stat st;
	if (fp_sys_failed(fp_sys2(SYS_pipe2, p, O_CLOEXEC)))
		return;
	if (!fp_sys_failed(fp_sys2(SYS_fstat, p[0], &st)))
		fp_pipefs_dev = st.st_dev;
	fp_sys1(SYS_close, p[0]);
	fp_sys1(SYS_close, p[1]);
}

/* The path exec'd children must preload: what the launcher told us, else the
 * file we were loaded from (an absolute path from /proc/self/maps). */
static void learn_shim_path(void)
{
	const char *p = env_get(FP_ENV_SHIM "=");
	if (p && *p) {
		fp_copy_path(FP_T->shim_path, p, NULL);
	} else {
		for (uint32_t i = 0; i < FP_T->map_count; i++) {
			const struct fp_shim_map *m = &FP_T->maps[i];
			if (m->origin == FP_ORIGIN_SHIM && m->path[0] == '/') {
				fp_copy_path(FP_T->shim_path, m->path, NULL);
				break;
			}
		}
	}
	if (FP_T->shim_path[0]) {
		str_cat(fp_env_shim, sizeof(fp_env_shim), FP_ENV_SHIM "=", FP_T->shim_path);
		str_cat(fp_env_preload, sizeof(fp_env_preload), "LD_PRELOAD=", FP_T->shim_path);
	}
	const char *s = env_get(FP_ENV_SESSION "=");
	if (s) {
		str_cat(fp_env_session, sizeof(fp_env_session), FP_ENV_SESSION "=", s);
		fp_have_session = 1;
	}
}

/* ---- fork ---- */

static int fp_fork_locked; /* 1: both held; 2: fork from a handler on top of a change */

static void fp_atfork_prepare(void)
{
	if (__atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE) != FP_INIT_DONE)
		return;
	if (!fp_list_lock(&fp_maps_lock)) {
		fp_fork_locked = 2;
		return;
	}
	if (!fp_list_lock(&fp_threads_lock)) {
		fp_list_unlock(&fp_maps_lock);
		fp_fork_locked = 2;
		return;
	}
	fp_list_fork_hold(&fp_maps_lock);
	fp_list_fork_hold(&fp_threads_lock);
	fp_fork_locked = 1;
}

static void fp_atfork_parent(void)
{
	int held = fp_fork_locked;
	fp_fork_locked = 0;
	if (held != 1)
		return;
	fp_list_unlock(&fp_threads_lock);
	fp_list_unlock(&fp_maps_lock);
}

static void fp_atfork_child(void)
{
	int held = fp_fork_locked;
	fp_fork_locked = 0;
	if (held == 1) {
		fp_list_unlock(&fp_threads_lock);
		fp_list_unlock(&fp_maps_lock);
	}
	if (held)
		fp_child_fixup(held == 2);
}

FP_HIDDEN void fp_child_fixup(int forced)
{
	if (__atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE) != FP_INIT_DONE)
		return;
	int saved = errno;
	FP_T->pid = fp_getpid();
	FP_T->read_gate = 0;
	int maps_busy = 0;
	if (forced) {
		maps_busy = fp_list_reset(&fp_maps_lock);
		fp_list_reset(&fp_threads_lock);
	}
	fp_threads_only_self();
	fp_threads_fork_child();
	fp_fd_seed(1);
	fp_maps_resync(maps_busy, FP_ORIGIN_RESYNC);
	errno = saved;
}

/* ---- initialisation ---- */

static void fp_do_init(void)
{
	int saved = errno;
	struct fp_shim_table *t = FP_T;
	t->version = FP_SHIM_VERSION;
	t->header_size = sizeof(*t);
	t->max_fds = FP_SHIM_MAX_FDS;
	t->max_maps = FP_SHIM_MAX_MAPS;
	t->max_threads = FP_SHIM_MAX_THREADS;
	t->path_max = FP_SHIM_PATH_MAX;
	t->maplog_size = FP_SHIM_MAPLOG;
	t->pid = fp_getpid();
	t->shim_start = (uint64_t)(uintptr_t)__ehdr_start & ~(FP_PAGE - 1);
	t->shim_end = fp_page_up((uint64_t)(uintptr_t)_end);
	learn_pipefs_dev();
	fp_real_resolve_all();
	fp_fd_seed(0);
	fp_threads_seed();
	fp_maps_libs_seen();
	fp_maps_stacks_init();
	fp_maps_resync(1, FP_ORIGIN_INHERITED);
	learn_shim_path();
	pthread_atfork(fp_atfork_prepare, fp_atfork_parent, fp_atfork_child);
	t->init_done = 1;
	__atomic_store_n(&t->magic, FP_SHIM_MAGIC, __ATOMIC_RELEASE);
	errno = saved;
}

FP_HIDDEN int fp_init_slow(void)
{
	int st = __atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE);
	if (st == FP_INIT_DONE)
		return 1;
	int me = fp_gettid();
	if (st == FP_INIT_NONE) {
		int exp = FP_INIT_NONE;
		if (__atomic_compare_exchange_n(&fp_init_state, &exp, FP_INIT_RUNNING, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&fp_init_owner, me, __ATOMIC_RELEASE);
			fp_do_init();
			__atomic_store_n(&fp_init_state, FP_INIT_DONE, __ATOMIC_RELEASE);
			return 1;
		}
	}
	if (__atomic_load_n(&fp_init_owner, __ATOMIC_ACQUIRE) == me)
		return 0; /* a call made by our own initialisation */
	/* another thread is initialising: wait for it (bounded; it takes ~1 ms) */
	for (int i = 0; i < 20000; i++) {
		if (__atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE) == FP_INIT_DONE)
			return 1;
		struct timespec ts = {0, 100000};
		fp_sys2(SYS_nanosleep, &ts, 0);
	}
	return 0;
}

__attribute__((constructor)) static void fp_constructor(void)
{
	fp_enter();
}
