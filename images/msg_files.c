/* Tables for files.img, fdinfo-<id>.img, fs-<pid>.img, pipes-data.img and
 * tty-info.img (criu-image-format.md 3.7, 3.8), and filelocks.img. */
#include "images/msg_table.h"

#include <stdlib.h>

#define T cr_fown
static const pb_fdesc fown_f[] = {
	F_REQ(1, T, U32, uid), F_REQ(2, T, U32, euid), F_REQ(3, T, U32, signum),
	F_REQ(4, T, U32, pid_type), F_REQ(5, T, U32, pid),
};
DESC(cr_fown_desc, "fown_entry", T, fown_f);
#undef T

#define T cr_reg_file
static const pb_fdesc reg_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_REQ(3, T, U64, pos),
	F_MSG_REQ(5, T, fown, cr_fown_desc),
	{ 6, PB_T_STR, PB_REQ, "name", offsetof(T, name), PB_NONE, 0, 0, NULL, 0 },
	F_OPTD(7, T, S32, mnt_id, -1),
	F_OPT(8, T, U64, size), F_OPT(9, T, BOOL, ext), F_OPT(10, T, U32, mode),
	F_REP_DYN(11, T, U32, build_id),
	F_OPT(12, T, U32, checksum), F_OPT(13, T, U32, checksum_config),
	F_OPT(14, T, U32, checksum_parameter),
};
DESC(cr_reg_file_desc, "reg_file_entry", T, reg_f);
#undef T

#define T cr_pipe
static const pb_fdesc pipe_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, pipe_id), F_REQ(3, T, U32, flags),
	F_MSG_REQ(4, T, fown, cr_fown_desc),
};
DESC(cr_pipe_desc, "pipe_entry", T, pipe_f);
#undef T

#define T cr_tty_file
static const pb_fdesc ttyf_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, tty_info_id), F_REQ(3, T, U32, flags),
	F_MSG_REQ(4, T, fown, cr_fown_desc), F_OPT(6, T, U32, regf_id),
};
DESC(cr_tty_file_desc, "tty_file_entry", T, ttyf_f);
#undef T

#define T cr_eventfd
static const pb_fdesc efd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_MSG_REQ(3, T, fown, cr_fown_desc),
	F_REQ(4, T, U64, counter),
};
static DESC(efd_desc, "eventfd_file_entry", T, efd_f);
#undef T

#define T cr_epoll_tfd
static const pb_fdesc eptfd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, tfd), F_REQ(3, T, U32, events), F_REQ(4, T, U64, data),
	F_OPT(5, T, U32, dev), F_OPT(6, T, U64, inode), F_OPT(7, T, U64, pos),
};
static DESC(eptfd_desc, "eventpoll_tfd_entry", T, eptfd_f);
#undef T

#define T cr_eventpoll
static const pb_fdesc epfd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_MSG_REQ(3, T, fown, cr_fown_desc),
	F_REPMSG_DYN(4, T, tfd, eptfd_desc),
};
static DESC(epfd_desc, "eventpoll_file_entry", T, epfd_f);
#undef T

#define T cr_signalfd
static const pb_fdesc sgfd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_MSG_REQ(3, T, fown, cr_fown_desc),
	F_REQ(4, T, U64, sigmask),
};
static DESC(sgfd_desc, "signalfd_entry", T, sgfd_f);
#undef T

#define T cr_timerfd
static const pb_fdesc tfd_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_MSG_REQ(3, T, fown, cr_fown_desc),
	F_REQ(4, T, U32, clockid), F_REQ(5, T, U64, ticks), F_REQ(6, T, U32, settime_flags),
	F_REQ(7, T, U64, vsec), F_REQ(8, T, U64, vnsec), F_REQ(9, T, U64, isec), F_REQ(10, T, U64, insec),
};
static DESC(tfd_desc, "timerfd_entry", T, tfd_f);
#undef T

