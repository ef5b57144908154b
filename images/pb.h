/* A small protobuf (proto2) wire codec: the primitives, plus a table-driven
 * message codec so that each CRIU message is described once (field number,
 * type, place in a C struct) and encoded, decoded and freed by the same code.
 *
 * Encoding appends to a growable pb_buf; an allocation failure is remembered
 * in the buffer (buf->oom) and reported once by whoever writes it out, so the
 * encoders themselves cannot fail.
 *
 * Decoding never trusts the input: every length is checked against the end of
 * the enclosing message, varints longer than 10 bytes are rejected, and every
 * error names the place ("core-7.img entry 0: core_entry.thread_info.gpregs:
 * field 17 (ip): ...") through a caller-provided fp_error. Unknown fields are
 * skipped, so images from newer CRIU versions still decode. Repeated scalar
 * fields are accepted packed or unpacked; we write them unpacked because none
 * of CRIU's .proto files declares [packed=true]. */
#ifndef FP_PB_H
#define FP_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"

enum pb_wire {
	PB_WT_VARINT = 0,
	PB_WT_I64 = 1,
	PB_WT_LEN = 2,
	PB_WT_SGROUP = 3, /* deprecated groups: rejected */
	PB_WT_EGROUP = 4,
	PB_WT_I32 = 5,
};

/* ---- encoder ---------------------------------------------------------- */

typedef struct pb_buf {
	uint8_t *data;
	size_t len, cap;
	bool oom; /* an allocation failed; contents are incomplete */
} pb_buf;

void pb_buf_init(pb_buf *b);
void pb_buf_free(pb_buf *b);
void pb_buf_reset(pb_buf *b); /* len = 0, keeps the memory */
/* Returns a pointer to n writable bytes at the end (len grows), NULL on oom. */
uint8_t *pb_buf_grow(pb_buf *b, size_t n);
void pb_put_raw(pb_buf *b, const void *p, size_t n);
void pb_put_le32(pb_buf *b, uint32_t v);
void pb_put_varint(pb_buf *b, uint64_t v); /* bare varint, no tag */
size_t pb_varint_size(uint64_t v);
void pb_put_tag(pb_buf *b, uint32_t field, enum pb_wire wt);

/* Tagged fields. u64 covers uint32/uint64/bool/enum; i64 covers int32/int64
 * (a negative int32 takes 10 bytes, as the spec says); s64 is zigzag. */
void pb_put_u64(pb_buf *b, uint32_t field, uint64_t v);
void pb_put_i64(pb_buf *b, uint32_t field, int64_t v);
void pb_put_s64(pb_buf *b, uint32_t field, int64_t v);
void pb_put_fixed32(pb_buf *b, uint32_t field, uint32_t v);
void pb_put_fixed64(pb_buf *b, uint32_t field, uint64_t v);
void pb_put_bytes(pb_buf *b, uint32_t field, const void *p, size_t n);
void pb_put_string(pb_buf *b, uint32_t field, const char *s);
/* Repeated scalars: packed writes one length-delimited field. */
void pb_put_packed_u64(pb_buf *b, uint32_t field, const uint64_t *v, size_t n);
void pb_put_packed_u32(pb_buf *b, uint32_t field, const uint32_t *v, size_t n);
/* Nested message: mark = pb_begin_msg(); encode the body; pb_end_msg(mark). */
size_t pb_begin_msg(pb_buf *b, uint32_t field);
void pb_end_msg(pb_buf *b, size_t mark);

static inline uint64_t pb_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t pb_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- decoder ---------------------------------------------------------- */

typedef struct pb_reader {
	const uint8_t *p, *end;
	const char *where; /* error prefix: "<file> entry N: <msg path>" */
	fp_error *err;
} pb_reader;

typedef struct pb_field {
	uint32_t num;
	enum pb_wire wt;
	uint64_t v;          /* VARINT, I64, I32 */
	const uint8_t *data; /* LEN */
	size_t len;          /* LEN */
} pb_field;

void pb_reader_init(pb_reader *r, const void *data, size_t len, const char *where,
		    fp_error *err);
/* Reads one bare varint (no tag). 0 or -1. */
int pb_read_varint(pb_reader *r, uint64_t *v);
/* Next field: 1 = got one, 0 = end of message, -1 = malformed (err set). */
int pb_next(pb_reader *r, pb_field *f);
/* Fails with "<where>: field N (name): <what>". Returns -1. */
int pb_fail(const pb_reader *r, const pb_field *f, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- table-driven messages ------------------------------------------- */

enum pb_type {
	PB_T_U32,     /* uint32, enum (varint)         -> uint32_t */
	PB_T_U64,     /* uint64 (varint)               -> uint64_t */
	PB_T_BOOL,    /* bool                          -> bool */
	PB_T_I32,     /* int32 (two's complement)      -> int32_t */
	PB_T_S32,     /* sint32 (zigzag)               -> int32_t */
	PB_T_S64,     /* sint64 (zigzag)               -> int64_t */
	PB_T_F32,     /* fixed32                       -> uint32_t */
	PB_T_F64,     /* fixed64                       -> uint64_t */
	PB_T_STRBUF,  /* string into char[cap], NUL-terminated */
	PB_T_STR,     /* string -> char * (malloc'd; NULL = absent) */
	PB_T_BYTES,   /* bytes -> uint8_t * (malloc'd) + size_t at cnt_off */
	PB_T_MSG,     /* nested message embedded in the struct (sub) */
};

enum pb_flag {
	PB_REQ = 1,      /* proto2 required: always written, must be present */
	PB_REP = 2,      /* repeated */
	PB_FIXED = 4,    /* repeated into an array of `cap` elements inside the
			    struct (count in size_t at cnt_off); else the array
			    is malloc'd (pointer at off, count at cnt_off) */
	PB_PACKED = 8,   /* write repeated scalars packed */
};

#define PB_NONE ((size_t)-1)

struct pb_mdesc;
typedef struct pb_fdesc {
	uint32_t num;
	uint8_t type;  /* enum pb_type */
	uint8_t flags; /* enum pb_flag */
	const char *name;
	size_t off;     /* the value, array or pointer */
	size_t has_off; /* bool "present" for optional fields, PB_NONE if none */
	size_t cnt_off; /* size_t element count (repeated) or byte length (bytes) */
	size_t cap;     /* PB_FIXED: elements; STRBUF: buffer size */
	const struct pb_mdesc *sub;
	int64_t def;    /* default for optional scalars when absent */
} pb_fdesc;

typedef struct pb_mdesc {
	const char *name; /* proto name, for errors: "core_entry" */
	size_t size;      /* sizeof the C struct */
	const pb_fdesc *fields;
	size_t n_fields;
} pb_mdesc;

/* Appends the encoding of *msg (no length prefix) to b. */
void pb_encode(pb_buf *b, const pb_mdesc *d, const void *msg);
/* Decodes into *msg (zeroed first, defaults applied). On failure everything
 * allocated so far is freed and *msg is zeroed. 0 or -1. */
int pb_decode(const pb_mdesc *d, void *msg, const void *data, size_t len, const char *where,
	      fp_error *err);
/* Frees what pb_decode (or the caller, with malloc) hung off *msg; leaves
 * *msg zeroed. */
void pb_free(const pb_mdesc *d, void *msg);

#endif
