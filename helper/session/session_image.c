#include "session_image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fp_spawn.h"

int fp_session_image_record(const char *dir, const char *container, const char *image, fp_error *err)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, FP_SESSION_IMAGE_RECORD);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fp_fail(err, errno, "cannot record the session's container in %s: %s", path, strerror(errno));
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s\n%s\n", container, image);
	int rc = write(fd, buf, (size_t)n) == n ? 0 : fp_fail(err, errno, "cannot write %s", path);
	close(fd);
	return rc;
}

static int buildah_rm(const char *verb, const char *what, fp_error *err)
{
	const char *argv[] = { "buildah", "--storage-driver", "vfs", verb, what, NULL };
	char out[2048];
	fp_spawn_opts so = { .timeout_ms = 120000 };
	fp_spawn_result r;
	if (fp_spawn(argv, &so, out, sizeof(out), &r, err) < 0)
		return fp_wrap(err, "buildah %s %s", verb, what);
	if (r.exit_code != 0 && !strstr(out, "not known") && !strstr(out, "image not known") &&
	    !strstr(out, "no such"))
		return fp_fail(err, EIO, "buildah %s %s failed (exit %d): %s; remove it by hand", verb, what,
			       r.exit_code, out);
	return 0;
}

int fp_session_image_release(const char *dir, fp_error *err)
{
	char path[PATH_MAX + 32], ctr[512] = "", image[512] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, FP_SESSION_IMAGE_RECORD);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fp_fail(err, errno, "%s: %s", path, strerror(errno));
	char buf[1100];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%511s %511s", ctr, image) < 1)
		return fp_fail(err, EINVAL, "%s is damaged; remove the session's buildah container by hand", path);
	if (buildah_rm("rm", ctr, err) < 0)
		return -1;
	/* Another session may have been built from the same image: buildah
	 * refuses to remove an image in use, and that is fine. */
	if (image[0]) {
		fp_error e2;
		buildah_rm("rmi", image, &e2);
	}
	return 0;
}
