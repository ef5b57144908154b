/* A TCP segment from a restored connection's peer, made here: the FIN the
 * peer had sent (or its ACK of ours) when the connection was dumped while
 * being closed, or the urgent byte (MSG_OOB) the process had not read. TCP repair mode puts back queues and sequence numbers but
 * has no call for a FIN or an urgent byte received, so the restorer hands the socket the
 * segment that carried it, through a raw socket, from the peer's address.
 *
 * The segment carries the network lock's mark (fp_netlock.h), so the rules
 * that hold the connection let it through; the socket's answer to it is
 * dropped by them, as the dump's would be (the peer already had it). */
#include "restore/rst_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_netlock.h"

static uint32_t sum16(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		s += (uint32_t)b[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

/* An IPv6 address that carries an IPv4 one (::ffff:a.b.c.d). */
static bool v4_mapped(const uint32_t *a)
{
	return !a[0] && !a[1] && a[2] == htonl(0xffff);
}

int rst_tcp_segment(const fp_tcp_conn *c, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window, uint8_t urgent,
		    fp_error *err)
{
	uint8_t pkt[sizeof(struct ip6_hdr) + sizeof(struct tcphdr) + 1];
	memset(pkt, 0, sizeof(pkt));
	bool v4 = c->family == AF_INET || v4_mapped(c->src);
	const uint32_t *from = c->dst, *to = c->src; /* the peer's segment */
	size_t iplen = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	struct tcphdr *th = (struct tcphdr *)(pkt + iplen);
	th->source = htons(c->dport), th->dest = htons(c->sport);
	th->seq = htonl(seq), th->ack_seq = htonl(ack);
	th->doff = sizeof(*th) / 4;
	th->fin = !!(flags & TH_FIN), th->ack = !!(flags & TH_ACK);
	th->window = htons(window);
	uint32_t s = 0, plen = sizeof(*th);
	if (flags & TH_URG) {
		/* one byte, urgent: the pointer is the byte after it */
		th->urg = 1, th->urg_ptr = htons(1);
		pkt[iplen + plen++] = urgent;
	}
	struct sockaddr_storage dst;
	memset(&dst, 0, sizeof(dst));
	socklen_t dlen;
	if (v4) {
		uint32_t f4 = c->family == AF_INET ? from[0] : from[3], t4 = c->family == AF_INET ? to[0] : to[3];
		struct iphdr *ip = (struct iphdr *)pkt;
		ip->version = 4, ip->ihl = 5, ip->ttl = 64, ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons((uint16_t)(iplen + plen));
		ip->saddr = f4, ip->daddr = t4;
		s = sum16(&ip->saddr, 8, s);
		struct sockaddr_in *d4 = (struct sockaddr_in *)&dst;
		d4->sin_family = AF_INET, d4->sin_addr.s_addr = t4;
		dlen = sizeof(*d4);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)pkt;
		ip->ip6_flow = htonl(6u << 28);
		ip->ip6_plen = htons((uint16_t)plen);
		ip->ip6_nxt = IPPROTO_TCP, ip->ip6_hlim = 64;
		memcpy(&ip->ip6_src, from, 16);
		memcpy(&ip->ip6_dst, to, 16);
		s = sum16(&ip->ip6_src, 32, s);
		struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;
		d6->sin6_family = AF_INET6;
		memcpy(&d6->sin6_addr, to, 16);
		dlen = sizeof(*d6);
	}
	s += IPPROTO_TCP + plen;
	th->check = fold(sum16(th, plen, s));
	/* IPPROTO_RAW: the header is ours, in both families */
	int r = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r < 0)
		return fp_fail(err, errno, "cannot open a raw socket to give TCP connection %u -> %u its peer's %s: %s%s",
			       c->sport, c->dport, flags & TH_URG ? "urgent byte" : flags & TH_FIN ? "FIN" : "ACK", strerror(errno),
			       errno == EPERM ? " (it needs CAP_NET_RAW: restore as root)" : "");
	int mark = FP_NETLOCK_MARK;
	ssize_t n = -1;
	if (setsockopt(r, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0)
		n = sendto(r, pkt, iplen + plen, 0, (struct sockaddr *)&dst, dlen);
	int e = errno;
	close(r);
	if (n != (ssize_t)(iplen + plen))
		return fp_fail(err, n < 0 ? e : EIO, "cannot send TCP connection %u -> %u its peer's %s: %s", c->sport,
			       c->dport, flags & TH_URG ? "urgent byte" : flags & TH_FIN ? "FIN" : "ACK", n < 0 ? strerror(e) : "short write");
	return 0;
}
