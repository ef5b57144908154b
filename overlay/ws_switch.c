/* Switching the live workspace mount: freeze (snapshot) and restore.
 *
 * Both build a complete new overlay first and stack it on top of DIR while
 * the old one stays mounted underneath, so until the commit nothing is lost:
 * abort detaches the new mount and DIR shows the old one again. The commit
 * point is the rename of the state file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "overlay/ws_int.h"
#include "paths.h"

enum { SW_FREEZE = 1, SW_RESTORE = 2 };

static void sw_reset(struct fp_ws_switch *sw)
{
	memset(sw, 0, sizeof(*sw));
	sw->old_mnt_fd = sw->new_mnt_fd = -1;
}

static void remove_layer(struct fp_ws *ws, unsigned id)
{
	char p[PATH_MAX];
	ws_layer_path(ws, id, p, sizeof(p));
	fp_rm_rf(p, NULL);
	ws_work_path(ws, id, p, sizeof(p));
	fp_rm_rf(p, NULL);
}

static int make_upper(struct fp_ws *ws, unsigned id, fp_error *err)
{
	char lp[PATH_MAX], wp[PATH_MAX];
	ws_layer_path(ws, id, lp, sizeof(lp));
	ws_work_path(ws, id, wp, sizeof(wp));
	if (ws_inject("mkdir", err) < 0)
		return -1;
	if (mkdir(lp, 0755) < 0)
		return fp_fail(err, errno, "cannot create layer %s: %s", lp, strerror(errno));
	if (mkdir(wp, 0700) < 0) {
		int e = errno;
		rmdir(lp);
		return fp_fail(err, e, "cannot create %s: %s", wp, strerror(e));
	}
	return 0;
}

/* Common tail of both begins: new upper, new mount on top of DIR. */
static int sw_mount(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err)
{
	sw->new_upper = ws_alloc_id(ws);
	if (make_upper(ws, sw->new_upper, err) < 0)
		return -1;
	int m = ws_inject("mount", err) < 0 ? -1 : ws_build_mount(ws, sw->lowers, sw->nlowers,
								     sw->new_upper, err);
	if (m < 0)
		goto fail;
	if (ws_inject("attach", err) < 0 || ovl_attach(m, ws->base, err) < 0) {
		close(m);
		goto fail;
	}
	sw->new_mnt_fd = m;
	sw->new_mnt_id = ovl_mnt_id_fd(m);
	sw->old_mnt_fd = ws->mnt_fd;
	sw->old_mnt_id = ws->mnt_id;
	return 0;
fail:
	remove_layer(ws, sw->new_upper);
	return -1;
}

/* The start of a begin: the mounted workspace, locked for this switch. */
static int sw_begin_lock(struct fp_ws *ws, struct fp_ws_switch *sw, int kind, fp_error *err)
{
	sw_reset(sw);
	if (ws->mnt_fd < 0)
		return fp_fail(err, EINVAL, "the workspace is not mounted (fp_ws_mount first)");
	if (ws_lock(ws, err) < 0)
		return -1;
	sw->kind = kind;
	return 0;
}

/* The end of a begin: the new mount, or the undo of what begin did. */
static int sw_begin_mount(struct fp_ws *ws, struct fp_ws_switch *sw, double t0, fp_error *err)
{
	if (sw_mount(ws, sw, err) < 0)
		return -1;
	sw->begin_ms = ws_now_ms() - t0;
	return 0;
}

static void sw_begin_undo(struct fp_ws *ws, struct fp_ws_switch *sw)
{
	free(sw->lowers);
	sw_reset(sw);
	ws_unlock(ws);
}

