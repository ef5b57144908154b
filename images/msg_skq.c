/* Tables for queued socket data: sk_packet_entry, the entries of
 * sk-queues.img, each followed by `length` bytes of the message
 * (criu-image-format.md; field numbers from CRIU's sk-packet.proto:
 * id_for 1, length 2, scm 4, ucred 128; scm_entry type 1, rights 2;
 * sk_ucred_entry uid 1, gid 2, pid 3). Field 3 (the sender's address) is
 * reserved by CRIU and never written. */
#include <stdlib.h>

#include "images/msg_table.h"

#define T cr_scm
static const pb_fdesc scm_f[] = {
	F_REQ(1, T, U32, type), F_REP_DYN(2, T, U32, rights),
};
static DESC(scm_desc, "scm_entry", T, scm_f);
#undef T

#define T cr_sk_ucred
static const pb_fdesc ucred_f[] = {
	F_REQ(1, T, U32, uid), F_REQ(2, T, U32, gid), F_REQ(3, T, U32, pid),
};
static DESC(ucred_desc, "sk_ucred_entry", T, ucred_f);
#undef T

#define T cr_sk_packet
static const pb_fdesc skpkt_f[] = {
	F_REQ(1, T, U32, id_for), F_REQ(2, T, U32, length), F_REPMSG_DYN(4, T, scm, scm_desc),
	F_MSG_OPT(128, T, ucred, ucred_desc),
};
DESC(cr_sk_packet_desc, "sk_packet_entry", T, skpkt_f);
#undef T

void cr_sk_packet_free(cr_sk_packet *p)
{
	if (!p)
		return;
	free(p->data);
	p->data = NULL;
	pb_free(&cr_sk_packet_desc, p);
}
