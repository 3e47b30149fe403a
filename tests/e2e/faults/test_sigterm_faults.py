"""SIGTERM with many sessions open (fault table: "SIGTERM / stop with sessions open").

test_lifecycle.py covers one session finishing within the grace and one getting 421.
This adds the mix under load: with --stop-grace 2, SIGTERM arrives while 4 sessions are
mid-DATA and finish within the grace, 4 are mid-DATA and never finish, 2 are idle after
EHLO, and sender threads run whole transactions back to back. Expected: no new
connection is accepted after the signal; every finisher gets 250 and its message is
stored byte for byte; every non-finisher and idle session gets 421 4.3.2 and nothing of
it is stored; every 250 the senders got is stored; the process exits 0 with the
database passing integrity_check."""

import signal
import threading
import time

from faultlib import message, open_data
from mslib import (TIMEOUT, Db, RawClient, RecordingSMTP, accepted_id, is_listening,
                   wait_until)

GRACE = 2


def sender(ms, n, acked, stop):
    for k in range(10000):
        if stop.is_set():
            return
        try:
            with RecordingSMTP(ms.addr, ms.port, timeout=10, local_hostname="term.test") as s:
                for j in range(20):
                    content = message("sender %d-%d-%d" % (n, k, j), 500)
                    s.ehlo_or_helo_if_needed()
                    if s.mail("a@x.example")[0] != 250 or s.rcpt("b@y.example")[0] != 250:
                        return
                    code, text = s.data(content)
                    if code != 250:
                        return
                    acked.append((accepted_id(text.decode()), content))
        except Exception:  # the stop ends sessions this way
            return


def test_sigterm_mid_data_under_load(start):
    ms = start("--stop-grace", str(GRACE))
    finishers = [(open_data(ms), message("finisher %d" % i, 3000)) for i in range(4)]
    stalled = [(open_data(ms), message("stalled %d" % i, 3000)) for i in range(4)]
    idle = []
    for _ in range(2):
        c = RawClient(ms.addr, ms.port)
        assert c.reply()[0] == 220 and c.cmd("EHLO idle.test")[0] == 250
        idle.append(c)
    for c, content in finishers + stalled:
        c.send(content[:1000])
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=sender, args=(ms, n, acked, stop), daemon=True)
               for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    ms.send_signal(signal.SIGTERM)
    assert wait_until(lambda: not is_listening(ms.port), timeout=3), \
        "still accepting after SIGTERM"
    stored = {}
    for c, content in finishers:
        c.send(content[1000:] + b".\r\n")
    for c, content in finishers:
        code, text = c.reply()
        assert code == 250, text
        stored[accepted_id(text[0])] = content
    for c, _ in stalled + [(c, None) for c in idle]:
        c.sock.settimeout(GRACE + 10)
        code, text = c.reply()
        assert (code, text[0]) == (421, "4.3.2 mailsink.test Service shutting down"), text
        assert c.closed_by_peer(5)
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
    assert ms.wait(TIMEOUT) == 0
    for c, _ in finishers + stalled:
        c.close()
    for c in idle:
        c.close()
    assert acked, "the senders got no 250 before the stop"
    with Db(ms.db) as db:
        ids = set(db.ids())
        for mid, content in list(stored.items()) + acked:
            assert mid in ids and db.body(mid) == content, mid
        subjects = [db.row(m)["subject"] for m in ids]
        assert db.integrity() == ["ok"]
    assert not [s for s in subjects if s.startswith("stalled")], subjects
