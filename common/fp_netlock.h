/* The network lock of established TCP connections between a dump and its
 * restore (`--tcp-established`).
 *
 * A dumped connection has no socket from the moment the dumped process dies
 * until the restored one binds again; a segment the peer sends into that
 * gap would be answered by a reset, and one that arrives while the queues
 * are read would be acknowledged behind the dumper's back. So its packets
 * are dropped by netfilter, both ways, from before its queues are read
 * until it is restored (or let go by a --leave-running dump): the peer
 * sees a silent path and retransmits.
 *
 * The rules are exactly the ones `criu dump --tcp-established` inserts with
 * its default (iptables) lock and `criu restore` deletes (CRIU 4.2.1), so
 * either tool releases a lock the other took. A dump that is never
 * restored leaves its rules behind, as CRIU's do (`iptables -S` shows them:
 * DROP rules with `! --mark 0xc114`); forkpoint records which snapshot
 * they wait for (fp_netlock_record), and the next dump deletes those whose
 * snapshot is gone (fp_netlock_sweep). */
#ifndef FP_NETLOCK_H
#define FP_NETLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"

/* The mark a packet that must pass the lock carries (SO_MARK): the rules
 * drop all but it, as CRIU's do. */
#define FP_NETLOCK_MARK 0xC114

/* One connection as seen from one of its ends: src is the local address,
 * dst the peer's, both in network order (1 word for IPv4, 4 for IPv6). */
typedef struct fp_tcp_conn {
	int family; /* AF_INET or AF_INET6 */
	uint32_t src[4], dst[4];
	uint16_t sport, dport;
} fp_tcp_conn;

/* Inserts (lock) or deletes (!lock) the rules of n connections, with one
 * run of iptables-restore (ip6tables-restore) per family. A delete that
 * fails as a batch (a rule already gone) is done rule by rule, and only a
 * rule still present counts as a failure. */
int fp_netlock(const fp_tcp_conn *c, size_t n, bool lock, fp_error *err);

/* How many of the 2*n rules of n connections are in place (iptables -C). */
size_t fp_netlock_count(const fp_tcp_conn *c, size_t n);

/* fp_netlock_reg.c: records that the lock of n connections waits for the
 * restore of the snapshot directory `snapshot` (a dump that killed its
 * tree). */
int fp_netlock_record(const char *snapshot, const fp_tcp_conn *c, size_t n, fp_error *err);
/* Deletes the rules of every recorded lock whose snapshot is gone (deleted,
 * or replaced by another directory of that name), and forgets records
 * whose rules are all gone (restored). Returns how many locks it lifted;
 * their snapshots' names go into names, comma-separated, and the number of
 * their connections into *nconns. Never fails: what it cannot do stays for
 * the next sweep. */
int fp_netlock_sweep(char *names, size_t len, size_t *nconns);

#endif
