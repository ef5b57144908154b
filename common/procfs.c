#include "procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- errors ---- */

static bool proc_exists(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	return access(p, F_OK) == 0;
}

/* An open/read of /proc/PID/what failed with e. */
static int proc_fail(fp_error *err, pid_t pid, const char *what, int e)
{
	if (pid <= 0)
		return fp_fail(err, ESRCH, "no process %d (not a valid pid)", (int)pid);
	if (e == ENOENT || e == ESRCH) {
		if (!proc_exists(pid))
			return fp_fail(err, ESRCH, "no process %d", (int)pid);
		/* the process exists but the entry went away: a thread or fd that
		 * ended while we read, or a zombie whose details are gone */
		return fp_fail(err, e, "cannot read /proc/%d/%s: %s (the process is exiting?)",
			       (int)pid, what, strerror(e));
	}
	if (e == EACCES || e == EPERM)
		return fp_fail(err, e,
			       "cannot read /proc/%d/%s: permission denied (process %d belongs to "
			       "another user or is not dumpable; run as its user or as root)",
			       (int)pid, what, (int)pid);
	return fp_fail(err, e, "cannot read /proc/%d/%s: %s", (int)pid, what, strerror(e));
}

char *fp_slurp(const char *path, size_t *len, int *eno)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*eno = errno;
		return NULL;
	}
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		*eno = ENOMEM;
		close(fd);
		return NULL;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				*eno = ENOMEM;
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*eno = errno;
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *slurp_proc(pid_t pid, const char *what, fp_error *err)
{
	char path[128];
	int eno = 0;
	if (pid <= 0) {
		proc_fail(err, pid, what, ESRCH);
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	char *s = fp_slurp(path, NULL, &eno);
	if (!s)
		proc_fail(err, pid, what, eno);
	return s;
}

/* ---- maps ---- */

const char *fp_map_kind_name(enum fp_map_kind k)
{
	switch (k) {
	case FP_MAP_FILE: return "file";
	case FP_MAP_ANON: return "anon";
	case FP_MAP_ANON_NAMED: return "anon-named";
	case FP_MAP_HEAP: return "heap";
	case FP_MAP_STACK: return "stack";
	case FP_MAP_VDSO: return "vdso";
	case FP_MAP_VVAR: return "vvar";
	case FP_MAP_VVAR_VCLOCK: return "vvar_vclock";
	case FP_MAP_VSYSCALL: return "vsyscall";
	case FP_MAP_SPECIAL: return "special";
	}
	return "?";
}

static enum fp_map_kind kind_of(const char *path, ino_t ino)
{
	if (!path)
		return FP_MAP_ANON;
	if (path[0] != '[' || ino != 0)
		return FP_MAP_FILE;
	if (!strcmp(path, "[heap]"))
		return FP_MAP_HEAP;
	if (!strcmp(path, "[stack]") || !strncmp(path, "[stack:", 7))
		return FP_MAP_STACK;
	if (!strcmp(path, "[vdso]"))
		return FP_MAP_VDSO;
	if (!strcmp(path, "[vvar]"))
		return FP_MAP_VVAR;
	if (!strcmp(path, "[vvar_vclock]"))
		return FP_MAP_VVAR_VCLOCK;
	if (!strcmp(path, "[vsyscall]"))
		return FP_MAP_VSYSCALL;
	if (!strncmp(path, "[anon:", 6))
		return FP_MAP_ANON_NAMED;
	return FP_MAP_SPECIAL;
}

/* The kernel escapes '\n' in paths as "\012". */
static void unescape_newlines(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] == '0' && r[2] == '1' && r[3] == '2') {
			*w++ = '\n';
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int fp_proc_parse_maps_line(const char *line, struct fp_map *out, fp_error *err)
{
	uint64_t start, end, off, ino;
	unsigned maj, min;
	char perms[5];
	int n = -1;
	memset(out, 0, sizeof(*out));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &start,
		   &end, perms, &off, &maj, &min, &ino, &n) < 7 ||
	    n < 0 || strlen(perms) != 4 || end < start)
		return fp_fail(err, EINVAL, "unexpected line in a maps file: \"%.120s\"", line);
	out->start = start;
	out->end = end;
	out->offset = off;
	out->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		    (perms[2] == 'x' ? PROT_EXEC : 0);
	out->flags = perms[3] == 's' ? MAP_SHARED : MAP_PRIVATE;
	out->dev = makedev(maj, min);
	out->ino = (ino_t)ino;
	const char *p = line + n;
	size_t len = strcspn(p, "\n");
	while (len && p[len - 1] == ' ')
		len--;
	if (len) {
		out->path = strndup(p, len);
		if (!out->path)
			return fp_fail(err, ENOMEM, "out of memory reading a maps file");
		static const char del[] = " (deleted)";
		size_t pl = strlen(out->path);
		if (pl > sizeof(del) - 1 && !strcmp(out->path + pl - (sizeof(del) - 1), del)) {
			out->path[pl - (sizeof(del) - 1)] = '\0';
			out->deleted = true;
		}
		unescape_newlines(out->path);
	}
	out->kind = kind_of(out->path, out->ino);
	return 0;
}

