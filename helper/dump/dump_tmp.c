/* The temporary directory a dump writes into before it is renamed into
 * place, and the removal of those whose dump died (kill -9, a crash).
 *
 * The name carries its owner, ".BASE.forkpoint-tmp-PID.START-XXXXXX"
 * (START: the owner's start time in clock ticks, so a reused pid is told
 * apart), so the next dump into the same parent directory can tell a
 * left-over from a dump still running and remove only the left-overs.
 * Directories of the older form without an owner are removed once a day
 * old. Only directories of the caller's are touched, never through a link. */
#include "dump/dump_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "procfs.h"

#define TMP_MARK ".forkpoint-tmp-"

static unsigned long long start_of(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) == 0 ? st.starttime : 0;
}

void dump_tmp_template(char *buf, size_t len, const char *parent, const char *base)
{
	snprintf(buf, len, "%s/.%s" TMP_MARK "%d.%llu-XXXXXX", parent, base, (int)getpid(), start_of(getpid()));
}

/* Whether the dump that made name is gone. */
static bool owner_gone(const char *name, const struct stat *st)
{
	const char *m = strstr(name, TMP_MARK);
	int pid;
	unsigned long long start;
	if (m && sscanf(m + strlen(TMP_MARK), "%d.%llu-", &pid, &start) == 2 && pid > 0)
		return start_of(pid) != start;
	return st->st_mtime < time(NULL) - 24 * 3600;
}

int dump_tmp_reap(const char *parent, char *note, size_t len)
{
	note[0] = '\0';
	DIR *d = opendir(parent);
	if (!d)
		return 0;
	int n = 0;
	size_t used = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] != '.' || !strstr(e->d_name, TMP_MARK) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != geteuid() || !owner_gone(e->d_name, &st))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
		if (fp_rm_rf(path, NULL) < 0)
			continue;
		int w = snprintf(note + used, len - used, "%s%s", n ? ", " : "", e->d_name);
		if (w > 0 && used + (size_t)w < len)
			used += (size_t)w;
		n++;
	}
	closedir(d);
	return n;
}
