/* Workspaces: a session's private overlayfs view of the user's directory DIR,
 * frozen layer by layer at snapshot time. DIR itself is never written.
 *
 * ---------------------------------------------------------------------------
 * Store ($SESSION_DIR/workspace/, owner-only)
 *   base            the absolute path of DIR (the bottom, read-only layer)
 *   state           the live session: upper=<id>, lowers=<ids newest first>,
 *                   next=<id>; written atomically (rename), the commit point
 *                   of every freeze, restore and squash switch
 *   layers/<id>/    overlay layers. The live upper is layers/<upper>/ from
 *                   the start, so freezing renames nothing: a layer is frozen
 *                   once it is a lower of the live state or of any chain, and
 *                   is never written again
 *   work/<id>/      the overlay workdir paired with upper <id>
 *   chains/<snap>   a snapshot's filesystem: "layers=<ids newest first>" on
 *                   top of base
 *   lock            flock: freeze/restore/squash/gc/rm exclude each other
 *   mnt/            empty; the new mount steps aside here for the instant the
 *                   old one is detached at commit (a path to a covered mount
 *                   always resolves to the mount on top of it)
 *
 * Mount options: redirect_dir=on (renaming a directory that lives in a lower
 * layer works instead of failing with EXDEV, which after a snapshot is every
 * directory), index=off, metacopy=off, xino=auto. index=on would keep hard
 * links to lower files intact on copy-up, but overlayfs refuses (EBUSY) to use
 * a directory as a lower while it is still the upper of a live mount, and
 * keeping the old mount alive until the processes are re-pointed is the core
 * of the freeze below. Consequence (plain overlayfs behaviour, documented in
 * tests): a hard link whose inode sits in a lower layer splits when one name
 * is written; links created since the last snapshot are kept, and every link
 * survives snapshot and restore as it was.
 *
 * ---------------------------------------------------------------------------
 * Integration into the session helper (session/session_*.c)
 *
 * run --workdir DIR (in the helper, before forking the target):
 *     fp_ws_private_ns(&err)               unshare(CLONE_NEWNS), / rslave
 *     fp_ws_create(SESSION/workspace, DIR, &opts, &ws, &err)
 *     fp_ws_mount(ws, &err)                DIR now shows the overlay
 *   then fork the target: it inherits the namespace and sees DIR through the
 *   overlay. Keep `ws` open for the session's lifetime (it holds the lock fd,
 *   an O_PATH fd of the real DIR and the live mount's fd).
 *
 * snap NAME (every thread of every session process stopped):
 *     fp_ws_switch sw;
 *     fp_ws_freeze_begin(ws, &sw, &err)
 *       syncfs (opts.sync), a new empty upper, a new overlay mount
 *       (lowers = the old upper, now frozen, + the old lowers + DIR) stacked
 *       on top of DIR. The old mount stays underneath until commit.
 *     for each process P of the session:
 *       fp_ws_scan_refs(P, sw.old_mnt_id, ws's DIR, &refs, &n, &err)
 *       for each ref (they reference the OLD mount, whose upper is now frozen):
 *         FD   open(ref.path) in P with ref.flags minus O_CREAT|O_EXCL|O_TRUNC,
 *              lseek to ref.pos, dup3 over ref.fd (keep O_CLOEXEC), close;
 *              ref.path is DIR/rel, which now resolves in the new mount
 *         CWD  chdir(ref.path) in P (ROOT likewise with chroot, rare)
 *         MAP  only for shared writable mappings (FP_WS_REF_MAP_SHARED_W):
 *              open ref.path O_RDWR, mmap(ref.start, len, prot,
 *              MAP_SHARED|MAP_FIXED, fd, ref.offset), close. Private and
 *              read-only mappings may stay: they never write to the file.
 *         DELETED refs (unlinked while open) need nothing: the inode is in no
 *              layer's namespace, so writing it cannot change a frozen layer.
 *     fp_ws_freeze_commit(ws, &sw, NAME, &err)
 *       makes the old mount read-only: this FAILS with EBUSY if any process
 *       still holds a writable fd or shared writable mapping into it, which
 *       proves every writer was re-pointed; then writes chains/NAME and the
 *       state (the commit point) and detaches the old mount.
 *     On any failure (begin, a re-point, commit): fp_ws_freeze_abort(ws, &sw),
 *       then re-point the refs already moved again, from the SAME list (after
 *       the abort DIR/rel resolves in the old mount once more; do not rescan:
 *       an fd in the detached new mount no longer reads back as DIR/rel), then
 *       resume. The workspace, the mounts and the store are exactly as before
 *       (tests/unit/test_overlay.c injects a failure at every step).
 *     The memory dump may run before or after the commit within the same
 *     stop; if the memory part fails after the commit, fp_ws_rm(ws, NAME).
 *   after resuming the processes:
 *     fp_ws_maintain(ws, &err)             squashes when the chain is deep
 *
 * restore SNAP (old processes stopped or killed):
 *     fp_ws_restore_begin(ws, SNAP, &sw, &err)
 *       a new overlay of SNAP's chain with a fresh upper, stacked on DIR
 *     create the restored processes (they open DIR/rel and resolve in it)
 *     fp_ws_restore_commit(ws, &sw, &err)  state := SNAP's chain (atomic),
 *                                          old mount detached
 *     on failure: fp_ws_restore_abort(ws, &sw). A crash before the state
 *     rename leaves the old state, after it the new one, never a mix.
 *
 * rm SNAP:       fp_ws_rm(ws, SNAP) then fp_ws_gc(ws)
 * gc:            fp_ws_gc(ws): removes layers and workdirs no chain and not
 *                the live state reference. Safe from another process (the
 *                CLI) while the session runs: it takes the store lock.
 * diff A B:      fp_ws_diff (offline, no mount needed).
 *
 * A session started without --workdir has no store; every function here
 * takes the store directory, so nothing else needs to know.
 * --------------------------------------------------------------------------- */
