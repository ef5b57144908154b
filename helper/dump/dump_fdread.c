/* The fdinfo texts of many fds, read while the process is stopped, on two
 * CPUs (issue 11: 10,000 fds pause under 50 ms).
 *
 * One pread of a kept /proc/PID/fdinfo/N file is the cheapest exact read
 * of what may change while the process runs (offset, status flags,
 * close-on-exec, the file, locks): ~3.5 us of system time here, most of it
 * the kernel's, so 10,000 of them are ~35 ms on one CPU. Nothing else in
 * the dump runs then, and the target is stopped, so a second thread on
 * another CPU halves the wait on an idle machine (and costs nothing but a
 * thread's start on a busy one): dump_two_cpus (dump_two_cpus.c). The
 * texts are parsed afterwards, by the caller, in fd order
 * (dump_fdinfo_parse). */
#include "dump/dump_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dump_fdinfo_parse(const char *buf, struct dump_fd_seen *sn)
{
	const char *p = strstr(buf, "pos:"), *f = strstr(buf, "flags:");
	const char *m = strstr(buf, "mnt_id:"), *i = strstr(buf, "ino:");
	if (!p || !f)
		return -1;
	sn->pos = strtoull(p + 4, NULL, 10);
	sn->flags = (uint32_t)strtoul(f + 6, NULL, 8);
	sn->mnt_id = m ? atoi(m + 7) : -1;
	sn->ino = i ? strtoull(i + 4, NULL, 10) : 0;
	return 0;
}

struct fdread_job {
	const int *kept;
	struct dump_fdtext *out;
};

static void read_some(void *arg, size_t from, size_t to)
{
	struct fdread_job *j = arg;
	for (size_t i = from; i < to; i++) {
		struct dump_fdtext *t = &j->out[i];
		if (j->kept[i] < 0) {
			t->len = DUMP_FDTEXT_NONE;
			continue;
		}
		ssize_t got = pread(j->kept[i], t->txt, sizeof(t->txt) - 1, 0);
		/* a text that fills the slot may be cut: read again whole */
		t->len = got < 0 ? (int16_t)-errno : got >= (ssize_t)sizeof(t->txt) - 1 ? DUMP_FDTEXT_LONG : (int16_t)got;
		if (got >= 0 && got < (ssize_t)sizeof(t->txt))
			t->txt[got] = '\0';
	}
}

void dump_fdread(const int *kept, size_t n, struct dump_fdtext *out, int *threads)
{
	struct fdread_job j = { .kept = kept, .out = out };
	*threads = dump_two_cpus(n, read_some, &j);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* (dump_int.h) */
int dump_list_fds(int dirfd, int **out, size_t *nout)
{
	int d2 = dup(dirfd);
	DIR *d = d2 < 0 ? NULL : fdopendir(d2);
	if (!d) {
		if (d2 >= 0)
			close(d2);
		return -1;
	}
	rewinddir(d);
	int *fds = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			int *nf = realloc(fds, cap * sizeof(int));
			if (!nf) {
				free(fds);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			fds = nf;
		}
		fds[n++] = atoi(e->d_name);
	}
	closedir(d);
	qsort(fds, n, sizeof(int), cmp_int);
	*out = fds;
	*nout = n;
	return 0;
}

/* (dump_int.h) */
ssize_t dump_fdinfo_read(int infodir, int kept, int fd, char *buf, size_t len)
{
	if (kept >= 0)
		return pread(kept, buf, len - 1, 0);
	char name[16];
	snprintf(name, sizeof(name), "%d", fd);
	int f = openat(infodir, name, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	ssize_t got = read(f, buf, len - 1);
	int e = errno;
	close(f);
	errno = e;
	return got;
}

void dump_fd_dirs(pid_t pid, int *fddir, int *infodir)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	*fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	*infodir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}
