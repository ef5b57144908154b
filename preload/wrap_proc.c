/* fork, vfork and the exec family.
 *
 * fork goes through libc (its atfork handlers, ours included, fix the child's
 * table: see shim_init.c). _Fork has no handlers, so the wrapper fixes the
 * child itself.
 *
 * vfork is emulated with clone(CLONE_VFORK | SIGCHLD), without CLONE_VM: the
 * parent is still suspended until the child execs or exits, but the child runs
 * on a copy-on-write copy of memory, as after fork. A real vfork child shares
 * the parent's memory, so any table write it made (it may call wrapped
 * functions before exec) would corrupt the parent's table, and returning from
 * a wrapper function in a vfork child would clobber the parent's stack frame.
 * The visible differences: writes the child makes to memory are not seen by
 * the parent (POSIX leaves that undefined; programs relying on it are rare),
 * and the child costs a page-table copy like fork.
 *
 * The exec family passes an environment that keeps the shim (shim_env.c).
 * Not covered: system() and popen() spawn inside libc with `environ`, so a
 * program that cleared its environment runs those children without the shim;
 * raw clone() children without CLONE_VM keep the parent's table until they
 * exec (its pid field tells a reader it is stale). */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim_internal.h"

pid_t _Fork(void);

FP_EXPORT pid_t fork(void)
{
	fp_enter();
	__typeof__(&fork) real = FP_REAL(fork);
	if (real)
		return real();
	long r = fp_sys0(SYS_fork);
	if (r == 0)
		fp_child_fixup(1);
	return (pid_t)fp_sys_ret(r);
}

FP_EXPORT pid_t _Fork(void)
{
	fp_enter();
	__typeof__(&_Fork) real = FP_REAL(_Fork);
	pid_t r = real ? real() : (pid_t)fp_sys_ret(fp_sys0(SYS_fork));
	if (r == 0)
		fp_child_fixup(1);
	return r;
}

FP_EXPORT pid_t vfork(void)
{
	fp_enter();
	long r = fp_sys5(SYS_clone, CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		fp_child_fixup(1);
	return (pid_t)fp_sys_ret(r);
}

/* ---- environment for exec ---- */

/* Declares `out` in the caller's frame: envp, or a fixed copy of it on the
 * stack (or, for a huge environment, in a private anonymous mapping that
 * FP_ENV_DONE releases if exec returns). */
#define FP_ENV_BEGIN(envp_in, out)                                                          \
	size_t fp_sl_ = 0, fp_n_ = fp_env_fix_size((envp_in), &fp_sl_);                    \
	int fp_big_ = fp_n_ > 4096 || fp_sl_ > 65536;                                       \
	char *fp_vec_[fp_n_ && !fp_big_ ? fp_n_ : 1];                                       \
	char fp_str_[!fp_big_ ? fp_sl_ + 1 : 1];                                            \
	void *fp_map_ = NULL;                                                               \
	size_t fp_maplen_ = 0;                                                              \
	char *const *out = (envp_in);                                                       \
	if (fp_n_) {                                                                        \
		char **v_ = fp_vec_;                                                        \
		char *s_ = fp_str_;                                                         \
		if (fp_big_) {                                                              \
			fp_maplen_ = fp_page_up(fp_n_ * sizeof(char *) + fp_sl_ + 1);       \
			long m_ = fp_sys6(SYS_mmap, 0, (long)fp_maplen_, PROT_READ | PROT_WRITE, \
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);              \
			v_ = NULL;                                                          \
			if (!fp_sys_failed(m_)) {                                           \
				fp_map_ = (void *)m_;                                       \
				v_ = fp_map_;                                               \
				s_ = (char *)fp_map_ + fp_n_ * sizeof(char *);              \
			}                                                                   \
		}                                                                           \
		if (v_)                                                                     \
			out = fp_env_fix((envp_in), v_, s_);                                \
	}

#define FP_ENV_DONE()                                                   \
	do {                                                            \
		if (fp_map_) {                                          \
			int e_ = errno;                                 \
			fp_sys2(SYS_munmap, fp_map_, fp_maplen_);       \
			errno = e_;                                     \
		}                                                       \
	} while (0)

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	fp_enter();
	FP_ENV_BEGIN(envp, env);
	long r = fp_sys3(SYS_execve, path, argv, env);
	errno = (int)-r;
	FP_ENV_DONE();
	return -1;
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	fp_enter();
	__typeof__(&execvpe) real = FP_REAL(execvpe);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	FP_ENV_BEGIN(envp, env);
	int r = real(file, argv, env);
	FP_ENV_DONE();
	return r;
}

FP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp);
}

FP_EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ);
}

FP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execvpe(file, argv, envp);
}

FP_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execvpe(file, argv, environ);
}

FP_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
		       int flags)
{
	fp_enter();
	FP_ENV_BEGIN(envp, env);
	long r = fp_sys5(SYS_execveat, dirfd, path, argv, env, flags);
	errno = (int)-r;
	FP_ENV_DONE();
	return -1;
}

FP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	fp_enter();
	FP_ENV_BEGIN(envp, env);
	long r = fp_sys5(SYS_execveat, fd, "", argv, env, AT_EMPTY_PATH);
	if (r == -ENOSYS) {
		char p[32];
		fp_fd_proc_path(fd, p);
		r = fp_sys3(SYS_execve, p, argv, env);
	}
	errno = (int)-r;
	FP_ENV_DONE();
	return -1;
}

/* execl-style: the argument list is copied into a stack array; execle's
 * envp follows the terminating NULL. */
#define COLLECT_ARGS(arg0, last_named, argv_out, envp_out, want_envp)           \
	size_t argc_ = 1;                                                       \
	va_list ap_;                                                            \
	va_start(ap_, last_named);                                              \
	while (va_arg(ap_, char *))                                             \
		argc_++;                                                        \
	va_end(ap_);                                                            \
	char *argv_out[argc_ + 1];                                              \
	argv_out[0] = (char *)(arg0);                                           \
	va_start(ap_, last_named);                                              \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                  \
		argv_out[i_] = va_arg(ap_, char *);                             \
	envp_out = (want_envp) ? va_arg(ap_, char *const *) : environ;          \
	va_end(ap_);

FP_EXPORT int execl(const char *path, const char *arg, ...)
{
	char *const *envp;
	COLLECT_ARGS(arg, arg, argv, envp, 0)
	return do_execve(path, argv, envp);
}

FP_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *const *envp;
	COLLECT_ARGS(arg, arg, argv, envp, 0)
	return do_execvpe(file, argv, envp);
}

FP_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;
	COLLECT_ARGS(arg, arg, argv, envp, 1)
	return do_execve(path, argv, envp);
}

#define SPAWN_WRAPPER(name)                                                                 \
	FP_EXPORT int name(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, \
			   const posix_spawnattr_t *attr, char *const argv[],               \
			   char *const envp[])                                              \
	{                                                                                   \
		fp_enter();                                                                 \
		__typeof__(&name) real = FP_REAL(name);                                     \
		if (!real)                                                                  \
			return ENOSYS;                                                      \
		FP_ENV_BEGIN(envp, env);                                                    \
		int r = real(pid, path, fa, attr, argv, env);                               \
		FP_ENV_DONE();                                                              \
		return r;                                                                   \
	}
SPAWN_WRAPPER(posix_spawn)
SPAWN_WRAPPER(posix_spawnp)
