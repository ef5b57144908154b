#include "fp_fault_pause.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool fp_fault_named(const char *point)
{
	const char *e = getenv("FORKPOINT_FAULT");
	size_t n = strlen(point);
	for (const char *p = e ? e : ""; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncmp(p, point, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

void fp_fault_pause(const char *point, const char *dir) { fp_fault_pause_until(point, dir, NULL); }

void fp_fault_pause_until(const char *point, const char *dir, bool (*until)(void))
{
	if (!fp_fault_named(point))
		return;
	char paused[4096], go[4096];
	snprintf(paused, sizeof(paused), "%s/%s.paused", dir, point);
	snprintf(go, sizeof(go), "%s/%s.go", dir, point);
	int fd = open(paused, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	struct timespec step = { 0, 5000000 };
	for (int i = 0; i < 60 * 200 && access(go, F_OK) < 0 && !(until && until()); i++)
		nanosleep(&step, NULL); /* a test's deadline, not synchronisation */
	unlink(go);
	unlink(paused);
}

bool fp_fault_num(const char *pattern, long *n)
{
	const char *e = getenv("FORKPOINT_FAULT");
	for (const char *p = e ? e : ""; *p;) {
		size_t len = strcspn(p, ",");
		char tok[128];
		int end = -1;
		if (len < sizeof(tok)) {
			memcpy(tok, p, len);
			tok[len] = '\0';
			if (sscanf(tok, pattern, n, &end) == 1 && end == (int)len)
				return true;
		}
		p += len + (p[len] == ',');
	}
	return false;
}
