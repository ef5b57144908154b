#include "shim_reader.h"
#include "fp_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"

#define HDR_SIZE offsetof(struct fp_shim_table, threads)

/* A short pause between re-reads of a changing table (a retry backoff, not
 * synchronisation: the loop re-checks the condition each time). */
static void backoff(void)
{
	struct timespec ts = {0, 50000};
	nanosleep(&ts, NULL);
}

/* The copy's room (several MB, of which a few KB are filled): its own
 * mapping, zero pages until touched. From calloc, glibc's moving mmap
 * threshold serves the second copy from the heap after the first is freed,
 * and clears all of it: ~10 ms of page faults for every copy after the
 * first. */
static struct fp_shim_table *table_alloc(void)
{
	void *p = mmap(NULL, sizeof(struct fp_shim_table), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void table_free(struct fp_shim_table *t)
{
	if (t)
		munmap(t, sizeof(*t));
}

static bool ends_with_soname(const char *p)
{
	size_t n = strlen(p), s = strlen(FP_SHIM_SONAME);
	return n >= s && !strcmp(p + n - s, FP_SHIM_SONAME) && (n == s || p[n - s - 1] == '/');
}

/* The shim's file, opened the way that works across mount namespaces. */
static int open_shim_file(pid_t pid, const struct fp_map *m)
{
	char p[4200];
	snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	snprintf(p, sizeof(p), "/proc/%d/root%s", (int)pid, m->path);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	return open(m->path, O_RDONLY | O_CLOEXEC);
}

/* Load bias and symbol value from the ELF file. */
static int elf_lookup(int fd, const char *path, const struct fp_map *m, uint64_t *addr,
		      fp_error *err)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fp_fail(err, ENOSYS, "libelf is too old for this ELF version");
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		if (e)
			elf_end(e);
		return fp_fail(err, EINVAL, "%s is not an ELF file: %s", path, elf_errmsg(-1));
	}
	int rc = -1;
	size_t nph = 0;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t pmask = ~(uint64_t)(page - 1);
	bool have_bias = false;
	uint64_t bias = 0;
	if (elf_getphdrnum(e, &nph) != 0) {
		fp_fail(err, EINVAL, "%s: no program headers: %s", path, elf_errmsg(-1));
		goto out;
	}
	for (size_t i = 0; i < nph && !have_bias; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if ((ph.p_offset & pmask) == m->offset) {
			bias = m->start - (ph.p_vaddr & pmask);
			have_bias = true;
		}
	}
	if (!have_bias) {
		fp_fail(err, EINVAL,
			"%s: no loadable segment at file offset 0x%llx (is the mapped file the "
			"one on disk? the shim may have been rebuilt while the target ran)",
			path, (unsigned long long)m->offset);
		goto out;
	}
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t n = d ? sh.sh_size / sh.sh_entsize : 0;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			const char *name = elf_strptr(e, sh.sh_link, sym.st_name);
			if (name && !strcmp(name, FP_SHIM_TABLE_SYMBOL)) {
				*addr = bias + sym.st_value;
				rc = 0;
				goto out;
			}
		}
	}
	fp_fail(err, ENOENT, "%s has no dynamic symbol %s: not a forkpoint shim, or a broken build",
		path, FP_SHIM_TABLE_SYMBOL);
out:
	elf_end(e);
	return rc;
}

/* ---- where the table is, found once per process image ----
 *
 * Finding it costs a read of /proc/PID/maps and an ELF lookup (tens of ms for
 * a process of 10,000 mappings), and a session's every snapshot, rollback and
 * check asks again. The address found last is kept per pid and used again
 * only after its header, read at that address, says it is still the table of
 * that process: the magic, this version and size, the pid, and the address
 * inside the shim's own object as the table itself records it. An exec loads
 * a new image (the old address is unmapped or holds something else, or it
 * is the same shim at the same place: then the address is right anyway). */
