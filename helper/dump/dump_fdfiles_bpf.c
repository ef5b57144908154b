/* Two small BPF iterators over one process's fds, written out by hand as
 * dump_vmflags_bpf.c's (offsets from the kernel's BTF), loaded after it by
 * the same thread.
 *
 * iter/task_file: each fd and the address of its open file description
 * (struct file), so that the workspace freeze and a rollback in place
 * tell which fds share one without a kcmp per pair
 * (helper/session/rollback_fdshare.c: 22 ms of kcmp for 10,000 fds on one
 * file), with the description's offset and status flags and its inode's
 * number and device: a rollback in place reads the offsets of the fds the
 * shim's table calls untouched from there, not through a copy of each fd
 * (pidfd_getfd, fstat, lseek, fcntl, close). The addresses leave the
 * kernel only into the helper (root).
 *
 * iter/task: the process's close-on-exec bitmap (fdtable's close_on_exec),
 * 2048 fds per record. A rollback in place takes the fds that no wrapper of
 * the shim touched since SNAP from the table (rollback_fdtab.c); a raw
 * fcntl(F_SETFD) changes the flag without the table's knowledge, and
 * reading it from each fd's fdinfo is what the table saves. The bitmap is
 * one read for the whole table: 5 records for 10,000 fds.
 *
 * Either one unavailable: -1, and the callers read /proc (kcmp, fdinfo). */
#include "dump/dump_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define INSN DUMP_BPF_INSN

/* fds per close-on-exec record: 256 bytes of the bitmap read at once */
#define COE_SHIFT 11
#define COE_FDS (1 << COE_SHIFT)
/* records at most: the bitmap of 1,048,576 fds (fs.nr_open's default);
 * the verifier walks the loop once per record (~35 ms for 512) */
#define COE_RECS ((1 << 20) >> COE_SHIFT)

struct coe_rec {
	uint64_t index; /* max_fds << 32 | the record's number */
	uint64_t words[COE_FDS / 64];
};

/* each published when loaded (-1 until then, and if it cannot be) */
static _Atomic int fprog = -1, cprog = -1;

/* A member's byte offset, -1 unless it is aligned to its size (align
 * bytes) and small enough for an instruction's offset. */
static long off_of(const struct btf *b, const char *type, const char *member, int align)
{
	int32_t id = btf__find_by_name_kind(b, type, BTF_KIND_STRUCT);
	long bits = id > 0 ? dump_btf_member_bits(b, id, member, 0) : -1;
	return bits < 0 || bits % (align * 8) || bits / 8 > 32000 ? -1 : bits / 8;
}

