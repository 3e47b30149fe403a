"""The seed's hooks as programs: --deliver-exec (exit 0 -> 250 and stored, 75 -> 451, other
-> 554 and not stored; envelope in MAILSINK_* variables, message on stdin) and
--validate-host/sender/recipient-exec (non-zero -> 550/553/553 with the first stdout line
as text). No shell ever sees envelope data: senders and recipients built to run `touch`
in a shell must reach the hook verbatim and create nothing."""

import glob
import json
import os
import re
import signal
import threading
import time

import pytest

from mslib import TIMEOUT, Db, accepted_id, send, simple, wait_until, write_script

HOOK = r'''#!/usr/bin/python3
# Records one call (argv, MAILSINK_* environment, stdin, cwd) and exits as told by the
# files beside it: ROLE.code (exit status, default 0), ROLE.badcode (status when an
# argument contains "bad", default 1), ROLE.stdout (what to print), ROLE.sleep,
# ROLE.slowsleep (sleep when the message has "X-Slow: yes"), ROLE.nostdin.
import json, os, sys, time
d = @DIR@
role = sys.argv[1]
def opt(name, default):
    try:
        with open(os.path.join(d, role + "." + name)) as f:
            return f.read()
    except OSError:
        return default
data = b"" if os.path.exists(os.path.join(d, role + ".nostdin")) else sys.stdin.buffer.read()
fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
rec = {"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin": data.decode("latin-1"),
       "pid": os.getpid(), "fds": fds,
       "env": {k: v for k, v in os.environ.items() if k.startswith("MAILSINK_")}}
os.makedirs(os.path.join(d, "calls"), exist_ok=True)
with open(os.path.join(d, "calls", "%s-%d-%d.json" % (role, time.time_ns(), os.getpid())),
          "w") as f:
    json.dump(rec, f)
time.sleep(float(opt("sleep", "0")))
if b"X-Slow: yes" in data:
    time.sleep(float(opt("slowsleep", "0")))
sys.stdout.write(opt("stdout", ""))
sys.stdout.flush()
bad = any("bad" in a for a in sys.argv[2:])
sys.exit(int(opt("badcode", "1")) if bad else int(opt("code", "0")))
'''


class Hook:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "hook"
        self.dir.mkdir(exist_ok=True)
        self.path = write_script(self.dir / "hook.py",
                                 HOOK.replace("@DIR@", repr(str(self.dir))))

    def cmd(self, role, *extra):
        return " ".join([self.path, role] + list(extra))

    def set(self, role, name, value):
        (self.dir / ("%s.%s" % (role, name))).write_text(str(value))

    def calls(self, role):
        files = sorted(glob.glob(str(self.dir / "calls" / (role + "-*.json"))))
        out = []
        for f in files:
            with open(f) as fh:
                out.append(json.load(fh))
        return out


@pytest.fixture
def hook(tmp_path):
    return Hook(tmp_path)


def transaction(ms, sender, rcpts, content=b"Subject: hook\r\n\r\nbody\r\n"):
    """One raw SMTP transaction; returns the replies to MAIL, each RCPT and the data."""
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        out = {"mail": c.cmd("MAIL FROM:<%s>" % sender), "rcpt": [], "data": None}
        if out["mail"][0] != 250:
            return out
        for r in rcpts:
            out["rcpt"].append(c.cmd("RCPT TO:<%s>" % r))
        if not any(code == 250 for code, _ in out["rcpt"]):
            return out
        assert c.cmd("DATA")[0] == 354
        c.send(content + b".\r\n")
        out["data"] = c.reply()
        c.cmd("QUIT")
    return out


def text_is(reply_text, line):
    """A hook's reply text: the line, with or without an enhanced status code first."""
    return re.fullmatch(r"(\d\.\d{1,3}\.\d{1,3} )?" + re.escape(line), reply_text) is not None


# -- deliver ---------------------------------------------------------------------------------


