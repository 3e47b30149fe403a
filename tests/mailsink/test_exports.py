"""Exports beside the database: --maildir, --mbox (mboxrd quoting), --eml-dir. Python's
mailbox module reads them; the .eml files are the stored raw bytes; file names come only
from our ids."""

import mailbox
import threading
import os
import re

import pytest

from mslib import Db, send, simple, wait_until

# Lines an mbox must quote (mboxrd: every ^>*From  gets one more '>').
TRICKY = ("From the start of a line\r\n>From already quoted\r\n>>From twice\r\n"
          "From: looks like a header\r\nFromage is not quoted\r\n")


def lf(b):
    return b.replace(b"\r\n", b"\n")


def mboxrd_unquote(b):
    return re.sub(rb"(?m)^>(>*From )", rb"\1", b)


def send_three(ms):
    ids, raws = [], {}
    ids.append(send(ms, "alice@x.example", ["bob@y.example"], simple("first export"))[0])
    ids.append(send(ms, '"../../etc/evil"@x.example', ['"../../d"@y.example'],
                    simple("../../../tmp/evil-subject", TRICKY))[0])
    ids.append(send(ms, "carol@x.example", ["dave@y.example"],
                    simple("third export", "bye\r\n"))[0])
    with Db(ms.db) as db:
        for i in ids:
            raws[i] = db.raw(i)
    return ids, raws


def all_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def test_eml_dir(start, tmp_path):
    eml = tmp_path / "eml"
    ms = start("--eml-dir", str(eml))
    ids, raws = send_three(ms)
    want = sorted(i + ".eml" for i in ids)
    wait_until(lambda: eml.exists() and sorted(os.listdir(eml)) == want, timeout=5)
    assert sorted(os.listdir(eml)) == want
    for i in ids:
        assert (eml / (i + ".eml")).read_bytes() == raws[i]
    # nothing escaped anywhere through client-chosen names
    assert not any("evil" in f for f in all_files(tmp_path)), all_files(tmp_path)


def test_maildir(start, tmp_path):
    md = tmp_path / "Maildir"
    ms = start("--maildir", str(md))
    ids, raws = send_three(ms)

    def msgs():
        if not (md / "new").exists():
            return []
        return list(mailbox.Maildir(str(md), factory=None, create=False).iterkeys())

    wait_until(lambda: len(msgs()) == 3, timeout=5)
    box = mailbox.Maildir(str(md), factory=None, create=False)
    keys = list(box.iterkeys())
    assert len(keys) == 3, keys
    assert sorted(os.listdir(md)) == ["cur", "new", "tmp"]
    assert os.listdir(md / "tmp") == []  # nothing half-written left behind
    got = sorted(lf(box.get_bytes(k)) for k in keys)
    assert got == sorted(lf(r) for r in raws.values())
    subjects = sorted(box.get_message(k)["Subject"] for k in keys)
    assert subjects == ["../../../tmp/evil-subject", "first export", "third export"]
    for name in all_files(md):
        assert re.fullmatch(r"(new|cur)/[A-Za-z0-9._,:=-]+", name), name
        assert "evil" not in name and not os.path.basename(name).startswith(".")
    assert not any("evil" in f for f in all_files(tmp_path)), all_files(tmp_path)


def test_mbox(start, tmp_path):
    path = tmp_path / "mail.mbox"
    ms = start("--mbox", str(path))
    ids, raws = send_three(ms)

    def count():
        if not path.exists():
            return 0
        return len(mailbox.mbox(str(path), create=False))

    wait_until(lambda: count() == 3, timeout=5)
    box = mailbox.mbox(str(path), create=False)
    keys = list(box.iterkeys())
    assert len(keys) == 3, "mbox has %d messages (bad From quoting?)" % len(keys)
    by_order = [raws[i] for i in ids]
    for k, raw in zip(keys, by_order):
        got = mboxrd_unquote(lf(box.get_bytes(k))).rstrip(b"\n")
        assert got == lf(raw).rstrip(b"\n"), (got[:300], raw[:300])
    froms = [box.get_message(k).get_from() for k in keys]
    assert froms[0].startswith("alice@x.example "), froms
    assert froms[2].startswith("carol@x.example "), froms
    text = path.read_bytes()
    # mboxrd quoting in the file itself
    assert re.search(rb"(?m)^>From the start of a line\r?$", text), text
    assert re.search(rb"(?m)^>>From already quoted\r?$", text), text
    assert re.search(rb"(?m)^>>>From twice\r?$", text), text
    assert re.search(rb"(?m)^From: looks like a header\r?$", text)
    assert len(re.findall(rb"(?m)^From ", text)) == 3
    assert box.get_message(keys[1])["Subject"] == "../../../tmp/evil-subject"


