/* ct_walk: a deterministic state machine for random walks of snapshots,
 * rollbacks and branches. A multi-threaded process with a forked child that
 * maps and unmaps memory and writes files in its workspace DIR (its cwd).
 *
 *   ct_walk STATUS --dir=DIR --req=FILE [common options]
 *
 * Requests: the test writes one line to FILE, then sends SIGUSR2 (one
 * process at a time, so the many copies of this process, in branches, that
 * share FILE and STATUS never read each other's):
 *   NONCE verify DIGEST       check the whole state, and that it is DIGEST's
 *   NONCE advance X DIGEST    the same check, then one step driven by X
 * Answer: the usual verify line with "nonce=NONCE gen=G digest=D" (after an
 * advance, D is the new state's digest: the test expects it from then on).
 *
 * The state (all in memory, so a restored process carries its own):
 *   pages    a 2 MiB region; each page filled from its own seed
 *   slots    8 anonymous mappings, each mapped (seed, size) or not
 *   files    f0..f5 in DIR, each absent or filled from its seed
 *   journal  DIR/journal, appended through an fd kept open: 16 bytes a step
 *   workers  3 threads, each with a seed on its own stack and a region
 *   child    a forked process with a region, driven over two pipes
 * The digest hashes all the seeds; every check compares the real memory,
 * mappings, files, threads and child with them. */
#include "ct_proto.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define NPAGES 512
#define PAGE 4096
#define NSLOTS 8
#define NFILES 6
#define NWORKERS 3
#define WLEN (16 * PAGE)
#define CLEN (16 * PAGE)
#define MAXGEN 4096

static const char *req_path, *dir;
static unsigned char *pages;
static uint64_t page_seed[NPAGES];
static unsigned char *slot_addr[NSLOTS];
static size_t slot_len[NSLOTS];
static uint64_t slot_seed[NSLOTS];
static uint64_t file_seed[NFILES];
static uint64_t xs[MAXGEN];
static uint64_t gen;
static int jfd = -1;

/* workers */
static unsigned char *wregion[NWORKERS];
static uint64_t wseed[NWORKERS];
static pid_t wtid[NWORKERS];
static int wok[NWORKERS];
static int epoch, acks, wcmd; /* wcmd: 1 fill, 2 check */

/* child */
static pid_t child;
static int to_child = -1, from_child = -1;
static uint64_t cseed;

