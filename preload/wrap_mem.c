/* Wrappers of the calls that change the address space: mmap family, SysV shm,
 * dlopen/dlclose. See shim_maps.c for how the list follows the kernel. */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "shim_internal.h"

/* user address space limit for 5-level paging; beyond it munmap fails EINVAL */
#define FP_TASK_MAX 0x00fffffffffff000ULL

static int range_ok(const void *addr, size_t len)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;
	return len && !(a & (FP_PAGE - 1)) && a + fp_page_up(len) > a &&
	       a + fp_page_up(len) <= FP_TASK_MAX;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int track = fp_enter();
	long r = fp_sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
	if (fp_sys_failed(r)) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	if (track)
		fp_maps_mapped((uint64_t)r, len, prot, flags, fd, (uint64_t)off);
	return (void *)r;
}

FP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

FP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

FP_EXPORT int munmap(void *addr, size_t len)
{
	int track = fp_enter();
	int removed = track && range_ok(addr, len);
	if (removed)
		fp_maps_unmapped((uint64_t)(uintptr_t)addr, len);
	long r = fp_sys2(SYS_munmap, addr, len);
	/* failed after we removed it (map count limit), or succeeded although we
	 * thought it would not: ask the kernel */
	if (track && (fp_sys_failed(r) ? removed : !removed))
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
	return (int)fp_sys_ret(r);
}

static int protect_done(void *addr, size_t len, int prot, long r, int track)
{
	if (track) {
		if (!fp_sys_failed(r) && !(prot & (PROT_GROWSDOWN | PROT_GROWSUP)))
			fp_maps_protected((uint64_t)(uintptr_t)addr, len, prot);
		else if (r != -EINVAL) /* partly applied, or grown to the VMA's edge */
			fp_maps_resync(0, FP_ORIGIN_RESYNC);
	}
	return (int)fp_sys_ret(r);
}

FP_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	int track = fp_enter();
	long r = fp_sys3(SYS_mprotect, addr, len, prot);
	return protect_done(addr, len, prot, r, track);
}

FP_EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	int track = fp_enter();
	long r = fp_sys4(SYS_pkey_mprotect, addr, len, prot, pkey);
	return protect_done(addr, len, prot, r, track);
}

FP_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *want = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	int track = fp_enter() && range_ok(old, old_len ? old_len : 1);
	struct fp_mremap_save save;
	if (track)
		fp_maps_mremap_begin((uint64_t)(uintptr_t)old, old_len, flags, &save);
	long r = fp_sys5(SYS_mremap, old, old_len, new_len, flags, want);
	if (track)
		fp_maps_mremap_end((uint64_t)(uintptr_t)old, old_len, (uint64_t)r, new_len,
				   !fp_sys_failed(r), &save);
	if (fp_sys_failed(r)) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	return (void *)r;
}

/* brk and sbrk through libc (it keeps the current break): a program's own
 * calls are logged; malloc's calls inside libc are not seen at all (the
 * helper checks against /proc). */
FP_EXPORT void *sbrk(intptr_t inc)
{
	int track = fp_enter();
	__typeof__(&sbrk) real = FP_REAL(sbrk);
	if (!real) {
		errno = ENOSYS;
		return (void *)-1;
	}
	void *old = real(inc);
	if (track && old != (void *)-1 && inc) {
		int saved = errno;
		fp_maps_brk((uint64_t)(uintptr_t)old, (uint64_t)(uintptr_t)old + (uint64_t)inc);
		errno = saved;
	}
	return old;
}

FP_EXPORT int brk(void *addr)
{
	int track = fp_enter();
	__typeof__(&sbrk) rs = FP_REAL(sbrk);
	__typeof__(&brk) real = FP_REAL(brk);
	if (!real || !rs) {
		errno = ENOSYS;
		return -1;
	}
	void *old = rs(0);
	int r = real(addr);
	if (track && r == 0 && old != (void *)-1) {
		int saved = errno;
		fp_maps_brk((uint64_t)(uintptr_t)old, (uint64_t)(uintptr_t)addr);
		errno = saved;
	}
	return r;
}

