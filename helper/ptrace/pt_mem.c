/* Remote memory in large vectors: process_vm_readv first, /proc/PID/mem for
 * whatever it refuses. */
#include "pt_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_BATCH 1024 /* UIO_MAXIOV */

static int open_mem(pid_t pid, int *fd, int flags, fp_error *err)
{
	if (*fd >= 0)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	return 0;
}

static int mem_fail(fp_error *err, int e, pid_t pid, const char *what, uint64_t addr, size_t len)
{
	if (e == ESRCH)
		return fp_fail(err, e, "cannot %s memory of %d: the process exited", what, pid);
	return fp_fail(err, e,
		       "cannot %s %zu bytes of %d's memory at 0x%llx: %s; the page is not mapped (any more) or is I/O memory: "
		       "was the mapping changed while the process ran?",
		       what, len, pid, (unsigned long long)addr, strerror(e ? e : EIO));
}

/* Reads the page of r at offset *off (up to the next page boundary)
 * through /proc/PID/mem, which also reads PROT_NONE pages; the caller goes
 * back to process_vm_readv after it. */
static int read_fallback(pid_t pid, int *memfd, const fp_mem_range *r, size_t *off, fp_error *err)
{
	if (open_mem(pid, memfd, O_RDONLY, err))
		return -1;
	uint64_t at = r->addr + *off;
	size_t want = 4096 - (size_t)(at & 4095);
	if (want > r->len - *off)
		want = r->len - *off;
	while (want > 0) {
		ssize_t got = pread(*memfd, (char *)r->local + *off, want, (off_t)(r->addr + *off));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return mem_fail(err, got < 0 ? errno : EIO, pid, "read", r->addr + *off, r->len - *off);
		*off += (size_t)got;
		want -= (size_t)got;
	}
	return 0;
}

static int read_ranges(pid_t pid, int *memfd, const fp_mem_range *r, size_t n, fp_error *err)
{
	struct iovec liov[IOV_BATCH], riov[IOV_BATCH]; /* 32 KiB of stack */
	size_t i = 0, off = 0;
	while (i < n) {
		if (off >= r[i].len) {
			i++;
			off = 0;
			continue;
		}
		size_t k = 0, total = 0;
		for (size_t j = i; j < n && k < IOV_BATCH; j++) {
			size_t o = j == i ? off : 0;
			if (r[j].len <= o)
				continue;
			liov[k] = (struct iovec){ (char *)r[j].local + o, r[j].len - o };
			riov[k] = (struct iovec){ (void *)(uintptr_t)(r[j].addr + o), r[j].len - o };
			total += r[j].len - o;
			k++;
		}
		ssize_t got = process_vm_readv(pid, liov, k, riov, k, 0);
		if (got < 0) {
			if (errno == ESRCH || errno == EPERM || errno == ENOMEM)
				return errno == EPERM ? fp_fail(err, EPERM, "not permitted to read the memory of %d (ptrace access mode check)", pid)
						      : mem_fail(err, errno, pid, "read", r[i].addr + off, r[i].len - off);
			got = 0; /* EFAULT at the very first byte */
		}
		for (size_t g = (size_t)got; g > 0;) {
			size_t left = r[i].len - off;
			if (g >= left) {
				g -= left;
				i++;
				off = 0;
			} else {
				off += g;
				g = 0;
			}
		}
		if ((size_t)got < total) {
			while (i < n && off >= r[i].len) {
				i++;
				off = 0;
			}
			if (i < n && read_fallback(pid, memfd, &r[i], &off, err))
				return -1;
		}
	}
	return 0;
}

int fp_mem_read_ranges(pid_t pid, const fp_mem_range *r, size_t n, fp_error *err)
{
	int memfd = -1;
	int rc = read_ranges(pid, &memfd, r, n, err);
	if (memfd >= 0)
		close(memfd);
	return rc;
}

int fp_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len, fp_error *err)
{
	fp_mem_range r = { addr, len, buf };
	return fp_mem_read_ranges(pid, &r, 1, err);
}

int fp_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len, fp_error *err)
{
	size_t off = 0;
	while (off < len) {
		struct iovec l = { (char *)buf + off, len - off };
		struct iovec rm = { (void *)(uintptr_t)(addr + off), len - off };
		ssize_t got = process_vm_writev(pid, &l, 1, &rm, 1, 0);
		if (got > 0) {
			off += (size_t)got;
			continue;
		}
		if (got < 0 && errno != EFAULT)
			return mem_fail(err, errno, pid, "write", addr + off, len - off);
		/* Read-only or protected page: write through /proc/PID/mem. */
		int fd = -1;
		if (open_mem(pid, &fd, O_RDWR, err))
			return -1;
		while (off < len) {
			ssize_t w = pwrite(fd, (const char *)buf + off, len - off, (off_t)(addr + off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int e = w < 0 ? errno : EIO;
				close(fd);
				return mem_fail(err, e, pid, "write", addr + off, len - off);
			}
			off += (size_t)w;
		}
		close(fd);
	}
	return 0;
}

int fp_mem_reader_open(fp_mem_reader *r, pid_t pid, size_t chunk, fp_error *err)
{
	r->pid = pid;
	r->mem_fd = -1;
	r->cap = chunk ? chunk : 4u << 20;
	r->buf = mmap(NULL, r->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->buf == MAP_FAILED) {
		r->buf = NULL;
		return fp_fail(err, errno, "cannot allocate a %zu-byte read buffer: %s", r->cap, strerror(errno));
	}
	return 0;
}

void fp_mem_reader_close(fp_mem_reader *r)
{
	if (r->buf)
		munmap(r->buf, r->cap);
	if (r->mem_fd >= 0)
		close(r->mem_fd);
	r->buf = NULL;
	r->mem_fd = -1;
}

int fp_mem_stream(fp_mem_reader *r, const fp_mem_span *s, size_t n, fp_mem_sink sink, void *ctx, fp_error *err)
{
	fp_mem_range batch[IOV_BATCH]; /* 24 KiB of stack */
	size_t i = 0, off = 0;
	while (i < n) {
		size_t k = 0, fill = 0;
		while (i < n && k < IOV_BATCH && fill < r->cap) {
			size_t take = s[i].len - off;
			if (take > r->cap - fill)
				take = r->cap - fill;
			if (take) {
				batch[k++] = (fp_mem_range){ s[i].addr + off, take, r->buf + fill };
				fill += take;
			}
			off += take;
			if (off >= s[i].len) {
				i++;
				off = 0;
			}
		}
		if (!fill)
			continue;
		if (read_ranges(r->pid, &r->mem_fd, batch, k, err))
			return -1;
		if (sink(ctx, r->buf, fill, err))
			return -1;
	}
	return 0;
}
