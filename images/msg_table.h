/* Private: shorthands for writing the pb_fdesc tables of criu_msgs.h.
 * T is the C struct; member names are the proto field names. */
#ifndef FP_MSG_TABLE_H
#define FP_MSG_TABLE_H

#include <stddef.h>

#include "images/criu_msgs.h"
#include "images/pb.h"

#define MEMBER_CAP(T, m) (sizeof(((T *)0)->m) / sizeof(((T *)0)->m[0]))

/* required scalar / optional scalar with has_ flag / optional with a default */
#define F_REQ(num, T, ty, m) { num, PB_T_##ty, PB_REQ, #m, offsetof(T, m), PB_NONE, 0, 0, NULL, 0 }
#define F_OPT(num, T, ty, m) { num, PB_T_##ty, 0, #m, offsetof(T, m), offsetof(T, has_##m), 0, 0, NULL, 0 }
#define F_OPTD(num, T, ty, m, d) { num, PB_T_##ty, 0, #m, offsetof(T, m), offsetof(T, has_##m), 0, 0, NULL, d }
/* optional string (char *, NULL = absent) */
#define F_STR(num, T, m) { num, PB_T_STR, 0, #m, offsetof(T, m), PB_NONE, 0, 0, NULL, 0 }
/* string into a char array */
#define F_STRBUF_REQ(num, T, m) { num, PB_T_STRBUF, PB_REQ, #m, offsetof(T, m), PB_NONE, 0, sizeof(((T *)0)->m), NULL, 0 }
#define F_STRBUF_OPT(num, T, m) { num, PB_T_STRBUF, 0, #m, offsetof(T, m), offsetof(T, has_##m), 0, sizeof(((T *)0)->m), NULL, 0 }
/* bytes (uint8_t *m + size_t m##_len) */
#define F_BYTES_REQ(num, T, m) { num, PB_T_BYTES, PB_REQ, #m, offsetof(T, m), PB_NONE, offsetof(T, m##_len), 0, NULL, 0 }
#define F_BYTES_OPT(num, T, m) { num, PB_T_BYTES, 0, #m, offsetof(T, m), offsetof(T, has_##m), offsetof(T, m##_len), 0, NULL, 0 }
/* nested message embedded in the struct */
#define F_MSG_REQ(num, T, m, sub) { num, PB_T_MSG, PB_REQ, #m, offsetof(T, m), PB_NONE, 0, 0, &sub, 0 }
#define F_MSG_OPT(num, T, m, sub) { num, PB_T_MSG, 0, #m, offsetof(T, m), offsetof(T, has_##m), 0, 0, &sub, 0 }
/* repeated: fixed array m[cap] + size_t n_m, or malloc'd m + size_t n_m */
#define F_REP_FIXED(num, T, ty, m) { num, PB_T_##ty, PB_REP | PB_FIXED, #m, offsetof(T, m), PB_NONE, offsetof(T, n_##m), MEMBER_CAP(T, m), NULL, 0 }
#define F_REP_DYN(num, T, ty, m) { num, PB_T_##ty, PB_REP, #m, offsetof(T, m), PB_NONE, offsetof(T, n_##m), 0, NULL, 0 }
#define F_REPMSG_FIXED(num, T, m, sub) { num, PB_T_MSG, PB_REP | PB_FIXED, #m, offsetof(T, m), PB_NONE, offsetof(T, n_##m), MEMBER_CAP(T, m), &sub, 0 }
#define F_REPMSG_DYN(num, T, m, sub) { num, PB_T_MSG, PB_REP, #m, offsetof(T, m), PB_NONE, offsetof(T, n_##m), 0, &sub, 0 }

#define DESC(var, pname, T, tbl) \
	const pb_mdesc var = { pname, sizeof(T), tbl, sizeof(tbl) / sizeof(tbl[0]) }

#endif
