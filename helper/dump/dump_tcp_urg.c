/* The urgent pointer of TCP sockets' send queues (snd_up): where an
 * urgent byte a process sent (MSG_OOB) waits to be sent or acknowledged.
 *
 * No socket option, ioctl or sock_diag attribute tells it (TCP_INFO and
 * repair mode have the sequence numbers, not the mark), so it is read from
 * the kernel's own socket by a small BPF iterator over the TCP sockets of
 * the dumper's network namespace (iter/tcp, Linux 5.9+, needs CAP_BPF or
 * root and the kernel's BTF): for each socket its cookie (SO_COOKIE names
 * ours), snd_up and snd_una. The program is a handful of instructions made
 * here, with the field offsets read from /sys/kernel/btf/vmlinux, so
 * nothing is compiled or shipped for it. A kernel without it leaves the
 * mark unknown: the dump says so in its log and the byte goes back as an
 * ordinary one, as CRIU restores it. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BTF_PATH "/sys/kernel/btf/vmlinux"
enum { K_INT = 1, K_ARRAY = 3, K_STRUCT = 4, K_UNION = 5, K_ENUM = 6, K_TYPEDEF = 8, K_VOLATILE = 9, K_CONST = 10,
       K_RESTRICT = 11, K_FUNC = 12, K_FUNC_PROTO = 13, K_VAR = 14, K_DATASEC = 15, K_DECL_TAG = 17, K_TYPE_TAG = 18,
       K_ENUM64 = 19 };

struct btf {
	uint8_t *buf;
	const uint8_t *types, *strs;
	uint32_t types_len, strs_len, n;
	const uint32_t **type; /* by id (1..n) */
};

static size_t extra(uint32_t info)
{
	uint32_t kind = (info >> 24) & 0x1f, vlen = info & 0xffff;
	switch (kind) {
	case K_INT: case K_VAR: case K_DECL_TAG:
		return 4;
	case K_ARRAY:
		return 12;
	case K_STRUCT: case K_UNION: case K_DATASEC: case K_ENUM64:
		return 12 * (size_t)vlen;
	case K_ENUM: case K_FUNC_PROTO:
		return 8 * (size_t)vlen;
	default:
		return 0;
	}
}

