/* shim_exercise: files, pipes, sockets, anon fds, mappings, and changes behind the shim's back. */
#include "ex.h"

/* ---- files, pipes, sockets, anon fds ---- */

void cmd_files(void)
{
	char abs[4200];
	int a = open("f_rel", O_RDWR | O_CREAT, 0600);
	snprintf(abs, sizeof(abs), "%s/f_abs", work_dir);
	int b = open(abs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int dfd = open(".", O_RDONLY | O_DIRECTORY);
	int c = openat(dfd, "f_at", O_RDWR | O_CREAT | O_NONBLOCK, 0600);
	int d = creat("f_creat", 0600);
	int p = open(".", O_PATH);
	if (a < 0 || b < 0 || dfd < 0 || c < 0 || d < 0 || p < 0)
		die("open");
	keep_fd(a);
	keep_fd(b);
	keep_fd(dfd);
	keep_fd(c);
	keep_fd(p);
	keep_fd(dup(a));
	int hi = dup2(b, 200);
	keep_fd(hi);
	keep_fd(dup3(c, 201, O_CLOEXEC));
	keep_fd(fcntl(a, F_DUPFD, 100));
	int e = fcntl(a, F_DUPFD_CLOEXEC, 110);
	keep_fd(e);
	if (fcntl(e, F_SETFD, 0) < 0 || fcntl(a, F_SETFD, FD_CLOEXEC) < 0)
		die("F_SETFD");
	if (fcntl(d, F_SETFL, O_APPEND | O_NONBLOCK) < 0)
		die("F_SETFL");
	keep_fd(d);
	/* dup2 over an open fd replaces it */
	int victim = open("f_victim", O_RDONLY | O_CREAT, 0600);
	if (victim < 0 || dup2(a, victim) != victim)
		die("dup2 over");
	keep_fd(victim);
	/* opened and closed again: must not stay in the table */
	int gone = open("f_gone", O_RDWR | O_CREAT, 0600);
	int gone2 = dup(gone);
	close(gone);
	close(gone2);
	char tmpl[] = "f_tmpXXXXXX";
	keep_fd(mkstemp(tmpl));
	char tmpl2[] = "f_otmpXXXXXX";
	keep_fd(mkostemp(tmpl2, O_CLOEXEC | O_APPEND));
	reply("ok");
}

void cmd_stdio(void)
{
	FILE *r = fopen("s_r", "w+");
	FILE *a = fopen("s_a", "ae");
	FILE *x = fopen("s_x", "r+");
	if (!r || !a || x)
		die("fopen");
	fputs("hello\n", r);
	fflush(r);
	FILE *re = freopen("s_re", "w", r);
	if (!re)
		die("freopen");
	keep_fd(dup(fileno(re))); /* keep a copy; the stream stays open too */
	FILE *t = tmpfile();
	if (!t)
		die("tmpfile");
	int pfd[2];
	if (pipe(pfd) < 0)
		die("pipe");
	FILE *w = fdopen(pfd[1], "a");
	if (!w)
		die("fdopen");
	fclose(w); /* closes pfd[1] */
	keep_fd(pfd[0]);
	fclose(a);
	DIR *dir = opendir(".");
	DIR *dir2 = opendir("/");
	if (!dir || !dir2)
		die("opendir");
	closedir(dir2);
	/* leak on purpose: stays open */
	(void)dir;
	(void)t;
	reply("ok");
}

void cmd_pipes(void)
{
	int p[2], q[2], r[2];
	if (pipe(p) < 0 || pipe2(q, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(r, 0) < 0)
		die("pipe");
	keep_fd(p[0]);
	keep_fd(p[1]);
	keep_fd(q[0]);
	close(q[1]);
	close(r[0]);
	close(r[1]);
	if (mkfifo("fifo", 0600) < 0 && errno != EEXIST)
		die("mkfifo");
	int f = open("fifo", O_RDWR);
	keep_fd(f);
	reply("ok");
}

void cmd_sockets(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int sv[2];
	if (s < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) < 0)
		die("socket");
	keep_fd(sv[0]);
	close(sv[1]);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "sock");
	unlink("sock");
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0)
		die("bind");
	int c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c1 < 0 || c2 < 0 || connect(c1, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    connect(c2, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	int a1 = accept(s, NULL, NULL);
	int a2 = accept4(s, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (a1 < 0 || a2 < 0)
		die("accept");
	keep_fd(s);
	keep_fd(c1);
	keep_fd(a2);
	close(c2);
	/* pass an fd over the connection: SCM_RIGHTS makes a new fd */
	int tosend = open("f_sent", O_RDWR | O_CREAT, 0600);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	char one = 'x';
	struct iovec iov = {&one, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &tosend, sizeof(int));
	if (sendmsg(c1, &mh, 0) != 1)
		die("sendmsg");
	close(tosend);
	char rbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct msghdr rh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = rbuf,
			    .msg_controllen = sizeof(rbuf)};
	if (recvmsg(a1, &rh, MSG_CMSG_CLOEXEC) != 1)
		die("recvmsg");
	int got;
	memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rh)), sizeof(int));
	keep_fd(got);
	close(a1);
	reply("ok");
}

