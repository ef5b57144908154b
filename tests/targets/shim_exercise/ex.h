/* Shared by the parts of shim_exercise (see main.c for what it does). */
#ifndef SHIM_EXERCISE_EX_H
#define SHIM_EXERCISE_EX_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
extern int in_fd;
extern char self_exe[4096];
extern char work_dir[4096];

__attribute__((format(printf, 1, 2))) void reply(const char *fmt, ...);
__attribute__((noreturn)) void die(const char *what);
int read_line(int fd, char *buf, size_t len);
void keep_fd(int fd);
void keep_map(void *p, size_t len);
int make_file(const char *name, size_t size);

void cmd_anon(void);
void cmd_churn(int t);
void cmd_collide(long n, int t);
void cmd_cleanup(void);
void cmd_exec(const char *mode);
void cmd_files(void);
void cmd_fork(void);
void cmd_maps(void);
void cmd_maplog(long n);
void cmd_nested(void);
void cmd_pipes(void);
void cmd_raw(void);
void cmd_reap(void);
void cmd_sockets(void);
void cmd_spawn(const char *mode);
void cmd_spawn_exit(void);
void cmd_stdio(void);
void cmd_stop(void);
void cmd_stress(long n, int t);
void cmd_threads(int n);
void cmd_unraw(void);
void cmd_unthreads(void);

#endif
