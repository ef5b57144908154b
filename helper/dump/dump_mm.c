/* Memory layout (mm-<pid>.img): the mm fields and every VMA from
 * /proc/PID/smaps, classified as CRIU expects (status bits, mmap flags,
 * madvise bits, the FileEntry of mapped files). */
#include "dump/dump_int.h"
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "images/criu_io.h"

static bool has_flag(const char *vmflags, const char *f)
{
	for (const char *s = vmflags; *s;) {
		while (*s == ' ')
			s++;
		if (s[0] == f[0] && s[1] == f[1] && (s[2] == ' ' || s[2] == '\0' || s[2] == '\n'))
			return true;
		while (*s && *s != ' ')
			s++;
	}
	return false;
}

int dump_proc_vmas(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	(void)c;
	return dump_vmas_read(p->pid, true, &p->vmas, &p->nvmas, err);
}

static const char *hex(const char *s, const char *end, uint64_t *v)
{
	uint64_t x = 0;
	const char *s0 = s;
	for (; s < end; s++) {
		unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0') : *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10) : 16;
		if (d > 15)
			break;
		x = x << 4 | d;
	}
	*v = x;
	return s > s0 ? s : NULL;
}

/* One maps line "start-end perms offset maj:min inode   path" into v
 * (false: not one, an smaps field line). No sscanf: 60,000 of them are
 * parsed while the process is stopped. */
static bool parse_maps_line(const char *s, const char *end, struct dump_vma *v, const char **name, size_t *nlen)
{
	uint64_t st, en, off, maj, mn, ino = 0;
	if (!(s = hex(s, end, &st)) || s >= end || *s++ != '-' || !(s = hex(s, end, &en)) || s + 6 > end || *s++ != ' ')
		return false;
	memcpy(v->perms, s, 4);
	v->perms[4] = '\0';
	s += 4;
	if (*s++ != ' ' || !(s = hex(s, end, &off)) || s >= end || *s++ != ' ' || !(s = hex(s, end, &maj)) || s >= end ||
	    *s++ != ':' || !(s = hex(s, end, &mn)) || s >= end || *s++ != ' ')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++)
		ino = ino * 10 + (uint64_t)(*s - '0');
	while (s < end && *s == ' ')
		s++;
	v->start = st;
	v->end = en;
	v->pgoff = off;
	v->dev = makedev((unsigned)maj, (unsigned)mn);
	v->ino = ino;
	*name = s;
	*nlen = (size_t)(end - s);
	return true;
}

struct vma_list {
	struct dump_vma *v;
	size_t n, cap;
};