#define LOC_CACHE 16
static struct loc {
	pid_t pid;
	uint64_t addr;
	char path[FP_SHIM_PATH_MAX];
	uint64_t used;
} loc_cache[LOC_CACHE];
static uint64_t loc_clock;
static pthread_mutex_t loc_mu = PTHREAD_MUTEX_INITIALIZER;

/* A field of a header copy (HDR_SIZE bytes, not a whole table) */
#define HF(hb, f) ({ __typeof__(((struct fp_shim_table *)0)->f) v_; \
		     memcpy(&v_, (hb) + offsetof(struct fp_shim_table, f), sizeof(v_)); v_; })

static bool hdr_is_table(const unsigned char *hb, pid_t pid, uint64_t addr)
{
	return HF(hb, magic) == FP_SHIM_MAGIC && HF(hb, version) == FP_SHIM_VERSION &&
	       HF(hb, header_size) == sizeof(struct fp_shim_table) && HF(hb, pid) == pid && HF(hb, shim_start) <= addr &&
	       addr + sizeof(struct fp_shim_table) <= HF(hb, shim_end);
}

static int vm_read(pid_t pid, uint64_t addr, void *buf, size_t len, fp_error *err);

/* 1: the cached address holds pid's table now (*addr, path set) */
static int loc_hit(pid_t pid, uint64_t *addr, char *path, size_t path_len)
{
	struct loc l = { 0 };
	pthread_mutex_lock(&loc_mu);
	for (int i = 0; i < LOC_CACHE; i++)
		if (loc_cache[i].pid == pid) {
			loc_cache[i].used = ++loc_clock;
			l = loc_cache[i];
		}
	pthread_mutex_unlock(&loc_mu);
	if (!l.pid)
		return 0;
	_Alignas(struct fp_shim_table) unsigned char hb[HDR_SIZE];
	fp_error e;
	if (vm_read(pid, l.addr, hb, HDR_SIZE, &e) < 0 || !hdr_is_table(hb, pid, l.addr))
		return 0;
	*addr = l.addr;
	if (path && path_len)
		snprintf(path, path_len, "%s", l.path);
	return 1;
}

static void loc_keep(pid_t pid, uint64_t addr, const char *path)
{
	pthread_mutex_lock(&loc_mu);
	int at = 0;
	for (int i = 0; i < LOC_CACHE; i++) {
		if (loc_cache[i].pid == pid) {
			at = i;
			break;
		}
		if (loc_cache[i].used < loc_cache[at].used)
			at = i;
	}
	loc_cache[at].pid = pid;
	loc_cache[at].addr = addr;
	snprintf(loc_cache[at].path, sizeof(loc_cache[at].path), "%s", path);
	loc_cache[at].used = ++loc_clock;
	pthread_mutex_unlock(&loc_mu);
}

static unsigned long loc_walks; /* /proc walks made: for the tests */

unsigned long fp_shim_locate_walks(void)
{
	return __atomic_load_n(&loc_walks, __ATOMIC_RELAXED);
}

int fp_shim_locate(pid_t pid, uint64_t *addr, char *path, size_t path_len, fp_error *err)
{
	if (loc_hit(pid, addr, path, path_len))
		return 1;
	char found[FP_SHIM_PATH_MAX];
	int r = fp_shim_locate_proc(pid, addr, found, sizeof(found), err);
	if (r == 1) {
		if (path && path_len)
			snprintf(path, path_len, "%s", found);
		/* kept once the shim has initialised its table (before that the
		 * header cannot vouch for the address) */
		_Alignas(struct fp_shim_table) unsigned char hb[HDR_SIZE];
		fp_error e;
		if (vm_read(pid, *addr, hb, HDR_SIZE, &e) == 0 && hdr_is_table(hb, pid, *addr))
			loc_keep(pid, *addr, found);
	}
	return r;
}

