/* ct_explore: a target for rollback in place. Every piece of its state is
 * a function of one number in its memory, its step: SIGUSR1 makes one step
 * (writes ~1% of the pages of its region, maps, protects and unmaps small
 * areas, moves file offsets, appends a line to a file in its cwd with
 * --files=DIR (its cwd then), and has its two worker threads and its forked child change
 * their own memory), then writes "stepped S pid=P". A verification checks
 * everything against the step it finds in memory, so after a rollback to
 * the snapshot taken at step S the process proves it is exactly at S:
 * every page of the region, the areas mapped and their protection, the
 * workers' stacks, the child's memory and step, fd offsets, which fds are
 * open, and the file's bytes. SIGRTMIN makes it exec /bin/sleep (same
 * pid), for the test of a rollback that cannot be in place.
 *
 *     ct_explore STATUS [--mib=N] [--files=DIR] [common options]
 *
 * Verify lines end in "step=S". The fd table check of ct_proto is replaced
 * by this target's own (fd 40 appears at step 1). */
#include "ct_proto.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096ul
#define AREA_BASE 0x6f0000000000ul
#define AREA_PAGES 4
#define EXTRA_FD 40

static unsigned char *region;
static size_t npages;
static bool files;
static volatile unsigned step;
static int ro_fd = -1, log_fd = -1;
static int to_kid[2], from_kid[2];
static pid_t kid;
static volatile sig_atomic_t want_step, want_exec;

/* workers */
static int gen_word, done_word[2];
static unsigned char *wstack[2];

static uint64_t page_seed(unsigned s, size_t p) { return ct_mix(((uint64_t)s << 32) ^ p); }

/* the last step that wrote page p by step s (0: none) */
static unsigned last_write(unsigned s, size_t p)
{
	unsigned r = (unsigned)(ct_mix(p) % 100);
	if (!r)
		r = 100;
	return s >= r ? s - ((s - r) % 100) : 0;
}

static uint64_t area_addr(unsigned k) { return AREA_BASE + (uint64_t)(k % 16) * 0x10000; }

static void *worker(void *arg)
{
	int j = (int)(intptr_t)arg;
	unsigned char buf[PAGE];
	wstack[j] = buf;
	ct_fill(buf, sizeof(buf), page_seed(0, 7000 + (size_t)j));
	__atomic_store_n(&done_word[j], 0, __ATOMIC_SEQ_CST);
	ct_futex(&done_word[j], FUTEX_WAKE_PRIVATE, 1, NULL);
	for (;;) {
		int g = __atomic_load_n(&gen_word, __ATOMIC_SEQ_CST);
		if (g == __atomic_load_n(&done_word[j], __ATOMIC_SEQ_CST)) {
			ct_futex(&gen_word, FUTEX_WAIT_PRIVATE, g, NULL);
			continue;
		}
		ct_fill(buf, sizeof(buf), page_seed((unsigned)g, 7000 + (size_t)j));
		__atomic_store_n(&done_word[j], g, __ATOMIC_SEQ_CST);
		ct_futex(&done_word[j], FUTEX_WAKE_PRIVATE, 1, NULL);
	}
	return NULL;
}

/* ---- the child: 64 pages of its own, stepped and checked on request ---- */
static void child_loop(void)
{
	unsigned char *mem = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned kstep = 0;
	pid_t parent = getppid(); /* a restore must give the child back to it */
	for (size_t p = 0; p < 64; p++)
		ct_fill(mem + p * PAGE, PAGE, page_seed(0, 9000 + p));
	for (;;) {
		unsigned char cmd[5];
		if (read(to_kid[0], cmd, 5) != 5)
			_exit(0);
		unsigned arg;
		memcpy(&arg, cmd + 1, 4);
		unsigned char ans = 1;
		if (cmd[0] == 's') {
			kstep = arg;
			ct_fill(mem + (arg % 64) * PAGE, PAGE, page_seed(arg, 9000 + arg % 64));
		} else {
			ans = kstep == arg && getppid() == parent;
			for (size_t p = 0; p < 64 && ans; p++) {
				unsigned last = 0;
				for (unsigned k = 1; k <= kstep; k++)
					if (k % 64 == p)
						last = k;
				ans = ct_check_fill(mem + p * PAGE, PAGE, page_seed(last, 9000 + p)) < 0;
			}
		}
		if (write(from_kid[1], &ans, 1) != 1)
			_exit(1);
	}
}

