"""A real SMTP server (aiosmtpd) that writes each message to a directory.

Usage: smtp_sink.py DIR  -- binds 127.0.0.1 on an ephemeral port, prints the
port on the first stdout line, then serves until killed. Each message is
written as DIR/<uuid>.eml (atomically: .tmp then rename), prefixed with an
`X-Envelope-To:` line listing the envelope recipients.
"""
import asyncio
import os
import sys
import uuid

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = os.path.join(self.directory, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\r\n").encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, name + ".eml"))
        return "250 OK"


async def main():
    directory = sys.argv[1]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(directory)), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