/* One line of maps or smaps, [s, end) without its newline. */
static int maps_line(struct vma_list *l, const char *s, const char *end, fp_error *err)
{
	struct dump_vma t;
	const char *name;
	size_t nlen;
	if (parse_maps_line(s, end, &t, &name, &nlen)) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct dump_vma *nv = realloc(l->v, cap * sizeof(*nv));
			if (!nv)
				return fp_fail(err, ENOMEM, "out of memory");
			l->v = nv;
			l->cap = cap;
		}
		struct dump_vma *cur = &l->v[l->n++];
		memset(cur, 0, sizeof(*cur));
		cur->start = t.start;
		cur->end = t.end;
		cur->pgoff = t.pgoff;
		memcpy(cur->perms, t.perms, 5);
		cur->dev = t.dev;
		cur->ino = t.ino;
		cur->path = dump_path_intern(name, nlen);
		cur->vmflags = "";
		if (!cur->path)
			return fp_fail(err, ENOMEM, "out of memory");
	} else if (l->n && end - s >= 8 && !memcmp(s, "VmFlags:", 8)) {
		/* A handful of distinct flag sets: shared, not one copy per
		 * mapping (60,000 mappings). */
		struct dump_vma *cur = &l->v[l->n - 1];
		cur->vmflags = dump_path_intern(s + 8, (size_t)(end - s - 8));
		if (!cur->vmflags)
			return fp_fail(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* smaps gives VmFlags but walks every page table to count RSS (40 ms for
 * 1 GiB here); maps is the same list without flags in 0.1 ms. Read in
 * big pieces: every read of maps finds its place in the mapping tree
 * again. */
int dump_vmas_read(pid_t pid, bool smaps, struct dump_vma **out, size_t *nout, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, smaps ? "smaps" : "maps");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	enum { BUF = 256 * 1024 };
	char *buf = malloc(BUF);
	struct vma_list l = { 0 };
	int rc = buf ? 0 : fp_fail(err, ENOMEM, "out of memory");
	size_t have = 0;
	while (!rc) {
		ssize_t got = read(fd, buf + have, BUF - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		have += (size_t)got;
		char *s = buf, *e = buf + have, *nl;
		while (!rc && (nl = memchr(s, '\n', (size_t)(e - s)))) {
			rc = maps_line(&l, s, nl, err);
			s = nl + 1;
		}
		if (got == 0) {
			if (!rc && s < e)
				rc = maps_line(&l, s, e, err); /* a last line without its newline */
			break;
		}
		have = (size_t)(e - s);
		if (have == BUF) {
			rc = fp_fail(err, E2BIG, "a line of %s is longer than %d bytes", path, BUF);
			break;
		}
		memmove(buf, s, have);
	}
	free(buf);
	close(fd);
	if (rc) {
		free(l.v);
		return rc;
	}
	*out = l.v;
	*nout = l.n;
	return 0;
}

void dump_vmflags_image(const char *vf, uint32_t *flags, uint64_t *madv)
{
	*flags = (has_flag(vf, "gd") ? MAP_GROWSDOWN : 0) | (has_flag(vf, "lo") ? MAP_LOCKED : 0) |
		 (has_flag(vf, "nr") ? MAP_NORESERVE : 0);
	static const struct { const char *f; int adv; } adv[] = {
		{ "sr", MADV_SEQUENTIAL }, { "rr", MADV_RANDOM }, { "dc", MADV_DONTFORK }, { "mg", MADV_MERGEABLE },
		{ "hg", MADV_HUGEPAGE },   { "nh", MADV_NOHUGEPAGE }, { "dd", MADV_DONTDUMP },
	};
	*madv = 0;
	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++)
		if (has_flag(vf, adv[i].f))
			*madv |= 1ull << adv[i].adv;
}

int dump_vmas_stopped(struct dump_proc *p, struct dump_vma **out, size_t *n, fp_error *err)
{
	if (!p->maps_stop)
		return dump_vmas_read(p->pid, false, out, n, err);
	*out = p->maps_stop;
	*n = p->nmaps_stop;
	p->maps_stop = NULL;
	p->nmaps_stop = 0;
	return 0;
}

static int classify(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, bool *skip, fp_error *err)
{
	*skip = false;
	memset(o, 0, sizeof(*o));
	o->start = v->start;
	o->end = v->end;
	o->fd = -1;
	o->prot = (v->perms[0] == 'r' ? PROT_READ : 0) | (v->perms[1] == 'w' ? PROT_WRITE : 0) |
		  (v->perms[2] == 'x' ? PROT_EXEC : 0);
	bool shared = v->perms[3] == 's';
	o->flags = shared ? MAP_SHARED : MAP_PRIVATE;
	const char *vf = v->vmflags;
	uint32_t fl;
	dump_vmflags_image(vf, &fl, &o->madv);
	o->flags |= fl;
	o->has_madv = o->madv != 0;
	const char *path = v->path;

	if (!strcmp(path, "[vsyscall]") || !strcmp(path, "[uprobes]")) {
		*skip = true;
		return 0;
	}
	if (has_flag(vf, "ht"))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d has a hugetlbfs mapping at 0x%" PRIx64 " (%s); not supported", p->pid, v->start, path);
	if (!strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]")) {
		o->flags |= MAP_ANONYMOUS;
		o->status = CR_VMA_AREA_REGULAR | CR_VMA_ANON_PRIVATE | CR_VMA_AREA_VVAR;
		o->has_madv = true;
		o->madv |= 1ull << MADV_DONTDUMP;
		return 0;
	}
	if (!strcmp(path, "[vdso]")) {
		o->flags |= MAP_ANONYMOUS;
		o->status = CR_VMA_AREA_REGULAR | CR_VMA_ANON_PRIVATE | CR_VMA_AREA_VDSO;
		v->dump_pages = true;
		return 0;
	}
	int sh = dump_shmem_vma(c, p, v, o, err);
	if (sh)
		return sh < 0 ? -1 : 0;
	bool anon = v->ino == 0 && (path[0] == '\0' || path[0] == '[');
	if (anon) {
		if (shared || !strncmp(path, "[anon_shmem:", 12))
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "%d has a shared anonymous mapping at 0x%" PRIx64 "-0x%" PRIx64
					    "; dumping shared anonymous memory is not supported yet",
					    p->pid, v->start, v->end);
		o->flags |= MAP_ANONYMOUS;
		o->status = CR_VMA_AREA_REGULAR | CR_VMA_ANON_PRIVATE;
		if (!strcmp(path, "[heap]"))
			o->status |= CR_VMA_AREA_HEAP;
		v->dump_pages = true;
		return 0;
	}
	bool deleted = strstr(path, " (deleted)") != NULL;
	if (!strncmp(path, "/memfd:", 7) || path[0] != '/')
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d maps '%s' at 0x%" PRIx64 " (a file without a path); not supported yet", p->pid, path,
				    v->start);
	if (has_flag(vf, "io") || has_flag(vf, "pf"))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "%d maps device memory '%s' at 0x%" PRIx64 "; not supported", p->pid, path, v->start);
	uint32_t fflags = O_RDONLY;
	if (shared && has_flag(vf, "mw"))
		fflags = O_RDWR;
	uint32_t id;
	if (deleted) {
		/* the file's bytes as a ghost file (shared: one for the tree,
		 * rst_ghost.c); private: the pages copied on write as any
		 * private mapping's (below) */
		char src[96];
		snprintf(src, sizeof(src), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, p->pid, v->start, v->end);
		if (dump_ghost_mapped(c, p->pid, src, path, fflags, "a mapping", &id, err))
			return -1;
	} else if (dump_file_path(c, path, fflags, &id, err)) {
		return -1;
	}
	o->shmid = id;
	o->pgoff = v->pgoff;
	o->has_fdflags = true;
	o->fdflags = fflags;
	if (shared) {
		o->status = CR_VMA_AREA_REGULAR | CR_VMA_FILE_SHARED;
	} else {
		o->status = CR_VMA_AREA_REGULAR | CR_VMA_FILE_PRIVATE;
		v->dump_pages = true;
		v->file_private = true;
	}
	return 0;
}

