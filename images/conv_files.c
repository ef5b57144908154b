/* File messages: files.img and its kinds, fdinfo, fs, pipe data, tty info,
 * memfd inodes, remaps, ghost files and file locks (criu-image-format.md
 * 3.7, 3.8), between criu_msgs.h and the code protoc-c generates from
 * proto/files.proto. */
#include <stdlib.h>
#include "images/pb_conv.h"
#include "images/proto/files.pb-c.h"

#define FOWN(X) X(VAL, uid) X(VAL, euid) X(VAL, signum) X(VAL, pid_type) X(VAL, pid)
PB_CONV(cr_fown, cr_fown, Fp__FownEntry, fp__fown_entry, FOWN);

#define REG(X) X(VAL, id) X(VAL, flags) X(VAL, pos) X(MSG, fown, cr_fown) X(RSTR, name) \
	X(OPT, mnt_id) X(OPT, size) X(OPT, ext) X(OPT, mode) X(ADYN, build_id) X(OPT, checksum) \
	X(OPT, checksum_config) X(OPT, checksum_parameter)
PB_CONV(cr_reg_file, cr_reg_file, Fp__RegFileEntry, fp__reg_file_entry, REG);

#define PIPE(X) X(VAL, id) X(VAL, pipe_id) X(VAL, flags) X(MSG, fown, cr_fown)
PB_CONV(cr_pipe, cr_pipe, Fp__PipeEntry, fp__pipe_entry, PIPE);

#define TTYF(X) X(VAL, id) X(VAL, tty_info_id) X(VAL, flags) X(MSG, fown, cr_fown) X(OPT, regf_id)
PB_CONV(cr_tty_file, cr_tty_file, Fp__TtyFileEntry, fp__tty_file_entry, TTYF);

#define EFD(X) X(VAL, id) X(VAL, flags) X(MSG, fown, cr_fown) X(VAL, counter)
PB_CONV(cr_eventfd, cr_eventfd, Fp__EventfdFileEntry, fp__eventfd_file_entry, EFD);

#define EPTFD(X) X(VAL, id) X(VAL, tfd) X(VAL, events) X(VAL, data) X(OPT, dev) X(OPT, inode) \
	X(OPT, pos)
PB_CONV(cr_epoll_tfd, cr_epoll_tfd, Fp__EventpollTfdEntry, fp__eventpoll_tfd_entry, EPTFD);

#define EPFD(X) X(VAL, id) X(VAL, flags) X(MSG, fown, cr_fown) X(MDYN, tfd, cr_epoll_tfd)
PB_CONV(cr_eventpoll, cr_eventpoll, Fp__EventpollFileEntry, fp__eventpoll_file_entry, EPFD);

#define SGFD(X) X(VAL, id) X(VAL, flags) X(MSG, fown, cr_fown) X(VAL, sigmask)
PB_CONV(cr_signalfd, cr_signalfd, Fp__SignalfdEntry, fp__signalfd_entry, SGFD);

#define TFD(X) X(VAL, id) X(VAL, flags) X(MSG, fown, cr_fown) X(VAL, clockid) X(VAL, ticks) \
	X(VAL, settime_flags) X(VAL, vsec) X(VAL, vnsec) X(VAL, isec) X(VAL, insec)
PB_CONV(cr_timerfd, cr_timerfd, Fp__TimerfdEntry, fp__timerfd_entry, TFD);

#define SKOPTS(X) X(VAL, so_sndbuf) X(VAL, so_rcvbuf) X(VAL, so_snd_tmo_sec) \
	X(VAL, so_snd_tmo_usec) X(VAL, so_rcv_tmo_sec) X(VAL, so_rcv_tmo_usec) X(OPT, reuseaddr) \
	X(OPT, so_priority) X(OPT, so_rcvlowat) X(OPT, so_mark) X(OPT, so_passcred) \
	X(OPT, so_reuseport) X(OPT, so_broadcast) X(OPT, so_keepalive) X(OPT, tcp_keepcnt) \
	X(OPT, tcp_keepidle) X(OPT, tcp_keepintvl) X(OPT, so_oobinline) X(OPT, so_linger)
PB_CONV(cr_sk_opts, cr_sk_opts, Fp__SkOptsEntry, fp__sk_opts_entry, SKOPTS);

#define ISK(X) X(VAL, id) X(VAL, ino) X(VAL, family) X(VAL, type) X(VAL, proto) X(VAL, state) \
	X(VAL, src_port) X(VAL, dst_port) X(VAL, flags) X(VAL, backlog) X(AFIX, src_addr) \
	X(AFIX, dst_addr) X(MSG, fown, cr_fown) X(MSG, opts, cr_sk_opts) X(OPT, v6only) \
	X(OPT, shutdown)
