/* A signal handler that changes an fd while its thread holds a slot must
 * not wait for another thread's slot (shim_exercise "nested": the other
 * thread is blocked inside fclose, holding it): waiting could close a cycle
 * with a dup2 that holds one fd and waits for the handler thread's. The
 * change goes unrecorded and is counted, and the table's reader then takes
 * no fd from it (every fd is read from /proc), while the table and /proc
 * say so. */
#include "test_shim_common.h"

int main(void)
{
	struct tgt t;
	char line[512];
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	CHECK(!strncmp(line, "ready", 5));
	CHECK(tgt_send(&t, "nested") == 0);
	CHECK(tgt_line(&t, line, sizeof(line), 60000) == 0);
	CHECKF(!strcmp(line, "ok"), "nested: \"%s\"", line);

	struct fp_shim_copy c;
	CHECK(read_table(t.pid, &c) == 0);
	CHECKF(c.t->fd_unrecorded >= 1, "the table counts %u unrecorded changes", c.t->fd_unrecorded);
	CHECKF(c.t->fd_hwm == 0, "the reader took %u fd slots from a table that missed a change", c.t->fd_hwm);
	uint32_t hwm = 1;
	int fds[1] = { 0 };
	struct fp_shim_fd_head h;
	fp_error err;
	CHECK(fp_shim_read_heads(t.pid, c.addr, fds, 1, &h, &hwm, &err) == 1);
	CHECKF(hwm == 0 && (h.seq & 1), "the heads of a table that missed a change: hwm %u, seq %u", hwm, h.seq);
	fp_shim_copy_free(&c);
	CHECK(tgt_finish(&t, true) == 0);
	return fp_test_done();
}
