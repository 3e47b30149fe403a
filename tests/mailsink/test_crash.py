"""Crash safety: 20 parallel smtplib sessions send mail in a loop; mailsink is killed with
SIGKILL mid-load and restarted on the same database. Every message that got its 250 (the
id from the reply) must be there, complete (raw[trace_size:] is exactly what was sent),
and the database must pass PRAGMA integrity_check. Three rounds on one database.

Run with -s to see the counts (acknowledged vs found vs extra) of each round."""

import random
import smtplib
import signal
import threading
import time

from mslib import Db, RecordingSMTP, accepted_id

SESSIONS = 20
ROUNDS = 3
LOAD_SECONDS = 2.0        # SIGKILL after this much load
MAX_PER_SESSION = 5000    # bound on messages per session per round
SESSION_DEADLINE = 30     # seconds: a sender thread never runs longer


def make_message(seq, rng):
    body = b"".join(b"%06d %s\r\n" % (i, bytes(rng.choice(b"abcdefghij") for _ in range(60)))
                    for i in range(rng.randint(1, 120)))
    return (b"From: crash@x.example\r\nTo: sink@y.example\r\n"
            b"Subject: crash test " + seq.encode() + b"\r\n"
            b"X-Test-Seq: " + seq.encode() + b"\r\n\r\n" + body)


def sender(ms, round_no, n, acked, errors, stop):
    """Send until stopped, the server dies or the bounds hit; acked gets (id, seq, content)
    for every DATA answered 250, errors gets (time, what) for anything else."""
    rng = random.Random(round_no * 1000 + n)
    deadline = time.monotonic() + SESSION_DEADLINE
    sent = 0
    while not stop.is_set() and time.monotonic() < deadline and sent < MAX_PER_SESSION:
        try:
            with RecordingSMTP(ms.addr, ms.port, timeout=10, local_hostname="crash.test") as s:
                code, text = s.ehlo()
                if code != 250:
                    errors.append((time.monotonic(), "EHLO: %d %r" % (code, text)))
                    return
                # a few messages per connection, then a new connection
                for _ in range(rng.randint(1, 8)):
                    if stop.is_set() or sent >= MAX_PER_SESSION:
                        break
                    seq = "%d-%d-%d" % (round_no, n, sent)
                    msg = make_message(seq, rng)
                    sent += 1
                    for verb, arg in ((s.mail, "crash@x.example"), (s.rcpt, "sink@y.example")):
                        code, text = verb(arg)
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, text)
                    code, text = s.data(msg)
                    if code == 250:
                        acked.append((accepted_id(text.decode()), seq, msg))
                    else:
                        errors.append((time.monotonic(), "%s: %d %r" % (seq, code, text)))
                        s.rset()
        except Exception as e:  # the kill ends every session this way
            errors.append((time.monotonic(), "session %d: %r" % (n, e)))
            return


def test_sigkill_mid_load_loses_nothing_acknowledged(start, tmp_path):
    db_path = str(tmp_path / "crash.db")
    all_acked = {}
    totals = []
    for round_no in range(ROUNDS):
        ms = start(db=db_path)
        acked, errors = [], []
        stop = threading.Event()
        threads = [threading.Thread(target=sender, args=(ms, round_no, n, acked, errors, stop),
                                    daemon=True) for n in range(SESSIONS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        ms.expected_exit = None  # killed on purpose
        kill_time = time.monotonic()
        ms.proc.send_signal(signal.SIGKILL)
        killed_at = len(acked)
        ms.wait(10)
        stop.set()
        for t in threads:
            t.join(SESSION_DEADLINE + 15)
        assert not any(t.is_alive() for t in threads), "a sender thread hangs"
        assert ms.proc.returncode == -signal.SIGKILL, ms.proc.returncode
        # before the kill every session went well: no refusal, no error
        early = [what for when, what in errors if when < kill_time]
        assert not early, early[:5]

        # the restart opens, checks and keeps the database
        ms2 = start(db=db_path)
        for mid, seq, msg in acked:
            all_acked[mid] = (seq, msg)
        with Db(db_path) as db:
            ids = set(db.ids())
            found = [mid for mid in all_acked if mid in ids]
            missing = [mid for mid in all_acked if mid not in ids]
            # make_message ends with CRLF and has no leading dots: sent == content
            damaged = [mid for mid in found if db.body(mid) != all_acked[mid][1]]
            extra = len(ids) - len(found)
            integrity = db.integrity()
        print("crash round %d: acknowledged %d (this round %d, %d when SIGKILL was sent), "
              "found %d, missing %d, damaged %d, extra %d (committed, 250 not received)"
              % (round_no + 1, len(all_acked), len(acked), killed_at, len(found),
                 len(missing), len(damaged), extra))
        totals.append((len(all_acked), len(found), extra))
        assert integrity == ["ok"], integrity
        assert not missing, "acknowledged but not stored: %r" % missing[:10]
        assert not damaged, "stored differently than sent: %r" % damaged[:10]
        assert len(found) == len(all_acked)
        assert len(acked) > 0, "no message acknowledged in %.1f s of load" % LOAD_SECONDS
        assert ms2.stop() == 0
    print("crash totals: acknowledged %d, found %d, extra %d" % totals[-1])
