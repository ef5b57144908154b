/* ct_files: regular files open at various offsets and with various flags, a
 * pipe holding queued data, /dev/null, and file mappings (shared and written
 * through, private with copy-on-write pages, read-only), plus optionally
 * shared anonymous memory. Files live in DIR, which the target creates (it may
 * exist). Verification checks fd numbers, fd and file flags, offsets, file
 * identity, shared offsets between dup'ed fds, the pipe's queued data, the
 * mappings' contents and placement, that shared mappings still reach the
 * file, and that O_APPEND appends; afterwards everything is as before except
 * that append.log has one more line and the scratch page of map_shared.dat
 * holds new bytes.
 *
 *   ct_files STATUS --dir=DIR [--shared-anon] [--seed=N] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>
#include <sys/sysmacros.h>

#define PAGE 4096
#define PIPE_QUEUED 1000
#define MAP_LEN (16 * PAGE)
#define RO_MAP_LEN (4 * PAGE)
#define ANON_LEN (256 * PAGE)

struct fdrec {
	const char *name, *file; /* file: NULL for non-files */
	int fd, fdflags, flflags, accmode;
	off_t offset; /* -1: not checked */
	size_t size;  /* pattern length of the file, 0: not checked */
	uint64_t pattern;
};

enum { F_RO, F_RW, F_APPEND, F_DUP_A, F_DUP_B, F_SECOND, F_HIGH, F_NULL, F_PIPE_R, F_PIPE_W, F_COUNT };
static struct fdrec fds[F_COUNT] = {
	[F_RO] = { "ro", "ro.dat", -1, FD_CLOEXEC, 0, O_RDONLY, 5, 4096, 11 },
	[F_RW] = { "rw", "rw.dat", -1, 0, 0, O_RDWR, 1000, 4096, 12 },
	[F_APPEND] = { "append", "append.log", -1, 0, 0, O_WRONLY, -1, 0, 0 },
	[F_DUP_A] = { "dup-a", "shared.dat", -1, 0, 0, O_RDWR, 100, 4096, 13 },
	[F_DUP_B] = { "dup-b", "shared.dat", -1, 0, 0, O_RDWR, 100, 4096, 13 },
	[F_SECOND] = { "second", "shared.dat", -1, 0, 0, O_RDONLY, 300, 4096, 13 },
	[F_HIGH] = { "high", "high.dat", 100, 0, 0, O_RDONLY, 77, 4096, 14 },
	[F_NULL] = { "null", NULL, -1, 0, 0, O_RDWR, -1, 0, 0 },
	[F_PIPE_R] = { "pipe-read", NULL, -1, 0, 0, O_RDONLY, -1, 0, 0 },
	[F_PIPE_W] = { "pipe-write", NULL, -1, 0, 0, O_WRONLY, -1, 0, 0 },
};

struct maprec {
	const char *name, *file;
	unsigned char *addr;
	size_t len;
	const char *perms; /* as in /proc/self/maps */
	uint64_t pattern;
};
enum { M_SHARED, M_PRIVATE, M_RO, M_ANON, M_COUNT };
static struct maprec maps[M_COUNT] = {
	[M_SHARED] = { "map-shared", "map_shared.dat", NULL, MAP_LEN, "rw-s", 21 },
	[M_PRIVATE] = { "map-private", "map_private.dat", NULL, MAP_LEN, "rw-p", 22 },
	[M_RO] = { "map-ro", "map_ro.dat", NULL, RO_MAP_LEN, "r--p", 23 },
	[M_ANON] = { "shared-anon", NULL, NULL, ANON_LEN, "rw-s", 24 },
};

static char dir[PATH_MAX - 64];
static uint64_t seed;
static int pipe_size;
static bool shared_anon;

static void path_of(const char *file, char *out, size_t len) { snprintf(out, len, "%s/%s", dir, file); }

static void write_file(const char *file, size_t len, uint64_t pattern)
{
	char path[PATH_MAX];
	path_of(file, path, sizeof(path));
	unsigned char *buf = malloc(len);
	if (!buf)
		ct_die("out of memory");
	ct_fill(buf, len, seed ^ pattern);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		ct_die("cannot write %s: %s", path, strerror(errno));
	free(buf);
}

static int open_at(const char *file, int flags, off_t off)
{
	char path[PATH_MAX];
	path_of(file, path, sizeof(path));
	int fd = open(path, flags, 0644);
	if (fd < 0)
		ct_die("cannot open %s: %s", path, strerror(errno));
	if (off >= 0 && lseek(fd, off, SEEK_SET) != off)
		ct_die("lseek %s: %s", path, strerror(errno));
	return fd;
}

/* Private pages 1, 3, 5, ... are written (copied on write); the others still
 * show the file. */