PB_CONV(cr_inet_sk, cr_inet_sk, Fp__InetSkEntry, fp__inet_sk_entry, ISK);

#define FPERMS(X) X(VAL, mode) X(VAL, uid) X(VAL, gid)
PB_CONV(cr_file_perms, cr_file_perms, Fp__FilePermsEntry, fp__file_perms_entry, FPERMS);

#define USK(X) X(VAL, id) X(VAL, ino) X(VAL, type) X(VAL, state) X(VAL, flags) X(VAL, uflags) \
	X(VAL, backlog) X(VAL, peer) X(MSG, fown, cr_fown) X(MSG, opts, cr_sk_opts) X(BYTES, name) \
	X(OPT, shutdown) X(OMSG, file_perms, cr_file_perms) X(OPT, deleted)
PB_CONV(cr_unix_sk, cr_unix_sk, Fp__UnixSkEntry, fp__unix_sk_entry, USK);

#define SCM(X) X(VAL, type) X(ADYN, rights)
PB_CONV(cr_scm, cr_scm, Fp__ScmEntry, fp__scm_entry, SCM);

#define UCRED(X) X(VAL, uid) X(VAL, gid) X(VAL, pid)
PB_CONV(cr_sk_ucred, cr_sk_ucred, Fp__SkUcredEntry, fp__sk_ucred_entry, UCRED);

/* The message's bytes (data) follow the entry in the file: not a field. */
#define SKPKT(X) X(VAL, id_for) X(VAL, length) X(MDYN, scm, cr_scm) X(OMSG, ucred, cr_sk_ucred)
PB_CONV(cr_sk_packet, cr_sk_packet, Fp__SkPacketEntry, fp__sk_packet_entry, SKPKT);

void cr_sk_packet_free(cr_sk_packet *p)
{
	if (!p)
		return;
	free(p->data);
	p->data = NULL;
	pb_free(&cr_sk_packet_desc, p);
}

/* The queues' bytes follow the entry in the file: not fields. */
#define TCPS(X) X(VAL, inq_len) X(VAL, inq_seq) X(VAL, outq_len) X(VAL, outq_seq) X(VAL, opt_mask) \
	X(VAL, snd_wscale) X(VAL, mss_clamp) X(OPT, rcv_wscale) X(OPT, timestamp) X(OPT, cork) \
	X(OPT, nodelay) X(OPT, unsq_len) X(OPT, snd_wl1) X(OPT, snd_wnd) X(OPT, max_window) \
	X(OPT, rcv_wnd) X(OPT, rcv_wup) X(OPT, fp_urg_off) X(OPT, fp_snd_urg_off)
PB_CONV(cr_tcp_stream, cr_tcp_stream, Fp__TcpStreamEntry, fp__tcp_stream_entry, TCPS);

void cr_tcp_stream_free(cr_tcp_stream *t)
{
	if (!t)
		return;
	free(t->inq);
	free(t->outq);
	t->inq = t->outq = NULL;
	pb_free(&cr_tcp_stream_desc, t);
}

#define FH(X) X(VAL, bytes) X(VAL, type) X(AFIX, handle) X(STR, path) X(OPT, mnt_id)
PB_CONV(cr_fh, cr_fh, Fp__FhEntry, fp__fh_entry, FH);

#define INOTIFY_WD(X) X(VAL, id) X(VAL, i_ino) X(VAL, mask) X(VAL, ignored_mask) X(VAL, s_dev) \
	X(VAL, wd) X(MSG, f_handle, cr_fh)
PB_CONV(cr_inotify_wd, cr_inotify_wd, Fp__InotifyWdEntry, fp__inotify_wd_entry, INOTIFY_WD);

#define INOTIFY(X) X(VAL, id) X(VAL, flags) X(MSG, fown, cr_fown) X(MDYN, wd, cr_inotify_wd)
PB_CONV(cr_inotify, cr_inotify, Fp__InotifyFileEntry, fp__inotify_file_entry, INOTIFY);

#define FIFO(X) X(VAL, id) X(VAL, pipe_id) X(OPT, regf_id) X(OPT, wait_writer)
PB_CONV(cr_fifo, cr_fifo, Fp__FifoEntry, fp__fifo_entry, FIFO);

#define MEMFD_FILE(X) X(VAL, id) X(VAL, flags) X(VAL, pos) X(MSG, fown, cr_fown) X(VAL, inode_id)
PB_CONV(cr_memfd_file, cr_memfd_file, Fp__MemfdFileEntry, fp__memfd_file_entry, MEMFD_FILE);

#define MEMFD_INODE(X) X(RSTR, name) X(VAL, uid) X(VAL, gid) X(VAL, size) X(VAL, shmid) \
	X(VAL, seals) X(VAL, inode_id)
