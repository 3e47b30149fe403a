"""Clients for the kill -9 tests: self-checking messages (X-Hash is the SHA-256 of the
body, so a half-written copy anywhere is recognised) and a sender thread that logs the
id and content of every 250 it gets until the server is killed."""

import hashlib
import random
import time

from mslib import RecordingSMTP, accepted_id

SENDER_DEADLINE = 30
BIG_LINES = 64000  # ~3.7 MiB: a write long enough for a kill to land in its middle
LETTERS = bytes(b"klmnopqrst"[i % 10] for i in range(256))  # random octet -> letter


def make_message(tag, rng, big=False):
    lines = BIG_LINES if big else rng.randint(1, 200)
    text = rng.randbytes(50 * lines).translate(LETTERS)
    body = b"".join(b"%05d %s\r\n" % (i % 100000, text[50 * i:50 * i + 50])
                    for i in range(lines))
    return (b"From: kill@x.example\r\nTo: sink@y.example\r\nSubject: kill9 " + tag.encode() +
            b"\r\nX-Hash: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n\r\n" + body)


def hash_ok(content):
    """True or False for our messages (trace headers before ours are fine); None for a
    message without X-Hash (smtp-load's)."""
    head, _, body = content.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.startswith(b"X-Hash: "):
            return line[8:].decode() == hashlib.sha256(body).hexdigest()
    return None


def sender(ms, round_no, n, acked, stop, big_share=0.0):
    """Send until stopped or the server is gone; acked gets (id, content) per 250.
    big_share: the fraction of messages of BIG_LINES lines."""
    rng = random.Random(round_no * 100 + n)
    deadline = time.monotonic() + SENDER_DEADLINE
    k = 0
    for _ in range(100000):
        if stop.is_set() or time.monotonic() > deadline:
            return
        try:
            with RecordingSMTP(ms.addr, ms.port, timeout=10, local_hostname="kill.test") as s:
                if s.ehlo()[0] != 250:
                    return
                for _ in range(rng.randint(1, 10)):
                    k += 1
                    content = make_message("%d-%d-%d" % (round_no, n, k), rng,
                                           big=rng.random() < big_share)
                    if s.mail("kill@x.example")[0] != 250 or s.rcpt("sink@y.example")[0] != 250:
                        return
                    code, text = s.data(content)
                    if code != 250:
                        return
                    acked.append((accepted_id(text.decode()), content))
        except Exception:  # the kill ends every session this way
            return
