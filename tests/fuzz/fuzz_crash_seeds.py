#!/usr/bin/env python3
# tests/fuzz/fuzz_crash_seeds.py - writes the seeds of fuzz_crash,
# fuzz_guestmem and fuzz_hcall into tests/fuzz/corpus/<name>/ (the layouts
# are described at the top of each harness).
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PG = 4096


def write(target, name, data):
    data = data.rstrip(b'\0')  # the harnesses read bytes past the end as zero
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def q(*v):
    return struct.pack('<%dQ' % len(v), *v)


# ---- guest RAM with 4-level page tables: PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000
def ram_4level(pages, maps, huge2m=None):
    """maps: {va: pa} 4 KiB pages below 1 GiB; huge2m: {va: pa} 2 MiB pages."""
    ram = bytearray(pages * PG)
    struct.pack_into('<Q', ram, 0x1000, 0x2000 | 7)
    struct.pack_into('<Q', ram, 0x2000, 0x3000 | 7)
    for va, pa in maps.items():
        struct.pack_into('<Q', ram, 0x3000 + ((va >> 21) & 511) * 8, 0x4000 | 7)
        struct.pack_into('<Q', ram, 0x4000 + ((va >> 12) & 511) * 8, pa | 7)
    for va, pa in (huge2m or {}).items():
        struct.pack_into('<Q', ram, 0x3000 + ((va >> 21) & 511) * 8, pa | 0x87)
    return ram


X86_CODE = bytes.fromhex('554889e5c745fc00000000488b0425000000005dc3') * 8  # push rbp; mov rbp,rsp; ...

# ---- fuzz_crash
HOSTILE_NAMES = ['crash\x1b[2J\x07here', 'main\u202eevil', 'ok_function']


def system_map(base):
    lines = []
    for i, n in enumerate(HOSTILE_NAMES):
        lines.append(b'%016x T ' % (base + 0x10 * i) + n.encode() + b'\n')
    lines.append(b'%016x T bad\xff\xfename\n' % (base + 0x100))
    return b''.join(lines)


