/* Internal interface between the shim's files. Nothing here is exported from
 * libforkpoint-preload.so: the object is built with -fvisibility=hidden and
 * only the wrappers (FP_EXPORT) and the table are dynamic symbols. Hidden
 * internal symbols also mean the shim never calls itself through the PLT by
 * accident.
 *
 * Rules every function here follows: async-signal-safe, no heap, raw syscalls
 * for the shim's own work (shim_sys.h), errno preserved. */
#ifndef FP_SHIM_INTERNAL_H
#define FP_SHIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include <sys/types.h>

#include "shim_sys.h"
#include "shim_table.h"

#define FP_HIDDEN __attribute__((visibility("hidden")))
#define FP_EXPORT __attribute__((visibility("default")))
#define FP_TLS __thread __attribute__((tls_model("initial-exec")))
#define FP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define FP_PAGE 4096UL

extern struct fp_shim_table forkpoint_shim_table;
/* The same object under a hidden name (shim_init.c): the exported name is
 * reached through the GOT from -fPIC code, one more load on every access. */
FP_HIDDEN extern struct fp_shim_table fp_table;
#define FP_T (&fp_table)

/* ---- shim_init.c ---- */
enum { FP_INIT_NONE = 0, FP_INIT_RUNNING = 1, FP_INIT_DONE = 2 };
FP_HIDDEN extern int fp_init_state;
FP_HIDDEN int fp_init_slow(void);
FP_HIDDEN extern uint64_t fp_pipefs_dev;
/* Environment strings kept for exec: "FORKPOINT_SHIM=...", etc. */
FP_HIDDEN extern char fp_env_shim[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN extern char fp_env_session[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN extern char fp_env_preload[FP_SHIM_PATH_MAX + 32];
FP_HIDDEN extern int fp_have_session;

/* Called first by every wrapper: makes sure the table is initialised and
 * counts the call. Returns 1 when the wrapper should record what it does, 0
 * when it must only do the call (the table is being built by this very thread,
 * e.g. dlsym inside our constructor reached a wrapper). */
/* The call counter is kept per thread and added to the shared one every
 * FP_CALLS_BATCH calls: one shared atomic per call would be a cache line that
 * every thread of the program writes. */
#define FP_CALLS_BATCH 64
FP_HIDDEN extern FP_TLS uint32_t fp_calls_pending;
static inline int fp_enter(void)
{
	if (FP_UNLIKELY(__atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE) != FP_INIT_DONE))
		if (!fp_init_slow())
			return 0;
	if (FP_UNLIKELY(++fp_calls_pending >= FP_CALLS_BATCH)) {
		fp_calls_pending = 0;
		__atomic_fetch_add(&FP_T->calls, FP_CALLS_BATCH, __ATOMIC_RELAXED);
	}
	return 1;
}

/* Fix-ups in a new child process (fork, _Fork, vfork emulation). `forced`:
 * locks may have been held by threads that do not exist in the child, so the
 * lists are rebuilt from /proc instead of trusted. */
FP_HIDDEN void fp_child_fixup(int forced);

/* ---- shim_real.c: libc's own functions, found with dlsym(RTLD_NEXT) ---- */
enum fp_real_id {
	FP_R_open, FP_R_open64, FP_R_openat, FP_R_openat64, FP_R_creat, FP_R_creat64,
	FP_R___open_2, FP_R___open64_2, FP_R___openat_2, FP_R___openat64_2,
	FP_R_close, FP_R_fcntl, FP_R_fcntl64, FP_R_accept, FP_R_accept4, FP_R_recvmsg,
	FP_R_fopen, FP_R_fopen64, FP_R_fclose, FP_R_freopen, FP_R_freopen64,
	FP_R_tmpfile, FP_R_tmpfile64, FP_R_fdopen, FP_R_opendir, FP_R_closedir,
	FP_R_mkstemp, FP_R_mkstemp64, FP_R_mkostemp, FP_R_mkostemp64, FP_R_mkstemps,
	FP_R_mkostemps,
	FP_R_pthread_create, FP_R_pthread_join, FP_R_pthread_tryjoin_np,
	FP_R_pthread_timedjoin_np, FP_R_pthread_clockjoin_np,
	FP_R_fork, FP_R__Fork, FP_R_execvpe, FP_R_posix_spawn, FP_R_posix_spawnp,
	FP_R_dlopen, FP_R_dlmopen, FP_R_dlclose, FP_R_sbrk, FP_R_brk,
	FP_R_COUNT
};
FP_HIDDEN extern void *fp_real_fn[FP_R_COUNT];
FP_HIDDEN void *fp_real_slow(int id);
FP_HIDDEN void fp_real_resolve_all(void);

/* The real function or NULL if it cannot be resolved right now (a wrapper then
 * falls back to the raw system call where there is one). */
static inline void *fp_real(int id)
{
	void *p = __atomic_load_n(&fp_real_fn[id], __ATOMIC_ACQUIRE);
	return p ? p : fp_real_slow(id);
}
#define FP_REAL(name) ((__typeof__(&name))fp_real(FP_R_##name))

/* ---- shim_lock.c ---- */
/* A list lock (maps or threads): futex lock word, and the list's seq odd while
 * held; no system call when uncontended, no signals blocked (see
 * shim_lock.c). fp_list_lock returns 0 when the caller runs in a signal
 * handler on top of its own thread's change of the list: it must not touch
 * the list and calls fp_list_missed() instead; the interrupted writer then
 * resyncs (fp_list_take_missed). Held recursively across fork (atfork prepare
 * takes it, then fp_list_fork_hold: other prepare handlers may call
 * wrappers). */
struct fp_list_lock {
	uint32_t *word;
	uint32_t *seq;
	int which; /* index of this thread's state for this lock */
};
FP_HIDDEN void fp_list_fork_hold(const struct fp_list_lock *l);
FP_HIDDEN void fp_list_missed(const struct fp_list_lock *l);
/* In a fork child: nobody else can hold the lock any more. Returns 1 if it was
 * held (by a thread that is gone) or the list was mid-change. */
FP_HIDDEN int fp_list_reset(const struct fp_list_lock *l);
FP_HIDDEN extern const struct fp_list_lock fp_maps_lock, fp_threads_lock;
FP_HIDDEN void fp_futex_wait(uint32_t *w, uint32_t val, long timeout_ns);
FP_HIDDEN void fp_futex_wake(uint32_t *w, int n);
FP_HIDDEN void fp_gate_wait(uint32_t gate);
FP_HIDDEN void fp_word_lock_slow(uint32_t *w);
FP_HIDDEN extern FP_TLS int fp_depth[2], fp_changing[2], fp_missed[2], fp_word_held[2];

/* A compiler barrier: a signal handler runs in this thread, so ordering
 * against it needs no fence, only that the compiler keeps the order. */
#define FP_SIGNAL_FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* The index of each lock's thread-local state (fp_list_lock.which). */
enum { FP_LOCK_MAPS = 0, FP_LOCK_THREADS = 1 };

/* fp_list_lock with the lock's fields as arguments: with constants (the maps
 * wrappers) the fields and the thread-local slots need no loads. */
static inline __attribute__((always_inline)) int fp_list_lock_w(uint32_t *word, uint32_t *seq,
								  const int w)
{
	if (fp_depth[w] > 0) {
		if (fp_changing[w])
			return 0; /* a handler on top of this thread's own change */
		/* held across fork by this thread (atfork), not being changed */
		fp_depth[w]++;
		fp_changing[w] = 1;
		FP_SIGNAL_FENCE();
		return 1;
	}
	uint32_t gate = __atomic_load_n(&FP_T->read_gate, __ATOMIC_RELAXED);
	if (FP_UNLIKELY(gate))
		fp_gate_wait(gate);
	fp_depth[w] = 1;
	fp_changing[w] = 1;
	FP_SIGNAL_FENCE();
	/* The lock word only keeps this process's threads apart (the reader
	 * outside goes by seq). While glibc says the process has one thread
	 * there is nobody to keep apart, and the word's two locked
	 * instructions were a third of an anonymous mmap's bookkeeping. No
	 * thread can appear during the change: this thread is busy with it,
	 * and pthread_create is not async-signal-safe. (Threads made with a
	 * raw clone(CLONE_VM) are outside glibc's count; they share this
	 * thread's TLS too, which the shim never supported.) */
	fp_word_held[w] = !__libc_single_threaded;
	if (fp_word_held[w]) {
		uint32_t z = 0;
		if (FP_UNLIKELY(!__atomic_compare_exchange_n(word, &z, 1, 0, __ATOMIC_ACQUIRE,
							     __ATOMIC_RELAXED)))
			fp_word_lock_slow(word);
	}
	uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
	__atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
	/* The odd seq must be visible before any change to the list. The reader
	 * is another process copying memory, so what counts is the hardware
	 * order: x86 makes stores visible in program order, a release fence
	 * (no instruction) keeps the compiler from moving the list's stores
	 * above this one. An mfence here cost more than the rest of a change. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return 1;
}

static inline int fp_list_lock(const struct fp_list_lock *l)
{
	return fp_list_lock_w(l->word, l->seq, l->which);
}

static inline __attribute__((always_inline)) void fp_list_unlock_w(uint32_t *word, uint32_t *seq,
								     const int w)
{
	if (fp_depth[w] > 1) {
		fp_depth[w]--;
		FP_SIGNAL_FENCE();
		fp_changing[w] = 0; /* back to the atfork hold */
		return;
	}
	uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
	__atomic_store_n(seq, s + 1, __ATOMIC_RELEASE);
	if (fp_word_held[w] && FP_UNLIKELY(__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2))
		fp_futex_wake(word, 1);
	FP_SIGNAL_FENCE();
	fp_changing[w] = 0;
	fp_depth[w] = 0;
}

