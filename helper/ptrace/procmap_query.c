/* PROCMAP_QUERY (see procmap_query.h). */
#include "procmap_query.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fp_procmap_next(int fd, uint64_t addr, uint64_t want, struct fp_procmap_query *q, char *name, uint32_t len)
{
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q);
	q->query_flags = FP_PROCMAP_COVERING_OR_NEXT | want;
	q->query_addr = addr;
	q->vma_name_addr = (uint64_t)(uintptr_t)name;
	q->vma_name_size = len;
	if (len)
		name[0] = '\0';
	if (ioctl(fd, FP_PROCMAP_QUERY, q) == 0) {
		if (len && (!q->vma_name_size || q->vma_name_size > len))
			name[0] = '\0';
		return 1;
	}
	return errno == ENOENT ? 0 : -1;
}

static int exec_maps_text(pid_t pid, uint64_t from, fp_exec_map_fn fn, void *arg)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int stop = 0;
	while (!stop && getline(&line, &cap, f) > 0) {
		unsigned long long s, e;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &s, &e, perms, &pos) < 3 || perms[0] != 'r' ||
		    perms[2] != 'x' || s < from)
			continue;
		char *name = pos ? line + pos : line + strlen(line);
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, "[vsyscall]"))
			stop = fn(arg, s, e, name);
	}
	free(line);
	fclose(f);
	return 0;
}

/* Where the vDSO and the program's interpreter (ld.so) were mapped at exec
 * (AT_SYSINFO_EHDR, AT_BASE): 0 where unknown. */
static void auxv_hints(pid_t pid, uint64_t hint[2])
{
	char path[64];
	uint64_t w[128];
	hint[0] = hint[1] = 0;
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, w, sizeof(w));
	if (fd >= 0)
		close(fd);
	for (ssize_t i = 0; i + 1 < n / 8 && w[i]; i += 2) {
		if (w[i] == 33) /* AT_SYSINFO_EHDR */
			hint[0] = w[i + 1];
		else if (w[i] == 7) /* AT_BASE */
			hint[1] = w[i + 1];
	}
}

int fp_exec_maps(pid_t pid, bool hints_only, fp_exec_map_fn fn, void *arg)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char name[PATH_MAX];
	struct fp_procmap_query q;
	const uint64_t want = FP_PROCMAP_READABLE | FP_PROCMAP_EXECUTABLE;
	if (hints_only) {
		/* The first executable mapping at or after each: the vDSO,
		 * ld.so's text. A walk from 0 would pass every mapping below
		 * them, one at a time in the kernel. */
		uint64_t hint[2];
		auxv_hints(pid, hint);
		int r = 0;
		for (int i = 0; i < 2 && r >= 0; i++)
			if (hint[i] && (r = fp_procmap_next(fd, hint[i], want, &q, name, sizeof(name))) == 1 &&
			    fn(arg, q.vma_start, q.vma_end, name))
				break;
		close(fd);
		return 0;
	}
	int r = fp_procmap_next(fd, 0, want, &q, name, sizeof(name));
	uint64_t at = 0;
	while (r == 1 && !fn(arg, q.vma_start, q.vma_end, name)) {
		at = q.vma_end;
		r = fp_procmap_next(fd, at, want, &q, name, sizeof(name));
	}
	close(fd);
	/* No PROCMAP_QUERY (Linux < 6.11), or a name it could not give: the
	 * rest from the text. */
	return r < 0 ? exec_maps_text(pid, at, fn, arg) : 0;
}
