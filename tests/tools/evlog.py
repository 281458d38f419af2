#!/usr/bin/env python3
"""tests/tools/evlog.py LOG [--random] [--clock] - an independent reading of
a trialvm event log segment (the format in README "Record and replay"), for
the tests: checks every frame's length and CRC-32, and prints
  header VERSION FLAGS ID-HEX
  records N exits E pio P mmio M data D end WHY|none
then with --random the hex of every random and virtio-rng data record's
bytes concatenated, with --clock one "clock SEC NSEC" line per clock record,
with --tsc one "tsc NS" line per clock record (SEC * 10^9 + NSEC), with
--vcpus one "vcpu N exits E" line per vCPU with exit records, with
--disk-image IMG "disk N matched" after checking each disk-read check
record's CRC-32 against IMG's bytes at its offset (exit 1 on a mismatch).
Exit 1 (with a message) when a frame is bad before the file's end.
  evlog.py LOG --tamper N OUT: OUT is LOG with the last byte of its N-th
write exit (from 0) flipped and the record's CRC made right again; prints
"tampered RECORD-INDEX"."""
import struct
import sys
import zlib


def main():
    path = sys.argv[1]
    with open(path, 'rb') as f:
        b = f.read()
    if len(b) < 32 or b[:8] != b'TVMEVLG1':
        sys.exit('%s: no event log header' % path)
    version, flags = struct.unpack_from('<II', b, 8)
    print('header %d %d %s' % (version, flags, b[16:32].hex()))
    off = 32
    tamper = int(sys.argv[sys.argv.index('--tamper') + 1]) if '--tamper' in sys.argv else None
    out = bytearray(b)
    writes = 0
    n = exits = pio = mmio = data = 0
    end = 'none'
    rnd = bytearray()
    clocks = []
    disks = []
    per_vcpu = {}
    while off + 8 <= len(b):
        ln, crc = struct.unpack_from('<II', b, off)
        body = b[off + 8:off + 8 + ln]
        if len(body) < ln:
            break  # a torn tail
        if zlib.crc32(body) & 0xffffffff != crc:
            sys.exit('%s: record %d at %d: bad CRC' % (path, n, off))
        typ, vcpu, src = struct.unpack_from('<BBH', body, 0)
        if typ == 1:
            exits += 1
            per_vcpu[vcpu] = per_vcpu.get(vcpu, 0) + 1
            bus = body[16]
            pio += bus == 1
            mmio += bus == 2
            if body[17] == 1 and tamper is not None:
                if writes == tamper:
                    nb = bytearray(body)
                    nb[-1] ^= 0x01
                    struct.pack_into('<I', out, off + 4, zlib.crc32(bytes(nb)) & 0xffffffff)
                    out[off + 8:off + 8 + ln] = nb
                    with open(sys.argv[sys.argv.index('--tamper') + 2], 'wb') as f:
                        f.write(out)
                    print('tampered %d' % n)
                    return
                writes += 1
        elif typ == 2:
            data += 1
            if src in (2, 3):
                rnd += body[16:]
            elif src == 1:
                clocks.append(struct.unpack_from('<QQ', body, 16))
            elif src == 4:
                disks.append(struct.unpack_from('<QII', body, 16))
        elif typ == 3:
            end = str(struct.unpack_from('<I', body, 16)[0])
        n += 1
        off += 8 + ln
    print('records %d exits %d pio %d mmio %d data %d end %s' % (n, exits, pio, mmio, data, end))
    if '--random' in sys.argv:
        print(rnd.hex())
    if '--clock' in sys.argv:
        for s, ns in clocks:
            print('clock %d %d' % (s, ns))
    if '--disk-image' in sys.argv:
        with open(sys.argv[sys.argv.index('--disk-image') + 1], 'rb') as f:
            img = f.read()
        for doff, dlen, dcrc in disks:
            if zlib.crc32(img[doff:doff + dlen]) & 0xffffffff != dcrc:
                sys.exit('disk read of %d bytes at %d: the log has CRC %08x, the image %08x' %
                         (dlen, doff, dcrc, zlib.crc32(img[doff:doff + dlen]) & 0xffffffff))
        print('disk %d matched' % len(disks))
    if '--vcpus' in sys.argv:
        for v in sorted(per_vcpu):
            print('vcpu %d exits %d' % (v, per_vcpu[v]))
    if '--tsc' in sys.argv:
        for s, ns in clocks:
            print('tsc %d' % (s * 1000000000 + ns))


main()
