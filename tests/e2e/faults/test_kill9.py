"""kill -9 under load, many rounds (fault table: "kill -9 under load").

Each round: mailsink runs on the same database; SENDERS client threads send messages
(each carrying X-Hash, the SHA-256 of its body) and log the id of every 250; the
pipelining load generator (bench/smtp-load.c, SMTP_LOAD_BIN) adds background load when
available; at a random moment mailsink gets SIGKILL; it is restarted on the same database.
Expected after every restart: every acknowledged message present and byte for byte what
was sent; every stored message that carries an X-Hash matches it (no half row); PRAGMA
integrity_check ok. Committed-but-unacknowledged extras are allowed.
KILL_ROUNDS rounds (100; 10 under a sanitizer; FAULTS_KILL_ROUNDS sets it).
tests/mailsink/test_crash.py has the single-round version."""

import os
import random
import signal
import subprocess
import threading
import time

from acklib import SENDER_DEADLINE, hash_ok, sender
from faultlib import KILL_ROUNDS, SANITIZED, serves
from mslib import Db

SENDERS = 6
KILL_AFTER = (0.3, 2.5) if SANITIZED else (0.2, 0.9)  # seconds of load, uniform


def background_load(ms):
    load = os.environ.get("SMTP_LOAD_BIN")
    if not load or not os.access(load, os.X_OK):
        return None
    return subprocess.Popen([load, "--port", str(ms.port), "--sessions", "3", "--messages",
                             "1000000", "--size", "3000", "--pipelining", "--timeout", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill9_rounds_lose_nothing_acknowledged(start, tmp_path):
    db_path = str(tmp_path / "kill.db")
    rng = random.Random(7)
    acked_all = {}
    seen = set()  # ids whose rows were checked after an earlier restart
    log = []
    ms = start(db=db_path)
    for round_no in range(KILL_ROUNDS):
        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=sender, args=(ms, round_no, n, acked, stop),
                                    daemon=True) for n in range(SENDERS)]
        for t in threads:
            t.start()
        load = background_load(ms)
        time.sleep(rng.uniform(*KILL_AFTER))
        ms.expected_exit = None  # killed on purpose
        ms.proc.send_signal(signal.SIGKILL)
        assert ms.wait(10) == -signal.SIGKILL
        stop.set()
        for t in threads:
            t.join(SENDER_DEADLINE + 15)
        assert not any(t.is_alive() for t in threads), "a sender hangs"
        if load:
            load.wait(30)
        for mid, content in acked:
            acked_all[mid] = content

        ms = start(db=db_path)  # restart on the same database
        with Db(db_path) as db:
            ids = set(db.ids())
            missing = [m for m in acked_all if m not in ids]
            # a stored row never changes, so the bytes of each are checked once: the
            # messages acknowledged in this round, and rows new since the last restart
            new_acked = [m for m, _ in acked]
            damaged = [m for m in new_acked if m in ids and db.body(m) != acked_all[m]]
            bad_hash = [m for m in ids - seen if hash_ok(db.body(m)) is False]
            integrity = db.integrity()
        seen |= ids
        log.append("round %d: acked %d (total %d), stored %d, extra %d"
                   % (round_no + 1, len(acked), len(acked_all), len(ids),
                      len(ids) - len(acked_all)))
        assert integrity == ["ok"], (log[-1], integrity)
        assert not missing, "acknowledged but lost: %r (%s)" % (missing[:5], log[-1])
        assert not damaged, "stored differently: %r (%s)" % (damaged[:5], log[-1])
        assert not bad_hash, "half-written rows: %r (%s)" % (bad_hash[:5], log[-1])
    print("\n".join(log))
    assert len(acked_all) >= KILL_ROUNDS, "hardly any load was acknowledged: %s" % log
    # the last restart serves and stops cleanly (teardown checks exit 0)
    serves(ms)
