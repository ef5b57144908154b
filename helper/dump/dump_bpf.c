/* What the dump's small BPF iterators share (dump_tcp_urg.c over TCP
 * sockets, dump_vmflags_bpf.c over a process's mappings,
 * dump_fdfiles_bpf.c over its fds): field offsets from the kernel's BTF,
 * the loading of a program, both through libbpf, and the reading of a
 * program's records for one process.
 * The programs themselves are a few instructions each, written out by hand
 * (DUMP_BPF_INSN): a compiled BPF object would need clang and a skeleton
 * step in the build for ~15 instructions. */
#include "dump/dump_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More records than a process may have mappings (vm.max_map_count is
 * 65530 by default; a process can be given more) or fds. */
#define ITER_RECS_MAX (1u << 20)

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
	/* without a log first: a program with a loop logs more than the
	 * buffer at level 1, and a full log fails the load (ENOSPC) */
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_TRACE_ITER, .attach_btf_id = (uint32_t)iter_id);
	int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, name, "GPL", p, n, &po);
	if (prog >= 0)
		return prog;
	int first = errno;
	/* again, for the verifier's last words */
	static _Thread_local char log[4096];
	log[0] = 0;
	po.log_buf = log, po.log_size = sizeof(log), po.log_level = 1;
	prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, name, "GPL", p, n, &po);
	if (prog >= 0)
		return prog;
	size_t l = strlen(log);
	snprintf(why, whylen, "loading the BPF iterator: %s%s%.200s", strerror(first), l ? ": " : "",
		 l > 200 ? log + l - 200 : log);
	return -1;
}

int dump_bpf_iter_run(int p, pid_t pid, size_t rec, void **out, size_t *n)
{
	union bpf_iter_link_info li;
	memset(&li, 0, sizeof(li));
	li.task.tid = (uint32_t)pid;
	LIBBPF_OPTS(bpf_link_create_opts, lo, .iter_info = &li, .iter_info_len = sizeof(li));
	int link = bpf_link_create(p, 0, BPF_TRACE_ITER, &lo);
	int it = link >= 0 ? bpf_iter_create(link) : -1;
	int rc = it < 0 ? -1 : 0;
	size_t cap = 0, have = 0; /* bytes */
	char *buf = NULL;
	while (!rc) {
		if (cap - have < 4096) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);
			if (!nb) {
				rc = -1;
				break;
			}
			buf = nb;
		}
		ssize_t got = read(it, buf + have, cap - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 || have % rec ? -1 : 0;
			break;
		}
		/* The records come in order, each once. On this kernel a
		 * process of a few thousand mappings made the iterator start
		 * over after a full buffer, without end (the helper grew to 24
		 * GB): anything out of order, or more records than a process
		 * may have mappings or fds, fails the read (the caller takes
		 * the slow way). */
		size_t from = (have + rec - 1) / rec;
		have += (size_t)got;
		for (size_t i = from ? from : 1; i < have / rec && !rc; i++) {
			uint64_t a, b;
			memcpy(&a, buf + (i - 1) * rec, 8);
			memcpy(&b, buf + i * rec, 8);
			rc = b <= a ? -1 : 0;
		}
		if (have / rec > ITER_RECS_MAX)
			rc = -1;
	}
	if (it >= 0)
		close(it);
	if (link >= 0)
		close(link);
	if (rc) {
		free(buf);
		return -1;
	}
	*out = buf;
	*n = have / rec;
	return 0;
}
