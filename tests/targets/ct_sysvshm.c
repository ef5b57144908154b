/* ct_sysvshm: SysV shared memory (shmget/shmat) between a parent and its
 * forked child.
 *
 * Main makes segment A (a key, 256 KiB, mode 0640, 192 KiB patterned, the
 * rest zero but for a mailbox page) and segment B (IPC_PRIVATE, 64 KiB,
 * mode 0600) attached twice: read-write and read-only. With --rmid it also
 * makes segment C (IPC_PRIVATE, 64 KiB) and removes it (IPC_RMID) while
 * attached, the usual way to have a segment go away with its last user.
 * Then it forks one child, which inherits every attachment.
 *
 * Each verification: main checks every segment by its id (IPC_STAT: key,
 * size, mode, removed or not, attach count: two per process for B, one for
 * the others), the maps line of each attachment (address, inode = id,
 * permissions), the contents; the child checks its view and its maps; then
 * main writes a fresh token into each segment's mailbox, the child must read
 * it and answer in the same segment, which main must read.
 *
 * On SIGTERM the segments are removed (IPC_RMID) before exiting.
 *
 *   ct_sysvshm STATUS [--key=N] [--rmid] [common options]
 */
#include "ct_proto.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define A_LEN (256u << 10)
#define A_PAT (192u << 10)
#define B_LEN (64u << 10)
#define B_PAT (32u << 10)
#define C_LEN (64u << 10)
#define C_PAT (16u << 10)
#define REPLY_TIMEOUT_MS 20000

enum { SEG_A, SEG_B, SEG_C, NSEG };

struct seg {
	const char *name;
	key_t key;
	size_t len, pat, mail; /* patterned bytes, mailbox offset */
	unsigned mode;
	bool rmid, used;
	int id;
	unsigned char *rw, *ro; /* ro: B only */
};

static struct seg seg[NSEG] = {
	{ .name = "A", .len = A_LEN, .pat = A_PAT, .mail = A_LEN - 4096, .mode = 0640 },
	{ .name = "B", .key = IPC_PRIVATE, .len = B_LEN, .pat = B_PAT, .mail = B_LEN - 4096, .mode = 0600 },
	{ .name = "C", .key = IPC_PRIVATE, .len = C_LEN, .pat = C_PAT, .mail = C_LEN - 4096, .mode = 0600, .rmid = true },
};

struct request {
	char cmd; /* 'v' verify, 'q' exit */
	uint64_t token;
};
struct reply {
	char ok;
	char why[300];
};

static const uint64_t seed = 0x5e5f;
static int req[2], rep[2];
static pid_t kid;
static bool is_kid;

#define WHY(...)                                                                                                    \
	do {                                                                                                        \
		if (*len < cap)                                                                                     \
			*len += (size_t)snprintf(why + *len, cap - *len, __VA_ARGS__);                              \
	} while (0)

/* The maps line at addr must be this segment's: same start and length,
 * inode = the id, shared, and writable only for a read-write attach. */
static void check_map(const struct seg *s, const void *addr, bool ro, char *why, size_t cap, size_t *len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	bool found = false;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long st, en;
		unsigned long long ino;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %llu", &st, &en, perms, &ino) != 4 || st != (uintptr_t)addr)
			continue;
		found = true;
		if (en - st != s->len)
			WHY("%s: attach at %p is %lu bytes, not %zu; ", s->name, addr, en - st, s->len);
		if (ino != (unsigned long long)s->id)
			WHY("%s: attach at %p is segment %llu, not %d; ", s->name, addr, ino, s->id);
		if (strcmp(perms, ro ? "r--s" : "rw-s"))
			WHY("%s: attach at %p is %s; ", s->name, addr, perms);
		if (!strstr(line, "/SYSV"))
			WHY("%s: attach at %p is not SysV shared memory: %s; ", s->name, addr, line);
	}
	if (f)
		fclose(f);
	if (!found)
		WHY("%s: nothing mapped at %p; ", s->name, addr);
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* What both processes see. */
static void check_view(char *why, size_t cap, size_t *len)
{
	for (int i = 0; i < NSEG; i++) {
		struct seg *s = &seg[i];
		if (!s->used)
			continue;
		long off = ct_check_fill(s->rw, s->pat, seed + (uint64_t)i);
		if (off >= 0)
			WHY("%s: content differs at %ld; ", s->name, off);
		if (!all_zero(s->rw + s->pat, s->mail - s->pat))
			WHY("%s: untouched part is not zero; ", s->name);
		check_map(s, s->rw, false, why, cap, len);
		if (s->ro) {
			if (memcmp(s->ro, s->rw, s->len))
				WHY("%s: the read-only attach differs from the read-write one; ", s->name);
			check_map(s, s->ro, true, why, cap, len);
		}
	}
}

