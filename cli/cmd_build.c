/* forkpoint build: a Dockerfile built by buildah and a shell session started
 * inside the image (forkpoint_build). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

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
	forkpoint_info *r;
	forkpoint_error err;
	if (forkpoint_build(dir, dockerfile, name, cli_signals, &r, &err) < 0)
		return cli_report_api(&err);
	if (forkpoint_info_get(r, "warning")[0])
		fprintf(stderr, "forkpoint: warning: %s\n", forkpoint_info_get(r, "warning"));
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 0);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "name", forkpoint_info_get(r, "name"));
		fp_json_int(&j, "pid", forkpoint_info_int(r, "pid"));
		static const char *const keys[] = { "image", "container", "root", "workdir" };
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			fp_json_str(&j, keys[k], forkpoint_info_get(r, keys[k]));
		fp_json_obj_end(&j);
		putchar('\n');
	} else {
		printf("%s\n", forkpoint_info_get(r, "name"));
	}
	forkpoint_info_free(r);
	return 0;
}
