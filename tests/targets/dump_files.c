/* dump_files: a checkpoint target with open files for the dumper's tests
 * (until ct_files exists), on the ct_proto.h status-file protocol.
 *   fd A: a regular file read/write at offset 5
 *   fd B: a log opened O_APPEND that grows at every verification
 *   a pipe (both ends) holding 10 queued bytes
 *   a private file mapping with one page written (copy-on-write)
 *   a shared file mapping (its writes reach the file)
 *   /dev/null opened read-only
 * Files live in the directory given by --dir (default: the status file's).
 *
 *   dump_files STATUS [--dir=DIR] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>

static int fd_rw, fd_log, fd_null, pfd[2];
static unsigned char *priv, *shared;
static char dir[PATH_MAX];
static const char queued[] = "hello-pipe";
static long logged;

static void verify(void)
{
	ct_verify_begin();
	off_t pos = lseek(fd_rw, 0, SEEK_CUR);
	if (pos != 5)
		ct_fail("rw file offset is %lld, expected 5", (long long)pos);
	char buf[64];
	int avail = -1;
	ioctl(pfd[0], FIONREAD, &avail);
	if (avail != (int)sizeof(queued) - 1)
		ct_fail("pipe holds %d bytes, expected %zu", avail, sizeof(queued) - 1);
	else {
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n != (ssize_t)sizeof(queued) - 1 || memcmp(buf, queued, (size_t)n))
			ct_fail("pipe data changed");
		if (write(pfd[1], queued, sizeof(queued) - 1) != (ssize_t)sizeof(queued) - 1)
			ct_fail("cannot refill the pipe: %s", strerror(errno));
	}
	for (int i = 0; i < 4096; i++)
		if (priv[i] != (unsigned char)(i * 7 + 1)) {
			ct_fail("private mapping byte %d is %d", i, priv[i]);
			break;
		}
	for (int i = 0; i < 4096; i++)
		if (priv[4096 + i] != 'f') {
			ct_fail("private mapping page 2 (file-backed) byte %d is %d", i, priv[4096 + i]);
			break;
		}
	char sp[32];
	snprintf(sp, sizeof(sp), "shared-%u", ct.n);
	memcpy(shared, sp, strlen(sp) + 1);
	char fpath[PATH_MAX + 32], back[32] = "";
	snprintf(fpath, sizeof(fpath), "%s/df-shared", dir);
	int f = open(fpath, O_RDONLY);
	if (f < 0 || pread(f, back, sizeof(back) - 1, 0) < 0 || strcmp(back, sp))
		ct_fail("shared mapping write did not reach the file (read '%s')", back);
	if (f >= 0)
		close(f);
	struct stat st;
	if (fstat(fd_log, &st) < 0 || st.st_size != logged)
		ct_fail("log size %lld, expected %ld", (long long)st.st_size, logged);
	int n = dprintf(fd_log, "verify %u\n", ct.n);
	if (n > 0)
		logged += n;
	if (read(fd_null, buf, 1) != 0)
		ct_fail("/dev/null is not /dev/null any more");
	ct_verify_end(NULL);
}

static int make_file(const char *name, char fill, size_t len)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		ct_die("open %s: %s", path, strerror(errno));
	char b[4096];
	memset(b, fill, sizeof(b));
	for (size_t o = 0; o < len; o += sizeof(b))
		if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
			ct_die("write %s: %s", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	ct.prog = "dump_files";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: dump_files STATUS [--dir=DIR] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "--dir=", 6))
			snprintf(dir, sizeof(dir), "%s", argv[i] + 6);
		else if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "dump_files: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	(void)ct_info;
	(void)ct_num_arg;
	ct_setup();
	fd_rw = make_file("df-rw", 'r', 4096);
	lseek(fd_rw, 5, SEEK_SET);
	char lp[PATH_MAX + 32];
	snprintf(lp, sizeof(lp), "%s/df-log", dir);
	fd_log = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd_log < 0)
		ct_die("open %s: %s", lp, strerror(errno));
	logged = dprintf(fd_log, "start\n");
	if (pipe(pfd) < 0 || write(pfd[1], queued, sizeof(queued) - 1) != (ssize_t)sizeof(queued) - 1)
		ct_die("pipe: %s", strerror(errno));
	int fm = make_file("df-map", 'f', 8192);
	priv = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fm, 0);
	close(fm);
	int fs = make_file("df-shared", 's', 4096);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fs, 0);
	close(fs);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (int i = 0; i < 4096; i++)
		priv[i] = (unsigned char)(i * 7 + 1);
	fd_null = open("/dev/null", O_RDONLY);
	return ct_serve(verify);
}