int fp_shim_locate_proc(pid_t pid, uint64_t *addr, char *path, size_t path_len, fp_error *err)
{
	__atomic_fetch_add(&loc_walks, 1, __ATOMIC_RELAXED);
	struct fp_maps maps;
	if (fp_proc_read_maps(pid, &maps, err) < 0)
		return -1;
	const struct fp_map *first = NULL;
	for (size_t i = 0; i < maps.n; i++) {
		const struct fp_map *m = &maps.v[i];
		if (m->kind == FP_MAP_FILE && m->path && ends_with_soname(m->path) &&
		    (!first || m->offset < first->offset))
			first = m;
	}
	if (!first) {
		fp_proc_maps_free(&maps);
		return 0;
	}
	if (path && path_len)
		snprintf(path, path_len, "%s", first->path);
	int fd = open_shim_file(pid, first);
	if (fd < 0) {
		int e = errno;
		fp_fail(err, e, "cannot open the shim %s mapped by %d: %s", first->path, (int)pid,
			strerror(e));
		fp_proc_maps_free(&maps);
		return -1;
	}
	int rc = elf_lookup(fd, first->path, first, addr, err);
	close(fd);
	fp_proc_maps_free(&maps);
	return rc < 0 ? -1 : 1;
}

/* ---- copying ---- */

static int vm_read(pid_t pid, uint64_t addr, void *buf, size_t len, fp_error *err)
{
	size_t done = 0;
	while (done < len) {
		struct iovec local = {(char *)buf + done, len - done};
		struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
		ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			if (e == ESRCH)
				return fp_fail(err, ESRCH, "no process %d", (int)pid);
			if (e == EPERM)
				return fp_fail(err, EPERM,
					       "cannot read the memory of %d: not permitted (run as "
					       "its user with ptrace access, or as root)",
					       (int)pid);
			return fp_fail(err, e, "cannot read the shim table of %d at 0x%llx: %s",
				       (int)pid, (unsigned long long)(addr + done), strerror(e));
		}
		if (r == 0)
			return fp_fail(err, EFAULT, "the shim table of %d at 0x%llx is not mapped",
				       (int)pid, (unsigned long long)(addr + done));
		done += (size_t)r;
	}
	return 0;
}

static void gate_write(pid_t pid, uint64_t addr, uint32_t v)
{
	struct iovec local = {&v, sizeof(v)};
	struct iovec remote = {(void *)(uintptr_t)(addr + offsetof(struct fp_shim_table, read_gate)),
			       sizeof(v)};
	(void)process_vm_writev(pid, &local, 1, &remote, 1, 0);
}

struct rd {
	pid_t pid;
	uint64_t addr;
	uint64_t deadline;
	const struct fp_shim_read_opts *o;
	struct fp_shim_copy *out;
	bool gate_set;
};

static int read_hdr(struct rd *r, struct fp_shim_table *h, fp_error *err)
{
	return vm_read(r->pid, r->addr, h, HDR_SIZE, err);
}

static int check_hdr(const struct fp_shim_table *h, pid_t pid, fp_error *err)
{
	if (h->magic != FP_SHIM_MAGIC)
		return fp_fail(err, EINVAL, "the table of %d has a bad magic 0x%llx: not a forkpoint "
			       "shim table", (int)pid, (unsigned long long)h->magic);
	if (h->version != FP_SHIM_VERSION || h->header_size != sizeof(struct fp_shim_table))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, 0,
				    "process %d runs a forkpoint shim with table version %u (%u "
				    "bytes); this helper reads version %u (%zu bytes): use the shim "
				    "and helper of one forkpoint build",
				    (int)pid, h->version, h->header_size, FP_SHIM_VERSION,
				    sizeof(struct fp_shim_table));
	if (h->max_fds != FP_SHIM_MAX_FDS || h->max_maps != FP_SHIM_MAX_MAPS ||
	    h->max_threads != FP_SHIM_MAX_THREADS || h->path_max != FP_SHIM_PATH_MAX)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, 0,
				    "the shim table of %d has other limits than this helper's",
				    (int)pid);
	return 0;
}

