/* common/procfs on real processes: maps (kinds, offsets, devices, deleted and
 * odd file names), fds with fdinfo and stat, threads, stat and status, and
 * the errors for a process that does not exist. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_test.h"
#include "procfs.h"

static const struct fp_map *find_map(const struct fp_maps *m, const void *addr)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].start <= a && a < m->v[i].end)
			return &m->v[i];
	return NULL;
}

static const struct fp_map *find_kind(const struct fp_maps *m, enum fp_map_kind k)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].kind == k)
			return &m->v[i];
	return NULL;
}

static void test_parse_line(void)
{
	struct fp_map m;
	fp_error err;
	CHECK(fp_proc_parse_maps_line("7f00aa000000-7f00aa003000 r-xs 0001f000 fd:01 1234567  "
				      "  /usr/lib/with space (deleted)",
				      &m, &err) == 0);
	CHECK(m.start == 0x7f00aa000000ULL && m.end == 0x7f00aa003000ULL);
	CHECK(m.prot == (PROT_READ | PROT_EXEC) && m.flags == MAP_SHARED);
	CHECK(m.offset == 0x1f000 && m.dev == makedev(0xfd, 1) && m.ino == 1234567);
	CHECK(m.kind == FP_MAP_FILE && m.deleted && m.path && !strcmp(m.path, "/usr/lib/with space"));
	free(m.path);
	CHECK(fp_proc_parse_maps_line("1000-2000 rw-p 00000000 00:00 0", &m, &err) == 0);
	CHECK(m.kind == FP_MAP_ANON && !m.path && m.flags == MAP_PRIVATE);
	CHECK(fp_proc_parse_maps_line("1000-2000 r--p 00000000 00:00 0   [vvar_vclock]", &m, &err) == 0);
	CHECK(m.kind == FP_MAP_VVAR_VCLOCK);
	free(m.path);
	CHECK(fp_proc_parse_maps_line("1000-2000 rw-p 00000000 00:00 0   [anon:my name]", &m, &err) == 0);
	CHECK(m.kind == FP_MAP_ANON_NAMED && !strcmp(m.path, "[anon:my name]"));
	free(m.path);
	CHECK(fp_proc_parse_maps_line("1000-2000 rw-p 00000000 103:1f 77 /a\\012b", &m, &err) == 0);
	CHECK(m.dev == makedev(0x103, 0x1f) && !strcmp(m.path, "/a\nb"));
	free(m.path);
	CHECK(fp_proc_parse_maps_line("garbage", &m, &err) == -1 && err.errnum == EINVAL);
}

static void test_maps_self(void)
{
	char dir[] = "/tmp/fp-procfs.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof(path), "%s/odd name\nx", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 4 * 4096) == 0);
	char *f = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 2 * 4096);
	CHECK(f != MAP_FAILED);
	char *a = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	char *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(a != MAP_FAILED && s != MAP_FAILED);
	bool named = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)a, 3 * 4096,
			   (unsigned long)"fp-test") == 0;
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	unlink(path);

	struct fp_maps m;
	fp_error err;
	CHECK(fp_proc_read_maps(getpid(), &m, &err) == 0);
	const struct fp_map *e = find_map(&m, f);
	CHECK(e && e->kind == FP_MAP_FILE && e->offset == 2 * 4096 && e->flags == MAP_SHARED);
	CHECK(e && e->deleted && e->path && !strcmp(e->path, path));
	CHECK(e && e->dev == st.st_dev && e->ino == st.st_ino);
	e = find_map(&m, a);
	CHECK(e && e->prot == (PROT_READ | PROT_WRITE | PROT_EXEC) && e->flags == MAP_PRIVATE);
	if (named)
		CHECK(e && e->kind == FP_MAP_ANON_NAMED && !strcmp(e->path, "[anon:fp-test]"));
	e = find_map(&m, s);
	CHECK(e && e->kind == FP_MAP_FILE && e->deleted && !strcmp(e->path, "/dev/zero"));
	int x;
	e = find_map(&m, &x);
	CHECK(e && e->kind == FP_MAP_STACK);
	CHECK(find_kind(&m, FP_MAP_VDSO) != NULL);
	CHECK(m.n > 10);
	fp_proc_maps_free(&m);
	munmap(f, 2 * 4096);
	munmap(a, 3 * 4096);
	munmap(s, 4096);
	close(fd);
	rmdir(dir);
}

static void test_fds(void)
{
	char path[] = "/tmp/fp-procfs-fd.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	int fd2 = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	CHECK(fd2 >= 0 && write(fd2, "0123456789", 10) == 10);
	CHECK(lseek(fd, 7, SEEK_SET) == 7);
	int p[2];
	CHECK(pipe(p) == 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);

	struct fp_fds fds;
	fp_error err;
	CHECK(fp_proc_read_fds(getpid(), &fds, &err) == 0);
	const struct fp_fd *a = NULL, *b = NULL, *c = NULL;
	for (size_t i = 0; i < fds.n; i++) {
		if (i)
			CHECK(fds.v[i - 1].fd < fds.v[i].fd);
		if (fds.v[i].fd == fd)
			a = &fds.v[i];
		if (fds.v[i].fd == fd2)
			b = &fds.v[i];
		if (fds.v[i].fd == p[0])
			c = &fds.v[i];
	}
	CHECK(a && !strcmp(a->target, path) && a->pos == 7 && (a->flags & O_ACCMODE) == O_RDWR);
	CHECK(a && a->stat_ok && a->dev == st.st_dev && a->ino == st.st_ino && S_ISREG(a->mode));
	CHECK(a && !(a->flags & O_CLOEXEC) && a->mnt_id > 0);
	CHECK(b && (b->flags & O_CLOEXEC) && (b->flags & O_APPEND) && b->pos == 10);
	CHECK(c && !strncmp(c->target, "pipe:[", 6) && S_ISFIFO(c->mode));
	fp_proc_fds_free(&fds);
	close(fd);
	close(fd2);
	close(p[0]);
	close(p[1]);
	unlink(path);
}

static int hold[2];
static void *holder(void *arg)
{
	char ch;
	(void)arg;
	if (read(hold[0], &ch, 1) < 0)
		return NULL;
	return NULL;
}

static void test_threads_stat_status(void)
{
	pthread_t th[2];
	CHECK(pipe(hold) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, holder, NULL) == 0);
	pid_t *tids;
	size_t n;
	fp_error err;
	CHECK(fp_proc_read_tids(getpid(), &tids, &n, &err) == 0);
	CHECK(n >= 3 && tids[0] == getpid());
	for (size_t i = 1; i < n; i++)
		CHECK(tids[i - 1] < tids[i]);
	struct fp_proc_stat st;
	CHECK(fp_proc_read_stat(getpid(), tids[n - 1], &st, &err) == 0 && st.pid == tids[n - 1]);
	free(tids);

	CHECK(fp_proc_read_stat(getpid(), 0, &st, &err) == 0);
	CHECK(st.pid == getpid() && st.ppid == getppid() && st.num_threads >= 3);
	CHECK(st.state == 'R' && st.starttime > 0 && st.vsize > 0);
	struct fp_proc_status ps;
	CHECK(fp_proc_read_status(getpid(), &ps, &err) == 0);
	CHECK(ps.tgid == getpid() && ps.ppid == getppid() && ps.threads >= 3);
	CHECK(ps.uid[0] == getuid() && ps.uid[1] == geteuid() && ps.nspid_n >= 1);
	char v[64];
	CHECK(fp_proc_status_field(getpid(), "Threads", v, sizeof(v), &err) == 0 && atoi(v) >= 3);
	CHECK(fp_proc_status_field(getpid(), "NoSuchKey", v, sizeof(v), &err) == -1 &&
	      err.errnum == ENOENT);
	close(hold[1]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	close(hold[0]);

	/* a command name with spaces and parentheses */
	int ready[2], release[2];
	CHECK(pipe(ready) == 0 && pipe(release) == 0);
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_NAME, "a) (b c");
		close(release[1]);
		char ch = 'x';
		if (write(ready[1], &ch, 1) != 1)
			_exit(1);
		if (read(release[0], &ch, 1) < 0) /* until the parent kills it */
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	char ch;
	CHECK(read(ready[0], &ch, 1) == 1);
	CHECK(fp_proc_read_stat(c, 0, &st, &err) == 0);
	CHECK(!strcmp(st.comm, "a) (b c") && st.ppid == getpid() && st.num_threads == 1);
	CHECK(fp_proc_read_status(c, &ps, &err) == 0 && !strcmp(ps.name, "a) (b c"));
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	close(ready[0]);
	close(release[1]);

	/* gone: ESRCH with "no process PID" */
	CHECK(fp_proc_read_stat(c, 0, &st, &err) == -1 && err.errnum == ESRCH);
	char want[64];
	snprintf(want, sizeof(want), "no process %d", (int)c);
	CHECKF(strstr(err.msg, want) != NULL, "message: %s", err.msg);
	struct fp_maps m;
	CHECK(fp_proc_read_maps(c, &m, &err) == -1 && err.errnum == ESRCH && err.exit_code == FP_EXIT_NOTFOUND);
	struct fp_fds fds;
	CHECK(fp_proc_read_fds(c, &fds, &err) == -1 && err.errnum == ESRCH);
	pid_t *t2;
	CHECK(fp_proc_read_tids(c, &t2, &n, &err) == -1 && err.errnum == ESRCH);
	CHECK(fp_proc_read_status(-5, &ps, &err) == -1 && err.errnum == ESRCH);
}

int main(void)
{
	test_parse_line();
	test_maps_self();
	test_fds();
	test_threads_stat_status();
	return fp_test_done();
}