int fp_ws_freeze_begin(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err)
{
	double t0 = ws_now_ms();
	if (sw_begin_lock(ws, sw, SW_FREEZE, err) < 0)
		return -1;
	/* The frozen upper goes on top; a finished squash replaces the oldest. */
	unsigned keep = ws->nlowers;
	if (ws->sq_id && ws->sq_n <= ws->nlowers)
		keep = ws->nlowers - ws->sq_n;
	sw->nlowers = 1 + keep + (keep < ws->nlowers ? 1 : 0);
	if (sw->nlowers + 1 > FP_WS_MAX_LOWERS) {
		fp_fail(err, E2BIG, "the workspace chain is %u layers deep, the kernel's limit is %d; "
			"squash it (fp_ws_maintain) before the next snapshot", sw->nlowers + 1,
			FP_WS_MAX_LOWERS);
		goto fail;
	}
	sw->lowers = malloc(sw->nlowers * sizeof(unsigned));
	if (!sw->lowers) {
		fp_fail(err, ENOMEM, "out of memory");
		goto fail;
	}
	sw->lowers[0] = ws->upper;
	memcpy(sw->lowers + 1, ws->lowers, keep * sizeof(unsigned));
	if (keep < ws->nlowers)
		sw->lowers[1 + keep] = ws->sq_id;
	sw->frozen = ws->upper;
	/* Dirty pages of the old upper reach the disk before it counts as a
	 * layer that survives a crash. Without sync a crash may lose the
	 * latest writes of the frozen layer, never mix two layers. */
	if (ws_inject("syncfs", err) < 0)
		goto fail;
	if (ws->opts.sync) {
		/* The fsmount fd is a path handle: syncfs needs an open file. */
		int fd = openat(ws->mnt_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0) {
			fp_fail(err, errno, "syncfs of the workspace: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
	}
	if (sw_begin_mount(ws, sw, t0, err) == 0)
		return 0;
fail:
	sw_begin_undo(ws, sw);
	return fp_wrap(err, "workspace freeze");
}

/* Removes the old mount from under the new one. A path to a covered mount
 * always resolves to the mount on top, so the new mount steps aside to
 * store/mnt for the moment the old one is detached. Processes are stopped;
 * only the helper could see DIR uncovered. */
static int swap_out_old(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err)
{
	char aside[PATH_MAX + 8];
	snprintf(aside, sizeof(aside), "%s/mnt", ws->store);
	if (mkdir(aside, 0700) < 0 && errno != EEXIST)
		return fp_fail(err, errno, "cannot create %s: %s", aside, strerror(errno));
	if (move_mount(sw->new_mnt_fd, "", AT_FDCWD, aside, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fp_fail(err, errno, "cannot move the new workspace mount aside: %s",
			       strerror(errno));
	int r = 0;
	if (umount2(ws->base, MNT_DETACH) < 0)
		r = fp_fail(err, errno, "cannot detach the old workspace mount: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if (move_mount(sw->new_mnt_fd, "", AT_FDCWD, ws->base, MOVE_MOUNT_F_EMPTY_PATH) == 0)
			return r;
	return fp_fail(err, errno, "cannot put the workspace mount back on %s: %s; the session "
		       "now sees the real directory: stop it", ws->base, strerror(errno));
}

static void adopt(struct fp_ws *ws, struct fp_ws_switch *sw)
{
	/* The records are written: failing to unmount the old mount only
	 * leaves it covered (read-only after a freeze), so it is not an error. */
	swap_out_old(ws, sw, NULL);
	close(sw->old_mnt_fd);
	free(ws->lowers);
	ws->lowers = sw->lowers;
	ws->nlowers = sw->nlowers;
	ws->upper = sw->new_upper;
	ws->mnt_fd = sw->new_mnt_fd;
	ws->mnt_id = sw->new_mnt_id;
	ws->sq_id = ws->sq_n = 0;
	sw->lowers = NULL;
	sw->old_mnt_fd = sw->new_mnt_fd = -1;
	sw->kind = 0;
	ws_unlock(ws);
}

int fp_ws_freeze_commit(struct fp_ws *ws, struct fp_ws_switch *sw, const char *snap, fp_error *err)
{
	if (sw->kind != SW_FREEZE)
		return fp_fail(err, EINVAL, "no workspace freeze in progress");
	char chain[PATH_MAX + 80];
	snprintf(chain, sizeof(chain), "%s/chains/%s", ws->store, snap);
	if (!*snap || strchr(snap, '/') || snap[0] == '.')
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "invalid snapshot name '%s'", snap);
	if (access(chain, F_OK) == 0)
		return fp_fail(err, EEXIST, "workspace snapshot '%s' already exists", snap);
	/* Read-only proves that no writer is left in the old mount: from now
	 * on its upper, the frozen layer, cannot change. */
	if (ws_inject("seal", err) < 0 || ovl_set_ro(sw->old_mnt_fd, true, err) < 0)
		return fp_wrap(err, "workspace freeze");
	if (ws_write_chain(ws, snap, sw->lowers, sw->nlowers, err) < 0)
		goto unseal;
	unsigned sq_id = ws->sq_id, sq_n = ws->sq_n;
	ws->sq_id = ws->sq_n = 0;
	if (ws_save_state(ws, sw->new_upper, sw->lowers, sw->nlowers, ws->next, err) < 0) {
		ws->sq_id = sq_id, ws->sq_n = sq_n;
		unlink(chain);
		goto unseal;
	}
	adopt(ws, sw);
	return 0;
unseal:
	ovl_set_ro(sw->old_mnt_fd, false, NULL);
	return fp_wrap(err, "workspace freeze");
}

static void sw_abort(struct fp_ws *ws, struct fp_ws_switch *sw)
{
	if (!sw->kind)
		return;
	if (sw->new_mnt_fd >= 0) {
		ovl_detach(sw->new_mnt_fd, NULL);
		close(sw->new_mnt_fd);
	}
	remove_layer(ws, sw->new_upper);
	free(sw->lowers);
	sw_reset(sw);
	ws_unlock(ws);
}

void fp_ws_freeze_abort(struct fp_ws *ws, struct fp_ws_switch *sw)
{
	sw_abort(ws, sw);
}

int fp_ws_restore_begin(struct fp_ws *ws, const char *snap, struct fp_ws_switch *sw, fp_error *err)
{
	double t0 = ws_now_ms();
	if (sw_begin_lock(ws, sw, SW_RESTORE, err) < 0)
		return -1;
	if (fp_ws_chain(ws->store, snap, &sw->lowers, &sw->nlowers, err) < 0)
		goto fail;
	for (unsigned i = 0; i < sw->nlowers; i++) {
		char p[PATH_MAX];
		ws_layer_path(ws, sw->lowers[i], p, sizeof(p));
		if (access(p, F_OK) < 0) {
			fp_fail(err, ENOENT, "layer %u of snapshot '%s' is missing (%s); the store "
				"was damaged outside forkpoint", sw->lowers[i], snap, p);
			goto fail;
		}
	}
	if (sw_begin_mount(ws, sw, t0, err) == 0)
		return 0;
fail:
	sw_begin_undo(ws, sw);
	return fp_wrap(err, "workspace restore of '%s'", snap);
}

int fp_ws_restore_commit(struct fp_ws *ws, struct fp_ws_switch *sw, fp_error *err)
{
	if (sw->kind != SW_RESTORE)
		return fp_fail(err, EINVAL, "no workspace restore in progress");
	unsigned sq_id = ws->sq_id, sq_n = ws->sq_n;
	ws->sq_id = ws->sq_n = 0; /* a pending squash was of the chain we leave */
	if (ws_save_state(ws, sw->new_upper, sw->lowers, sw->nlowers, ws->next, err) < 0) {
		ws->sq_id = sq_id, ws->sq_n = sq_n;
		return fp_wrap(err, "workspace restore");
	}
	adopt(ws, sw);
	return 0;
}

void fp_ws_restore_abort(struct fp_ws *ws, struct fp_ws_switch *sw)
{
	sw_abort(ws, sw);
}
