/* Remote memory: one big read, many scattered ranges, the chunked stream
 * (crossing a PROT_NONE page, which process_vm_readv refuses and
 * /proc/PID/mem reads), writes, and a clear error for an unmapped address. */
#include "ptrace/pt_mem.h"
#include "test_ptrace_util.h"

#include <stdint.h>
#include <sys/mman.h>

#define BIG (64u << 20)
#define PAGE 4096u

static uint64_t word_at(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ULL + 7;
}

struct cmp {
	uint64_t next; /* index of the next expected word */
	int bad;
	size_t bytes;
};

static int sink(void *ctx, const void *data, size_t len, fp_error *err)
{
	(void)err;
	struct cmp *c = ctx;
	const uint64_t *w = data;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != word_at(c->next++))
			c->bad++;
	c->bytes += len;
	return 0;
}

int main(void)
{
	int to[2], from[2];
	CHECK(pipe(to) == 0 && pipe(from) == 0);
	pid_t child = fork();
	if (child == 0) {
		close(to[1]);
		close(from[0]);
		uint64_t *m = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (uint64_t i = 0; i < BIG / 8; i++)
			m[i] = word_at(i);
		mprotect((char *)m + 8 * PAGE, PAGE, PROT_NONE);
		void *hole = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(hole, PAGE);
		uint64_t a[2] = { (uint64_t)(uintptr_t)m, (uint64_t)(uintptr_t)hole };
		if (write(from[1], a, 16) != 16)
			_exit(1);
		char b;
		while (read(to[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(to[0]);
	close(from[1]);
	uint64_t addrs[2] = { 0, 0 };
	CHECK(read(from[0], addrs, 16) == 16);
	uint64_t base = addrs[0], hole = addrs[1];
	fp_error err;
	fp_error_clear(&err);

	/* One big read into a pre-faulted buffer. */
	uint64_t *buf = malloc(BIG);
	memset(buf, 0, BIG);
	double t0 = pt_now_us();
	CHECKF(fp_mem_read(child, base, buf, BIG, &err) == 0, "%s", err.msg);
	double dt = pt_now_us() - t0;
	int bad = 0;
	for (uint64_t i = 0; i < BIG / 8; i++)
		bad += buf[i] != word_at(i);
	CHECK(bad == 0);
	printf("fp_mem_read 64 MiB (one PROT_NONE page via /proc/PID/mem): %.2f GB/s\n", BIG / dt / 1e3);
	t0 = pt_now_us();
	CHECK(fp_mem_read(child, base, buf, BIG, &err) == 0);
	printf("again, warm: %.2f GB/s\n", BIG / (pt_now_us() - t0) / 1e3);

	/* Scattered pages, each to its own place. */
	enum { N = 3000 };
	fp_mem_range *r = calloc(N, sizeof(*r));
	char *dst = malloc((size_t)N * PAGE);
	for (int i = 0; i < N; i++) {
		uint64_t page = ((uint64_t)i * 7919) % (BIG / PAGE);
		r[i] = (fp_mem_range){ base + page * PAGE, PAGE, dst + (size_t)i * PAGE };
	}
	CHECKF(fp_mem_read_ranges(child, r, N, &err) == 0, "%s", err.msg);
	bad = 0;
	for (int i = 0; i < N; i++) {
		uint64_t first = (r[i].addr - base) / 8;
		const uint64_t *w = r[i].local;
		for (unsigned k = 0; k < PAGE / 8; k++)
			bad += w[k] != word_at(first + k);
	}
	CHECK(bad == 0);

	/* The stream, 1 MiB chunks, spans of odd sizes. */
	fp_mem_reader rd;
	CHECK(fp_mem_reader_open(&rd, child, 1u << 20, &err) == 0);
	fp_mem_span spans[3] = { { base, 5 * PAGE + 8 }, { base + 5 * PAGE + 8, 8 * 1024 * 1024 }, { 0, 0 } };
	spans[2].addr = spans[1].addr + spans[1].len;
	spans[2].len = BIG - (spans[2].addr - base);
	struct cmp c = { 0, 0, 0 };
	t0 = pt_now_us();
	CHECKF(fp_mem_stream(&rd, spans, 3, sink, &c, &err) == 0, "%s", err.msg);
	dt = pt_now_us() - t0;
	CHECK(c.bad == 0 && c.bytes == BIG);
	printf("fp_mem_stream 64 MiB through 1 MiB chunks (incl. compare): %.2f GB/s\n", BIG / dt / 1e3);
	fp_mem_reader_close(&rd);

	/* Write, read back. */
	uint64_t v = 0x1234567890abcdefULL, back = 0;
	CHECK(fp_mem_write(child, base + 123 * 8, &v, 8, &err) == 0);
	CHECK(fp_mem_read(child, base + 123 * 8, &back, 8, &err) == 0 && back == v);
	/* Through the PROT_NONE page too (the /proc/PID/mem path). */
	CHECK(fp_mem_write(child, base + 8 * PAGE + 16, &v, 8, &err) == 0);
	CHECK(fp_mem_read(child, base + 8 * PAGE + 16, &back, 8, &err) == 0 && back == v);

	/* An unmapped address: an error that names it. */
	char want[64];
	snprintf(want, sizeof(want), "0x%llx", (unsigned long long)hole);
	CHECK(fp_mem_read(child, hole, &back, 8, &err) == -1);
	CHECKF(strstr(err.msg, want) != NULL, "%s", err.msg);
	printf("unmapped read: %s\n", err.msg);

	close(to[1]);
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(fp_mem_read(child, base, &back, 8, &err) == -1 && err.errnum == ESRCH);
	free(buf);
	free(r);
	free(dst);
	return fp_test_done();
}
