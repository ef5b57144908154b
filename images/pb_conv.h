/* Private: the kit for images/conv_*.c, which map forkpoint's structs
 * (criu_msgs.h) onto the structs protoc-c generates.
 *
 * A message is one list of its fields, X(KIND, name[, sub]), expanded three
 * times by PB_CONV: into X_pb_out (fill the generated struct, in arena memory),
 * X_pb_in (fill ours, checking what the wire format cannot) and X_pb_free.
 * Member names are the proto field names on both sides. Kinds:
 *   VAL   required scalar                 OPT   optional scalar with has_<name>
 *   STR   optional char * (NULL = absent) RSTR  required char *
 *   SBUF  required string in char[N]      OSBUF optional char[N] with has_<name>
 *   BYTES required uint8_t * + <name>_len OBYTES the same, optional with has_<name>
 *   MSG   required embedded sub-message   OMSG  optional embedded, has_<name>
 *   AFIX  repeated scalar into T name[N]  ADYN  repeated scalar, malloc'd T *name
 *   MFIX  repeated sub-messages in [N]    MDYN  repeated sub-messages, malloc'd
 * Repeated fields count in size_t n_<name> on both sides. A sub-message
 * `sub` is another message of the same kit (sub_pb_out, sub_pb_in, sub_pb_free). */
#ifndef FP_PB_CONV_H
#define FP_PB_CONV_H

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "images/criu_msgs.h"
#include "images/pb.h"

#define PB_CAP(a) (sizeof(a) / sizeof((a)[0]))

