/* Internals shared by the overlay/ sources. Not for other components. */
#ifndef FP_WS_INT_H
#define FP_WS_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "overlay/workspace.h"

struct fp_ws {
	char store[PATH_MAX];
	char base[PATH_MAX];
	struct fp_ws_opts opts;
	int lock_fd;
	int base_fd;          /* O_PATH of the real DIR (opened before mounting on it) */
	int mnt_fd;           /* the live mount (fsmount fd), -1 when not mounted */
	uint64_t mnt_id;
	/* live state */
	unsigned upper;
	unsigned next;
	unsigned nlowers;
	unsigned *lowers;     /* newest first */
	/* a squash waiting for the next switch: layer sq_id replaces the
	 * oldest sq_n lowers */
	unsigned sq_id, sq_n;
	int lock_depth;
};

/* ---- ovl_mount.c ---- */
struct ovl_mount_spec {
	const char *const *lowers; /* paths, newest first; the last one is DIR */
	unsigned nlowers;
	const char *upper, *work;  /* NULL for a read-only view */
};
/* Builds a detached overlay mount; returns its fd (fsmount) or -1. */
int ovl_build(const struct ovl_mount_spec *s, fp_error *err);
/* Stacks the detached mount fd on top of `target`. */
int ovl_attach(int mnt_fd, const char *target, fp_error *err);
/* Lazily detaches the mount referenced by fd (even when covered). */
int ovl_detach(int mnt_fd, fp_error *err);
/* Sets or clears read-only on the mount referenced by fd. */
int ovl_set_ro(int mnt_fd, bool ro, fp_error *err);
uint64_t ovl_mnt_id_fd(int fd);

/* ---- ws_store.c ---- */
int ws_lock(struct fp_ws *ws, fp_error *err);
void ws_unlock(struct fp_ws *ws);
int ws_save_state(struct fp_ws *ws, unsigned upper, const unsigned *lowers, unsigned n,
		  unsigned next, fp_error *err);
int ws_write_chain(struct fp_ws *ws, const char *snap, const unsigned *ids, unsigned n,
		   fp_error *err);
int ws_load_state(struct fp_ws *ws, fp_error *err);
int ws_read_ids(const char *line, unsigned **ids, unsigned *n);
void ws_layer_path(const struct fp_ws *ws, unsigned id, char *buf, size_t len);
void ws_work_path(const struct fp_ws *ws, unsigned id, char *buf, size_t len);
/* Builds the mount for lowers ids (+ DIR) with upper/work `upper` (0: none). */
int ws_build_mount(struct fp_ws *ws, const unsigned *lowers, unsigned n, unsigned upper,
		   fp_error *err);
unsigned ws_alloc_id(struct fp_ws *ws);
/* FORKPOINT_WS_FAIL=step makes that step fail (tests of the rollback paths). */
int ws_inject(const char *step, fp_error *err);
double ws_now_ms(void);

/* ---- ws_branch.c ---- */
/* The layer ids that pins of live branch stores name (malloc'd); pins
 * whose branch store is gone are removed. */
int ws_pinned_ids(const char *store, unsigned **ids, size_t *n, fp_error *err);

/* ---- ovl_layers.c: reading layers the way overlayfs does ---- */
bool ovl_is_whiteout(const struct stat *st);
bool ovl_is_opaque(int dirfd, const char *name);
/* Returns 1 and the redirect in buf if the dir has one, 0 if not. */
int ovl_redirect(int dirfd, const char *name, char *buf, size_t len);

/* A view: layer roots newest first (the last usually DIR). A root of -1 is
 * a "continuation": the layers below a squash, never read, only recorded. */
struct ovl_view {
	unsigned n;
	int *root;            /* O_PATH|O_DIRECTORY fds of the layer roots */
};
int ovl_view_open(struct ovl_view *v, const char *const *paths, unsigned n, fp_error *err);
void ovl_view_close(struct ovl_view *v);
/* A view of the workspace's layers ids[0..n-1] (newest first) with one more
 * root below them: the workspace's base with `base` set, else a
 * continuation (-1). */
int ws_view_open(const struct fp_ws *ws, const unsigned *ids, unsigned n, int base, struct ovl_view *v,
		 fp_error *err);

/* Where a merged directory's content comes from in each layer. */
struct ovl_dirstate {
	unsigned n;
	unsigned end;         /* layers >= end are hidden (opaque, whiteout, non-dir) */
	char **lp;            /* per layer: the dir's path there ("" = root), NULL if
				 absent; for a continuation layer, the path to look up */
};
int ovl_dirstate_root(struct ovl_dirstate *d, unsigned n);
void ovl_dirstate_free(struct ovl_dirstate *d);

/* Entry `name` of merged dir `parent`: 1 when it exists, with the topmost
 * layer (*top), its lstat, its path in that layer (*tpath, malloc'd, may be
 * NULL) and, for a dir, its dirstate (child, may be NULL); 0 when absent or
 * whited out; -1 on error. */
int ovl_lookup(const struct ovl_view *v, const struct ovl_dirstate *parent, const char *name,
	       unsigned *top, struct stat *st, char **tpath, struct ovl_dirstate *child);
/* Same for a whole relative path ("" is the root). */
int ovl_resolve(const struct ovl_view *v, const char *path, unsigned *top, struct stat *st,
		char **tpath, struct ovl_dirstate *ds);
/* Candidate names of a merged dir (union of its layers, sorted, some may be
 * whited out: ovl_lookup decides). */
int ovl_list(const struct ovl_view *v, const struct ovl_dirstate *d, char ***names, size_t *n);
void ovl_free_names(char **names, size_t n);

/* Copies a non-directory (file: sparse-aware, reflinked where possible;
 * symlink; device; fifo; socket) and its metadata. */
int ovl_copy_node(const char *src, const struct stat *st, const char *dst, fp_error *err);
/* Owner, mode, xattrs (trusted.overlay.* excluded) and times of src onto dst. */
int ovl_copy_meta(const char *src, const struct stat *st, const char *dst, fp_error *err);
/* lstat of `path` inside the layer rooted at `root`, never leaving it nor
 * following a symlink. */
int ovl_lstat_in(int root, const char *path, struct stat *st);
void ovl_join(char *buf, size_t len, const char *dir, const char *name);

#endif
