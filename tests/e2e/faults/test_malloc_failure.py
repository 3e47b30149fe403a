"""Allocation failure (fault table: "malloc failure"), two ways.

1. LD_PRELOAD of failmalloc.c: after the calls start-up takes, one allocation in
ONE_IN fails, for several ONE_IN and seeds, while clients send messages of many sizes.
Expected: every reply is a 250 for a message that is stored byte for byte, a 4xx, or the
connection closes; never a 5xx (a lack of memory is no reason to refuse mail for good);
mailsink either keeps running or exits (GLib's g_malloc aborts by design; its logging of
that can itself crash), and after a restart without the fault every acknowledged message
is there and PRAGMA integrity_check is ok. With GLib's own calls spared (failmalloc's
FAILMALLOC_SPARE), mailsink must keep running in every round. The run must have seen
faults (non-250 answers or exits) and 250s both.
Bugs this found, fixed with it: a failed allocation in libevent's read watermark crashed
the server (conn.c now stops reading by itself); a line buffer that could not grow gave
"500 line too long" (now 451); a reply or a hook's answer that could not be queued left
the client waiting (the connection is closed; server.c keeps answers in a reserve); the
"listening on" line could go missing.

2. RLIMIT_AS, the cheap way: the running mailsink's address-space limit (prlimit --as, soft limit) is set to what it
maps now, then messages of 9 MiB arrive, which need more. Expected: each
gets 250 only if it is stored (checked byte for byte), otherwise a 4xx (451/452/421) or
the connection closes; mailsink either keeps running or, if it exits, every message it
acknowledged is in the database. Once the limit is lifted the server (restarted if it
exited) stores mail again. Not under a sanitizer: ASan reserves terabytes of address
space and cannot run under RLIMIT_AS at all.
Seen here: the first message gets 451 4.3.0 (SQLite's commit fails), the next one ends
the process: GLib's g_malloc (GMime) aborts with SIGTRAP on "failed to allocate". The
table allows an exit with acknowledged mail safe, and that holds."""

import os
import random
import shutil
import subprocess
import threading

import pytest

from faultlib import SANITIZED, MiB, deliver, message, server_env, serves, transaction
from mslib import Db, RecordingSMTP, accepted_id

# (one in how many allocations fails, seed): from a fault every few calls to a rare one
PRELOAD_ROUNDS = [(one_in, seed) for one_in in (5, 50, 500, 5000) for seed in (1, 2, 3)]
PRELOAD_CLIENTS = 3
PRELOAD_MESSAGES = 8  # per client and round
# seconds a client waits for a reply. A failed allocation inside libevent (a timer or a
# write event it cannot schedule) can still leave a reply unsent, rarely (1 session in
# ~500 seen); such a wait is counted as "slow", and the client goes on.
CLIENT_TIMEOUT = 8
# GLib aborts by design when g_malloc fails (and its logging of that can crash): with
# these spared, every fault lands where mailsink, SQLite, libevent, OpenSSL or Jansson
# must handle it, and mailsink must keep running. libc too, as GLib formats through
# vasprintf and aborts when that fails (mailsink's own str_dup calls malloc itself).
GLIB = "libglib-2.0,libgobject-2.0,libgio-2.0,libgmime-3.0,libc.so"

HEADROOM = 0


def vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise KeyError("VmSize")


def failmalloc_lib(tmp_path):
    """The preload library: FAILMALLOC_LIB (built by CMake), else compiled here."""
    lib = os.environ.get("FAILMALLOC_LIB")
    if lib:
        assert os.path.exists(lib), "FAILMALLOC_LIB=%s does not exist" % lib
        return lib
    lib = str(tmp_path / "failmalloc.so")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failmalloc.c")
    subprocess.run([shutil.which("cc") or "gcc", "-shared", "-fPIC", "-O2", "-o", lib, src],
                   check=True, timeout=60)
    return lib


def preload_env(tmp_path, lib, **fail):
    env = {"LD_PRELOAD": lib}
    env.update({"FAILMALLOC_" + k.upper(): str(v) for k, v in fail.items()})
    return server_env(tmp_path, env)


def start_up_calls(start, tmp_path, lib, db, spare):
    """Allocations mailsink makes from its start to listening (and its stop)."""
    report = tmp_path / "failmalloc.report"
    ms = start(db=db, env=preload_env(tmp_path, lib, after=0, report=report, spare=spare))
    assert ms.stop() == 0
    calls, failed = map(int, report.read_text().split())
    assert failed == 0
    return calls


def client(ms, rng, acked, outcomes):
    """PRELOAD_MESSAGES messages over one or more sessions; every outcome recorded."""
    sent = 0
    for _ in range(PRELOAD_MESSAGES * 2):
        if sent >= PRELOAD_MESSAGES:
            return
        try:
            with RecordingSMTP(ms.addr, ms.port, timeout=CLIENT_TIMEOUT,
                               local_hostname="oom.test") as s:
                code, text = s.ehlo()
                if code != 250:
                    outcomes.append(("EHLO", code, text[:70]))
                    continue
                while sent < PRELOAD_MESSAGES:
                    sent += 1
                    content = message("oom %d" % rng.randrange(10**9),
                                      rng.choice((0, 2000, 40000, 300000)))
                    for step, (code, text) in (("MAIL", s.mail("a@x.example")),
                                               ("RCPT", s.rcpt("b@y.example"))):
                        if code != 250:
                            outcomes.append((step, code, text[:70]))
                            break
                    else:
                        code, text = s.data(content)
                        outcomes.append(("DATA", code, text[:70] if code != 250 else b""))
                        if code == 250:
                            acked[accepted_id(text.decode())] = content
                        continue
                    s.rset()
        except Exception as e:  # the connection closed (421, or mailsink gone)
            outcomes.append(("closed", type(e).__name__, str(e)[:60].encode()))


