/* The reader works while the target keeps running, and never returns a torn
 * slot or list. The target's threads open, close, map, unmap and create
 * threads without pause, in a pattern where every field of an fd slot or a
 * mapping entry follows from its path: a slot or entry mixing two writes
 * shows. Also: a process without the shim is "not under the shim" (not an
 * error), a missing process is ESRCH, and a stopped target is either read or
 * reported busy, never torn. */
#include "test_shim_common.h"

#include <sys/mman.h>

#include "procfs.h"

struct ids {
	uint64_t c_ino[16], m_ino[16];
};

static int churn_flags(int k)
{
	static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_APPEND};
	return acc[k % 4] | ((k % 2) ? O_CLOEXEC : 0);
}

static int name_k(const char *path, char letter)
{
	if (path[0] != letter || path[1] < '0' || path[1] > '9')
		return -1;
	int k = atoi(path + 1);
	char again[8];
	snprintf(again, sizeof(again), "%c%d", letter, k);
	return (k < 16 && !strcmp(again, path)) ? k : -1;
}

struct seen {
	unsigned churn_fds, churn_maps, pipes;
};

/* Every field of every slot and entry is consistent; returns problems found. */
static int validate(const struct fp_shim_table *t, const struct ids *ids, struct seen *s)
{
	int bad = 0;
	for (uint32_t fd = 0; fd < t->fd_hwm; fd++) {
		const struct fp_shim_fd *f = &t->fds[fd];
		if (f->seq & 1) {
			fprintf(stderr, "fd slot %u copied while being written (seq %u)\n", fd, f->seq);
			bad++;
		}
		if (!f->used)
			continue;
		int k;
		if ((k = name_k(f->path, 'c')) >= 0) {
			s->churn_fds++;
			if ((f->ino && f->ino != ids->c_ino[k]) || f->open_flags != churn_flags(k) ||
			    f->fd_flags != ((k % 2) ? FD_CLOEXEC : 0) ||
			    (f->type != FP_FD_REG && f->type != FP_FD_UNKNOWN)) {
				fprintf(stderr, "torn fd slot %u: path %s ino %llu (want %llu) flags %o "
						"(want %o) fd_flags %d type %d\n",
					fd, f->path, (unsigned long long)f->ino,
					(unsigned long long)ids->c_ino[k], f->open_flags, churn_flags(k),
					f->fd_flags, f->type);
				bad++;
			}
		} else if ((k = name_k(f->path, 'm')) >= 0) {
			if ((f->ino && f->ino != ids->m_ino[k]) || f->open_flags != (O_RDONLY | O_CLOEXEC) ||
			    f->fd_flags != FD_CLOEXEC) {
				fprintf(stderr, "torn fd slot %u (%s)\n", fd, f->path);
				bad++;
			}
		} else if (f->type == FP_FD_PIPE && f->origin == FP_ORIGIN_PROGRAM) {
			s->pipes++;
			if (f->path[0] || (f->open_flags != O_RDONLY && f->open_flags != O_WRONLY)) {
				fprintf(stderr, "torn pipe slot %u: path \"%s\" flags %o\n", fd, f->path,
					f->open_flags);
				bad++;
			}
		}
	}
	for (uint32_t i = 0; i < t->map_count; i++) {
		const struct fp_shim_map *m = &t->maps[i];
		if (m->start >= m->end || (i && m->start < t->maps[i - 1].end)) {
			fprintf(stderr, "mapping list out of order at %u: %llx-%llx after %llx-%llx\n",
				i, (unsigned long long)m->start, (unsigned long long)m->end,
				(unsigned long long)(i ? t->maps[i - 1].start : 0),
				(unsigned long long)(i ? t->maps[i - 1].end : 0));
			bad++;
		}
		int k = name_k(m->path, 'm');
		if (k < 0 || m->origin != FP_ORIGIN_PROGRAM)
			continue;
		s->churn_maps++;
		if ((m->ino && m->ino != ids->m_ino[k]) || m->end - m->start != (uint64_t)(k + 1) * 4096 ||
		    m->offset != 0 || m->prot != PROT_READ || !(m->flags & MAP_SHARED)) {
			fprintf(stderr, "torn mapping %llx-%llx (%s): ino %llu size %llu prot %d\n",
				(unsigned long long)m->start, (unsigned long long)m->end, m->path,
				(unsigned long long)m->ino,
				(unsigned long long)(m->end - m->start), m->prot);
			bad++;
		}
	}
	for (uint32_t i = 0; i < t->thread_count; i++) {
		if (t->threads[i].tid <= 0) {
			fprintf(stderr, "bad thread entry %u: %d\n", i, t->threads[i].tid);
			bad++;
		}
		for (uint32_t j = 0; j < i; j++)
			if (t->threads[j].tid == t->threads[i].tid) {
				fprintf(stderr, "thread %d listed twice\n", t->threads[i].tid);
				bad++;
			}
	}
	return bad;
}

