#include "cli_json.h"

#include <inttypes.h>

void fp_json_init(fp_json *j, FILE *out, int pretty)
{
	j->out = out;
	j->depth = 0;
	j->count[0] = 0;
	j->pretty = pretty;
}

void fp_json_write_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\t': fputs("\\t", out); break;
		case '\r': fputs("\\r", out); break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void indent(fp_json *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->out);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

static void member(fp_json *j, const char *key)
{
	if (j->count[j->depth]++ > 0)
		fputc(',', j->out);
	if (j->depth > 0)
		indent(j);
	if (key) {
		fp_json_write_string(j->out, key);
		fputs(j->pretty ? ": " : ":", j->out);
	}
}

static void open_(fp_json *j, const char *key, char c)
{
	member(j, key);
	fputc(c, j->out);
	if (j->depth + 1 < FP_JSON_MAX_DEPTH)
		j->depth++;
	j->count[j->depth] = 0;
}

static void close_(fp_json *j, char c)
{
	int had = j->count[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (had)
		indent(j);
	fputc(c, j->out);
}

void fp_json_obj_begin(fp_json *j, const char *key) { open_(j, key, '{'); }
void fp_json_obj_end(fp_json *j) { close_(j, '}'); }
void fp_json_arr_begin(fp_json *j, const char *key) { open_(j, key, '['); }
void fp_json_arr_end(fp_json *j) { close_(j, ']'); }

void fp_json_str(fp_json *j, const char *key, const char *val)
{
	member(j, key);
	if (val)
		fp_json_write_string(j->out, val);
	else
		fputs("null", j->out);
}

void fp_json_int(fp_json *j, const char *key, long long val)
{
	member(j, key);
	fprintf(j->out, "%lld", val);
}

void fp_json_uint(fp_json *j, const char *key, unsigned long long val)
{
	member(j, key);
	fprintf(j->out, "%llu", val);
}

void fp_json_hex(fp_json *j, const char *key, uint64_t val)
{
	member(j, key);
	fprintf(j->out, "\"0x%" PRIx64 "\"", val);
}

void fp_json_bool(fp_json *j, const char *key, int val)
{
	member(j, key);
	fputs(val ? "true" : "false", j->out);
}

void fp_json_double(fp_json *j, const char *key, double val)
{
	member(j, key);
	fprintf(j->out, "%.6g", val);
}

void fp_json_finish(fp_json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}
