/* The paths of mappings, each kept once.
 *
 * A process can have tens of thousands of mappings (vm.max_map_count is
 * 65530 by default) but few distinct mapped files. A VMA record holding a
 * PATH_MAX buffer cost 4 KiB per mapping, and a dump holds several lists of
 * them at once (before and during the stop, the pre-copy's, the copy's):
 * 60,000 mappings made the dumper use about 1 GB. Records now point into
 * this table, so a mapping costs its small record and a path costs its
 * length once.
 *
 * VmFlags texts are kept here too (a few distinct sets).
 *
 * Strings are never freed: records are copied by value between lists and
 * the session helper keeps some lists between snapshots (write tracking),
 * so no list owns them. The table grows with the distinct paths the
 * process ever sees, not with mappings or dumps. Thread-safe. */
#include "dump/dump_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char **slots; /* open addressing, power-of-two size */
static size_t nslots, nused;

static uint64_t hash_str(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static bool grow(void)
{
	size_t n = nslots ? nslots * 2 : 256;
	const char **ns = calloc(n, sizeof(*ns));
	if (!ns)
		return false;
	for (size_t i = 0; i < nslots; i++)
		if (slots[i]) {
			size_t j = hash_str(slots[i], strlen(slots[i])) & (n - 1);
			while (ns[j])
				j = (j + 1) & (n - 1);
			ns[j] = slots[i];
		}
	free(slots);
	slots = ns;
	nslots = n;
	return true;
}

const char *dump_path_intern(const char *s, size_t len)
{
	static const char empty[] = "";
	if (!len)
		return empty;
	pthread_mutex_lock(&lock);
	const char *r = NULL;
	if ((nused + 1) * 2 > nslots && !grow())
		goto out;
	size_t j = hash_str(s, len) & (nslots - 1);
	while (slots[j]) {
		if (!strncmp(slots[j], s, len) && slots[j][len] == '\0') {
			r = slots[j];
			goto out;
		}
		j = (j + 1) & (nslots - 1);
	}
	char *copy = strndup(s, len);
	if (copy) {
		slots[j] = copy;
		nused++;
		r = copy;
	}
out:
	pthread_mutex_unlock(&lock);
	return r;
}
