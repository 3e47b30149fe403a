"""A client that never reads its replies (fault table: "client never reads replies").

Input, from 5 clients at once: EHLO, then one of: 10^6 pipelined NOOPs, 300,000 EHLOs
(long replies), 200,000 MAIL/RSET pairs (these three hit the junk limit), 5,000 whole
transactions of 100 recipients each (no junk: the replies back up until the server
stops reading); written with a bounded send (the send stops when the server stops
reading for 3 s or resets the connection) and never a recv. Expected: mailsink's RSS
stays bounded meanwhile (sampled every 50 ms: under 32 MiB of growth; the replies alone
would be 14-100 MB), the server closes every connection (junk limit or timeout: its
descriptor count drops back), a normal client is served afterwards. (No other client
talks to the server until the flooding connections are closed: another session's commit
was seen to wake a stuck connection up, which would hide the bug 91f1b7e fixed.)"""

import socket
import threading
import time

import pytest

from faultlib import SANITIZED, MiB, RSS_SLACK, Proc, sample_peak_rss, serves, settle

FLOODS = {
    "NOOP x 10^6": b"NOOP\r\n" * 1000000,
    "EHLO x 300000": b"EHLO flood.test\r\n" * 300000,
    "MAIL/RSET x 200000": b"MAIL FROM:<a@x.example>\r\nRSET\r\n" * 200000,
    # no junk: whole transactions of 100 recipients (102 replies each), each stored
    "transactions x 5000": (b"MAIL FROM:<a@x.example>\r\n" + b"RCPT TO:<b@y.example>\r\n" * 100
                            + b"DATA\r\nSubject: t\r\n\r\nx\r\n.\r\n") * 5000,
}
BLOCKED = 3.0  # seconds a send may block before the client gives up writing
SEND_FOR = 25 if SANITIZED else 60  # seconds at most of writing per client
# such clients at once: before 91f1b7e one whose write timed out first stayed open for
# good, and whether that happened depended on timing
PARALLEL = 5
RSS_GROWTH_MAX = 32 * MiB


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_client_that_never_reads(start, flood):
    ms = start("--command-timeout", "5", "--data-timeout", "5", "--stop-grace", "2")
    serves(ms, "baseline")
    p = Proc(ms.proc.pid)
    before = p.snapshot()
    data = memoryview(b"EHLO noread.test\r\n" + FLOODS[flood])
    results, peak, stop = [], [before["rss"]], threading.Event()
    threads = [threading.Thread(target=flood_once, args=(ms, data, results), daemon=True)
               for _ in range(PARALLEL)]
    sampler = threading.Thread(target=sample_peak_rss, args=(p, peak, stop), daemon=True)
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    try:
        # whatever ended the writing, the server must close the connections by itself
        closed = settle(ms, before, timeout=15)
    finally:
        stop.set()
        sampler.join(5)
        for sock, _, _ in results:
            sock.close()
    print("%s: %d connections, sent %r of %d octets (%s); RSS %.1f -> peak %.1f -> %.1f MiB"
          % (flood, PARALLEL, [r[1] for r in results], len(data),
             "; ".join(sorted(set(r[2] for r in results))), before["rss"] / MiB,
             peak[0] / MiB, closed["rss"] / MiB))
    assert len(results) == PARALLEL
    assert peak[0] - before["rss"] < RSS_GROWTH_MAX + RSS_SLACK, (peak, before)
    serves(ms, "after the flood")


def flood_once(ms, data, results):
    """Write data until the server stops reading or closes; never recv. Appends
    (socket, octets sent, how it ended); the socket stays open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the replies back up sooner
    s.settimeout(BLOCKED)
    s.connect((ms.addr, ms.port))
    sent, ended = 0, "all sent"
    t0 = time.monotonic()
    for _ in range(len(data) // 4096 + 2):
        if sent >= len(data) or time.monotonic() - t0 > SEND_FOR:
            break
        try:
            sent += s.send(data[sent : sent + 65536])
        except socket.timeout:
            ended = "server stopped reading"
            break
        except OSError as e:
            ended = "closed by the server (%s)" % e.strerror
            break
    results.append((s, sent, ended))