static uint64_t private_page_pattern(size_t page) { return page % 2 ? 0x5000 + page : 0; }

static void setup_files(void)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		ct_die("cannot create %s: %s", dir, strerror(errno));
	write_file("ro.dat", 4096, 11);
	write_file("rw.dat", 4096, 12);
	write_file("shared.dat", 4096, 13);
	write_file("high.dat", 4096, 14);
	write_file("map_shared.dat", MAP_LEN, 0x77); /* overwritten through the mapping */
	write_file("map_private.dat", MAP_LEN, 22);
	write_file("map_ro.dat", RO_MAP_LEN, 23);
	char path[PATH_MAX];
	path_of("append.log", path, sizeof(path));
	unlink(path);

	fds[F_RO].fd = open_at("ro.dat", O_RDONLY | O_CLOEXEC, 5);
	fds[F_RW].fd = open_at("rw.dat", O_RDWR, 1000);
	fds[F_APPEND].fd = open_at("append.log", O_WRONLY | O_APPEND | O_CREAT, -1);
	if (write(fds[F_APPEND].fd, "header\n", 7) != 7)
		ct_die("write append.log: %s", strerror(errno));
	fds[F_DUP_A].fd = open_at("shared.dat", O_RDWR, 100);
	fds[F_DUP_B].fd = dup(fds[F_DUP_A].fd);
	fds[F_SECOND].fd = open_at("shared.dat", O_RDONLY, 300);
	int high = open_at("high.dat", O_RDONLY, 77);
	if (dup2(high, fds[F_HIGH].fd) != fds[F_HIGH].fd)
		ct_die("dup2: %s", strerror(errno));
	close(high);
	fds[F_NULL].fd = open("/dev/null", O_RDWR);
	int p[2];
	if (fds[F_DUP_B].fd < 0 || fds[F_NULL].fd < 0 || pipe2(p, 0) < 0)
		ct_die("dup, /dev/null or pipe: %s", strerror(errno));
	fds[F_PIPE_R].fd = p[0];
	fds[F_PIPE_W].fd = p[1];
	unsigned char q[PIPE_QUEUED];
	ct_fill(q, sizeof(q), seed ^ 31);
	if (write(p[1], q, sizeof(q)) != (ssize_t)sizeof(q))
		ct_die("cannot fill the pipe: %s", strerror(errno));
	pipe_size = fcntl(p[0], F_GETPIPE_SZ);
	for (int i = 0; i < F_COUNT; i++) {
		fds[i].fdflags = fcntl(fds[i].fd, F_GETFD);
		fds[i].flflags = fcntl(fds[i].fd, F_GETFL);
		if ((fds[i].flflags & O_ACCMODE) != fds[i].accmode)
			ct_die("fd %d has access mode %#o", fds[i].fd, fds[i].flflags & O_ACCMODE);
	}

	for (int m = 0; m < M_COUNT; m++) {
		struct maprec *mr = &maps[m];
		if (m == M_ANON) {
			if (!shared_anon)
				continue;
			mr->addr = mmap(NULL, mr->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		} else {
			int fd = open_at(mr->file, m == M_RO ? O_RDONLY : O_RDWR, -1);
			mr->addr = mmap(NULL, mr->len, m == M_RO ? PROT_READ : PROT_READ | PROT_WRITE,
					m == M_SHARED ? MAP_SHARED : MAP_PRIVATE, fd, 0);
			close(fd); /* the mapping alone keeps the file */
		}
		if (mr->addr == MAP_FAILED)
			ct_die("mmap %s: %s", mr->name, strerror(errno));
	}
	ct_fill(maps[M_SHARED].addr, MAP_LEN, seed ^ 21);
	if (msync(maps[M_SHARED].addr, MAP_LEN, MS_SYNC) < 0)
		ct_die("msync: %s", strerror(errno));
	for (size_t pg = 1; pg < MAP_LEN / PAGE; pg += 2)
		ct_fill(maps[M_PRIVATE].addr + pg * PAGE, PAGE, seed ^ private_page_pattern(pg));
	if (shared_anon)
		ct_fill(maps[M_ANON].addr, ANON_LEN, seed ^ 24);
}

static bool file_matches(int fd, size_t off, size_t len, uint64_t pattern, const char *what)
{
	unsigned char buf[MAP_LEN];
	if (len > sizeof(buf) || pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
		ct_fail("%s: short pread", what);
		return false;
	}
	long bad = ct_check_fill(buf, len, seed ^ pattern);
	if (bad >= 0)
		ct_fail("%s: file content differs at offset %zu", what, off + (size_t)bad);
	return bad < 0;
}