static bool ask_kid(char c, unsigned arg)
{
	unsigned char cmd[5] = { (unsigned char)c };
	memcpy(cmd + 1, &arg, 4);
	unsigned char ans = 0;
	return write(to_kid[1], cmd, 5) == 5 && read(from_kid[0], &ans, 1) == 1 && ans == 1;
}

/* ---- a step --------------------------------------------------------------- */
static void do_step(void)
{
	unsigned s = step + 1;
	for (size_t p = 0; p < npages; p++)
		if (last_write(s, p) == s)
			ct_fill(region + p * PAGE, PAGE, page_seed(s, p));
	if (s % 2) {
		void *a = mmap((void *)area_addr(s), AREA_PAGES * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (a != (void *)area_addr(s))
			ct_die("step %u: mmap: %s", s, strerror(errno));
		ct_fill(a, AREA_PAGES * PAGE, page_seed(s, 5000));
	} else if (mprotect((void *)area_addr(s - 1), AREA_PAGES * PAGE, PROT_READ)) {
		ct_die("step %u: mprotect: %s", s, strerror(errno));
	}
	if (s >= 4 && s % 2 == 0 && munmap((void *)area_addr(s - 3), AREA_PAGES * PAGE))
		ct_die("step %u: munmap: %s", s, strerror(errno));
	lseek(ro_fd, (off_t)s * 7, SEEK_SET);
	if (s == 1 && dup2(ro_fd, EXTRA_FD) != EXTRA_FD)
		ct_die("dup2: %s", strerror(errno));
	if (files) {
		char line[32];
		int n = snprintf(line, sizeof(line), "step %u\n", s);
		if (write(log_fd, line, (size_t)n) != n)
			ct_die("write explore.log: %s", strerror(errno));
	}
	__atomic_store_n(&gen_word, (int)s, __ATOMIC_SEQ_CST);
	ct_futex(&gen_word, FUTEX_WAKE_PRIVATE, 2, NULL);
	for (int j = 0; j < 2; j++)
		while (__atomic_load_n(&done_word[j], __ATOMIC_SEQ_CST) != (int)s)
			ct_futex(&done_word[j], FUTEX_WAIT_PRIVATE, __atomic_load_n(&done_word[j], __ATOMIC_SEQ_CST), NULL);
	if (!ask_kid('s', s))
		ct_die("step %u: the child did not step", s);
	step = s;
	ct_line("stepped %u pid=%d", s, (int)getpid());
}

/* ---- verification ----------------------------------------------------------- */
static bool mapped(uint64_t a, int *prot)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) == 3 && s <= a && a < e) {
			found = true;
			*prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0);
		}
	}
	if (f)
		fclose(f);
	return found;
}

static void verify(void)
{
	ct_verify_begin();
	unsigned s = step;
	size_t bad = 0, first = 0;
	for (size_t p = 0; p < npages; p++)
		if (ct_check_fill(region + p * PAGE, PAGE, page_seed(last_write(s, p), p)) >= 0 && !bad++)
			first = p;
	if (bad)
		ct_fail("%zu pages of the region differ from step %u (first: page %zu)", bad, s, first);
	/* 16 slots: at step s the areas of the odd steps s-2..s are mapped */
	for (unsigned slot = 0; slot < 16; slot++) {
		unsigned k = 0;
		for (unsigned c = s >= 2 ? s - 2 : 0; c <= s; c++)
			if (c % 2 && c % 16 == slot)
				k = c;
		int prot = 0;
		bool have = mapped(AREA_BASE + (uint64_t)slot * 0x10000, &prot);
		if (!k) {
			if (have)
				ct_fail("area slot %u is mapped at step %u", slot, s);
			continue;
		}
		if (!have) {
			ct_fail("area of step %u is not mapped at step %u", k, s);
			continue;
		}
		int wprot = s >= k + 1 ? PROT_READ : PROT_READ | PROT_WRITE;
		if (prot != wprot)
			ct_fail("area of step %u has protection %d, want %d", k, prot, wprot);
		if (ct_check_fill((unsigned char *)area_addr(k), AREA_PAGES * PAGE, page_seed(k, 5000)) >= 0)
			ct_fail("area of step %u holds other bytes", k);
	}
	for (int j = 0; j < 2; j++) {
		if (__atomic_load_n(&done_word[j], __ATOMIC_SEQ_CST) != (int)s)
			ct_fail("worker %d is at step %d", j, done_word[j]);
		if (ct_check_fill(wstack[j], PAGE, page_seed(s, 7000 + (size_t)j)) >= 0)
			ct_fail("worker %d's stack holds other bytes than at step %u", j, s);
	}
	if (!ask_kid('v', s))
		ct_fail("the child is not at step %u (or its memory or its parent differs)", s);
	off_t off = lseek(ro_fd, 0, SEEK_CUR);
	if (off != (off_t)s * 7)
		ct_fail("offset of fd %d is %lld, want %u", ro_fd, (long long)off, s * 7);
	bool extra = fcntl(EXTRA_FD, F_GETFD) >= 0;
	if (extra != (s >= 1))
		ct_fail("fd %d is %sopen at step %u", EXTRA_FD, extra ? "" : "not ", s);
	if (files) {
		char want[65536], have[65536];
		size_t wl = 0;
		for (unsigned k = 1; k <= s && wl < sizeof(want) - 32; k++)
			wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "step %u\n", k);
		int fd = open("explore.log", O_RDONLY | O_CLOEXEC);
		ssize_t hl = fd < 0 ? -1 : pread(fd, have, sizeof(have), 0);
		if (fd >= 0)
			close(fd);
		if (hl != (ssize_t)wl || memcmp(have, want, wl))
			ct_fail("explore.log has %zd bytes, not the %zu of step %u", hl, wl, s);
		off = lseek(log_fd, 0, SEEK_CUR);
		if (off != (off_t)wl)
			ct_fail("offset of explore.log's fd is %lld, want %zu", (long long)off, wl);
	}
	char extra_s[32];
	snprintf(extra_s, sizeof(extra_s), "step=%u", s);
	ct_verify_end(extra_s);
}

