/* The pipes, FIFOs and sockets of restored processes, under the names the
 * snapshots gave them (rollback_int.h).
 *
 * A rollback in place keeps these objects only when they are SNAP's: it
 * compares each fd's inode with the one SNAP recorded (rollback_fdkind.c).
 * But a full restore makes every pipe and socket anew, with new inode
 * numbers: without a note of which new object stands for which recorded
 * one, no snapshot taken before the restore could be rolled back to in
 * place again. So right after a full restore (fp_rollback_arm) each such fd
 * of the restored processes is looked at once, and "SNAP's inode X is now
 * inode Y" is kept in the session's tracking for as long as the helper
 * lives. Restores follow one another: X became Y, which a later snapshot
 * recorded and a later restore made Z; the note is followed from X to Z. */
#include "session/rollback_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dirty_tracker.h"
#include "images/criu_io.h"

/* Notes kept: when full, the older half goes (their objects are long
 * gone, or a rollback to such an old snapshot is a full restore again). */
#define OBJMAP_MAX 65536

bool rb_snap_object(const cr_fdinfo *fi, const cr_file *f, uint64_t *ino, mode_t *fmt)
{
	*ino = 0;
	switch (fi->type) {
	case CR_FD_PIPE:
		*fmt = S_IFIFO, *ino = f->has_pipe ? f->pipe.pipe_id : 0;
		return true;
	case CR_FD_FIFO:
		*fmt = S_IFIFO, *ino = f->has_fifo ? f->fifo.pipe_id : 0;
		return true;
	case CR_FD_UNIXSK:
		*fmt = S_IFSOCK, *ino = f->has_usk ? f->usk.ino : 0;
		return true;
	case CR_FD_INETSK:
		*fmt = S_IFSOCK, *ino = f->has_isk ? f->isk.ino : 0;
		return true;
	case CR_FD_PACKETSK:
	case CR_FD_NETLINKSK:
		*fmt = S_IFSOCK;
		return true;
	default:
		return false;
	}
}

static void note(struct fp_track *t, uint64_t was, uint64_t now)
{
	for (size_t i = 0; i < t->nobjmap; i++)
		if (t->objmap[i].was == was && t->objmap[i].now == now)
			return;
	if (t->nobjmap == OBJMAP_MAX) {
		memmove(t->objmap, t->objmap + OBJMAP_MAX / 2, (OBJMAP_MAX / 2) * sizeof(*t->objmap));
		t->nobjmap = OBJMAP_MAX / 2;
	}
	if (t->nobjmap == t->capobjmap) {
		size_t cap = t->capobjmap ? t->capobjmap * 2 : 64;
		void *n = realloc(t->objmap, cap * sizeof(*t->objmap));
		if (!n)
			return; /* without the note, a later rollback is a full restore */
		t->objmap = n, t->capobjmap = cap;
	}
	t->objmap[t->nobjmap].was = was;
	t->objmap[t->nobjmap].now = now;
	t->nobjmap++;
}

void rb_objmap_learn(struct fp_track *t, const char *snap_dir)
{
	int d = open(snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_pstree *ps = NULL;
	cr_file *files = NULL;
	size_t nps = 0, nfiles = 0;
	fp_error err;
	struct rb_file_at *by_id = NULL;
	if (d < 0 || cr_read_pstree(d, &ps, &nps, &err) || cr_read_files(d, &files, &nfiles, &err) ||
	    !(by_id = rb_files_index(files, nfiles)))
		nps = 0; /* no notes: a later rollback to this line is a full restore */
	for (size_t i = 0; i < nps; i++) {
		cr_ids ids;
		cr_fdinfo *fi = NULL;
		size_t nfi = 0;
		if (cr_read_ids(d, ps[i].pid, &ids, &err) || cr_read_fdinfo(d, ids.files_id, &fi, &nfi, &err))
			continue;
		for (size_t k = 0; k < nfi; k++) {
			const cr_file *f = rb_files_find(by_id, nfiles, fi[k].id);
			uint64_t ino;
			mode_t fmt;
			char lp[64];
			struct stat st;
			snprintf(lp, sizeof(lp), "/proc/%u/fd/%u", ps[i].pid, fi[k].fd);
			if (f && rb_snap_object(&fi[k], f, &ino, &fmt) && ino && stat(lp, &st) == 0 &&
			    (st.st_mode & S_IFMT) == fmt && st.st_ino != ino)
				note(t, ino, st.st_ino);
		}
		for (size_t k = 0; k < nfi; k++)
			cr_fdinfo_free(&fi[k]);
		free(fi);
	}
	free(by_id);
	if (files)
		cr_free_array(&cr_file_desc, files, nfiles);
	if (ps)
		cr_free_array(&cr_pstree_desc, ps, nps);
	if (d >= 0)
		close(d);
}

bool rb_objmap_same(const struct fp_track *t, uint64_t snap_ino, uint64_t live_ino)
{
	for (int hop = 0; hop < 16; hop++) {
		if (snap_ino == live_ino)
			return true;
		size_t i = t ? t->nobjmap : 0;
		while (i > 0 && t->objmap[i - 1].was != snap_ino)
			i--;
		if (!i)
			return false;
		snap_ino = t->objmap[i - 1].now; /* the latest restore's */
	}
	return false;
}
