#!/usr/bin/env python3
"""tests/tools/answer.py [PROMPT REPLY]... -- COMMAND [ARG...] - run COMMAND
on a new pseudo-terminal (its stdin, stdout and stderr), answer each
PROMPT (a substring of its output, in order) with REPLY and a newline,
copy everything it printed to our stdout, and exit with its status (124
when a prompt did not come within 120 s)."""
import os, pty, select, sys, time

i = sys.argv.index('--')
pairs = sys.argv[1:i]
cmd = sys.argv[i + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen, out, k = b'', sys.stdout.buffer, 0
deadline = time.time() + 120
while True:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out.write(data)
        out.flush()
        seen += data
    if k < len(pairs) and pairs[k].encode() in seen:
        seen = seen[seen.index(pairs[k].encode()) + len(pairs[k]):]
        os.write(fd, pairs[k + 1].encode() + b'\n')
        k += 2
        deadline = time.time() + 120
    if time.time() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(124)
_, st = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st))
