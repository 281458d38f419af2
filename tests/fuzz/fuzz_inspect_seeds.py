#!/usr/bin/env python3
# tests/fuzz/fuzz_inspect_seeds.py - writes the seeds of the `trialvm inspect`
# harnesses (fuzz_inspect_<format>.c) into tests/fuzz/corpus/fuzz_inspect_*/:
# small, valid files of each format, laid out as trialvm's writers lay them
# out (reporter/elfdump.h, appcore.h, windump.h; monitor/report.c), with
# short PT_LOAD data (p_filesz < p_memsz: the tail reads as zero).
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV, NT_SIGINFO = 1, 2, 3, 6, 0x53494749


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def note(name, typ, desc):
    n = name.encode() + b'\0'
    pad = lambda b: b + b'\0' * (-len(b) % 4)
    return struct.pack('<III', len(n), len(desc), typ) + pad(n) + pad(desc)


def ehdr(phnum):
    ident = b'\x7fELF' + bytes([2, 1, 1]) + b'\0' * 9
    return ident + struct.pack('<HHIQQQIHHHHHH', 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)


def phdr(typ, flags, off, vaddr, paddr, filesz, memsz, align):
    return struct.pack('<IIQQQQQQ', typ, flags, off, vaddr, paddr, filesz, memsz, align)


def core(notes, loads, paddr_is_vaddr):
    """loads: list of (addr, memsz, data, flags)."""
    phnum = 1 + len(loads)
    nb = b''.join(notes)
    off = 64 + 56 * phnum
    ph = [phdr(PT_NOTE, 0, off, 0, 0, len(nb), 0, 4)]
    body = nb
    pos = off + len(nb)
    for addr, memsz, data, flags in loads:
        pos += -pos % 16
        body += b'\0' * (pos - off - len(body))
        ph.append(phdr(PT_LOAD, flags, pos, addr, addr if paddr_is_vaddr else 0, len(data), memsz, 0 if paddr_is_vaddr else 4096))
        body += data
        pos += len(data)
    return ehdr(phnum) + b''.join(ph) + body


def prstatus(pid, rip, rsp, sig=0):
    d = bytearray(0x150)
    struct.pack_into('<i', d, 0, sig)
    struct.pack_into('<H', d, 0x0c, sig)
    struct.pack_into('<I', d, 0x20, pid)
    struct.pack_into('<Q', d, 0x70 + 16 * 8, rip)
    struct.pack_into('<Q', d, 0x70 + 19 * 8, rsp)
    struct.pack_into('<Q', d, 0x70 + 18 * 8, 0x246)
    return bytes(d)


def qemu_state(rip, cr3):
    d = bytearray(0x1b8)
    struct.pack_into('<II', d, 0, 1, 0x1b8)
    struct.pack_into('<Q', d, 0x88, rip)
    struct.pack_into('<Q', d, 0x188, 0x80050033)
    struct.pack_into('<Q', d, 0x188 + 24, cr3)
    return bytes(d)


page = bytes((i * 7) & 0xff for i in range(256))
vmci = b'OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n'

# ---- fuzz_inspect_elf: guest dumps
write('fuzz_inspect_elf', 'two-vcpus', core(
    [note('CORE', NT_PRSTATUS, prstatus(1, 0xffffffff81000000, 0x1000)),
     note('CORE', NT_PRSTATUS, prstatus(2, 0xffffffff81000100, 0x2000)),
     note('QEMU', 0, qemu_state(0xffffffff81000000, 0x10000)),
     note('QEMU', 0, qemu_state(0xffffffff81000100, 0x10000)),
     note('VMCOREINFO', 0, vmci)],
    [(0, 0x100000, page, 7), (0x100000000, 0x100000, page[:64], 7)], True))
write('fuzz_inspect_elf', 'prstatus-only', core(
    [note('CORE', NT_PRSTATUS, prstatus(1, 0x100000, 0x8000))],
    [(0x1000, 0x3000, page, 7)], True))

# ---- fuzz_inspect_appcore (and a copy for fuzz_inspect_elf)
psinfo = bytearray(0x88)
psinfo[0x28:0x28 + 9] = b'null-deref'[:9]
psinfo[0x38:0x38 + 16] = b'/bin/null-deref\0'
siginfo = bytearray(128)
struct.pack_into('<iiiiQ', siginfo, 0, 11, 0, 1, 0, 0)
auxv = struct.pack('<6Q', 6, 4096, 25, 0x7fff1f00, 0, 0)
fx = bytearray(512)
struct.pack_into('<H', fx, 0, 0x37f)
struct.pack_into('<I', fx, 24, 0x1f80)
app = core(
    [note('CORE', NT_PRSTATUS, prstatus(1, 0x400123, 0x7fff1f00, 11)),
     note('CORE', NT_PRPSINFO, bytes(psinfo)),
     note('CORE', NT_SIGINFO, bytes(siginfo)),
     note('CORE', NT_AUXV, auxv),
     note('CORE', NT_FPREGSET, bytes(fx))],
    [(0x400000, 0x2000, page, 5), (0x7fff0000, 0x2000, page[:32], 6)], False)
