/* forkpoint_build: a root file system from a Dockerfile, made by buildah
 * (the tool Debian ships for it; forkpoint does not parse Dockerfiles), and a
 * shell session started inside it. */
#include "api/api_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_spawn.h"
#include "paths.h"
#include "session/session_helper.h"
#include "session/session_image.h"
#include "session/session_store.h"

#define BUILD_TIMEOUT_MS (30 * 60 * 1000)
#define OUT_MAX (64 * 1024)

/* Runs buildah with args; on success its output, without the last newline,
 * is in out. Failures carry the tail of what buildah printed. */
static int buildah(const char *const *args, char *out, int timeout_ms, fp_error *err)
{
	const char *argv[16] = { "buildah", "--storage-driver", "vfs" };
	size_t n = 3;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	fp_spawn_opts so = { .timeout_ms = timeout_ms };
	fp_spawn_result r;
	if (fp_spawn(argv, &so, out, OUT_MAX, &r, err) < 0)
		return fp_wrap(err, "buildah %s (is buildah installed? `make setup` installs it)", argv[3]);
	size_t len = strlen(out);
	while (len && out[len - 1] == '\n')
		out[--len] = '\0';
	if (r.exit_code != 0) {
		const char *tail = len > 1500 ? out + len - 1500 : out;
		return fp_fail(err, EIO, "buildah %s failed (exit %d):\n%s", argv[3], r.exit_code, tail);
	}
	return 0;
}

static const char *last_line(const char *s)
{
	const char *nl = strrchr(s, '\n');
	return nl ? nl + 1 : s;
}

/* The image's ENV as an environ array (strings in buf), with PATH, HOME and
 * TERM added when the image does not set them. */
static char **image_env(char *buf)
{
	size_t n = 0;
	for (char *p = buf; *p; p++)
		n += *p == '\n';
	char **env = calloc(n + 5, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	int has_path = 0, has_home = 0, has_term = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strchr(line, '='))
			continue;
		has_path |= !strncmp(line, "PATH=", 5);
		has_home |= !strncmp(line, "HOME=", 5);
		has_term |= !strncmp(line, "TERM=", 5);
		env[k++] = line;
	}
	if (!has_path)
		env[k++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	if (!has_home)
		env[k++] = "HOME=/root";
	if (!has_term)
		env[k++] = "TERM=dumb";
	env[k] = NULL;
	return env;
}

static int build_and_run(const char *dir, const char *dockerfile, const char *name, const forkpoint_signals *sigs,
			 forkpoint_info *info, fp_error *err)
{
	if (geteuid() != 0)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "forkpoint build needs root (buildah storage and the session's mounts)");
	if (name && fp_session_name_valid(name, err) < 0)
		return -1;
	char ctx[PATH_MAX], df[PATH_MAX];
	if (!realpath(dir, ctx))
		return fp_fail_code(err, FP_EXIT_NOTFOUND, errno, "build context %s: %s", dir, strerror(errno));
	if (dockerfile)
		snprintf(df, sizeof(df), "%s", dockerfile);
	else
		snprintf(df, sizeof(df), "%s/Dockerfile", ctx);
	if (access(df, R_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, errno, "%s: %s; name the Dockerfile to use (`forkpoint build -f FILE`)", df, strerror(errno));

	char *out = malloc(OUT_MAX), *image = malloc(256), *ctr = malloc(256), *root = malloc(PATH_MAX),
	     *wd = malloc(PATH_MAX), *envbuf = malloc(OUT_MAX);
	char **env = NULL;
	int rc = -1;
	if (!out || !image || !ctr || !root || !wd || !envbuf) {
		fp_fail(err, ENOMEM, "out of memory");
		goto done;
	}
	const char *bud[] = { "bud", "--layers=false", "-f", df, ctx, NULL };
	if (buildah(bud, out, BUILD_TIMEOUT_MS, err) < 0)
		goto done;
	snprintf(image, 256, "%s", last_line(out)); /* bud ends with the image id */
	const char *from[] = { "from", "--pull-never", image, NULL };
	if (buildah(from, out, 120000, err) < 0)
		goto done;
	snprintf(ctr, 256, "%s", last_line(out));
	const char *mnt[] = { "mount", ctr, NULL };
	if (buildah(mnt, out, 120000, err) < 0)
		goto done;
	snprintf(root, PATH_MAX, "%s", last_line(out));
	const char *iwd[] = { "inspect", "--type", "image", "--format", "{{.OCIv1.Config.WorkingDir}}", image, NULL };
	if (buildah(iwd, out, 120000, err) < 0)
		goto done;
	snprintf(wd, PATH_MAX, "%s", out[0] && strcmp(out, "/") ? out : "/workspace");
	const char *ienv[] = { "inspect", "--type", "image", "--format",
			       "{{range .OCIv1.Config.Env}}{{println .}}{{end}}", image, NULL };
	if (buildah(ienv, envbuf, 120000, err) < 0)
		goto done;
	env = image_env(envbuf);
	char workdir[PATH_MAX * 2];
	snprintf(workdir, sizeof(workdir), "%s%s", root, wd);
	if (fp_mkdir_p(workdir, 0755, err) < 0)
		goto done;

	struct fp_run_opts o = { .name = name, .shell = 1, .workdir = workdir, .root = root, .cwd = wd,
				 .env = env, .sigs = api_signals(sigs) };
	struct fp_run_result res;
	fflush(NULL);
	if (fp_run_session(&o, &res, err) < 0)
		goto done;
	/* Which container holds the session's root, for forkpoint_cleanup. */
	char sdir[PATH_MAX];
	fp_error e2;
	char warning[1024] = "";
	if (fp_session_dir(res.name, sdir, sizeof(sdir), &e2) < 0 ||
	    fp_session_image_record(sdir, ctr, image, &e2) < 0)
		snprintf(warning, sizeof(warning), "%s; `buildah rm %s` frees the image's container", e2.msg, ctr);
	if (api_info_set(info, "name", "%s", res.name) < 0 || api_info_set(info, "pid", "%d", res.target_pid) < 0 ||
	    api_info_set(info, "image", "%s", image) < 0 || api_info_set(info, "container", "%s", ctr) < 0 ||
	    api_info_set(info, "root", "%s", root) < 0 || api_info_set(info, "workdir", "%s", wd) < 0 ||
	    api_info_set(info, "warning", "%s", warning) < 0) {
		/* The session runs: say which, even without the rest. */
		fp_fail(err, ENOMEM, "out of memory after session '%s' was started", res.name);
		goto done;
	}
	rc = 0;
done:
	free(env);
	free(out);
	free(image);
	free(ctr);
	free(root);
	free(wd);
	free(envbuf);
	return rc;
}

int forkpoint_build(const char *context, const char *dockerfile, const char *name, const forkpoint_signals *sigs,
		    forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!context || !*context)
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "forkpoint_build needs a build context directory");
	forkpoint_info *r = api_info_new();
	if (!r)
		return api_info_out(NULL, res, err);
	fp_error e = { 0 };
	if (build_and_run(context, dockerfile, name, sigs, r, &e) < 0) {
		forkpoint_info_free(r);
		return api_error(err, &e);
	}
	return api_info_out(r, res, err);
}
