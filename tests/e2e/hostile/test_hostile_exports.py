"""Exports and hooks under hostile envelopes and headers (smtp-rules.md rules 7 and 11:
envelope strings never reach a shell or a file name; stored files are named by our ids).
One server has every export (--maildir, --eml-dir, --mbox) and every exec hook
(--deliver-exec, --validate-sender-exec, --validate-recipient-exec) on; each case sends
a message whose sender, recipient or EHLO name tries shell syntax ($(...), backticks,
;, |) or path traversal (../, absolute paths), and whose headers (Message-ID, Subject,
From, attachment file names) try the same. Afterwards:

- the hooks got the strings verbatim, as one argument / one variable;
- exactly one new file in Maildir new/, one ID.eml, one mbox entry, named by our id;
- no file whose name holds this run's marker exists anywhere (the test's directories,
  their parents, /tmp, /): neither a shell nor a path ever saw the strings."""

import glob
import json
import os
import re
import uuid

import pytest

from hostlib import Case, Client, files_under, write_script

MARK = "PWN" + uuid.uuid4().hex[:10].upper()

HOOK = r'''#!/usr/bin/python3
# Records its argv and MAILSINK_* environment (and for deliver, stdin's length) in
# CALLS/ROLE-<ns>-<pid>.json, then exits 0.
import json, os, sys, time
role = sys.argv[1]
data = sys.stdin.buffer.read() if role == "deliver" else b""
rec = {"argv": sys.argv[1:], "stdin": len(data),
       "env": {k: v for k, v in os.environ.items() if k.startswith("MAILSINK_")}}
with open(os.path.join(@CALLS@, "%s-%d-%d.json" % (role, time.time_ns(), os.getpid())),
          "w") as f:
    json.dump(rec, f)
'''


class World:
    """The module's server and its directories: root/{maildir,eml,work,calls}, mbox."""

    def __init__(self, root, ms):
        self.root = root
        self.ms = ms

    def calls(self, role):
        out = []
        for f in sorted(glob.glob(os.path.join(self.root, "calls", role + "-*.json"))):
            with open(f) as fh:
                out.append(json.load(fh))
        return out


@pytest.fixture(scope="module")
def world(shared, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("exports"))
    for d in ("maildir", "eml", "work", "calls"):
        os.makedirs(os.path.join(root, d))
    hook = write_script(os.path.join(root, "hook.py"),
                        HOOK.replace("@CALLS@", repr(os.path.join(root, "calls"))))
    ms = shared("--maildir", os.path.join(root, "maildir"),
                "--eml-dir", os.path.join(root, "eml"),
                "--mbox", os.path.join(root, "mail.mbox"),
                "--deliver-exec", hook + " deliver",
                "--validate-sender-exec", hook + " sender",
                "--validate-recipient-exec", hook + " rcpt",
                cwd=os.path.join(root, "work"))
    return World(root, ms)


def marker_files(world):
    """Every path holding MARK: under the test's temporary tree (and its parents' top
    level), /tmp and / (where an absolute or ../ path would land)."""
    found = []
    base = os.path.dirname(os.path.dirname(world.root))
    for i, (d, dirs, fs) in enumerate(os.walk(base)):
        assert i < 100000
        found += [os.path.join(d, n) for n in dirs + fs if MARK in n]
    for top in {"/", "/tmp", os.path.dirname(base), os.path.expanduser("~")}:
        try:
            found += [os.path.join(top, n) for n in os.listdir(top) if MARK in n]
        except OSError:
            pass
    return found


HOSTILE_HEADERS = (
    "Message-ID: <../../../../tmp/{m}-mid@x.example>\r\n"
    "Subject: $(touch {m}-subj) `touch {m}-subj2`; touch {m}-subj3 | touch {m}-subj4\r\n"
    "From: \"$(touch {m}-from)\" <../../{m}-from@x.example>\r\n"
    "To: /tmp/{m}-to@y.example\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\ntext\r\n"
    "--b\r\nContent-Type: application/octet-stream; name=\"/tmp/{m}-name.bin\"\r\n"
    "Content-Disposition: attachment; filename=\"../../../../../tmp/{m}-att.bin\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
    "--b\r\nContent-Type: text/plain; name=\"$(touch {m}-name2)\"\r\n"
    "Content-Disposition: attachment; filename=\"`touch {m}-att2`;.txt\"\r\n\r\nx\r\n"
    "--b--\r\n"
)