static inline void fp_list_unlock(const struct fp_list_lock *l)
{
	fp_list_unlock_w(l->word, l->seq, l->which);
}

/* Thread-local on purpose: only the interrupted thread takes the mark, and
 * its handler has finished (system call included) when it does. */
static inline int fp_list_take_missed(const struct fp_list_lock *l)
{
	if (FP_UNLIKELY(fp_missed[l->which]) && fp_depth[l->which] == 0) {
		fp_missed[l->which] = 0;
		FP_SIGNAL_FENCE();
		return 1;
	}
	return 0;
}

/* ---- shim_fds.c ---- */
/* Records a new fd, without a system call. path may be NULL/"" (anon). type
 * FP_FD_UNKNOWN: the wrapper does not know it (a file from open()); the reader
 * takes it from /proc. dev/ino are left 0 (unknown). */
FP_HIDDEN void fp_fd_record(int fd, const char *path, int open_flags, int fd_flags, int type,
			    int origin);
/* Clears the slot (no system call made here). */
FP_HIDDEN void fp_fd_forget(int fd);
FP_HIDDEN void fp_fd_forget_range(unsigned first, unsigned last);
FP_HIDDEN void fp_fd_cloexec_range(unsigned first, unsigned last);

/* A wrapper that changes what an existing fd number is (close, dup2/dup3 onto
 * it, F_SETFD, F_SETFL...) or copies it (dup) holds the number's slot across
 * its system call: another thread's change to the same number (two dup3 onto
 * one target, a close racing a dup3) then reaches the kernel and the slot in
 * the same order. Without it the slot kept whichever thread recorded last,
 * not the one the kernel applied last. A reader outside sees a held slot as
 * odd: unknown, taken from /proc. No other slot is taken while one is held,
 * except the second fd of a dup2/dup3 (taken in fd order), so holds never
 * wait on each other in a cycle. A signal handler that changes fds while
 * its thread holds a slot could close one (it would wait for a slot whose
 * holder waits for ours): it never waits for another thread's slot, and a
 * change it cannot record makes the table's fds unknown (shim_fds.c,
 * fd_unrecorded). */
