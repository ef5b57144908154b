/* ct_ghostmap: private mappings of files deleted since (CRIU's ghost files
 * behind mappings), and with --deleted-exe its own executable deleted:
 *
 *   priv  DIR/gm_priv.dat, 16 pages MAP_PRIVATE read-write, odd pages
 *         written (copied on write), fd closed, file unlinked
 *   ro    DIR/gm_ro.dat, 4 pages MAP_PRIVATE read-only, fd closed, unlinked
 *   both  DIR/gm_both.dat, 8 pages, held open O_RDWR at offset 1234 and
 *         mapped MAP_PRIVATE read-write with page 0 written, unlinked
 *   exe   (--deleted-exe) the program copies itself to DIR/ct_ghostmap.exe,
 *         runs the copy (same pid) and unlinks it
 *
 * Every page of every file has its own pattern (a function of its index),
 * so a verification knows what each page must hold: the written pages
 * theirs, the others the file's. It checks each mapping's maps line
 * (range, permissions, "PATH (deleted)"), the held fd (offset, flags, no
 * links left, the mapping's inode), and that the mapping and the fd are one
 * file: a page written through the fd shows in the mapping where the
 * mapping has not copied it, and not where it has; the page is then put
 * back. With --deleted-exe: /proc/self/exe is "DIR/ct_ghostmap.exe
 * (deleted)" and holds the bytes it held at setup.
 *
 *   ct_ghostmap STATUS --dir=DIR [--deleted-exe] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>

#define PG 4096
#define NPRIV 16
#define NRO 4
#define NBOTH 8
#define BOTH_POS 1234

static const char *dir;
static bool deleted_exe;
static char priv_path[PATH_MAX], ro_path[PATH_MAX], both_path[PATH_MAX], exe_path[PATH_MAX];
static unsigned char *priv, *ro, *both;
static int both_fd = -1;
static uint64_t exe_hash, exe_size;

/* The pattern of page i of a file whose pages start at seed base. */
static void page_fill(unsigned char *p, uint64_t base, size_t i) { ct_fill(p, PG, base + i); }
static bool page_is(const unsigned char *p, uint64_t base, size_t i) { return ct_check_fill(p, PG, base + i) < 0; }

static void make_file(const char *path, uint64_t base, size_t pages)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		ct_die("creating %s: %s", path, strerror(errno));
	unsigned char buf[PG];
	for (size_t i = 0; i < pages; i++) {
		page_fill(buf, base, i);
		if (pwrite(fd, buf, PG, (off_t)(i * PG)) != PG)
			ct_die("writing %s: %s", path, strerror(errno));
	}
	close(fd);
}

static unsigned char *map_file(const char *path, size_t pages, int prot, int *keep)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		ct_die("opening %s: %s", path, strerror(errno));
	void *m = mmap(NULL, pages * PG, prot, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		ct_die("mmap %s: %s", path, strerror(errno));
	if (keep)
		*keep = fd;
	else
		close(fd);
	if (unlink(path))
		ct_die("unlink %s: %s", path, strerror(errno));
	return m;
}

/* The maps line of the mapping at m: its inode, after checking the rest. */
static uint64_t check_maps(const char *name, const unsigned char *m, size_t pages, const char *perms, const char *path)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 128];
	uint64_t ino = 0;
	bool found = false;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off, i;
		char pm[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %llu %n", &s, &e, pm, &off, &i, &pos) < 5 ||
		    s != (uintptr_t)m)
			continue;
		found = true;
		char want[PATH_MAX + 16];
		snprintf(want, sizeof(want), "%s (deleted)", path);
		line[strcspn(line, "\n")] = 0;
		if (e - s != pages * PG || strcmp(pm, perms) || off || !pos || strcmp(line + pos, want))
			ct_fail("%s: maps line '%s', expected %zu pages %s '%s'", name, line, pages, perms, want);
		ino = i;
	}
	if (f)
		fclose(f);
	if (!found)
		ct_fail("%s: nothing mapped at %p", name, (const void *)m);
	return ino;
}

static void check_pages(const char *name, const unsigned char *m, size_t pages, uint64_t file_base,
			uint64_t written_base, bool (*written)(size_t))
{
	for (size_t i = 0; i < pages; i++) {
		bool w = written && written(i);
		if (!page_is(m + i * PG, w ? written_base : file_base, i))
			ct_fail("%s: page %zu does not hold %s", name, i, w ? "what the process wrote" : "the file's bytes");
	}
}

static bool odd(size_t i) { return i & 1; }
static bool first(size_t i) { return i == 0; }

static uint64_t hash_exe(uint64_t *size)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned char buf[65536];
	ssize_t n;
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
		*size += (uint64_t)n;
	}
	close(fd);
	return h;
}

