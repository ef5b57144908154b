/* The urgent pointer of TCP sockets' send queues (snd_up): where an
 * urgent byte a process sent (MSG_OOB) waits to be sent or acknowledged.
 *
 * No socket option, ioctl or sock_diag attribute tells it (TCP_INFO and
 * repair mode have the sequence numbers, not the mark), so it is read from
 * the kernel's own socket by a small BPF iterator over the TCP sockets of
 * the dumper's network namespace (iter/tcp, Linux 5.9+, needs CAP_BPF or
 * root and the kernel's BTF): for each socket its cookie (SO_COOKIE names
 * ours), snd_up and snd_una. The program is a handful of instructions made
 * here, with the field offsets from the kernel's BTF (read by libbpf), so
 * nothing is compiled or shipped for it. A kernel without it leaves the
 * mark unknown: the dump says so in its log and the byte goes back as an
 * ordinary one, as CRIU restores it. */
#include "dump/dump_int.h"

#include <errno.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define INSN DUMP_BPF_INSN

struct urg_rec {
	uint64_t cookie;
	uint32_t snd_up, snd_una;
};

/* Every TCP socket's (cookie, snd_up, snd_una), from the iterator. */
static int read_records(struct urg_rec **out, size_t *n, char *why, size_t whylen)
{
	*out = NULL, *n = 0;
	struct btf *b = btf__load_vmlinux_btf();
	if (!b) {
		snprintf(why, whylen, "no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
		return -1;
	}
	int32_t iter = btf__find_by_name_kind(b, "bpf_iter_tcp", BTF_KIND_FUNC);
	long cookie = dump_btf_member_bits(b, btf__find_by_name_kind(b, "sock_common", BTF_KIND_STRUCT), "skc_cookie", 0);
	int32_t tcp = btf__find_by_name_kind(b, "tcp_sock", BTF_KIND_STRUCT);
	long up = dump_btf_member_bits(b, tcp, "snd_up", 0), una = dump_btf_member_bits(b, tcp, "snd_una", 0);
	btf__free(b);
	if (iter <= 0 || cookie < 0 || up < 0 || una < 0) {
		snprintf(why, whylen, "the kernel's BTF lacks bpf_iter_tcp or a field of tcp_sock");
		return -1;
	}
	struct bpf_insn p[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 7, 6, 8, 0),  /* ctx->sk_common */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 15, 0), /* to the exit */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 8, 6, 0, 0),  /* ctx->meta */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 7, (int16_t)(cookie / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -16, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 7, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_skc_to_tcp_sock),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 9, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 0, (int16_t)(up / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -8, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 0, (int16_t)(una / 8), 0),
		INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -4, 0),
		DUMP_BPF_WRITE_EXIT(8, 16),
	};
	int prog = dump_bpf_iter_load("fp_tcp_urg", p, sizeof(p) / sizeof(p[0]), iter, why, whylen);
	if (prog < 0)
		return -1;
	int link = bpf_link_create(prog, 0, BPF_TRACE_ITER, NULL);
	int it = link >= 0 ? bpf_iter_create(link) : -1;
	int e = errno, rc = 0;
	size_t cap = 0;
	struct urg_rec r;
	for (ssize_t got; it >= 0 && (got = read(it, &r, sizeof(r))) == (ssize_t)sizeof(r);) {
		if (*n == cap) {
			struct urg_rec *m = realloc(*out, (cap = cap * 2 + 64) * sizeof(*m));
			if (!m) {
				rc = -1, e = ENOMEM;
				break;
			}
			*out = m;
		}
		(*out)[(*n)++] = r;
	}
	if (it < 0 || rc)
		snprintf(why, whylen, "running the BPF iterator: %s", strerror(e)), rc = -1;
	if (it >= 0)
		close(it);
	if (link >= 0)
		close(link);
	close(prog);
	return rc;
}

int dump_tcp_snd_urg(struct dump_ctx *c, const int *sks, size_t n, uint32_t *snd_up, uint32_t *snd_una, bool *known)
{
	uint64_t *ck = calloc(n ? n : 1, sizeof(*ck));
	if (!ck)
		return -1;
	for (size_t i = 0; i < n; i++) { /* a cookie is given on first demand: before the iterator reads it */
		socklen_t l = sizeof(ck[i]);
		known[i] = false;
		if (getsockopt(sks[i], SOL_SOCKET, SO_COOKIE, &ck[i], &l))
			ck[i] = 0;
	}
	struct urg_rec *r;
	size_t nr;
	char why[320];
	if (read_records(&r, &nr, why, sizeof(why))) {
		dlog(c, "the urgent pointers of the TCP send queues are unknown (%s): an urgent byte not yet sent "
		     "would come back as an ordinary one", why);
		free(ck);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; ck[i] && j < nr; j++)
			if (r[j].cookie == ck[i]) {
				snd_up[i] = r[j].snd_up, snd_una[i] = r[j].snd_una;
				known[i] = r[j].snd_up != r[j].snd_una; /* urgent mode: the mark not yet acknowledged */
				break;
			}
	free(r);
	free(ck);
	return 0;
}
