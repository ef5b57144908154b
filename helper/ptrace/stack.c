/* Remote unwinding with libunwind-ptrace. */
#include "stack.h"
#include "pt_internal.h"

#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct maprange {
	uint64_t start, end, off;
	char path[256];
};

/* The file-backed and special mappings of pid, to name each frame's module. */
static struct maprange *read_maps(pid_t pid, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	*n = 0;
	if (!f)
		return NULL;
	size_t cap = 64, cnt = 0;
	struct maprange *v = malloc(cap * sizeof(*v));
	char *line = NULL;
	size_t lcap = 0;
	while (v && getline(&line, &lcap, f) > 0) {
		unsigned long long s, e, o;
		int pos = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &s, &e, &o, &pos) < 3 || !pos)
			continue;
		char *p = line + pos;
		p[strcspn(p, "\n")] = '\0';
		if (!*p)
			continue;
		if (cnt == cap) {
			struct maprange *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		v[cnt].start = s;
		v[cnt].end = e;
		v[cnt].off = o;
		snprintf(v[cnt].path, sizeof(v[cnt].path), "%s", p);
		cnt++;
	}
	free(line);
	fclose(f);
	*n = cnt;
	return v;
}

static const struct maprange *module_of(const struct maprange *m, size_t n, uint64_t ip)
{
	for (size_t i = 0; i < n; i++)
		if (ip >= m[i].start && ip < m[i].end)
			return &m[i];
	return NULL;
}

int fp_stack_unwind(pid_t pid, pid_t tid, fp_frame *frames, int max, int *n, fp_error *err)
{
	*n = 0;
	if (max > FP_STACK_MAX_DEPTH)
		max = FP_STACK_MAX_DEPTH;
	unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
	if (!as)
		return fp_fail(err, ENOMEM, "libunwind: cannot create an address space");
	void *ui = _UPT_create(tid);
	if (!ui) {
		unw_destroy_addr_space(as);
		return fp_fail(err, ENOMEM, "libunwind: _UPT_create(%d) failed", tid);
	}
	size_t nmaps;
	struct maprange *maps = read_maps(pid, &nmaps);
	unw_cursor_t c;
	int rc = unw_init_remote(&c, as, ui);
	if (rc < 0) {
		fp_fail(err, ESRCH, "cannot unwind thread %d: unw_init_remote: %s (is it stopped by us?)", tid,
			unw_strerror(rc));
		goto out;
	}
	uint64_t prev_sp = 0;
	while (*n < max) {
		unw_word_t ip = 0, sp = 0, off = 0;
		unw_get_reg(&c, UNW_REG_IP, &ip);
		unw_get_reg(&c, UNW_REG_SP, &sp);
		if (*n > 0 && (ip == 0 || sp < prev_sp))
			break; /* end of stack or garbage */
		fp_frame *f = &frames[(*n)++];
		memset(f, 0, sizeof(*f));
		f->ip = ip;
		f->sp = sp;
		if (unw_get_proc_name(&c, f->sym, sizeof(f->sym), &off) == 0) {
			f->offset = off;
			/* Without debug symbols libunwind names the nearest
			 * exported symbol below ip, which for a static function
			 * (start_thread, clone3) is some unrelated neighbour. Keep
			 * the name only if it starts where the unwind info says
			 * this function starts. */
			unw_proc_info_t pi;
			if (unw_get_proc_info(&c, &pi) == 0 && pi.start_ip && pi.start_ip != ip - off) {
				f->sym[0] = '\0';
				f->offset = ip - pi.start_ip;
			}
		} else {
			f->sym[0] = '\0';
		}
		/* A return address may point just past its function: look up
		 * the call instruction instead for outer frames. */
		const struct maprange *m = module_of(maps, nmaps, *n > 1 ? ip - 1 : ip);
		if (m) {
			snprintf(f->module, sizeof(f->module), "%s", m->path);
			f->module_offset = ip - m->start + m->off;
		}
		prev_sp = sp;
		if (unw_step(&c) <= 0)
			break;
	}
	rc = 0;
out:
	free(maps);
	_UPT_destroy(ui);
	unw_destroy_addr_space(as);
	return rc < 0 ? -1 : 0;
}

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	if (*pos + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (w > 0)
		*pos = *pos + (size_t)w >= len ? len - 1 : *pos + (size_t)w;
}

static void thread_head(pid_t pid, pid_t tid, char *buf, size_t len, size_t *pos)
{
	char comm[64] = "?", path[64], st = '?';
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			snprintf(comm, sizeof(comm), "?");
		comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	fp_pt_stat(pid, tid, &st, NULL);
	append(buf, len, pos, "tid %d (%s) state %c:\n", tid, comm, st);
}

size_t fp_stack_format(pid_t pid, pid_t tid, const fp_frame *frames, int n, char *buf, size_t len)
{
	size_t pos = 0;
	if (len)
		buf[0] = '\0';
	thread_head(pid, tid, buf, len, &pos);
	for (int i = 0; i < n; i++) {
		const fp_frame *f = &frames[i];
		append(buf, len, &pos, "  #%-2d 0x%016llx ", i, (unsigned long long)f->ip);
		if (f->sym[0])
			append(buf, len, &pos, "%s+0x%llx", f->sym, (unsigned long long)f->offset);
		else
			append(buf, len, &pos, "??");
		if (f->module[0] && (!f->sym[0] || f->module[0] != '/'))
			append(buf, len, &pos, " (%s+0x%llx)\n", f->module, (unsigned long long)f->module_offset);
		else
			append(buf, len, &pos, " (%s)\n", f->module[0] ? f->module : "?");
	}
	return pos;
}

size_t fp_stack_describe(pid_t pid, pid_t tid, char *buf, size_t len)
{
	fp_frame frames[FP_STACK_MAX_DEPTH];
	int n;
	fp_error e;
	fp_error_clear(&e);
	if (fp_stack_unwind(pid, tid, frames, FP_STACK_MAX_DEPTH, &n, &e) == 0)
		return fp_stack_format(pid, tid, frames, n, buf, len);
	size_t pos = 0;
	if (len)
		buf[0] = '\0';
	thread_head(pid, tid, buf, len, &pos);
	append(buf, len, &pos, "  (no stack: %s)\n", e.msg);
	return pos;
}