@pytest.mark.skipif(SANITIZED, reason="ASan replaces malloc and must be loaded first")
@pytest.mark.parametrize("spare", ["", GLIB], ids=["every-caller", "sparing-glib"])
def test_failing_malloc_never_gives_250_for_unstored_mail(start, tmp_path, spare):
    lib = failmalloc_lib(tmp_path)
    db = str(tmp_path / "oom.db")
    serves(start(db=db), "creates the database")
    acked_all, log, counts = {}, [], {"250": 0, "4xx": 0, "closed": 0, "exits": 0, "slow": 0}
    for one_in, seed in PRELOAD_ROUNDS:
        # the faults begin where start-up ends (it grows with the database)
        after = start_up_calls(start, tmp_path, lib, db, spare)
        env = preload_env(tmp_path, lib, after=after, one_in=one_in, seed=seed, spare=spare)
        try:
            ms = start(db=db, env=env)
        except AssertionError as e:  # a failed start-up: allowed, nothing was acknowledged
            log.append("1/%d seed %d: did not start (%s)" % (one_in, seed, str(e)[:60]))
            counts["exits"] += 1
            continue
        ms.expected_exit = None  # it may exit on a failed allocation
        acked, outcomes = {}, []
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(ms, random.Random(seed * 10 + n), acked, outcomes))
                   for n in range(PRELOAD_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a client hangs"
        bad = [o for o in outcomes if isinstance(o[1], int) and o[1] >= 500]
        assert not bad, "a lack of memory gave a permanent refusal: %r" % bad
        alive = ms.proc.poll() is None
        if spare:  # only GLib aborts on a failed allocation, and it is spared here
            assert alive, "mailsink died (%s) of a failed allocation: %r" % (
                ms.proc.returncode, sorted(set(outcomes)))
        rc = ms.stop() if alive else ms.proc.returncode
        counts["250"] += len(acked)
        counts["4xx"] += sum(1 for o in outcomes if isinstance(o[1], int) and o[1] >= 400)
        counts["closed"] += sum(1 for o in outcomes if o[0] == "closed")
        counts["slow"] += sum(1 for o in outcomes if b"timed out" in o[2])
        counts["exits"] += not alive
        acked_all.update(acked)
        log.append("1/%d seed %d (after %d): %d acknowledged, %s; %s" % (
            one_in, seed, after, len(acked), sorted(set(outcomes) - {("DATA", 250, b"")}),
            "running, stop -> %s" % rc if alive else "exited %s" % rc))
        # what it acknowledged is stored, whatever happened to the process
        check = start(db=db)
        with Db(db) as d:
            ids = set(d.ids())
            lost = [m for m in acked_all if m not in ids]
            assert not lost, "acknowledged but not stored: %r (%s)" % (lost[:5], log[-1])
            changed = [m for m in acked if d.body(m) != acked[m]]
            assert not changed, "stored differently: %r (%s)" % (changed[:5], log[-1])
            assert d.integrity() == ["ok"]
        assert check.stop() == 0
    print("\n".join(log) + "\n%r" % counts)
    assert counts["250"] > 0, "no message got through at all: %s" % log
    assert counts["4xx"] + counts["closed"] + counts["exits"] > 0, (
        "no allocation failure showed: %s" % log)
    serves(start(db=db), "after the faults")


@pytest.mark.skipif(SANITIZED, reason="RLIMIT_AS cannot work with ASan's shadow memory")
def test_address_space_limit_never_gives_250_for_unstored_mail(start, tmp_path):
    db = str(tmp_path / "mail.db")
    ms = start(db=db)
    first = deliver(ms, message("before the limit"))
    pid = str(ms.proc.pid)
    limit = vm_size(ms.proc.pid) + HEADROOM
    subprocess.run(["prlimit", "--pid", pid, "--as=%d:" % limit], check=True, timeout=20)
    acked, refused = {first: None}, []
    try:
        for i in range(4):
            content = message("under the limit %d" % i, 9 * MiB)
            try:
                code, text = transaction(ms, content, timeout=30)
            except (OSError, ConnectionError) as e:
                refused.append(repr(e))
                if ms.proc.poll() is not None:
                    break
                continue
            if code == 250:
                acked[accepted_id(text[0])] = content
            else:
                assert 400 <= code < 500, (code, text)
                refused.append("%d %s" % (code, text[0]))
    finally:
        if ms.proc.poll() is None:
            subprocess.run(["prlimit", "--pid", pid, "--as=unlimited:"], timeout=20)
    print("malloc: limit %.0f MiB: acknowledged %d, refused %r, mailsink %s"
          % (limit / MiB, len(acked) - 1, refused,
             "running" if ms.proc.poll() is None else "exited %s" % ms.proc.returncode))
    assert refused or ms.proc.poll() is not None, (
        "the address-space limit did not bite: all 4 messages got 250 (limit %d)" % limit)
    if ms.proc.poll() is not None:
        ms.expected_exit = None  # an orderly exit on ENOMEM is allowed; lost mail is not
        ms = start(db=db)
    with Db(db) as d:
        for mid, content in acked.items():
            assert mid in d.ids(), "acknowledged but not stored: %s" % mid
            if content is not None:
                assert d.body(mid) == content
        assert d.integrity() == ["ok"]
    # limit gone: stores again
    content = message("after the limit", 4 * MiB)
    rid = deliver(ms, content)
    with Db(db) as d:
        assert d.body(rid) == content