static void verify_fds(void)
{
	for (int i = 0; i < F_COUNT; i++) {
		struct fdrec *r = &fds[i];
		int fdflags = fcntl(r->fd, F_GETFD), flflags = fcntl(r->fd, F_GETFL);
		if (fdflags < 0) {
			ct_fail("fd %d (%s) is not open", r->fd, r->name);
			continue;
		}
		if (fdflags != r->fdflags)
			ct_fail("fd %d (%s): fd flags %#x, expected %#x", r->fd, r->name, fdflags, r->fdflags);
		if (flflags != r->flflags)
			ct_fail("fd %d (%s): file flags %#o, expected %#o", r->fd, r->name, flflags, r->flflags);
		off_t off = lseek(r->fd, 0, SEEK_CUR);
		if (r->offset >= 0 && off != r->offset)
			ct_fail("fd %d (%s): offset %lld, expected %lld", r->fd, r->name, (long long)off, (long long)r->offset);
		if (r->file) {
			char path[PATH_MAX];
			struct stat a, b;
			path_of(r->file, path, sizeof(path));
			if (fstat(r->fd, &a) < 0 || stat(path, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
				ct_fail("fd %d (%s) is not the file %s", r->fd, r->name, path);
		}
		if (r->size)
			file_matches(r->fd, 0, r->size, r->pattern, r->name);
	}
	/* dup'ed fds share one offset, the second open has its own. */
	int a = fds[F_DUP_A].fd, b = fds[F_DUP_B].fd, c = fds[F_SECOND].fd;
	if (lseek(a, 123, SEEK_SET) != 123 || lseek(b, 0, SEEK_CUR) != 123 || lseek(c, 0, SEEK_CUR) != 300)
		ct_fail("fds %d and %d no longer share an offset, or %d does", a, b, c);
	lseek(a, 100, SEEK_SET);
	lseek(c, 300, SEEK_SET);

	struct stat st;
	char z = 0;
	if (fstat(fds[F_NULL].fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) ||
	    write(fds[F_NULL].fd, &z, 1) != 1 || read(fds[F_NULL].fd, &z, 1) != 0)
		ct_fail("fd %d is not /dev/null", fds[F_NULL].fd);

	/* O_APPEND: the line lands at the end whatever the offset was. */
	int fd = fds[F_APPEND].fd;
	char line[64];
	int len = snprintf(line, sizeof(line), "verify %u\n", ct.n);
	struct stat before, after;
	fstat(fd, &before);
	if (write(fd, line, (size_t)len) != len) {
		ct_fail("cannot write to append.log: %s", strerror(errno));
	} else {
		char back[64] = "";
		fstat(fd, &after);
		if (after.st_size != before.st_size + len || lseek(fd, 0, SEEK_CUR) != after.st_size)
			ct_fail("append.log: write at %lld did not append (size %lld -> %lld)",
				(long long)lseek(fd, 0, SEEK_CUR), (long long)before.st_size, (long long)after.st_size);
		int rfd = open_at("append.log", O_RDONLY, -1);
		if (pread(rfd, back, (size_t)len, before.st_size) != len || memcmp(back, line, (size_t)len))
			ct_fail("append.log does not end with the line just written");
		close(rfd);
	}

	/* The pipe: exactly the queued bytes; read them and put them back. */
	int avail = -1, pr = fds[F_PIPE_R].fd, pw = fds[F_PIPE_W].fd;
	unsigned char q[PIPE_QUEUED];
	if (ioctl(pr, FIONREAD, &avail) < 0 || avail != PIPE_QUEUED) {
		ct_fail("pipe holds %d bytes, expected %d", avail, PIPE_QUEUED);
	} else if (read(pr, q, sizeof(q)) != (ssize_t)sizeof(q)) {
		ct_fail("cannot read the pipe: %s", strerror(errno));
	} else {
		long bad = ct_check_fill(q, sizeof(q), seed ^ 31);
		if (bad >= 0)
			ct_fail("pipe data differs at byte %ld", bad);
		if (write(pw, q, sizeof(q)) != (ssize_t)sizeof(q))
			ct_fail("cannot refill the pipe: %s", strerror(errno));
	}
	if (fcntl(pr, F_GETPIPE_SZ) != pipe_size)
		ct_fail("pipe size %d, expected %d", fcntl(pr, F_GETPIPE_SZ), pipe_size);
}

/* The /proc/self/maps line of a mapping: range, permissions, file. */
static void check_maps_line(const struct maprec *mr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f) {
		ct_fail("cannot read /proc/self/maps");
		return;
	}
	char line[PATH_MAX + 128], path[PATH_MAX] = "";
	bool found = false;
	if (mr->file)
		path_of(mr->file, path, sizeof(path));
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8], file[PATH_MAX] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %4095[^\n]", &lo, &hi, perms, file) < 3)
			continue;
		if (lo != (unsigned long)mr->addr)
			continue;
		found = true;
		if (hi - lo != mr->len || strcmp(perms, mr->perms) || (mr->file && strcmp(file, path)))
			ct_fail("%s mapping is %lx-%lx %s %s, expected length %zu %s %s", mr->name, lo, hi, perms, file,
				mr->len, mr->perms, mr->file ? path : "");
	}
	fclose(f);
	if (!found)
		ct_fail("%s mapping at %p is gone", mr->name, (void *)mr->addr);
}

