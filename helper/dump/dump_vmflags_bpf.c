/* The kernel's flags of every mapping of a process (vm_area_struct's
 * vm_flags), without /proc/PID/smaps: a small BPF iterator over the
 * process's mappings (iter/task_vma, Linux 6.1+ for one task; needs CAP_BPF
 * or root and the kernel's BTF), made here from a handful of instructions
 * with the field offsets from the kernel's BTF, as dump_tcp_urg.c's. It
 * reads no page table: ~0.1 ms for a process of 1 GiB, where smaps walks
 * every one (5-60 ms).
 *
 * What it is for: the VmFlags check after a snapshot's resume
 * (dump_precopy_vmas.c). smaps's VmFlags line is a function of vm_flags
 * alone (one mnemonic per bit), so a mapping whose vm_flags are the same
 * bits as when its VmFlags were read has the same VmFlags. /proc/PID/maps
 * alone could not say that: madvise (MADV_HUGEPAGE, MADV_DONTFORK,
 * MADV_DONTDUMP, MADV_WIPEONFORK, MADV_MERGEABLE, ...) and mlock over a
 * whole mapping change its flags in place, with no split, so its maps line
 * stays the same. The bits are only compared with bits (never decoded into
 * mnemonics here), so no flag's bit number is assumed.
 *
 * Anything unavailable (no BTF, no right to load BPF, an older kernel)
 * says so once in a dump.log and the check reads smaps, as before.
 *
 * A second iterator, loaded with it, over a process's fds (iter/task_file):
 * each fd and the address of its open file description, so that a
 * rollback in place tells which fds share one without a kcmp per pair
 * (helper/session/rollback_fdshare.c: 22 ms of kcmp for 10,000 fds on one
 * file). The addresses leave the kernel only into the helper (root). */
#include "dump/dump_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* vm.max_map_count is 65530 by default; a process can be given more */
#define KVMA_MAX (1u << 20)

#define INSN DUMP_BPF_INSN

/* Loaded once per process, by a thread of its own started when a session
 * first keeps its write tracking (dump_vmflags_bpf_warm): reading the
 * kernel's BTF costs 0.1-0.6 s here, which no snapshot should wait for.
 * Until it is loaded, the check reads smaps. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int prog = -1, fprog = -1; /* over mappings; over fds (load_files) */
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER; /* fprog's */
static bool tried;
static char unavailable[320];

/* The fds' open file descriptions (struct file): a rollback in place
 * tells which fds share one by these pointers instead of a kcmp per pair
 * (helper/session/rollback_fdshare.c). A failure leaves fprog -1: kcmp. */
static void load_files(void)
{
	struct btf *b = btf__load_vmlinux_btf();
	int32_t iter = b ? btf__find_by_name_kind(b, "bpf_iter_task_file", BTF_KIND_FUNC) : -1;
	int32_t ctx = b ? btf__find_by_name_kind(b, "bpf_iter__task_file", BTF_KIND_STRUCT) : -1;
	long fd = ctx > 0 ? dump_btf_member_bits(b, ctx, "fd", 0) : -1;
	long file = ctx > 0 ? dump_btf_member_bits(b, ctx, "file", 0) : -1;
	btf__free(b);
	if (iter <= 0 || fd < 0 || file < 0 || fd % 32 || file % 64 || file / 8 > 256)
		return;
	/* One record (fd, the struct file's address) per open fd. */
	struct bpf_insn p[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 7, 6, (int16_t)(file / 8), 0), /* ctx->file */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 9, 0),                    /* to the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 8, 6, 0, 0),                   /* ctx->meta */
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 6, (int16_t)(fd / 8), 0),    /* ctx->fd */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -16, 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 7, -8, 0),
		DUMP_BPF_WRITE_EXIT(8, 16),
	};
	char why[320];
	fprog = dump_bpf_iter_load("fp_fdfiles", p, sizeof(p) / sizeof(p[0]), iter, why, sizeof(why));
}

