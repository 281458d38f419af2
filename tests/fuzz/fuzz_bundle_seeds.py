#!/usr/bin/env python3
"""tests/fuzz/fuzz_bundle_seeds.py OUTDIR - seeds for fuzz_bundle: a
manifest as it is (first byte 0), and packed inputs (first byte 1; see
the harness): a blocks file over zero, stored and master pages, and a
snapshot layout with a verbatim and a memory section."""
import os, struct, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
def w(name, data):
    open(os.path.join(out, name), 'wb').write(data)

def packed(snap, size, mp, lay, pages):
    return b'\x01' + bytes([snap]) + struct.pack('<I', size) + mp + b'\n--\n' + lay + b'\n--\n' + pages

ent = lambda k, n, first=None: struct.pack('<I', k << 30 | n) + (b'' if first is None else struct.pack('<Q', first))
w('blocks', packed(0, 3 * 4096 - 100, ent(0, 1) + ent(2, 1, 0) + ent(1, 1, 1), b'', b'A' * 4096))
w('blocks-over', packed(0, 4096, ent(1, 5, 0), b'', b''))
hdr = b'TVMSLAY1' + struct.pack('<I', 1) + b'0.1.0'.ljust(32, b'\0') + bytes(16) + bytes(16) + struct.pack('<I', 0)
sec_v = struct.pack('<IHHI', 1, 1, 1, 0) + struct.pack('<Q', 4) + b'abcd'
sec_m = struct.pack('<IHHI', 5, 1, 1, 1) + struct.pack('<I', 0) + struct.pack('<Q', 2) + \
    struct.pack('<QIIII', 0, 1, 0, 20, 1234) + struct.pack('<QIIII', 4096, 3, 1, 0, 0)
disk_prefix = struct.pack('<I', 4) + b'vda0' + struct.pack('<Q', 1 << 20)
sec_d = struct.pack('<IHHI', 8, 1, 1, 1) + struct.pack('<I', len(disk_prefix)) + disk_prefix + struct.pack('<Q', 1) + \
    struct.pack('<QIIII', 65536, 1, 0, 20, 99)
w('snapshot', packed(1, 500, ent(2, 1, 0), hdr + sec_v + sec_m + struct.pack('<I', 0xffffffff), b'B' * 4096))
w('snapshot-disk', packed(1, 500, ent(1, 1, 0), hdr + sec_d + struct.pack('<I', 0xffffffff), b''))
man = b'{"format": "trialvm-bundle", "version": 1, "report": {"id": "x", "kind": "app-fault", "summary": "s", ' \
    b'"time": null}, "comment": "c", "master": null, "pages": {"count": 0, "chunks": []}, ' \
    b'"files": [{"name": "report.json", "size": 0, "sha256": "' + b'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' + \
    b'", "recipe": "blocks", "map": ["' + b'0' * 64 + b'"]}], "chunks": {"' + b'0' * 64 + b'": 9}}'
w('manifest', b'\x00' + man)
