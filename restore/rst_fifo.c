/* Named FIFOs. Opening one blocks until its other side is open too (or,
 * with O_NONBLOCK, fails with ENXIO for a writer without a reader), so the
 * target first opens the FIFO read-write (which never blocks on Linux), a
 * keeper that holds both sides while the real descriptor is opened with
 * O_NONBLOCK and then given its own flags. The bytes the FIFO held go back
 * in through the keeper, once per FIFO: from the first of the process's
 * descriptors on it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "rst_int.h"

static const cr_pipe_data *fifo_data(const rst_image *im, uint32_t pipe_id)
{
	for (size_t i = 0; i < im->nfifod; i++)
		if (im->fifod[i].pipe_id == pipe_id)
			return &im->fifod[i];
	return NULL;
}

/* True when f is the first FIFO entry on its FIFO in p's fd table. */
static bool first_on_fifo(const rst_image *im, const cr_file *f)
{
	for (size_t k = 0; k < im->nfdi; k++) {
		const cr_file *c = rst_file(im, im->fdi[k].id);
		if (c && c->type == CR_FD_FIFO && c->fifo.pipe_id == f->fifo.pipe_id)
			return c == f;
	}
	return false;
}

int rst_fifo_open(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	rst_image *im = p->im;
	const cr_file *reg = f->has_fifo && f->fifo.has_regf_id ? rst_file(im, f->fifo.regf_id) : NULL;
	if (!reg || !reg->has_reg || !reg->reg.name)
		return fp_fail(err, EINVAL, "FIFO entry %u names no path (regf_id); the image is corrupt", f->id);
	const char *path = reg->reg.name;
	uint32_t flags = reg->reg.flags & ~(uint32_t)O_CLOEXEC;
	char what[4200];
	int keeper;
	snprintf(what, sizeof(what), "opening the FIFO %s", path);
	if (rst_open_now(p, what, path, O_RDWR | O_CLOEXEC, &keeper, err))
		return -1;
	int rc = rst_open_now(p, what, path, flags | O_NONBLOCK | O_CLOEXEC, fd, err);
	if (!rc && !(flags & O_NONBLOCK))
		rc = rst_q(p, p->pid, "fcntl(F_SETFL) on a FIFO", RST_MUST, SYS_fcntl, (uint64_t)*fd, F_SETFL,
			   flags & ~(uint32_t)O_ACCMODE, 0, 0, 0, NULL, err);
	if (!rc && first_on_fifo(im, f))
		rc = rst_pipe_refill(p, keeper, fifo_data(im, f->fifo.pipe_id), err);
	if (rst_q(p, p->pid, "close", RST_MUST, SYS_close, (uint64_t)keeper, 0, 0, 0, 0, 0, NULL, rc ? NULL : err))
		rc = -1;
	return rst_flush(p, rc ? NULL : err) || rc ? -1 : 0;
}