def test_deliver_exec_exit_codes(start, hook):
    ms = start("--deliver-exec", hook.cmd("deliver"))
    content = b"Subject: delivered\r\nX-Seq: 1\r\n\r\nhello hook\r\n"
    out = transaction(ms, "alice@x.example", ["bob@y.example", "carol@z.example"], content)
    code, text = out["data"]
    assert code == 250, text
    rid = accepted_id(text[0])
    with Db(ms.db) as db:
        assert db.ids() == [rid]
        raw = db.raw(rid)
        assert db.body(rid) == content
    calls = hook.calls("deliver")
    assert len(calls) == 1, calls
    env = calls[0]["env"]
    assert env.get("MAILSINK_SENDER") == "alice@x.example", env
    for r in ("bob@y.example", "carol@z.example"):
        assert r in env.get("MAILSINK_RECIPIENTS", ""), env
    assert env.get("MAILSINK_ID") == rid, env
    assert "127.0.0.1" in [v for k, v in env.items() if k not in (
        "MAILSINK_SENDER", "MAILSINK_RECIPIENTS", "MAILSINK_ID")], env
    stdin = calls[0]["stdin"].encode("latin-1")
    assert stdin in (raw, content), stdin[:400]

    hook.set("deliver", "code", 75)
    out = transaction(ms, "alice@x.example", ["bob@y.example"], b"Subject: temp\r\n\r\nx\r\n")
    assert out["data"][0] == 451, out
    hook.set("deliver", "code", 3)
    out = transaction(ms, "alice@x.example", ["bob@y.example"], b"Subject: perm\r\n\r\nx\r\n")
    assert out["data"][0] == 554, out
    assert len(hook.calls("deliver")) == 3
    with Db(ms.db) as db:
        assert db.ids() == [rid], "a message refused by the deliver hook was stored"
    hook.set("deliver", "code", 0)
    out = transaction(ms, "alice@x.example", ["bob@y.example"], b"Subject: ok\r\n\r\nx\r\n")
    assert out["data"][0] == 250


def test_deliver_exec_argv_split_without_shell(start, hook):
    cmd = hook.cmd("deliver", "'two words'", '"dq $HOME `id`"', "back\\ slash", "*", "~",
                   "$(id)")
    ms = start("--deliver-exec", cmd)
    rid = send(ms, "a@x.example", ["b@y.example"], simple("argv"))[0]
    calls = hook.calls("deliver")
    assert len(calls) == 1
    assert calls[0]["argv"] == ["deliver", "two words", "dq $HOME `id`", "back slash", "*",
                                "~", "$(id)"], calls[0]["argv"]
    with Db(ms.db) as db:
        assert db.ids() == [rid]


def test_deliver_exec_that_ignores_stdin_big_message(start, hook):
    hook.set("deliver", "nostdin", 1)
    ms = start("--deliver-exec", hook.cmd("deliver"))
    big = b"Subject: big\r\n\r\n" + (b"q" * 998 + b"\r\n") * 3000
    rid = send(ms, "a@x.example", ["b@y.example"], big)[0]
    with Db(ms.db) as db:
        assert db.body(rid) == big
    # still serving
    send(ms, "a@x.example", ["b@y.example"], simple("after"))


def test_deliver_exec_timeout(start, hook):
    hook.set("deliver", "sleep", 30)
    ms = start("--deliver-exec", hook.cmd("deliver"), "--exec-timeout", "1")
    t0 = time.monotonic()
    out = transaction(ms, "a@x.example", ["b@y.example"])
    took = time.monotonic() - t0
    assert out["data"][0] == 451, out
    assert took < 10, took
    with Db(ms.db) as db:
        assert db.count() == 0


# -- validate ----------------------------------------------------------------------------------


def test_validate_sender_exec(start, hook):
    hook.set("sender", "stdout", "Sender refused by the script\nsecond line\n")
    ms = start("--validate-sender-exec", hook.cmd("sender"))
    out = transaction(ms, "bad-guy@x.example", ["b@y.example"])
    code, text = out["mail"]
    assert code == 553, out
    assert text_is(text[0], "Sender refused by the script"), text
    out = transaction(ms, "good@x.example", ["b@y.example"])
    assert out["mail"][0] == 250 and out["data"][0] == 250, out
    argvs = [c["argv"] for c in hook.calls("sender")]
    assert ["sender", "bad-guy@x.example"] in argvs and ["sender", "good@x.example"] in argvs, \
        argvs
    # any non-zero status refuses, 75 included (only the deliver hook knows 451)
    hook.set("sender", "code", 75)
    out = transaction(ms, "good@x.example", ["b@y.example"])
    assert out["mail"][0] == 553, out