static int load(void)
{
	tried = true;
	struct btf *b = btf__load_vmlinux_btf();
	if (!b) {
		snprintf(unavailable, sizeof(unavailable), "no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
		return -1;
	}
	int32_t iter = btf__find_by_name_kind(b, "bpf_iter_task_vma", BTF_KIND_FUNC);
	int32_t vma = btf__find_by_name_kind(b, "vm_area_struct", BTF_KIND_STRUCT);
	long st = dump_btf_member_bits(b, vma, "vm_start", 0), en = dump_btf_member_bits(b, vma, "vm_end", 0);
	long fl = dump_btf_member_bits(b, vma, "vm_flags", 0);
	btf__free(b);
	if (iter <= 0 || st < 0 || en < 0 || fl < 0 || st % 64 || en % 64 || fl % 64 || fl / 8 > 32000) {
		snprintf(unavailable, sizeof(unavailable), "the kernel's BTF lacks bpf_iter_task_vma or a field of vm_area_struct");
		return -1;
	}
	/* ctx: struct bpf_iter__task_vma { meta; task; vma; }, 8 bytes each.
	 * One record (start, end, flags) per mapping. */
	struct bpf_insn p[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 7, 6, 16, 0), /* ctx->vma */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 12, 0), /* to the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 8, 6, 0, 0),  /* ctx->meta */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 7, (int16_t)(st / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -24, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 7, (int16_t)(en / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -16, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 7, (int16_t)(fl / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -8, 0),
		DUMP_BPF_WRITE_EXIT(8, 24),
	};
	prog = dump_bpf_iter_load("fp_vmflags", p, sizeof(p) / sizeof(p[0]), iter, unavailable, sizeof(unavailable));
	if (prog < 0)
		return -1;
	return 0;
}

/* Every record of iterator p over pid's task (its mappings, or its fds),
 * in the order of their first 8 bytes (addresses, fd numbers), each rec
 * bytes: *out malloc'd, *n records. */
static int run(int p, pid_t pid, size_t rec, void **out, size_t *n)
{
	union bpf_iter_link_info li;
	memset(&li, 0, sizeof(li));
	li.task.tid = (uint32_t)pid;
	LIBBPF_OPTS(bpf_link_create_opts, lo, .iter_info = &li, .iter_info_len = sizeof(li));
	int link = bpf_link_create(p, 0, BPF_TRACE_ITER, &lo);
	int it = link >= 0 ? bpf_iter_create(link) : -1;
	int rc = it < 0 ? -1 : 0;
	size_t cap = 0, have = 0; /* bytes */
	char *buf = NULL;
	while (!rc) {
		if (cap - have < 4096) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);
			if (!nb) {
				rc = -1;
				break;
			}
			buf = nb;
		}
		ssize_t got = read(it, buf + have, cap - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 || have % rec ? -1 : 0;
			break;
		}
		/* The records come in order, each once. On this kernel a
		 * process of a few thousand mappings made the iterator start
		 * over after a full buffer, without end (the helper grew to 24
		 * GB): anything out of order, or more records than a process
		 * may have mappings or fds, fails the read (the caller takes
		 * the slow way). */
		size_t from = (have + rec - 1) / rec;
		have += (size_t)got;
		for (size_t i = from ? from : 1; i < have / rec && !rc; i++) {
			uint64_t a, b;
			memcpy(&a, buf + (i - 1) * rec, 8);
			memcpy(&b, buf + i * rec, 8);
			rc = b <= a ? -1 : 0;
		}
		if (have / rec > KVMA_MAX)
			rc = -1;
	}
	if (it >= 0)
		close(it);
	if (link >= 0)
		close(link);
	if (rc) {
		free(buf);
		return -1;
	}
	*out = buf;
	*n = have / rec;
	return 0;
}

static void *load_run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	bool first = !tried;
	if (first)
		load();
	pthread_mutex_unlock(&mu);
	/* after: the mappings' iterator is not kept waiting for this one's
	 * BTF read (0.1-0.6 s) */
	pthread_mutex_lock(&fmu);
	if (first)
		load_files();
	pthread_mutex_unlock(&fmu);
	return NULL;
}

