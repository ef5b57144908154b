/* The shim's mapping change log (shim_table.h) read from a live process
 * under the shim (tests/targets/shim_exercise): the events of a known
 * sequence of mmap, munmap, mprotect and sbrk, in order and exactly; and a
 * burst longer than the ring is reported as lost, never as a short list. */
#include <sys/mman.h>

#include "test_shim_common.h"

static int head_of(pid_t pid, uint64_t addr, uint64_t *head)
{
	struct fp_shim_mapev *ev;
	size_t n;
	char why[160];
	fp_error err;
	/* from beyond any head: nothing is copied, the head comes back */
	int r = fp_shim_maplog_read(pid, addr, UINT64_MAX, &ev, &n, head, why, sizeof(why), &err);
	if (r < 0)
		fprintf(stderr, "reading the log's head: %s\n", err.msg);
	return r < 0 ? -1 : 0;
}

static bool is_ev(const struct fp_shim_mapev *e, uint32_t kind, uint64_t s, uint64_t end)
{
	return e->kind == kind && e->start == s && e->end == end;
}

int main(void)
{
	struct tgt t;
	char line[512];
	fp_error err;
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	struct fp_shim_copy c;
	CHECK(read_table(t.pid, &c) == 0); /* waits for the shim to start */
	uint64_t addr = c.addr, h0 = 0, h1 = 0;
	fp_shim_copy_free(&c);
	CHECK(head_of(t.pid, addr, &h0) == 0);

	CHECK(tgt_cmd(&t, "maplog 3", line, sizeof(line)) == 0);
	unsigned long two = 0, brk0 = 0;
	CHECKF(sscanf(line, "ok %lx %lx", &two, &brk0) == 2, "answer \"%s\"", line);
	struct fp_shim_mapev *ev = NULL;
	size_t n = 0;
	char why[160] = "";
	int r = fp_shim_maplog_read(t.pid, addr, h0, &ev, &n, &h1, why, sizeof(why), &err);
	CHECKF(r == 1, "read from %llu gave %d (%s)", (unsigned long long)h0, r, r < 0 ? err.msg : why);
	/* 3 x (map, unmap) of one page, the two pages, their mprotect, the
	 * break's page; libc may add nothing in between (its own calls are
	 * not wrapped) */
	CHECKF(r == 1 && n == 9 && h1 == h0 + 9, "%zu events, head %llu -> %llu", n, (unsigned long long)h0,
	       (unsigned long long)h1);
	if (r == 1 && n == 9) {
		for (int i = 0; i < 3; i++) {
			const struct fp_shim_mapev *m = &ev[2 * i], *u = &ev[2 * i + 1];
			CHECKF(m->kind == FP_ML_MAP && m->end == m->start + 4096 && (m->flags & MAP_ANONYMOUS) &&
				       !(m->flags & MAP_SHARED) && m->prot == (PROT_READ | PROT_WRITE),
			       "event %d: kind %u %llx-%llx flags %x prot %d", 2 * i, m->kind, (unsigned long long)m->start,
			       (unsigned long long)m->end, m->flags, m->prot);
			CHECK(is_ev(u, FP_ML_UNMAP, m->start, m->end));
		}
		CHECK(is_ev(&ev[6], FP_ML_MAP, two, two + 8192) && (ev[6].flags & MAP_ANONYMOUS));
		CHECK(is_ev(&ev[7], FP_ML_PROTECT, two, two + 4096) && ev[7].prot == PROT_READ);
		CHECKF(is_ev(&ev[8], FP_ML_MAP, brk0, brk0 + 4096) && (ev[8].flags & MAP_ANONYMOUS) &&
			       ev[8].prot == (PROT_READ | PROT_WRITE),
		       "brk event: kind %u %llx-%llx, break was %lx", ev[8].kind, (unsigned long long)ev[8].start,
		       (unsigned long long)ev[8].end, brk0);
		for (size_t i = 0; i < n; i++)
			CHECK(ev[i].gen == h0 + i + 1);
	}
	free(ev);

	/* more changes than the ring holds: lost, said so; the newest still
	 * readable */
	CHECK(tgt_cmd(&t, "maplog 5000", line, sizeof(line)) == 0);
	uint64_t h2 = 0;
	r = fp_shim_maplog_read(t.pid, addr, h1, &ev, &n, &h2, why, sizeof(why), &err);
	CHECKF(r == 0 && !ev && strstr(why, "more than the log holds"), "after a burst: %d (%s)", r,
	       r < 0 ? err.msg : why);
	CHECKF(h2 >= h1 + 10003, "head %llu after %llu", (unsigned long long)h2, (unsigned long long)h1);
	r = fp_shim_maplog_read(t.pid, addr, h2 - 3, &ev, &n, &h2, why, sizeof(why), &err);
	CHECKF(r == 1 && n == 3 && ev[2].kind == FP_ML_MAP && ev[1].kind == FP_ML_PROTECT, "the last 3: %d, %zu", r, n);
	free(ev);
	/* a head behind the one given: another process image */
	r = fp_shim_maplog_read(t.pid, addr, h2 + 1, &ev, &n, &h1, why, sizeof(why), &err);
	CHECKF(r == 0 && strstr(why, "behind"), "ahead of the head: %d (%s)", r, why);

	CHECK(tgt_finish(&t, true) == 0);
	return fp_test_done();
}
