#!/usr/bin/env python3
"""Canonical form of a forkpoint snapshot, for comparing the snapshot of a
process run with the shim and one run without it (tests/e2e/shim_equiv.sh).

    shim_equiv.py DIR HOME SHIM_SO   -> canonical JSON on stdout

Every image is decoded with `crit decode -i FILE --pretty`. What legitimately
differs between two runs of one deterministic program is taken out: pids and
tids (numbered in pstree order), addresses (VMAs become sizes in address
order; registers, auxv values, futex/rseq/stack pointers dropped), the ids
the dumper hands out (files are described by what they are, not by id), pipe
inode numbers (numbered by first use), the session's home directory, the
environment (LD_PRELOAD and FORKPOINT_SHIM differ by design), and how many
pages of the main stack and of small (< 64 KiB) private anonymous areas are
dumped (ld.so's bookkeeping for one more object, TLS, the shim's
constructor's stack frames): there only whether they have pages is compared. The shim's
loaded object (the VMAs of SHIM_SO and the .bss directly after them) is
reported separately under "shim_object", never compared as part of the
program; anything else of the shim (a VMA, an fd, a file) would show up as a
difference."""
import glob
import json
import os
import re
import subprocess
import sys

DIR, HOME, SHIM = sys.argv[1], sys.argv[2].rstrip('/'), sys.argv[3]


