/* forkpoint_info: named values (and records of them) that a result can
 * gain without any public struct changing size. */
#include "api/api_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct forkpoint_info {
	size_t n, cap;
	char **key, **val;
	size_t nitems, capitems;
	forkpoint_info **items;
};

forkpoint_info *api_info_new(void)
{
	return calloc(1, sizeof(forkpoint_info));
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *n = realloc(*p, c * size);
	if (!n)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

int api_info_set(forkpoint_info *r, const char *key, const char *fmt, ...)
{
	char *v;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&v, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key)) {
			free(r->val[i]);
			r->val[i] = v;
			return 0;
		}
	char *k = strdup(key);
	size_t kcap = r->cap;
	if (!k || grow((void **)&r->key, &kcap, r->n + 1, sizeof(char *)) < 0 ||
	    grow((void **)&r->val, &r->cap, r->n + 1, sizeof(char *)) < 0) {
		free(k);
		free(v);
		return -1;
	}
	r->key[r->n] = k;
	r->val[r->n++] = v;
	return 0;
}

int api_info_set_body(forkpoint_info *r, const char *body)
{
	for (const char *p = body; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', ll);
		if (eq && eq > p) {
			char key[128];
			size_t kl = (size_t)(eq - p) < sizeof(key) - 1 ? (size_t)(eq - p) : sizeof(key) - 1;
			memcpy(key, p, kl);
			key[kl] = '\0';
			if (api_info_set(r, key, "%.*s", (int)(ll - (size_t)(eq - p) - 1), eq + 1) < 0)
				return -1;
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

forkpoint_info *api_info_add_item(forkpoint_info *r)
{
	forkpoint_info *it = api_info_new();
	if (!it || grow((void **)&r->items, &r->capitems, r->nitems + 1, sizeof(*r->items)) < 0) {
		free(it);
		return NULL;
	}
	r->items[r->nitems++] = it;
	return it;
}

int api_info_out(forkpoint_info *r, forkpoint_info **out, forkpoint_error *err)
{
	if (!r)
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	if (out)
		*out = r;
	else
		forkpoint_info_free(r);
	return 0;
}

const char *forkpoint_info_get(const forkpoint_info *r, const char *key)
{
	for (size_t i = 0; r && key && i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return "";
}

int forkpoint_info_has(const forkpoint_info *r, const char *key)
{
	for (size_t i = 0; r && key && i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return 1;
	return 0;
}

long long forkpoint_info_int(const forkpoint_info *r, const char *key)
{
	return strtoll(forkpoint_info_get(r, key), NULL, 10);
}

double forkpoint_info_double(const forkpoint_info *r, const char *key)
{
	return strtod(forkpoint_info_get(r, key), NULL);
}

size_t forkpoint_info_size(const forkpoint_info *r)
{
	return r ? r->n : 0;
}

const char *forkpoint_info_key(const forkpoint_info *r, size_t i)
{
	return r && i < r->n ? r->key[i] : "";
}

const char *forkpoint_info_value(const forkpoint_info *r, size_t i)
{
	return r && i < r->n ? r->val[i] : "";
}

size_t forkpoint_info_items(const forkpoint_info *r)
{
	return r ? r->nitems : 0;
}

const forkpoint_info *forkpoint_info_item(const forkpoint_info *r, size_t i)
{
	return r && i < r->nitems ? r->items[i] : NULL;
}

void forkpoint_info_free(forkpoint_info *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->key[i]);
		free(r->val[i]);
	}
	for (size_t i = 0; i < r->nitems; i++)
		forkpoint_info_free(r->items[i]);
	free(r->key);
	free(r->val);
	free(r->items);
	free(r);
}
