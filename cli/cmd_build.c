/* forkpoint build: a root file system from a Dockerfile, made by buildah (the
 * tool Debian ships for it; forkpoint does not parse Dockerfiles), and a shell
 * session started inside it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "api/api_int.h"
#include "fp_spawn.h"
#include "cli_json.h"
#include "paths.h"
#include "session/session_helper.h"
#include "session/session_image.h"
#include "session/session_store.h"

static const char build_usage[] =
	"usage: forkpoint build [--name NAME] [-f DOCKERFILE] [--json] DIR\n"
	"\n"
	"Builds DIR's Dockerfile with buildah (storage driver vfs) and starts a shell\n"
	"session inside the image, as `run --shell` does: its own mount namespace and\n"
	"root (the image, with /proc, /dev and /tmp), the image's ENV, and the\n"
	"image's WORKDIR as the session's workspace and working directory (/workspace\n"
	"when the image sets none). Snapshots capture the workspace with the memory;\n"
	"the rest of the image is the container's and is not rolled back. Prints the\n"
	"session name; drive it with `forkpoint exec`. Root only.\n"
	"\n"
	"  --name NAME      session name (default bash-N)\n"
	"  -f DOCKERFILE    the Dockerfile (default DIR/Dockerfile)\n"
	"  --json           name, pid, image, container, root and workdir as JSON\n";

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

static int build_and_run(const char *dir, const char *dockerfile, const char *name, int json, fp_error *err)
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
		return fp_fail_code(err, FP_EXIT_NOTFOUND, errno, "%s: %s; give one with -f", df, strerror(errno));

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
				 .env = env, .sigs = api_signals(cli_signals) };
	struct fp_run_result res;
	fflush(NULL);
	if (fp_run_session(&o, &res, err) < 0)
		goto done;
	/* Which container holds the session's root, for `forkpoint cleanup`. */
	char sdir[PATH_MAX];
	fp_error e2;
	if (fp_session_dir(res.name, sdir, sizeof(sdir), &e2) < 0 ||
	    fp_session_image_record(sdir, ctr, image, &e2) < 0)
		fprintf(stderr, "forkpoint: warning: %s; `buildah rm %s` frees the image's container\n", e2.msg, ctr);
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 0);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "name", res.name);
		fp_json_int(&j, "pid", res.target_pid);
		fp_json_str(&j, "image", image);
		fp_json_str(&j, "container", ctr);
		fp_json_str(&j, "root", root);
		fp_json_str(&j, "workdir", wd);
		fp_json_obj_end(&j);
		putchar('\n');
	} else {
		printf("%s\n", res.name);
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

int cmd_build(int argc, char **argv)
{
	const char *name = NULL, *dockerfile = NULL, *dir = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(build_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--name") || !strcmp(a, "-n")) {
			if (++i >= argc)
				return cli_usage_error(build_usage, "--name needs a value");
			name = argv[i];
		} else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
			if (++i >= argc)
				return cli_usage_error(build_usage, "-f needs a Dockerfile");
			dockerfile = argv[i];
		} else if (a[0] == '-' || dir) {
			return cli_usage_error(build_usage, "unexpected argument '%s'", a);
		} else {
			dir = a;
		}
	}
	if (!dir)
		return cli_usage_error(build_usage, "no build directory given");
	fp_error err;
	if (build_and_run(dir, dockerfile, name, json, &err) < 0)
		return cli_report(&err);
	return 0;
}