write('fuzz_inspect_appcore', 'null-deref', app)
write('fuzz_inspect_elf', 'app-core', app)
write('fuzz_inspect_appcore', 'minimal', core(
    [note('CORE', NT_PRSTATUS, prstatus(1, 0x401000, 0x7ff000, 6)),
     note('CORE', NT_PRPSINFO, bytes(psinfo))],
    [(0x401000, 0x1000, b'', 5)], False))

# ---- fuzz_inspect_windump
def windump(runs, cpus=1):
    h = bytearray(b'PAGE' * (0x2000 // 4))
    npages = sum(c for _, c in runs)
    struct.pack_into('<4s4sII', h, 0, b'PAGE', b'DU64', 0xf, 0x4563)
    struct.pack_into('<Q', h, 0x10, 0x10000)
    for off in (0x18, 0x20, 0x28, 0x80):
        struct.pack_into('<Q', h, off, 0)
    struct.pack_into('<IIIQQQQ', h, 0x30, 0x8664, cpus, 0x7e7a0001, 0xb000000e, 0, 0x400123, 0)
    struct.pack_into('<IIQ', h, 0x88, len(runs), 0, npages)
    for i, (b, c) in enumerate(runs):
        struct.pack_into('<QQ', h, 0x98 + 16 * i, b, c)
    ctx = 0x348
    h[ctx:ctx + 0x4d0] = bytes(0x4d0)
    struct.pack_into('<II', h, ctx + 0x30, 0x10001f, 0x1f80)
    struct.pack_into('<I', h, ctx + 0x118, 0x1f80)
    struct.pack_into('<Q', h, ctx + 0xf8, 0x400123)
    h[0xf00:0xf98] = bytes(0x98)
    struct.pack_into('<I', h, 0xf00, 0xc0000005)
    struct.pack_into('<Q', h, 0xf10, 0x400123)
    struct.pack_into('<IIQQ', h, 0xf98, 1, 0, 0x2000 + npages * 4096, 133000000000000000)
    h[0xfb0:0xfb0 + 128] = b'trialvm crash dump'.ljust(128, b'\0')
    struct.pack_into('<Q', h, 0x1030, 12345678)
    data = bytearray(npages * 4096)
    data[0:256] = page
    return bytes(h) + bytes(data)


write('fuzz_inspect_windump', 'one-run', windump([(0, 1)]))
write('fuzz_inspect_windump', 'two-runs', windump([(0, 1), (0x100000, 2)], 2))

# ---- fuzz_inspect_report: the harness's directory holds console.log
# ("hello\n") and core.elf ("ELF").
sha = hashlib.sha256(b'hello\n').hexdigest()
vcpu = lambda i: {'index': i, 'mode': 'long', 'cpl': 3, 'rip': '0x400123', 'rsp': '0x7fff1f00', 'cr3': '0x10000'}
rep = {
    'schema': 'trialvm-report', 'version': 1, 'id': '20240102T030405.000Z-1-1', 'trialvm_version': '0.1.0',
    'time': '2024-01-02T03:04:05.000Z', 'uptime_ns': 1234,
    'images': {'app': {'path': 'x', 'sha256': sha}},
    'cause': {'kind': 'app-fault', 'summary': 'null-deref killed by SIGSEGV', 'vcpu': 1,
              'bugcheck_code': '0x7e7a0001', 'signal': 11, 'signal_name': 'SIGSEGV', 'si_code': 1},
    'vcpus': [vcpu(0), vcpu(1)],
    'app': {'name': '/bin/null-deref', 'registers': {'rip': '0x400123'},
            'mappings': [{'start': '0x400000', 'end': '0x402000', 'prot': 'r-x'}]},
    'console_tail': 'hello\n',
    'files': {'console.log': {'size': 6, 'disk_bytes': 4096, 'sha256': sha},
              'core.elf': {'size': 3, 'disk_bytes': 4096}},
}
write('fuzz_inspect_report', 'app-fault', json.dumps(rep, indent=2).encode())
lost = dict(rep, cause={'kind': 'triple-fault', 'summary': 'triple fault', 'vcpu': 0,
                        'cpu_state_lost': {'vcpu': 0, 'why': 'reset by KVM'}}, vcpus=[vcpu(0)])
del lost['app']
write('fuzz_inspect_report', 'triple-fault', json.dumps(lost).encode())
