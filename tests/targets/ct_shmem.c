/* ct_shmem: shared memory between a parent and its forked child.
 *
 * Before forking, main maps 1 MiB of shared anonymous memory (patterned
 * first 768 KiB, 192 KiB never touched, a 64 KiB mailbox) and 512 KiB more
 * of which it unmaps the first 128 KiB (a mapping at offset 128 KiB of its
 * object), and 256 KiB of which it unmaps the second half after the fork
 * (the child keeps all of it). With --memfd it also makes a memfd (sealing allowed) of 320 KiB:
 * 256 KiB patterned, written through the fd, which stays open at offset
 * 12345; 64 KiB of it mapped shared at offset 64 KiB and 64 KiB mapped
 * private at offset 128 KiB with its odd pages written (copied on write);
 * then sealed against shrinking and growing. A second memfd, held as an fd
 * only, is sealed against writes and further seals.
 *
 * Each verification: main checks its memory, the memfds' seals, sizes,
 * contents and offset; the child checks its view of the same memory; then
 * main writes a fresh token into each shared mailbox, the child must read
 * it and answer with a token of its own in the same memory, which main must
 * read. The child also reports the inode of its shared mappings, which must
 * be main's (one object, not two copies).
 *
 *   ct_shmem STATUS [--memfd] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define SHM_LEN (1u << 20)
#define SHM_PAT (768u << 10)
#define SHM_ZERO (192u << 10)
#define MAIL_OFF (SHM_PAT + SHM_ZERO)
#define OFF_LEN (512u << 10)
#define OFF_CUT (128u << 10)
#define TAIL_LEN (256u << 10) /* main keeps only the first half after the fork */
#define MFD_LEN (320u << 10)
#define MFD_PAT (256u << 10)
#define MFD_POS 12345
#define MAP_LEN (64u << 10)
#define MFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
#define MFD2_SEALS (F_SEAL_WRITE | F_SEAL_SEAL)
#define REPLY_TIMEOUT_MS 20000

struct request {
	char cmd; /* 'v' verify, 'q' exit */
	uint64_t token;
};
struct reply {
	char ok;
	uint64_t ino_shm, ino_mfd;
	char why[240];
};

static const uint64_t seed = 0x5eed;
static unsigned char *shm, *shm_off, *tail, *mfd_sh, *mfd_priv;
static bool is_kid;
static int mfd = -1, mfd2 = -1;
static bool with_memfd;
static int req[2], rep[2];
static pid_t kid;

/* The inode of the mapping at addr (maps), 0 if none. */
static uint64_t map_inode(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uint64_t ino = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		unsigned long long in;
		if (sscanf(line, "%lx-%lx %*s %*x %*x:%*x %llu", &s, &e, &in) == 3 && (uintptr_t)addr >= s &&
		    (uintptr_t)addr < e)
			ino = in;
	}
	if (f)
		fclose(f);
	return ino;
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Checks the memory both processes see; appends reasons to why. */
static void check_shared_view(char *why, size_t cap, size_t *len)
{
#define WHY(...)                                                                                                    \
	do {                                                                                                        \
		if (*len < cap)                                                                                     \
			*len += (size_t)snprintf(why + *len, cap - *len, __VA_ARGS__);                              \
	} while (0)
	long off = ct_check_fill(shm, SHM_PAT, seed);
	if (off >= 0)
		WHY("shared memory differs at %ld; ", off);
	if (!all_zero(shm + SHM_PAT, SHM_ZERO))
		WHY("untouched shared memory is not zero; ");
	off = ct_check_fill(shm_off, OFF_LEN - OFF_CUT, seed + 1);
	if (off >= 0)
		WHY("shared memory at offset %u differs at %ld; ", OFF_CUT, off);
	off = ct_check_fill(tail, is_kid ? TAIL_LEN : TAIL_LEN / 2, seed + 3);
	if (off >= 0)
		WHY("shared memory mapped further by the child differs at %ld; ", off);
	if (with_memfd) {
		/* the shared map shows bytes [64K, 128K) of the file's pattern */
		static unsigned char file_pat[MFD_PAT];
		ct_fill(file_pat, MFD_PAT, seed + 2);
		if (memcmp(mfd_sh, file_pat + MAP_LEN, MAP_LEN - 4096))
			WHY("memfd shared mapping differs; ");
	}
#undef WHY
}

