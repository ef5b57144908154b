/* What the dump's two small BPF iterators share (dump_tcp_urg.c over TCP
 * sockets, dump_vmflags_bpf.c over a process's mappings): field offsets
 * from the kernel's BTF and the loading of a program, both through libbpf.
 * The programs themselves are a few instructions each, written out by hand
 * (DUMP_BPF_INSN): a compiled BPF object would need clang and a skeleton
 * step in the build for ~15 instructions. */
#include "dump/dump_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <string.h>

/* The field offsets and the iterator's attach point come from the
 * kernel's BTF, read by libbpf; members of anonymous structs and unions
 * (no name in BTF) are looked into here. */
long dump_btf_member_bits(const struct btf *b, int32_t id, const char *name, int depth)
{
	id = id > 0 ? btf__resolve_type(b, (uint32_t)id) : -1; /* through typedefs and qualifiers */
	const struct btf_type *t = id > 0 ? btf__type_by_id(b, (uint32_t)id) : NULL;
	if (!t || !btf_is_composite(t) || depth > 8)
		return -1;
	const struct btf_member *m = btf_members(t);
	for (uint32_t i = 0; i < btf_vlen(t); i++, m++) {
		long bits = (long)btf_member_bit_offset(t, i);
		const char *mn = btf__name_by_offset(b, m->name_off);
		if (mn && *mn && !strcmp(mn, name))
			return bits;
		if (!mn || !*mn) {
			long in = dump_btf_member_bits(b, (int32_t)m->type, name, depth + 1);
			if (in >= 0)
				return bits + in;
		}
	}
	return -1;
}

int dump_bpf_iter_load(const char *name, const struct bpf_insn *p, size_t n, int32_t iter_id, char *why,
		       size_t whylen)
{
	static _Thread_local char log[4096];
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_TRACE_ITER, .attach_btf_id = (uint32_t)iter_id,
		    .log_buf = log, .log_size = sizeof(log), .log_level = 1);
	log[0] = 0;
	int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, name, "GPL", p, n, &po);
	if (prog < 0) {
		size_t l = strlen(log);
		snprintf(why, whylen, "loading the BPF iterator: %s%s%.200s", strerror(errno), l ? ": " : "",
			 l > 200 ? log + l - 200 : log);
	}
	return prog;
}
