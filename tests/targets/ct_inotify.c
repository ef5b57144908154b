/* ct_inotify: an inotify (non-blocking) with watches, one of them removed
 * again so that the numbers have a gap:
 *
 *   wd 1  DIR/watched         IN_CREATE | IN_DELETE | IN_MOVED_TO
 *   wd 2  DIR/watched/a       IN_MODIFY | IN_ATTRIB
 *   wd 3  DIR/watched/b       removed (its IN_IGNORED read away)
 *   wd 4  DIR/other           IN_CLOSE_WRITE, with --oneshot | IN_ONESHOT
 *                             (CRIU 4.2's restore drops that flag)
 *   wd 5  DIR/gone            IN_MODIFY, with --deleted: the file is kept
 *                             open and unlinked, so the watch stays on a
 *                             file that has no path any more
 *
 * A verification compares the watches /proc/self/fdinfo lists with these
 * (number, inode, mask); the one on the deleted file may be missing (a
 * snapshot cannot bring it back on a path: forkpoint leaves it out), but
 * if present must be as it was. Then it proves the watches work on their
 * files under their numbers: a file created and removed in DIR/watched
 * gives IN_CREATE and IN_DELETE with its name on wd 1, a write to
 * DIR/watched/a gives IN_MODIFY on wd 2, and nothing else is queued.
 *
 *   ct_inotify STATUS --dir=DIR [--deleted] [--oneshot] [common options]
 */
#include "ct_proto.h"

#include <sys/inotify.h>

#define NW 5

static int ifd, gone_fd = -1;
static bool deleted;
static const char *dir;
static char paths[NW][PATH_MAX];
static uint64_t inos[NW];
static uint32_t masks[NW] = { IN_CREATE | IN_DELETE | IN_MOVED_TO, IN_MODIFY | IN_ATTRIB, IN_MODIFY, IN_CLOSE_WRITE,
			      IN_MODIFY };
static bool live[NW] = { true, true, false, true, false };

static void check_fdinfo(void)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ifd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0) {
		ct_fail("cannot read %s", path);
		return;
	}
	buf[n] = 0;
	bool seen[NW] = { false };
	for (char *p = strstr(buf, "inotify wd:"); p; p = strstr(p + 1, "inotify wd:")) {
		unsigned wd, mask;
		unsigned long long ino;
		if (sscanf(p, "inotify wd:%x ino:%llx sdev:%*x mask:%x", &wd, &ino, &mask) != 3 || wd < 1 || wd > NW ||
		    !live[wd - 1]) {
			ct_fail("unexpected watch: %.60s", p);
			continue;
		}
		seen[wd - 1] = true;
		if (ino != inos[wd - 1] || mask != masks[wd - 1])
			ct_fail("watch %u is on inode %llu mask %#x, expected %llu mask %#x", wd, ino, mask,
				(unsigned long long)inos[wd - 1], masks[wd - 1]);
	}
	for (int i = 0; i < NW; i++)
		if (live[i] && !seen[i] && !(i == 4 && deleted))
			ct_fail("watch %d on %s is gone", i + 1, paths[i]);
}

/* The next event, within 5 s. */
static bool next_event(struct inotify_event *ev, char *name, size_t len)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t have, at;
	if (at >= have) {
		struct pollfd p = { .fd = ifd, .events = POLLIN };
		ssize_t n = poll(&p, 1, 5000) == 1 ? read(ifd, buf, sizeof(buf)) : -1;
		if (n <= 0)
			return false;
		have = (size_t)n, at = 0;
	}
	memcpy(ev, buf + at, sizeof(*ev));
	snprintf(name, len, "%s", ev->len ? buf + at + sizeof(*ev) : "");
	at += sizeof(*ev) + ev->len;
	return true;
}

static void expect(uint32_t wd, uint32_t mask, const char *name)
{
	struct inotify_event ev;
	char got[256];
	if (!next_event(&ev, got, sizeof(got)))
		ct_fail("no event for watch %u (mask %#x)", wd, mask);
	else if ((uint32_t)ev.wd != wd || !(ev.mask & mask) || strcmp(got, name))
		ct_fail("event on watch %d mask %#x name '%s', expected watch %u mask %#x '%s'", ev.wd, ev.mask, got, wd, mask,
			name);
}

static void verify(void)
{
	ct_verify_begin();
	check_fdinfo();
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/t%u", paths[0], ct.n);
	int f = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (f >= 0)
		close(f);
	unlink(tmp);
	int a = open(paths[1], O_WRONLY | O_APPEND | O_CLOEXEC);
	if (a < 0 || write(a, "x", 1) != 1)
		ct_fail("cannot write to %s", paths[1]);
	if (a >= 0)
		close(a);
	snprintf(tmp, sizeof(tmp), "t%u", ct.n);
	expect(1, IN_CREATE, tmp);
	expect(1, IN_DELETE, tmp);
	expect(2, IN_MODIFY, "");
	char b[256];
	if (read(ifd, b, sizeof(b)) != -1 || errno != EAGAIN)
		ct_fail("more events queued than expected");
	ct_verify_end(NULL);
}

static uint64_t ino_of(const char *p)
{
	struct stat st;
	if (stat(p, &st))
		ct_die("stat %s: %s", p, strerror(errno));
	return st.st_ino;
}

int main(int argc, char **argv)
{
	ct.prog = "ct_inotify";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_inotify STATUS --dir=DIR [--deleted] [--oneshot] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--deleted"))
			deleted = true;
		else if (!strcmp(argv[i], "--oneshot"))
			masks[3] |= IN_ONESHOT;
		else if (!ct_common_arg(argv[i]) && !ct_str_arg(argv[i], "--dir", &dir)) {
			fprintf(stderr, "ct_inotify: unknown option %s\n", argv[i]);
			return 2;
		}
	if (!dir)
		ct_die("--dir=DIR is needed");
	ct_setup();
	snprintf(paths[0], PATH_MAX, "%s/watched", dir);
	snprintf(paths[1], PATH_MAX, "%s/watched/a", dir);
	snprintf(paths[2], PATH_MAX, "%s/watched/b", dir);
	snprintf(paths[3], PATH_MAX, "%s/other", dir);
	snprintf(paths[4], PATH_MAX, "%s/gone", dir);
	if (mkdir(paths[0], 0700) && errno != EEXIST)
		ct_die("mkdir %s: %s", paths[0], strerror(errno));
	for (int i = 1; i < NW; i++) {
		int f = open(paths[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (f < 0)
			ct_die("creating %s: %s", paths[i], strerror(errno));
		close(f);
	}
	for (int i = 0; i < NW; i++)
		inos[i] = ino_of(paths[i]);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0)
		ct_die("inotify_init1: %s", strerror(errno));
	for (int i = 0; i < (deleted ? NW : NW - 1); i++)
		if (inotify_add_watch(ifd, paths[i], masks[i]) != i + 1)
			ct_die("watch %d on %s: %s", i + 1, paths[i], strerror(errno));
	if (inotify_rm_watch(ifd, 3))
		ct_die("inotify_rm_watch: %s", strerror(errno));
	if (deleted) {
		live[4] = true;
		gone_fd = open(paths[4], O_RDONLY | O_CLOEXEC);
		if (gone_fd < 0 || unlink(paths[4]))
			ct_die("keeping %s open and unlinked: %s", paths[4], strerror(errno));
	}
	/* the IN_IGNORED of the removed watch (and IN_ATTRIB, IN_DELETE of the
	 * unlink): read away, the queue starts empty */
	char b[4096];
	while (read(ifd, b, sizeof(b)) > 0)
		;
	return ct_serve(verify);
}