void cmd_anon(void)
{
	keep_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	keep_fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	int sfd = signalfd(-1, &m, SFD_NONBLOCK);
	keep_fd(sfd);
	sigaddset(&m, SIGUSR2);
	if (signalfd(sfd, &m, 0) != sfd) /* changes the mask only */
		die("signalfd");
	keep_fd(epoll_create1(EPOLL_CLOEXEC));
	keep_fd(epoll_create(4));
	keep_fd(memfd_create("exercise", MFD_CLOEXEC));
	keep_fd(inotify_init1(IN_NONBLOCK));
	keep_fd(inotify_init());
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0); /* not through the wrapper */
	if (pfd >= 0)
		close(pfd);
	reply("ok");
}

/* ---- mappings ---- */

/* For the mapping change log: n pages mapped and unmapped, then two pages
 * mapped, the first made read-only, and the break moved up by one page:
 * "ok TWO_PAGES OLD_BREAK". */
void cmd_maplog(long n)
{
	const size_t pg = 4096;
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || munmap(p, pg) < 0)
			die("mmap/munmap");
	}
	char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (two == MAP_FAILED || mprotect(two, pg, PROT_READ) < 0)
		die("mmap/mprotect");
	keep_map(two, 2 * pg);
	/* from a page boundary, so that exactly one page is new */
	char *cur = sbrk(0);
	uintptr_t up = ((uintptr_t)cur + pg - 1) & ~(uintptr_t)(pg - 1);
	if (sbrk((intptr_t)(up - (uintptr_t)cur)) == (void *)-1)
		die("sbrk align");
	char *old = sbrk((intptr_t)pg);
	if (old == (void *)-1)
		die("sbrk");
	reply("ok %lx %lx", (unsigned long)(uintptr_t)two, (unsigned long)(uintptr_t)old);
}

void cmd_maps(void)
{
	const size_t pg = 4096;
	int fd = make_file("m_file", 16 * pg);
	keep_fd(fd);
	/* anonymous private, with a hole punched in the middle and a prot change */
	char *a = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		die("mmap");
	a[0] = 1;
	if (munmap(a + 4 * pg, 2 * pg) < 0 || mprotect(a + 8 * pg, 2 * pg, PROT_READ) < 0)
		die("munmap/mprotect");
	keep_map(a, 4 * pg);
	keep_map(a + 6 * pg, 10 * pg);
	/* anonymous shared */
	keep_map(mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
		 3 * pg);
	/* file, private and shared, with an offset */
	keep_map(mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE, fd, 2 * pg), 4 * pg);
	char *s = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		die("mmap shared");
	/* MAP_FIXED over part of it: an anonymous page replaces file pages */
	if (mmap(s + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		die("mmap fixed");
	keep_map(s, 8 * pg);
	/* mremap: grow in place or move, shrink, move to a fixed place */
	char *g = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g = mremap(g, 2 * pg, 6 * pg, MREMAP_MAYMOVE);
	if (g == MAP_FAILED)
		die("mremap grow");
	g = mremap(g, 6 * pg, 3 * pg, 0);
	if (g == MAP_FAILED)
		die("mremap shrink");
	char *dst = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *moved = mremap(g, 3 * pg, 3 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 4 * pg);
	if (moved == MAP_FAILED)
		die("mremap fixed");
	keep_map(dst, 8 * pg);
	/* a file mapping moved by mremap keeps its offset */
	char *fm = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE, fd, 4 * pg);
	fm = mremap(fm, 2 * pg, 4 * pg, MREMAP_MAYMOVE);
	if (fm == MAP_FAILED)
		die("mremap file");
	keep_map(fm, 4 * pg);
	/* /dev/zero, private (stays /dev/zero) and shared (becomes shmem) */
	int z = open("/dev/zero", O_RDWR);
	keep_map(mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0), 2 * pg);
	keep_map(mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0), 2 * pg);
	close(z);
	/* mapped and unmapped again */
	void *tmp = mmap(NULL, 5 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(tmp, 5 * pg);
	reply("ok");
}

/* ---- behind the shim's back: raw system calls it cannot see ---- */

static int raw_a = -1, raw_b = -1, raw_c = -1;
static void *raw_m, *raw_m2;

void cmd_raw(void)
{
	raw_a = (int)syscall(SYS_openat, AT_FDCWD, "raw_a", O_RDWR | O_CREAT, 0600);
	raw_b = open("raw_b", O_RDWR | O_CREAT, 0600);
	raw_c = open("raw_c", O_RDWR | O_CREAT, 0600);
	if (raw_a < 0 || raw_b < 0 || raw_c < 0)
		die("raw open");
	syscall(SYS_fcntl, raw_b, F_SETFD, FD_CLOEXEC);
	syscall(SYS_close, raw_c);
	raw_m = (void *)syscall(SYS_mmap, 0, 3 * 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	raw_m2 = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (raw_m == MAP_FAILED || raw_m2 == MAP_FAILED)
		die("raw mmap");
	syscall(SYS_mprotect, raw_m2, 4096, PROT_READ);
	reply("ok");
}

void cmd_unraw(void)
{
	syscall(SYS_close, raw_a);
	close(raw_b);
	close(raw_c); /* EBADF, but the shim forgets it */
	syscall(SYS_munmap, raw_m, 3 * 4096);
	munmap(raw_m2, 2 * 4096);
	reply("ok");
}

