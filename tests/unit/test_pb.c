/* The protobuf wire codec: varint edges, zigzag, every field type through the
 * table codec, packed and unpacked repeats, nested lengths, and malformed
 * input (which must give an error naming the place, never a crash). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_test.h"
#include "images/pb.h"

static void check_varints(void)
{
	static const struct { uint64_t v; size_t len; uint8_t b[10]; } cases[] = {
		{ 0, 1, { 0 } },
		{ 1, 1, { 1 } },
		{ 127, 1, { 0x7f } },
		{ 128, 2, { 0x80, 0x01 } },
		{ 300, 2, { 0xac, 0x02 } },
		{ 16383, 2, { 0xff, 0x7f } },
		{ 16384, 3, { 0x80, 0x80, 0x01 } },
		{ 0xffffffffull, 5, { 0xff, 0xff, 0xff, 0xff, 0x0f } },
		{ 1ull << 63, 10, { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 } },
		{ UINT64_MAX, 10, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pb_buf b;
		pb_buf_init(&b);
		pb_put_varint(&b, cases[i].v);
		CHECKF(b.len == cases[i].len && memcmp(b.data, cases[i].b, b.len) == 0,
		       "varint %llu", (unsigned long long)cases[i].v);
		CHECK(pb_varint_size(cases[i].v) == cases[i].len);
		pb_reader r;
		fp_error e;
		pb_reader_init(&r, b.data, b.len, "t", &e);
		uint64_t v = 0;
		CHECK(pb_read_varint(&r, &v) == 0 && v == cases[i].v && r.p == r.end);
		/* every truncation fails */
		for (size_t cut = 0; cut < b.len; cut++) {
			pb_reader_init(&r, b.data, cut, "t", &e);
			CHECK(pb_read_varint(&r, &v) < 0);
		}
		pb_buf_free(&b);
	}
	fp_error e;
	pb_reader r;
	uint64_t v;
	/* 11 bytes, and a 10th byte with bits beyond 64 */
	uint8_t eleven[11] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	pb_reader_init(&r, eleven, 11, "t", &e);
	CHECK(pb_read_varint(&r, &v) < 0);
	uint8_t over[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	pb_reader_init(&r, over, 10, "t", &e);
	CHECK(pb_read_varint(&r, &v) < 0 && strstr(e.msg, "overflow") != NULL);
	/* non-minimal encodings are still valid protobuf */
	uint8_t padded[3] = { 0x81, 0x80, 0x00 };
	pb_reader_init(&r, padded, 3, "t", &e);
	CHECK(pb_read_varint(&r, &v) == 0 && v == 1);
}

