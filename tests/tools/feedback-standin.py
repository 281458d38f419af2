#!/usr/bin/env python3
"""tests/tools/feedback-standin.py - a small loopback stand-in for the
vendor's feedback server, written from the upload protocol in README
("The upload protocol"), for testing trialvm's upload client until
trialvm-server exists (and beside it after). Not for production.

  feedback-standin.py --data DIR [--listen 127.0.0.1:0] [--port-file F]
      [--token T] [--tls-cert F --tls-key F] [--log F]
      [--die-mid-chunk N] [--corrupt-chunk N] [--busy N] [--fail N]
      [--slow BYTES_PER_S]

Stores each report durably (temporary name, fsync, rename, directory
fsync) as DIR/reports/ID/manifest.json, DIR/reports/ID/chunks/SHA256 and
DIR/reports/ID/complete once finalized; DIR/created.log gets a line per
report created (a retry must never add one). Faults, for tests: the Nth
chunk upload (counted from 1 over the server's life) dies half read
(--die-mid-chunk: the process exits at once, as a kill would), or is
taken as damaged (--corrupt-chunk: one byte flipped before the check,
422); the first N requests get 429 with Retry-After: 1 (--busy) or 503
(--fail); --slow reads request bodies at that rate. --log: a line per
request, "TIME METHOD PATH STATUS".
"""
import argparse, hashlib, json, os, re, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX = re.compile(r'^[0-9a-f]{64}$')
MAX_BODY = 16 << 20
lock = threading.Lock()
counts = {'chunk': 0, 'req': 0}


def durable_write(path, data):
    tmp = path + '.tmp-%d-%d' % (os.getpid(), threading.get_ident())
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    d = os.open(os.path.dirname(path), os.O_RDONLY)
    os.fsync(d)
    os.close(d)


