/* pb.h over libprotobuf-c: the output buffer, the arena the generated
 * structs of one encoding live in, encode/decode/free through a pb_mdesc,
 * and the walk that names what libprotobuf-c refused. */
#include "images/pb_conv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* ---- buffer ----------------------------------------------------------- */

void pb_buf_init(pb_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void pb_buf_free(pb_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void pb_buf_reset(pb_buf *b)
{
	b->len = 0;
	b->oom = false;
}

uint8_t *pb_buf_grow(pb_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (n > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	uint8_t *p = b->data + b->len;
	b->len += n;
	return p;
}

void pb_put_raw(pb_buf *b, const void *p, size_t n)
{
	uint8_t *d = pb_buf_grow(b, n);
	if (d && n)
		memcpy(d, p, n);
}

void pb_put_le32(pb_buf *b, uint32_t v)
{
	uint8_t *d = pb_buf_grow(b, 4);
	if (d)
		for (int i = 0; i < 4; i++)
			d[i] = (uint8_t)(v >> (8 * i));
}

/* ---- arena ------------------------------------------------------------ */

struct pb_arena_blk {
	struct pb_arena_blk *next;
	size_t used, cap;
	max_align_t data[];
};

void *pb_arena_alloc(pb_arena *a, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	struct pb_arena_blk *b = a->blk;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->blk;
		b->used = 0;
		b->cap = cap;
		a->blk = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return memset(p, 0, n);
}

static void arena_free(pb_arena *a)
{
	while (a->blk) {
		struct pb_arena_blk *n = a->blk->next;
		free(a->blk);
		a->blk = n;
	}
}

/* ---- helpers for the conversions -------------------------------------- */

int pb_conv_fail(fp_error *err, const char *where, const char *field, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fp_fail_code(err, FP_EXIT_FAIL, EINVAL, "%s: field %s: %s (corrupt image)", where, field, what);
}

/* Called for every embedded message of every entry decoded (tens of
 * thousands for an image of 10,000 fds), though its text is only read in
 * an error: two copies, not a snprintf (which cost about 10 ms of reading
 * such an image). */
const char *pb_conv_where(char *buf, size_t len, const char *where, const char *field)
{
	if (!len)
		return buf;
	size_t a = strnlen(where, len - 1), b = strnlen(field, len - 1);
	memcpy(buf, where, a);
	if (a + 1 < len) {
		buf[a++] = '.';
		if (b > len - 1 - a)
			b = len - 1 - a;
		memcpy(buf + a, field, b);
		a += b;
	}
	buf[a] = '\0';
	return buf;
}

char *pb_conv_strndup(pb_arena *a, const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *d = pb_arena_alloc(a, n + 1);
	if (d)
		memcpy(d, s, n);
	return d;
}

void *pb_conv_memdup(const void *p, size_t n, const char *where, const char *field, fp_error *err)
{
	uint8_t *d = malloc(n + 1);
	if (!d) {
		fp_fail(err, ENOMEM, "%s: field %s: out of memory for %zu bytes", where, field, n);
		return NULL;
	}
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	return d;
}

void *pb_conv_calloc(size_t n, size_t es, const char *where, const char *field, fp_error *err)
{
	void *d = calloc(n, es);
	if (!d)
		fp_fail(err, ENOMEM, "%s: field %s: out of memory for %zu values", where, field, n);
	return d;
}

/* ---- naming what libprotobuf-c refused -------------------------------- */

static int bad(fp_error *err, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(fp_error *err, const char *where, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fp_fail_code(err, FP_EXIT_FAIL, EINVAL, "%s: %s (corrupt or truncated image)", where, what);
}

/* 0, or what is wrong with the varint at *p. */
static const char *varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < 10; i++) {
		if (*p >= end)
			return "varint runs past the end of the message";
		uint8_t c = *(*p)++;
		if (i == 9 && c > 1)
			return "varint overflows 64 bits";
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = x;
			return NULL;
		}
	}
	return "varint longer than 10 bytes";
}

static int wire_of(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 1;
	case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
		return 5;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE:
		return 2;
	default:
		return 0;
	}
}

/* Walks a message the way the decoder does and fails with the first fault,
 * named by field number and name; 0 if it finds none. */
