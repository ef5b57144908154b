/* Tables for inotify: inotify_file_entry (FileEntry field 13) and its
 * watches (field numbers from CRIU's fsnotify.proto: id 1, flags 2, fown 4,
 * wd 5; inotify_wd_entry: id 1, i_ino 2, mask 3, ignored_mask 4, s_dev 5,
 * wd 6, f_handle 7; and fh.proto's fh_entry: bytes 1, type 2, handle 3,
 * path 4, mnt_id 5). */
#include "images/msg_table.h"

#define T cr_fh
static const pb_fdesc fh_f[] = {
	F_REQ(1, T, U32, bytes), F_REQ(2, T, U32, type), F_REP_FIXED(3, T, U64, handle),
	F_STR(4, T, path), F_OPT(5, T, U32, mnt_id),
};
static DESC(fh_desc, "fh_entry", T, fh_f);
#undef T

#define T cr_inotify_wd
static const pb_fdesc iwd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U64, i_ino), F_REQ(3, T, U32, mask), F_REQ(4, T, U32, ignored_mask),
	F_REQ(5, T, U32, s_dev), F_REQ(6, T, U32, wd), F_MSG_REQ(7, T, f_handle, fh_desc),
};
static DESC(iwd_desc, "inotify_wd_entry", T, iwd_f);
#undef T

#define T cr_inotify
static const pb_fdesc ify_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_MSG_REQ(4, T, fown, cr_fown_desc),
	F_REPMSG_DYN(5, T, wd, iwd_desc),
};
DESC(cr_inotify_desc, "inotify_file_entry", T, ify_f);
#undef T