#ifndef FP_WORKSPACE_H
#define FP_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "fp_error.h"

#define FP_WS_MAX_LOWERS 500      /* the kernel's OVL_MAX_STACK, DIR included */
#define FP_WS_SQUASH_AT 64        /* default depth at which fp_ws_maintain squashes */

struct fp_ws_opts {
	bool sync;          /* syncfs the upper at freeze, fsync the records
			       (frozen layers survive a machine crash) */
	unsigned squash_at; /* 0: FP_WS_SQUASH_AT; fp_ws_maintain merges the
			       oldest layers when the live chain is deeper */
};

struct fp_ws;

/* unshare(CLONE_NEWNS) and make every mount a slave, so the workspace
 * mount never propagates out and host mounts still propagate in. */
int fp_ws_private_ns(fp_error *err);

/* Creates a store for base directory `base` at `store` (must not exist or be
 * empty). Does not mount. */
int fp_ws_create(const char *store, const char *base, const struct fp_ws_opts *o,
		 struct fp_ws **out, fp_error *err);
/* Opens an existing store (opts may be NULL: defaults). No mount is made:
 * enough for diff, rm, gc, and for fp_ws_mount. */
int fp_ws_open(const char *store, const struct fp_ws_opts *o, struct fp_ws **out, fp_error *err);
void fp_ws_close(struct fp_ws *ws);

/* Mounts the live state on DIR in the caller's mount namespace. */
int fp_ws_mount(struct fp_ws *ws, fp_error *err);

const char *fp_ws_base(const struct fp_ws *ws);
/* The mount id (statx STATX_MNT_ID) of the live workspace mount, 0 if none. */
uint64_t fp_ws_mnt_id(const struct fp_ws *ws);
/* Frozen layers under the live upper (the live mount uses this + 1 lowers). */
unsigned fp_ws_depth(const struct fp_ws *ws);

struct fp_ws_switch {
	int kind;               /* internal */
	int old_mnt_fd;         /* the mount being replaced (still under DIR) */
	int new_mnt_fd;         /* the new mount, on top of DIR after begin */
	uint64_t old_mnt_id, new_mnt_id;
	unsigned new_upper;     /* layer id of the new live upper */
	unsigned frozen;        /* freeze: layer id that was frozen */
	unsigned nlowers;       /* lower ids of the new mount (DIR excluded) */
	unsigned *lowers;
	double begin_ms;        /* time spent in begin */
};

int fp_ws_freeze_begin(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err);
int fp_ws_freeze_commit(struct fp_ws *ws, struct fp_ws_switch *sw, const char *snap, fp_error *err);
void fp_ws_freeze_abort(struct fp_ws *ws, struct fp_ws_switch *sw);

int fp_ws_restore_begin(struct fp_ws *ws, const char *snap, struct fp_ws_switch *sw, fp_error *err);
int fp_ws_restore_commit(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err);
void fp_ws_restore_abort(struct fp_ws *ws, struct fp_ws_switch *sw);

/* Squashes when the live chain is deeper than opts.squash_at: merges the
 * oldest layers into one new layer (whiteouts, opaque dirs and redirects
 * resolved), then switches the live mount to the shorter chain at the next
 * freeze. Runs while the processes run: it only reads frozen layers.
 * Cost: a copy of the merged layers' data (reflinked where the filesystem can),
 * never of DIR. *did (may be NULL) tells whether it squashed. */
