/* The ct_* checkpoint targets, without any checkpointing: each one goes
 * through the protocol (ready, verifications, stop), and each one notices
 * deliberate damage to what it checks (memory written with
 * process_vm_writev, offsets and flags changed through fds taken with
 * pidfd_getfd, files changed under it, a thread renamed), so a target that
 * says "ok" after a restore means it. */
#include <dirent.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fp_test.h"
#include "target_ctl.h"

#define T_MS 30000

static char bin_dir[PATH_MAX - 64];

static const char *target_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", bin_dir, name);
	return buf;
}

/* Starts a target and waits for ready; prints why not. */
static int start(struct tc_target *t, const char *name, const char *const args[])
{
	char path[PATH_MAX];
	if (tc_start(t, target_path(name, path, sizeof(path)), args, 0) < 0 || tc_wait_ready(t, T_MS) < 0) {
		fprintf(stderr, "%s did not start: %s\n", name, t->err);
		tc_cleanup(t);
		return -1;
	}
	return 0;
}

#define VERIFY_OK(t, what)                                                                      \
	do {                                                                                    \
		int r_ = tc_verify(t, T_MS);                                                    \
		CHECKF(r_ == 0, "%s: %s", what, r_ < 0 ? (t)->err : (t)->line);                \
	} while (0)

#define VERIFY_FAILS(t, what)                                                                   \
	do {                                                                                    \
		int r_ = tc_verify(t, T_MS);                                                    \
		CHECKF(r_ == 1, "%s went unnoticed: %s", what, r_ < 0 ? (t)->err : (t)->line); \
		if (r_ == 1)                                                                    \
			printf("  detected %s: %s\n", what, (t)->line);                         \
	} while (0)

/* "info KEY 0xADDR LEN": the address (and length). */
static uintptr_t info_addr(struct tc_target *t, const char *key, size_t *len)
{
	char val[256];
	unsigned long long a = 0, l = 0;
	if (tc_info(t, key, val, sizeof(val)) < 0 || sscanf(val, "%llx %llu", &a, &l) < 1) {
		fprintf(stderr, "no 'info %s' line\n", key);
		return 0;
	}
	if (len)
		*len = (size_t)l;
	return (uintptr_t)a;
}

/* "info fd NAME N": the fd number. */
static int info_fd(struct tc_target *t, const char *name)
{
	char key[64], val[64];
	snprintf(key, sizeof(key), "fd %s", name);
	if (tc_info(t, key, val, sizeof(val)) < 0) {
		fprintf(stderr, "no 'info %s' line\n", key);
		return -1;
	}
	return atoi(val);
}

static int peek(pid_t pid, uintptr_t addr, unsigned char *b)
{
	struct iovec local = { b, 1 }, remote = { (void *)addr, 1 };
	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == 1 ? 0 : -1;
}

/* process_vm_writev honours page protections; /proc/PID/mem (as a debugger
 * does) also writes read-only pages. */
static int poke(pid_t pid, uintptr_t addr, unsigned char b)
{
	struct iovec local = { &b, 1 }, remote = { (void *)addr, 1 };
	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == 1)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pwrite(fd, &b, 1, (off_t)addr);
	if (fd >= 0)
		close(fd);
	return n == 1 ? 0 : -1;
}

/* Flips the byte at addr in the target, checks that verification fails,
 * puts it back and checks that verification passes again. */
static void damage_memory(struct tc_target *t, uintptr_t addr, const char *what)
{
	unsigned char old;
	CHECKF(addr && peek(t->pid, addr, &old) == 0, "cannot read %s at %#lx", what, (unsigned long)addr);
	if (!addr || peek(t->pid, addr, &old) < 0)
		return;
	CHECK(poke(t->pid, addr, (unsigned char)~old) == 0);
	VERIFY_FAILS(t, what);
	CHECK(poke(t->pid, addr, old) == 0);
	VERIFY_OK(t, what);
}

