#include "images/pb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoder ---------------------------------------------------------- */

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

size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_to(uint8_t *d, uint64_t v)
{
	size_t i = 0;
	while (v >= 0x80) {
		d[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	d[i++] = (uint8_t)v;
	return i;
}

void pb_put_varint(pb_buf *b, uint64_t v)
{
	uint8_t *d = pb_buf_grow(b, pb_varint_size(v));
	if (d)
		varint_to(d, v);
}

void pb_put_tag(pb_buf *b, uint32_t field, enum pb_wire wt)
{
	pb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

void pb_put_u64(pb_buf *b, uint32_t field, uint64_t v)
{
	pb_put_tag(b, field, PB_WT_VARINT);
	pb_put_varint(b, v);
}

void pb_put_i64(pb_buf *b, uint32_t field, int64_t v)
{
	pb_put_u64(b, field, (uint64_t)v);
}

void pb_put_s64(pb_buf *b, uint32_t field, int64_t v)
{
	pb_put_u64(b, field, pb_zigzag(v));
}

void pb_put_fixed32(pb_buf *b, uint32_t field, uint32_t v)
{
	pb_put_tag(b, field, PB_WT_I32);
	pb_put_le32(b, v);
}

void pb_put_fixed64(pb_buf *b, uint32_t field, uint64_t v)
{
	pb_put_tag(b, field, PB_WT_I64);
	pb_put_le32(b, (uint32_t)v);
	pb_put_le32(b, (uint32_t)(v >> 32));
}

void pb_put_bytes(pb_buf *b, uint32_t field, const void *p, size_t n)
{
	pb_put_tag(b, field, PB_WT_LEN);
	pb_put_varint(b, n);
	pb_put_raw(b, p, n);
}

void pb_put_string(pb_buf *b, uint32_t field, const char *s)
{
	pb_put_bytes(b, field, s ? s : "", s ? strlen(s) : 0);
}

void pb_put_packed_u64(pb_buf *b, uint32_t field, const uint64_t *v, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += pb_varint_size(v[i]);
	pb_put_tag(b, field, PB_WT_LEN);
	pb_put_varint(b, len);
	for (size_t i = 0; i < n; i++)
		pb_put_varint(b, v[i]);
}

void pb_put_packed_u32(pb_buf *b, uint32_t field, const uint32_t *v, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += pb_varint_size(v[i]);
	pb_put_tag(b, field, PB_WT_LEN);
	pb_put_varint(b, len);
	for (size_t i = 0; i < n; i++)
		pb_put_varint(b, v[i]);
}

/* The length of a nested message is known only after its body is written:
 * write the body first, then shift it right by the size of the length varint. */
size_t pb_begin_msg(pb_buf *b, uint32_t field)
{
	pb_put_tag(b, field, PB_WT_LEN);
	return b->len;
}

void pb_end_msg(pb_buf *b, size_t mark)
{
	if (b->oom)
		return;
	size_t body = b->len - mark;
	size_t k = pb_varint_size(body);
	if (!pb_buf_grow(b, k))
		return;
	memmove(b->data + mark + k, b->data + mark, body);
	varint_to(b->data + mark, body);
}

/* ---- decoder ---------------------------------------------------------- */

void pb_reader_init(pb_reader *r, const void *data, size_t len, const char *where,
		    fp_error *err)
{
	r->p = data;
	r->end = r->p + len;
	r->where = where ? where : "protobuf";
	r->err = err;
}

static int rfail(const pb_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(const pb_reader *r, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fp_fail_code(r->err, FP_EXIT_FAIL, EINVAL, "%s: %s (corrupt or truncated image)",
			    r->where, what);
}

int pb_fail(const pb_reader *r, const pb_field *f, const char *name, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rfail(r, "field %u (%s): %s", f ? f->num : 0, name ? name : "?", what);
}

int pb_read_varint(pb_reader *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < 10; i++) {
		if (r->p >= r->end)
			return rfail(r, "varint runs past the end of the message");
		uint8_t c = *r->p++;
		if (i == 9 && c > 1)
			return rfail(r, "varint overflows 64 bits");
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return rfail(r, "varint longer than 10 bytes");
}

static uint64_t le_load(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int pb_next(pb_reader *r, pb_field *f)
{
	if (r->p >= r->end)
		return 0;
	uint64_t tag;
	if (pb_read_varint(r, &tag) < 0)
		return -1;
	memset(f, 0, sizeof(*f));
	if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
		return rfail(r, "invalid field number %llu", (unsigned long long)(tag >> 3));
	f->num = (uint32_t)(tag >> 3);
	f->wt = (enum pb_wire)(tag & 7);
	size_t left = (size_t)(r->end - r->p);
	switch (f->wt) {
	case PB_WT_VARINT:
		return pb_read_varint(r, &f->v) < 0 ? -1 : 1;
	case PB_WT_I64:
		if (left < 8)
			return rfail(r, "field %u: fixed64 runs past the end", f->num);
		f->v = le_load(r->p, 8);
		r->p += 8;
		return 1;
	case PB_WT_I32:
		if (left < 4)
			return rfail(r, "field %u: fixed32 runs past the end", f->num);
		f->v = le_load(r->p, 4);
		r->p += 4;
		return 1;
	case PB_WT_LEN: {
		uint64_t len;
		if (pb_read_varint(r, &len) < 0)
			return -1;
		left = (size_t)(r->end - r->p);
		if (len > left)
			return rfail(r, "field %u: length %llu but only %zu bytes left", f->num,
				     (unsigned long long)len, left);
		f->data = r->p;
		f->len = (size_t)len;
		r->p += len;
		return 1;
	}
	default:
		return rfail(r, "field %u: unsupported wire type %d", f->num, (int)f->wt);
	}
}

/* ---- table-driven codec ----------------------------------------------- */

#define AT(msg, off, T) ((T *)((char *)(msg) + (off)))
#define CAT(msg, off, T) ((const T *)((const char *)(msg) + (off)))

static bool is_scalar(uint8_t t)
{
	return t <= PB_T_F64;
}

static size_t scalar_size(uint8_t t)
{
	switch (t) {
	case PB_T_U32: case PB_T_I32: case PB_T_S32: case PB_T_F32:
		return 4;
	case PB_T_BOOL:
		return sizeof(bool);
	default:
		return 8;
	}
}

static uint64_t scalar_get(uint8_t t, const void *p)
{
	switch (t) {
	case PB_T_U32: case PB_T_F32:
		return *(const uint32_t *)p;
	case PB_T_I32:
		return (uint64_t)(int64_t)*(const int32_t *)p;
	case PB_T_S32:
		return pb_zigzag(*(const int32_t *)p);
	case PB_T_S64:
		return pb_zigzag(*(const int64_t *)p);
	case PB_T_BOOL:
		return *(const bool *)p ? 1 : 0;
	default:
		return *(const uint64_t *)p;
	}
}

static void scalar_put_val(pb_buf *b, uint8_t t, uint64_t v)
{
	if (t == PB_T_F32)
		pb_put_le32(b, (uint32_t)v);
	else if (t == PB_T_F64) {
		pb_put_le32(b, (uint32_t)v);
		pb_put_le32(b, (uint32_t)(v >> 32));
	} else
		pb_put_varint(b, v);
}

static enum pb_wire scalar_wire(uint8_t t)
{
	return t == PB_T_F32 ? PB_WT_I32 : t == PB_T_F64 ? PB_WT_I64 : PB_WT_VARINT;
}

static void encode_field(pb_buf *b, const pb_fdesc *fd, const void *msg)
{
	bool req = fd->flags & PB_REQ;
	if (fd->flags & PB_REP) {
		size_t n = *CAT(msg, fd->cnt_off, size_t);
		const char *arr = (fd->flags & PB_FIXED) ? CAT(msg, fd->off, char)
							 : *CAT(msg, fd->off, const char *);
		if ((fd->flags & PB_FIXED) && n > fd->cap)
			n = fd->cap;
		if (!n || !arr)
			return;
		if (fd->type == PB_T_MSG) {
			for (size_t i = 0; i < n; i++) {
				size_t m = pb_begin_msg(b, fd->num);
				pb_encode(b, fd->sub, arr + i * fd->sub->size);
				pb_end_msg(b, m);
			}
			return;
		}
		size_t es = scalar_size(fd->type);
		if (fd->flags & PB_PACKED) {
			size_t m = pb_begin_msg(b, fd->num);
			for (size_t i = 0; i < n; i++)
				scalar_put_val(b, fd->type, scalar_get(fd->type, arr + i * es));
			pb_end_msg(b, m);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			pb_put_tag(b, fd->num, scalar_wire(fd->type));
			scalar_put_val(b, fd->type, scalar_get(fd->type, arr + i * es));
		}
		return;
	}

	if (!req && fd->has_off != PB_NONE && !*CAT(msg, fd->has_off, bool))
		return;
	const void *p = CAT(msg, fd->off, char);
	switch (fd->type) {
	case PB_T_STRBUF:
		pb_put_bytes(b, fd->num, p, strnlen(p, fd->cap));
		return;
	case PB_T_STR: {
		const char *s = *(const char *const *)p;
		if (s || req)
			pb_put_string(b, fd->num, s);
		return;
	}
	case PB_T_BYTES: {
		const uint8_t *d = *(const uint8_t *const *)p;
		size_t n = *CAT(msg, fd->cnt_off, size_t);
		if (d || req || fd->has_off != PB_NONE)
			pb_put_bytes(b, fd->num, d, d ? n : 0);
		return;
	}
	case PB_T_MSG: {
		size_t m = pb_begin_msg(b, fd->num);
		pb_encode(b, fd->sub, p);
		pb_end_msg(b, m);
		return;
	}
	default: {
		uint64_t v = scalar_get(fd->type, p);
		/* An optional scalar without a has-flag is written when non-zero. */
		if (!req && fd->has_off == PB_NONE && v == 0)
			return;
		pb_put_tag(b, fd->num, scalar_wire(fd->type));
		scalar_put_val(b, fd->type, v);
	}
	}
}

void pb_encode(pb_buf *b, const pb_mdesc *d, const void *msg)
{
	for (size_t i = 0; i < d->n_fields; i++)
		encode_field(b, &d->fields[i], msg);
}

static void apply_defaults(const pb_mdesc *d, void *msg)
{
	for (size_t i = 0; i < d->n_fields; i++) {
		const pb_fdesc *fd = &d->fields[i];
		if ((fd->flags & PB_REP) || !fd->def)
			continue;
		void *p = AT(msg, fd->off, char);
		switch (fd->type) {
		case PB_T_U32: case PB_T_F32: *(uint32_t *)p = (uint32_t)fd->def; break;
		case PB_T_I32: case PB_T_S32: *(int32_t *)p = (int32_t)fd->def; break;
		case PB_T_BOOL: *(bool *)p = fd->def != 0; break;
		case PB_T_U64: case PB_T_F64: *(uint64_t *)p = (uint64_t)fd->def; break;
		case PB_T_S64: *(int64_t *)p = fd->def; break;
		default: break;
		}
	}
}

static void free_contents(const pb_mdesc *d, void *msg)
{
	for (size_t i = 0; i < d->n_fields; i++) {
		const pb_fdesc *fd = &d->fields[i];
		void *p = AT(msg, fd->off, char);
		if (fd->type == PB_T_MSG) {
			if (fd->flags & PB_REP) {
				size_t n = *AT(msg, fd->cnt_off, size_t);
				char *arr = (fd->flags & PB_FIXED) ? p : *(char **)p;
				if ((fd->flags & PB_FIXED) && n > fd->cap)
					n = fd->cap;
				for (size_t k = 0; arr && k < n; k++)
					free_contents(fd->sub, arr + k * fd->sub->size);
				if (!(fd->flags & PB_FIXED)) {
					free(arr);
					*(char **)p = NULL;
				}
			} else {
				free_contents(fd->sub, p);
			}
		} else if (fd->type == PB_T_STR || fd->type == PB_T_BYTES ||
			   ((fd->flags & PB_REP) && !(fd->flags & PB_FIXED))) {
			free(*(void **)p);
			*(void **)p = NULL;
		}
	}
}

void pb_free(const pb_mdesc *d, void *msg)
{
	if (!msg)
		return;
	free_contents(d, msg);
	memset(msg, 0, d->size);
}

/* A malloc'd repeated array grows to the next power of two, so its capacity
 * follows from its count and needs no field of its own. */
static void *dyn_append(void **arrp, size_t *n, size_t es)
{
	size_t c = *n;
	if (c == 0 || (c & (c - 1)) == 0) {
		size_t ncap = c ? c * 2 : 4;
		if (ncap > SIZE_MAX / es)
			return NULL;
		void *a = realloc(*arrp, ncap * es);
		if (!a)
			return NULL;
		*arrp = a;
	}
	char *e = (char *)*arrp + c * es;
	memset(e, 0, es);
	(*n)++;
	return e;
}

static void *rep_slot(const pb_reader *r, const pb_field *f, const pb_fdesc *fd, void *msg,
		      size_t es)
{
	size_t *n = AT(msg, fd->cnt_off, size_t);
	if (fd->flags & PB_FIXED) {
		if (*n >= fd->cap) {
			pb_fail(r, f, fd->name, "more than %zu values", fd->cap);
			return NULL;
		}
		char *e = AT(msg, fd->off, char) + (*n)++ * es;
		memset(e, 0, es);
		return e;
	}
	void *e = dyn_append(AT(msg, fd->off, void *), n, es);
	if (!e)
		fp_fail(r->err, ENOMEM, "%s: field %u (%s): out of memory", r->where, f->num,
			fd->name);
	return e;
}

static void scalar_store(uint8_t t, void *p, uint64_t v)
{
	switch (t) {
	case PB_T_U32: case PB_T_F32: *(uint32_t *)p = (uint32_t)v; break;
	case PB_T_I32: *(int32_t *)p = (int32_t)(uint32_t)v; break;
	case PB_T_S32: *(int32_t *)p = (int32_t)pb_unzigzag(v); break;
	case PB_T_S64: *(int64_t *)p = pb_unzigzag(v); break;
	case PB_T_BOOL: *(bool *)p = v != 0; break;
	default: *(uint64_t *)p = v; break;
	}
}

static int decode_msg(const pb_mdesc *d, void *msg, pb_reader *r);

static int decode_sub(const pb_reader *r, const pb_field *f, const pb_fdesc *fd, void *dst)
{
	char where[512];
	snprintf(where, sizeof(where), "%s.%s", r->where, fd->name);
	pb_reader sub;
	pb_reader_init(&sub, f->data, f->len, where, r->err);
	apply_defaults(fd->sub, dst);
	return decode_msg(fd->sub, dst, &sub);
}

static int decode_field(pb_reader *r, const pb_field *f, const pb_fdesc *fd, void *msg)
{
	void *p = AT(msg, fd->off, char);
	if (is_scalar(fd->type)) {
		enum pb_wire want = scalar_wire(fd->type);
		if ((fd->flags & PB_REP) && f->wt == PB_WT_LEN) {
			/* packed */
			char where[512];
			snprintf(where, sizeof(where), "%s: field %u (%s), packed", r->where, f->num,
				 fd->name);
			pb_reader pr;
			pb_reader_init(&pr, f->data, f->len, where, r->err);
			while (pr.p < pr.end) {
				uint64_t v;
				if (want == PB_WT_VARINT) {
					if (pb_read_varint(&pr, &v) < 0)
						return -1;
				} else {
					size_t w = want == PB_WT_I32 ? 4 : 8;
					if ((size_t)(pr.end - pr.p) < w)
						return pb_fail(r, f, fd->name,
							       "packed fixed values cut short");
					v = le_load(pr.p, (int)w);
					pr.p += w;
				}
				void *e = rep_slot(r, f, fd, msg, scalar_size(fd->type));
				if (!e)
					return -1;
				scalar_store(fd->type, e, v);
			}
			return 0;
		}
		if (f->wt != want)
			return pb_fail(r, f, fd->name, "wire type %d, expected %d", (int)f->wt,
				       (int)want);
		if (fd->flags & PB_REP) {
			void *e = rep_slot(r, f, fd, msg, scalar_size(fd->type));
			if (!e)
				return -1;
			p = e;
		}
		scalar_store(fd->type, p, f->v);
		return 0;
	}

	if (f->wt != PB_WT_LEN)
		return pb_fail(r, f, fd->name, "wire type %d, expected length-delimited",
			       (int)f->wt);
	switch (fd->type) {
	case PB_T_STRBUF:
		if (f->len >= fd->cap)
			return pb_fail(r, f, fd->name, "string of %zu bytes, at most %zu allowed",
				       f->len, fd->cap - 1);
		memcpy(p, f->data, f->len);
		((char *)p)[f->len] = '\0';
		return 0;
	case PB_T_STR:
	case PB_T_BYTES: {
		uint8_t *s = malloc(f->len + 1);
		if (!s)
			return fp_fail(r->err, ENOMEM, "%s: field %u (%s): out of memory", r->where,
				       f->num, fd->name);
		if (f->len)
			memcpy(s, f->data, f->len);
		s[f->len] = '\0';
		free(*(void **)p);
		*(void **)p = s;
		if (fd->type == PB_T_BYTES)
			*AT(msg, fd->cnt_off, size_t) = f->len;
		return 0;
	}
	case PB_T_MSG:
		if (fd->flags & PB_REP) {
			p = rep_slot(r, f, fd, msg, fd->sub->size);
			if (!p)
				return -1;
		}
		return decode_sub(r, f, fd, p);
	default:
		return pb_fail(r, f, fd->name, "bad field table");
	}
}

static int decode_msg(const pb_mdesc *d, void *msg, pb_reader *r)
{
	uint64_t seen = 0; /* by index into d->fields; tables have < 64 fields */
	pb_field f;
	int rc;
	while ((rc = pb_next(r, &f)) > 0) {
		for (size_t i = 0; i < d->n_fields; i++) {
			const pb_fdesc *fd = &d->fields[i];
			if (fd->num != f.num)
				continue;
			if (decode_field(r, &f, fd, msg) < 0)
				return -1;
			if (i < 64)
				seen |= 1ull << i;
			if (fd->has_off != PB_NONE)
				*AT(msg, fd->has_off, bool) = true;
			break;
		}
		/* unknown fields are skipped: pb_next already stepped over them */
	}
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < d->n_fields && i < 64; i++) {
		const pb_fdesc *fd = &d->fields[i];
		if ((fd->flags & PB_REQ) && !(seen & (1ull << i)))
			return rfail(r, "required field %u (%s) of %s is missing", fd->num, fd->name,
				     d->name);
	}
	return 0;
}

int pb_decode(const pb_mdesc *d, void *msg, const void *data, size_t len, const char *where,
	      fp_error *err)
{
	memset(msg, 0, d->size);
	apply_defaults(d, msg);
	char w[512];
	snprintf(w, sizeof(w), "%s: %s", where ? where : "protobuf", d->name);
	pb_reader r;
	pb_reader_init(&r, data, len, w, err);
	if (decode_msg(d, msg, &r) < 0) {
		pb_free(d, msg);
		return -1;
	}
	return 0;
}