/* Waits (deadline 5 s) until pid's main thread is stopped or not. */
static int wait_stopped(pid_t pid, bool stopped)
{
	uint64_t dl = tgt_now_ms() + 5000;
	for (;;) {
		struct fp_proc_stat st;
		fp_error e;
		if (fp_proc_read_stat(pid, 0, &st, &e) < 0)
			return -1;
		if ((st.state == 'T') == stopped)
			return 0;
		if (tgt_now_ms() > dl)
			return -1;
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
}

int main(void)
{
	fp_error err;
	struct fp_shim_copy c;

	/* not under the shim: our own process */
	CHECK(fp_shim_read(getpid(), NULL, &c, &err) == 0 && c.state == FP_SHIM_ABSENT);
	/* no such process */
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	int r = fp_shim_read(gone, NULL, &c, &err);
	CHECKF(r == -1 && err.errnum == ESRCH && strstr(err.msg, "no process"),
	       "reading a reaped pid gave %d: %s", r, err.msg);

	struct tgt t;
	char line[512];
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	CHECK(tgt_cmd(&t, "churn 6", NULL, 0) == 0);
	struct ids ids;
	for (int k = 0; k < 16; k++) {
		char p[400];
		struct stat st;
		snprintf(p, sizeof(p), "%s/c%d", t.dir, k);
		CHECK(stat(p, &st) == 0);
		ids.c_ino[k] = st.st_ino;
		snprintf(p, sizeof(p), "%s/m%d", t.dir, k);
		CHECK(stat(p, &st) == 0);
		ids.m_ino[k] = st.st_ino;
	}

	/* read while it runs: every read must succeed and be consistent */
	struct seen seen = {0};
	unsigned reads = 0, failed = 0, retries = 0, gated = 0, bad = 0;
	uint64_t addr = 0, end = tgt_now_ms() + 3000;
	while (tgt_now_ms() < end) {
		memset(&c, 0, sizeof(c));
		r = addr ? fp_shim_read_at(t.pid, addr, NULL, &c, &err)
			 : fp_shim_read(t.pid, NULL, &c, &err);
		if (r != 1) {
			failed++;
			fprintf(stderr, "read %u failed (%d): %s\n", reads, r, err.msg);
			continue;
		}
		addr = c.addr;
		reads++;
		retries += c.retries;
		gated += c.gated;
		bad += (unsigned)validate(c.t, &ids, &seen);
		fp_shim_copy_free(&c);
	}
	printf("%u reads while running (%u retries, %u gated, %u failed); seen %u churn fds, "
	       "%u churn maps, %u pipe slots\n",
	       reads, retries, gated, failed, seen.churn_fds, seen.churn_maps, seen.pipes);
	CHECKF(reads >= 20, "only %u reads in 3 s", reads);
	CHECKF(failed == 0, "%u reads failed", failed);
	CHECKF(bad == 0, "%u torn or inconsistent entries", bad);
	CHECKF(seen.churn_fds > 0 && seen.churn_maps > 0, "the reads saw no churn");

	/* stopped: it may be stopped inside a change; then the read says busy */
	unsigned stopped_ok = 0, stopped_busy = 0;
	for (int i = 0; i < 20; i++) {
		kill(t.pid, SIGSTOP);
		CHECK(wait_stopped(t.pid, true) == 0);
		struct fp_shim_read_opts o = { .timeout_ms = 200 };
		memset(&c, 0, sizeof(c));
		r = fp_shim_read_at(t.pid, addr, &o, &c, &err);
		if (r == 1) {
			stopped_ok++;
			bad += (unsigned)validate(c.t, &ids, &seen);
			fp_shim_copy_free(&c);
		} else {
			CHECKF(r == -1 && err.errnum == EAGAIN, "stopped read: %d %s", r, err.msg);
			stopped_busy++;
		}
		kill(t.pid, SIGCONT);
		CHECK(wait_stopped(t.pid, false) == 0);
	}
	printf("stopped target: %u reads, %u busy\n", stopped_ok, stopped_busy);
	CHECK(stopped_ok > 0);
	CHECKF(bad == 0, "%u torn or inconsistent entries", bad);

	/* the table is found once: later look-ups read its header only */
	uint64_t a1 = 0, a2 = 0;
	CHECK(fp_shim_locate(t.pid, &a1, NULL, 0, &err) == 1 && a1 == addr);
	unsigned long walks = fp_shim_locate_walks();
	for (int i = 0; i < 5; i++)
		CHECK(fp_shim_locate(t.pid, &a2, NULL, 0, &err) == 1 && a2 == a1);
	CHECKF(fp_shim_locate_walks() == walks, "%lu walks of /proc for 5 look-ups of a known table",
	       fp_shim_locate_walks() - walks);
	/* a header that is not this process's table is not taken: another pid */
	CHECK(fp_shim_read_heads(getpid(), a1, (int[]){ 0 }, 1, &(struct fp_shim_fd_head){ 0 }, NULL, &err) != 1);

	/* the fds alone, and the heads of chosen slots, equal the whole copy
	 * (taken while stopped, so nothing moves between them; the churn
	 * ended first: a SIGSTOP inside a wrapper's locked section makes a
	 * read busy, and with the churn on every one of 20 tries could be) */
	CHECK(tgt_cmd(&t, "stop", NULL, 0) == 0);
	for (int i = 0, compared = 0; i < 20 && !compared; i++) {
		kill(t.pid, SIGSTOP);
		CHECK(wait_stopped(t.pid, true) == 0);
		struct fp_shim_copy whole = { 0 }, fo = { 0 };
		struct fp_shim_read_opts o1 = { .timeout_ms = 200 }, o2 = { .timeout_ms = 200, .fds_only = 1 };
		if (fp_shim_read_at(t.pid, a1, &o1, &whole, &err) == 1 && fp_shim_read_at(t.pid, a1, &o2, &fo, &err) == 1) {
			compared = 1;
			CHECK(fo.t->map_count == 0 && fo.t->thread_count == 0 && whole.t->map_count > 0);
			CHECK(fo.t->fd_hwm == whole.t->fd_hwm &&
			      !memcmp(fo.t->fds, whole.t->fds, whole.t->fd_hwm * sizeof(struct fp_shim_fd)));
			uint32_t n = whole.t->fd_hwm, hwm = 0;
			/* both ways: a few slots (one range each), many (read in runs) */
			for (uint32_t m = 3; m <= 2 * n + 64; m += 2 * n + 61) {
			int *fds = calloc(m + 1, sizeof(int));
			struct fp_shim_fd_head *hd = calloc(m + 1, sizeof(*hd));
			CHECK(fds && hd);
			for (uint32_t k = 0; k < m; k++)
				fds[k] = (int)(n - 1 - k % n); /* any order */
			fds[m] = (int)n + 5; /* beyond the table: unknown */
			CHECK(fp_shim_read_heads(t.pid, a1, fds, m + 1, hd, &hwm, &err) == 1 && hwm == n);
			for (uint32_t k = 0; k < m; k++) {
				const struct fp_shim_fd *f = &whole.t->fds[fds[k]];
				CHECKF(hd[k].seq == f->seq && hd[k].used == f->used && hd[k].origin == f->origin,
				       "fd %d: head seq %u used %u, whole copy seq %u used %u", fds[k], hd[k].seq, hd[k].used,
				       f->seq, f->used);
			}
			CHECK(hd[m].seq & 1);
			free(fds);
			free(hd);
			}
		}
		fp_shim_copy_free(&whole);
		fp_shim_copy_free(&fo);
		kill(t.pid, SIGCONT);
		CHECK(wait_stopped(t.pid, false) == 0);
		if (i == 19)
			CHECKF(compared, "no copy of the stopped target in 20 tries");
	}

	int n = shim_disagreements(t.pid, "after churn");
	CHECKF(n == 0, "after churn: %d disagreements", n);
	CHECK(tgt_finish(&t, true) == 0);
	return fp_test_done();
}