def elf_symbols(base):
    """A minimal ELF64 with a .symtab of hostile function names."""
    names = [n.encode() for n in HOSTILE_NAMES] + [b'bad\xff\xfe\xc3']
    strtab = b'\0' + b''.join(n + b'\0' for n in names)
    syms = [b'\0' * 24]
    off = 1
    for i, n in enumerate(names):
        syms.append(struct.pack('<IBBHQQ', off, 0x12, 0, 1, base + 0x10 * i, 0x10))
        off += len(n) + 1
    symtab = b''.join(syms)
    shstr = b'\0.strtab\0.symtab\0.shstrtab\0'
    body_off = 64
    str_off = body_off
    sym_off = str_off + len(strtab)
    shs_off = sym_off + len(symtab)
    sh_off = (shs_off + len(shstr) + 7) & ~7
    eh = b'\x7fELF' + bytes([2, 1, 1, 0]) + b'\0' * 8
    eh += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, base, 0, sh_off, 0, 64, 56, 0, 64, 4, 3)
    sh = b'\0' * 64
    sh += struct.pack('<IIQQQQIIQQ', 1, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    sh += struct.pack('<IIQQQQIIQQ', 9, 2, 0, 0, sym_off, len(symtab), 1, 1, 8, 24)
    sh += struct.pack('<IIQQQQIIQQ', 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0)
    img = eh + strtab + symtab + shstr
    img += b'\0' * (sh_off - len(img))
    return img + sh


def cpu_rec(rip=0, rsp=0, cr0=0, cr3=0, cr4=0, efer=0, cs_base=0, cs_sel=0x10, l=0, db=0, dpl=0, gpr=None):
    g = list(gpr or [0] * 16)
    g[4] = rsp
    rec = q(rip, 0x246) + q(*g) + q(cr0, 0, cr3, cr4, efer, cs_base, 0, 0, 0)
    rec += struct.pack('<HHB3x', cs_sel, 0x18, l | (db << 1) | (dpl << 2))
    assert len(rec) == 224
    return rec


def fault_rec(rip, rsp, rbp, name, nmaps, vector=14, signo=11, addr=0, cr3=0x1000, argv=0, argc=0, auxv=0,
              auxv_len=0):
    regs = [0] * 27
    regs[4] = rbp        # rbp
    regs[16] = rip       # rip
    regs[17] = 0x33      # cs
    regs[18] = 0x10246   # eflags
    regs[19] = rsp       # rsp
    regs[20] = 0x2b      # ss
    r = struct.pack('<IIIIiI', 0x544c5546, 1, vector, signo, 1, 0) + q(6, addr, 0)
    r += q(*regs) + q(nmaps, 0, cr3)
    r += name[:63].ljust(64, b'\0') + q(auxv, auxv_len, argv, argc)
    assert len(r) == 384
    return r


def mappings(maps):
    m = b''.join(struct.pack('<QQII', s, e, p, k) for s, e, p, k in maps)
    return m.ljust(16 * 24, b'\0')


def crash_input(kind, flags, pages0, pages1, detail, cpus, seen, fault, maps, sym, console, ram, vcpu=0, reason=0,
                data=(0, 0, 0, 0)):
    h = struct.pack('<BBBBHH', kind, flags, pages0 - 1, pages1, len(sym), len(console))
    h += struct.pack('<iI', vcpu, reason) + q(*data)
    h += detail[:63].ljust(64, b'\0')
    h += cpus[0] + cpus[1] + seen
    h += fault if fault else b'\0' * 384
    h += maps if maps else b'\0' * 384
    assert len(h) == 1552
    return h + sym + console + bytes(ram)


CONSOLE = b'booting\n\x1b[2J\x07\xe2\x80\xae reversed\xff\xfe\x00end\n'
EV_APP, EV_PANIC, EV_TRIPLE, EV_INTERNAL, EV_HANG = 3, 4, 5, 6, 12
F_APP, F_2CPU, F_SEEN, F_IRQ, F_PIT, F_REPORT, F_SYM = 1, 2, 4, 8, 16, 32, 64

# An application fault in a function with a hostile name, a frame at rbp
# whose return address is in main, argv and auxv on the stack page.
ram = ram_4level(16, {0x400000: 0x5000, 0x401000: 0x6000})
ram[0x5000:0x5000 + len(X86_CODE)] = X86_CODE
struct.pack_into('<QQ', ram, 0x6800, 0x401900, 0x400014)  # saved rbp, return address
struct.pack_into('<QQ', ram, 0x6a00, 0x401b00, 0)          # argv
ram[0x6b00:0x6b10] = b'evil\x1b]0;x\x07\0'
struct.pack_into('<QQQQ', ram, 0x6c00, 6, 4096, 0, 0)       # auxv
fault = fault_rec(0x400004, 0x401800, 0x401800, b'evil\x1b[2J\xe2\x80\xae\xff', 2, argv=0x401a00, argc=1,
                  auxv=0x401c00, auxv_len=32)
maps = mappings([(0x400000, 0x401000, 5, 1), (0x401000, 0x402000, 3, 2)])
cpus = [cpu_rec(0xffffffff81000000, cr0=0x80050033, cr3=0x1000, efer=0xd01, l=1), cpu_rec()]
all_flags = F_APP | F_2CPU | F_IRQ | F_PIT | F_REPORT | F_SYM
write('fuzz_crash', 'app-fault', crash_input(EV_APP, all_flags, 16, 0, b'the application evil\x1b[2J died',
                                             cpus, cpu_rec(), fault, maps, system_map(0x400000), CONSOLE, ram))
write('fuzz_crash', 'app-fault-elf-symbols',
      crash_input(EV_APP, all_flags, 16, 1, b'the application x died', cpus, cpu_rec(), fault, maps,
                  elf_symbols(0x400000), CONSOLE, ram))
write('fuzz_crash', 'app-fault-no-report',
      crash_input(EV_APP, F_APP | F_SYM, 16, 0, b'x', cpus, cpu_rec(), fault, maps, system_map(0x400000), b'', ram))

# RIP in the last page of the address space, mapped through a PML4 that
# maps itself at every level (entry 511).
ram = bytearray(4 * PG)
struct.pack_into('<Q', ram, 0x1000 + 511 * 8, 0x1000 | 7)
fault = fault_rec(0xffffffffffffffff, 0xfffffffffffffff8, 0xfffffffffffffff0, b'jump-wild', 1,
                  addr=0xffffffffffffffff)
maps = mappings([(0xfffffffffffff000, 0, 7, 0), (0x7ffffffff000, 0x800000000000, 3, 2)])
write('fuzz_crash', 'app-fault-last-page',
      crash_input(EV_APP, F_APP | F_REPORT, 4, 0, b'wild', cpus, cpu_rec(), fault, maps, b'', b'', ram))

# A 64-bit kernel triple fault with the state lost (last seen kept), code
# through a 2 MiB page.
ram = ram_4level(8, {})
struct.pack_into('<Q', ram, 0x1000 + 511 * 8, 0x2000 | 7)
struct.pack_into('<Q', ram, 0x2000 + 510 * 8, 0x3000 | 7)
struct.pack_into('<Q', ram, 0x3000, 0 | 0x87)
ram[0x5000:0x5000 + len(X86_CODE)] = X86_CODE
k = cpu_rec(0xffffffff80005008, rsp=0xffffffff80005100, cr0=0x80050033, cr3=0x1000, cr4=0x20, efer=0xd01, l=1)
write('fuzz_crash', 'triple-fault-lost',
      crash_input(EV_TRIPLE, F_2CPU | F_SEEN | F_IRQ | F_REPORT | F_SYM, 8, 0, b'triple fault', [k, k], k, None,
                  None, system_map(0xffffffff80005000), CONSOLE, ram, vcpu=1, data=(1, 5, 0, 0)))

# 32-bit PAE panic: PDPT at 0x1000, PD 0x2000, PT 0x3000, code at 0x4000.
ram = bytearray(8 * PG)
struct.pack_into('<Q', ram, 0x1000, 0x2000 | 1)
struct.pack_into('<Q', ram, 0x2000, 0x3000 | 3)
struct.pack_into('<Q', ram, 0x3000 + 4 * 8, 0x4000 | 3)
ram[0x4000:0x4000 + 64] = bytes.fromhex('5589e583ec10c70424000000008b45085dc3') + b'\x90' * 46
p = cpu_rec(0x4010, rsp=0x4800, cr0=0x80000011, cr3=0x1000, cr4=0x20, db=1)
write('fuzz_crash', 'panic-pae32',
      crash_input(EV_PANIC, F_REPORT | F_IRQ, 8, 0, b'Kernel panic - not syncing: \xe2\x80\xae', [p, p], p, None,
                  None, b'', b'', ram))
# 32-bit paging with a 4 MiB page (PSE), a CS base that wraps at 4 GiB.
ram = bytearray(4 * PG)
struct.pack_into('<I', ram, 0x1000, 0 | 0x83)
ram[0x2000:0x2000 + 32] = b'\x90' * 32
p = cpu_rec(0x2010 + 0x1000, rsp=0x2f00, cr0=0x80000011, cr3=0x1000, cr4=0x10, db=1, cs_base=0xfffff000)
write('fuzz_crash', 'internal-error-pse32',
      crash_input(EV_INTERNAL, F_REPORT, 4, 0, b'emulation failure', [p, p], p, None, None, b'', b'', ram,
                  data=(1, 2, 3, 4)))
# Real mode hang on vCPU 1 with a segment base.
ram = bytearray(2 * PG)
ram[0x1000:0x1010] = b'\xeb\xfe' * 8
r = cpu_rec(0xf00, rsp=0x7c00, cs_base=0x100, cs_sel=0x10)
write('fuzz_crash', 'hang-real-mode',
      crash_input(EV_HANG, F_2CPU | F_REPORT, 2, 0, b'no progress', [r, r], r, None, None, b'', CONSOLE, ram,
                  data=(1, 0, 0, 0)))
# Events that are not crashes, with hostile details.
for kind, name in [(1, 'poweroff'), (2, 'reset'), (10, 'signal'), (9, 'vmm-error')]:
    write('fuzz_crash', name, crash_input(kind, 0, 1, 0, b'detail \x1b[2J\x07\xe2\x80\xae\xff', cpus, cpu_rec(),
                                          None, None, b'', b'', bytearray(PG), reason=15))

# ---- fuzz_guestmem
def gm(cr0, cr3, cr4, efer, cs_base, l, pages0, pages1, n, va, ram):
    h = q(cr0, cr3, cr4, efer, cs_base) + struct.pack('<BBHQ', l, pages0 | (pages1 << 4), n, va)
    assert len(h) == 52
    return h + bytes(ram)


ram = ram_4level(15, {0x400000: 0x5000, 0x401000: 0x6000}, huge2m={0x200000: 0})
write('fuzz_guestmem', 'long-4level', gm(0x80000011, 0x1000, 0x20, 0x500, 0, 1, 15, 0, 0x2000, 0x400800, ram))
write('fuzz_guestmem', 'long-2m', gm(0x80000011, 0x1000, 0x20, 0x500, 0, 1, 15, 0, 0x1800, 0x200f00, ram))
ram = bytearray(4 * PG)
struct.pack_into('<Q', ram, 0x1000 + 511 * 8, 0x1000 | 7)
write('fuzz_guestmem', 'last-page-self-map',
      gm(0x80000011, 0x1000, 0x20, 0x500, 0, 1, 4, 0, 0x3000, 0xffffffffffffffea, ram))
ram = bytearray(8 * PG)
struct.pack_into('<Q', ram, 0x1000, 0x2000 | 1)
struct.pack_into('<Q', ram, 0x2000, 0x3000 | 3)
struct.pack_into('<Q', ram, 0x3000 + 4 * 8, 0x4000 | 3)
struct.pack_into('<Q', ram, 0x3000 + 5 * 8, 0x100000000 | 3)
write('fuzz_guestmem', 'pae', gm(0x80000011, 0x1000, 0x20, 0, 0, 0, 8, 1, 0x1800, 0x4c00, ram))
ram = bytearray(4 * PG)
struct.pack_into('<I', ram, 0x1000, 0x83)
struct.pack_into('<I', ram, 0x1004, 0x2000 | 3)
struct.pack_into('<I', ram, 0x2000, 0x3000 | 3)
write('fuzz_guestmem', 'legacy-pse', gm(0x80000011, 0x1000, 0x10, 0, 0xffff0000, 0, 4, 0, 0x1000, 0x10000, ram))
write('fuzz_guestmem', 'paging-off', gm(0x11, 0, 0, 0, 0xf0000, 0, 4, 1, 0x3000, 0x10000000 - 0xf0000, ram))

# ---- fuzz_hcall
def hc(ops, ram0, ram1=b''):
    h = bytes([len(ops)]) + b''.join(struct.pack('<BBHI', k, v, 0, val) for k, v, val in ops)
    return h + bytes(ram0).ljust(64 * 1024, b'\0') + bytes(ram1)


W4, R4 = 1 | (2 << 1), 0 | (2 << 1)
ram = bytearray(PG)
struct.pack_into('<IiQQQQ', ram, 0x100, 1, 0, 0, 0, 0, 0)                 # clock
struct.pack_into('<IiQQQQ', ram, 0x200, 2, 0, 0x800, 64, 0, 0)           # random
struct.pack_into('<IiQQQQ', ram, 0x300, 2, 0, 0xffc0, 4096, 0, 0)        # random past the end
struct.pack_into('<IiQQQQ', ram, 0x400, 9, 0, 0, 0, 0, 0)                 # unknown
write('fuzz_hcall', 'clock-random', hc([(R4, 0, 0), (W4, 0, 0x100), (W4, 1, 0x200), (W4, 0, 0x300), (W4, 0, 0x400)],
                                       ram))
fault = fault_rec(0x400004, 0x401800, 0, b'evil\x1b[2J' + b'A' * 70, 2)
ram = bytearray(PG * 2)
ram[0x1000:0x1000 + 384] = fault
struct.pack_into('<Q', ram, 0x1000 + 264 + 8, 0x100000000)                # mappings_gpa at 4 GiB
struct.pack_into('<IiQQQQ', ram, 0x100, 3, 0, 0x1000, 0, 0, 0)
ram1 = mappings([(0x400000, 0x401000, 5, 1), (0x401000, 0x402000, 3, 2)])
write('fuzz_hcall', 'fault', hc([(W4, 0, 0x100)], ram, ram1))
ram2 = bytearray(ram)
struct.pack_into('<IiQQQQ', ram2, 0x100, 3, 0, 0xfe80, 0, 0, 0)           # record across the end of RAM
write('fuzz_hcall', 'fault-at-end', hc([(W4, 0, 0x100), (W4 | 8, 0, 0x100), (1, 0, 0x100)], ram2))
