"""A real SMTP server for the tests (aiosmtpd, from Debian's python3-aiosmtpd).

usage: smtp_server.py PORT MAILDIR
Every accepted message is written to MAILDIR/<n>.eml. Recipients starting with "reject" get a
permanent 550; recipients starting with "flaky" get a 451 the first time, then are accepted.
"""
import asyncio
import os
import sys

from aiosmtpd.controller import Controller


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


def main():
    port = int(sys.argv[1])
    maildir = sys.argv[2]
    os.makedirs(maildir, exist_ok=True)
    controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    print("smtp server on 127.0.0.1:%d" % port, flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
