"""A real SMTP server (aiosmtpd) that writes each message to a directory.

Usage: smtp_sink.py DIR [CERT KEY]  -- binds 127.0.0.1 on an ephemeral port, prints the
port on the first stdout line, then serves until killed. Each message is
written as DIR/<uuid>.eml (atomically: .tmp then rename), prefixed with an
`X-Envelope-To:` line listing the envelope recipients. With CERT and KEY
the server offers STARTTLS and refuses mail before it (require_starttls).
"""
import asyncio
import os
import ssl
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
    kwargs = {}
    if len(sys.argv) == 4:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        kwargs = {"tls_context": ctx, "require_starttls": True}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(directory), **kwargs), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
