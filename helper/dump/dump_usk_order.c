/* The order of files.img for CRIU's restore of fds in flight.
 *
 * CRIU 4.2 restores a socket pair's queues in the process of the pair's
 * "master" end, which is the end it finds later in files.img, but it
 * prepares the fds in flight of a message in the process of the end that
 * sent it (the receiver's peer). When the two differ the message cannot be
 * sent again ("Failed to send packet: Bad file descriptor") and the
 * restore fails, or brings the queues back empty. CRIU's own dumps write
 * a pair's end with fds in flight to receive before its peer; forkpoint
 * writes files.img in the same order: for each message with fds in flight,
 * the sender's end is moved after the receiving end when it was before.
 * forkpoint's native restore does not depend on the order. */
#include "dump/dump_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t pos_of(const size_t *perm, size_t n, size_t file)
{
	for (size_t i = 0; i < n; i++)
		if (perm[i] == file)
			return i;
	return n;
}

static size_t usk_file(const struct dump_ctx *c, uint32_t id, uint32_t ino)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		const cr_file *f = &c->files[i];
		if (f->type == CR_FD_UNIXSK && f->has_usk && (id ? f->id == id : f->usk.ino == ino))
			return i;
	}
	return c->nfiles;
}

int dump_usk_file_order(struct dump_ctx *c, cr_file **out, fp_error *err)
{
	*out = NULL;
	size_t n = c->nfiles, *perm = NULL;
	bool moved = false;
	for (size_t k = 0; k < c->nskq; k++) {
		if (!c->skq[k].n_scm)
			continue;
		size_t r = usk_file(c, c->skq[k].id_for, 0);
		if (r == n || !c->files[r].usk.peer)
			continue;
		size_t q = usk_file(c, 0, c->files[r].usk.peer);
		if (q == n || c->files[q].usk.peer != c->files[r].usk.ino)
			continue; /* not a pair: CRIU chooses no master */
		if (!perm) {
			perm = malloc(n * sizeof(*perm));
			if (!perm)
				return fp_fail(err, ENOMEM, "out of memory");
			for (size_t i = 0; i < n; i++)
				perm[i] = i;
		}
		size_t pq = pos_of(perm, n, q), pr = pos_of(perm, n, r);
		if (pq > pr)
			continue;
		memmove(&perm[pq], &perm[pq + 1], (pr - pq) * sizeof(*perm));
		perm[pr] = q;
		moved = true;
	}
	if (moved) {
		*out = malloc(n * sizeof(**out));
		if (!*out) {
			free(perm);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < n; i++)
			(*out)[i] = c->files[perm[i]];
	}
	free(perm);
	return 0;
}
