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
 * CRIU resolves a socket's peer when it reads the socket, among the
 * sockets read before it: so an external peer's entry (--ext-unix-sk),
 * added once every process was read, goes before the first socket that
 * names it, as CRIU's dump writes it. forkpoint's native restore does not
 * depend on the order. */
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

/* Moves the file at position `from` of perm to position `to` (< from). */
static void move_before(size_t *perm, size_t to, size_t from)
{
	size_t f = perm[from];
	memmove(&perm[to + 1], &perm[to], (from - to) * sizeof(*perm));
	perm[to] = f;
}

int dump_usk_file_order(struct dump_ctx *c, cr_file **out, fp_error *err)
{
	*out = NULL;
	size_t n = c->nfiles, *perm = malloc((n ? n : 1) * sizeof(*perm));
	bool moved = false;
	if (!perm)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t x = 0; x < n; x++) {
		const cr_file *e = &c->files[x];
		if (e->type != CR_FD_UNIXSK || !e->has_usk || !(e->usk.uflags & CR_USK_EXTERN))
			continue;
		size_t px = pos_of(perm, n, x), first = px;
		for (size_t p = 0; p < px; p++) {
			const cr_file *f = &c->files[perm[p]];
			if (f->type == CR_FD_UNIXSK && f->has_usk && f->usk.peer == e->usk.ino) {
				first = p;
				break;
			}
		}
		if (first < px) {
			move_before(perm, first, px);
			moved = true;
		}
	}
	for (size_t k = 0; k < c->nskq; k++) {
		if (!c->skq[k].n_scm)
			continue;
		size_t r = usk_file(c, c->skq[k].id_for, 0);
		if (r == n || !c->files[r].usk.peer)
			continue;
		size_t q = usk_file(c, 0, c->files[r].usk.peer);
		if (q == n || c->files[q].usk.peer != c->files[r].usk.ino)
			continue; /* not a pair: CRIU chooses no master */
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
