/* Tables for memfd: memfd_file_entry (FileEntry field 20) and
 * memfd_inode_entry, the entries of memfd.img (criu-image-format.md 1.2;
 * field numbers from CRIU's memfd.proto). */
#include "images/msg_table.h"

#define T cr_memfd_file
static const pb_fdesc memfd_file_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_REQ(3, T, U64, pos),
	F_MSG_REQ(4, T, fown, cr_fown_desc), F_REQ(5, T, U32, inode_id),
};
DESC(cr_memfd_file_desc, "memfd_file_entry", T, memfd_file_f);
#undef T

#define T cr_memfd_inode
static const pb_fdesc memfd_inode_f[] = {
	{ 1, PB_T_STR, PB_REQ, "name", offsetof(T, name), PB_NONE, 0, 0, NULL, 0 },
	F_REQ(2, T, U32, uid), F_REQ(3, T, U32, gid), F_REQ(4, T, U64, size),
	F_REQ(5, T, U32, shmid), F_REQ(6, T, U32, seals), F_REQ(7, T, U64, inode_id),
};
DESC(cr_memfd_inode_desc, "memfd_inode_entry", T, memfd_inode_f);
#undef T
