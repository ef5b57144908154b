#!/usr/bin/env python3
"""Packs image directories into inputs of build-fuzz/fuzz_images.

    mkseeds.py OUTDIR IMAGEDIR...

Each IMAGEDIR (a real dump) becomes one input: for every regular file, a
record u8 name_len, name, u32 data_len (little-endian), data; the format
tests/fuzz/fuzz_images.c unpacks. Files over 1 MiB are left out (page data
of a bigger process: the fuzzer would spend its time copying them)."""
import os
import struct
import sys

LIMIT = 1 << 20


def pack(d):
    out = bytearray()
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if not os.path.isfile(p) or os.path.islink(p) or os.path.getsize(p) > LIMIT:
            continue
        if name.endswith(".log") or len(name) > 64:
            continue
        data = open(p, "rb").read()
        nb = name.encode()
        out += bytes([len(nb)]) + nb + struct.pack("<I", len(data)) + data
    return bytes(out)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for i, d in enumerate(sys.argv[2:]):
        with open(os.path.join(out, "seed-%d-%s" % (i, os.path.basename(d.rstrip("/")))), "wb") as f:
            f.write(pack(d))


if __name__ == "__main__":
    main()