/* A duplicate of the target's fd, sharing its open file description. */
static int steal_fd(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return r;
}

static void test_idle(void)
{
	for (size_t s = 0; s < 6; s++) {
		static const char *const shapes[] = { "read", "poll", "futex", "nanosleep", "spin", "sigsuspend" };
		char wait[32];
		snprintf(wait, sizeof(wait), "--wait=%s", shapes[s]);
		const char *args[] = { "--setsid", "--same-pid", wait, s == 0 ? "--quiet-stdio" : NULL, NULL };
		struct tc_target t;
		if (start(&t, "ct_idle", args) < 0) {
			CHECK(0);
			continue;
		}
		CHECKF(getsid(t.pid) == t.pid, "--setsid");
		for (unsigned n = 1; n <= 3; n++) {
			VERIFY_OK(&t, shapes[s]);
			CHECKF(t.last_n == n, "verify number %u, expected %u", t.last_n, n);
		}
		if (s == 0) {
			char link[64] = "";
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/fd/1", (int)t.pid);
			CHECK(readlink(path, link, sizeof(link) - 1) > 0 && !strcmp(link, "/dev/null"));
			damage_memory(&t, info_addr(&t, "static", NULL) + 100, "ct_idle static buffer");
			damage_memory(&t, info_addr(&t, "stack", NULL) + 10, "ct_idle stack buffer");
		}
		int r = tc_stop(&t, T_MS);
		CHECKF(r == 0, "stop %s: %s", shapes[s], r < 0 ? t.err : t.line);
		CHECK(t.reaped && WIFEXITED(t.wstatus) && WEXITSTATUS(t.wstatus) == 0);
		tc_cleanup(&t);
	}
}

static void test_heap(void)
{
	const char *args[] = { "--mib=8", "--setsid", "--same-pid", NULL };
	struct tc_target t;
	if (start(&t, "ct_heap", args) < 0) {
		CHECK(0);
		return;
	}
	VERIFY_OK(&t, "ct_heap");
	static const char *const keys[] = { "chunk0", "node0", "data", "bss", "bss_zero", "zero_map", "stack" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t len = 0;
		uintptr_t a = info_addr(&t, keys[i], &len);
		/* node0: past the next pointer, into the index and payload. */
		damage_memory(&t, a ? a + (i == 1 ? 20 : len / 2 + 3) : 0, keys[i]);
	}
	int r = tc_stop(&t, T_MS);
	CHECKF(r == 0, "stop ct_heap: %s", r < 0 ? t.err : t.line);
	tc_cleanup(&t);
}

static void test_threads(void)
{
	const char *args[] = { "--setsid", "--same-pid", NULL };
	struct tc_target t;
	if (start(&t, "ct_threads", args) < 0) {
		CHECK(0);
		return;
	}
	char path[128], val[256];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)t.pid);
	int tasks = 0;
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));)
		tasks += e->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECKF(tasks == 9, "%d tasks", tasks);
	for (unsigned n = 1; n <= 3; n++) {
		VERIFY_OK(&t, "ct_threads");
		CHECK(t.last_n == n && strstr(t.line, " tids="));
	}

	/* Each kind of thread checks its own __thread and stack data. */
	static const char *const names[] = { "ct-compute1", "ct-futex0", "ct-sleep1", "ct-read0" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char key[64], what[96];
		unsigned long long tls = 0, stack = 0;
		snprintf(key, sizeof(key), "thread %s", names[i]);
		if (tc_info(&t, key, val, sizeof(val)) == 0)
			sscanf(val, "%*d tls %llx %*d stack %llx", &tls, &stack);
		snprintf(what, sizeof(what), "%s __thread data", names[i]);
		damage_memory(&t, tls ? (uintptr_t)tls + 33 + i : 0, what);
		snprintf(what, sizeof(what), "%s stack data", names[i]);
		damage_memory(&t, stack ? (uintptr_t)stack + 1000 + i : 0, what);
	}

	/* A byte a reader did not expect: it wakes up outside a verification. */
	int fd = steal_fd(t.pid, info_fd(&t, "ct-read1-pipe-write"));
	CHECKF(fd >= 0, "pidfd_getfd: %s", strerror(errno));
	if (fd >= 0) {
		CHECK(write(fd, "x", 1) == 1);
		close(fd);
		VERIFY_FAILS(&t, "an unexpected byte in a reader's pipe");
	}
	int r = tc_stop(&t, T_MS);
	CHECKF(r == 1, "the final verification should fail too: %d %s", r, r < 0 ? t.err : t.line);
	tc_cleanup(&t);
}