/* Copies n entries of a list whose first lo are at the start of the array
 * and the rest at its end (lo == n: no gap), compacted into t. */
static int read_entries(struct rd *r, size_t arr_off, size_t elem, uint32_t max, uint32_t n,
			uint32_t lo, fp_error *err)
{
	char *dst = (char *)r->out->t + arr_off;
	if (lo && vm_read(r->pid, r->addr + arr_off, dst, lo * elem, err) < 0)
		return -1;
	if (n > lo && vm_read(r->pid, r->addr + arr_off + (uint64_t)(max - (n - lo)) * elem,
			      dst + lo * elem, (n - lo) * elem, err) < 0)
		return -1;
	return 0;
}

/* A list (maps or threads) guarded by seq/count in the header; lo_off: the
 * header's gap position (maps), 0 for a list without a gap. */
static int read_list(struct rd *r, size_t seq_off, size_t count_off, size_t lo_off,
		     size_t arr_off, size_t elem, uint32_t max, const char *what, fp_error *err)
{
	struct fp_shim_table *t = r->out->t;
	/* headers only: the whole table is megabytes, too big for a stack */
	_Alignas(struct fp_shim_table) unsigned char b1[HDR_SIZE], b2[HDR_SIZE];
	struct fp_shim_table *h1p = (struct fp_shim_table *)b1, *h2p = (struct fp_shim_table *)b2;
	for (unsigned attempt = 0;; attempt++) {
		if (attempt > 0) {
			r->out->retries++;
			if ((uint64_t)fp_mono_ms() > r->deadline)
				return fp_fail(err, EAGAIN,
					       "the %s list of the shim table of %d stayed busy (a "
					       "thread of it is stopped while changing it, or it "
					       "changes too fast); let the target run and read again",
					       what, (int)r->pid);
			/* heavy churn: ask the writers to pause for a moment (again
			 * on every retry: a writer that waited its maximum clears
			 * the gate) */
			if (attempt >= 3 && !r->o->no_gate) {
				gate_write(r->pid, r->addr, 1);
				if (!r->gate_set)
					r->out->gated++;
				r->gate_set = true;
			}
			backoff();
		}
		if (read_hdr(r, h1p, err) < 0)
			return -1;
		uint32_t s1, n1, s2, n2, lo1, lo2;
		memcpy(&s1, (char *)b1 + seq_off, 4);
		memcpy(&n1, (char *)b1 + count_off, 4);
		lo1 = n1;
		if (lo_off)
			memcpy(&lo1, (char *)b1 + lo_off, 4);
		if (s1 & 1)
			continue;
		if (n1 > max || lo1 > n1)
			return fp_fail(err, EINVAL, "the shim table of %d is corrupt (%u %s > %u)",
				       (int)r->pid, n1, what, lo1 > n1 ? n1 : max);
		if (read_entries(r, arr_off, elem, max, n1, lo1, err) < 0)
			return -1;
		if (read_hdr(r, h2p, err) < 0)
			return -1;
		memcpy(&s2, (char *)b2 + seq_off, 4);
		memcpy(&n2, (char *)b2 + count_off, 4);
		lo2 = n2;
		if (lo_off)
			memcpy(&lo2, (char *)b2 + lo_off, 4);
		if (s2 != s1 || n2 != n1 || lo2 != lo1)
			continue;
		memcpy((char *)t + seq_off, &s1, 4);
		memcpy((char *)t + count_off, &n1, 4);
		if (lo_off)
			memcpy((char *)t + lo_off, &n1, 4); /* the copy is compacted */
		return 0;
	}
}

