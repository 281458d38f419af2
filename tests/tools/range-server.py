#!/usr/bin/env python3
"""tests/tools/range-server.py FILE PORT_FILE [--drop-after N] - serve FILE
at every path over HTTP on 127.0.0.1 (the port written to PORT_FILE),
with Range requests ("bytes=N-") answered 206; with --drop-after N, the
first response stops after N bytes of body and the connection is closed
(an interrupted download). 404 for /missing."""
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

path, port_file = sys.argv[1], sys.argv[2]
drop = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == '--drop-after' else 0
first = threading.Event()


class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == '/missing':
            self.send_response(404)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        data = open(path, 'rb').read()
        start = 0
        r = self.headers.get('Range', '')
        if r.startswith('bytes=') and r.endswith('-'):
            start = int(r[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if drop and not first.is_set():
            first.set()
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
with open(port_file + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + '.tmp', port_file)
srv.serve_forever()
