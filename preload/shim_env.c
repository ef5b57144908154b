/* Keeping exec'd programs under the shim.
 *
 * A program may exec with an environment that lost LD_PRELOAD or our variables
 * (clearenv(), `env -i`, execve with a hand-made envp). The exec wrappers then
 * pass a copy of envp with the missing entries added. The copy lives in the
 * wrapper's stack frame (exec does not return on success; posix_spawn has
 * finished with it when it returns), so no heap is used:
 *   fp_env_fix_size() says how many pointers and string bytes the copy needs
 *   (0 pointers: envp is fine as it is), the caller reserves them, and
 *   fp_env_fix() fills them.
 * An LD_PRELOAD that exists but lacks the shim gets it appended, so the
 * program's own preloads keep precedence. */
#include "shim_internal.h"

static int preload_has_shim(const char *v)
{
	/* entries are separated by ':' or ' '; match on the file name */
	static const char so[] = FP_SHIM_SONAME;
	const size_t so_len = sizeof(so) - 1;
	while (*v) {
		const char *e = v;
		while (*e && *e != ':' && *e != ' ')
			e++;
		size_t len = (size_t)(e - v);
		if (len >= so_len && (len == so_len || v[len - so_len - 1] == '/')) {
			size_t i = 0;
			while (i < so_len && v[len - so_len + i] == so[i])
				i++;
			if (i == so_len)
				return 1;
		}
		v = *e ? e + 1 : e;
	}
	return 0;
}

struct fp_env_scan {
	size_t n;
	long preload_at; /* index of the first LD_PRELOAD=, -1 if none */
	int preload_ok, have_shim, have_session;
};

static void scan(char *const envp[], struct fp_env_scan *s)
{
	s->n = 0;
	s->preload_at = -1;
	s->preload_ok = s->have_shim = s->have_session = 0;
	if (!envp)
		return;
	for (; envp[s->n]; s->n++) {
		const char *e = envp[s->n];
		if (s->preload_at < 0 && fp_starts(e, "LD_PRELOAD=")) {
			s->preload_at = (long)s->n;
			s->preload_ok = preload_has_shim(e + 11);
		} else if (fp_starts(e, FP_ENV_SHIM "=")) {
			s->have_shim = 1;
		} else if (fp_starts(e, FP_ENV_SESSION "=")) {
			s->have_session = 1;
		}
	}
}

static int needs_fix(const struct fp_env_scan *s)
{
	if (!fp_env_shim[0])
		return 0; /* we do not know our own path: nothing sensible to add */
	return !s->preload_ok || !s->have_shim || (fp_have_session && !s->have_session);
}

FP_HIDDEN size_t fp_env_fix_size(char *const envp[], size_t *str_len)
{
	struct fp_env_scan s;
	*str_len = 0;
	if (__atomic_load_n(&fp_init_state, __ATOMIC_ACQUIRE) != FP_INIT_DONE)
		return 0;
	scan(envp, &s);
	if (!needs_fix(&s))
		return 0;
	if (s.preload_at >= 0 && !s.preload_ok)
		*str_len = fp_strlen(envp[s.preload_at]) + 1 + fp_strlen(FP_T->shim_path) + 1;
	return s.n + 4; /* + LD_PRELOAD, FORKPOINT_SHIM, FORKPOINT_SESSION, NULL */
}

FP_HIDDEN char *const *fp_env_fix(char *const envp[], char **vec, char *str)
{
	struct fp_env_scan s;
	scan(envp, &s);
	size_t k = 0;
	for (size_t i = 0; i < s.n; i++) {
		if ((long)i == s.preload_at && !s.preload_ok) {
			/* "LD_PRELOAD=old:shim" */
			size_t n = 0;
			for (const char *p = envp[i]; *p; p++)
				str[n++] = *p;
			if (envp[i][11])
				str[n++] = ':';
			for (const char *p = FP_T->shim_path; *p; p++)
				str[n++] = *p;
			str[n] = '\0';
			vec[k++] = str;
		} else {
			vec[k++] = envp[i];
		}
	}
	if (s.preload_at < 0)
		vec[k++] = fp_env_preload;
	if (!s.have_shim)
		vec[k++] = fp_env_shim;
	if (fp_have_session && !s.have_session)
		vec[k++] = fp_env_session;
	vec[k] = NULL;
	return vec;
}