void fp_proc_maps_free(struct fp_maps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

int fp_proc_read_maps(pid_t pid, struct fp_maps *out, fp_error *err)
{
	out->v = NULL;
	out->n = 0;
	char *buf = slurp_proc(pid, "maps", err);
	if (!buf)
		return -1;
	size_t lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	out->v = calloc(lines + 1, sizeof(*out->v));
	if (!out->v) {
		free(buf);
		return fp_fail(err, ENOMEM, "out of memory reading /proc/%d/maps", (int)pid);
	}
	for (char *line = buf; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line) {
			if (fp_proc_parse_maps_line(line, &out->v[out->n], err) < 0) {
				free(buf);
				fp_proc_maps_free(out);
				return fp_wrap(err, "/proc/%d/maps", (int)pid);
			}
			out->n++;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	free(buf);
	return 0;
}

/* ---- fds ---- */

static int cmp_fd(const void *a, const void *b)
{
	const struct fp_fd *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

static int parse_num(const char *s, long *out)
{
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno)
		return -1;
	*out = v;
	return 0;
}

/* Reads one fd's details; 1 = done, 0 = the fd is gone (skip), -1 = error. */
static int read_one_fd(pid_t pid, int fd, struct fp_fd *f, fp_error *err)
{
	char path[96], link[4096];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		return proc_fail(err, pid, "fd", errno);
	}
	link[n] = '\0';
	f->target = strdup(link);
	if (!f->target)
		return fp_fail(err, ENOMEM, "out of memory listing fds of %d", (int)pid);
	struct stat st;
	if (stat(path, &st) == 0) {
		f->stat_ok = true;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->mode = st.st_mode;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	int eno = 0;
	char *info = fp_slurp(path, NULL, &eno);
	if (!info) {
		free(f->target);
		f->target = NULL;
		if (eno == ENOENT)
			return 0;
		return proc_fail(err, pid, "fdinfo", eno);
	}
	for (char *l = info; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		unsigned long long v;
		unsigned o;
		int m;
		if (sscanf(l, "pos: %llu", &v) == 1)
			f->pos = v;
		else if (sscanf(l, "flags: %o", &o) == 1)
			f->flags = (int)o;
		else if (sscanf(l, "mnt_id: %d", &m) == 1)
			f->mnt_id = m;
		l = nl ? nl + 1 : NULL;
	}
	free(info);
	return 1;
}

void fp_proc_fds_free(struct fp_fds *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].target);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

int fp_proc_read_fds(pid_t pid, struct fp_fds *out, fp_error *err)
{
	out->v = NULL;
	out->n = 0;
	if (pid <= 0)
		return proc_fail(err, pid, "fd", ESRCH);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return proc_fail(err, pid, "fd", errno);
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		long fd;
		if (parse_num(de->d_name, &fd) < 0)
			continue;
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct fp_fd *nv = realloc(out->v, nc * sizeof(*nv));
			if (!nv) {
				rc = fp_fail(err, ENOMEM, "out of memory listing fds of %d", (int)pid);
				break;
			}
			out->v = nv;
			cap = nc;
		}
		int r = read_one_fd(pid, (int)fd, &out->v[out->n], err);
		if (r < 0) {
			rc = -1;
			break;
		}
		out->n += (size_t)r;
	}
	closedir(d);
	if (rc < 0) {
		fp_proc_fds_free(out);
		return -1;
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_fd);
	return 0;
}