/* SysV shm: the segment size is not in the call, so ask /proc afterwards */
FP_EXPORT void *shmat(int id, const void *addr, int flags)
{
	int track = fp_enter();
	long r = fp_sys3(SYS_shmat, id, addr, flags);
	if (track && !fp_sys_failed(r))
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
	if (fp_sys_failed(r)) {
		errno = (int)-r;
		return (void *)-1;
	}
	return (void *)r;
}

FP_EXPORT int shmdt(const void *addr)
{
	int track = fp_enter();
	long r = fp_sys1(SYS_shmdt, addr);
	if (track && !fp_sys_failed(r))
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
	return (int)fp_sys_ret(r);
}

/* ---- dlopen ----
 *
 * glibc's dlopen looks at its return address to find the calling object: its
 * DT_RPATH/DT_RUNPATH, $ORIGIN and link namespace decide where the library is
 * searched. Called from our wrapper, libc would see the shim as the caller.
 * So the wrapper redoes the caller-specific part: expands $ORIGIN with the
 * caller's directory, searches the caller's RPATH, LD_LIBRARY_PATH and
 * RUNPATH in ld.so's order (an already loaded library of that name wins, as in
 * ld.so), opens in the caller's namespace, and leaves the rest (cache, system
 * directories, the program's own RPATH) to libc. */

extern const char __ehdr_start[] __attribute__((visibility("hidden")));

struct fp_dl_caller {
	struct link_map *lm;
	Lmid_t lmid;
	char origin[PATH_MAX];
	int have_origin;
};

static void *dl_open(const struct fp_dl_caller *c, const char *file, int mode)
{
	if (c->lmid != LM_ID_BASE) {
		__typeof__(&dlmopen) rm = FP_REAL(dlmopen);
		return rm ? rm(c->lmid, file, mode) : NULL;
	}
	__typeof__(&dlopen) r = FP_REAL(dlopen);
	return r ? r(file, mode) : NULL;
}

/* Replaces $ORIGIN / ${ORIGIN} in s; 0 if another $token is present (those
 * are left to ld.so by not using this entry). */
static int expand_origin(const struct fp_dl_caller *c, const char *s, size_t n, char *out,
			 size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '$') {
			size_t tl = 0;
			if (n - i >= 7 && memcmp(s + i, "$ORIGIN", 7) == 0)
				tl = 7;
			else if (n - i >= 9 && memcmp(s + i, "${ORIGIN}", 9) == 0)
				tl = 9;
			if (!tl || !c->have_origin)
				return 0;
			size_t ol = strlen(c->origin);
			if (k + ol >= cap)
				return 0;
			memcpy(out + k, c->origin, ol);
			k += ol;
			i += tl;
			continue;
		}
		if (k + 1 >= cap)
			return 0;
		out[k++] = s[i++];
	}
	out[k] = '\0';
	return 1;
}

static void *try_dirs(const struct fp_dl_caller *c, const char *list, const char *file, int mode)
{
	if (!list)
		return NULL;
	size_t flen = strlen(file);
	while (*list) {
		const char *e = strchr(list, ':');
		size_t n = e ? (size_t)(e - list) : strlen(list);
		char dir[PATH_MAX], path[PATH_MAX];
		if (n && expand_origin(c, list, n, dir, sizeof(dir))) {
			size_t dl = strlen(dir);
			if (dl + 1 + flen < sizeof(path)) {
				memcpy(path, dir, dl);
				path[dl] = '/';
				memcpy(path + dl + 1, file, flen + 1);
				if (!fp_sys_failed(fp_sys4(SYS_faccessat, AT_FDCWD, path, F_OK, 0))) {
					void *h = dl_open(c, path, mode);
					if (h)
						return h;
				}
			}
		}
		list = e ? e + 1 : list + n;
	}
	return NULL;
}

/* The caller's directory, for $ORIGIN. Not dlinfo(RTLD_DI_ORIGIN): glibc
 * computes l_origin lazily and that call crashes while it is unset. */