static uint64_t digest(void)
{
	uint64_t h = ct_mix(gen);
	for (int i = 0; i < NPAGES; i++)
		h = ct_mix(h ^ page_seed[i]);
	for (int i = 0; i < NSLOTS; i++)
		h = ct_mix(h ^ slot_seed[i] ^ ((uint64_t)slot_len[i] << 40));
	for (int i = 0; i < NFILES; i++)
		h = ct_mix(h ^ file_seed[i]);
	for (int i = 0; i < NWORKERS; i++)
		h = ct_mix(h ^ wseed[i]);
	h = ct_mix(h ^ cseed);
	for (uint64_t i = 0; i < gen && i < MAXGEN; i++)
		h = ct_mix(h ^ xs[i]);
	return h;
}

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t my_seed = 0; /* on this thread's stack: it must come back with it */
	int seen = 0;
	wtid[i] = ct_gettid();
	__atomic_add_fetch(&acks, 1, __ATOMIC_SEQ_CST);
	ct_futex(&acks, FUTEX_WAKE_PRIVATE, 1, NULL);
	for (;;) {
		int e;
		while ((e = __atomic_load_n(&epoch, __ATOMIC_SEQ_CST)) == seen)
			ct_futex(&epoch, FUTEX_WAIT_PRIVATE, seen, NULL);
		seen = e;
		if (wcmd == 1) {
			my_seed = wseed[i];
			ct_fill(wregion[i], WLEN, my_seed);
			wok[i] = 1;
		} else {
			wok[i] = my_seed == wseed[i] && ct_gettid() == wtid[i] &&
				 ct_check_fill(wregion[i], WLEN, my_seed) < 0;
		}
		__atomic_add_fetch(&acks, 1, __ATOMIC_SEQ_CST);
		ct_futex(&acks, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
	return NULL;
}

/* Runs cmd on every worker; false if one did not answer within 10 s. */
static bool workers_do(int cmd)
{
	__atomic_store_n(&acks, 0, __ATOMIC_SEQ_CST);
	wcmd = cmd;
	__atomic_add_fetch(&epoch, 1, __ATOMIC_SEQ_CST);
	ct_futex(&epoch, FUTEX_WAKE_PRIVATE, NWORKERS, NULL);
	for (int tries = 0; tries < 1000; tries++) {
		int a = __atomic_load_n(&acks, __ATOMIC_SEQ_CST);
		if (a >= NWORKERS)
			return true;
		struct timespec ts = { 0, 10000000 };
		ct_futex(&acks, FUTEX_WAIT_PRIVATE, a, &ts);
	}
	return false;
}

static void child_main(int in, int out)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR2, SIG_IGN);
	unsigned char *r = mmap(NULL, CLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t mine = 0;
	for (;;) {
		unsigned char msg[9];
		size_t got = 0;
		while (got < sizeof(msg)) {
			ssize_t n = read(in, msg + got, sizeof(msg) - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				_exit(0); /* the parent is gone */
			got += (size_t)n;
		}
		uint64_t s;
		memcpy(&s, msg + 1, 8);
		char ans;
		if (msg[0] == 'S') {
			mine = s;
			ct_fill(r, CLEN, s);
			ans = 'k';
		} else {
			ans = s == mine && ct_check_fill(r, CLEN, s) < 0 ? 'y' : 'n';
		}
		while (write(out, &ans, 1) < 0 && errno == EINTR)
			;
	}
}

static char child_call(char op, uint64_t s)
{
	unsigned char msg[9];
	msg[0] = (unsigned char)op;
	memcpy(msg + 1, &s, 8);
	if (write(to_child, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return '!';
	struct pollfd p = { .fd = from_child, .events = POLLIN };
	char ans = '?';
	if (poll(&p, 1, 10000) == 1 && read(from_child, &ans, 1) == 1)
		return ans;
	return '?';
}

static void fname(int i, char *buf, size_t len)
{
	snprintf(buf, len, "f%d", i);
}

static size_t file_len(uint64_t s)
{
	return 64 + (size_t)(s % 8192);
}

static void write_file(int i)
{
	char p[16];
	fname(i, p, sizeof(p));
	if (!file_seed[i]) {
		if (unlink(p) < 0 && errno != ENOENT)
			ct_die("unlink %s: %s", p, strerror(errno));
		return;
	}
	size_t len = file_len(file_seed[i]);
	unsigned char *buf = malloc(len);
	ct_fill(buf, len, file_seed[i]);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		ct_die("write %s: %s", p, strerror(errno));
	close(fd);
	free(buf);
}

static void map_slot(int i, uint64_t s)
{
	if (slot_addr[i])
		munmap(slot_addr[i], slot_len[i]);
	slot_addr[i] = NULL;
	slot_len[i] = 0;
	slot_seed[i] = s;
	if (!s)
		return;
	slot_len[i] = (1 + s % 48) * PAGE;
	slot_addr[i] = mmap(NULL, slot_len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slot_addr[i] == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	ct_fill(slot_addr[i], slot_len[i], s);
}

static void check_all(uint64_t want)
{
	uint64_t d = digest();
	if (d != want)
		ct_fail("state %016" PRIx64 " (gen %" PRIu64 "), expected %016" PRIx64, d, gen, want);
	for (int i = 0; i < NPAGES; i++) {
		long off = ct_check_fill(pages + (size_t)i * PAGE, PAGE, page_seed[i]);
		if (off >= 0) {
			ct_fail("page %d differs at byte %ld", i, off);
			break;
		}
	}
	for (int i = 0; i < NSLOTS; i++) {
		if (!slot_seed[i])
			continue;
		if (msync(slot_addr[i], slot_len[i], MS_ASYNC) < 0)
			ct_fail("slot %d (%p, %zu bytes) is not mapped", i, (void *)slot_addr[i], slot_len[i]);
		else if (ct_check_fill(slot_addr[i], slot_len[i], slot_seed[i]) >= 0)
			ct_fail("slot %d's memory differs", i);
	}
	for (int i = 0; i < NFILES; i++) {
		char p[16];
		fname(i, p, sizeof(p));
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (!file_seed[i]) {
			if (fd >= 0 || errno != ENOENT)
				ct_fail("%s exists, it should not", p);
		} else if (fd < 0) {
			ct_fail("%s: %s", p, strerror(errno));
		} else {
			size_t len = file_len(file_seed[i]);
			unsigned char *buf = malloc(len + 1);
			ssize_t n = read(fd, buf, len + 1);
			if (n != (ssize_t)len || ct_check_fill(buf, len, file_seed[i]) >= 0)
				ct_fail("%s holds other bytes (%zd of %zu)", p, n, len);
			free(buf);
		}
		if (fd >= 0)
			close(fd);
	}
	struct stat fs, ps;
	if (fstat(jfd, &fs) < 0 || stat("journal", &ps) < 0)
		ct_fail("journal: %s", strerror(errno));
	else if (fs.st_size != (off_t)(gen * 16) || ps.st_size != fs.st_size || ps.st_ino != fs.st_ino)
		ct_fail("journal: fd has %lld bytes, path %lld, expected %llu", (long long)fs.st_size,
			(long long)ps.st_size, (unsigned long long)gen * 16);
	else {
		int fd = open("journal", O_RDONLY | O_CLOEXEC);
		for (uint64_t g = 0; fd >= 0 && g < gen && g < MAXGEN; g++) {
			uint64_t rec[2];
			if (read(fd, rec, 16) != 16 || rec[0] != g || rec[1] != xs[g]) {
				ct_fail("journal record %llu differs", (unsigned long long)g);
				break;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	if (!workers_do(2))
		ct_fail("the worker threads did not answer");
	for (int i = 0; i < NWORKERS; i++)
		if (!wok[i])
			ct_fail("worker %d: its stack seed, tid or region differ", i);
	char a = child_call('V', cseed);
	if (a != 'y')
		ct_fail("the child %s", a == 'n' ? "holds other memory" : "did not answer");
}

static void advance(uint64_t x)
{
	uint64_t r = ct_mix(digest() ^ x);
#define NEXT() (r = ct_mix(r))
	for (int k = 0; k < 8; k++) {
		int i = (int)(NEXT() % NPAGES);
		page_seed[i] = NEXT() | 1;
		ct_fill(pages + (size_t)i * PAGE, PAGE, page_seed[i]);
	}
	for (int k = 0; k < 2; k++) {
		int i = (int)(NEXT() % NSLOTS);
		map_slot(i, NEXT() % 3 == 0 ? 0 : NEXT() | 1);
	}
	int f = (int)(NEXT() % NFILES);
	file_seed[f] = NEXT() % 4 == 0 ? 0 : NEXT() | 1;
	write_file(f);
	int w = (int)(NEXT() % NWORKERS);
	wseed[w] = NEXT() | 1;
	if (!workers_do(1))
		ct_die("the worker threads did not answer");
	if (NEXT() % 2) {
		cseed = NEXT() | 1;
		if (child_call('S', cseed) != 'k')
			ct_die("the child did not answer");
	}
	uint64_t rec[2] = { gen, x };
	if (gen < MAXGEN)
		xs[gen] = x;
	if (write(jfd, rec, 16) != 16)
		ct_die("journal: %s", strerror(errno));
	gen++;
#undef NEXT
}

static void serve_request(void)
{
	char buf[256] = "";
	int fd = open(req_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0)
		buf[n] = '\0';
	unsigned long long nonce = 0, x = 0, want = 0;
	char op[16] = "";
	int k = sscanf(buf, "%llu %15s %llx %llx", &nonce, op, &x, &want);
	ct_verify_begin();
	bool adv = !strcmp(op, "advance");
	if (k < 3 || (adv && k < 4) || (!adv && strcmp(op, "verify")))
		ct_fail("bad request '%s'", buf);
	else
		check_all(adv ? want : x);
	if (adv && !ct.nfail)
		advance(x);
	char extra[128];
	snprintf(extra, sizeof(extra), "nonce=%llu gen=%llu digest=%016llx", nonce, (unsigned long long)gen,
		 (unsigned long long)digest());
	if (ct.nfail) /* the nonce first: the test waits for it */
		ct_line("verify %u FAIL pid=%d %s: %s", ct.n, (int)getpid(), extra, ct.why);
	else
		ct_verify_end(extra);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_walk";
	for (int i = 1; i < argc; i++) {
		if (ct_common_arg(argv[i]) || ct_str_arg(argv[i], "--dir", &dir) ||
		    ct_str_arg(argv[i], "--req", &req_path))
			continue;
		if (!ct.status_path && argv[i][0] != '-')
			ct.status_path = argv[i];
		else {
			fprintf(stderr, "usage: ct_walk STATUS --dir=DIR --req=FILE [options]\n%s", ct_common_usage);
			return 2;
		}
	}
	if (!ct.status_path || !dir || !req_path) {
		fprintf(stderr, "usage: ct_walk STATUS --dir=DIR --req=FILE [options]\n%s", ct_common_usage);
		return 2;
	}
	ct_setup();
	if (chdir(dir) < 0)
		ct_die("chdir %s: %s", dir, strerror(errno));
	if (!getcwd(ct.cwd0, sizeof(ct.cwd0)))
		ct_die("getcwd: %s", strerror(errno));
	pages = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (int i = 0; i < NPAGES; i++) {
		page_seed[i] = ct_mix((uint64_t)i + 1) | 1;
		ct_fill(pages + (size_t)i * PAGE, PAGE, page_seed[i]);
	}
	for (int i = 0; i < NSLOTS; i += 2)
		map_slot(i, ct_mix(100 + (uint64_t)i) | 1);
	for (int i = 0; i < NFILES; i += 2) {
		file_seed[i] = ct_mix(200 + (uint64_t)i) | 1;
		write_file(i);
	}
	jfd = open("journal", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (jfd < 0)
		ct_die("journal: %s", strerror(errno));
	int a[2], b[2];
	if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
		ct_die("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		ct_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(a[1]);
		close(b[0]);
		child_main(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	to_child = a[1];
	from_child = b[0];
	cseed = ct_mix(300) | 1;
	if (child_call('S', cseed) != 'k')
		ct_die("the child did not answer");
	for (int i = 0; i < NWORKERS; i++) {
		wregion[i] = mmap(NULL, WLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		wseed[i] = ct_mix(400 + (uint64_t)i) | 1;
		pthread_t t;
		if (wregion[i] == MAP_FAILED || pthread_create(&t, NULL, worker, (void *)(intptr_t)i) != 0)
			ct_die("worker %d: %s", i, strerror(errno));
	}
	while (__atomic_load_n(&acks, __ATOMIC_SEQ_CST) < NWORKERS)
		ct_futex(&acks, FUTEX_WAIT_PRIVATE, __atomic_load_n(&acks, __ATOMIC_SEQ_CST), NULL);
	if (!workers_do(1))
		ct_die("the worker threads did not start");
	ct.nthreads = 1 + NWORKERS;
	ct_info("digest %016llx", (unsigned long long)digest());
	return ct_serve(serve_request);
}