/* ---- tids ---- */

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int fp_proc_read_tids(pid_t pid, pid_t **tids, size_t *n, fp_error *err)
{
	*tids = NULL;
	*n = 0;
	if (pid <= 0)
		return proc_fail(err, pid, "task", ESRCH);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return proc_fail(err, pid, "task", errno);
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		long t;
		if (parse_num(de->d_name, &t) < 0)
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			pid_t *nv = realloc(*tids, nc * sizeof(*nv));
			if (!nv) {
				closedir(d);
				free(*tids);
				*tids = NULL;
				*n = 0;
				return fp_fail(err, ENOMEM, "out of memory listing threads of %d",
					       (int)pid);
			}
			*tids = nv;
			cap = nc;
		}
		(*tids)[(*n)++] = (pid_t)t;
	}
	closedir(d);
	qsort(*tids, *n, sizeof(**tids), cmp_pid);
	return 0;
}

/* ---- stat ---- */

int fp_proc_read_stat(pid_t pid, pid_t tid, struct fp_proc_stat *out, fp_error *err)
{
	char what[64];
	if (tid > 0)
		snprintf(what, sizeof(what), "task/%d/stat", (int)tid);
	else
		snprintf(what, sizeof(what), "stat");
	char *buf = slurp_proc(pid, what, err);
	if (!buf)
		return -1;
	memset(out, 0, sizeof(*out));
	/* comm may contain spaces and parentheses: it ends at the last ')' */
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l || r[1] != ' ') {
		free(buf);
		return fp_fail(err, EINVAL, "unexpected format of /proc/%d/%s", (int)pid, what);
	}
	out->pid = (pid_t)strtol(buf, NULL, 10);
	size_t cl = (size_t)(r - l - 1);
	if (cl >= sizeof(out->comm))
		cl = sizeof(out->comm) - 1;
	memcpy(out->comm, l + 1, cl);
	out->comm[cl] = '\0';
	/* fields from 3 (state) on; f[i] is field i+3 */
	char *p = r + 2;
	unsigned long long f[60] = {0};
	int nf = 0;
	out->state = *p;
	while (*p && *p != ' ')
		p++;
	while (*p == ' ' && nf < 59) {
		p++;
		f[++nf] = strtoull(p, &p, 10);
		if (*p == '\n' || !*p)
			break;
	}
	/* negative fields (nice, priority...) come back two's complement: fine */
	out->ppid = (pid_t)f[1];
	out->pgrp = (pid_t)f[2];
	out->session = (pid_t)f[3];
	out->tty_nr = (int)f[4];
	out->tpgid = (pid_t)f[5];
	out->flags = (unsigned)f[6];
	out->minflt = f[7];
	out->majflt = f[9];
	out->utime = f[11];
	out->stime = f[12];
	out->priority = (long)f[15];
	out->nice = (long)f[16];
	out->num_threads = (long)f[17];
	out->starttime = f[19];
	out->vsize = f[20];
	out->rss = (long)f[21];
	out->startcode = f[23];
	out->endcode = f[24];
	out->startstack = f[25];
	out->exit_signal = (int)f[35];
	out->processor = (int)f[36];
	out->rt_priority = (unsigned)f[37];
	out->policy = (unsigned)f[38];
	out->start_data = f[42];
	out->end_data = f[43];
	out->start_brk = f[44];
	out->arg_start = f[45];
	out->arg_end = f[46];
	out->env_start = f[47];
	out->env_end = f[48];
	out->exit_code = (int)f[49];
	free(buf);
	if (nf < 17)
		return fp_fail(err, EINVAL, "unexpected format of /proc/%d/%s (%d fields)", (int)pid,
			       what, nf + 2);
	return 0;
}