static int diagnose(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, const char *where,
		    fp_error *err)
{
	const uint8_t *end = p + len;
	uint64_t seen = 0; /* by field index; our messages have fewer than 64 fields */
	while (p < end) {
		uint64_t tag, v;
		const char *why = varint(&p, end, &tag);
		if (why)
			return bad(err, where, "%s", why);
		uint32_t num = (uint32_t)(tag >> 3);
		int wt = (int)(tag & 7);
		if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
			return bad(err, where, "invalid field number %llu", (unsigned long long)(tag >> 3));
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
		const char *name = f ? f->name : "unknown";
		const uint8_t *body = p;
		size_t left = (size_t)(end - p);
		switch (wt) {
		case 0:
			if ((why = varint(&p, end, &v)))
				return bad(err, where, "field %u (%s): %s", num, name, why);
			break;
		case 1: case 5:
			if (left < (wt == 1 ? 8u : 4u))
				return bad(err, where, "field %u (%s): fixed%d runs past the end", num, name,
					   wt == 1 ? 64 : 32);
			p += wt == 1 ? 8 : 4;
			break;
		case 2:
			if ((why = varint(&p, end, &v)))
				return bad(err, where, "field %u (%s): %s", num, name, why);
			left = (size_t)(end - p);
			if (v > left)
				return bad(err, where, "field %u (%s): length %llu but only %zu bytes left", num,
					   name, (unsigned long long)v, left);
			body = p;
			p += v;
			break;
		default:
			return bad(err, where, "field %u (%s): unsupported wire type %d", num, name, wt);
		}
		if (!f)
			continue; /* unknown fields are skipped */
		int want = wire_of(f->type);
		bool packed = f->label == PROTOBUF_C_LABEL_REPEATED && wt == 2 && want != 2;
		if (wt != want && !packed)
			return bad(err, where, "field %u (%s): wire type %d, expected %d", num, name, wt, want);
		if (packed && want == 0)
			for (const uint8_t *q = body; q < p;)
				if ((why = varint(&q, p, &v)))
					return bad(err, where, "field %u (%s), packed: %s", num, name, why);
		if (packed && want != 0 && (size_t)(p - body) % (want == 1 ? 8 : 4))
			return bad(err, where, "field %u (%s): packed fixed values cut short", num, name);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			char w[512];
			if (diagnose(f->descriptor, body, (size_t)(p - body), pb_conv_where(w, sizeof(w), where, name),
				     err) < 0)
				return -1;
		}
		size_t i = (size_t)(f - d->fields);
		if (i < 64)
			seen |= 1ull << i;
	}
	for (size_t i = 0; i < d->n_fields && i < 64; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !(seen & (1ull << i)))
			return bad(err, where, "required field %u (%s) of %s is missing", d->fields[i].id,
				   d->fields[i].name, d->name);
	return 0;
}

/* ---- messages --------------------------------------------------------- */

void pb_encode(pb_buf *b, const pb_mdesc *d, const void *msg)
{
	pb_arena a = { 0 };
	const ProtobufCMessage *m = d->to_pb(msg, &a);
	uint8_t *out = m ? pb_buf_grow(b, protobuf_c_message_get_packed_size(m)) : NULL;
	if (out)
		protobuf_c_message_pack(m, out);
	else
		b->oom = true;
	arena_free(&a);
}

int pb_decode(const pb_mdesc *d, void *msg, const void *data, size_t len, const char *where, fp_error *err)
{
	memset(msg, 0, d->size);
	/* "<where>: <message>", for the errors; joined by hand: a snprintf
	 * per decoded entry cost more than some entries' decoding */
	char w[512];
	const char *a = where ? where : "protobuf";
	size_t la = strnlen(a, 300), lb = strnlen(d->name, sizeof(w) - 300 - 3);
	memcpy(w, a, la);
	memcpy(w + la, ": ", 2);
	memcpy(w + la + 2, d->name, lb);
	w[la + 2 + lb] = '\0';
	ProtobufCMessage *m = protobuf_c_message_unpack(d->pb, NULL, len, data);
	if (!m) {
		if (diagnose(d->pb, data, len, w, err) == 0)
			fp_fail_code(err, FP_EXIT_FAIL, EINVAL,
				     "%s: libprotobuf-c cannot decode it (corrupt image, or out of memory)", w);
		return -1;
	}
	int rc = d->from_pb(m, msg, w, err);
	protobuf_c_message_free_unpacked(m, NULL);
	if (rc < 0)
		pb_free(d, msg);
	return rc < 0 ? -1 : 0;
}

void pb_free(const pb_mdesc *d, void *msg)
{
	if (!msg)
		return;
	d->free(msg);
	memset(msg, 0, d->size);
}
