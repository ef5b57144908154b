/* A tracked process's kernel flags of every mapping as of a snapshot's
 * stop, kept beside its images in vmflags-PID.fpv (dump_vmflags.h).
 *
 * Why: madvise (MADV_DONTFORK, MADV_HUGEPAGE, ...) and mlock change a
 * mapping's flags in place, and a rollback in place leaves the mappings it
 * keeps as they are. The images hold only what smaps's mnemonics give (a
 * VmaEntry's madv and flags), and smaps walks every page table (25-40 ms
 * per GiB). With the bits kept here, a rollback compares them with the
 * same BPF read now (~0.1 ms) and reads smaps only where a bit differs
 * (rollback_vmflags.c).
 *
 * Not a CRIU image (CRIU ignores files it does not know); listed in the
 * manifest like every file of the directory. Layout, little-endian:
 * "FPVMFLG1", a u64 count, then count records of u64 start, end, flags
 * in address order. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"

static const char MAGIC[8] = { 'F', 'P', 'V', 'M', 'F', 'L', 'G', '1' };

static void name_of(char *buf, size_t len, pid_t pid)
{
	snprintf(buf, len, "vmflags-%d.fpv", (int)pid);
}

/* 1 written, 0 not every mapping's bits known (no file), -1 failed (why). */
static int keep_one(struct dump_ctx *c, const struct dump_proc *p, fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nvmas; i++) {
		if (p->vmas[i].start >> 63) /* the vsyscall page: in no mapping tree */
			continue;
		if (!p->vmas[i].has_kbits)
			return 0;
		n++;
	}
	size_t len = 16 + n * sizeof(struct dump_kvma);
	uint8_t *buf = malloc(len);
	if (!buf)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t cnt = n;
	memcpy(buf, MAGIC, sizeof(MAGIC));
	memcpy(buf + 8, &cnt, sizeof(cnt));
	struct dump_kvma *k = (struct dump_kvma *)(buf + 16);
	n = 0;
	for (size_t i = 0; i < p->nvmas; i++)
		if (!(p->vmas[i].start >> 63))
			k[n++] = (struct dump_kvma){ p->vmas[i].start, p->vmas[i].end, p->vmas[i].kbits };
	char path[PATH_MAX], name[64];
	name_of(name, sizeof(name), p->pid);
	snprintf(path, sizeof(path), "%s/%s", c->tmpdir, name);
	int rc = fp_write_file_replace(path, buf, len, err);
	free(buf);
	return rc ? -1 : 1;
}

void dump_vmflags_keep(struct dump_ctx *c)
{
	if (!c->o->track)
		return;
	for (size_t i = 0; i < c->nprocs; i++) {
		fp_error e;
		int rc = keep_one(c, &c->procs[i], &e);
		if (rc < 0)
			dlog(c, "%d: the mappings' kernel flags not kept (%s): a rollback to this snapshot reads smaps",
			     c->procs[i].pid, e.msg);
		else if (rc == 0)
			dlog(c, "%d: the mappings' kernel flags not all known as of the stop: none kept (a rollback to "
				"this snapshot reads smaps)",
			     c->procs[i].pid);
	}
}

int dump_vmflags_kept(int dirfd, pid_t pid, struct dump_kvma **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char name[64];
	name_of(name, sizeof(name), pid);
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	char head[16];
	uint64_t cnt = 0;
	int rc = fstat(fd, &st) == 0 && st.st_size >= 16 && pread(fd, head, 16, 0) == 16 &&
			 !memcmp(head, MAGIC, sizeof(MAGIC))
		 ? 0
		 : -1;
	if (!rc) {
		memcpy(&cnt, head + 8, sizeof(cnt));
		rc = cnt <= (1u << 20) && (uint64_t)st.st_size == 16 + cnt * sizeof(struct dump_kvma) ? 0 : -1;
	}
	struct dump_kvma *k = rc ? NULL : malloc((cnt ? cnt : 1) * sizeof(*k));
	size_t want = (size_t)cnt * sizeof(*k);
	if (!rc && (!k || pread(fd, k, want, 16) != (ssize_t)want))
		rc = -1;
	for (size_t i = 1; !rc && i < cnt; i++)
		rc = k[i].start >= k[i - 1].end ? 0 : -1; /* sorted, apart: else not ours */
	close(fd);
	if (rc) {
		free(k);
		return -1;
	}
	*out = k;
	*n = (size_t)cnt;
	return 0;
}
