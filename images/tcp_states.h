/* The TCP states a connected socket's entry names (inet_sk_entry.state:
 * the kernel's numbering, as CRIU writes it), and what each says about the
 * two FINs, for the dump and the restore of connections being closed.
 *
 * A FIN takes one sequence number but no byte of a queue: an image's
 * inq_seq and outq_seq are the kernel's (they count the FIN), while its
 * outq_len and unsq_len count data only (as CRIU writes them). */
#ifndef FP_TCP_STATES_H
#define FP_TCP_STATES_H

#include <stdbool.h>
#include <stdint.h>

enum {
	FP_TCP_ESTABLISHED = 1,
	FP_TCP_FIN_WAIT1 = 4,
	FP_TCP_FIN_WAIT2 = 5,
	FP_TCP_TIME_WAIT = 6,
	FP_TCP_CLOSE = 7,
	FP_TCP_CLOSE_WAIT = 8,
	FP_TCP_LAST_ACK = 9,
	FP_TCP_LISTEN = 10,
	FP_TCP_CLOSING = 11,
};

#define FP_TCPF(s) (1u << (s))
/* connected: saved in repair mode, with a tcp-stream image */
#define FP_TCPF_CONNECTED                                                                                       \
	(FP_TCPF(FP_TCP_ESTABLISHED) | FP_TCPF(FP_TCP_FIN_WAIT1) | FP_TCPF(FP_TCP_FIN_WAIT2) |                    \
	 FP_TCPF(FP_TCP_CLOSE_WAIT) | FP_TCPF(FP_TCP_LAST_ACK) | FP_TCPF(FP_TCP_CLOSING))
/* this end has shut down its sending side: its FIN is in the send queue */
#define FP_TCPF_FIN_SENT                                                                                        \
	(FP_TCPF(FP_TCP_FIN_WAIT1) | FP_TCPF(FP_TCP_FIN_WAIT2) | FP_TCPF(FP_TCP_CLOSING) | FP_TCPF(FP_TCP_LAST_ACK))
/* ... and the peer has acknowledged it */
#define FP_TCPF_FIN_ACKED FP_TCPF(FP_TCP_FIN_WAIT2)
/* the peer has shut down its sending side: its FIN ends the receive queue */
#define FP_TCPF_FIN_RCVD (FP_TCPF(FP_TCP_CLOSE_WAIT) | FP_TCPF(FP_TCP_LAST_ACK) | FP_TCPF(FP_TCP_CLOSING))

static inline bool fp_tcp_state_has(uint32_t state, uint32_t mask)
{
	return state < 32 && (FP_TCPF(state) & mask);
}

static inline const char *fp_tcp_state_name(uint32_t s)
{
	static const char *const names[] = { "?",	  "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
					     "TIME_WAIT", "CLOSE",	 "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING" };
	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

#endif
