#include "api/session_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/control.h"

int api_session_open(const char *name, struct fp_session_info *info, fp_error *err)
{
	if (fp_session_load(name, info, err) < 0)
		return -1;
	if (!fp_session_helper_alive(info))
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ESRCH,
				    "session '%s' is not running (its helper has exited)", name);
	return 0;
}

int api_session_call(const struct fp_session_info *info, const char *req, char *body, size_t len,
		     int timeout_ms, fp_error *err)
{
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	char *resp = malloc(FP_CTL_MAX_MSG);
	if (!resp)
		return fp_fail(err, ENOMEM, "out of memory");
	if (fp_ctl_request(sock, req, resp, FP_CTL_MAX_MSG, timeout_ms, err) < 0) {
		free(resp);
		return -1;
	}
	char *nl = strchr(resp, '\n');
	const char *rest = nl ? nl + 1 : "";
	if (!strncmp(resp, "ok", 2)) {
		snprintf(body, len, "%s", rest);
		free(resp);
		return 0;
	}
	int code = 1;
	if (!strncmp(resp, "error ", 6))
		code = atoi(resp + 6);
	fp_fail_code(err, code ? code : 1, 0, "%s", rest);
	free(resp);
	return -1;
}

void api_session_settled(const struct fp_session_info *info)
{
	char body[512];
	fp_error ign;
	if (fp_session_helper_alive(info))
		(void)api_session_call(info, "status", body, sizeof(body), 60 * 1000, &ign);
}

const char *api_kv(const char *body, const char *key, char *val, size_t len)
{
	size_t kl = strlen(key);
	val[0] = '\0';
	for (const char *p = body; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1;
			if (vl >= len)
				vl = len - 1;
			memcpy(val, p + kl + 1, vl);
			val[vl] = '\0';
			break;
		}
		p = nl ? nl + 1 : NULL;
	}
	return val;
}