static int read_fds(struct rd *r, uint32_t hwm, fp_error *err)
{
	struct fp_shim_fd *a = r->out->t->fds;
	if (!hwm)
		return 0;
	size_t bytes = (size_t)hwm * sizeof(*a);
	struct fp_shim_fd *b = malloc(bytes);
	if (!b)
		return fp_fail(err, ENOMEM, "out of memory copying the shim table");
	uint64_t base = r->addr + offsetof(struct fp_shim_table, fds);
	int rc = -1;
	if (vm_read(r->pid, base, a, bytes, err) < 0 || vm_read(r->pid, base, b, bytes, err) < 0)
		goto out;
	for (uint32_t i = 0; i < hwm; i++) {
		/* a slot is good when even and identical in two copies taken one
		 * after the other (the second starts after the first ended) */
		bool good = !(a[i].seq & 1) && !memcmp(&a[i], &b[i], sizeof(a[i]));
		while (!good) {
			r->out->retries++;
			if ((uint64_t)fp_mono_ms() > r->deadline) {
				fp_fail(err, EAGAIN,
					"fd slot %u of the shim table of %d stayed busy (a thread of "
					"it is stopped while changing it?); let the target run and "
					"read again",
					i, (int)r->pid);
				goto out;
			}
			backoff();
			uint64_t at = base + (uint64_t)i * sizeof(*a);
			if (vm_read(r->pid, at, &a[i], sizeof(a[i]), err) < 0 ||
			    vm_read(r->pid, at, &b[i], sizeof(b[i]), err) < 0)
				goto out;
			good = !(a[i].seq & 1) && !memcmp(&a[i], &b[i], sizeof(a[i]));
		}
	}
	rc = 0;
out:
	free(b);
	return rc;
}

int fp_shim_read_at(pid_t pid, uint64_t addr, const struct fp_shim_read_opts *opts,
		    struct fp_shim_copy *out, fp_error *err)
{
	static const struct fp_shim_read_opts defaults = {2000, 0, 0};
	const struct fp_shim_read_opts *o = opts ? opts : &defaults;
	out->pid = pid;
	out->addr = addr;
	out->state = FP_SHIM_ABSENT;
	out->t = table_alloc();
	if (!out->t)
		return fp_fail(err, ENOMEM, "out of memory for a copy of the shim table");
	struct rd r = {pid, addr, (uint64_t)fp_mono_ms() + (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 2000), o,
		       out, false};
	struct fp_shim_table *t = out->t;
	int rc = -1;
	if (read_hdr(&r, t, err) < 0)
		goto out;
	if (t->magic == 0) {
		out->state = FP_SHIM_STARTING;
		return 0;
	}
	if (check_hdr(t, pid, err) < 0)
		goto out;
	/* a change no slot took (preload/shim_fds.c): no fd is known */
	uint32_t hwm = t->fd_unrecorded ? 0 : t->fd_hwm > FP_SHIM_MAX_FDS ? FP_SHIM_MAX_FDS : t->fd_hwm;
	if (read_fds(&r, hwm, err) < 0)
		goto out;
	t->fd_hwm = hwm;
	if (o->fds_only) {
		t->map_count = t->map_lo = t->thread_count = 0;
		out->state = FP_SHIM_READY;
		rc = 1;
		goto out;
	}
	if (read_list(&r, offsetof(struct fp_shim_table, maps_seq),
		      offsetof(struct fp_shim_table, map_count), offsetof(struct fp_shim_table, map_lo),
		      offsetof(struct fp_shim_table, maps),
		      sizeof(struct fp_shim_map), FP_SHIM_MAX_MAPS, "mapping", err) < 0)
		goto out;
	if (read_list(&r, offsetof(struct fp_shim_table, threads_seq),
		      offsetof(struct fp_shim_table, thread_count), 0,
		      offsetof(struct fp_shim_table, threads), sizeof(struct fp_shim_thread),
		      FP_SHIM_MAX_THREADS, "thread", err) < 0)
		goto out;
	out->state = FP_SHIM_READY;
	rc = 1;
out:
	if (r.gate_set)
		gate_write(pid, addr, 0);
	if (rc < 0) {
		table_free(out->t);
		out->t = NULL;
		out->state = FP_SHIM_ABSENT;
	}
	return rc;
}

