"""The bench's aiosmtpd handler: every message as received, in a Maildir, without parsing it or syncing it to disk.

aiosmtpd's own `Mailbox` handler parses each message into an `email.message.Message`, writes it back out, and
Python's `mailbox` module fsyncs every file. aiosmtpd runs on one thread, so on a disk with a journal those fsyncs
and the parsing set its pace (about 250 mails/s on a 2-core Intel Xeon, docs/benchmarks.md), far below what the
server delivers: the bench would measure the sink. Here a message costs one file written in `tmp/` and renamed into
`new/`, so the file's modification time is when it was complete and a reader of `new/` never sees half a mail.
Run as a script, it is also the sink's launcher (`serve`): aiosmtpd's SMTP protocol with this handler in several
processes on one port.
"""

import itertools
import os


class RawMaildir:
    def __init__(self, directory):
        self.directory = directory
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        self.names = (f"{os.getpid()}.{n}" for n in itertools.count())

    async def handle_DATA(self, server, session, envelope):
        name = next(self.names)
        tmp = os.path.join(self.directory, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, "new", name))
        return "250 OK"


def serve(listen, processes, directory):
    """aiosmtpd's SMTP protocol with this handler in `processes` processes, each accepting on its own socket bound to
    `listen` with SO_REUSEPORT: the kernel spreads the server's connections over them. A mail server takes mail in
    several processes (Postfix runs an smtpd per connection); one aiosmtpd process is one Python thread, and at the
    server's rate it needs about a core to itself on a machine where the server and the load share the same two.
    Every socket listens before any process serves, so no connection finds a port half set up. The children die
    with the parent (the bench kills the parent)."""
    import asyncio
    import ctypes
    import signal
    import socket

    from aiosmtpd.smtp import SMTP

    host, port = listen.rsplit(":", 1)
    sockets = []
    for _ in range(processes):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, int(port)))
        s.listen(1024)
        sockets.append(s)
    mine = sockets[0]
    for s in sockets[1:]:
        if os.fork() == 0:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            mine = s
            break
    for s in sockets:
        if s is not mine:
            s.close()
    handler = RawMaildir(directory)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(loop.create_server(lambda: SMTP(handler, hostname="gatehouse-bench-sink"), sock=mine))
    loop.run_forever()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: gatehouse_bench_sink.py HOST:PORT PROCESSES MAILDIR")
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