def test_all_three_at_once_and_restart_appends(start, tmp_path):
    md, mb, eml = tmp_path / "md", tmp_path / "box.mbox", tmp_path / "eml"
    args = ("--maildir", str(md), "--mbox", str(mb), "--eml-dir", str(eml))
    ms = start(*args)
    a = send(ms, "a@x.example", ["b@y.example"], simple("one"))[0]
    assert ms.stop() == 0
    ms2 = start(*args)
    b = send(ms2, "a@x.example", ["b@y.example"], simple("two"))[0]
    wait_until(lambda: eml.exists() and len(os.listdir(eml)) == 2, timeout=5)
    assert sorted(os.listdir(eml)) == sorted([a + ".eml", b + ".eml"])
    wait_until(lambda: len(mailbox.mbox(str(mb), create=False)) == 2, timeout=5)
    assert len(mailbox.mbox(str(mb), create=False)) == 2
    assert len(mailbox.Maildir(str(md), factory=None, create=False)) == 2


# What a crash in the middle of an append leaves: a message without its end.
TORN = b"From torn@x.example Thu Nov 26 06:00:00 2026\nSubject: cut off\n\nhalf a li"
# What Python's mailbox.mbox writes: the blank line goes before a From line, so the
# file ends in a single newline.
FOREIGN = b"From someone@x.example Thu Nov 26 05:00:00 2026\nSubject: theirs\n\nkeep me\n"


@pytest.mark.parametrize("tail", [TORN, TORN + b"ne\n", FOREIGN],
                         ids=["torn-mid-line", "torn-after-a-line", "foreign-single-newline"])
def test_mbox_append_after_a_tail_without_blank_line(start, tmp_path, tail):
    """An mbox that does not end in a blank line (a crash cut our append, or another
    program wrote it): the next append starts with the missing separator, so its From
    line starts a message of its own. Nothing already in the file is deleted."""
    path = tmp_path / "mail.mbox"
    whole = b"From first@x.example Thu Nov 26 04:00:00 2026\nSubject: whole\n\nbody\n\n"
    path.write_bytes(whole + tail)
    ms = start("--mbox", str(path))
    mid = send(ms, "alice@x.example", ["bob@y.example"], simple("after the tail"))[0]
    with Db(ms.db) as db:
        raw = db.raw(mid)
    text = path.read_bytes()
    assert text.startswith(whole + tail), "something already there was changed"
    assert text.endswith(b"\n\n")
    box = mailbox.mbox(str(path), create=False)
    keys = list(box.iterkeys())
    assert len(keys) == 3, [box.get_bytes(k)[:60] for k in keys]
    assert box.get_message(keys[0])["Subject"] == "whole"
    got = mboxrd_unquote(lf(box.get_bytes(keys[2]))).rstrip(b"\n")
    assert got == lf(raw).rstrip(b"\n")
    assert box.get_message(keys[2]).get_from().startswith("alice@x.example ")


def test_parallel_sessions_each_exported_once(start, tmp_path):
    md, eml = tmp_path / "md", tmp_path / "eml"
    ms = start("--maildir", str(md), "--eml-dir", str(eml))
    ids, errors = [], []

    def one(n):
        try:
            for i in range(5):
                ids.append(send(ms, "a@x.example", ["b@y.example"], simple("p%d-%d" % (n, i)))[0])
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(ids) == 40, errors
    wait_until(lambda: len(os.listdir(eml)) == 40, timeout=5)
    assert sorted(os.listdir(eml)) == sorted(i + ".eml" for i in ids)
    assert len(mailbox.Maildir(str(md), factory=None, create=False)) == 40
