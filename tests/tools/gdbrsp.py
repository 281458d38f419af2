#!/usr/bin/env python3
"""tests/tools/gdbrsp.py - an independent GDB remote protocol client for
tests/gdb.sh: drives trialvm's --gdb stub packet by packet, checks its
replies against the trialos ELF file (read here, not through trialvm), and
sends it hostile packets. Exit status 0 when every check held; otherwise
the first failed check is printed.

usage: gdbrsp.py HOST PORT --elf TRIALOS_ELF
"""
import re
import socket
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=30)
        self.buf = b""

    def raw(self, data):
        self.s.sendall(data)

    def recv_some(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("the stub closed the connection")
        self.buf += d

    def read_ack(self):
        while not self.buf:
            self.recv_some()
        c, self.buf = self.buf[:1], self.buf[1:]
        return c

    def read_packet(self):
        while True:
            m = re.search(rb"\$([^#]*)#([0-9a-f]{2})", self.buf, re.S)
            if m:
                break
            self.recv_some()
        data, cs = m.group(1), int(m.group(2), 16)
        check(sum(data) % 256 == cs, "a reply with a bad checksum: %r" % m.group(0)[:80])
        self.buf = self.buf[m.end():]
        self.raw(b"+")
        return data.decode("latin-1")

    def cmd(self, payload, expect_ack=True):
        p = payload.encode("latin-1")
        self.raw(b"$" + p + b"#%02x" % (sum(p) % 256))
        if expect_ack:
            a = self.read_ack()
            check(a == b"+", "no ack for %r (got %r)" % (payload[:40], a))
        return self.read_packet()


def elf_info(path):
    """Entry point, PT_LOAD segments (vaddr, paddr, offset, filesz) and the
    file's bytes, from the ELF64 headers."""
    data = open(path, "rb").read()
    check(data[:4] == b"\x7fELF" and data[4] == 2, "%s is not an ELF64 file" % path)
    entry, phoff = struct.unpack_from("<QQ", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segs = []
    for i in range(phnum):
        ptype, _flags, off, vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == 1:
            segs.append((vaddr, paddr, off, filesz))
    return entry, segs, data


def elf_bytes(info, va, n):
    _, segs, data = info
    for vaddr, _paddr, off, filesz in segs:
        if vaddr <= va and va + n <= vaddr + filesz:
            return data[off + va - vaddr: off + va - vaddr + n]
    raise Fail("0x%x is in no segment of the ELF file" % va)


def symbol(path, name):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[2] == name:
            return int(f[0], 16)
    raise Fail("no symbol %s in %s" % (name, path))


def regs_layout(xml_text):
    root = ET.fromstring(xml_text)
    check(root.findtext("architecture") == "i386:x86-64", "the architecture is not i386:x86-64")
    regs = []
    for feat in root.findall("feature"):
        for r in feat.findall("reg"):
            regs.append((r.get("name"), int(r.get("bitsize")), feat.get("name")))
    return regs


def main():
    if len(sys.argv) != 5 or sys.argv[3] != "--elf":
        print(__doc__)
        return 2
    host, port, elf = sys.argv[1], int(sys.argv[2]), sys.argv[4]
    info = elf_info(elf)
    c = Conn(host, port)

    # The VM waits at its start: the boot vCPU stopped, SIGTRAP.
    r = c.cmd("?")
    check(re.fullmatch(r"T05thread:1;", r), "the stop at the start: %r" % r)
    r = c.cmd("qSupported:multiprocess+;swbreak+;hwbreak+")
    check("PacketSize=4000" in r and "qXfer:features:read+" in r, "qSupported: %r" % r)

    # The target description, read in pieces; the register names gdb's
    # amd64 support requires, and the system registers.
    xml, off = "", 0
    while True:
        r = c.cmd("qXfer:features:read:target.xml:%x,200" % off)
        check(r[:1] in ("m", "l"), "qXfer: %r" % r[:40])
        xml += r[1:]
        off += len(r) - 1
        if r[0] == "l":
            break
    regs = regs_layout(xml)
    names = [n for n, _, _ in regs]
    core = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs "
            "st0 st1 st2 st3 st4 st5 st6 st7 fctrl fstat ftag fiseg fioff foseg fooff fop").split()
    check(names[:len(core)] == core, "the core registers are not gdb's amd64 ones in order: %s" % names[:40])
    for n in ("xmm0", "xmm15", "mxcsr", "fs_base", "gs_base", "cr0", "cr3", "cr4", "efer"):
        check(n in names, "no register %s in the target description" % n)
    size = sum(b // 8 for _, b, _ in regs)

    def getregs():
        g = c.cmd("g")
        check(len(g) == 2 * size and re.fullmatch("[0-9a-f]*", g), "the g reply is %d hex digits, not %d" % (len(g), 2 * size))
        raw = bytes.fromhex(g)
        out, pos = {}, 0
        for n, b, _ in regs:
            out[n] = int.from_bytes(raw[pos:pos + b // 8], "little")
            pos += b // 8
        return out

    rg = getregs()
    entry = info[0]
    check(rg["rip"] == entry, "RIP at the start is 0x%x, the ELF's entry 0x%x" % (rg["rip"], entry))
    check(rg["cr0"] & 1 and not rg["cr0"] & 0x80000000, "CR0 at the PVH start is 0x%x (PE on, PG off expected)" % rg["cr0"])
    # One register alone (p) is the same as in g.
    idx = names.index("rip")
    check(int.from_bytes(bytes.fromhex(c.cmd("p%x" % idx)), "little") == entry, "p of rip differs from g")

    # Memory at the entry point is the ELF file's bytes.
    m = c.cmd("m%x,10" % entry)
    check(bytes.fromhex(m) == elf_bytes(info, entry, 16), "memory at the entry differs from the ELF file: %s" % m)

    # A breakpoint at kmain (a higher-half address, placed while paging is
    # off), hidden from reads; continue stops there, swbreak.
    kmain = symbol(elf, "kmain")
    check(c.cmd("Z0,%x,1" % kmain) == "OK", "Z0 at kmain refused")
    check(bytes.fromhex(c.cmd("m%x,4" % kmain)) == elf_bytes(info, kmain, 4), "a read at the breakpoint shows its bytes")
    c.raw(b"+")
    r = c.cmd("c")
    check(re.fullmatch(r"T05thread:1;swbreak:;", r), "the stop at kmain: %r" % r)
    rg = getregs()
    check(rg["rip"] == kmain, "stopped at 0x%x, not at kmain 0x%x" % (rg["rip"], kmain))
    # One step: it leaves kmain's first instruction, still SIGTRAP.
    check(c.cmd("z0,%x,1" % kmain) == "OK", "z0 refused")
    r = c.cmd("vCont;s:1")
    check(r.startswith("T05thread:1;"), "the step's stop: %r" % r)
    rip2 = getregs()["rip"]
    check(rip2 != kmain and kmain < rip2 < kmain + 16, "after one step RIP is 0x%x (kmain 0x%x)" % (rip2, kmain))

    # Hostile packets while stopped: each refused, the stub still answers.
    c.raw(b"$g#00")
    check(c.read_ack() == b"-", "a bad checksum is not NAKed")
    for pkt, want in [
        ("mzz,4", r"E01"),
        ("m%x,100000" % kmain, r"[0-9a-f]{2,%d}" % (2 * 8176)),
        ("mdead00000000,10", r"E14"),
        ("Z0,dead00000000,1", r"E01"),
        ("Z0,%x,1" % (kmain | 0xfff), r"OK|E01"),
        ("z0,%x,1" % (kmain | 0xfff), r"OK"),
        ("Mdead00000000,2:9090", r"E14"),
        ("M%x,2:90" % kmain, r"E01"),
        ("P%x=34120000" % names.index("cs"), r"E01"),
        ("G00", r"E01"),
        ("p2710", r"E45"),
        ("p" + "1" * 17, r"E01"),
        ("Hg63", r"E01"),
        ("vCont;x", r"E01"),
        ("qXfer:features:read:target.xml:ffffff,10", r"E01"),
        ("qXfer:features:read:other.xml:0,10", r"E00"),
        ("m" + "f" * 40 + ",4", r"E01"),
        ("Xdeadbeef,0:", r""),
        ("qThreadExtraInfo,1", "7643505520" + "30"),
    ]:
        r = c.cmd(pkt)
        check(re.fullmatch(want, r), "%r answered %r, expected /%s/" % (pkt[:40], r[:60], want))
    check(c.cmd("qfThreadInfo") == "m1" and c.cmd("qsThreadInfo") == "l", "the thread list is not one vCPU")
    check(getregs()["rip"] == rip2, "RIP changed under the hostile packets")

    # Ctrl-C while it runs.
    c.raw(b"$c#63")
    check(c.read_ack() == b"+", "no ack for c")
    time.sleep(1.0)
    c.raw(b"\x03")
    r = c.read_packet()
    check(re.fullmatch(r"T02thread:1;", r), "the stop after Ctrl-C: %r" % r)

    # An endless packet: the stub drops the connection, the VM lives on.
    c.raw(b"$" + b"a" * 20000)
    try:
        while True:
            c.recv_some()
    except (EOFError, ConnectionResetError):
        pass
    c.s.close()
    c = Conn(host, port)
    r = c.cmd("?")
    check(r.startswith("T"), "a second debugger gets no stop reply: %r" % r)
    c.raw(b"$k#6b")
    try:
        c.read_ack()
    except EOFError:
        pass
    print("gdb protocol checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print("FAIL:", e)
        sys.exit(1)
    except (OSError, EOFError) as e:
        print("FAIL: connection:", e)
        sys.exit(1)