static void kid_loop(void)
{
	is_kid = true;
	signal(SIGUSR2, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	for (;;) {
		struct request rq;
		ssize_t n = read(req[0], &rq, sizeof(rq));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(rq) || rq.cmd == 'q')
			_exit(n == sizeof(rq) ? 0 : 4);
		struct reply out = { .ok = 1 };
		size_t len = 0;
		check_shared_view(out.why, sizeof(out.why), &len);
		uint64_t got;
		memcpy(&got, shm + MAIL_OFF, 8);
		if (got != rq.token)
			len += (size_t)snprintf(out.why + len, sizeof(out.why) - len,
						"mailbox holds %016llx, main wrote %016llx (not shared); ",
						(unsigned long long)got, (unsigned long long)rq.token);
		uint64_t answer = ct_mix(rq.token);
		memcpy(shm + MAIL_OFF + 8, &answer, 8);
		if (with_memfd) {
			memcpy(&got, mfd_sh + MAP_LEN - 4096, 8);
			if (got != rq.token)
				len += (size_t)snprintf(out.why + len, sizeof(out.why) - len,
							"memfd mailbox holds %016llx, main wrote %016llx (not shared); ",
							(unsigned long long)got, (unsigned long long)rq.token);
			memcpy(mfd_sh + MAP_LEN - 4096 + 8, &answer, 8);
			out.ino_mfd = map_inode(mfd_sh);
		}
		out.ino_shm = map_inode(shm);
		if (len)
			out.ok = 0;
		if (write(rep[1], &out, sizeof(out)) != sizeof(out))
			_exit(3);
	}
}

static void check_memfds(void)
{
	int seals = fcntl(mfd, F_GET_SEALS);
	if (seals != MFD_SEALS)
		ct_fail("memfd seals are %#x, expected %#x", seals, MFD_SEALS);
	struct stat st;
	if (fstat(mfd, &st) < 0 || st.st_size != MFD_LEN)
		ct_fail("memfd size is %lld, expected %u", (long long)st.st_size, MFD_LEN);
	off_t pos = lseek(mfd, 0, SEEK_CUR);
	if (pos != MFD_POS)
		ct_fail("memfd offset is %lld, expected %d", (long long)pos, MFD_POS);
	static unsigned char buf[MFD_LEN], want[MFD_PAT];
	ct_fill(want, MFD_PAT, seed + 2);
	if (pread(mfd, buf, MFD_LEN, 0) != MFD_LEN)
		ct_fail("cannot read the memfd: %s", strerror(errno));
	else {
		/* the shared map's last page is a mailbox written through the map */
		if (memcmp(buf, want, MAP_LEN * 2 - 4096) || memcmp(buf + 2 * MAP_LEN, want + 2 * MAP_LEN, MFD_PAT - 2 * MAP_LEN))
			ct_fail("memfd content differs");
		if (!all_zero(buf + MFD_PAT, MFD_LEN - MFD_PAT))
			ct_fail("memfd tail is not zero");
	}
	for (unsigned pg = 0; pg < MAP_LEN / 4096; pg++) {
		unsigned char *p = mfd_priv + pg * 4096;
		const unsigned char *file = want + 2 * MAP_LEN + pg * 4096;
		bool ok = pg % 2 ? p[0] == (unsigned char)pg && !memcmp(p + 1, file + 1, 4095) : !memcmp(p, file, 4096);
		if (!ok)
			ct_fail("memfd private page %u differs", pg);
	}
	seals = fcntl(mfd2, F_GET_SEALS);
	if (seals != MFD2_SEALS)
		ct_fail("sealed memfd seals are %#x, expected %#x", seals, MFD2_SEALS);
	if (pwrite(mfd2, "x", 1, 0) != -1 || errno != EPERM)
		ct_fail("sealed memfd accepts writes");
	char b[16];
	if (pread(mfd2, b, 16, 0) != 16 || memcmp(b, "sealed-contents!", 16))
		ct_fail("sealed memfd content differs");
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_shmem STATUS [--memfd] [options]\n%s", ct_common_usage);
	exit(2);
}

