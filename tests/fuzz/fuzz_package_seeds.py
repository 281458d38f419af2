#!/usr/bin/env python3
"""tests/fuzz/fuzz_package_seeds.py OUTDIR - seeds for fuzz_package: a
package signed by the harness's fixed key (private bytes 1..32), as a
whole file (first byte 0) and as manifest and parts (first byte 1: packed
and signed by the harness; 3: also extracted)."""
import hashlib, io, json, os, sys, tarfile
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

key = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
parts = {'p0': b'kernel bytes ' * 20, 'p1': b'\x7fELF app'}
man = {
    'format': 'trialvm-package', 'version': 1, 'name': 'seed', 'package_version': '1',
    'created': '2026-12-01T00:00:00Z', 'expires': '2030-01-01T00:00:00Z', 'feedback': None,
    'vendor_key': {'algorithm': 'ed25519', 'public': pub.hex(), 'fingerprint': hashlib.sha256(pub).hexdigest()},
    'machine': {'mem': 268435456, 'cpus': 1},
    'boot': {'kind': 'trialos', 'cmdline': '', 'app': 'p1', 'args': ['a', 'b']},
    'devices': [],
    'parts': {n: {'file': 'parts/' + n, 'size': len(b), 'sha256': hashlib.sha256(b).hexdigest()} for n, b in parts.items()},
}
mtext = json.dumps(man, indent=2).encode()
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
    for name, data in [('manifest.json', mtext), ('manifest.sig', key.sign(mtext))] + \
            [('parts/' + n, b) for n, b in parts.items()]:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
open(os.path.join(out, 'whole'), 'wb').write(b'\0' + buf.getvalue())
packed = mtext + b'\0' + parts['p0'] + b'\0' + parts['p1']
open(os.path.join(out, 'packed'), 'wb').write(b'\1' + packed)
open(os.path.join(out, 'packed-extract'), 'wb').write(b'\3' + packed)
open(os.path.join(out, 'junk'), 'wb').write(b'\0not a tar')