/* The segments' own state, by id. */
static void check_ids(void)
{
	for (int i = 0; i < NSEG; i++) {
		struct seg *s = &seg[i];
		if (!s->used)
			continue;
		struct shmid_ds ds;
		if (shmctl(s->id, IPC_STAT, &ds) < 0) {
			ct_fail("%s: shmctl(%d, IPC_STAT): %s", s->name, s->id, strerror(errno));
			continue;
		}
		unsigned long want_att = s->ro ? 4 : 2;
		if (ds.shm_segsz != s->len)
			ct_fail("%s: size %zu, not %zu", s->name, (size_t)ds.shm_segsz, s->len);
		if ((ds.shm_perm.mode & 0777) != s->mode)
			ct_fail("%s: mode %o, not %o", s->name, ds.shm_perm.mode & 0777, s->mode);
		if (!!(ds.shm_perm.mode & SHM_DEST) != s->rmid)
			ct_fail("%s: %s removed", s->name, s->rmid ? "no longer" : "now");
		if (!s->rmid && ds.shm_perm.__key != s->key)
			ct_fail("%s: key %#x, not %#x", s->name, (unsigned)ds.shm_perm.__key, (unsigned)s->key);
		if (ds.shm_nattch != want_att)
			ct_fail("%s: %lu attaches, not %lu", s->name, (unsigned long)ds.shm_nattch, want_att);
	}
	if (seg[SEG_A].used) { /* the key still finds it */
		int id = shmget(seg[SEG_A].key, 0, 0);
		if (id != seg[SEG_A].id)
			ct_fail("A: shmget(key %#x) gives %d, not %d", (unsigned)seg[SEG_A].key, id, seg[SEG_A].id);
	}
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
		size_t l = 0, *len = &l, cap = sizeof(out.why);
		char *why = out.why;
		check_view(why, cap, len);
		uint64_t answer = ct_mix(rq.token);
		for (int i = 0; i < NSEG; i++) {
			if (!seg[i].used)
				continue;
			uint64_t got;
			memcpy(&got, seg[i].rw + seg[i].mail, 8);
			if (got != rq.token)
				WHY("%s: mailbox holds %016llx, main wrote %016llx (not shared); ", seg[i].name,
				    (unsigned long long)got, (unsigned long long)rq.token);
			memcpy(seg[i].rw + seg[i].mail + 8, &answer, 8);
		}
		if (l)
			out.ok = 0;
		if (write(rep[1], &out, sizeof(out)) != sizeof(out))
			_exit(3);
	}
}

static void remove_all(void)
{
	for (int i = 0; i < NSEG; i++)
		if (seg[i].used && seg[i].id >= 0)
			shmctl(seg[i].id, IPC_RMID, NULL);
}

static void make(struct seg *s, uint64_t sd)
{
	s->id = shmget(s->key, s->len, IPC_CREAT | IPC_EXCL | (int)s->mode);
	if (s->id < 0)
		ct_die("shmget(%#x, %zu): %s", (unsigned)s->key, s->len, strerror(errno));
	s->used = true;
	s->rw = shmat(s->id, NULL, 0);
	if (s->rw == (void *)-1) {
		remove_all();
		ct_die("shmat(%d): %s", s->id, strerror(errno));
	}
	ct_fill(s->rw, s->pat, sd);
	ct_info("segment %s id %d key %#x at %p len %zu", s->name, s->id, (unsigned)s->key, (void *)s->rw, s->len);
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_sysvshm STATUS [--key=N] [--rmid] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_sysvshm";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long key = 0;
	bool with_rmid = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--rmid"))
			with_rmid = true;
		else if (ct_num_arg(argv[i], "--key", &key))
			;
		else if (!ct_common_arg(argv[i]))
			usage();
	}
	ct_setup();
	seg[SEG_A].key = key ? (key_t)key : (key_t)(0x46500000u | ((unsigned)getpid() & 0xfffff));
	make(&seg[SEG_A], seed);
	make(&seg[SEG_B], seed + 1);
	seg[SEG_B].ro = shmat(seg[SEG_B].id, NULL, SHM_RDONLY);
	if (seg[SEG_B].ro == (void *)-1) {
		remove_all();
		ct_die("shmat(%d, SHM_RDONLY): %s", seg[SEG_B].id, strerror(errno));
	}
	if (with_rmid) {
		make(&seg[SEG_C], seed + 2);
		if (shmctl(seg[SEG_C].id, IPC_RMID, NULL) < 0) {
			remove_all();
			ct_die("IPC_RMID: %s", strerror(errno));
		}
	}
	if (pipe(req) < 0 || pipe(rep) < 0) {
		remove_all();
		ct_die("pipe: %s", strerror(errno));
	}
	kid = fork();
	if (kid < 0) {
		remove_all();
		ct_die("fork: %s", strerror(errno));
	}
	if (kid == 0)
		kid_loop();
	ct_info("child pid %d", (int)kid);
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		char buf[512];
		size_t l = 0;
		buf[0] = 0;
		check_view(buf, sizeof(buf), &l);
		if (l)
			ct_fail("main: %s", buf);
		check_ids();
		uint64_t token = ct_mix(((uint64_t)ct.n << 32) ^ (uint64_t)getpid() ^ (uint64_t)time(NULL));
		for (int i = 0; i < NSEG; i++)
			if (seg[i].used)
				memcpy(seg[i].rw + seg[i].mail, &token, 8);
		struct request rq = { .cmd = 'v', .token = token };
		struct reply r;
		if (write(req[1], &rq, sizeof(rq)) != sizeof(rq) || !ct_read_answer(rep[0], &r, sizeof(r), REPLY_TIMEOUT_MS)) {
			ct_fail("child %d does not answer", (int)kid);
		} else {
			if (!r.ok)
				ct_fail("child: %s", r.why);
			uint64_t want = ct_mix(token);
			for (int i = 0; i < NSEG; i++) {
				uint64_t got;
				if (!seg[i].used)
					continue;
				memcpy(&got, seg[i].rw + seg[i].mail + 8, 8);
				if (got != want)
					ct_fail("%s: the child's answer is not in the segment (%016llx)", seg[i].name,
						(unsigned long long)got);
			}
		}
		struct request q = { .cmd = 'q' };
		int status = ct_verify_end_with_child(ev, kid, req[1], &q, sizeof(q));
		if (status >= 0) {
			remove_all();
			return status;
		}
	}
}
