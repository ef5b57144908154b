/* ct_ghostshared: a MAP_SHARED mapping of a file deleted since, shared by
 * the process and its child. DIR/gs_shared.dat, 4 pages, is mapped shared
 * read-write, its fd closed and the file unlinked; then the process forks.
 * Both write to it: at setup the child writes page 1, and every
 * verification goes through both. Each page has its own pattern; a
 * verification checks the maps line ("PATH (deleted)", shared), that pages
 * 2 and 3 still hold the file's bytes and page 1 the child's, then writes a
 * new number into page 0 and asks the child (over a socket pair) to read it
 * there and answer it, plus one, in page 1, which must then show here: one
 * file for both again, not two copies.
 *
 *   ct_ghostshared STATUS --dir=DIR [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>
#include <sys/socket.h>

#define PG 4096
#define NPG 4

static const char *dir;
static char path[PATH_MAX];
static volatile uint64_t *map;
static int sk = -1;
static pid_t kid;
static uint64_t nonce = 1000;

static uint64_t pattern(unsigned page, unsigned i)
{
	return ct_mix((uint64_t)page << 32 | i) | 1;
}

static void child(int s)
{
	volatile uint64_t *p1 = map + PG / 8;
	for (unsigned i = 1; i < PG / 8; i++)
		p1[i] = pattern(1, i) ^ 0xc1;
	uint64_t v;
	while (read(s, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		unsigned char ok = map[0] == v;
		p1[0] = v + 1;
		if (write(s, &ok, 1) != 1)
			break;
	}
	_exit(0);
}

static void verify(void)
{
	ct_verify_begin();
	char line[PATH_MAX + 256], want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s (deleted)", path);
	FILE *f = fopen("/proc/self/maps", "re");
	bool found = false;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a;
		char perms[8];
		if (sscanf(line, "%lx-%*x %7s", &a, perms) == 2 && a == (unsigned long)map) {
			found = true;
			if (strcmp(perms, "rw-s") || !strstr(line, want))
				ct_fail("the mapping is %s", line);
		}
	}
	if (f)
		fclose(f);
	if (!found)
		ct_fail("the mapping at %p is gone", (void *)map);
	for (unsigned pg = 1; pg < NPG && !ct.nfail; pg++)
		for (unsigned i = 1; i < PG / 8; i++)
			if (map[pg * PG / 8 + i] != (pattern(pg, i) ^ (pg == 1 ? 0xc1 : 0))) {
				ct_fail("page %u word %u is %#llx", pg, i, (unsigned long long)map[pg * PG / 8 + i]);
				break;
			}
	nonce++;
	map[0] = nonce;
	unsigned char ok = 0;
	if (write(sk, (const void *)&nonce, sizeof(nonce)) != (ssize_t)sizeof(nonce) || !ct_read_answer(sk, &ok, 1, 20000))
		ct_fail("the child %d does not answer", (int)kid);
	else if (!ok)
		ct_fail("the child does not see what this process wrote in the mapping");
	else if (map[PG / 8] != nonce + 1)
		ct_fail("this process does not see what the child wrote in the mapping (%llu, not %llu)",
			(unsigned long long)map[PG / 8], (unsigned long long)nonce + 1);
	ct_verify_end(NULL);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_ghostshared";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_ghostshared STATUS --dir=DIR [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir)) {
			fprintf(stderr, "ct_ghostshared: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir) {
		fprintf(stderr, "ct_ghostshared: --dir is required\n");
		return 2;
	}
	ct_setup();
	snprintf(path, sizeof(path), "%s/gs_shared.dat", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || ftruncate(fd, NPG * PG))
		ct_die("%s: %s", path, strerror(errno));
	map = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (unsigned pg = 0; pg < NPG; pg++)
		for (unsigned i = 0; i < PG / 8; i++)
			map[pg * PG / 8 + i] = pattern(pg, i);
	close(fd);
	unlink(path);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		ct_die("socketpair: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		ct_die("fork: %s", strerror(errno));
	if (!kid) {
		close(sp[0]);
		child(sp[1]);
	}
	close(sp[1]);
	sk = sp[0];
	unsigned char ok;
	uint64_t v = nonce;
	map[0] = v;
	if (write(sk, &v, sizeof(v)) != (ssize_t)sizeof(v) || !ct_read_answer(sk, &ok, 1, 20000) || !ok)
		ct_die("the child did not take part");
	ct_info("child %d", (int)kid);
	return ct_serve(verify);
}