static int read_auxv(pid_t pid, cr_mm *mm, fp_error *err)
{
	char path[64];
	uint64_t w[128];
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, w, sizeof(w));
	close(fd);
	if (n < 0)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	size_t words = (size_t)n / 8, keep = 0;
	while (keep + 1 < words && w[keep] != 0)
		keep += 2; /* pairs before AT_NULL */
	if (keep > CR_AUXV_MAX)
		keep = CR_AUXV_MAX;
	mm->mm_saved_auxv = malloc((keep ? keep : 1) * sizeof(uint64_t));
	if (!mm->mm_saved_auxv)
		return fp_fail(err, ENOMEM, "out of memory");
	memcpy(mm->mm_saved_auxv, w, keep * sizeof(uint64_t));
	mm->n_mm_saved_auxv = keep;
	return 0;
}

/* mm fields that need the process stopped and syscall injection. */
int dump_proc_mm(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	(void)c;
	cr_mm *mm = &p->mm;
	struct fp_proc_stat st;
	if (fp_proc_read_stat(p->pid, 0, &st, err) < 0)
		return -1;
	mm->mm_start_code = st.startcode;
	mm->mm_end_code = st.endcode;
	mm->mm_start_stack = st.startstack;
	mm->mm_start_data = st.start_data;
	mm->mm_end_data = st.end_data;
	mm->mm_start_brk = st.start_brk;
	mm->mm_arg_start = st.arg_start;
	mm->mm_arg_end = st.arg_end;
	mm->mm_env_start = st.env_start;
	mm->mm_env_end = st.env_end;
	/* mm_brk and dumpable come from dinj_proc_facts (dump_core.c). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
	ssize_t n = readlink(path, p->exe, sizeof(p->exe) - 1);
	if (n <= 0)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	p->exe[n] = '\0';
	return read_auxv(p->pid, mm, err);
}

/* The VMA entries and the exe file; needs dump_proc_vmas first. */
static int build_vmas(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	cr_mm *mm = &p->mm;
	const char *exe = p->exe;
	if (strstr(exe, " (deleted)")) {
		/* deleted or replaced since it started: its old bytes travel */
		char src[64];
		snprintf(src, sizeof(src), "/proc/%d/exe", p->pid);
		if (dump_ghost_mapped(c, p->pid, src, exe, O_RDONLY, "the executable", &mm->exe_file_id, err))
			return -1;
	} else if (dump_file_path(c, exe, O_RDONLY, &mm->exe_file_id, err)) {
		return -1;
	}
	mm->vmas = calloc(p->nvmas ? p->nvmas : 1, sizeof(cr_vma));
	if (!mm->vmas)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nvmas; i++) {
		struct dump_vma *v = &p->vmas[i];
		cr_vma o;
		bool skip;
		if (classify(c, p, v, &o, &skip, err))
			return -1;
		if (skip)
			continue;
		/* [vvar] and [vvar_vclock] are one entry for CRIU (kernels >= 6.13). */
		if (mm->n_vmas && (o.status & CR_VMA_AREA_VVAR)) {
			cr_vma *prev = &mm->vmas[mm->n_vmas - 1];
			if ((prev->status & CR_VMA_AREA_VVAR) && prev->end == o.start) {
				prev->end = o.end;
				continue;
			}
		}
		mm->vmas[mm->n_vmas++] = o;
		dlogv(c, "%d vma %" PRIx64 "-%" PRIx64 " %s status %#x flags %#x shmid %" PRIu64 " %s%s", p->pid, o.start,
		      o.end, v->perms, o.status, o.flags, o.shmid, v->path, v->dump_pages ? " (pages)" : "");
	}
	return 0;
}

int dump_write_mm(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	return cr_write_mm(c->dirfd, (uint32_t)p->pid, &p->mm, err);
}

int dump_proc_vma_entries(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	return build_vmas(c, p, err);
}