PB_CONV(cr_memfd_inode, cr_memfd_inode, Fp__MemfdInodeEntry, fp__memfd_inode_entry, MEMFD_INODE);

#define FILE_ENTRY(X) X(VAL, type) X(VAL, id) X(OMSG, reg, cr_reg_file) X(OMSG, isk, cr_inet_sk) \
	X(OMSG, efd, cr_eventfd) X(OMSG, epfd, cr_eventpoll) X(OMSG, sgfd, cr_signalfd) \
	X(OMSG, tfd, cr_timerfd) X(OMSG, usk, cr_unix_sk) X(OMSG, fifo, cr_fifo) \
	X(OMSG, pipe, cr_pipe) X(OMSG, tty, cr_tty_file) X(OMSG, memfd, cr_memfd_file) \
	X(OMSG, ify, cr_inotify)
PB_CONV(cr_file, cr_file, Fp__FileEntry, fp__file_entry, FILE_ENTRY);

#define FDINFO(X) X(VAL, id) X(VAL, flags) X(VAL, type) X(VAL, fd) X(STR, xattr_security_selinux)
PB_CONV(cr_fdinfo, cr_fdinfo, Fp__FdinfoEntry, fp__fdinfo_entry, FDINFO);

#define FS(X) X(VAL, cwd_id) X(VAL, root_id) X(OPT, umask)
PB_CONV(cr_fs, cr_fs, Fp__FsEntry, fp__fs_entry, FS);

/* data and fifo are not in the message: criu_io handles them */
#define PIPE_DATA(X) X(VAL, pipe_id) X(VAL, bytes) X(OPT, size)
PB_CONV(cr_pipe_data, cr_pipe_data, Fp__PipeDataEntry, fp__pipe_data_entry, PIPE_DATA);

#define TERMIOS(X) X(VAL, c_iflag) X(VAL, c_oflag) X(VAL, c_cflag) X(VAL, c_lflag) X(VAL, c_line) \
	X(VAL, c_ispeed) X(VAL, c_ospeed) X(AFIX, c_cc)
PB_CONV(cr_termios, cr_termios, Fp__TermiosEntry, fp__termios_entry, TERMIOS);

#define WINSIZE(X) X(VAL, ws_row) X(VAL, ws_col) X(VAL, ws_xpixel) X(VAL, ws_ypixel)
PB_CONV(cr_winsize, cr_winsize, Fp__WinsizeEntry, fp__winsize_entry, WINSIZE);

#define PTY(X) X(VAL, index)
PB_CONV(cr_tty_pty, cr_tty_pty, Fp__TtyPtyEntry, fp__tty_pty_entry, PTY);

#define TTY_INFO(X) X(VAL, id) X(VAL, type) X(VAL, locked) X(VAL, exclusive) X(VAL, packet_mode) \
	X(VAL, sid) X(VAL, pgrp) X(VAL, rdev) X(OMSG, termios, cr_termios) \
	X(OMSG, termios_locked, cr_termios) X(OMSG, winsize, cr_winsize) X(OMSG, pty, cr_tty_pty) \
	X(OPT, dev) X(OPT, uid) X(OPT, gid)
PB_CONV(cr_tty_info, cr_tty_info, Fp__TtyInfoEntry, fp__tty_info_entry, TTY_INFO);

#define REMAP(X) X(VAL, orig_id) X(VAL, remap_id) X(OPT, remap_type)
PB_CONV(cr_remap_fpath, cr_remap_fpath, Fp__RemapFilePathEntry, fp__remap_file_path_entry, REMAP);

#define TIMEVAL(X) X(VAL, tv_sec) X(VAL, tv_usec)
PB_CONV(cr_timeval, cr_timeval, Fp__Timeval, fp__timeval, TIMEVAL);

#define GHOST(X) X(VAL, uid) X(VAL, gid) X(VAL, mode) X(OPT, dev) X(OPT, ino) X(OPT, rdev) \
	X(OMSG, atim, cr_timeval) X(OMSG, mtim, cr_timeval) X(OPT, chunks) X(OPT, size)
PB_CONV(cr_ghost_file, cr_ghost_file, Fp__GhostFileEntry, fp__ghost_file_entry, GHOST);

#define GCHUNK(X) X(VAL, len) X(VAL, off)
PB_CONV(cr_ghost_chunk, cr_ghost_chunk, Fp__GhostChunkEntry, fp__ghost_chunk_entry, GCHUNK);

#define FLOCK(X) X(VAL, flag) X(VAL, type) X(VAL, pid) X(VAL, fd) X(VAL, start) X(VAL, len)
PB_CONV(cr_file_lock, cr_file_lock, Fp__FileLockEntry, fp__file_lock_entry, FLOCK);

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
