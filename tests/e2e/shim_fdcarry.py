#!/usr/bin/env python3
"""Two roles for tests/e2e/shim_fdcarry.sh.

    shim_fdcarry.py target STATUS DIR N   the self-checking target
    shim_fdcarry.py target-child STATUS DIR N   the same target, as the root's child
    shim_fdcarry.py canon SNAPDIR DIR HOME the holder's fds in a snapshot, canonical

The target opens N fds on eight files of DIR, /dev/null and dups of them,
then waits. SIGUSR1 makes the next change step (closes, dup2 over, new
opens, lseeks, reads, fcntl O_NONBLOCK through libc, O_APPEND through a raw
fcntl system call the shim never sees) and writes "step K". After setup and
every step it records its own fd table from /proc/self (link, pos, flags,
close-on-exec) and which fds share an open file description (kcmp); SIGUSR2
compares the live table with that record and writes "verify ok" or "verify
FAIL: WHY". The record lives in the process's memory: a process restored
from the snapshot of step K checks itself against step K.

canon prints the fds of the tree's last process (the target) from the images (crit decode): per fd its
close-on-exec flag, type, file (the path with DIR as $DIR, flags, pos), and
the first fd with the same open file description (DIR and the session's HOME
written as $DIR and $HOME)."""
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys


def record(skip):
    """The fd table but skip (the status file, written since); a pipe or
    socket by kind (a restored one is a new one)."""
    table = {}
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd == skip:
            continue
        try:
            link = os.readlink('/proc/self/fd/%d' % fd)
            if link.startswith(('pipe:', 'socket:')):
                link = link.split(':')[0]
            with open('/proc/self/fdinfo/%d' % fd) as f:
                info = dict(line.split(':', 1) for line in f.read().splitlines() if ':' in line)
        except OSError:
            continue  # the listing's own fd
        table[fd] = (link, int(info['pos']), int(info['flags'], 8), fcntl.fcntl(fd, fcntl.F_GETFD))
    libc = ctypes.CDLL(None, use_errno=True)
    me = os.getpid()
    fds = sorted(table)
    share = {}
    for i, a in enumerate(fds):
        if not table[a][0].startswith('/'):
            continue
        for b in fds[i + 1:]:
            if table[b][0] == table[a][0] and libc.syscall(312, me, me, 0, a, b) == 0:  # kcmp KCMP_FILE
                share.setdefault(b, a)
    return table, share


def target(status, d, n):
    import resource
    libc = ctypes.CDLL(None, use_errno=True)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    files = [os.path.join(d, 'f%d' % i) for i in range(8)]
    for i, p in enumerate(files):
        with open(p, 'wb') as f:
            f.write(bytes([65 + i]) * 8192)
    out = os.open(status, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(line):
        os.write(out, (line + '\n').encode())

    mine = []
    for i in range(n):
        k = i % 10
        if k < 6:
            fd = os.open(files[i % 8], os.O_RDWR | (os.O_CLOEXEC if i % 3 == 0 else 0))
            os.lseek(fd, (i * 37) % 8000, os.SEEK_SET)
        elif k < 8:
            fd = os.open('/dev/null', os.O_RDWR)
        else:
            fd = os.dup(mine[-1])
        mine.append(fd)
    state = {'rec': record(out), 'step': 0}

    def step(*_):
        s = state['step'] = state['step'] + 1
        live = [fd for fd in mine if fd >= 0]
        pick = lambda j, m: live[(s * 131 + j * m) % len(live)]
        for j in range(5):  # closed
            fd = pick(j, 97)
            if fd in mine:
                os.close(fd)
                mine[mine.index(fd)] = -1
                live.remove(fd)
        for j in range(5):  # dup2 over another
            a, b = pick(j, 53), pick(j + 7, 211)
            if a != b:
                os.dup2(a, b)
        for j in range(5):  # new
            mine.append(os.open(files[(s + j) % 8], os.O_RDONLY))
        for j in range(50):  # offsets moved (no wrapper)
            fd = pick(j, 17)
            if not os.readlink('/proc/self/fd/%d' % fd).startswith('/dev/'):
                os.lseek(fd, (s * 1000 + j * 31) % 8000, os.SEEK_SET)
        for j in range(10):  # reads move them too
            try:
                os.read(pick(j, 29), 3)
            except OSError:
                pass
        for j in range(5):  # O_NONBLOCK through libc's fcntl (the shim's wrapper)
            fd = pick(j, 61)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        for j in range(5):  # O_APPEND by a raw system call: no wrapper sees it
            fd = pick(j, 71)
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            assert libc.syscall(72, fd, 4, fl | os.O_APPEND) == 0, ctypes.get_errno()
        state['rec'] = record(out)
        say('step %d' % s)

    def verify(*_):
        table, share = record(out)
        want_table, want_share = state['rec']
        bad = []
        for fd in sorted(set(table) | set(want_table)):
            if table.get(fd) != want_table.get(fd):
                bad.append('fd %d: %s, recorded %s' % (fd, table.get(fd), want_table.get(fd)))
        if share != want_share:
            bad.append('shared descriptions differ: %s' % sorted(set(share.items()) ^ set(want_share.items()))[:5])
        say('verify ok step %d' % state['step'] if not bad else 'verify FAIL step %d: %s' % (state['step'], '; '.join(bad[:3])))

    signal.signal(signal.SIGUSR1, step)
    signal.signal(signal.SIGUSR2, verify)
    say('ready %d %d' % (os.getpid(), len(mine)))
    while True:
        signal.pause()


def canon(snap, d, home):
    def entries(name):
        out = subprocess.run(['crit', 'decode', '-i', os.path.join(snap, name)], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)['entries']

    # the fds' holder: the last process of the tree (the root, or its child)
    holder = entries('pstree.img')[-1]['pid']
    ids = entries('ids-%d.img' % holder)[0]
    files = {f['id']: f for f in entries('files.img')}
    first = {}
    fds = []
    for e in sorted(entries('fdinfo-%d.img' % ids['files_id']), key=lambda e: e['fd']):
        f = files[e['id']]
        reg = f.get('reg', {})
        first.setdefault(e['id'], e['fd'])
        name = reg.get('name', '').replace(d, '$DIR').replace(home, '$HOME')
        # the status file's offset is its length, which holds the target's
        # pid: one more digit in one session's pid is one byte more there
        pos = None if name == '$DIR/status' else reg.get('pos')
        fds.append({'fd': e['fd'], 'flags': e.get('flags', ''), 'type': e['type'], 'kind': f['type'],
                    'name': name, 'fflags': reg.get('flags'), 'pos': pos, 'desc': first[e['id']]})
    json.dump(fds, sys.stdout, indent=0, sort_keys=True)


def target_child(status, d, n):
    """The same fds held by a child of the session's root: the dump's look,
    shortcut, carry and marks serve every process of the tree."""
    child = os.fork()
    if child == 0:
        target(status, d, n)
    os.waitpid(child, 0)


if __name__ == '__main__':
    if sys.argv[1] == 'target':
        target(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == 'target-child':
        target_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        canon(sys.argv[2], sys.argv[3], sys.argv[4])
