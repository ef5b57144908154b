/* Our decoders read what real CRIU 4.x writes: dump a small process with
 * CRIU and decode every image. Skips (77), saying why, when this machine has
 * no CRIU that works (`forkpoint doctor`). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "images/criu_io.h"
#include "criu.h"
#include "images/pagestore.h"

static char dir[256];
static int dfd = -1;

/* The CRIU forkpoint itself would use: 4.x, `criu check`, and a dump and
 * restore that finish in time (common/criu.h). */
static char criu_path[4096];
static fp_error criu_err;
static const char *find_criu(void)
{
	return fp_criu_find(criu_path, sizeof(criu_path), &criu_err) == 0 ? criu_path : NULL;
}

/* A session leader sleeping with stdio on /dev/null and a pipe holding data,
 * so CRIU needs no --shell-job and writes pipes-data.img. */
static pid_t start_target(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		/* fds inherited from whoever runs the test would end up in the dump */
		for (int k = 3; k < 1024; k++)
			close(k);
		int p[2];
		if (pipe(p) == 0 && write(p[1], "queued", 6) != 6)
			_exit(1);
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Waits until the child has exec'd sleep (its comm changes). */
static bool wait_exec(pid_t pid)
{
	char path[64], comm[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (int i = 0; i < 2000; i++) {
		FILE *f = fopen(path, "r");
		if (f) {
			bool ok = fgets(comm, sizeof(comm), f) && strncmp(comm, "sleep", 5) == 0;
			fclose(f);
			if (ok)
				return true;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void decode_all(pid_t pid)
{
	fp_error e = { 0 };
	cr_inventory inv;
	CHECKF(cr_read_inventory(dfd, &inv, &e) == 0, "%s", e.msg);
	CHECK(inv.fdinfo_per_id && inv.has_root_ids);
	cr_inventory_free(&inv);

	cr_pstree *ps;
	size_t n;
	CHECKF(cr_read_pstree(dfd, &ps, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 1 && ps[0].pid == (uint32_t)pid && ps[0].n_threads == 1 &&
	      ps[0].sid == (uint32_t)pid);
	cr_free_array(&cr_pstree_desc, ps, n);

	cr_ids ids;
	CHECKF(cr_read_ids(dfd, (uint32_t)pid, &ids, &e) == 0, "%s", e.msg);

	cr_core c;
	CHECKF(cr_read_core(dfd, (uint32_t)pid, &c, &e) == 0, "%s", e.msg);
	CHECK(c.mtype == CR_MARCH_X86_64 && c.has_tc && c.has_thread_core && c.has_thread_info);
	CHECK(c.tc.n_sigactions == CR_SIGACTIONS && strcmp(c.tc.comm, "sleep") == 0);
	CHECK(c.tc.has_rlimits && c.tc.rlimits.n_rlimits >= 16 && c.tc.has_timers);
	CHECK(c.thread_info.fpregs.n_st_space == 32 && c.thread_info.fpregs.n_xmm_space == 64);
	CHECK(c.thread_info.gpregs.cs == 0x33 && c.thread_core.has_creds &&
	      c.thread_core.creds.n_cap_eff == 2);
	/* our encoding of what we decoded decodes to the same encoding */
	pb_buf b1, b2;
	pb_buf_init(&b1);
	pb_buf_init(&b2);
	pb_encode(&b1, &cr_core_desc, &c);
	cr_core c2;
	CHECK(pb_decode(&cr_core_desc, &c2, b1.data, b1.len, "re-encoded core", &e) == 0);
	pb_encode(&b2, &cr_core_desc, &c2);
	CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	cr_core_free(&c2);
	pb_buf_free(&b1);
	pb_buf_free(&b2);
	cr_core_free(&c);

	cr_mm mm;
	CHECKF(cr_read_mm(dfd, (uint32_t)pid, &mm, &e) == 0, "%s", e.msg);
	CHECK(mm.n_vmas > 5 && mm.vmas[0].fd == -1 && mm.n_mm_saved_auxv > 0);
	bool vdso = false;
	for (size_t i = 0; i < mm.n_vmas; i++)
		vdso |= (mm.vmas[i].status & CR_VMA_AREA_VDSO) != 0;
	CHECK(vdso);
	uint32_t exe = mm.exe_file_id;
	cr_mm_free(&mm);

	cr_pagemap_head h;
	cr_pagemap_entry *pe;
	CHECKF(cr_read_pagemap(dfd, (uint32_t)pid, &h, &pe, &n, &e) == 0, "%s", e.msg);
	uint64_t pages = 0;
	CHECK(n > 0 && cr_pagemap_present_pages(pe, n, &pages, &e) == 0 && pages > 0);
	free(pe);
	/* the pages file holds exactly the present pages; our store round-trips it */
	char plain[64];
	pgs_plain_name(plain, sizeof(plain), h.pages_id);
	struct stat st;
	CHECK(fstatat(dfd, plain, &st, 0) == 0 && (uint64_t)st.st_size == pages * 4096);
	uint8_t *orig;
	size_t olen;
	CHECK(img_read_file(dfd, plain, (size_t)1 << 32, &orig, &olen, &e) == 0);
	pgs_writer *w = pgs_writer_open(dfd, h.pages_id, NULL, &e);
	CHECK(w && pgs_writer_add(w, orig, olen / 4096, &e) == 0 &&
	      pgs_writer_close(w, NULL, &e) == 0);
	CHECK(unlinkat(dfd, plain, 0) == 0);
	CHECKF(pgs_decompress(dfd, h.pages_id, true, &e) == 0, "%s", e.msg);
	uint8_t *again;
	size_t alen;
	CHECK(img_read_file(dfd, plain, (size_t)1 << 32, &again, &alen, &e) == 0 && alen == olen &&
	      memcmp(orig, again, olen) == 0);
	free(orig);
	free(again);

	cr_file *f;
	CHECKF(cr_read_files(dfd, &f, &n, &e) == 0, "%s", e.msg);
	bool exe_found = false;
	int pipe_ends = 0;
	uint32_t pipe_id = 0;
	for (size_t i = 0; i < n; i++) {
		if (f[i].id == exe && f[i].has_reg && strstr(f[i].reg.name, "sleep"))
			exe_found = true;
		if (f[i].type == CR_FD_PIPE && f[i].has_pipe) {
			pipe_ends++;
			pipe_id = f[i].pipe.pipe_id;
		}
	}
	CHECK(exe_found && pipe_ends == 2);
	cr_free_array(&cr_file_desc, f, n);

	cr_fdinfo *fi;
	CHECKF(cr_read_fdinfo(dfd, ids.files_id, &fi, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 5 && fi[0].fd == 0 && fi[3].fd == 3 && fi[3].type == CR_FD_PIPE);
	cr_free_array(&cr_fdinfo_desc, fi, n);

	cr_fs fs;
	CHECKF(cr_read_fs(dfd, (uint32_t)pid, &fs, &e) == 0, "%s", e.msg);

	cr_pipe_data *pd;
	CHECKF(cr_read_pipes_data(dfd, &pd, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 1 && pd[0].pipe_id == pipe_id && pd[0].bytes == 6 &&
	      memcmp(pd[0].data, "queued", 6) == 0);
	cr_free_pipes_data(pd, n);

	cr_timens tn;
	if (faccessat(dfd, "timens-0.img", F_OK, 0) == 0)
		CHECKF(cr_read_timens(dfd, 0, &tn, &e) == 0, "%s", e.msg);
	cr_seccomp sc;
	if (faccessat(dfd, "seccomp.img", F_OK, 0) == 0) {
		CHECKF(cr_read_seccomp(dfd, &sc, &e) == 0, "%s", e.msg);
		cr_seccomp_free(&sc);
	}

	/* every framed image in the directory walks cleanly entry by entry */
	DIR *d = opendir(dir);
	struct dirent *de;
	int walked = 0;
	while (d && (de = readdir(d))) {
		if (!strstr(de->d_name, ".img") || !strncmp(de->d_name, "pages-", 6))
			continue;
		uint8_t *data;
		size_t len;
		if (img_read_file(dfd, de->d_name, (size_t)1 << 30, &data, &len, &e) < 0 || len < 4)
			continue;
		uint32_t m = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			     (uint32_t)data[3] << 24;
		uint32_t magic = m;
		if (m == CR_IMG_COMMON_MAGIC && len >= 8)
			magic = (uint32_t)data[4] | (uint32_t)data[5] << 8 |
				(uint32_t)data[6] << 16 | (uint32_t)data[7] << 24;
		free(data);
		if (magic == CR_PIPES_DATA_MAGIC)
			continue; /* has payloads: read above */
		cr_img img;
		CHECKF(cr_img_open(&img, dfd, de->d_name, magic, &e) == 0, "%s", e.msg);
		const uint8_t *msg;
		size_t ml;
		int rc;
		while ((rc = cr_img_next(&img, &msg, &ml, &e)) > 0)
			;
		CHECKF(rc == 0, "%s", e.msg);
		cr_img_close(&img);
		walked++;
	}
	if (d)
		closedir(d);
	CHECK(walked >= 9);
}

int main(void)
{
	const char *criu = find_criu();
	if (!criu)
		SKIP("%s", criu_err.msg);
	if (geteuid() != 0)
		SKIP("criu dump needs root");
	snprintf(dir, sizeof(dir), "/tmp/fp-test-criu-img.%d", (int)getpid());
	fp_error e = { 0 };
	CHECKF(img_mkdir_private(dir, &e) == 0, "%s", e.msg);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 1;

	pid_t pid = start_target();
	CHECK(pid > 0 && wait_exec(pid));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "timeout 120 '%s' dump -t %d -D '%s' -o dump.log -v4 </dev/null",
		 criu, (int)pid, dir);
	int rc = system(cmd);
	CHECKF(rc == 0, "criu dump failed (rc %d): see %s/dump.log", rc, dir);
	/* criu dump kills the target; reap it (kill first in case dump failed) */
	if (rc != 0)
		kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	if (rc == 0)
		decode_all(pid);

	int failed = fp_test_failures;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (failed)
		printf("images kept in %s\n", dir);
	else if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	close(dfd);
	return fp_test_done();
}