static void check_both(void)
{
	uint64_t ino = check_maps("both", both, NBOTH, "rw-p", both_path);
	struct stat st;
	if (fstat(both_fd, &st))
		ct_fail("both: fstat of fd %d: %s", both_fd, strerror(errno));
	else if (st.st_nlink != 0 || st.st_ino != ino || st.st_size != NBOTH * PG)
		ct_fail("both: fd %d has %lu links, inode %llu (the mapping's: %llu), %lld bytes", both_fd,
			(unsigned long)st.st_nlink, (unsigned long long)st.st_ino, (unsigned long long)ino,
			(long long)st.st_size);
	off_t pos = lseek(both_fd, 0, SEEK_CUR);
	if (pos != BOTH_POS)
		ct_fail("both: fd %d is at offset %lld, expected %d", both_fd, (long long)pos, BOTH_POS);
	int fl = fcntl(both_fd, F_GETFL);
	if ((fl & O_ACCMODE) != O_RDWR)
		ct_fail("both: fd %d has flags %#o", both_fd, (unsigned)fl);
	unsigned char buf[PG];
	for (size_t i = 0; i < NBOTH; i++)
		if (pread(both_fd, buf, PG, (off_t)(i * PG)) != PG || !page_is(buf, 3000, i))
			ct_fail("both: the file's page %zu is not as written at setup", i);
	check_pages("both", both, NBOTH, 3000, 3100, first);
	/* one file: page 5 (not copied) follows the file, page 0 (copied) not */
	page_fill(buf, 3200 + ct.n, 5);
	if (pwrite(both_fd, buf, PG, 5 * PG) != PG)
		ct_fail("both: pwrite: %s", strerror(errno));
	else if (!page_is(both + 5 * PG, 3200 + ct.n, 5))
		ct_fail("both: a write through fd %d does not show in the mapping: two files", both_fd);
	page_fill(buf, 3300 + ct.n, 0);
	if (pwrite(both_fd, buf, PG, 0) != PG)
		ct_fail("both: pwrite: %s", strerror(errno));
	else if (!page_is(both, 3100, 0))
		ct_fail("both: the mapping's own page 0 follows the file");
	for (size_t i = 0; i < 6; i += 5) {
		page_fill(buf, 3000, i);
		if (pwrite(both_fd, buf, PG, (off_t)(i * PG)) != PG)
			ct_fail("both: putting page %zu back: %s", i, strerror(errno));
	}
}

static bool verify(void)
{
	ct_verify_begin();
	check_maps("priv", priv, NPRIV, "rw-p", priv_path);
	check_pages("priv", priv, NPRIV, 1000, 1100, odd);
	check_maps("ro", ro, NRO, "r--p", ro_path);
	check_pages("ro", ro, NRO, 2000, 0, NULL);
	check_both();
	if (deleted_exe) {
		char link[PATH_MAX + 16], want[PATH_MAX + 16];
		ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = 0;
		snprintf(want, sizeof(want), "%s (deleted)", exe_path);
		if (strcmp(link, want))
			ct_fail("exe is '%s', expected '%s'", link, want);
		uint64_t size = 0, h = hash_exe(&size);
		if (h != exe_hash || size != exe_size)
			ct_fail("exe holds %llu bytes of other content (%llu bytes at setup)", (unsigned long long)size,
				(unsigned long long)exe_size);
	}
	return ct_verify_end(NULL);
}

/* Runs a copy of this program from DIR (same pid), which deletes itself. */
static void run_copy(char **argv)
{
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open(exe_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0750);
	if (in < 0 || out < 0)
		ct_die("copying the executable to %s: %s", exe_path, strerror(errno));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			ct_die("copying the executable: %s", strerror(errno));
	close(in);
	close(out);
	setenv("CT_GHOSTMAP_COPY", "1", 1);
	execv(exe_path, argv);
	ct_die("exec %s: %s", exe_path, strerror(errno));
}

int main(int argc, char **argv)
{
	ct.prog = "ct_ghostmap";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_ghostmap STATUS --dir=DIR [--deleted-exe] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--deleted-exe"))
			deleted_exe = true;
		else if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir)) {
			fprintf(stderr, "ct_ghostmap: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir)
		ct_die("--dir=DIR is needed");
	snprintf(exe_path, sizeof(exe_path), "%s/ct_ghostmap.exe", dir);
	if (deleted_exe && !getenv("CT_GHOSTMAP_COPY"))
		run_copy(argv);
	unsetenv("CT_GHOSTMAP_COPY");
	ct_setup();
	if (deleted_exe) {
		exe_hash = hash_exe(&exe_size);
		if (unlink(exe_path))
			ct_die("unlink %s: %s", exe_path, strerror(errno));
	}
	snprintf(priv_path, sizeof(priv_path), "%s/gm_priv.dat", dir);
	snprintf(ro_path, sizeof(ro_path), "%s/gm_ro.dat", dir);
	snprintf(both_path, sizeof(both_path), "%s/gm_both.dat", dir);
	make_file(priv_path, 1000, NPRIV);
	make_file(ro_path, 2000, NRO);
	make_file(both_path, 3000, NBOTH);
	priv = map_file(priv_path, NPRIV, PROT_READ | PROT_WRITE, NULL);
	for (size_t i = 1; i < NPRIV; i += 2)
		page_fill(priv + i * PG, 1100, i);
	ro = map_file(ro_path, NRO, PROT_READ, NULL);
	both = map_file(both_path, NBOTH, PROT_READ | PROT_WRITE, &both_fd);
	page_fill(both, 3100, 0);
	if (lseek(both_fd, BOTH_POS, SEEK_SET) != BOTH_POS)
		ct_die("lseek: %s", strerror(errno));
	ct_info("map priv %p %d", (void *)priv, NPRIV * PG);
	ct_info("map ro %p %d", (void *)ro, NRO * PG);
	ct_info("map both %p %d fd %d", (void *)both, NBOTH * PG, both_fd);
	ct_ready();
	for (;;) { /* SIGTERM: one more verification, its verdict the exit status */
		bool term = ct_wait() == CT_EV_TERM;
		bool ok = verify();
		if (term)
			return ok ? 0 : 1;
	}
}
