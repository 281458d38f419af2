#!/usr/bin/env python3
# tests/fuzz/seeds_blk.py - writes the seed inputs of fuzz_blk and
# fuzz_ovlmap in tests/fuzz/corpus/ (layouts at the top of fuzz_blk.c and
# fuzz_ovlmap.c; the map format in devices/overlay.h).
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def blk(name, out, inn, mem, cap=2048, ro=False, hdr=None, totals=None):
    """out/inn: lists of (gpa, len); mem: bytearray (RAM at gpa 0);
    hdr: (gpa, type, sector) written into mem."""
    if hdr:
        struct.pack_into('<IIQ', mem, hdr[0], hdr[1], 0, hdr[2])
    flags = (1 if ro else 0) | (2 if totals else 0)
    o, i = totals or (0, 0)
    b = struct.pack('<BBBBQQQ', flags, len(out), len(inn), 0, cap, o, i)
    for gpa, ln in out + inn:
        b += struct.pack('<QI', gpa, ln)
    write('fuzz_blk', name, b + bytes(mem))


def blk_seeds():
    mem = lambda: bytearray(0x3000)
    blk('read', [(0x100, 16)], [(0x1000, 1024), (0x2000, 1)], mem(), hdr=(0x100, T_IN, 5))
    blk('read-one-seg', [(0x100, 16)], [(0x1000, 513)], mem(), hdr=(0x100, T_IN, 2047))
    blk('write', [(0x100, 16), (0x1000, 512)], [(0x2000, 1)], mem(), hdr=(0x100, T_OUT, 0))
    blk('write-ro', [(0x100, 16), (0x1000, 512)], [(0x2000, 1)], mem(), ro=True, hdr=(0x100, T_OUT, 0))
    blk('write-past-end', [(0x100, 16), (0x1000, 1024)], [(0x2000, 1)], mem(), hdr=(0x100, T_OUT, 2047))
    blk('sector-overflow', [(0x100, 16)], [(0x1000, 513)], mem(), cap=(1 << 64) - 1,
        hdr=(0x100, T_IN, (1 << 64) // 512 + 5))
    blk('unaligned', [(0x100, 16)], [(0x1000, 100)], mem(), hdr=(0x100, T_IN, 0))
    blk('split-header', [(0x100, 8), (0x200, 8)], [(0x1000, 513)], mem(), hdr=(0x100, T_IN, 0))
    blk('short-header', [(0x100, 12)], [(0x1000, 1)], mem(), hdr=(0x100, T_IN, 0))
    blk('no-status', [(0x100, 16), (0x1000, 512)], [], mem(), hdr=(0x100, T_OUT, 0))
    blk('status-outside', [(0x100, 16)], [(0x10000000, 1)], mem(), hdr=(0x100, T_FLUSH, 0))
    blk('flush', [(0x100, 16)], [(0x2000, 1)], mem(), hdr=(0x100, T_FLUSH, 0))
    blk('get-id', [(0x100, 16)], [(0x1000, 20), (0x2000, 1)], mem(), hdr=(0x100, T_GET_ID, 0))
    blk('discard', [(0x100, 16), (0x1000, 16)], [(0x2000, 1)], mem(), hdr=(0x100, T_DISCARD, 0))
    blk('bad-totals', [(0x100, 16)], [(0x2000, 1)], mem(), hdr=(0x100, T_IN, 0), totals=(16, 2))
    m = mem()
    struct.pack_into('<QII', m, 0x1000, 10, 20, 1)
    struct.pack_into('<QII', m, 0x1010, 2000, 48, 0)
    blk('write-zeroes', [(0x100, 16), (0x1000, 32)], [(0x2000, 1)], m, hdr=(0x100, T_WZ, 0))
    m = mem()
    struct.pack_into('<QII', m, 0x1000, 10, 20, 6)
    blk('write-zeroes-flags', [(0x100, 16), (0x1000, 16)], [(0x2000, 1)], m, hdr=(0x100, T_WZ, 0))


def ovlmap(size, bits, gen=1, ident=b'\x11' * 32):
    clusters = (size + 65535) // 65536
    nbm = (clusters + 7) // 8
    h = bytearray(128)
    h[0:8] = b'TVMOVMAP'
    struct.pack_into('<IIIIQQQ', h, 8, 1, 128, 65536, 0, size, clusters, gen)
    h[48:80] = ident
    struct.pack_into('<I', h, 124, zlib.crc32(bytes(h[:124])))
    bm = bytearray(nbm)
    for b in bits:
        bm[b // 8] |= 1 << (b % 8)
    body = bytes(h) + bytes(bm)
    return body + struct.pack('<I', zlib.crc32(body))


def ovlmap_seeds():
    ident = b'\x11' * 32
    for name, size, bits in [('small', 10 * 65536 + 1000, [0, 4, 10]), ('aligned', 64 * 65536, [1, 63]),
                             ('one-cluster', 512, [0]), ('empty', 3 * 65536, [])]:
        m = ovlmap(size, bits, ident=ident)
        write('fuzz_ovlmap', name, struct.pack('<QB', size, 1) + ident + m)
        write('fuzz_ovlmap', name + '-noident', struct.pack('<QB', size, 0) + ident + m)
    m = ovlmap(10 * 65536 + 1000, [0])
    write('fuzz_ovlmap', 'truncated', struct.pack('<QB', 10 * 65536 + 1000, 0) + ident + m[:100])


if __name__ == '__main__':
    blk_seeds()
    ovlmap_seeds()