static void setup_memfd(void)
{
	mfd = memfd_create("ct-shmem", MFD_ALLOW_SEALING);
	mfd2 = memfd_create("ct-sealed", MFD_ALLOW_SEALING);
	if (mfd < 0 || mfd2 < 0)
		ct_die("memfd_create: %s", strerror(errno));
	static unsigned char pat[MFD_PAT];
	ct_fill(pat, MFD_PAT, seed + 2);
	if (write(mfd, pat, MFD_PAT) != MFD_PAT || ftruncate(mfd, MFD_LEN) < 0)
		ct_die("filling the memfd: %s", strerror(errno));
	mfd_sh = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, MAP_LEN);
	mfd_priv = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 2 * MAP_LEN);
	if (mfd_sh == MAP_FAILED || mfd_priv == MAP_FAILED)
		ct_die("mapping the memfd: %s", strerror(errno));
	memset(mfd_sh + MAP_LEN - 4096, 0, 4096); /* the mailbox page */
	for (unsigned pg = 1; pg < MAP_LEN / 4096; pg += 2)
		mfd_priv[pg * 4096] = (unsigned char)pg;
	if (lseek(mfd, MFD_POS, SEEK_SET) != MFD_POS || fcntl(mfd, F_ADD_SEALS, MFD_SEALS) < 0)
		ct_die("sealing the memfd: %s", strerror(errno));
	if (write(mfd2, "sealed-contents!", 16) != 16 || fcntl(mfd2, F_ADD_SEALS, MFD2_SEALS) < 0)
		ct_die("sealing the second memfd: %s", strerror(errno));
	ct_info("memfd fd %d sealed-fd %d shared %p private %p", mfd, mfd2, (void *)mfd_sh, (void *)mfd_priv);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_shmem";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--memfd"))
			with_memfd = true;
		else if (!ct_common_arg(argv[i]))
			usage();
	}
	ct_setup();
	shm = mmap(NULL, SHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char *big = mmap(NULL, OFF_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED || big == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	ct_fill(shm, SHM_PAT, seed);
	ct_fill(big + OFF_CUT, OFF_LEN - OFF_CUT, seed + 1);
	if (munmap(big, OFF_CUT) < 0)
		ct_die("munmap: %s", strerror(errno));
	shm_off = big + OFF_CUT;
	tail = mmap(NULL, TAIL_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tail == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	ct_fill(tail, TAIL_LEN, seed + 3);
	if (with_memfd)
		setup_memfd();
	if (pipe(req) < 0 || pipe(rep) < 0)
		ct_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		ct_die("fork: %s", strerror(errno));
	if (kid == 0)
		kid_loop();
	/* main maps less of this object than the child: whoever makes it on
	 * restore must make all of it */
	if (munmap(tail + TAIL_LEN / 2, TAIL_LEN / 2) < 0)
		ct_die("munmap: %s", strerror(errno));
	ct_info("child pid %d", (int)kid);
	ct_info("map shm %p %u", (void *)shm, SHM_LEN);
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		char why[512];
		size_t len = 0;
		why[0] = 0;
		check_shared_view(why, sizeof(why), &len);
		if (len)
			ct_fail("main: %s", why);
		if (with_memfd)
			check_memfds();
		/* a token that differs at every verification and in every copy */
		uint64_t token = ct_mix(((uint64_t)ct.n << 32) ^ (uint64_t)getpid() ^ (uint64_t)time(NULL));
		memcpy(shm + MAIL_OFF, &token, 8);
		if (with_memfd)
			memcpy(mfd_sh + MAP_LEN - 4096, &token, 8);
		struct request rq = { .cmd = 'v', .token = token };
		struct reply r;
		if (write(req[1], &rq, sizeof(rq)) != sizeof(rq) || !ct_read_answer(rep[0], &r, sizeof(r), REPLY_TIMEOUT_MS)) {
			ct_fail("child %d does not answer", (int)kid);
		} else {
			if (!r.ok)
				ct_fail("child: %s", r.why);
			uint64_t got, want = ct_mix(token);
			memcpy(&got, shm + MAIL_OFF + 8, 8);
			if (got != want)
				ct_fail("the child's answer is not in the shared memory (%016llx)", (unsigned long long)got);
			if (r.ino_shm != map_inode(shm))
				ct_fail("child maps shared memory inode %llu, main %llu", (unsigned long long)r.ino_shm,
					(unsigned long long)map_inode(shm));
			if (with_memfd) {
				memcpy(&got, mfd_sh + MAP_LEN - 4096 + 8, 8);
				if (got != want)
					ct_fail("the child's answer is not in the memfd (%016llx)", (unsigned long long)got);
				if (r.ino_mfd != map_inode(mfd_sh))
					ct_fail("child maps memfd inode %llu, main %llu", (unsigned long long)r.ino_mfd,
						(unsigned long long)map_inode(mfd_sh));
			}
		}
		struct request q = { .cmd = 'q' };
		int status = ct_verify_end_with_child(ev, kid, req[1], &q, sizeof(q));
		if (status >= 0)
			return status;
	}
}