static void verify_maps(void)
{
	for (int m = 0; m < M_COUNT; m++)
		if (maps[m].addr)
			check_maps_line(&maps[m]);
	/* Shared file mapping: all but the scratch (last) page hold the pattern,
	 * and both directions still reach the file. */
	struct maprec *sh = &maps[M_SHARED];
	size_t scratch = MAP_LEN - PAGE;
	long bad = ct_check_fill(sh->addr, scratch, seed ^ 21);
	if (bad >= 0)
		ct_fail("map-shared differs at offset %ld", bad);
	int fd = open_at(sh->file, O_RDWR, -1);
	file_matches(fd, 0, scratch, 21, "map_shared.dat");
	uint64_t token = ct_mix(seed ^ ct.n ^ ((uint64_t)getpid() << 32)), back = 0;
	memcpy(sh->addr + scratch, &token, sizeof(token));
	if (msync(sh->addr, MAP_LEN, MS_SYNC) < 0 || pread(fd, &back, sizeof(back), (off_t)scratch) != sizeof(back) ||
	    back != token)
		ct_fail("a write through map-shared did not reach the file");
	token = ~token;
	if (pwrite(fd, &token, sizeof(token), (off_t)scratch + 64) != sizeof(token) ||
	    memcmp(sh->addr + scratch + 64, &token, sizeof(token)))
		ct_fail("a write to map_shared.dat did not show in map-shared");
	close(fd);

	/* Private mapping: copied pages keep their own bytes, the others still
	 * show the file, and the file never saw the private writes. */
	struct maprec *pv = &maps[M_PRIVATE];
	static unsigned char file_bytes[MAP_LEN];
	ct_fill(file_bytes, MAP_LEN, seed ^ 22);
	for (size_t pg = 0; pg < MAP_LEN / PAGE; pg++) {
		const unsigned char *p = pv->addr + pg * PAGE;
		bool differs = pg % 2 ? ct_check_fill(p, PAGE, seed ^ private_page_pattern(pg)) >= 0
				      : memcmp(p, file_bytes + pg * PAGE, PAGE) != 0;
		if (differs) {
			ct_fail("map-private page %zu (%s) differs", pg, pg % 2 ? "copied" : "file-backed");
			break;
		}
	}
	fd = open_at(pv->file, O_RDONLY, -1);
	file_matches(fd, 0, MAP_LEN, 22, "map_private.dat");
	close(fd);

	if ((bad = ct_check_fill(maps[M_RO].addr, RO_MAP_LEN, seed ^ 23)) >= 0)
		ct_fail("map-ro differs at offset %ld", bad);
	if (shared_anon && (bad = ct_check_fill(maps[M_ANON].addr, ANON_LEN, seed ^ 24)) >= 0)
		ct_fail("shared-anon differs at offset %ld", bad);
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_files STATUS --dir=DIR [--shared-anon] [--seed=N] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_files";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long s = 1;
	for (int i = 2; i < argc; i++) {
		const char *d;
		if (ct_str_arg(argv[i], "--dir", &d))
			snprintf(dir, sizeof(dir), "%s", d);
		else if (!strcmp(argv[i], "--shared-anon"))
			shared_anon = true;
		else if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--seed", &s))
			usage();
	}
	if (!dir[0])
		usage();
	seed = s;
	ct_setup();
	if (dir[0] != '/') { /* the checks must not depend on the cwd */
		char rel[sizeof(dir)];
		snprintf(rel, sizeof(rel), "%s", dir);
		if (snprintf(dir, sizeof(dir), "%s/%s", ct.cwd0, rel) >= (int)sizeof(dir))
			ct_die("directory path too long");
	}
	setup_files();
	for (int i = 0; i < F_COUNT; i++)
		ct_info("fd %s %d", fds[i].name, fds[i].fd);
	for (int m = 0; m < M_COUNT; m++)
		if (maps[m].addr)
			ct_info("map %s %p %zu", maps[m].name, (void *)maps[m].addr, maps[m].len);
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		verify_fds();
		verify_maps();
		bool ok = ct_verify_end(NULL);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