#define T cr_sk_opts
static const pb_fdesc skopts_f[] = {
	F_REQ(1, T, U32, so_sndbuf), F_REQ(2, T, U32, so_rcvbuf),
	F_REQ(3, T, U64, so_snd_tmo_sec), F_REQ(4, T, U64, so_snd_tmo_usec),
	F_REQ(5, T, U64, so_rcv_tmo_sec), F_REQ(6, T, U64, so_rcv_tmo_usec),
	F_OPT(7, T, BOOL, reuseaddr), F_OPT(8, T, U32, so_priority), F_OPT(9, T, U32, so_rcvlowat),
	F_OPT(10, T, U32, so_mark), F_OPT(11, T, BOOL, so_passcred),
	F_OPT(17, T, BOOL, so_reuseport), F_OPT(18, T, BOOL, so_broadcast), F_OPT(19, T, BOOL, so_keepalive),
	F_OPT(20, T, U32, tcp_keepcnt), F_OPT(21, T, U32, tcp_keepidle), F_OPT(22, T, U32, tcp_keepintvl),
	F_OPT(23, T, U32, so_oobinline), F_OPT(24, T, U32, so_linger),
};
static DESC(skopts_desc, "sk_opts_entry", T, skopts_f);
#undef T

#define T cr_inet_sk
static const pb_fdesc isk_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, ino), F_REQ(3, T, U32, family), F_REQ(4, T, U32, type),
	F_REQ(5, T, U32, proto), F_REQ(6, T, U32, state), F_REQ(7, T, U32, src_port), F_REQ(8, T, U32, dst_port),
	F_REQ(9, T, U32, flags), F_REQ(10, T, U32, backlog),
	F_REP_FIXED(11, T, U32, src_addr), F_REP_FIXED(12, T, U32, dst_addr),
	F_MSG_REQ(13, T, fown, cr_fown_desc), F_MSG_REQ(14, T, opts, skopts_desc),
	F_OPT(15, T, BOOL, v6only),
};
static DESC(isk_desc, "inet_sk_entry", T, isk_f);
#undef T

#define T cr_unix_sk
static const pb_fdesc usk_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, ino), F_REQ(3, T, U32, type), F_REQ(4, T, U32, state),
	F_REQ(5, T, U32, flags), F_REQ(6, T, U32, uflags), F_REQ(7, T, U32, backlog), F_REQ(8, T, U32, peer),
	F_MSG_REQ(9, T, fown, cr_fown_desc), F_MSG_REQ(10, T, opts, skopts_desc),
	F_BYTES_REQ(11, T, name), F_OPT(12, T, U32, shutdown), F_OPT(15, T, BOOL, deleted),
};
static DESC(usk_desc, "unix_sk_entry", T, usk_f);
#undef T

#define T cr_fifo
static const pb_fdesc fifo_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, pipe_id), F_OPT(3, T, U32, regf_id),
	F_OPT(4, T, BOOL, wait_writer),
};
static DESC(fifo_desc, "fifo_entry", T, fifo_f);
#undef T

#define T cr_file
static const pb_fdesc file_f[] = {
	F_REQ(1, T, U32, type), F_REQ(2, T, U32, id),
	F_MSG_OPT(3, T, reg, cr_reg_file_desc),
	F_MSG_OPT(4, T, isk, isk_desc),
	F_MSG_OPT(8, T, efd, efd_desc),
	F_MSG_OPT(9, T, epfd, epfd_desc),
	F_MSG_OPT(10, T, sgfd, sgfd_desc),
	F_MSG_OPT(12, T, tfd, tfd_desc),
	F_MSG_OPT(13, T, ify, cr_inotify_desc),
	F_MSG_OPT(16, T, usk, usk_desc),
	F_MSG_OPT(17, T, fifo, fifo_desc),
	F_MSG_OPT(18, T, pipe, cr_pipe_desc),
	F_MSG_OPT(19, T, tty, cr_tty_file_desc),
	F_MSG_OPT(20, T, memfd, cr_memfd_file_desc),
};
DESC(cr_file_desc, "file_entry", T, file_f);
#undef T

#define T cr_fdinfo
static const pb_fdesc fdinfo_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, flags), F_REQ(3, T, U32, type),
	F_REQ(4, T, U32, fd), F_STR(5, T, xattr_security_selinux),
};
DESC(cr_fdinfo_desc, "fdinfo_entry", T, fdinfo_f);
#undef T

#define T cr_fs
static const pb_fdesc fs_f[] = {
	F_REQ(1, T, U32, cwd_id), F_REQ(2, T, U32, root_id), F_OPT(3, T, U32, umask),
};
DESC(cr_fs_desc, "fs_entry", T, fs_f);
#undef T

#define T cr_pipe_data
static const pb_fdesc pdata_f[] = {
	F_REQ(1, T, U32, pipe_id), F_REQ(2, T, U32, bytes), F_OPT(3, T, U32, size),
};
DESC(cr_pipe_data_desc, "pipe_data_entry", T, pdata_f);
#undef T