int fp_shim_read(pid_t pid, const struct fp_shim_read_opts *opts, struct fp_shim_copy *out,
		 fp_error *err)
{
	memset(out, 0, sizeof(*out));
	out->pid = pid;
	uint64_t addr;
	int found = fp_shim_locate(pid, &addr, out->shim_path, sizeof(out->shim_path), err);
	if (found <= 0)
		return found;
	return fp_shim_read_at(pid, addr, opts, out, err);
}

void fp_shim_copy_free(struct fp_shim_copy *c)
{
	if (c) {
		table_free(c->t);
		c->t = NULL;
	}
}

/* ---- the mapping change log ---- */

int fp_shim_maplog_read(pid_t pid, uint64_t addr, uint64_t from, struct fp_shim_mapev **ev, size_t *n,
			uint64_t *head, char *why, size_t why_len, fp_error *err)
{
	_Alignas(struct fp_shim_table) unsigned char hb[HDR_SIZE];
	struct fp_shim_table *h = (struct fp_shim_table *)hb;
	*ev = NULL;
	*n = 0;
	if (vm_read(pid, addr, h, HDR_SIZE, err) < 0 || check_hdr(h, pid, err) < 0)
		return -1;
	uint32_t size;
	memcpy(head, hb + offsetof(struct fp_shim_table, maplog_head), sizeof(*head));
	memcpy(&size, hb + offsetof(struct fp_shim_table, maplog_size), sizeof(size));
	if (size != FP_SHIM_MAPLOG)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, 0, "the shim table of %d has another log size (%u)", (int)pid,
				    size);
	if (*head < from) {
		snprintf(why, why_len, "the log's head %llu is behind the one read last (%llu): another process image",
			 (unsigned long long)*head, (unsigned long long)from);
		return 0;
	}
	uint64_t cnt = *head - from;
	if (cnt >= FP_SHIM_MAPLOG) {
		snprintf(why, why_len, "%llu mapping changes since the last snapshot, more than the log holds (%u)",
			 (unsigned long long)cnt, FP_SHIM_MAPLOG);
		return 0;
	}
	if (!cnt)
		return 1;
	struct fp_shim_mapev *v = malloc(cnt * sizeof(*v));
	if (!v)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t base = addr + offsetof(struct fp_shim_table, maplog);
	uint64_t first = from & (FP_SHIM_MAPLOG - 1), k1 = FP_SHIM_MAPLOG - first < cnt ? FP_SHIM_MAPLOG - first : cnt;
	if (vm_read(pid, base + first * sizeof(*v), v, k1 * sizeof(*v), err) < 0 ||
	    (cnt > k1 && vm_read(pid, base, v + k1, (cnt - k1) * sizeof(*v), err) < 0) ||
	    vm_read(pid, addr + offsetof(struct fp_shim_table, maplog_head), head, sizeof(*head), err) < 0) {
		free(v);
		return -1;
	}
	/* a writer may have overwritten the oldest slots during the copy */
	bool lost = *head - from >= FP_SHIM_MAPLOG;
	for (uint64_t i = 0; i < cnt && !lost; i++)
		lost = v[i].gen != from + i + 1;
	if (lost) {
		free(v);
		snprintf(why, why_len, "the log was overwritten while it was read (more than %u changes)", FP_SHIM_MAPLOG);
		return 0;
	}
	*head = from + cnt;
	*ev = v;
	*n = cnt;
	return 1;
}

/* ---- slot heads only ---- */

_Static_assert(sizeof(struct fp_shim_fd_head) == offsetof(struct fp_shim_fd, fd_flags),
	       "struct fp_shim_fd_head is the start of struct fp_shim_fd");