static void load_files(const struct btf *b)
{
	int32_t iter = btf__find_by_name_kind(b, "bpf_iter_task_file", BTF_KIND_FUNC);
	long fd = off_of(b, "bpf_iter__task_file", "fd", 4), file = off_of(b, "bpf_iter__task_file", "file", 8);
	long pos = off_of(b, "file", "f_pos", 8), flags = off_of(b, "file", "f_flags", 4);
	long inode = off_of(b, "file", "f_inode", 8), ino = off_of(b, "inode", "i_ino", 8);
	long sb = off_of(b, "inode", "i_sb", 8), dev = off_of(b, "super_block", "s_dev", 4);
	long flctx = off_of(b, "inode", "i_flctx", 8), flock = off_of(b, "file_lock_context", "flc_flock", 8);
	long posix = off_of(b, "file_lock_context", "flc_posix", 8), lease = off_of(b, "file_lock_context", "flc_lease", 8);
	if (iter <= 0 || fd < 0 || file < 0 || pos < 0 || flags < 0 || inode < 0 || ino < 0 || sb < 0 || dev < 0 ||
	    flctx < 0 || flock < 0 || posix < 0 || lease < 0)
		return;
	/* One record (struct dump_kfile) per fd: its number, the struct
	 * file's address, offset and status flags, the inode's number and
	 * device, and whether any lock list of the inode (flock, POSIX and
	 * OFD, leases) is not empty (a list_head whose next is not itself). */
	struct bpf_insn p[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 7, 6, (int16_t)file, 0),    /* ctx->file */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 38, 0),                /* to the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 8, 6, 0, 0),                /* ctx->meta */
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 6, (int16_t)fd, 0),       /* ctx->fd */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -48, 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 7, -40, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 7, (int16_t)pos, 0),     /* ->f_pos */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -32, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 7, (int16_t)flags, 0),    /* ->f_flags */
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -16, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -24, 0),             /* ino 0: none */
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -12, 0),              /* dev 0 */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -8, 0),              /* no locks */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 2, 7, (int16_t)inode, 0),   /* ->f_inode */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 19, 0),                /* to the write */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 2, (int16_t)ino, 0),     /* ->i_ino */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -24, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 2, (int16_t)sb, 0),      /* ->i_sb */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 2, 0),                 /* to the locks */
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 3, (int16_t)dev, 0),      /* ->s_dev */
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -12, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 4, 2, (int16_t)flctx, 0),   /* ->i_flctx */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 11, 0),                /* to the write */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 5, 4, (int16_t)flock, 0),   /* flc_flock.next */
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, (int32_t)flock),  /* &flc_flock */
		INSN(BPF_JMP | BPF_JNE | BPF_X, 5, 4, 6, 0),                 /* to "locked" */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 5, 4, (int16_t)(posix - flock), 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, (int32_t)(posix - flock)),
		INSN(BPF_JMP | BPF_JNE | BPF_X, 5, 4, 3, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 5, 4, (int16_t)(lease - posix), 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, (int32_t)(lease - posix)),
		INSN(BPF_JMP | BPF_JEQ | BPF_X, 5, 4, 2, 0),                 /* to the write */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 1),               /* locked */
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -8, 0),
		DUMP_BPF_WRITE_EXIT(8, 48),
	};
	_Static_assert(sizeof(struct dump_kfile) == 48, "the program's record");
	char why[320];
	int fd_prog = dump_bpf_iter_load("fp_fdfiles", p, sizeof(p) / sizeof(p[0]), iter, why, sizeof(why));
	fprog = fd_prog;
	if (fd_prog < 0 && getenv("FP_BPF_DEBUG"))
		fprintf(stderr, "forkpoint: the fd iterator: %s\n", why);
}

static void load_cloexec(const struct btf *b)
{
	int32_t iter = btf__find_by_name_kind(b, "bpf_iter_task", BTF_KIND_FUNC);
	long task = off_of(b, "bpf_iter__task", "task", 8), files = off_of(b, "task_struct", "files", 8);
	long fdt = off_of(b, "files_struct", "fdt", 8), max = off_of(b, "fdtable", "max_fds", 4);
	long coe = off_of(b, "fdtable", "close_on_exec", 8);
	if (iter <= 0 || task < 0 || files < 0 || fdt < 0 || max < 0 || coe < 0)
		return;
	/* task->files->fdt: max_fds, close_on_exec (a pointer to words, so
	 * a number to the verifier: read with bpf_probe_read_kernel). r6:
	 * the bitmap, r7: its records, r8: meta, r9: the record's number;
	 * max_fds << 32 kept below the record. */
	const int16_t rec = (int16_t)sizeof(struct coe_rec);
	struct bpf_insn p[] = {
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 8, 1, 0, 0),                /* ctx->meta */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 1, (int16_t)task, 0),    /* ctx->task */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 32, 0),                /* to the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 3, (int16_t)files, 0),   /* ->files */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 30, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 3, (int16_t)fdt, 0),     /* ->fdt */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 28, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 7, 3, (int16_t)max, 0),      /* ->max_fds */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 6, 3, (int16_t)coe, 0),     /* ->close_on_exec */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 7, 0, 0),
		INSN(BPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, 32),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, (int16_t)-(rec + 8), 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 7, 0, 0, COE_FDS - 1),
		INSN(BPF_ALU64 | BPF_RSH | BPF_K, 7, 0, 0, COE_SHIFT),       /* records */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 9, 0, 0, 0),
		/* the loop: */
		INSN(BPF_JMP | BPF_JGE | BPF_X, 9, 7, 19, 0),                /* every record: the exit */
		INSN(BPF_JMP | BPF_JGE | BPF_K, 9, 0, 18, COE_RECS),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, (int16_t)-(rec + 8), 0),
		INSN(BPF_ALU64 | BPF_OR | BPF_X, 1, 9, 0, 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, (int16_t)-rec, 0),   /* index */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, -(rec - 8)),      /* words */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, rec - 8),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 9, 0, 0),
		INSN(BPF_ALU64 | BPF_LSH | BPF_K, 3, 0, 0, COE_SHIFT - 3),   /* * bytes per record */
		INSN(BPF_ALU64 | BPF_ADD | BPF_X, 3, 6, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_probe_read_kernel),
		INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 7, 0),                 /* unreadable: the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 8, 0, 0),                /* meta->seq */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -rec),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, rec),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_seq_write),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 9, 0, 0, 1),
		INSN(BPF_JMP | BPF_JA, 0, 0, -20, 0),                        /* to the loop */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	_Static_assert(sizeof(struct coe_rec) + 8 <= 512, "the record and max_fds on the BPF stack");
	char why[320];
	int c_prog = dump_bpf_iter_load("fp_cloexec", p, sizeof(p) / sizeof(p[0]), iter, why, sizeof(why));
	cprog = c_prog;
	if (c_prog < 0 && getenv("FP_BPF_DEBUG"))
		fprintf(stderr, "forkpoint: the close-on-exec iterator: %s\n", why);
}