#define T cr_termios
static const pb_fdesc termios_f[] = {
	F_REQ(1, T, U32, c_iflag), F_REQ(2, T, U32, c_oflag), F_REQ(3, T, U32, c_cflag),
	F_REQ(4, T, U32, c_lflag), F_REQ(5, T, U32, c_line), F_REQ(6, T, U32, c_ispeed),
	F_REQ(7, T, U32, c_ospeed), F_REP_FIXED(8, T, U32, c_cc),
};
static DESC(termios_desc, "termios_entry", T, termios_f);
#undef T

#define T cr_winsize
static const pb_fdesc winsize_f[] = {
	F_REQ(1, T, U32, ws_row), F_REQ(2, T, U32, ws_col),
	F_REQ(3, T, U32, ws_xpixel), F_REQ(4, T, U32, ws_ypixel),
};
static DESC(winsize_desc, "winsize_entry", T, winsize_f);
#undef T

#define T cr_tty_pty
static const pb_fdesc pty_f[] = { F_REQ(1, T, U32, index) };
static DESC(pty_desc, "tty_pty_entry", T, pty_f);
#undef T

#define T cr_tty_info
static const pb_fdesc ttyi_f[] = {
	F_REQ(1, T, U32, id), F_REQ(2, T, U32, type), F_REQ(3, T, BOOL, locked),
	F_REQ(4, T, BOOL, exclusive), F_REQ(5, T, BOOL, packet_mode),
	F_REQ(6, T, U32, sid), F_REQ(7, T, U32, pgrp), F_REQ(8, T, U32, rdev),
	F_MSG_OPT(9, T, termios, termios_desc),
	F_MSG_OPT(10, T, termios_locked, termios_desc),
	F_MSG_OPT(11, T, winsize, winsize_desc),
	F_MSG_OPT(12, T, pty, pty_desc),
	F_OPT(13, T, U32, dev), F_OPT(14, T, U32, uid), F_OPT(15, T, U32, gid),
};
DESC(cr_tty_info_desc, "tty_info_entry", T, ttyi_f);
#undef T

#define T cr_remap_fpath
static const pb_fdesc remap_f[] = {
	F_REQ(1, T, U32, orig_id), F_REQ(2, T, U32, remap_id), F_OPT(3, T, U32, remap_type),
};
DESC(cr_remap_fpath_desc, "remap_file_path_entry", T, remap_f);
#undef T

#define T cr_timeval
static const pb_fdesc timeval_f[] = { F_REQ(1, T, U64, tv_sec), F_REQ(2, T, U64, tv_usec) };
static DESC(timeval_desc, "timeval", T, timeval_f);
#undef T

#define T cr_ghost_file
static const pb_fdesc ghost_f[] = {
	F_REQ(1, T, U32, uid), F_REQ(2, T, U32, gid), F_REQ(3, T, U32, mode),
	F_OPT(4, T, U32, dev), F_OPT(5, T, U64, ino), F_OPT(6, T, U32, rdev),
	F_MSG_OPT(7, T, atim, timeval_desc), F_MSG_OPT(8, T, mtim, timeval_desc),
	F_OPT(9, T, BOOL, chunks), F_OPT(10, T, U64, size),
};
DESC(cr_ghost_file_desc, "ghost_file_entry", T, ghost_f);
#undef T

#define T cr_ghost_chunk
static const pb_fdesc gchunk_f[] = { F_REQ(1, T, U64, len), F_REQ(2, T, U64, off) };
DESC(cr_ghost_chunk_desc, "ghost_chunk_entry", T, gchunk_f);
#undef T

#define T cr_file_lock
static const pb_fdesc flock_f[] = {
	F_REQ(1, T, U32, flag), F_REQ(2, T, U32, type), F_REQ(3, T, I32, pid),
	F_REQ(4, T, I32, fd), F_REQ(5, T, U64, start), F_REQ(6, T, U64, len),
};
DESC(cr_file_lock_desc, "file_lock_entry", T, flock_f);
#undef T

void cr_file_free(cr_file *f)
{
	pb_free(&cr_file_desc, f);
}

void cr_fdinfo_free(cr_fdinfo *f)
{
	pb_free(&cr_fdinfo_desc, f);
}

void cr_pipe_data_free(cr_pipe_data *p)
{
	if (!p)
		return;
	free(p->data);
	p->data = NULL;
	pb_free(&cr_pipe_data_desc, p);
}