static int btf_load(struct btf *b)
{
	memset(b, 0, sizeof(*b));
	int fd = open(BTF_PATH, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || st.st_size < 24 || !(b->buf = malloc((size_t)st.st_size + 1))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t got = 0; /* sysfs reports a size but may read in pieces */
	for (ssize_t r; got < (size_t)st.st_size && (r = read(fd, b->buf + got, (size_t)st.st_size - got)) > 0;)
		got += (size_t)r;
	close(fd);
	uint32_t h[5];
	memcpy(h, b->buf + 4, sizeof(h)); /* hdr_len, type_off, type_len, str_off, str_len */
	uint16_t magic;
	memcpy(&magic, b->buf, 2);
	if (magic != 0xeB9F || (uint64_t)h[0] + h[1] + h[2] > got || (uint64_t)h[0] + h[3] + h[4] > got)
		return -1;
	b->types = b->buf + h[0] + h[1], b->types_len = h[2];
	b->strs = b->buf + h[0] + h[3], b->strs_len = h[4];
	size_t cap = 1 << 17;
	b->type = malloc(cap * sizeof(*b->type));
	for (size_t off = 0; b->type && off + 12 <= b->types_len;) {
		if (b->n + 2 >= cap && !(b->type = realloc(b->type, (cap *= 2) * sizeof(*b->type))))
			break;
		const uint32_t *t = (const uint32_t *)(b->types + off);
		b->type[++b->n] = t;
		off += 12 + extra(t[1]);
	}
	return b->type ? 0 : -1;
}

static const char *name_of(const struct btf *b, uint32_t off)
{
	return off < b->strs_len ? (const char *)b->strs + off : "";
}

static uint32_t find_type(const struct btf *b, uint32_t kind, const char *name)
{
	for (uint32_t id = 1; id <= b->n; id++)
		if (((b->type[id][1] >> 24) & 0x1f) == kind && !strcmp(name_of(b, b->type[id][0]), name))
			return id;
	return 0;
}

/* The bit offset of member `name` in struct/union id, looking into its
 * anonymous members; -1 if none. */
static long member_bits(const struct btf *b, uint32_t id, const char *name, int depth)
{
	while (id && id <= b->n) { /* through typedefs and qualifiers */
		uint32_t k = (b->type[id][1] >> 24) & 0x1f;
		if (k != K_TYPEDEF && k != K_VOLATILE && k != K_CONST && k != K_RESTRICT && k != K_TYPE_TAG)
			break;
		id = b->type[id][2];
	}
	if (!id || id > b->n || depth > 8)
		return -1;
	const uint32_t *t = b->type[id];
	uint32_t k = (t[1] >> 24) & 0x1f, vlen = t[1] & 0xffff;
	bool kflag = t[1] >> 31;
	if (k != K_STRUCT && k != K_UNION)
		return -1;
	for (uint32_t i = 0; i < vlen; i++) {
		const uint32_t *m = t + 3 + 3 * i;
		long bits = kflag ? (long)(m[2] & 0xffffff) : (long)m[2];
		if (m[0] && !strcmp(name_of(b, m[0]), name))
			return bits;
		if (!m[0]) {
			long in = member_bits(b, m[1], name, depth + 1);
			if (in >= 0)
				return bits + in;
		}
	}
	return -1;
}

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

struct urg_rec {
	uint64_t cookie;
	uint32_t snd_up, snd_una;
};

/* Every TCP socket's (cookie, snd_up, snd_una), from the iterator. */
static int read_records(struct urg_rec **out, size_t *n, char *why, size_t whylen)
{
	*out = NULL, *n = 0;
	struct btf b;
	if (btf_load(&b)) {
		snprintf(why, whylen, "no kernel BTF at " BTF_PATH);
		free(b.buf), free(b.type);
		return -1;
	}
	uint32_t iter = find_type(&b, K_FUNC, "bpf_iter_tcp");
	long cookie = member_bits(&b, find_type(&b, K_STRUCT, "sock_common"), "skc_cookie", 0);
	uint32_t tcp = find_type(&b, K_STRUCT, "tcp_sock");
	long up = member_bits(&b, tcp, "snd_up", 0), una = member_bits(&b, tcp, "snd_una", 0);
	free(b.buf), free(b.type);
	if (!iter || cookie < 0 || up < 0 || una < 0) {
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
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 8, 0, 0),  /* meta->seq */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -16),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 16),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_seq_write),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[4096];
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_TRACING;
	a.expected_attach_type = BPF_TRACE_ITER;
	a.attach_btf_id = iter;
	a.insns = (uintptr_t)p;
	a.insn_cnt = sizeof(p) / sizeof(p[0]);
	a.license = (uintptr_t) "GPL";
	a.log_buf = (uintptr_t)log, a.log_size = sizeof(log), a.log_level = 1;
	memcpy(a.prog_name, "fp_tcp_urg", 11);
	int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (prog < 0) {
		size_t l = strlen(log);
		snprintf(why, whylen, "loading the BPF iterator: %s%s%.200s", strerror(errno), l ? ": " : "",
			 l > 200 ? log + l - 200 : log);
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = (uint32_t)prog;
	a.link_create.attach_type = BPF_TRACE_ITER;
	int link = (int)sys_bpf(BPF_LINK_CREATE, &a);
	int it = -1;
	if (link >= 0) {
		memset(&a, 0, sizeof(a));
		a.iter_create.link_fd = (uint32_t)link;
		it = (int)sys_bpf(BPF_ITER_CREATE, &a);
	}
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
