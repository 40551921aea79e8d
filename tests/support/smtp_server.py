"""A real SMTP server for the tests (aiosmtpd, from Debian's python3-aiosmtpd).

usage: smtp_server.py PORT MAILDIR [--starttls CERT KEY | --smtps CERT KEY] [--auth USER:PASS]
Every accepted message is written to MAILDIR/<n>.eml. Recipients starting with "reject" get a
permanent 550; recipients starting with "flaky" get a 451 the first time, then are accepted.
--starttls requires STARTTLS before anything else; --smtps speaks TLS from the first byte;
--auth requires AUTH (PLAIN or LOGIN) with these credentials, refusing others with 535.
"""
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0
        self.seen = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("flaky") and address not in self.seen:
            self.seen.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.maildir, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as out:
            out.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 queued as %d" % self.count


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main():
    port = int(sys.argv[1])
    maildir = sys.argv[2]
    os.makedirs(maildir, exist_ok=True)
    options = {}
    args = sys.argv[3:]
    while args:
        flag = args.pop(0)
        if flag == "--starttls":
            options["tls_context"] = tls_context(args.pop(0), args.pop(0))
            options["require_starttls"] = True
        elif flag == "--smtps":
            options["ssl_context"] = tls_context(args.pop(0), args.pop(0))
        elif flag == "--auth":
            user, password = args.pop(0).split(":", 1)

            def check(server, session, envelope, mechanism, auth_data, user=user, password=password):
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, handled=False)

            options["authenticator"] = check
            options["auth_required"] = True
            # Over plain TCP only in --smtps mode, where the socket itself is TLS.
            options["auth_require_tls"] = "ssl_context" not in options
        else:
            raise SystemExit("unknown option " + flag)
    controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("smtp server on 127.0.0.1:%d" % port, flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