static void caller_origin(struct fp_dl_caller *c)
{
	const char *name = c->lm->l_name;
	size_t n = 0;
	if (name && name[0] == '/') {
		n = strlen(name);
		if (n >= sizeof(c->origin))
			return;
		memcpy(c->origin, name, n + 1);
	} else if (!name || !name[0]) {
		/* the main program */
		long r = fp_sys4(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", c->origin,
				 sizeof(c->origin) - 1);
		if (fp_sys_failed(r))
			return;
		n = (size_t)r;
		c->origin[n] = '\0';
	} else {
		return; /* a relative name: leave $ORIGIN to ld.so */
	}
	while (n > 1 && c->origin[n - 1] != '/')
		n--;
	c->origin[n > 1 ? n - 1 : 1] = '\0';
	c->have_origin = 1;
}

static void dyn_paths(struct link_map *lm, const char **rpath, const char **runpath)
{
	const char *strtab = NULL;
	long rp = -1, rup = -1;
	*rpath = *runpath = NULL;
	for (ElfW(Dyn) *d = lm->l_ld; d && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_STRTAB)
			strtab = (const char *)d->d_un.d_ptr;
		else if (d->d_tag == DT_RPATH)
			rp = (long)d->d_un.d_val;
		else if (d->d_tag == DT_RUNPATH)
			rup = (long)d->d_un.d_val;
	}
	if (!strtab)
		return;
	/* ld.so relocates these entries in place on x86_64; be safe if not */
	if ((uintptr_t)strtab < lm->l_addr)
		strtab += lm->l_addr;
	if (rp >= 0)
		*rpath = strtab + rp;
	if (rup >= 0)
		*runpath = strtab + rup;
}

static void *dlopen_for(void *ret_addr, const char *file, int mode, Lmid_t lmid, int have_lmid)
{
	struct fp_dl_caller c = {NULL, have_lmid ? lmid : LM_ID_BASE, "", 0};
	Dl_info info;
	if (!file || !dladdr1(ret_addr, &info, (void **)&c.lm, RTLD_DL_LINKMAP) || !c.lm ||
	    info.dli_fbase == (void *)__ehdr_start)
		return dl_open(&c, file, mode);
	if (!have_lmid && dlinfo(c.lm, RTLD_DI_LMID, &c.lmid) != 0)
		c.lmid = LM_ID_BASE;
	caller_origin(&c);
	char buf[PATH_MAX];
	if (strchr(file, '$')) {
		if (expand_origin(&c, file, strlen(file), buf, sizeof(buf)))
			file = buf;
	}
	if (strchr(file, '/'))
		return dl_open(&c, file, mode);
	const char *rpath, *runpath;
	dyn_paths(c.lm, &rpath, &runpath);
	if (!rpath && !runpath)
		return dl_open(&c, file, mode);
	void *h = dl_open(&c, file, mode | RTLD_NOLOAD);
	if (h)
		return h;
	if (!runpath && (h = try_dirs(&c, rpath, file, mode)))
		return h;
	if ((h = try_dirs(&c, getenv("LD_LIBRARY_PATH"), file, mode)))
		return h;
	if (runpath && (h = try_dirs(&c, runpath, file, mode)))
		return h;
	return dl_open(&c, file, mode);
}

/* ret_addr is the caller's (dlopen's own return address): the library is
 * searched for as that caller's, with its RUNPATH. */
static void *dlopen_tracked(void *ret_addr, const char *file, int mode, Lmid_t lmid, int m)
{
	int track = fp_enter();
	void *h = dlopen_for(ret_addr, file, mode, lmid, m);
	if (track) {
		int saved = errno;
		fp_maps_libs_seen();
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
		errno = saved;
	}
	return h;
}

FP_EXPORT void *dlopen(const char *file, int mode)
{
	return dlopen_tracked(__builtin_return_address(0), file, mode, LM_ID_BASE, 0);
}

FP_EXPORT void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
	return dlopen_tracked(__builtin_return_address(0), file, mode, lmid, 1);
}

FP_EXPORT int dlclose(void *h)
{
	int track = fp_enter();
	__typeof__(&dlclose) real = FP_REAL(dlclose);
	int r = real ? real(h) : -1;
	if (track) {
		int saved = errno;
		fp_maps_libs_seen();
		fp_maps_resync(0, FP_ORIGIN_RESYNC);
		errno = saved;
	}
	return r;
}
