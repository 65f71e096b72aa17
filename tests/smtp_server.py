"""A real SMTP server (aiosmtpd) for scorekeeper's email tests.

Binds 127.0.0.1 on a free port, prints `READY <port>` once it accepts connections,
and writes every message it accepts to `<dir>/<n>.json`: the envelope, the login that
authenticated (if any), the TLS version of the connection (if any), the decoded headers
and every decoded text part, parsed with Python's own `email` package, so the tests
read what a mail client would show.

    python3 tests/smtp_server.py --dir DIR [--mode none|starttls|tls]
        [--cert PEM --key PEM] [--auth USER:PASSWORD]
        [--refuse-rcpt ADDRESS] [--defer-rcpt ADDRESS]

`--mode starttls` offers STARTTLS and refuses every command but EHLO/QUIT before it
(aiosmtpd's `require_starttls`); `--mode tls` speaks TLS from the first byte (SMTPS).
`--auth` requires AUTH PLAIN/LOGIN with exactly these credentials before MAIL.
`--refuse-rcpt` answers RCPT TO for that address with 550, `--defer-rcpt` with 451.
The server stops when its standard input closes (the test dropped it) or on SIGTERM.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import signal
import socket
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    """The handler: checks recipients, saves accepted messages."""

    def __init__(self, directory, refuse, defer):
        self.directory = directory
        self.refuse = {address.lower() for address in refuse}
        self.defer = {address.lower() for address in defer}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address.lower() in self.defer:
            return "451 4.3.0 <%s>: Mailbox temporarily unavailable, try later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in message.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "transfer_encoding": part.get("Content-Transfer-Encoding"),
                    "body": part.get_content(),
                }
            )
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None,
            "tls_version": ssl_object.version() if ssl_object is not None else None,
            "content_type": message.get_content_type(),
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "parts": parts,
        }
        self.count += 1
        path = os.path.join(self.directory, "%d.json" % self.count)
        # Written under another name first, so a reader never sees half a file.
        with open(path + ".tmp", "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2)
        os.replace(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"


def authenticator_for(expected):
    user, password = expected.split(":", 1)

    def authenticate(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticate


async def serve(arguments):
    handler = Saver(arguments.dir, arguments.refuse_rcpt, arguments.defer_rcpt)
    context = None
    if arguments.mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arguments.cert, arguments.key)
    options = {
        "hostname": "smtp.test",
        "authenticator": authenticator_for(arguments.auth) if arguments.auth else None,
        "auth_required": bool(arguments.auth),
        # Over SMTPS the whole connection is TLS already; over starttls aiosmtpd checks it.
        "auth_require_tls": arguments.mode == "starttls",
    }
    if arguments.mode == "starttls":
        options["tls_context"] = context
        options["require_starttls"] = True

    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(
        lambda: SMTP(handler, **options),
        sock=sock,
        ssl=context if arguments.mode == "tls" else None,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Standard input closing means the test process is gone: never outlive it.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1024) else None)
    print("READY %d" % sock.getsockname()[1], flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    # aiosmtpd logs every refused TLS handshake with a traceback, and warns that AUTH
    # over SMTPS does not "require TLS" (it is TLS already): tests provoke both on purpose.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    parser.add_argument("--refuse-rcpt", action="append", default=[])
    parser.add_argument("--defer-rcpt", action="append", default=[])
    arguments = parser.parse_args()
    if arguments.mode != "none" and not (arguments.cert and arguments.key):
        parser.error("--mode %s needs --cert and --key" % arguments.mode)
    asyncio.run(serve(arguments))


if __name__ == "__main__":
    main()