def decode(path):
    out = subprocess.run(['crit', 'decode', '-i', path, '--pretty'], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def entries(name):
    return decode(os.path.join(DIR, name))['entries']


def one(pattern):
    got = sorted(glob.glob(os.path.join(DIR, pattern)))
    return got


def path_norm(p):
    return p.replace(HOME, '$HOME')


pstree = entries('pstree.img')
pids = {}


def P(x):
    if x not in pids:
        pids[x] = 'P%d' % len(pids)
    return pids[x]


tree = []
for t in pstree:
    P(t['pid'])
for t in pstree:
    tree.append({'pid': P(t['pid']),
                 'ppid': pids.get(t['ppid'], 'outside'),
                 'pgid': pids.get(t['pgid'], 'outside'),
                 'sid': pids.get(t['sid'], 'outside'),
                 'threads': [P(x) for x in t['threads']]})

files = {f['id']: f for f in entries('files.img')}
pipe_no = {}


def pipe_ref(pid):
    if pid not in pipe_no:
        pipe_no[pid] = 'pipe%d' % len(pipe_no)
    return pipe_no[pid]


def canon_file(fid):
    f = dict(files[fid])
    f.pop('id', None)
    for kind, body in list(f.items()):
        if not isinstance(body, dict):
            continue
        body = dict(body)
        body.pop('id', None)
        if 'name' in body:
            body['name'] = path_norm(body['name'])
        if 'pipe_id' in body:
            body['pipe_id'] = pipe_ref(body['pipe_id'])
        if 'fown' in body:
            body['fown'] = {k: v for k, v in body['fown'].items() if k != 'pid'}
        f[kind] = body
    return f


def file_name(fid):
    f = files.get(fid, {})
    for body in f.values():
        if isinstance(body, dict) and 'name' in body:
            return path_norm(body['name'])
    return '?'


out = {'pstree': tree, 'processes': []}
for t in pstree:
    pid = t['pid']
    fds = []
    ids = entries('ids-%d.img' % pid)[0]
    for fdi in sorted(entries('fdinfo-%d.img' % ids['files_id']), key=lambda e: e['fd']):
        fds.append({'fd': fdi['fd'], 'flags': fdi.get('flags', ''), 'type': fdi['type'],
                    'file': canon_file(fdi['id'])})
    mm = entries('mm-%d.img' % pid)[0]
    # dumped pages per VMA
    pm = entries('pagemap-%d.img' % pid)[1:]
    def pages_in(start, end):
        n = 0
        for e in pm:
            a = int(e['vaddr'], 16)
            b = a + e['nr_pages'] * 4096
            if a < end and b > start:
                n += (min(b, end) - max(a, start)) // 4096
        return n
    vmas, shim_obj = [], []
    shim_end = None
    areas = []  # (start, end, vma) of everything but the shim's object
    for v in mm['vmas']:
        start, end = int(v['start'], 16), int(v['end'], 16)
        name = file_name(v['shmid']) if 'FILE' in v['status'] else None
        if name == SHIM or (shim_end == start and 'ANON_PRIVATE' in v['status']):
            shim_obj.append({'size': end - start, 'prot': v['prot'], 'file': name,
                             'pages': pages_in(start, end)})
            shim_end = end if name == SHIM else None
            continue
        shim_end = None
        # Two anonymous areas side by side with the same protection and
        # flags are one area to the program; whether the kernel merged
        # them into one mapping depends on where ld.so's small
        # allocations landed (CI at 0731ce9: 20 KiB with the shim, 12 +
        # 8 KiB without)
        last = areas[-1][2] if areas else None
        if (last is not None and areas[-1][1] == start and 'ANON_PRIVATE' in v['status'] and
                all(last.get(k) == v.get(k) for k in ('status', 'prot', 'flags', 'fd'))):
            areas[-1] = (areas[-1][0], end, last)
            continue
        areas.append((start, end, v))
    for start, end, v in areas:
        name = file_name(v['shmid']) if 'FILE' in v['status'] else None
        pages = pages_in(start, end)
        # ld.so allocates for each loaded object (the shim is one more) in
        # small anonymous areas of its own, the static TLS block grows by the
        # shim's, and the shim's constructor runs on the main stack: there
        # only "has pages" counts
        if 'MAP_GROWSDOWN' in v['flags'] or (
                'ANON_PRIVATE' in v['status'] and end - start < 65536):
            pages = pages > 0
        d = {'size': end - start, 'prot': v['prot'], 'flags': v['flags'],
             'status': v['status'], 'fd': v.get('fd'), 'pages': pages}
        if name:
            d['file'] = name
            d['pgoff'] = v['pgoff']
        vmas.append(d)
    addr = re.compile(r'^mm_(start|end|arg|env|brk)')
    mmrest = {k: v for k, v in mm.items() if k != 'vmas' and not addr.match(k)}
    mmrest['mm_saved_auxv'] = mm.get('mm_saved_auxv', [])[0::2]  # the keys
    if 'exe_file_id' in mmrest:
        mmrest['exe_file_id'] = file_name(mmrest['exe_file_id'])
    cores = []
    for tid in t['threads']:
        c = entries('core-%d.img' % tid)[0]
        tc = dict(c.get('tc', {}))
        th = dict(c.get('thread_core', {}))
        for k in ('futex_rla', 'futex_rla_len', 'rseq_entry', 'sas', 'blk_sigset_extended'):
            th.pop(k, None)
        sig = [{k: v for k, v in a.items() if k not in ('sigaction', 'restorer')}
               for a in tc.pop('sigactions', [])]
        cores.append({'tid': P(tid), 'mtype': c.get('mtype'), 'tc': tc, 'sigactions': sig,
                      'thread_core': th})
    fs = entries('fs-%d.img' % pid)[0]
    fsc = {'cwd': file_name(fs['cwd_id']), 'root': file_name(fs['root_id']),
           'umask': fs.get('umask')}
    # the order of VMAs follows where the loader and the kernel put them,
    # which the shim's object shifts: compared as a sorted list
    vmas.sort(key=lambda d: json.dumps(d, sort_keys=True))
    out['processes'].append({'pid': P(pid), 'ids': {k: v for k, v in ids.items()},
                             'fds': fds, 'vmas': vmas, 'mm': mmrest, 'cores': cores,
                             'fs': fsc, 'shim_object': shim_obj})
pipes = []
if os.path.exists(os.path.join(DIR, 'pipes-data.img')):
    for e in entries('pipes-data.img'):
        e = dict(e)
        e['pipe_id'] = pipe_ref(e['pipe_id'])
        pipes.append(e)
out['pipes_data'] = pipes
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