void dump_vmflags_bpf_warm(void)
{
	static _Atomic bool started;
	if (started || getenv("FP_DUMP_VMFLAGS_SMAPS"))
		return;
	started = true;
	pthread_t th;
	pthread_attr_t a;
	if (pthread_attr_init(&a))
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &a, load_run, NULL)) {
		pthread_mutex_lock(&mu);
		snprintf(unavailable, sizeof(unavailable), "no thread to load the BPF iterator");
		tried = true;
		pthread_mutex_unlock(&mu);
	}
	pthread_attr_destroy(&a);
}

int dump_vmflags_bpf(pid_t pid, struct dump_kvma **out, size_t *n, const char **why)
{
	*out = NULL;
	*n = 0;
	*why = NULL;
	if (pthread_mutex_trylock(&mu)) {
		*why = "the BPF iterator is being loaded";
		return -1;
	}
	int rc = prog >= 0 ? 0 : -1;
	pthread_mutex_unlock(&mu);
	if (rc) {
		*why = tried ? unavailable : getenv("FP_DUMP_VMFLAGS_SMAPS") ? "FP_DUMP_VMFLAGS_SMAPS is set"
								   : "the BPF iterator is not loaded yet";
		return -1;
	}
	void *v;
	if (run(prog, pid, sizeof(**out), &v, n)) {
		*why = "the BPF iterator over its mappings failed";
		return -1;
	}
	*out = v;
	return 0;
}

uint64_t dump_fdfile_of(const struct dump_kfile *k, size_t n, int fd)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (k[mid].fd < (uint64_t)fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && k[lo].fd == (uint64_t)fd ? k[lo].file : 0;
}

int dump_fdesc_cmp(pid_t px, int fdx, uint64_t filex, pid_t py, int fdy, uint64_t filey)
{
	if (filex && filey)
		return (filex > filey) - (filex < filey);
	long r = syscall(SYS_kcmp, px, py, KCMP_FILE, fdx, fdy);
	return r == 0 ? 0 : r == 1 ? -1 : r == 2 ? 1 : 2;
}

int dump_fdfiles_bpf(pid_t pid, struct dump_kfile **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (pthread_mutex_trylock(&fmu))
		return -1; /* being loaded */
	int p = fprog;
	pthread_mutex_unlock(&fmu);
	void *v;
	if (p < 0 || run(p, pid, sizeof(**out), &v, n))
		return -1;
	*out = v;
	return 0;
}

/* The mapping [start, end) in k (sorted), NULL if none. */
static const struct dump_kvma *kvma_find(const struct dump_kvma *k, size_t n, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (k[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && k[lo].start == start && k[lo].end == end ? &k[lo] : NULL;
}

int dump_vmflags_note(struct dump_vma *v, size_t n, const struct dump_kvma *before, size_t nbefore,
		      const struct dump_kvma *after, size_t nafter)
{
	/* Read on both sides of the smaps read and the same: no flag moved
	 * meanwhile, so each VmFlags line there is these bits. */
	if (nbefore != nafter || memcmp(before, after, nafter * sizeof(*after)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct dump_kvma *k = kvma_find(after, nafter, v[i].start, v[i].end);
		v[i].has_kbits = k != NULL;
		v[i].kbits = k ? k->flags : 0;
	}
	return 0;
}

int dump_vmflags_same(const struct dump_vma *v, size_t n, const struct dump_kvma *now, size_t nnow)
{
	for (size_t i = 0; i < n; i++) {
		/* In the kernel's half: the vsyscall page, in no process's
		 * mapping tree (so not iterated), which no system call changes. */
		if (!v[i].flags_early || v[i].start >> 63)
			continue;
		const struct dump_kvma *k = kvma_find(now, nnow, v[i].start, v[i].end);
		if (!v[i].has_kbits || !k || k->flags != v[i].kbits)
			return 0;
	}
	return 1;
}