static void check_zigzag(void)
{
	CHECK(pb_zigzag(0) == 0 && pb_zigzag(-1) == 1 && pb_zigzag(1) == 2 && pb_zigzag(-2) == 3);
	CHECK(pb_zigzag(INT64_MAX) == UINT64_MAX - 1 && pb_zigzag(INT64_MIN) == UINT64_MAX);
	int64_t vals[] = { 0, 1, -1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		CHECK(pb_unzigzag(pb_zigzag(vals[i])) == vals[i]);
}

/* A message with every kind of field the table codec supports. */
typedef struct inner {
	uint32_t a;
	bool has_b;
	uint64_t b;
} inner;

typedef struct all {
	uint32_t u32;
	uint64_t u64;
	bool flag;
	int32_t i32, s32;
	int64_t s64;
	uint32_t f32;
	uint64_t f64;
	char sbuf[8];
	char *str;
	uint8_t *bytes;
	size_t bytes_len;
	inner sub;
	bool has_opt;
	uint32_t opt;
	bool has_defd;
	int32_t defd;
	uint32_t fixed[4];
	size_t n_fixed;
	uint64_t *dyn;
	size_t n_dyn;
	uint32_t *packed;
	size_t n_packed;
	inner *subs;
	size_t n_subs;
	uint32_t nz; /* optional without has-flag: written when non-zero */
} all;

#define O(m) offsetof(all, m)
static const pb_fdesc inner_f[] = {
	{ 1, PB_T_U32, PB_REQ, "a", offsetof(inner, a), PB_NONE, 0, 0, NULL, 0 },
	{ 2, PB_T_U64, 0, "b", offsetof(inner, b), offsetof(inner, has_b), 0, 0, NULL, 0 },
};
static const pb_mdesc inner_d = { "inner", sizeof(inner), inner_f, 2 };
static const pb_fdesc all_f[] = {
	{ 1, PB_T_U32, PB_REQ, "u32", O(u32), PB_NONE, 0, 0, NULL, 0 },
	{ 2, PB_T_U64, PB_REQ, "u64", O(u64), PB_NONE, 0, 0, NULL, 0 },
	{ 3, PB_T_BOOL, PB_REQ, "flag", O(flag), PB_NONE, 0, 0, NULL, 0 },
	{ 4, PB_T_I32, PB_REQ, "i32", O(i32), PB_NONE, 0, 0, NULL, 0 },
	{ 5, PB_T_S32, PB_REQ, "s32", O(s32), PB_NONE, 0, 0, NULL, 0 },
	{ 6, PB_T_S64, PB_REQ, "s64", O(s64), PB_NONE, 0, 0, NULL, 0 },
	{ 7, PB_T_F32, PB_REQ, "f32", O(f32), PB_NONE, 0, 0, NULL, 0 },
	{ 8, PB_T_F64, PB_REQ, "f64", O(f64), PB_NONE, 0, 0, NULL, 0 },
	{ 9, PB_T_STRBUF, PB_REQ, "sbuf", O(sbuf), PB_NONE, 0, 8, NULL, 0 },
	{ 10, PB_T_STR, 0, "str", O(str), PB_NONE, 0, 0, NULL, 0 },
	{ 11, PB_T_BYTES, 0, "bytes", O(bytes), PB_NONE, O(bytes_len), 0, NULL, 0 },
	{ 12, PB_T_MSG, PB_REQ, "sub", O(sub), PB_NONE, 0, 0, &inner_d, 0 },
	{ 13, PB_T_U32, 0, "opt", O(opt), O(has_opt), 0, 0, NULL, 0 },
	{ 14, PB_T_I32, 0, "defd", O(defd), O(has_defd), 0, 0, NULL, -7 },
	{ 15, PB_T_U32, PB_REP | PB_FIXED, "fixed", O(fixed), PB_NONE, O(n_fixed), 4, NULL, 0 },
	{ 16, PB_T_U64, PB_REP, "dyn", O(dyn), PB_NONE, O(n_dyn), 0, NULL, 0 },
	{ 17, PB_T_U32, PB_REP | PB_PACKED, "packed", O(packed), PB_NONE, O(n_packed), 0, NULL, 0 },
	{ 18, PB_T_MSG, PB_REP, "subs", O(subs), PB_NONE, O(n_subs), 0, &inner_d, 0 },
	{ 19, PB_T_U32, 0, "nz", O(nz), PB_NONE, 0, 0, NULL, 0 },
};
static const pb_mdesc all_d = { "all", sizeof(all), all_f, sizeof(all_f) / sizeof(all_f[0]) };

static void fill(all *m)
{
	memset(m, 0, sizeof(*m));
	m->u32 = 0xffffffffu;
	m->u64 = UINT64_MAX;
	m->flag = true;
	m->i32 = -2;
	m->s32 = INT32_MIN;
	m->s64 = -1234567890123ll;
	m->f32 = 0xdeadbeef;
	m->f64 = 0x0123456789abcdefull;
	strcpy(m->sbuf, "abcdefg");
	m->str = strdup("hello");
	m->bytes_len = 3;
	m->bytes = malloc(3);
	memcpy(m->bytes, "\0\1\2", 3);
	m->sub.a = 5;
	m->has_opt = true;
	m->opt = 0;
	m->n_fixed = 3;
	m->fixed[2] = 99;
	m->n_dyn = 300; /* grows the array past several powers of two */
	m->dyn = calloc(300, sizeof(uint64_t));
	for (int i = 0; i < 300; i++)
		m->dyn[i] = (uint64_t)i * 1000003u;
	m->n_packed = 5;
	m->packed = calloc(5, sizeof(uint32_t));
	for (int i = 0; i < 5; i++)
		m->packed[i] = (uint32_t)i << 20;
	m->n_subs = 40; /* nested bodies of 40 entries: lengths > 127 in the outer */
	m->subs = calloc(40, sizeof(inner));
	for (int i = 0; i < 40; i++) {
		m->subs[i].a = (uint32_t)i;
		m->subs[i].has_b = i % 2;
		m->subs[i].b = UINT64_MAX - (uint64_t)i;
	}
}

static void check_table_codec(void)
{
	all m, d;
	fill(&m);
	pb_buf b;
	pb_buf_init(&b);
	pb_encode(&b, &all_d, &m);
	CHECK(!b.oom && b.len > 0);
	/* i32 -2 is 10 bytes of varint: tag 0x20 then ff..ff 01 */
	static const uint8_t neg[] = { 0x20, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	CHECK(memmem(b.data, b.len, neg, sizeof(neg)) != NULL);
	/* packed field 17: tag (17<<3|2) = 0x8a 0x01 */
	static const uint8_t ptag[] = { 0x8a, 0x01 };
	CHECK(memmem(b.data, b.len, ptag, 2) != NULL);
	fp_error e = { 0 };
	CHECKF(pb_decode(&all_d, &d, b.data, b.len, "t", &e) == 0, "%s", e.msg);
	CHECK(d.u32 == m.u32 && d.u64 == m.u64 && d.flag && d.i32 == -2 && d.s32 == INT32_MIN);
	CHECK(d.s64 == m.s64 && d.f32 == m.f32 && d.f64 == m.f64 && !strcmp(d.sbuf, "abcdefg"));
	CHECK(d.str && !strcmp(d.str, "hello") && d.bytes_len == 3 && !memcmp(d.bytes, "\0\1\2", 3));
	CHECK(d.sub.a == 5 && !d.sub.has_b && d.has_opt && d.opt == 0);
	CHECK(!d.has_defd && d.defd == -7); /* default applied when absent */
	CHECK(d.n_fixed == 3 && d.fixed[2] == 99);
	CHECK(d.n_dyn == 300 && d.dyn[299] == 299ull * 1000003u);
	CHECK(d.n_packed == 5 && d.packed[4] == 4u << 20);
	CHECK(d.n_subs == 40 && d.subs[39].a == 39 && d.subs[39].has_b &&
	      d.subs[39].b == UINT64_MAX - 39 && !d.subs[38].has_b);
	CHECK(d.nz == 0);
	/* re-encoding is byte-identical */
	pb_buf b2;
	pb_buf_init(&b2);
	pb_encode(&b2, &all_d, &d);
	CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
	pb_buf_free(&b2);

	/* every truncation of the message fails or decodes cleanly (a cut at a
	 * field boundary after all required fields is a valid message) */
	int refused = 0;
	for (size_t cut = 0; cut < b.len; cut++) {
		all t;
		if (pb_decode(&all_d, &t, b.data, cut, "cut", &e) < 0)
			refused++;
		else
			pb_free(&all_d, &t);
	}
	CHECK(refused > (int)b.len / 2);

	/* random corruption: never a crash or leak (ASan) */
	uint8_t *mut = malloc(b.len);
	unsigned seed = 7;
	for (int round = 0; round < 3000; round++) {
		memcpy(mut, b.data, b.len);
		for (int k = 0; k < 1 + round % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			mut[(seed >> 8) % b.len] ^= (uint8_t)(seed >> 3);
		}
		all t;
		if (pb_decode(&all_d, &t, mut, b.len, "mut", &e) == 0)
			pb_free(&all_d, &t);
	}
	free(mut);

	/* unpacked form of the packed field decodes the same */
	pb_buf u;
	pb_buf_init(&u);
	pb_put_u64(&u, 1, 1);
	pb_put_u64(&u, 2, 2);
	pb_put_u64(&u, 3, 0);
	pb_put_i64(&u, 4, 0);
	pb_put_s64(&u, 5, -1);
	pb_put_s64(&u, 6, 0);
	pb_put_fixed32(&u, 7, 0);
	pb_put_fixed64(&u, 8, 0);
	pb_put_string(&u, 9, "x");
	size_t mk = pb_begin_msg(&u, 12);
	pb_put_u64(&u, 1, 1);
	pb_end_msg(&u, mk);
	pb_put_u64(&u, 17, 11);
	pb_put_u64(&u, 17, 12);
	uint64_t pk[2] = { 13, 14 };
	pb_put_packed_u64(&u, 17, pk, 2);
	all t;
	CHECKF(pb_decode(&all_d, &t, u.data, u.len, "u", &e) == 0, "%s", e.msg);
	CHECK(t.s32 == -1 && t.n_packed == 4 && t.packed[0] == 11 && t.packed[3] == 14);
	pb_free(&all_d, &t);

	/* errors name the place */
	pb_buf_reset(&u);
	pb_put_string(&u, 9, "too long!");
	CHECK(pb_decode(&all_d, &t, u.data, u.len, "file.img entry 2", &e) < 0);
	CHECKF(strstr(e.msg, "file.img entry 2: all: field 9 (sbuf)") != NULL, "%s", e.msg);
	pb_buf_reset(&u);
	for (int i = 0; i < 5; i++)
		pb_put_u64(&u, 15, 1);
	CHECK(pb_decode(&all_d, &t, u.data, u.len, "x", &e) < 0 && strstr(e.msg, "fixed"));
	pb_buf_reset(&u);
	pb_put_fixed32(&u, 1, 5); /* u32 with the wrong wire type */
	CHECK(pb_decode(&all_d, &t, u.data, u.len, "x", &e) < 0 && strstr(e.msg, "(u32)"));
	pb_buf_reset(&u);
	mk = pb_begin_msg(&u, 12); /* nested message missing its required field */
	pb_put_u64(&u, 2, 1);
	pb_end_msg(&u, mk);
	CHECK(pb_decode(&all_d, &t, u.data, u.len, "x", &e) < 0);
	CHECKF(strstr(e.msg, "x: all.sub") != NULL && strstr(e.msg, "field 1 (a)"), "%s", e.msg);
	/* field number 0, group wire types, truncated fixed values */
	uint8_t f0[] = { 0x00, 0x01 };
	CHECK(pb_decode(&all_d, &t, f0, 2, "x", &e) < 0);
	uint8_t grp[] = { 0x0b, 0x0c };
	CHECK(pb_decode(&all_d, &t, grp, 2, "x", &e) < 0);
	uint8_t f32[] = { 0x3d, 0x01, 0x02 };
	CHECK(pb_decode(&all_d, &t, f32, 3, "x", &e) < 0);
	uint8_t f64[] = { 0x41, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	CHECK(pb_decode(&all_d, &t, f64, 8, "x", &e) < 0);
	uint8_t hugelen[] = { 0x52, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	CHECK(pb_decode(&all_d, &t, hugelen, sizeof(hugelen), "x", &e) < 0);
	uint8_t badpacked[] = { 0x8a, 0x01, 0x02, 0x80, 0x80 };
	CHECK(pb_decode(&all_d, &t, badpacked, sizeof(badpacked), "x", &e) < 0);
	pb_buf_free(&u);

	pb_free(&all_d, &d);
	pb_free(&all_d, &m);
	pb_buf_free(&b);
}

static void check_big_nested(void)
{
	/* nested bodies needing 3-byte lengths */
	pb_buf b;
	pb_buf_init(&b);
	size_t outer = pb_begin_msg(&b, 1);
	size_t in = pb_begin_msg(&b, 2);
	static uint8_t blob[70000];
	memset(blob, 0x5a, sizeof(blob));
	pb_put_bytes(&b, 3, blob, sizeof(blob));
	pb_end_msg(&b, in);
	pb_end_msg(&b, outer);
	CHECK(!b.oom);
	pb_reader r, r2, r3;
	fp_error e;
	pb_field f;
	pb_reader_init(&r, b.data, b.len, "t", &e);
	CHECK(pb_next(&r, &f) == 1 && f.num == 1 && f.wt == PB_WT_LEN);
	pb_reader_init(&r2, f.data, f.len, "t", &e);
	CHECK(pb_next(&r2, &f) == 1 && f.num == 2);
	pb_reader_init(&r3, f.data, f.len, "t", &e);
	CHECK(pb_next(&r3, &f) == 1 && f.num == 3 && f.len == sizeof(blob) &&
	      f.data[69999] == 0x5a);
	CHECK(pb_next(&r3, &f) == 0 && pb_next(&r2, &f) == 0 && pb_next(&r, &f) == 0);
	pb_buf_free(&b);
}

int main(void)
{
	check_varints();
	check_zigzag();
	check_table_codec();
	check_big_nested();
	return fp_test_done();
}