class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def reply(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        if A.log:
            with lock, open(A.log, 'a') as f:
                f.write('%.3f %s %s %d\n' % (time.time(), self.command, self.path, status))

    def body(self, n):
        if A.slow:
            out = b''
            while len(out) < n:
                out += self.rfile.read(min(A.slow // 10 or 1, n - len(out)))
                time.sleep(0.1)
            return out
        return self.rfile.read(n)

    def gate(self):
        """Token and injected busy/fail answers; True when the request goes on."""
        with lock:
            counts['req'] += 1
            n = counts['req']
        if n <= A.busy:
            self.drain()
            self.reply(429, {'error': 'busy, try later'}, [('Retry-After', '1')])
            return False
        if n <= A.busy + A.fail:
            self.drain()
            self.reply(503, {'error': 'unavailable'})
            return False
        if A.token and self.headers.get('Authorization') != 'Bearer ' + A.token:
            self.drain()
            self.reply(401, {'error': 'this token is not valid (expired?)'})
            return False
        return True

    def drain(self):
        n = int(self.headers.get('Content-Length') or 0)
        if 0 < n <= MAX_BODY:
            self.rfile.read(n)

    def rdir(self, rid):
        return os.path.join(A.data, 'reports', rid)

    def state(self, rid):
        man = json.load(open(os.path.join(self.rdir(rid), 'manifest.json')))
        have = set(os.listdir(os.path.join(self.rdir(rid), 'chunks')))
        missing = sorted(c for c in man['chunks'] if c not in have)
        done = os.path.exists(os.path.join(self.rdir(rid), 'complete'))
        return {'id': rid, 'state': 'complete' if done else 'incomplete', 'missing': missing}

    def route(self):
        m = re.match(r'^/api/v1/reports/([0-9a-f]{64})(/chunks/([0-9a-f]{64})|/finalize)?$', self.path)
        return (m.group(1), m.group(3), (m.group(2) or '') == '/finalize') if m else (None, None, False)

    def do_GET(self):
        if not self.gate():
            return
        rid, chunk, fin = self.route()
        if not rid or chunk or fin:
            return self.reply(404, {'error': 'no such resource'})
        if not os.path.exists(os.path.join(self.rdir(rid), 'manifest.json')):
            return self.reply(404, {'error': 'no such report'})
        self.reply(200, self.state(rid))

    def do_PUT(self):
        if not self.gate():
            return
        rid, chunk, fin = self.route()
        n = int(self.headers.get('Content-Length') or -1)
        if not rid or fin or n < 0 or n > MAX_BODY:
            self.drain()
            return self.reply(404 if not rid or fin else 413, {'error': 'bad request'})
        if chunk is None:
            data = self.body(n)
            if hashlib.sha256(data).hexdigest() != rid:
                return self.reply(400, {'error': 'the manifest is not the one its id names'})
            try:
                man = json.loads(data)
                assert man['format'] == 'trialvm-bundle' and all(HEX.match(c) for c in man['chunks'])
            except Exception:
                return self.reply(400, {'error': 'not a bundle manifest'})
            d = self.rdir(rid)
            with lock:
                new = not os.path.exists(os.path.join(d, 'manifest.json'))
                if new:
                    os.makedirs(os.path.join(d, 'chunks'), exist_ok=True)
                    durable_write(os.path.join(d, 'manifest.json'), data)
                    with open(os.path.join(A.data, 'created.log'), 'a') as f:
                        f.write(rid + '\n')
                        f.flush()
                        os.fsync(f.fileno())
            return self.reply(201 if new else 200, self.state(rid))
        d = self.rdir(rid)
        if not os.path.exists(os.path.join(d, 'manifest.json')):
            self.drain()
            return self.reply(404, {'error': 'no such report'})
        man = json.load(open(os.path.join(d, 'manifest.json')))
        if chunk not in man['chunks'] or man['chunks'][chunk] != n:
            self.drain()
            return self.reply(404 if chunk not in man['chunks'] else 422, {'error': 'not a chunk of this report'})
        with lock:
            counts['chunk'] += 1
            k = counts['chunk']
        if k == A.die_mid_chunk:
            self.rfile.read(n // 2)
            os._exit(3)
        data = bytearray(self.body(n))
        if k == A.corrupt_chunk and data:
            data[len(data) // 2] ^= 0x55
        if hashlib.sha256(data).hexdigest() != chunk:
            return self.reply(422, {'error': 'the chunk does not match its sha256; send it again'})
        durable_write(os.path.join(d, 'chunks', chunk), bytes(data))
        self.reply(201, {'stored': chunk})

    def do_POST(self):
        if not self.gate():
            return
        rid, chunk, fin = self.route()
        self.drain()
        if not rid or not fin:
            return self.reply(404, {'error': 'no such resource'})
        if not os.path.exists(os.path.join(self.rdir(rid), 'manifest.json')):
            return self.reply(404, {'error': 'no such report'})
        st = self.state(rid)
        if st['missing']:
            return self.reply(409, st)
        if st['state'] != 'complete':
            durable_write(os.path.join(self.rdir(rid), 'complete'), b'')
        self.reply(200, self.state(rid))


p = argparse.ArgumentParser()
p.add_argument('--data', required=True)
p.add_argument('--listen', default='127.0.0.1:0')
p.add_argument('--port-file')
p.add_argument('--token', default='')
p.add_argument('--tls-cert')
p.add_argument('--tls-key')
p.add_argument('--log')
p.add_argument('--die-mid-chunk', type=int, default=0)
p.add_argument('--corrupt-chunk', type=int, default=0)
p.add_argument('--busy', type=int, default=0)
p.add_argument('--fail', type=int, default=0)
p.add_argument('--slow', type=int, default=0)
A = p.parse_args()
os.makedirs(os.path.join(A.data, 'reports'), exist_ok=True)
host, port = A.listen.rsplit(':', 1)
srv = ThreadingHTTPServer((host, int(port)), H)
srv.daemon_threads = True
if A.tls_cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(A.tls_cert, A.tls_key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
if A.port_file:
    with open(A.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(A.port_file + '.tmp', A.port_file)
srv.serve_forever()
