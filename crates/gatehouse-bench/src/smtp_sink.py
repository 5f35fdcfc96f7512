"""The bench's aiosmtpd handler: every message as received, in a Maildir, without parsing it or syncing it to disk.

aiosmtpd's own `Mailbox` handler parses each message into an `email.message.Message`, writes it back out, and
Python's `mailbox` module fsyncs every file. aiosmtpd runs on one thread, so on a disk with a journal those fsyncs
and the parsing set its pace (about 250 mails/s on a 2-core Intel Xeon, docs/benchmarks.md), far below what the
server delivers: the bench would measure the sink. Here a message costs one file written in `tmp/` and renamed into
`new/`, so the file's modification time is when it was complete and a reader of `new/` never sees half a mail.
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

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("RawMaildir takes one argument: the Maildir's directory")
        return cls(args[0])
