/* The readers of a process's mappings that the dump uses while the process
 * is stopped, against /proc's text read the plain way, on a live child with
 * 3,000 mappings (issue 11):
 *  - dump_vmas_read (maps and smaps, parsed by hand in big pieces): every
 *    field of every mapping, and each VmFlags;
 *  - fp_exec_maps (PROCMAP_QUERY): the same executable mappings as the
 *    maps text, and with hints only, the vDSO and ld.so's text. */
#include "fp_test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "ptrace/procmap_query.h"

#define NMAPS 3000

static pid_t child_with_maps(void)
{
	int ready[2];
	if (pipe(ready))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/proc/self/exe", O_RDONLY);
		for (int i = 0; i < NMAPS; i++) {
			char *p = i % 2 ? mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) :
					  mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(2);
			if (i % 2 == 0)
				p[0] = 1;
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	char c;
	close(ready[1]);
	bool ok = read(ready[0], &c, 1) == 1;
	close(ready[0]);
	return ok ? pid : -1;
}

/* The list the plain way: getline and sscanf. */
static void check_vmas(pid_t pid, bool smaps)
{
	struct dump_vma *v = NULL;
	size_t n = 0;
	fp_error e;
	CHECKF(dump_vmas_read(pid, smaps, &v, &n, &e) == 0, "%s", e.msg);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, smaps ? "smaps" : "maps");
	FILE *f = fopen(path, "re");
	CHECK(f != NULL);
	char *line = NULL;
	size_t cap = 0, i = 0;
	int bad = 0;
	while (f && getline(&line, &cap, f) > 0) {
		unsigned long long s, en, off, ino;
		unsigned maj, mn;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &s, &en, perms, &off, &maj, &mn, &ino, &pos) >= 7 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			const char *name = pos ? line + pos : "";
			size_t l = strcspn(name, "\n");
			bad += i >= n || v[i].start != s || v[i].end != en || v[i].pgoff != off || strncmp(v[i].perms, perms, 4) ||
			       v[i].dev != makedev(maj, mn) || v[i].ino != ino || strlen(v[i].path) != l ||
			       strncmp(v[i].path, name, l);
			i++;
		} else if (!strncmp(line, "VmFlags:", 8) && i && i <= n) {
			line[strcspn(line, "\n")] = '\0';
			bad += strcmp(line + 8, v[i - 1].vmflags) != 0;
		}
	}
	free(line);
	if (f)
		fclose(f);
	CHECKF(i == n && !bad, "%s: %zu mappings read, %zu in the text, %d differ", path, n, i, bad);
	CHECK(n > NMAPS);
	free(v);
}

struct seen {
	uint64_t start[256];
	char name[256][64];
	size_t n;
};

static int note(void *arg, uint64_t start, uint64_t end, const char *name)
{
	(void)end;
	struct seen *s = arg;
	if (s->n < 256) {
		s->start[s->n] = start;
		const char *b = strrchr(name, '/');
		snprintf(s->name[s->n], sizeof(s->name[0]), "%s", b ? b + 1 : name);
		s->n++;
	}
	return 0;
}

static void check_exec(pid_t pid)
{
	struct seen all = { .n = 0 }, hints = { .n = 0 };
	CHECK(fp_exec_maps(pid, false, note, &all) == 0);
	CHECK(fp_exec_maps(pid, true, note, &hints) == 0);
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	size_t k = 0;
	int bad = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s;
		char perms[8];
		if (sscanf(line, "%llx-%*x %7s", &s, perms) != 2 || perms[0] != 'r' || perms[2] != 'x' || strstr(line, "[vsyscall]"))
			continue;
		bad += k >= all.n || all.start[k] != s;
		k++;
	}
	if (f)
		fclose(f);
	CHECKF(k == all.n && !bad, "%zu executable mappings by PROCMAP_QUERY, %zu in the text, %d differ", all.n, k, bad);
	int mfd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	struct fp_procmap_query q;
	char nm[64];
	bool query = mfd >= 0 && fp_procmap_next(mfd, 0, 0, &q, nm, sizeof(nm)) >= 0;
	if (mfd >= 0)
		close(mfd);
	if (!query) {
		printf("no PROCMAP_QUERY (Linux < 6.11): hints not checked\n");
		return;
	}
	bool vdso = false, ld = false;
	for (size_t i = 0; i < hints.n; i++) {
		vdso |= !strcmp(hints.name[i], "[vdso]");
		ld |= !strncmp(hints.name[i], "ld-", 3);
	}
	CHECKF(vdso && ld, "hints gave %zu mapping(s): %s %s", hints.n, hints.n ? hints.name[0] : "",
	       hints.n > 1 ? hints.name[1] : "");
}

int main(void)
{
	pid_t pid = child_with_maps();
	if (pid < 0)
		SKIP("cannot start a child with %d mappings", NMAPS);
	check_vmas(pid, false);
	check_vmas(pid, true);
	check_exec(pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return fp_test_done();
}
