/* The VmFlags of a tracked process: taken before the stop and checked
 * after the resume (dump_precopy_vmas.c), by the kernel's vm_flags read
 * with a BPF iterator where it can be (dump_vmflags_bpf.c), and the BPF
 * pieces that dump_vmflags_bpf.c and dump_tcp_urg.c share (dump_bpf.c).
 * Included by dump_int.h. */
#ifndef FP_DUMP_VMFLAGS_H
#define FP_DUMP_VMFLAGS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dump_ctx;
struct dump_proc;
struct dump_vma;
struct bpf_insn;

/* During the stop, instead of dump_proc_vmas (whose smaps walk takes ~25 ms
 * per GiB): the cheap maps list, with VmFlags from the smaps read before. */
int dump_precopy_vmas(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
/* After the resume: 0 if every VmFlags taken early is still what smaps
 * says, 1 if one changed meanwhile (the dump is redone with a fork copy). */
int dump_precopy_flags_changed(struct dump_ctx *c);
/* Whether some of p's VmFlags were taken before the stop (so need that check). */
bool dump_precopy_flags_early(const struct dump_proc *p);
/* dump_precopy_flags_changed after the resume, in a thread beside the
 * writing of the images (which does not need it): start, then end (its
 * result, logged with how long the writing waited for it). */
struct dump_flags_check {
	struct dump_ctx *c;
	pthread_t th;
	bool started;
	int changed;
	double ms; /* what the check took */
};
void dump_flags_check_start(struct dump_flags_check *fc, struct dump_ctx *c);
int dump_flags_check_end(struct dump_flags_check *fc);
/* dump_flags_check_end (once; fc->c NULL after), and when a flag changed
 * and the dump had not failed already (rc): -1, the failure that has the
 * dump redone with a fork copy (*redo). */
int dump_flags_check_fail(struct dump_flags_check *fc, int rc, bool *redo, fp_error *err);
/* dump_early_reply.c: o->early_reply, once nothing after it can have the
 * dump tried again (the flags check ends first: its failure is -1). */
int dump_early_reply(struct dump_ctx *c, struct dump_flags_check *fc, bool *redo, fp_error *err);
/* Whether a snapshot of this many bytes of pages replies early (asked for,
 * and small enough: the writing after the reply is short). */
bool dump_early_reply_wanted(const struct dump_ctx *c, uint64_t bytes);
/* Below this much mapped memory a tracked process's smaps is read at the
 * stop (its page-table walk is short) and nothing is checked after. */
#define FP_SMAPS_AT_STOP_MAX (64ull << 20)
/* dump_vmflags_bpf.c: the kernel's vm_flags of every mapping, by a BPF
 * iterator instead of smaps (no page table walked). */
struct dump_kvma {
	uint64_t start, end, flags;
};
/* pid's mappings, sorted (free *out); -1 with *why when unavailable (also
 * until dump_vmflags_bpf_warm's thread has loaded the iterator). */
void dump_vmflags_bpf_warm(void);
int dump_vmflags_bpf(pid_t pid, struct dump_kvma **out, size_t *n, const char **why);
/* dump_fdfiles_bpf.c: BPF iterators over a process's fds, loaded by
 * dump_vmflags_bpf_warm's thread after the mappings' one, with the
 * kernel's BTF it read; each used from the moment it is loaded. */
struct btf;
void dump_fdfiles_bpf_load(const struct btf *b);
/* pid's open fds and the address of each one's open file description
 * (struct file), sorted by fd (free *out): equal addresses, one
 * description; with the description's offset and status flags (F_GETFL's),
 * its inode's number and device (st_dev's encoding; both 0 if none), and
 * whether the inode has any file lock.
 * -1 when the iterator is not loaded or fails. */
struct dump_kfile {
	uint64_t fd, file, pos, ino;
	uint32_t flags, dev;
	uint32_t locked; /* 1: its inode has locks (flock, POSIX, OFD, leases), anyone's */
	uint32_t pad;
};
int dump_fdfiles_bpf(pid_t pid, struct dump_kfile **out, size_t *n);
/* The dumper's own records, read once per dump at the first call (after the
 * stop: every copy of a target's fd that they are looked up for is taken
 * by then, and holds its description) and kept in c. -1 as above. */
struct dump_ctx;
int dump_self_kfiles(struct dump_ctx *c, const struct dump_kfile **k, size_t *n);
/* fd's address in k (n records, sorted by fd), 0 if fd is not there */
uint64_t dump_fdfile_of(const struct dump_kfile *k, size_t n, int fd);
/* fd's record in k, NULL if fd is not there */
const struct dump_kfile *dump_fdfile_find(const struct dump_kfile *k, size_t n, int fd);
/* Two fds' open file descriptions (file: the address from the iterator,
 * 0 if not known): 0 when they are one, else -1 or 1, their order (the
 * addresses' when both are known, else kcmp's: a total order either way,
 * so a sort by it puts the fds of one description next to each other);
 * 2 when kcmp cannot tell (a process gone, an fd closed). */
int dump_fdesc_cmp(pid_t px, int fdx, uint64_t filex, pid_t py, int fdy, uint64_t filey);
/* pid's close-on-exec flags as the kernel holds them: fd's is bit fd % 64
 * of (*words)[fd / 64], for the fds below 64 * *nwords (free *words; fewer
 * words than fds when the table is larger than the iterator reads, or the
 * process has no fd table). -1 when the iterator is not loaded or fails. */
int dump_cloexec_bpf(pid_t pid, uint64_t **words, size_t *nwords);
/* fd's bit in those words: 1 or 0, -1 when they do not reach it. */
static inline int dump_cloexec_bit(const uint64_t *words, size_t nwords, int fd)
{
	return fd >= 0 && (size_t)fd / 64 < nwords ? (int)((words[fd / 64] >> (fd % 64)) & 1) : -1;
}
/* v (read from smaps between the reads `before` and `after`) gets the bits
 * of its mappings; -1 (nothing set) if the two reads differ. */
int dump_vmflags_note(struct dump_vma *v, size_t n, const struct dump_kvma *before, size_t nbefore,
		      const struct dump_kvma *after, size_t nafter);
/* 1 when every mapping of v with flags_early has its kbits in now (same
 * range, same bits): its VmFlags are the same; 0 when that is not known. */
int dump_vmflags_same(const struct dump_vma *v, size_t n, const struct dump_kvma *now, size_t nnow);
/* dump_mm.c: what a mapping's VmFlags (smaps's mnemonics) put into its
 * VmaEntry: the mmap flags MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE and
 * the madvise bits (bit n: advice n). */
void dump_vmflags_image(const char *vmflags, uint32_t *flags, uint64_t *madv);
/* dump_vmflags_keep.c: a tracked process's kernel flags as of a
 * snapshot's stop, kept in its directory (vmflags-PID.fpv) for a rollback
 * in place to compare with (rollback_vmflags.c). Written only where every
 * mapping's bits are known as of the stop; a failure only logs. */
void dump_vmflags_keep(struct dump_ctx *c);
/* pid's kept list in snapshot dirfd (free *out): 0, or -1 (none, or not
 * readable: the rollback reads smaps). */
int dump_vmflags_kept(int dirfd, pid_t pid, struct dump_kvma **out, size_t *n);
/* dump_bpf.c: a member's bit offset in a BTF struct (-1 if none),
 * looking into anonymous members. */
long dump_btf_member_bits(const struct btf *b, int32_t id, const char *name, int depth);
/* dump_bpf.c: loads a BPF iterator program (attach point iter_id in the
 * kernel's BTF); its fd, or -1 with why (the verifier's last words). */
int dump_bpf_iter_load(const char *name, const struct bpf_insn *p, size_t n, int32_t iter_id, char *why,
		       size_t whylen);
/* dump_bpf.c: every record (rec bytes) of task iterator prog over pid (one
 * task), which must come in the order of their first 8 bytes (addresses,
 * fd numbers, indexes), each once: *out malloc'd, *n records; -1 if the
 * run fails or breaks that order. */
int dump_bpf_iter_run(int prog, pid_t pid, size_t rec, void **out, size_t *n);
/* one BPF instruction, for the small iterators written out by hand */
#define DUMP_BPF_INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
/* Their common end (7 instructions): the record, the len bytes below the
 * frame pointer, written to the iterator's seq (meta, the context's first
 * member, in register m), and return 0. */
#define DUMP_BPF_WRITE_EXIT(m, len)                                                 \
	DUMP_BPF_INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, (m), 0, 0),                     \
	DUMP_BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),                      \
	DUMP_BPF_INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -(len)),                  \
	DUMP_BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, (len)),                   \
	DUMP_BPF_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_seq_write),               \
	DUMP_BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),                       \
	DUMP_BPF_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#endif
