#!/usr/bin/env python3
# tests/fuzz/seeds.py - writes the seed inputs in tests/fuzz/corpus/ (the
# layouts are described at the top of fuzz_virtqueue.c and fuzz_mmio.c).
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def ring_image(memlen, chains, size=8, desc=0x100, avail=0x200, used=0x300, high=None):
    """A memory image with a descriptor table and an available ring.
    chains: list of lists of (addr, len, write) descriptors."""
    mem = bytearray(memlen)
    nxt = 0
    heads = []
    for chain in chains:
        heads.append(nxt)
        for i, (addr, ln, w) in enumerate(chain):
            flags = (2 if w else 0) | (1 if i + 1 < len(chain) else 0)
            struct.pack_into('<QIHH', mem, desc + 16 * nxt, addr, ln, flags, nxt + 1 if i + 1 < len(chain) else 0)
            nxt += 1
    for i, h in enumerate(heads):
        struct.pack_into('<H', mem, avail + 4 + 2 * i, h)
    struct.pack_into('<H', mem, avail + 2, len(heads))
    return mem


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def vq_header(size, max_size, desc, avail, used, last_avail, used_idx, split, io_off):
    return struct.pack('<HHIIIHHII', size, max_size, desc, avail, used, last_avail, used_idx, split, io_off)


# ---- fuzz_virtqueue
mem = ring_image(0x1000, [[(0x800, 16, 0), (0x900, 32, 1)], [(0xa00, 64, 1)]])
write('fuzz_virtqueue', 'two-chains', vq_header(8, 256, 0x100, 0x200, 0x300, 0, 0, 0x1000, 4) + mem)
mem = ring_image(0x1000, [[(0x800, 8, 0), (0x100000000, 32, 1), (0x100000100, 16, 1)]])
write('fuzz_virtqueue', 'split-ram', vq_header(8, 256, 0x100, 0x200, 0x300, 0, 0, 0xc00, 0) + mem)
mem = ring_image(0x800, [[(0x600, 8, 1)]] * 3, size=4, desc=0x40, avail=0x80, used=0xa0)
struct.pack_into('<H', mem, 0x80 + 2, 1)  # avail idx wraps from 0xfffe
struct.pack_into('<HHHH', mem, 0x80 + 4, 2, 0, 1, 2)
write('fuzz_virtqueue', 'index-wrap', vq_header(4, 4, 0x40, 0x80, 0xa0, 0xfffe, 0xfffe, 0x800, 0) + mem)


# ---- fuzz_mmio
def op(kind, off, value=0):
    return struct.pack('<BBHI', kind, off >> 16, off & 0xffff, value)


def W(off, v):
    return op(0x06, off, v)


def R(off):
    return op(0x02, off)


def bring_up(queues):
    ops = [R(0), R(4), R(8), W(0x70, 0), W(0x70, 1), W(0x70, 3), W(0x14, 1), R(0x10), W(0x24, 1), W(0x20, 1),
           W(0x24, 0), W(0x20, 0), W(0x70, 11), R(0x70)]
    for q, base in queues:
        ops += [W(0x30, q), R(0x44), R(0x34), W(0x38, 8), W(0x80, base), W(0x84, 0), W(0x90, base + 0x100),
                W(0x94, 0), W(0xa0, base + 0x200), W(0xa4, 0), W(0x44, 1)]
    ops.append(W(0x70, 15))
    return b''.join(ops)


mem = ring_image(0x1000, [[(0x800, 16, 1), (0x900, 48, 1)]])
data = bring_up([(0, 0x100)]) + W(0x50, 0) + R(0x60) + W(0x64, 1) + R(0x70) + W(0x70, 0)
write('fuzz_mmio', 'rng-handshake', struct.pack('<BH', 0, len(mem)) + bytes(mem) + data)

mem = ring_image(0x1000, [[(0xc00, 6, 0), (0xc10, 7, 0)]], desc=0x400, avail=0x500, used=0x600)
mem[0xc00:0xc06] = b'hello '
mem[0xc10:0xc17] = b'virtio\n'
data = (bring_up([(0, 0x100), (1, 0x400)]) + W(0x50, 1) + W(0x50, 0) + R(0x60) + W(0x64, 3) +
        op(0x00, 0x100) + op(0x03, 0x104) + op(0x06, 0x108, ord('!')) + R(0xfc))
write('fuzz_mmio', 'console-tx', struct.pack('<BH', 1, len(mem)) + bytes(mem) + data)

# A hostile chain (a loop) made by poking memory after the handshake.
mem = ring_image(0x1000, [[(0x800, 16, 1)]])
data = (bring_up([(0, 0x100)]) + op(0x0a, 0x100 + 12, 3) + W(0x50, 0) + R(0x70) + W(0x70, 0) +
        bring_up([(0, 0x100)]))
write('fuzz_mmio', 'rng-loop-reset', struct.pack('<BH', 0, len(mem)) + bytes(mem) + data)
