/* Shared memory images: memfd.img (memfd_inode_entry), a MEMFD FileEntry
 * (memfd_file_entry, field 20) and pagemap-shmem-<shmid>.img written and read
 * back; when CRIU's image decoder `crit` is installed, it must decode what
 * we wrote to the same values (the field numbers are CRIU's). */
#include "fp_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_error.h"
#include "images/criu_io.h"

static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	static char out[65536];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	return pclose(p) == 0 ? out : NULL;
}

int main(void)
{
	char dir[] = "/tmp/fp-shmem-img.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fp_error e = { 0 };

	cr_memfd_inode mi[2] = {
		{ .name = "ct-shmem", .uid = 0, .gid = 0, .size = 327680, .shmid = 1672, .seals = 0x6, .inode_id = 1 },
		{ .name = "sealed", .uid = 1, .gid = 2, .size = 16, .shmid = 1673, .seals = 0x9, .inode_id = 2 },
	};
	CHECKF(cr_write_memfd_inodes(dfd, mi, 2, &e) == 0, "%s", e.msg);
	cr_memfd_inode *rm = NULL;
	size_t n = 0;
	CHECKF(cr_read_memfd_inodes(dfd, &rm, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 2);
	if (n == 2) {
		CHECK(!strcmp(rm[0].name, "ct-shmem") && rm[0].size == 327680 && rm[0].shmid == 1672 && rm[0].seals == 6);
		CHECK(!strcmp(rm[1].name, "sealed") && rm[1].uid == 1 && rm[1].gid == 2 && rm[1].inode_id == 2 &&
		      rm[1].seals == 9);
	}
	cr_free_array(&cr_memfd_inode_desc, rm, n);

	cr_file f = { .type = CR_FD_MEMFD, .id = 7, .has_memfd = true,
		      .memfd = { .id = 7, .flags = O_RDWR, .pos = 12345, .inode_id = 2 } };
	CHECKF(cr_write_files(dfd, &f, 1, &e) == 0, "%s", e.msg);
	cr_file *rf = NULL;
	CHECKF(cr_read_files(dfd, &rf, &n, &e) == 0, "%s", e.msg);
	CHECK(n == 1 && rf && rf[0].has_memfd && rf[0].memfd.pos == 12345 && rf[0].memfd.inode_id == 2 &&
	      rf[0].memfd.flags == O_RDWR);
	for (size_t i = 0; i < n; i++)
		cr_file_free(&rf[i]);
	free(rf);

	cr_pagemap_head h = { .pages_id = 5 };
	cr_pagemap_entry pe[2] = {
		{ .vaddr = 0, .nr_pages = 3, .has_flags = true, .flags = CR_PE_PRESENT },
		{ .vaddr = 0x20000, .nr_pages = 1, .has_flags = true, .flags = CR_PE_PRESENT },
	};
	CHECKF(cr_write_pagemap_shmem(dfd, 1672, &h, pe, 2, &e) == 0, "%s", e.msg);
	CHECK(faccessat(dfd, "pagemap-shmem-1672.img", F_OK, 0) == 0);
	cr_pagemap_head rh;
	cr_pagemap_entry *rpe = NULL;
	CHECKF(cr_read_pagemap_shmem(dfd, 1672, &rh, &rpe, &n, &e) == 0, "%s", e.msg);
	CHECK(rh.pages_id == 5 && n == 2 && rpe && rpe[1].vaddr == 0x20000 && rpe[0].nr_pages == 3);
	free(rpe);

	if (access("/usr/bin/crit", X_OK) == 0) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "crit decode -i %s/memfd.img 2>&1", dir);
		char *out = run(cmd);
		CHECKF(out && strstr(out, "\"ct-shmem\"") && strstr(out, "\"sealed\"") && strstr(out, "1673"), "crit: %s",
		       out ? out : "(failed)");
		snprintf(cmd, sizeof(cmd), "crit decode -i %s/files.img 2>&1", dir);
		out = run(cmd);
		CHECKF(out && strstr(out, "MEMFD") && strstr(out, "12345"), "crit: %s", out ? out : "(failed)");
	} else {
		printf("crit not installed: CRIU's decoder not consulted\n");
	}
	char rm_cmd[128];
	snprintf(rm_cmd, sizeof(rm_cmd), "rm -rf %s", dir);
	if (system(rm_cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	close(dfd);
	return fp_test_done();
}