void dump_fdfiles_bpf_load(const struct btf *b)
{
	load_files(b); /* first: the one a rollback reads at every stop */
	load_cloexec(b);
}

int dump_fdfiles_bpf(pid_t pid, struct dump_kfile **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int p = fprog;
	void *v;
	if (p < 0 || dump_bpf_iter_run(p, pid, sizeof(**out), &v, n))
		return -1;
	*out = v;
	/* the kernel's dev_t (major << 20 | minor) as stat's st_dev */
	for (size_t i = 0; i < *n; i++)
		(*out)[i].dev = (uint32_t)makedev((*out)[i].dev >> 20, (*out)[i].dev & 0xfffff);
	return 0;
}

int dump_self_kfiles(struct dump_ctx *c, const struct dump_kfile **k, size_t *n)
{
	if (!c->self_kf_state)
		c->self_kf_state = dump_fdfiles_bpf(getpid(), &c->self_kf, &c->nself_kf) ? -1 : 1;
	*k = c->self_kf;
	*n = c->nself_kf;
	return c->self_kf_state > 0 ? 0 : -1;
}

const struct dump_kfile *dump_fdfile_find(const struct dump_kfile *k, size_t n, int fd)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (k[mid].fd < (uint64_t)fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && k[lo].fd == (uint64_t)fd ? &k[lo] : NULL;
}

uint64_t dump_fdfile_of(const struct dump_kfile *k, size_t n, int fd)
{
	const struct dump_kfile *f = dump_fdfile_find(k, n, fd);
	return f ? f->file : 0;
}

int dump_fdesc_cmp(pid_t px, int fdx, uint64_t filex, pid_t py, int fdy, uint64_t filey)
{
	if (filex && filey)
		return (filex > filey) - (filex < filey);
	long r = syscall(SYS_kcmp, px, py, KCMP_FILE, fdx, fdy);
	return r == 0 ? 0 : r == 1 ? -1 : r == 2 ? 1 : 2;
}

int dump_cloexec_bpf(pid_t pid, uint64_t **words, size_t *nwords)
{
	*words = NULL;
	*nwords = 0;
	int p = cprog;
	void *v;
	size_t n;
	if (p < 0 || dump_bpf_iter_run(p, pid, sizeof(struct coe_rec), &v, &n))
		return -1;
	/* records 0, 1, 2, ... in order (the run checked that they rise);
	 * a gap (an unreadable part) ends what is known, and so does max_fds
	 * (the last record reads past the bitmap) */
	struct coe_rec *r = v;
	size_t k = 0;
	while (k < n && (r[k].index & 0xffffffffu) == k)
		k++;
	size_t max = n ? (size_t)(r[0].index >> 32) : 0;
	uint64_t *w = malloc((k ? k : 1) * sizeof(r->words));
	if (!w) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < k; i++)
		memcpy(w + i * (COE_FDS / 64), r[i].words, sizeof(r->words));
	free(v);
	size_t nw = k * (COE_FDS / 64);
	*nwords = nw < (max + 63) / 64 ? nw : (max + 63) / 64;
	*words = w;
	return 0;
}