static int heads_in_runs(pid_t pid, uint64_t base, const int *fds, size_t n, uint32_t top, uint32_t lo, uint32_t hi,
			 struct fp_shim_fd_head *out, fp_error *err)
{
	enum { RUN = 512 };
	uint32_t span = hi - lo + 1;
	struct fp_shim_fd *buf = malloc((size_t)span * sizeof(*buf));
	uint8_t *ok = calloc(span, 1);
	if (!buf || !ok) {
		free(buf);
		free(ok);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	for (uint32_t at = 0; at < span; at += RUN) {
		uint32_t k = span - at < RUN ? span - at : RUN;
		struct iovec l = { buf + at, k * sizeof(*buf) },
			     r = { (void *)(uintptr_t)(base + (uint64_t)(lo + at) * sizeof(*buf)), k * sizeof(*buf) };
		ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (got < 0 && errno == ESRCH) {
			free(buf);
			free(ok);
			return fp_fail(err, ESRCH, "no process %d", (int)pid);
		}
		for (uint32_t i = 0; got > 0 && i < (uint32_t)((size_t)got / sizeof(*buf)); i++)
			ok[at + i] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct fp_shim_fd_head){ .seq = 1 }; /* odd: unknown */
		if (fds[i] >= 0 && (uint32_t)fds[i] < top && ok[fds[i] - lo])
			memcpy(&out[i], &buf[fds[i] - lo], sizeof(out[i]));
	}
	free(buf);
	free(ok);
	return 1;
}

int fp_shim_read_heads(pid_t pid, uint64_t addr, const int *fds, size_t n, struct fp_shim_fd_head *out,
		       uint32_t *hwm, fp_error *err)
{
	unsigned char hb[HDR_SIZE];
	if (vm_read(pid, addr, hb, HDR_SIZE, err) < 0)
		return -1;
	if (!hdr_is_table(hb, pid, addr))
		return 0;
	/* a change no slot took (preload/shim_fds.c): no fd is known */
	uint32_t top = HF(hb, fd_unrecorded) ? 0 : HF(hb, fd_hwm) > FP_SHIM_MAX_FDS ? FP_SHIM_MAX_FDS : HF(hb, fd_hwm);
	if (hwm)
		*hwm = HF(hb, fd_overflow) ? 0 : top;
	uint64_t base = addr + offsetof(struct fp_shim_table, fds);
	/* Many fds close together: whole slots in runs cost less than one
	 * remote range per slot (each range pins its page again: 1.1 ms for
	 * 10,000 slots against 0.3 ms for the 3 MB around them). */
	int lo = INT32_MAX, hi = -1;
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0 && (uint32_t)fds[i] < top) {
			lo = fds[i] < lo ? fds[i] : lo;
			hi = fds[i] > hi ? fds[i] : hi;
		}
	if (n >= 64 && hi >= lo && (size_t)(hi - lo + 1) <= 8 * n)
		return heads_in_runs(pid, base, fds, n, top, (uint32_t)lo, (uint32_t)hi, out, err);
	enum { BATCH = IOV_MAX < 1024 ? IOV_MAX : 1024 };
	struct iovec loc[BATCH], rem[BATCH];
	for (size_t at = 0; at < n;) {
		size_t k = 0, first = at;
		for (; at < n && k < BATCH; at++) {
			out[at] = (struct fp_shim_fd_head){ .seq = 1 }; /* odd: unknown */
			if (fds[at] < 0 || (uint32_t)fds[at] >= top)
				continue;
			loc[k] = (struct iovec){ &out[at], sizeof(out[at]) };
			rem[k] = (struct iovec){ (void *)(uintptr_t)(base + (uint64_t)fds[at] * sizeof(struct fp_shim_fd)),
						 sizeof(out[at]) };
			k++;
		}
		if (!k)
			continue;
		ssize_t r = process_vm_readv(pid, loc, k, rem, k, 0);
		if (r < 0 && errno == ESRCH)
			return fp_fail(err, ESRCH, "no process %d", (int)pid);
		if (r != (ssize_t)(k * sizeof(*out)))
			for (size_t i = first; i < at; i++)
				out[i].seq = 1; /* partly read: trust none of the batch */
	}
	return 1;
}
