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

/* tcp-stream-<ino>.img (CRIU's tcp_stream_entry): an established TCP
 * connection's state as TCP repair mode reads and sets it. The sequence
 * numbers are those at the END of each queue (rcv_nxt, write_seq); the
 * queues' bytes follow the entry in the file (inq, then outq), not part of
 * the message. unsq_len of outq were never sent. */
#define CR_TCPI_OPT_TIMESTAMPS 1u
#define CR_TCPI_OPT_SACK 2u
#define CR_TCPI_OPT_WSCALE 4u
typedef struct cr_tcp_stream { /* tcp_stream_entry */
	uint32_t inq_len, inq_seq, outq_len, outq_seq;
	uint32_t opt_mask; /* CR_TCPI_OPT_* */
	uint32_t snd_wscale, mss_clamp;
	bool has_rcv_wscale;
	uint32_t rcv_wscale;
	bool has_timestamp;
	uint32_t timestamp;
	bool has_cork, cork, has_nodelay, nodelay;
	bool has_unsq_len;
	uint32_t unsq_len;
	bool has_snd_wl1, has_snd_wnd, has_max_window, has_rcv_wnd, has_rcv_wup;
	uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
	bool has_fp_urg_off; /* forkpoint's: an urgent byte (MSG_OOB) at inq[fp_urg_off] */
	uint32_t fp_urg_off;
	bool has_fp_snd_urg_off; /* forkpoint's: an urgent byte the process sent, at outq[fp_snd_urg_off] */
	uint32_t fp_snd_urg_off;
	uint8_t *inq, *outq; /* not part of the message */
} cr_tcp_stream;

extern const pb_mdesc cr_tcp_stream_desc;
void cr_tcp_stream_free(cr_tcp_stream *t);

#endif
