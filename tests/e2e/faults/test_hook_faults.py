"""Deliver hooks that hang or crash (fault table: "hook hangs or crashes (exec deliver)").

A --deliver-exec script (sh) looks at the message on stdin: X-Hang: sleeps an hour (in its
child, so the whole process group must be killed); X-Crash: kills itself with SIGSEGV;
X-Exit139: exits 139 (what a shell returns when its program segfaulted); else exit 0.
Expected: a hanging hook gets 451 4.3.0 after --exec-timeout (2 s) and its processes are
killed and reaped (no zombie, no leftover sleep); a hook killed by a signal gets
451 4.3.0; exit 139 gets the documented 554 ("other: 554"); none of these is stored;
while two hooks hang, another session's message is delivered in well under the timeout;
descriptors and RSS back afterwards."""

import os
import threading
import time

from faultlib import Proc, message, no_zombies, serves, settle, transaction
from mslib import Db, wait_until, write_script

EXEC_TIMEOUT = 2

HOOK = """#!/bin/sh
# fault hook for tests/e2e/faults/test_hook_faults.py (marker: %s)
msg=$(cat)
case "$msg" in
*X-Hang:*) sleep 3599.4321; exit 0 ;;
*X-Crash:*) kill -SEGV $$ ;;
*X-Exit139:*) exit 139 ;;
esac
exit 0
"""


def processes_with(marker, but):
    """pids other than but whose command line mentions marker."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != but:
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(name))
            except OSError:
                pass
    return out


def faulty(tag, header):
    return message(tag).replace(b"\r\n\r\n", b"\r\n" + header + b": yes\r\n\r\n", 1)


def test_hanging_and_crashing_hooks(start, tmp_path):
    script = write_script(tmp_path / "fault-hook.sh", HOOK % "fault-hook")
    ms = start("--deliver-exec", script, "--exec-timeout", str(EXEC_TIMEOUT))
    serves(ms, "baseline")
    before = Proc(ms.proc.pid).snapshot()

    # two hanging hooks at once, and a normal message meanwhile
    hung = []

    def hang(i):
        t0 = time.monotonic()
        reply = transaction(ms, faulty("hang %d" % i, b"X-Hang"))
        hung.append((reply, time.monotonic() - t0))

    threads = [threading.Thread(target=hang, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    serves(ms, "while two hooks hang")
    quick = time.monotonic() - t0
    for t in threads:
        t.join(EXEC_TIMEOUT + 20)
    assert quick < EXEC_TIMEOUT - 0.5, "a normal delivery waited %.1f s for hung hooks" % quick
    assert len(hung) == 2, hung
    for (code, text), took in hung:
        assert (code, text[0].split(" ", 1)[0]) == (451, "4.3.0"), (code, text)
        assert EXEC_TIMEOUT - 0.5 <= took <= EXEC_TIMEOUT + 10, took
    # killed and reaped: no sleep left, no zombie
    def leftovers():
        return (processes_with(script, ms.proc.pid) +
                processes_with("3599.4321", ms.proc.pid))

    assert wait_until(lambda: not leftovers(), timeout=5), leftovers()
    no_zombies(ms)

    code, text = transaction(ms, faulty("crash", b"X-Crash"))
    assert (code, text[0].split(" ", 1)[0]) == (451, "4.3.0"), (code, text)
    code, text = transaction(ms, faulty("exit 139", b"X-Exit139"))
    assert code == 554, (code, text)
    no_zombies(ms)
    with Db(ms.db) as db:
        subjects = [db.row(m)["subject"] for m in db.ids()]
    assert not [s for s in subjects if s.startswith(("hang", "crash", "exit"))], subjects
    settle(ms, before)
    serves(ms, "after the faulty hooks")