static void on_step(int sig)
{
	int saved = errno;
	if (sig == SIGUSR1)
		want_step = 1;
	else
		want_exec = 1;
	char b = 's';
	if (write(ct.selfpipe[1], &b, 1) < 0) {
	}
	errno = saved;
}

int main(int argc, char **argv)
{
	ct.prog = "ct_explore";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_explore STATUS [--mib=N] [--files=DIR] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	unsigned long long mib = 8;
	for (int i = 2; i < argc; i++) {
		if (ct_common_arg(argv[i]) || ct_num_arg(argv[i], "--mib", &mib))
			continue;
		const char *dir = NULL;
		if (ct_str_arg(argv[i], "--files", &dir)) {
			/* by path: the workspace's mount, not the directory under it */
			if (chdir(dir))
				ct_die("chdir %s: %s", dir, strerror(errno));
			files = true;
		} else {
			ct_die("unknown option %s", argv[i]);
		}
	}
	ct.opt_loose_fds = true; /* the fd table changes with the step: checked here */
	ct_setup();
	struct sigaction sa = { .sa_handler = on_step, .sa_flags = SA_RESTART };
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGRTMIN, &sa, NULL))
		ct_die("sigaction: %s", strerror(errno));
	npages = (size_t)mib * 256;
	region = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		ct_die("mmap %llu MiB: %s", mib, strerror(errno));
	for (size_t p = 0; p < npages; p++)
		ct_fill(region + p * PAGE, PAGE, page_seed(0, p));
	ro_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (ro_fd < 0)
		ct_die("open /proc/self/exe: %s", strerror(errno));
	if (files) {
		log_fd = open("explore.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (log_fd < 0)
			ct_die("open explore.log: %s", strerror(errno));
	}
	if (pipe2(to_kid, O_CLOEXEC) || pipe2(from_kid, O_CLOEXEC))
		ct_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		ct_die("fork: %s", strerror(errno));
	if (kid == 0)
		child_loop();
	ct_line("info kid %d", (int)kid);
	done_word[0] = done_word[1] = -1;
	for (int j = 0; j < 2; j++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, (void *)(intptr_t)j))
			ct_die("pthread_create");
		while (__atomic_load_n(&done_word[j], __ATOMIC_SEQ_CST) != 0)
			ct_futex(&done_word[j], FUTEX_WAIT_PRIVATE, -1, NULL);
	}
	ct.nthreads = 3;
	ct_ready();
	for (;;) {
		char b;
		if (!want_step && !want_exec && !ct_usr2 && !ct_term && read(ct.selfpipe[0], &b, 1) < 0 && errno != EINTR)
			ct_die("read self-pipe: %s", strerror(errno));
		if (want_exec) {
			want_exec = 0;
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
			ct_die("exec: %s", strerror(errno));
		}
		if (want_step) {
			want_step = 0;
			do_step();
		}
		enum ct_event ev = ct_pending();
		if (ev == CT_EV_VERIFY)
			verify();
		if (ev == CT_EV_TERM) {
			verify();
			ct_line("exit");
			kill(kid, SIGKILL);
			return ct.nfail ? 1 : 0;
		}
	}
}
