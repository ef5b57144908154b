#include "kill_tree.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define TREE_MAX 4096

/* Appends the children of pid (from every one of its threads) to list. */
static void add_children(pid_t pid, pid_t *list, int *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && *n < TREE_MAX) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[96];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		int c;
		while (*n < TREE_MAX && fscanf(f, "%d", &c) == 1) {
			int seen = 0;
			for (int i = 0; i < *n && !seen; i++)
				seen = list[i] == c;
			if (!seen)
				list[(*n)++] = c;
		}
		fclose(f);
	}
	closedir(d);
}

int fp_kill_tree(pid_t root)
{
	pid_t *list = malloc(sizeof(pid_t) * TREE_MAX);
	if (!list) {
		kill(root, SIGKILL);
		return 1;
	}
	int n = 0;
	list[n++] = root;
	/* Breadth first: each process is stopped before its children are read,
	 * so a fork that was under way when we looked is caught by a second
	 * pass over the (now frozen) tree. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++) {
			if (pass == 0)
				kill(list[i], SIGSTOP);
			add_children(list[i], list, &n);
			if (pass == 1)
				kill(list[i], SIGSTOP);
		}
	for (int i = 0; i < n; i++)
		kill(list[i], SIGKILL);
	free(list);
	return n;
}