/* ---- status ---- */

static const char *status_find(const char *buf, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = buf; l && *l;) {
		if (!strncmp(l, key, kl) && l[kl] == ':') {
			const char *v = l + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return NULL;
}

int fp_proc_status_field(pid_t pid, const char *key, char *val, size_t len, fp_error *err)
{
	char *buf = slurp_proc(pid, "status", err);
	if (!buf)
		return -1;
	const char *v = status_find(buf, key);
	if (!v) {
		free(buf);
		return fp_fail(err, ENOENT, "/proc/%d/status has no \"%s\" line", (int)pid, key);
	}
	size_t n = strcspn(v, "\n");
	if (len) {
		if (n >= len)
			n = len - 1;
		memcpy(val, v, n);
		val[n] = '\0';
	}
	free(buf);
	return 0;
}

static uint64_t hexfield(const char *buf, const char *key)
{
	const char *v = status_find(buf, key);
	return v ? strtoull(v, NULL, 16) : 0;
}

static long decfield(const char *buf, const char *key)
{
	const char *v = status_find(buf, key);
	return v ? strtol(v, NULL, 10) : 0;
}

int fp_proc_read_status(pid_t pid, struct fp_proc_status *out, fp_error *err)
{
	char *buf = slurp_proc(pid, "status", err);
	if (!buf)
		return -1;
	memset(out, 0, sizeof(*out));
	const char *v;
	if ((v = status_find(buf, "Name"))) {
		size_t n = strcspn(v, "\n");
		if (n >= sizeof(out->name))
			n = sizeof(out->name) - 1;
		memcpy(out->name, v, n);
	}
	if ((v = status_find(buf, "State")))
		out->state = *v;
	out->tgid = (pid_t)decfield(buf, "Tgid");
	out->pid = (pid_t)decfield(buf, "Pid");
	out->ppid = (pid_t)decfield(buf, "PPid");
	out->tracer_pid = (pid_t)decfield(buf, "TracerPid");
	if ((v = status_find(buf, "Uid")))
		sscanf(v, "%u %u %u %u", &out->uid[0], &out->uid[1], &out->uid[2], &out->uid[3]);
	if ((v = status_find(buf, "Gid")))
		sscanf(v, "%u %u %u %u", &out->gid[0], &out->gid[1], &out->gid[2], &out->gid[3]);
	out->threads = (int)decfield(buf, "Threads");
	out->sig_pnd = hexfield(buf, "SigPnd");
	out->shd_pnd = hexfield(buf, "ShdPnd");
	out->sig_blk = hexfield(buf, "SigBlk");
	out->sig_ign = hexfield(buf, "SigIgn");
	out->sig_cgt = hexfield(buf, "SigCgt");
	out->cap_inh = hexfield(buf, "CapInh");
	out->cap_prm = hexfield(buf, "CapPrm");
	out->cap_eff = hexfield(buf, "CapEff");
	out->cap_bnd = hexfield(buf, "CapBnd");
	if ((v = status_find(buf, "NSpid"))) {
		char *p = (char *)v;
		while (out->nspid_n < 8 && *p && *p != '\n') {
			char *e;
			long x = strtol(p, &e, 10);
			if (e == p)
				break;
			out->nspid[out->nspid_n++] = (pid_t)x;
			p = e;
			while (*p == ' ' || *p == '\t')
				p++;
		}
	}
	out->vm_rss_kb = (uint64_t)decfield(buf, "VmRSS");
	out->vm_size_kb = (uint64_t)decfield(buf, "VmSize");
	out->seccomp = (int)decfield(buf, "Seccomp");
	free(buf);
	return 0;
}

size_t fp_mem_available(void)
{
	size_t avail = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %zu kB", &avail) == 1)
			break;
	if (f)
		fclose(f);
	return avail << 10;
}

size_t fp_mem_share(size_t lo, size_t hi)
{
	size_t want = fp_mem_available() / 8;
	return want < lo ? lo : want > hi ? hi : want;
}
