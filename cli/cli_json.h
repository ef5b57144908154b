/* A small streaming JSON writer for --json output. It tracks nesting so
 * callers never place commas by hand. */
#ifndef FP_CLI_JSON_H
#define FP_CLI_JSON_H

#include <stdint.h>
#include <stdio.h>

#define FP_JSON_MAX_DEPTH 32

typedef struct fp_json {
	FILE *out;
	int depth;
	int count[FP_JSON_MAX_DEPTH]; /* members written at each level */
	int pretty;
} fp_json;

void fp_json_init(fp_json *j, FILE *out, int pretty);
void fp_json_obj_begin(fp_json *j, const char *key); /* key NULL inside arrays / top */
void fp_json_obj_end(fp_json *j);
void fp_json_arr_begin(fp_json *j, const char *key);
void fp_json_arr_end(fp_json *j);
void fp_json_str(fp_json *j, const char *key, const char *val); /* val NULL -> null */
void fp_json_int(fp_json *j, const char *key, long long val);
void fp_json_uint(fp_json *j, const char *key, unsigned long long val);
void fp_json_hex(fp_json *j, const char *key, uint64_t val); /* "0x..." string */
void fp_json_bool(fp_json *j, const char *key, int val);
void fp_json_double(fp_json *j, const char *key, double val);
/* Ends the document with a newline. */
void fp_json_finish(fp_json *j);
/* Writes s as a JSON string literal (with quotes). */
void fp_json_write_string(FILE *out, const char *s);

#endif
