"""The wall clock jumps (fault table: "clock jump (-1 h / +1 day)").

mailsink runs under libfaketime (Debian package faketime) with its offset read from a
file on every call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE) and CLOCK_MONOTONIC left
alone (DONT_FAKE_MONOTONIC: a real clock step does not move it either). The offset goes
+0, -1 h, +1 day, -1 h while messages arrive, three per step. Expected: the Received
dates follow the fake clock (so the jump really happened), every id is unique, `mailsink
list` gives them newest-inserted first whatever their dates, and an idle connection is
closed by --command-timeout (3 s) measured on the monotonic clock: not at once after
+1 day, not never after -1 h."""

import email.utils
import glob
import os
import re
import time

import pytest

from faultlib import SANITIZED, deliver, message, server_env
from mslib import Db, RawClient, field, json_messages, show

COMMAND_TIMEOUT = 3


def faketime_lib():
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not libs:
        pytest.skip("libfaketime is not installed (Debian package faketime; scripts/deps.sh)")
    return libs[0]


def received_date(raw):
    m = re.search(rb"\r\nReceived: (?:.|\r\n[ \t])*?;\s*([^\r\n]+)", raw)
    assert m, raw[:400]
    return email.utils.parsedate_to_datetime(m.group(1).decode())


def set_offset(path, offset):
    with open(path + ".tmp", "w") as f:
        f.write(offset + "\n")
    os.replace(path + ".tmp", path)
    time.sleep(0.2)


def idle_connection(ms):
    """An idle session after EHLO, and when it became idle (monotonic)."""
    c = RawClient(ms.addr, ms.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO idle.test")[0] == 250
    return c, time.monotonic()


def idle_for(conn, limit):
    """Seconds from going idle until the server closed it with 421 4.4.2, or None."""
    c, since = conn
    c.sock.settimeout(limit)
    try:
        code, text = c.reply()
    except OSError:
        return None
    finally:
        took = time.monotonic() - since
    assert code == 421 and text[0].startswith("4.4.2"), (code, text)
    c.close()
    return took


@pytest.mark.skipif(SANITIZED, reason="libfaketime and the ASan runtime both interpose "
                    "clock_gettime: under load mailsink hung at start ('Unexpected recursive "
                    "calls to clock_gettime()'); the plain build runs this test")
def test_clock_jumps_keep_ids_order_and_timeouts(start, tmp_path):
    lib = faketime_lib()
    stamp = str(tmp_path / "faketime.rc")
    set_offset(stamp, "+0")
    extra = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": stamp, "FAKETIME_NO_CACHE": "1",
             "DONT_FAKE_MONOTONIC": "1"}
    env = server_env(tmp_path, extra)
    ms = start("--command-timeout", str(COMMAND_TIMEOUT), env=env)
    inserted = []
    idle = {}
    for step, offset in enumerate(["+0", "-1h", "+1d", "-1h"]):
        if step >= 2:  # idle since before the clock moves a day on / a day and 1 h back
            idle[offset] = idle_connection(ms)
        set_offset(stamp, offset)
        for i in range(3):
            inserted.append(deliver(ms, message("clock %s %d" % (offset, i))))
        if step >= 2:
            took = idle_for(idle[offset], COMMAND_TIMEOUT + 10)
            assert took is not None, "idle connection not closed after the %s jump" % offset
            assert COMMAND_TIMEOUT - 0.5 <= took <= COMMAND_TIMEOUT + 5, (offset, took)

    assert len(set(inserted)) == len(inserted), inserted
    with Db(ms.db) as db:
        dates = [received_date(db.raw(m)) for m in inserted]
    hours = [(d - dates[0]).total_seconds() / 3600 for d in dates]
    # the fake clock was in effect: -1 h, then +1 day, then -1 h again
    assert -1.2 < hours[3] < -0.8 and 23.8 < hours[6] < 24.2 and -1.2 < hours[9] < -0.8, hours
    r = ms.cli("list", "--json")
    assert r.returncode == 0, show(r)
    listed = [field(m, "id") for m in json_messages(r.stdout)]
    assert listed == inserted[::-1], (listed, inserted)


@pytest.mark.skipif(SANITIZED, reason="libfaketime and the ASan runtime both interpose "
                    "clock_gettime (see above)")
def test_ids_unique_when_the_clock_stands_still_across_restarts(start, tmp_path):
    """The wall clock frozen at one second (libfaketime without '@'), mailsink started
    three times on one database, four messages each: every time the same second, so ids
    made from the clock (and a counter that starts again with the process) would repeat.
    Expected: all twelve ids differ, the Received dates are all that one second (the
    freeze was in effect), and the list is newest-inserted first."""
    lib = faketime_lib()
    stamp = str(tmp_path / "faketime.rc")
    set_offset(stamp, "2030-01-01 12:00:00")
    extra = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": stamp, "FAKETIME_NO_CACHE": "1",
             "DONT_FAKE_MONOTONIC": "1"}
    db = str(tmp_path / "frozen.db")
    inserted = []
    for run in range(3):
        ms = start(db=db, env=server_env(tmp_path, extra))
        for i in range(4):
            inserted.append(deliver(ms, message("frozen %d %d" % (run, i))))
        assert ms.stop() == 0
    assert len(set(inserted)) == len(inserted), inserted
    with Db(db) as d:
        dates = {received_date(d.raw(m)).isoformat() for m in inserted}
    assert dates == {"2030-01-01T12:00:00+00:00"}, dates
    ms = start(db=db)
    r = ms.cli("list", "--json")
    assert r.returncode == 0, show(r)
    listed = [field(m, "id") for m in json_messages(r.stdout)]
    assert listed == inserted[::-1], (listed, inserted)