def test_validate_recipient_exec(start, hook):
    hook.set("rcpt", "stdout", "No such user here\n")
    ms = start("--validate-recipient-exec", hook.cmd("rcpt"))
    out = transaction(ms, "a@x.example", ["ok@y.example", "bad@y.example", "ok2@y.example"])
    codes = [c for c, _ in out["rcpt"]]
    assert codes == [250, 553, 250], out
    assert text_is(out["rcpt"][1][1][0], "No such user here"), out
    assert out["data"][0] == 250
    rid = accepted_id(out["data"][1][0])
    with Db(ms.db) as db:
        row = db.row(rid)
    rc = str([row[k] for k in row if k.lower() in ("rcpts", "recipients")])
    assert "ok@y.example" in rc and "ok2@y.example" in rc and "bad@y.example" not in rc, rc


def test_validate_host_exec(start, hook):
    hook.set("host", "code", 1)
    hook.set("host", "stdout", "Go away, robot\n")
    ms = start("--validate-host-exec", hook.cmd("host"))
    with ms.raw() as c:
        code, text = c.reply()
        assert code == 550, text
        assert "Go away, robot" in text[0], text
        assert c.cmd("EHLO client.test")[0] == 503
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 503
    calls = hook.calls("host")
    assert calls and "127.0.0.1" in calls[0]["argv"], calls
    hook.set("host", "code", 0)
    with ms.raw() as c:
        assert c.reply()[0] == 220


# -- no shell, ever -----------------------------------------------------------------------------

INJECT_SENDERS = [
    '"$(touch PWNED1)"@x.example',
    '"`touch PWNED2`"@x.example',
    '`touch${IFS}PWNED3`@x.example',
    'a|touch${IFS}PWNED4@x.example',
    '"x;touch PWNED5;"@x.example',
    "\"'$(touch PWNED6)'\"@x.example",
]
INJECT_RCPTS = [
    '"$(touch PWNED7)"@y.example',
    '`touch${IFS}PWNED8`@y.example',
]


def pwned(tmp_path):
    found = glob.glob(os.path.join(str(tmp_path), "**", "PWNED*"), recursive=True)
    return found + glob.glob(os.path.join(os.getcwd(), "PWNED*"))


def test_no_shell_in_deliver_exec(start, hook, tmp_path):
    ms = start("--deliver-exec", hook.cmd("deliver"), cwd=str(tmp_path))
    for s in INJECT_SENDERS:
        out = transaction(ms, s, INJECT_RCPTS)
        assert out["mail"][0] == 250 and out["data"][0] == 250, (s, out)
    calls = hook.calls("deliver")
    assert sorted(c["env"]["MAILSINK_SENDER"] for c in calls) == sorted(INJECT_SENDERS)
    for c in calls:
        for r in INJECT_RCPTS:
            assert r in c["env"]["MAILSINK_RECIPIENTS"], c["env"]
    time.sleep(0.5)
    assert pwned(tmp_path) == []


def test_no_shell_in_validate_exec(start, hook, tmp_path):
    ms = start("--validate-sender-exec", hook.cmd("sender"),
               "--validate-recipient-exec", hook.cmd("rcpt"), cwd=str(tmp_path))
    for s in INJECT_SENDERS:
        out = transaction(ms, s, INJECT_RCPTS)
        assert out["mail"][0] == 250 and out["data"][0] == 250, (s, out)
    assert sorted(c["argv"][1] for c in hook.calls("sender")) == sorted(INJECT_SENDERS)
    assert sorted(set(c["argv"][1] for c in hook.calls("rcpt"))) == sorted(INJECT_RCPTS)
    for c in hook.calls("sender") + hook.calls("rcpt"):
        assert len(c["argv"]) == 2, c["argv"]  # one argument, never split
    time.sleep(0.5)
    assert pwned(tmp_path) == []


def test_deliver_exec_reply_text_helo_and_null_sender(start, hook):
    ms = start("--deliver-exec", hook.cmd("deliver"))
    hook.set("deliver", "code", 3)
    hook.set("deliver", "stdout", "Refused by the deliver script\nmore\n")
    out = transaction(ms, "", ["b@y.example"])
    code, text = out["data"]
    assert code == 554 and text_is(text[0], "Refused by the deliver script"), out
    env = hook.calls("deliver")[0]["env"]
    assert env.get("MAILSINK_SENDER") == "", env
    assert env.get("MAILSINK_HELO") == "client.test", env
    assert env.get("MAILSINK_CLIENT_ADDR") == "127.0.0.1", env


