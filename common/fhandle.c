#include "fhandle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HANDLE_MAX 128 /* MAX_HANDLE_SZ */

static int mount_fd(unsigned maj, unsigned min)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int fd = -1;
	while (f && fd < 0 && fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		char point[PATH_MAX];
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &ma, &mi, point) == 3 && ma == maj && mi == min)
			fd = open(point, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* (not O_PATH: open_by_handle_at refuses it) */
	}
	if (f)
		fclose(f);
	if (fd < 0)
		errno = ENODEV;
	return fd;
}

int fp_open_handle(uint32_t s_dev, uint32_t bytes, int type, const void *handle)
{
	struct {
		struct file_handle h;
		unsigned char b[HANDLE_MAX];
	} fh;
	if (bytes > HANDLE_MAX) {
		errno = EINVAL;
		return -1;
	}
	fh.h.handle_bytes = bytes;
	fh.h.handle_type = type;
	memcpy(fh.h.f_handle, handle, bytes);
	int mfd = mount_fd(s_dev >> 20, s_dev & 0xfffff);
	if (mfd < 0)
		return -1;
	int fd = open_by_handle_at(mfd, &fh.h, O_PATH | O_CLOEXEC);
	int e = errno;
	close(mfd);
	errno = e;
	return fd;
}