# id: (EHLO name, sender, recipient); the part under test carries the marker
CASES = {
    "sender-dollar-paren": ("client.test", '"$(touch {m}-s1)"@x.example', "b@y.example"),
    "sender-backticks": ("client.test", '"`touch {m}-s2`"@x.example', "b@y.example"),
    "sender-semicolon": ("client.test", '"a;touch {m}-s3;"@x.example', "b@y.example"),
    "sender-pipe-ifs": ("client.test", "a|touch${{IFS}}{m}-s4@x.example", "b@y.example"),
    "sender-dotdot": ("client.test", '"../../../../../tmp/{m}-s5"@x.example', "b@y.example"),
    "sender-absolute": ("client.test", "/tmp/{m}-s6@x.example", "b@y.example"),
    "sender-quoted-pair": ("client.test", '"\\";touch {m}-s7;\\""@x.example', "b@y.example"),
    "rcpt-dollar-paren": ("client.test", "a@x.example", '"$(touch {m}-r1)"@y.example'),
    "rcpt-dotdot": ("client.test", "a@x.example", '"../../../../{m}-r2"@y.example'),
    "rcpt-absolute": ("client.test", "a@x.example", "/tmp/{m}-r3@y.example"),
    "rcpt-newline-escape": ("client.test", "a@x.example", '"a\\\\n{m}-r4"@y.example'),
    "ehlo-literal": ("[127.0.0.1]", "a@x.example", "b@y.example"),
    "headers-only": ("client.test", "a@x.example", "b@y.example"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_strings_reach_no_shell_and_no_file_name(world, name):
    """Input: EHLO, MAIL, RCPT as in the table (shell syntax or a path in the part under
    test), content with hostile headers and attachment names. Expected: 250 for every
    step; the hooks got the sender / recipient verbatim as one argument; exactly one
    new Maildir file, one ID.eml and one mbox entry, all named by our id; no file with
    the marker anywhere."""
    ms = world.ms
    ehlo, sender, rcpt = (v.format(m=MARK) for v in CASES[name])
    case = Case(ms)
    maildir = os.path.join(world.root, "maildir", "new")
    eml = os.path.join(world.root, "eml")
    mbox = os.path.join(world.root, "mail.mbox")
    before = {"maildir": files_under(maildir) if os.path.isdir(maildir) else [],
              "eml": files_under(eml), "work": files_under(os.path.join(world.root, "work")),
              "mbox": os.path.getsize(mbox) if os.path.exists(mbox) else 0,
              "deliver": len(world.calls("deliver")), "sender": len(world.calls("sender")),
              "rcpt": len(world.calls("rcpt"))}
    with Client(ms) as c:
        c.ehlo(ehlo)
        c.ok("MAIL FROM:<%s>" % sender)
        c.ok("RCPT TO:<%s>" % rcpt)
        r = c.data(HOSTILE_HEADERS.format(m=MARK).encode() + b".\r\n")
        assert r.is_(250, "2.0.0"), r
    mid = r.lines[-1].split()[1]
    assert re.fullmatch(r"[A-Za-z0-9]+", mid), mid

    sender_calls = world.calls("sender")[before["sender"]:]
    rcpt_calls = world.calls("rcpt")[before["rcpt"]:]
    deliver_calls = world.calls("deliver")[before["deliver"]:]
    assert [c["argv"] for c in sender_calls] == [["sender", sender]], sender_calls
    assert [c["argv"] for c in rcpt_calls] == [["rcpt", rcpt]], rcpt_calls
    assert len(deliver_calls) == 1 and deliver_calls[0]["argv"] == ["deliver"]
    env = deliver_calls[0]["env"]
    assert env["MAILSINK_SENDER"] == sender and env["MAILSINK_RECIPIENTS"] == rcpt, env
    assert env["MAILSINK_HELO"] == ehlo and env["MAILSINK_ID"] == mid, env

    new_maildir = sorted(set(files_under(maildir)) - set(before["maildir"]))
    assert len(new_maildir) == 1 and MARK not in new_maildir[0], new_maildir
    assert mid in new_maildir[0], (mid, new_maildir)
    assert sorted(set(files_under(eml)) - set(before["eml"])) == [mid + ".eml"]
    assert files_under(os.path.join(world.root, "work")) == before["work"]
    with open(mbox, "rb") as f:
        f.seek(before["mbox"])
        added = f.read()
    assert added.startswith(b"From ") and added.count(b"\nFrom ") == 0, added[:200]
    assert marker_files(world) == []
    case.check(1)
    # the normal client's message went through the same exports: still nothing stray
    assert marker_files(world) == []