def test_hook_that_cannot_start_gives_451(start, tmp_path):
    ms = start("--deliver-exec", str(tmp_path / "no-such-program"))
    out = transaction(ms, "a@x.example", ["b@y.example"])
    assert out["data"][0] == 451, out
    with Db(ms.db) as db:
        assert db.count() == 0


def test_rules_come_before_hook_programs(start, hook):
    ms = start("--reject-sender", "*@bad.example", "--reject-rcpt", "*@nope.example",
               "--validate-sender-exec", hook.cmd("sender"),
               "--validate-recipient-exec", hook.cmd("rcpt"))
    out = transaction(ms, "x@bad.example", ["b@y.example"])
    assert out["mail"][0] == 553
    out = transaction(ms, "ok@x.example", ["a@nope.example", "b@y.example"])
    assert [c for c, _ in out["rcpt"]] == [553, 250], out
    assert [c["argv"][1] for c in hook.calls("sender")] == ["ok@x.example"]
    assert [c["argv"][1] for c in hook.calls("rcpt")] == ["b@y.example"]


def test_slow_deliver_hook_does_not_block_other_sessions(start, hook):
    hook.set("deliver", "slowsleep", 4)
    ms = start("--deliver-exec", hook.cmd("deliver"))
    slow = {}

    def slow_one():
        t0 = time.monotonic()
        slow["out"] = transaction(ms, "a@x.example", ["b@y.example"],
                                  b"Subject: slow\r\nX-Slow: yes\r\n\r\nzzz\r\n")
        slow["took"] = time.monotonic() - t0

    t = threading.Thread(target=slow_one, daemon=True)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    out = transaction(ms, "a@x.example", ["b@y.example"], b"Subject: fast\r\n\r\nquick\r\n")
    fast = time.monotonic() - t0
    t.join(TIMEOUT)
    assert out["data"][0] == 250 and fast < 2.5, (out, fast)
    assert slow["out"]["data"][0] == 250 and slow["took"] >= 3.5, slow


def test_hook_gets_no_inherited_descriptors(start, hook):
    ms = start("--deliver-exec", hook.cmd("deliver"), "--validate-sender-exec",
               hook.cmd("sender"))
    send(ms, "a@x.example", ["b@y.example"], simple("fds"))
    for c in hook.calls("deliver") + hook.calls("sender"):
        # 0-2, plus the one os.listdir itself opened
        assert len(c["fds"]) <= 4 and c["fds"][:3] == [0, 1, 2], c["fds"]


def test_hook_killed_at_timeout_is_reaped(start, hook):
    hook.set("deliver", "sleep", 60)
    ms = start("--deliver-exec", hook.cmd("deliver"), "--exec-timeout", "1")
    out = transaction(ms, "a@x.example", ["b@y.example"])
    assert out["data"][0] == 451, out
    pid = hook.calls("deliver")[0]["pid"]

    def gone():  # killed and reaped: a zombie still has its /proc entry
        return not os.path.exists("/proc/%d" % pid)

    assert wait_until(gone, timeout=5), "hook pid %d still there (or a zombie)" % pid


def test_sigterm_while_deliver_hook_runs(start, hook):
    hook.set("deliver", "slowsleep", 2)
    ms = start("--deliver-exec", hook.cmd("deliver"), "--stop-grace", "10")
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: stop during hook\r\nX-Slow: yes\r\n\r\nx\r\n.\r\n")
        time.sleep(0.7)
        ms.send_signal(signal.SIGTERM)
        code, text = c.reply()
        assert code == 250, text
        rid = accepted_id(text[0])
    assert ms.wait(TIMEOUT) == 0
    with Db(ms.db) as db:
        assert db.ids() == [rid]


def test_deliver_exec_from_config_file(start, hook, tmp_path):
    conf = tmp_path / "mailsink.conf"
    conf.write_text("deliver-exec = %s 'two words' \"x y\"\n" % hook.cmd("deliver"))
    ms = start("--config", str(conf))
    send(ms, "a@x.example", ["b@y.example"], simple("conf hook"))
    assert hook.calls("deliver")[0]["argv"] == ["deliver", "two words", "x y"]
