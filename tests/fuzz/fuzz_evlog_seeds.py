#!/usr/bin/env python3
# tests/fuzz/fuzz_evlog_seeds.py - writes tests/fuzz/corpus/fuzz_evlog/: event
# logs made from the format in vmm/evlog.h (independently of its writer).
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def header(exact=True, ident=b'\0' * 16, version=1):
    return b'TVMEVLG1' + struct.pack('<II', version, 1 if exact else 0) + ident


def rec(body):
    return struct.pack('<II', len(body), zlib.crc32(body) & 0xffffffff) + body


def head(typ, vcpu, src, seq):
    return struct.pack('<BBHIQ', typ, vcpu, src, 0, seq)


def exit_(vcpu, seq, bus, write, size, count, addr, data):
    return rec(head(1, vcpu, 0, seq) + struct.pack('<BBHIQ', bus, write, size, count, addr) + data)


def data(vcpu, seq, src, payload):
    return rec(head(2, vcpu, src, seq) + payload)


def end(why, before):
    return rec(head(3, 0, 0, 0) + struct.pack('<IIQ', why, 0, before))


def write(name, blob):
    d = os.path.join(HERE, 'corpus', 'fuzz_evlog')
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(blob)


recs = [exit_(0, 1, 1, 1, 1, 1, 0x3f8, b'h'),
        data(0, 2, 2, bytes(range(32))),
        exit_(0, 2, 1, 1, 4, 1, 0x510, struct.pack('<I', 0x1000)),
        data(0, 3, 1, struct.pack('<QQ', 5, 123456789)),
        exit_(0, 3, 1, 1, 4, 1, 0x510, struct.pack('<I', 0x1000)),
        exit_(0, 4, 2, 0, 4, 1, 0xd0000000, struct.pack('<I', 0x74726976)),
        exit_(0, 5, 1, 0, 1, 3, 0x3fd, b'\x60\x60\x61')]
whole = header() + b''.join(recs)
write('whole', whole + end(0, len(recs)))
write('crash', whole + end(1, len(recs)))
write('no-end', whole)
write('torn', whole + end(0, len(recs))[:20])
write('zero-tail', whole + b'\0' * 100)
mid = bytearray(whole + end(0, len(recs)))
mid[len(header()) + 12] ^= 1
write('corrupt-middle', bytes(mid))
write('snapshot-segment', header(False, bytes(range(16))) + exit_(1, 1, 2, 1, 8, 1, 0x1000, b'\1' * 8) +
      data(1, 2, 3, b'\x55' * 64) + exit_(1, 2, 2, 1, 4, 1, 0x1050, b'\0\0\0\0') + end(2, 3))
write('seq-gap', header() + exit_(0, 1, 1, 1, 1, 1, 0x80, b'x') + exit_(0, 3, 1, 1, 1, 1, 0x80, b'x'))
write('version-2', header(version=2) + b''.join(recs))
write('header-only', header())
