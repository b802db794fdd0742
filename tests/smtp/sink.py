"""A real SMTP server for the end-to-end tests: aiosmtpd (Debian's python3-aiosmtpd, run by
/usr/bin/python3), listening on 127.0.0.1, that saves every message it accepts.

Each accepted message becomes `<dir>/<n>.json` (written to a temporary name and renamed, so a
reader never sees half a file): the envelope (`mail_from`, `rcpt_tos`), the headers the tests
read (`subject`, `message_id`, `from`, `to`), the decoded text and HTML parts, and the raw
message. The line `ready <port>` on stdout says the server accepts connections.

Options:
  --auth USER:PASSWORD   require SMTP AUTH (PLAIN or LOGIN) with these credentials
  --starttls CERT KEY    offer STARTTLS with this certificate (and require it before AUTH)
  --implicit-tls CERT KEY  speak TLS from the first byte (smtps)
"""

import argparse
import asyncio
import itertools
import json
import os
import ssl
import sys
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, directory):
        self.directory = directory
        # A restarted server goes on counting after what an earlier run saved.
        saved = [name for name in os.listdir(directory) if name.endswith(".json")]
        self.counter = itertools.count(len(saved) + 1)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = BytesParser(policy=policy.default).parsebytes(raw)

        def part(kind):
            body = message.get_body(preferencelist=(kind,))
            return body.get_content() if body is not None else None

        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "text": part("plain"),
            "html": part("html"),
            "raw": raw.decode("utf-8", errors="replace"),
        }
        n = next(self.counter)
        name = os.path.join(self.directory, "%06d.json" % n)
        temporary = name + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(temporary, name)
        return "250 Message accepted for delivery"


class Credentials:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok)


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs["authenticator"] = Credentials(user, password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.starttls or args.implicit_tls)
    if args.starttls:
        kwargs["tls_context"] = tls_context(*args.starttls)
        kwargs["require_starttls"] = True
    if args.implicit_tls:
        kwargs["ssl_context"] = tls_context(*args.implicit_tls)

    controller = Controller(
        Saver(args.dir), hostname="127.0.0.1", port=args.port, **kwargs
    )
    controller.start()
    print("ready %d" % args.port, flush=True)
    try:
        # Runs until the test kills the process.
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