int fp_ws_maintain(struct fp_ws *ws, bool *did, fp_error *err);

/* Snapshots known to the store, sorted; *out malloc'd array of malloc'd names. */
int fp_ws_snapshots(const char *store, char ***out, size_t *n, fp_error *err);
/* The chain of a snapshot: layer ids newest first (DIR not included). */
int fp_ws_chain(const char *store, const char *snap, unsigned **ids, unsigned *n, fp_error *err);

int fp_ws_rm(struct fp_ws *ws, const char *snap, fp_error *err);
struct fp_ws_gc_stats {
	unsigned layers_removed, layers_kept, workdirs_removed;
};
int fp_ws_gc(struct fp_ws *ws, struct fp_ws_gc_stats *st, fp_error *err);

/* Branches (helper/session_branch.c): a new store `store` whose live state
 * is snapshot `snap` of `from_store` with a fresh empty upper. The snapshot's
 * layers are not copied: the new store's layers/<id> are symbolic links to
 * the real layer directories, and every store that owns one of them gets a
 * pin (pins/<branch>: the branch store and the layer ids), which its gc
 * honours for as long as the branch store exists. Does not mount. */
int fp_ws_create_branch(const char *store, const char *from_store, const char *snap,
			const struct fp_ws_opts *o, struct fp_ws **out, fp_error *err);
/* True when a store that still exists pins layers of `store`. */
bool fp_ws_pinned(const char *store);

/* diff: what changed from snapshot A to snapshot B (B's view against A's). */
enum fp_ws_change { FP_WS_ADDED = 'A', FP_WS_MODIFIED = 'M', FP_WS_DELETED = 'D' };
#define FP_WS_D_CONTENT 0x01   /* file bytes, or symlink target */
#define FP_WS_D_MODE    0x02
#define FP_WS_D_OWNER   0x04
#define FP_WS_D_XATTR   0x08
#define FP_WS_D_TYPE    0x10   /* file became a directory, ... */
#define FP_WS_D_MTIME   0x20   /* only the modification time differs */
struct fp_ws_diff_entry {
	char change;           /* an fp_ws_change */
	unsigned what;         /* FP_WS_D_* for MODIFIED */
	char type;             /* 'f' file, 'd' dir, 'l' symlink, 'o' other (B's, else A's) */
	char *path;            /* relative to DIR, no leading '/' */
};
/* Entries sorted by path. *out malloc'd; free with fp_ws_diff_free. Only the
 * layers the two chains do not share are walked. Works on a handle from
 * fp_ws_open outside the session's namespace, or on the session's own handle
 * inside it (DIR is read through the fd opened before it was covered). */
int fp_ws_diff(struct fp_ws *ws, const char *snap_a, const char *snap_b,
	       struct fp_ws_diff_entry **out, size_t *n, fp_error *err);
void fp_ws_diff_free(struct fp_ws_diff_entry *e, size_t n);
/* "M content,mode  path" lines (what `forkpoint diff` prints). */
void fp_ws_diff_print(FILE *f, const struct fp_ws_diff_entry *e, size_t n);

/* References of process `pid` into the mount `mnt_id` whose root is seen at
 * `mount_path` (DIR): fds, cwd, root and file mappings. */
enum fp_ws_ref_kind { FP_WS_REF_FD, FP_WS_REF_CWD, FP_WS_REF_ROOT, FP_WS_REF_MAP };
#define FP_WS_REF_DELETED     0x1   /* unlinked while open: no path to reopen */
#define FP_WS_REF_MAP_SHARED_W 0x2  /* a shared writable mapping: must be redone */
#define FP_WS_REF_WRITABLE    0x4   /* fd open for writing */
struct fp_ws_ref {
	enum fp_ws_ref_kind kind;
	unsigned flags;             /* FP_WS_REF_* */
	int fd;                     /* FD */
	int open_flags;             /* FD: from fdinfo */
	long long pos;              /* FD: from fdinfo */
	uint64_t start, end, offset;/* MAP */
	int prot;                   /* MAP: PROT_* */
	char path[4096];            /* absolute, as the process sees it (DIR/rel) */
	/* FD: set by the caller when the fd shares its open file description
	 * with an earlier ref (share_pid's share_fd): re-pointed as a copy of
	 * that one, not opened on its own; 0 otherwise */
	pid_t share_pid;
	int share_fd;
};
int fp_ws_scan_refs(pid_t pid, uint64_t mnt_id, const char *mount_path, struct fp_ws_ref **out,
		    size_t *n, fp_error *err);

#endif