struct fp_fd_hold {
	struct fp_shim_fd *s; /* NULL: not held (fd outside the table) */
	int nested;           /* a signal handler on top of this thread's own hold */
	int idx;
};
/* 1 if held; release always (it does nothing for a hold not taken). */
FP_HIDDEN int fp_fd_hold(int fd, struct fp_fd_hold *h);
/* dup2/dup3's second fd, after first (held, or not taken). */
FP_HIDDEN int fp_fd_hold_after(int fd, const struct fp_fd_hold *first, struct fp_fd_hold *h);
FP_HIDDEN void fp_fd_release(struct fp_fd_hold *h);
FP_HIDDEN void fp_fd_release_cb(void *h); /* for pthread_cleanup_push */
/* Called BEFORE closing: a signal handler that opens while the close runs may
 * get the number, and its record must be the one that stays. */
FP_HIDDEN void fp_fd_forget_held(struct fp_fd_hold *h);
/* stmt (a close-like call: close, fclose, closedir, freopen) with fd's slot
 * held and forgotten across it. These calls are cancellation points: a
 * thread cancelled inside still lets the slot go (the cleanup handler). */
#define FP_FD_CLOSING(fd, stmt)                                  \
	do {                                                     \
		struct fp_fd_hold closing_;                      \
		fp_fd_hold((fd), &closing_);                     \
		fp_fd_forget_held(&closing_);                    \
		pthread_cleanup_push(fp_fd_release_cb, &closing_); \
		stmt;                                            \
		pthread_cleanup_pop(1);                          \
	} while (0)
/* newfd (held) becomes a copy of oldfd's slot (held) with its own fd_flags. */
FP_HIDDEN void fp_fd_dup_held(const struct fp_fd_hold *old, struct fp_fd_hold *nw, int newfd,
			      int fd_flags);
/* dup/F_DUPFD: the new number is the kernel's choice, unknown while oldfd is
 * held, so oldfd's slot is copied out and released before newfd's is taken.
 * take_copy: 1 if oldfd's slot was known (out filled); releases h. */
