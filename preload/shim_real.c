/* libc's own versions of the functions the shim wraps but does not replace by
 * a raw system call (stdio, dirent, pthread, spawn, dlopen, and the calls that
 * are cancellation points: open, close, accept, fcntl(F_SETLKW)...).
 *
 * All are resolved with dlsym(RTLD_NEXT) in our constructor. A wrapper can run
 * earlier, when another library's constructor calls it: then the symbol is
 * resolved on first use. dlsym itself does not call anything we wrap (its
 * allocations go to malloc, which we do not wrap), but a thread-local guard
 * makes a recursive resolution return NULL instead of looping; the caller
 * then uses its raw-syscall fallback or fails with ENOSYS. */
#include <dlfcn.h>

#include "shim_internal.h"

FP_HIDDEN void *fp_real_fn[FP_R_COUNT];

static const char *const fp_real_names[FP_R_COUNT] = {
	[FP_R_open] = "open",
	[FP_R_open64] = "open64",
	[FP_R_openat] = "openat",
	[FP_R_openat64] = "openat64",
	[FP_R_creat] = "creat",
	[FP_R_creat64] = "creat64",
	[FP_R___open_2] = "__open_2",
	[FP_R___open64_2] = "__open64_2",
	[FP_R___openat_2] = "__openat_2",
	[FP_R___openat64_2] = "__openat64_2",
	[FP_R_close] = "close",
	[FP_R_fcntl] = "fcntl",
	[FP_R_fcntl64] = "fcntl64",
	[FP_R_accept] = "accept",
	[FP_R_accept4] = "accept4",
	[FP_R_recvmsg] = "recvmsg",
	[FP_R_fopen] = "fopen",
	[FP_R_fopen64] = "fopen64",
	[FP_R_fclose] = "fclose",
	[FP_R_freopen] = "freopen",
	[FP_R_freopen64] = "freopen64",
	[FP_R_tmpfile] = "tmpfile",
	[FP_R_tmpfile64] = "tmpfile64",
	[FP_R_fdopen] = "fdopen",
	[FP_R_opendir] = "opendir",
	[FP_R_closedir] = "closedir",
	[FP_R_mkstemp] = "mkstemp",
	[FP_R_mkstemp64] = "mkstemp64",
	[FP_R_mkostemp] = "mkostemp",
	[FP_R_mkostemp64] = "mkostemp64",
	[FP_R_mkstemps] = "mkstemps",
	[FP_R_mkostemps] = "mkostemps",
	[FP_R_pthread_create] = "pthread_create",
	[FP_R_pthread_join] = "pthread_join",
	[FP_R_pthread_tryjoin_np] = "pthread_tryjoin_np",
	[FP_R_pthread_timedjoin_np] = "pthread_timedjoin_np",
	[FP_R_pthread_clockjoin_np] = "pthread_clockjoin_np",
	[FP_R_fork] = "fork",
	[FP_R__Fork] = "_Fork",
	[FP_R_execvpe] = "execvpe",
	[FP_R_posix_spawn] = "posix_spawn",
	[FP_R_posix_spawnp] = "posix_spawnp",
	[FP_R_dlopen] = "dlopen",
	[FP_R_sbrk] = "sbrk",
	[FP_R_brk] = "brk",
	[FP_R_dlmopen] = "dlmopen",
	[FP_R_dlclose] = "dlclose",
};

static FP_TLS int fp_resolving;

FP_HIDDEN void *fp_real_slow(int id)
{
	if (fp_resolving)
		return NULL;
	fp_resolving = 1;
	int saved = errno;
	void *p = dlsym(RTLD_NEXT, fp_real_names[id]);
	errno = saved;
	fp_resolving = 0;
	if (p)
		__atomic_store_n(&fp_real_fn[id], p, __ATOMIC_RELEASE);
	return p;
}

FP_HIDDEN void fp_real_resolve_all(void)
{
	for (int i = 0; i < FP_R_COUNT; i++)
		if (!__atomic_load_n(&fp_real_fn[i], __ATOMIC_ACQUIRE))
			fp_real_slow(i);
}