static void flip_file_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char b = 0;
	CHECKF(fd >= 0 && pread(fd, &b, 1, off) == 1, "%s", path);
	b = (unsigned char)~b;
	CHECK(fd >= 0 && pwrite(fd, &b, 1, off) == 1);
	if (fd >= 0)
		close(fd);
}

static void test_files(bool shared_anon)
{
	struct tc_target t;
	char path[PATH_MAX], dir[PATH_MAX], dir_arg[PATH_MAX + 8], file[PATH_MAX + 32];
	if (tc_init(&t) < 0) {
		CHECKF(0, "%s", t.err);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/files", t.dir);
	snprintf(dir_arg, sizeof(dir_arg), "--dir=%s", dir);
	char *argv[] = { (char *)target_path("ct_files", path, sizeof(path)), t.status, dir_arg, "--setsid",
			 "--same-pid", shared_anon ? "--shared-anon" : NULL, NULL };
	if (tc_spawn(&t, argv, 0) < 0 || tc_wait_ready(&t, T_MS) < 0) {
		CHECKF(0, "ct_files did not start: %s", t.err);
		tc_cleanup(&t);
		return;
	}
	VERIFY_OK(&t, "ct_files");
	VERIFY_OK(&t, "ct_files");
	CHECK(t.last_n == 2);
	if (shared_anon) {
		damage_memory(&t, info_addr(&t, "map shared-anon", NULL) + 5000, "shared anonymous memory");
		int r = tc_stop(&t, T_MS);
		CHECKF(r == 0, "stop ct_files: %s", r < 0 ? t.err : t.line);
		tc_cleanup(&t);
		return;
	}

	int fd = steal_fd(t.pid, info_fd(&t, "rw"));
	CHECKF(fd >= 0, "pidfd_getfd: %s", strerror(errno));
	if (fd >= 0) {
		lseek(fd, 999, SEEK_SET);
		VERIFY_FAILS(&t, "a moved offset");
		lseek(fd, 1000, SEEK_SET);
		VERIFY_OK(&t, "offset moved back");
		fcntl(fd, F_SETFL, O_NONBLOCK);
		VERIFY_FAILS(&t, "changed file flags");
		fcntl(fd, F_SETFL, 0);
		VERIFY_OK(&t, "file flags changed back");
		close(fd);
	}
	fd = steal_fd(t.pid, info_fd(&t, "dup-b"));
	if (fd >= 0) {
		lseek(fd, 101, SEEK_SET); /* through the shared description */
		VERIFY_FAILS(&t, "a moved offset of dup'ed fds");
		lseek(fd, 100, SEEK_SET);
		VERIFY_OK(&t, "dup'ed offset moved back");
		close(fd);
	}

	int w = steal_fd(t.pid, info_fd(&t, "pipe-write")), rd = steal_fd(t.pid, info_fd(&t, "pipe-read"));
	CHECK(w >= 0 && rd >= 0);
	if (w >= 0 && rd >= 0) {
		unsigned char buf[1001];
		CHECK(write(w, "x", 1) == 1);
		VERIFY_FAILS(&t, "an extra byte in the pipe");
		CHECK(read(rd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
		CHECK(write(w, buf, 1000) == 1000);
		VERIFY_OK(&t, "pipe refilled");
		CHECK(read(rd, buf, 1000) == 1000);
		buf[999] ^= 1;
		CHECK(write(w, buf, 1000) == 1000);
		VERIFY_FAILS(&t, "a changed byte in the pipe");
		CHECK(read(rd, buf, 1000) == 1000);
		buf[999] ^= 1;
		CHECK(write(w, buf, 1000) == 1000);
		VERIFY_OK(&t, "pipe repaired");
	}
	if (w >= 0)
		close(w);
	if (rd >= 0)
		close(rd);

	snprintf(file, sizeof(file), "%s/map_shared.dat", dir);
	flip_file_byte(file, 10);
	VERIFY_FAILS(&t, "a file changed under its shared mapping");
	flip_file_byte(file, 10);
	VERIFY_OK(&t, "shared mapping's file repaired");
	snprintf(file, sizeof(file), "%s/ro.dat", dir);
	flip_file_byte(file, 100);
	VERIFY_FAILS(&t, "a changed file");
	flip_file_byte(file, 100);
	VERIFY_OK(&t, "file repaired");

	uintptr_t priv = info_addr(&t, "map map-private", NULL);
	damage_memory(&t, priv ? priv + 4096 + 7 : 0, "a copied private page");
	damage_memory(&t, priv ? priv + 2 * 4096 + 9 : 0, "a file-backed private page");
	uintptr_t ro = info_addr(&t, "map map-ro", NULL);
	damage_memory(&t, ro ? ro + 12 : 0, "a read-only mapping");

	/* Last: a file replaced under an open fd cannot be repaired. */
	char copy[PATH_MAX + 32];
	snprintf(file, sizeof(file), "%s/rw.dat", dir);
	snprintf(copy, sizeof(copy), "%s/rw.copy", dir);
	int src = open(file, O_RDONLY), dst = open(copy, O_WRONLY | O_CREAT, 0644);
	char data[4096];
	CHECK(src >= 0 && dst >= 0 && read(src, data, sizeof(data)) == 4096 && write(dst, data, 4096) == 4096);
	close(src);
	close(dst);
	CHECK(rename(copy, file) == 0);
	VERIFY_FAILS(&t, "a file replaced by a copy");
	int r = tc_stop(&t, T_MS);
	CHECKF(r == 1, "the final verification should fail too: %d %s", r, r < 0 ? t.err : t.line);
	tc_cleanup(&t);
}

/* Runs ct_compute to its end; the result goes to hex. */
static int compute(const char *iters, int verifications, char *hex, size_t len)
{
	const char *args[] = { iters, "--setsid", NULL };
	struct tc_target t;
	if (start(&t, "ct_compute", args) < 0)
		return -1;
	for (int i = 0; i < verifications; i++) {
		VERIFY_OK(&t, "ct_compute mid-run");
		CHECK(strstr(t.line, " step="));
	}
	int rc = tc_result(&t, 120000, hex, len);
	CHECKF(rc == 0, "%s", t.err);
	if (rc == 0) {
		rc = tc_wait_exit(&t, T_MS);
		CHECKF(rc == 0, "%s", t.err);
	}
	tc_cleanup(&t);
	return rc;
}

static void test_compute(void)
{
	char a[64] = "", b[64] = "", c[64] = "", d[64] = "";
	CHECK(compute("--iterations=2000000", 0, a, sizeof(a)) == 0);
	CHECK(compute("--iterations=2000000", 0, b, sizeof(b)) == 0);
	CHECKF(a[0] && !strcmp(a, b), "results differ: %s %s", a, b);
	/* Long enough that the verifications land mid-run. */
	CHECK(compute("--iterations=60000000", 0, c, sizeof(c)) == 0);
	CHECK(compute("--iterations=60000000", 3, d, sizeof(d)) == 0);
	CHECKF(c[0] && !strcmp(c, d) && strcmp(a, c), "results: %s %s %s", a, c, d);

	const char *args[] = { "--iterations=1000000000000", "--setsid", NULL };
	struct tc_target t;
	if (start(&t, "ct_compute", args) < 0) {
		CHECK(0);
		return;
	}
	VERIFY_OK(&t, "ct_compute");
	unsigned char old;
	uintptr_t table = info_addr(&t, "table", NULL);
	CHECK(table && peek(t.pid, table + 4096, &old) == 0 && poke(t.pid, table + 4096, (unsigned char)(old + 1)) == 0);
	VERIFY_FAILS(&t, "a changed table word");
	int r = tc_stop(&t, T_MS);
	CHECKF(r == 1, "the final verification should fail too: %d %s", r, r < 0 ? t.err : t.line);
	tc_cleanup(&t);
}

/* ct_ghostmap: the private mappings' own pages and the file's, and the
 * deleted file held by an fd (its bytes, its offset). */
static void test_ghostmap(void)
{
	struct tc_target t;
	char path[PATH_MAX], dir[PATH_MAX], dir_arg[PATH_MAX + 8];
	if (tc_init(&t) < 0) {
		CHECKF(0, "%s", t.err);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/gm", t.dir);
	snprintf(dir_arg, sizeof(dir_arg), "--dir=%s", dir);
	char *argv[] = { (char *)target_path("ct_ghostmap", path, sizeof(path)), t.status, dir_arg, "--setsid",
			 "--deleted-exe", NULL };
	if (mkdir(dir, 0700) < 0 || tc_spawn(&t, argv, 0) < 0 || tc_wait_ready(&t, T_MS) < 0) {
		CHECKF(0, "ct_ghostmap did not start: %s", t.err);
		tc_cleanup(&t);
		return;
	}
	VERIFY_OK(&t, "ct_ghostmap");
	VERIFY_OK(&t, "ct_ghostmap");
	uintptr_t priv = info_addr(&t, "map priv", NULL), ro = info_addr(&t, "map ro", NULL);
	damage_memory(&t, priv + 4096 + 77, "a page the process copied on write");
	damage_memory(&t, ro + 2 * 4096 + 5, "a read-only page of a deleted file");
	char val[128];
	int bfd = -1;
	if (tc_info(&t, "map both", val, sizeof(val)) == 0)
		sscanf(val, "%*s %*s fd %d", &bfd);
	int fd = bfd < 0 ? -1 : steal_fd(t.pid, bfd);
	CHECKF(fd >= 0, "the deleted file's fd: %s", strerror(errno));
	if (fd >= 0) {
		unsigned char b, nb;
		CHECK(pread(fd, &b, 1, 2 * 4096 + 9) == 1);
		nb = (unsigned char)~b;
		CHECK(pwrite(fd, &nb, 1, 2 * 4096 + 9) == 1);
		VERIFY_FAILS(&t, "a changed byte of a deleted file");
		CHECK(pwrite(fd, &b, 1, 2 * 4096 + 9) == 1);
		VERIFY_OK(&t, "the deleted file put back");
		lseek(fd, 1235, SEEK_SET);
		VERIFY_FAILS(&t, "a moved offset of a deleted file");
		lseek(fd, 1234, SEEK_SET);
		VERIFY_OK(&t, "its offset moved back");
		close(fd);
	}
	int r = tc_stop(&t, T_MS);
	CHECKF(r == 0, "stop ct_ghostmap: %s", r < 0 ? t.err : t.line);
	tc_cleanup(&t);
}

int main(void)
{
	char probe[PATH_MAX];
	fp_test_build_path(bin_dir, sizeof(bin_dir), "tests/targets");
	const char *names[] = { "ct_idle", "ct_heap", "ct_threads", "ct_files", "ct_compute", "ct_ghostmap" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (access(target_path(names[i], probe, sizeof(probe)), X_OK) < 0) {
			fprintf(stderr, "%s is not built (make %s)\n", probe, probe);
			return 1;
		}
	test_idle();
	test_heap();
	test_threads();
	test_files(false);
	test_files(true);
	test_compute();
	test_ghostmap();
	return fp_test_done();
}