/* Failures of the conversion, named like the codec's: "<where>: field <name>: ...". */
int pb_conv_fail(fp_error *err, const char *where, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "<where>.<field>" into buf, for the errors of a sub-message. */
const char *pb_conv_where(char *buf, size_t len, const char *where, const char *field);
char *pb_conv_strndup(pb_arena *a, const char *s, size_t max);
/* A malloc'd copy of n bytes, NUL-terminated; NULL (err set) on failure. */
void *pb_conv_memdup(const void *p, size_t n, const char *where, const char *field, fp_error *err);
/* calloc(n, es); NULL (err set) on failure. */
void *pb_conv_calloc(size_t n, size_t es, const char *where, const char *field, fp_error *err);

#define PB_ENC(k, ...) PB_ENC_##k(__VA_ARGS__)
#define PB_DEC(k, ...) PB_DEC_##k(__VA_ARGS__)
#define PB_FRE(k, ...) PB_FRE_##k(__VA_ARGS__)

#define PB_ENC_VAL(f) p->f = c->f;
#define PB_DEC_VAL(f) c->f = p->f;
#define PB_FRE_VAL(f)

#define PB_ENC_OPT(f) p->has_##f = c->has_##f, p->f = c->f;
#define PB_DEC_OPT(f) c->has_##f = p->has_##f, c->f = p->f;
#define PB_FRE_OPT(f)

#define PB_ENC_STR(f) p->f = (char *)c->f;
#define PB_DEC_STR(f) \
	if (p->f && !(c->f = pb_conv_memdup(p->f, strlen(p->f), where, #f, err))) \
		return -1;
#define PB_FRE_STR(f) free(c->f);

#define PB_ENC_RSTR(f) p->f = (char *)(c->f ? c->f : "");
#define PB_DEC_RSTR PB_DEC_STR
#define PB_FRE_RSTR PB_FRE_STR

#define PB_ENC_SBUF(f) \
	if (!(p->f = pb_conv_strndup(a, c->f, sizeof(c->f)))) \
		return NULL;
#define PB_DEC_SBUF(f) \
	if (strlen(p->f) >= sizeof(c->f)) \
		return pb_conv_fail(err, where, #f, "string of %zu bytes, at most %zu allowed", \
				    strlen(p->f), sizeof(c->f) - 1); \
	strcpy(c->f, p->f);
#define PB_FRE_SBUF(f)

#define PB_ENC_OSBUF(f) \
	if (c->has_##f) { \
		PB_ENC_SBUF(f) \
	}
#define PB_DEC_OSBUF(f) \
	if ((c->has_##f = p->f != NULL)) { \
		PB_DEC_SBUF(f) \
	}
#define PB_FRE_OSBUF(f)

#define PB_ENC_BYTES(f) p->f.data = (uint8_t *)c->f, p->f.len = c->f ? c->f##_len : 0;
#define PB_DEC_BYTES(f) \
	if (!(c->f = pb_conv_memdup(p->f.data, p->f.len, where, #f, err))) \
		return -1; \
	c->f##_len = p->f.len;
#define PB_FRE_BYTES(f) free(c->f);

#define PB_ENC_OBYTES(f) p->has_##f = c->has_##f; PB_ENC_BYTES(f)
#define PB_DEC_OBYTES(f) \
	if ((c->has_##f = p->has_##f)) { \
		PB_DEC_BYTES(f) \
	}
#define PB_FRE_OBYTES PB_FRE_BYTES

#define PB_ENC_MSG(f, sub) \
	if (!(p->f = (void *)sub##_pb_out(&c->f, a))) \
		return NULL;
#define PB_DEC_MSG(f, sub) \
	if (sub##_pb_in(&p->f->base, &c->f, pb_conv_where(w, sizeof(w), where, #f), err) < 0) \
		return -1;
#define PB_FRE_MSG(f, sub) sub##_pb_free(&c->f);

#define PB_ENC_OMSG(f, sub) \
	if (c->has_##f) { \
		PB_ENC_MSG(f, sub) \
	}
#define PB_DEC_OMSG(f, sub) \
	if ((c->has_##f = p->f != NULL)) { \
		PB_DEC_MSG(f, sub) \
	}
#define PB_FRE_OMSG PB_FRE_MSG

/* Repeated scalars are copied element by element: the two sides may differ
 * in type (bool and protobuf_c_boolean), never in value. */
#define PB_ENC_ARR(f, n) \
	p->n_##f = (n); \
	if (p->n_##f && !(p->f = pb_arena_alloc(a, p->n_##f * sizeof(*p->f)))) \
		return NULL; \
	for (size_t i_ = 0; i_ < p->n_##f; i_++) \
		p->f[i_] = c->f[i_];
#define PB_ENC_AFIX(f) PB_ENC_ARR(f, c->n_##f < PB_CAP(c->f) ? c->n_##f : PB_CAP(c->f))
#define PB_DEC_AFIX(f) \
	if (p->n_##f > PB_CAP(c->f)) \
		return pb_conv_fail(err, where, #f, "%zu values, more than %zu allowed", p->n_##f, \
				    PB_CAP(c->f)); \
	for (size_t i_ = 0; i_ < p->n_##f; i_++) \
		c->f[i_] = p->f[i_]; \
	c->n_##f = p->n_##f;
#define PB_FRE_AFIX(f)

#define PB_ENC_ADYN(f) PB_ENC_ARR(f, c->f ? c->n_##f : 0)
#define PB_DEC_ADYN(f) \
	if (p->n_##f && !(c->f = pb_conv_calloc(p->n_##f, sizeof(*c->f), where, #f, err))) \
		return -1; \
	for (size_t i_ = 0; i_ < p->n_##f; i_++) \
		c->f[i_] = p->f[i_]; \
	c->n_##f = p->n_##f;
#define PB_FRE_ADYN(f) free(c->f);

#define PB_ENC_MARR(f, sub, n) \
	p->n_##f = (n); \
	if (p->n_##f && !(p->f = pb_arena_alloc(a, p->n_##f * sizeof(*p->f)))) \
		return NULL; \
	for (size_t i_ = 0; i_ < p->n_##f; i_++) \
		if (!(p->f[i_] = (void *)sub##_pb_out(&c->f[i_], a))) \
			return NULL;
#define PB_DEC_MARR(f, sub) \
	for (size_t i_ = 0; i_ < p->n_##f; i_++) { \
		c->n_##f = i_ + 1; /* so that a failure frees what this one took */ \
		if (sub##_pb_in(&p->f[i_]->base, &c->f[i_], pb_conv_where(w, sizeof(w), where, #f), err) < 0) \
			return -1; \
	}
#define PB_ENC_MFIX(f, sub) PB_ENC_MARR(f, sub, c->n_##f < PB_CAP(c->f) ? c->n_##f : PB_CAP(c->f))
#define PB_DEC_MFIX(f, sub) \
	if (p->n_##f > PB_CAP(c->f)) \
		return pb_conv_fail(err, where, #f, "%zu values, more than %zu allowed", p->n_##f, \
				    PB_CAP(c->f)); \
	PB_DEC_MARR(f, sub)
#define PB_FRE_MFIX(f, sub) \
	for (size_t i_ = 0; i_ < c->n_##f && i_ < PB_CAP(c->f); i_++) \
		sub##_pb_free(&c->f[i_]);

#define PB_ENC_MDYN(f, sub) PB_ENC_MARR(f, sub, c->f ? c->n_##f : 0)
#define PB_DEC_MDYN(f, sub) \
	if (p->n_##f && !(c->f = pb_conv_calloc(p->n_##f, sizeof(*c->f), where, #f, err))) \
		return -1; \
	PB_DEC_MARR(f, sub)
#define PB_FRE_MDYN(f, sub) \
	for (size_t i_ = 0; c->f && i_ < c->n_##f; i_++) \
		sub##_pb_free(&c->f[i_]); \
	free(c->f);

/* The three functions and the pb_mdesc of a message. T is our struct, P the
 * generated one, pbname its generated prefix (fp__core_entry; the proto name
 * for errors is that without the package's "fp__"). */
#define PB_CONV(name, T, P, pbname, FIELDS) \
	static __attribute__((unused)) ProtobufCMessage *name##_pb_out(const void *cv, pb_arena *a) \
	{ \
		const T *c = cv; \
		P *p = pb_arena_alloc(a, sizeof(*p)); \
		if (!p) \
			return NULL; \
		protobuf_c_message_init(&pbname##__descriptor, p); \
		(void)c; \
		FIELDS(PB_ENC) \
		return &p->base; \
	} \
	static __attribute__((unused)) int name##_pb_in(const ProtobufCMessage *m, void *cv, \
							  const char *where, fp_error *err) \
	{ \
		const P *p = (const P *)m; \
		T *c = cv; \
		char w[512]; \
		(void)p, (void)c, (void)w, (void)where, (void)err; \
		FIELDS(PB_DEC) \
		return 0; \
	} \
	static __attribute__((unused)) void name##_pb_free(void *cv) \
	{ \
		T *c = cv; \
		(void)c; \
		FIELDS(PB_FRE) \
	} \
	const pb_mdesc name##_desc = { &(#pbname)[4], sizeof(T), &pbname##__descriptor, name##_pb_out, \
				       name##_pb_in, name##_pb_free }

#endif
