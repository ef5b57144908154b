/* The CRIU engine: `criu restore` on the image directory. CRIU only reads a
 * plain pages-<id>.img, so when the snapshot holds forkpoint's compressed
 * page store a private copy of the directory is made on tmpfs: symlinks to
 * every image plus the decompressed pages. The snapshot itself is never
 * modified. CRIU can hang (futex and wait4 waits without deadlines), so it
 * runs under one; on failure its log's error lines are reported. */
#include "restore/rst_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/criu.h"
#include "restore/restore.h"
#include "common/paths.h"
#include "common/fp_spawn.h"

/* Fills the directory out (open as sfd) with symlinks to dir's images and
 * the decompressed pages. An incremental snapshot's parent (its `parent`
 * link) is staged the same way into out/.parent, recursively: CRIU reads
 * the parents' plain pages too. */
static int stage_into(const char *dir, const char *out, int depth, fp_error *err)
{
	if (depth > 4096)
		return fp_fail(err, ELOOP, "%s: the chain of parent snapshots is too deep (a loop?)", dir);
	char adir[PATH_MAX];
	if (!realpath(dir, adir))
		return fp_fail(err, errno, "%s: %s", dir, strerror(errno));
	DIR *d = opendir(adir);
	if (!d)
		return fp_fail(err, errno, "cannot read %s: %s", adir, strerror(errno));
	int sfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = sfd < 0 ? fp_fail(err, errno, "%s: %s", out, strerror(errno)) : 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char target[PATH_MAX + 300];
		if (!strcmp(e->d_name, "parent")) {
			char pin[PATH_MAX + 16], pout[PATH_MAX + 16];
			snprintf(pin, sizeof(pin), "%s/parent", adir);
			snprintf(pout, sizeof(pout), "%s/.parent", out);
			if (mkdir(pout, 0700) < 0)
				rc = fp_fail(err, errno, "staging the parent of %s: %s", adir, strerror(errno));
			else if (!(rc = stage_into(pin, pout, depth + 1, err)) && symlinkat(pout, sfd, "parent"))
				rc = fp_fail(err, errno, "staging the parent link: %s", strerror(errno));
			continue;
		}
		snprintf(target, sizeof(target), "%s/%s", adir, e->d_name);
		if (symlinkat(target, sfd, e->d_name))
			rc = fp_fail(err, errno, "staging %s: %s", e->d_name, strerror(errno));
	}
	rewinddir(d);
	while (!rc && (e = readdir(d))) {
		unsigned id;
		char tail[8];
		if (sscanf(e->d_name, "pages-%u.%7s", &id, tail) == 2 && !strcmp(tail, "fpz")) {
			char plain[64];
			pgs_plain_name(plain, sizeof(plain), id);
			if (faccessat(sfd, plain, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			if (pgs_decompress(sfd, id, false, err))
				rc = fp_wrap(err, "decompressing the pages for criu");
			unlinkat(sfd, e->d_name, 0); /* the symlink to the store */
		}
	}
	if (sfd >= 0)
		close(sfd);
	closedir(d);
	return rc;
}

/* A tmpfs copy of dir with the page stores decompressed, or NULL (and
 * *need = false) when dir has none and no parent. */
static int stage_dir(const char *dir, char *out, size_t len, bool *need, fp_error *err)
{
	*need = false;
	DIR *d = opendir(dir);
	if (!d)
		return fp_fail(err, errno, "cannot read %s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, "parent"))
			*need = true; /* the parents may hold compressed pages */
		if (!strncmp(e->d_name, "pages-", 6) && strstr(e->d_name, ".fpz")) {
			char plain[300];
			snprintf(plain, sizeof(plain), "%.*s.img", (int)(strstr(e->d_name, ".fpz") - e->d_name), e->d_name);
			if (faccessat(dirfd(d), plain, F_OK, 0) != 0)
				*need = true;
		}
	}
	closedir(d);
	if (!*need)
		return 0;
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(out, len, "%s/forkpoint-restore-XXXXXX", tmp);
	if (!mkdtemp(out))
		return fp_fail(err, errno, "cannot create a staging directory in %s: %s", tmp, strerror(errno));
	int rc = stage_into(dir, out, 0, err);
	if (rc)
		fp_rm_rf(out, NULL);
	return rc;
}

static bool has_file_locks(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/filelocks.img", dir);
	return stat(path, &st) == 0 && st.st_size > 8;
}

/* The first error lines of a CRIU log, for the message. */
static void log_errors(const char *log, char *out, size_t len)
{
	out[0] = 0;
	FILE *f = fopen(log, "re");
	if (!f)
		return;
	char line[512];
	size_t used = 0;
	int n = 0;
	while (fgets(line, sizeof(line), f) && n < 4)
		if (strstr(line, "Error") || strstr(line, "error (")) {
			line[strcspn(line, "\n")] = 0;
			used += (size_t)snprintf(out + used, len - used, "\n  %s", line);
			if (used >= len)
				break;
			n++;
		}
	fclose(f);
}

int rst_criu_restore(const struct fp_restore_opts *o, const char *log_path, int timeout_ms, pid_t *pid,
		     fp_error *err)
{
	const char *dir = o->dir;
	int verbosity = o->verbosity;
	bool adopt = o->adopt;
	char criu[PATH_MAX], staged[PATH_MAX] = "";
	if (fp_criu_find(criu, sizeof(criu), err))
		return -1;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fp_fail(err, errno, "%s: %s", dir, strerror(errno));
	cr_pstree *ps = NULL;
	size_t nps = 0;
	int rc = cr_read_pstree(dfd, &ps, &nps, err);
	close(dfd);
	if (rc)
		return -1;
	bool shell_job = nps && ps[0].sid != ps[0].pid;
	pid_t root = nps ? (pid_t)ps[0].pid : 0;
	cr_free_array(&cr_pstree_desc, ps, nps);
	bool need;
	if (stage_dir(dir, staged, sizeof(staged), &need, err))
		return -1;
	char alog[PATH_MAX];
	if (!log_path[0]) /* no state directory for a log (see rst_log_default) */
		snprintf(alog, sizeof(alog), "/dev/null");
	else if (log_path[0] == '/')
		snprintf(alog, sizeof(alog), "%s", log_path);
	else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return fp_fail(err, errno, "getcwd: %s", strerror(errno));
		snprintf(alog, sizeof(alog), "%s/%s", cwd, log_path);
	}
	char vflag[8];
	snprintf(vflag, sizeof(vflag), "-v%d", verbosity > 0 && verbosity <= 4 ? verbosity : 4);
	const char *argv[24];
	int n = 0;
	argv[n++] = criu;
	argv[n++] = "restore";
	argv[n++] = "-D";
	argv[n++] = need ? staged : dir;
	argv[n++] = "-d";
	argv[n++] = vflag;
	argv[n++] = "-o";
	argv[n++] = alog;
	if (shell_job)
		argv[n++] = "--shell-job";
	/* CRIU takes file locks back only when told to (it dumps them only
	 * when told to, too). */
	if (has_file_locks(need ? staged : dir))
		argv[n++] = "--file-locks";
	/* CRIU restores established connections only when told to */
	if (cr_has_tcp_streams(need ? staged : dir))
		argv[n++] = "--tcp-established";
	for (size_t i = 0; i < o->ncriu_flags && i < 8; i++) {
		bool dup = false;
		for (int k = 1; k < n && !dup; k++)
			dup = !strcmp(argv[k], o->criu_flags[i]);
		if (!dup)
			argv[n++] = o->criu_flags[i];
	}
	argv[n] = NULL;
	if (adopt)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	char out[4096];
	fp_spawn_result res;
	fp_spawn_opts so = { .timeout_ms = timeout_ms, .stdin_tty = shell_job, .nofile_up = true };
	rc = fp_spawn(argv, &so, out, sizeof(out), &res, err);
	if (need)
		fp_rm_rf(staged, NULL);
	if (rc) {
		if (res.timed_out)
			err->exit_code = FP_EXIT_TIMEOUT;
		char errs[1024];
		log_errors(alog, errs, sizeof(errs));
		return fp_wrap(err, "criu restore (log %s)%s", alog, errs);
	}
	if (res.exit_code != 0) {
		char errs[1024];
		log_errors(alog, errs, sizeof(errs));
		return fp_fail(err, EIO, "criu restore failed with exit code %d; its log %s says:%s", res.exit_code, alog,
			       errs[0] ? errs : "\n  (no error lines)");
	}
	*pid = root;
	return 0;
}
