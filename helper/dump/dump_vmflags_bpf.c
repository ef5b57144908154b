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
 * The iterators over a process's fds (dump_fdfiles_bpf.c) are loaded
 * after this one, by the same thread. */
#include "dump/dump_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INSN DUMP_BPF_INSN

/* Loaded once per process, by a thread of its own started when a session
 * first keeps its write tracking (dump_vmflags_bpf_warm): reading the
 * kernel's BTF costs 0.1-0.6 s here, which no snapshot should wait for.
 * Until it is loaded, the check reads smaps. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int prog = -1;
static bool tried;
static char unavailable[320];

static int load(const struct btf *b)
{
	tried = true;
	if (!b) {
		snprintf(unavailable, sizeof(unavailable), "no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
		return -1;
	}
	int32_t iter = btf__find_by_name_kind(b, "bpf_iter_task_vma", BTF_KIND_FUNC);
	int32_t vma = btf__find_by_name_kind(b, "vm_area_struct", BTF_KIND_STRUCT);
	long st = dump_btf_member_bits(b, vma, "vm_start", 0), en = dump_btf_member_bits(b, vma, "vm_end", 0);
	long fl = dump_btf_member_bits(b, vma, "vm_flags", 0);
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

static void *load_run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	bool first = !tried;
	struct btf *b = first ? btf__load_vmlinux_btf() : NULL;
	if (first)
		load(b);
	pthread_mutex_unlock(&mu);
	/* after: the mappings' iterator is not kept waiting for theirs (the
	 * BTF is read once: 0.1-0.6 s) */
	if (b)
		dump_fdfiles_bpf_load(b);
	btf__free(b);
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
	if (dump_bpf_iter_run(prog, pid, sizeof(**out), &v, n)) {
		*why = "the BPF iterator over its mappings failed";
		return -1;
	}
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
