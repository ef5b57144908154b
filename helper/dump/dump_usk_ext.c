/* Unix sockets whose peer is outside the dumped tree (`--ext-unix-sk`,
 * CRIU's meaning).
 *
 * A datagram socket connected to a named socket that another program
 * binds (a program's socket to syslog's /dev/log) can come back: the
 * restore connects it to the name again. So, as CRIU's dump does, the peer
 * is written as an entry of its own, with no fd: its inode, type datagram,
 * state listening, its name, and the flag USK_EXTERN; the socket names it
 * as its peer as usual. One entry per peer, however many sockets of the
 * tree connect to it.
 *
 * Anything else is refused, with the reason: the flag not given; half of
 * a stream or seqpacket connection (its other end, and the bytes in
 * flight, are in another program: neither tool can make it again, CRIU
 * refuses it too); a peer without a name, which nothing could connect to. */
#include "dump/dump_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TCP_STATE_LISTEN 10

static const char *type_name(uint32_t type)
{
	return type == SOCK_STREAM ? "stream" : type == SOCK_SEQPACKET ? "seqpacket" : type == SOCK_DGRAM ? "datagram" : "unix";
}

int dump_usk_external(struct dump_ctx *c, size_t i, fp_error *err)
{
	const cr_unix_sk *u = &c->files[i].usk;
	const struct dump_fkey *k = &c->fkeys[i];
	uint32_t peer = u->peer;
	if (!c->o->ext_unix_sk)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "unix socket fd %d of %d is connected to socket %u, which no process of the dumped tree "
				    "holds (a peer outside the tree, such as a system service): dump the whole tree of "
				    "programs that talk over it, or dump with --ext-unix-sk to connect it to that peer "
				    "again on restore (datagram sockets connected to a named socket only, as with CRIU)",
				    k->fd, k->pid, peer);
	struct usk_diag d;
	int r = dump_usk_query(peer, &d);
	if (r <= 0)
		return fp_fail(err, r < 0 ? errno : ENOENT,
			       "unix socket fd %d of %d is connected to socket %u outside the tree, which sock_diag cannot "
			       "find%s%s (closed meanwhile, or in another network namespace?)",
			       k->fd, k->pid, peer, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
	if (d.type != SOCK_DGRAM)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "unix socket fd %d of %d is one end of a %s connection whose other end (socket %u) is "
				    "held by a process outside the tree: half a connection cannot be made again, even with "
				    "--ext-unix-sk (CRIU refuses it too); dump the whole tree of programs on both ends, or "
				    "close the connection first",
				    k->fd, k->pid, type_name(d.type), peer);
	if (!d.name_len)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "unix socket fd %d of %d is connected to datagram socket %u outside the tree, which has "
				    "no name to connect to again on restore (a socketpair's end given away?); dump the "
				    "process that holds it too",
				    k->fd, k->pid, peer);
	if (dump_usk_by_ino(c, peer))
		return 0; /* another socket of the tree connects to it too */
	int fd = k->fd;
	pid_t pid = k->pid;
	struct dump_fkey key = { .kind = 5, .ino = peer, .pid = pid, .fd = -1 };
	cr_file *f = dump_new_file(c, &key, err);
	if (!f)
		return -1;
	f->type = CR_FD_UNIXSK;
	f->has_usk = true;
	cr_unix_sk *e = &f->usk;
	e->id = f->id, e->ino = peer, e->type = SOCK_DGRAM, e->state = TCP_STATE_LISTEN;
	e->uflags = CR_USK_EXTERN;
	e->name = malloc(d.name_len + 1);
	if (!e->name)
		return fp_fail(err, ENOMEM, "out of memory");
	memcpy(e->name, d.name, d.name_len);
	e->name[d.name_len] = 0;
	e->name_len = d.name_len;
	dlog(c, "%d fd %d: unix socket connected to %s%.*s outside the tree (socket %u): written as external entry %u",
	     pid, fd, d.name[0] ? "" : "@", (int)(d.name[0] ? d.name_len : d.name_len - 1), d.name + !d.name[0], peer,
	     e->id);
	return 0;
}