FP_HIDDEN int fp_fd_take_copy(struct fp_fd_hold *h, struct fp_shim_fd *out);
/* copy NULL: oldfd unknown to the table, newfd is described from the kernel. */
FP_HIDDEN void fp_fd_dup_copied(const struct fp_shim_fd *copy, int newfd, int fd_flags);
FP_HIDDEN void fp_fd_set_fdflags_held(struct fp_fd_hold *h, int fd_flags);
FP_HIDDEN void fp_fd_set_status_held(struct fp_fd_hold *h, int status_flags);
FP_HIDDEN void fp_fd_set_fdflags(int fd, int fd_flags);
/* The slot's path ("" if unknown) and identity (0 if unknown). */
FP_HIDDEN void fp_fd_describe(int fd, char path[FP_SHIM_PATH_MAX], uint64_t *dev, uint64_t *ino,
			      int *truncated);
/* From /proc/self/fd: init seeds (INHERITED); reconcile = make the table agree
 * with /proc (fork child), adding what is missing as RESYNC. */
FP_HIDDEN void fp_fd_seed(int reconcile);
/* The shim's own short-lived fds (reading /proc): recorded as SHIM. */
FP_HIDDEN int fp_shim_open(const char *path, int flags);
FP_HIDDEN void fp_shim_close(int fd);
FP_HIDDEN void fp_copy_path(char *dst, const char *src, uint8_t *truncated);

/* ---- shim_maps.c ---- */
FP_HIDDEN void fp_maps_mapped(uint64_t addr, uint64_t len, int prot, int flags, int fd,
			      uint64_t off);
FP_HIDDEN void fp_maps_unmapped(uint64_t addr, uint64_t len);
FP_HIDDEN void fp_maps_protected(uint64_t addr, uint64_t len, int prot);
/* mremap: the pieces of the old range are kept on the caller's stack between
 * the removal (before the syscall) and the insertion (after). */
#define FP_MREMAP_PIECES 8
struct fp_mremap_save {
	int n;         /* pieces saved; -1 if there were more than fit */
	int removed;   /* the old range was taken out of the table */
	struct fp_shim_map piece[FP_MREMAP_PIECES];
};
FP_HIDDEN void fp_maps_mremap_begin(uint64_t old, uint64_t old_len, int flags,
				    struct fp_mremap_save *s);
FP_HIDDEN void fp_maps_mremap_end(uint64_t old, uint64_t old_len, uint64_t new_addr,
				  uint64_t new_len, int ok, struct fp_mremap_save *s);
/* Thread stacks (glibc maps them inside libc): after pthread_create with the
 * new thread's descriptor address, and after a successful join. */
FP_HIDDEN void fp_maps_thread_stack(uint64_t at);
FP_HIDDEN void fp_maps_check_stacks(void);
FP_HIDDEN void fp_maps_stacks_init(void);
/* Remembers which libraries are loaded (at init and after dlopen/dlclose). */
FP_HIDDEN void fp_maps_libs_seen(void);
/* Rebuilds maps[] from /proc/self/maps, keeping what the wrappers recorded
 * where it still matches. full: discard the old list entirely. origin: for
 * entries that come from /proc (INHERITED at init, RESYNC later). */
FP_HIDDEN void fp_maps_resync(int full, int origin);
FP_HIDDEN uint64_t fp_page_up(uint64_t x);
/* brk/sbrk moved the program break from old to new (both as the kernel
 * keeps them): logged as a mapping or an unmapping of the pages between. */
FP_HIDDEN void fp_maps_brk(uint64_t old, uint64_t new_brk);

/* ---- shim_maplog.c: the mapping change log (shim_table.h); callers hold
 * the maps lock ---- */
FP_HIDDEN void fp_maplog_add(uint32_t kind, uint64_t start, uint64_t end, int prot, int flags);

/* ---- shim_threads.c ---- */
FP_HIDDEN void fp_threads_seed(void);
FP_HIDDEN void fp_threads_only_self(void);
FP_HIDDEN void fp_threads_fork_child(void);

/* ---- shim_env.c ---- */
/* Exec environment fix-up: see shim_env.c. */
FP_HIDDEN size_t fp_env_fix_size(char *const envp[], size_t *str_len);
FP_HIDDEN char *const *fp_env_fix(char *const envp[], char **vec, char *str);

/* ---- small string helpers (no libc string functions that could be
 * interposed by other preloads; these are trivial) ---- */
static inline size_t fp_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static inline int fp_starts(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

/* "/proc/self/fd/FD" into p, without snprintf (async-signal-safe, no
 * locale): for system calls that take a path where the program gave an fd. */
void fp_fd_proc_path(int fd, char p[32]);

/* A getdents64 record (the shim reads /proc directories without libc). */
struct fp_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

#endif
