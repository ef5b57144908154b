/* sk-queues.img's messages (CRIU's sk-packet.proto), kept apart from
 * criu_msgs.h only to keep each header small. */
#ifndef FP_CRIU_MSGS_SKQ_H
#define FP_CRIU_MSGS_SKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "images/pb.h"

/* sk-queues.img: the messages waiting in a socket's receive queue, oldest
 * first; each entry is followed by `length` bytes (data, not part of the
 * message). */
typedef struct cr_scm { /* scm_entry: control data of one message */
	uint32_t type;    /* SCM_RIGHTS 1 */
	uint32_t *rights; /* file entry ids of the fds in flight */
	size_t n_rights;
} cr_scm;

typedef struct cr_sk_ucred { /* sk_ucred_entry */
	uint32_t uid, gid, pid;
} cr_sk_ucred;

typedef struct cr_sk_packet { /* sk_packet_entry */
	uint32_t id_for; /* the file entry id of the socket that will read it */
	uint32_t length;
	cr_scm *scm;
	size_t n_scm;
	bool has_ucred;
	cr_sk_ucred ucred;
	uint8_t *data;   /* not part of the message */
} cr_sk_packet;

extern const pb_mdesc cr_sk_packet_desc;
void cr_sk_packet_free(cr_sk_packet *p);

#endif
