/* The small images: fs-<pid>.img (cwd, root, umask), inventory.img,
 * timens-0.img; and the /proc reading helpers of the dumper. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "images/criu_io.h"

long dump_read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	int e = errno;
	close(fd);
	errno = e;
	buf[got] = '\0';
	return (long)got;
}

int dump_status_field(pid_t tid, const char *key, char *out, size_t len)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (dump_read_proc(path, buf, sizeof(buf)) <= 0)
		return -1;
	size_t kl = strlen(key);
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, key, kl) && l[kl] == ':') {
			const char *v = l + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t n = strcspn(v, "\n");
			if (n >= len)
				n = len - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
	}
	return -1;
}

int dump_proc_fs(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	char path[64], dir[PATH_MAX];
	const char *which[2] = { "cwd", "root" };
	uint32_t *ids[2] = { &p->fs.cwd_id, &p->fs.root_id };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", p->pid, which[i]);
		ssize_t n = readlink(path, dir, sizeof(dir) - 1);
		if (n <= 0)
			return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
		dir[n] = '\0';
		if (strstr(dir, " (deleted)"))
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "the %s of %d (%s) was deleted; CRIU cannot restore it: move the process elsewhere first",
					    which[i], p->pid, dir);
		if (dump_file_path(c, dir, O_RDONLY, ids[i], err))
			return -1;
	}
	char v[32];
	if (dump_status_field(p->pid, "Umask", v, sizeof(v)) == 0) {
		p->fs.has_umask = true;
		p->fs.umask = (uint32_t)strtoul(v, NULL, 8);
	}
	return 0;
}

int dump_write_fs(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	return cr_write_fs(c->dirfd, (uint32_t)p->pid, &p->fs, err);
}

/* The target's view of a clock: host value plus its time namespace offset
 * (/proc/PID/timens_offsets; absent or zero in the initial namespace). */
static void target_clock(pid_t pid, clockid_t id, cr_timespec *out)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	int64_t sec = ts.tv_sec, nsec = ts.tv_nsec;
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	if (dump_read_proc(path, buf, sizeof(buf)) > 0) {
		const char *name = id == CLOCK_MONOTONIC ? "monotonic" : "boottime";
		char *l = strstr(buf, name);
		long long os = 0, on = 0;
		if (l && sscanf(l + strlen(name), " %lld %lld", &os, &on) == 2) {
			sec += os;
			nsec += on;
			if (nsec >= 1000000000) {
				sec++;
				nsec -= 1000000000;
			}
		}
	}
	out->tv_sec = (uint64_t)sec;
	out->tv_nsec = (uint64_t)nsec;
}

int dump_write_misc(struct dump_ctx *c, fp_error *err)
{
	cr_inventory inv = { 0 };
	inv.img_version = CR_IMG_VERSION;
	inv.has_fdinfo_per_id = true;
	inv.fdinfo_per_id = true;
	inv.has_root_ids = true;
	inv.root_ids.vm_id = inv.root_ids.files_id = inv.root_ids.fs_id = inv.root_ids.sighand_id = 1;
	if (c->ipcns_own) { /* dump_ipcns.c: the tasks' namespace differs from the dumper's 1 */
		inv.root_ids.has_ipc_ns_id = true;
		inv.root_ids.ipc_ns_id = 1;
		inv.has_ns_per_id = inv.ns_per_id = true;
	}
	if (cr_write_inventory(c->dirfd, &inv, err))
		return -1;
	cr_timens tn;
	target_clock(c->procs[0].pid, CLOCK_MONOTONIC, &tn.monotonic);
	target_clock(c->procs[0].pid, CLOCK_BOOTTIME, &tn.boottime);
	return cr_write_timens(c->dirfd, 0, &tn, err);
}
