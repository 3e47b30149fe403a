"""kill -9 while mailsink writes its file exports (fault table: "crash during file export
(maildir/.eml)": a file is absent or complete).

mailsink runs with --maildir, --eml-dir and --mbox; SENDERS threads send self-checking
messages (acklib: X-Hash), a quarter of them ~3.7 MiB; mailsink gets SIGKILL and is restarted
on the same database and export paths. A kill at a random moment seldom lands inside a
write, so most rounds aim: the test polls the export it aims at and kills the moment a
write is under way (a new file growing in Maildir tmp/ or new/ or in --eml-dir, an mbox
that does not end in a blank line). After every restart:
- every file in Maildir new/ and every .eml is byte for byte the stored raw message of the
  id in its name (tmp/ and hidden .tmp names are never visible, so they may be torn);
- every acknowledged message has its Maildir file, its .eml and a whole copy in the mbox
  (the exports are written before the 250);
- in the mbox, a message a kill tore stays (the mbox is appended in place, and mailsink
  deletes nothing it cannot prove it wrote), but the next append starts with the blank
  line it lacks, so no later message is swallowed into it: every acknowledged message is
  whole there, and there are no more broken messages than kills (export.c,
  export_mbox_separator).
The run must have hit what it aimed at, and torn the mbox at least once (up to
EXTRA_MBOX_ROUNDS more mbox-aimed rounds run until it has).
EXPORT_ROUNDS rounds (16; 8 under a sanitizer)."""

import os
import random
import re
import signal
import threading
import time

from acklib import SENDER_DEADLINE, hash_ok, sender
from faultlib import SANITIZED, serves
from mslib import Db

SENDERS = 4
EXPORT_ROUNDS = int(os.environ.get("FAULTS_EXPORT_ROUNDS") or (8 if SANITIZED else 16))
KILL_AFTER = (0.4, 2.5) if SANITIZED else (0.2, 1.2)  # seconds of load, uniform
BIG_SHARE = 0.25
AIMS = ("random", "maildir", "mbox", "eml")
EXTRA_MBOX_ROUNDS = 12
AIM_LIMIT = 3.0  # seconds of polling before an aimed kill gives up and kills anyway


def mbox_messages(path):
    """The messages of an mboxrd file as [(content with CRLF, ends_whole)]: split at lines
    starting "From ", the From line dropped, quoting undone; ends_whole when the block
    ends in the blank line every append writes last."""
    with open(path, "rb") as f:
        data = f.read()
    starts = [0] if data.startswith(b"From ") else []
    starts += [m.start() + 1 for m in re.finditer(rb"\nFrom ", data)]
    out = []
    for i, s in enumerate(starts):
        block = data[s:starts[i + 1] if i + 1 < len(starts) else len(data)]
        whole = block.endswith(b"\n\n")
        text = block.split(b"\n", 1)[1] if b"\n" in block else b""
        if whole:
            text = text[:-1]  # the separating blank line
        text = re.sub(rb"(?m)^>(>*From )", rb"\1", text)
        out.append((text.replace(b"\n", b"\r\n"), whole))
    return out


def check_exports(db, root, acked, kills):
    """The checks of the docstring; returns a line for the log."""
    ids = set(db.ids())
    md_new = root / "md" / "new"
    seen_md = set()
    for name in os.listdir(md_new):
        m = re.fullmatch(r"\d+\.([^.]+)\..+", name)  # <secs>.<id>.<gethostname()>
        assert m and m.group(1) in ids, "Maildir file of no stored message: %s" % name
        data = (md_new / name).read_bytes()
        assert data == db.raw(m.group(1)), "Maildir file %s is not the stored message" % name
        seen_md.add(m.group(1))
    seen_eml = set()
    for name in os.listdir(root / "eml"):
        if name.startswith("."):
            continue  # a write in progress: never visible under a .eml name
        assert name.endswith(".eml") and name[:-4] in ids, "stray file in --eml-dir: " + name
        data = (root / "eml" / name).read_bytes()
        assert data == db.raw(name[:-4]), "%s is not the stored message" % name
        seen_eml.add(name[:-4])
    box = mbox_messages(root / "box.mbox")
    broken = [k for k, (content, whole) in enumerate(box)
              if not (whole and hash_ok(content) is not False)]
    assert len(broken) <= kills, (
        "%d broken mbox messages after %d kills: %r" % (len(broken), kills, broken))
    whole_in_box = {c for c, w in box if w and hash_ok(c)}
    for mid, content in acked.items():
        assert mid in seen_md, "acknowledged %s has no Maildir file" % mid
        assert mid in seen_eml, "acknowledged %s has no .eml" % mid
        raw = db.raw(mid)
        assert raw in whole_in_box, "acknowledged %s is not whole in the mbox" % mid
    md_tmp = len(os.listdir(root / "md" / "tmp"))
    torn_tail = bool(box) and not box[-1][1]
    return ("stored %d, maildir %d (+%d in tmp), eml %d, mbox %d (%d broken)%s"
            % (len(ids), len(seen_md), md_tmp, len(seen_eml), len(box), len(broken),
               ", torn tail" if torn_tail else ""))


def export_names(aim, root):
    """The paths in the directories of an aimed file export (Maildir tmp/ and new/, or
    --eml-dir), hidden temporaries included."""
    dirs = [root / "md" / "tmp", root / "md" / "new"] if aim == "maildir" else [root / "eml"]
    names = set()
    for d in dirs:
        try:
            names.update(d / n for n in os.listdir(d))
        except FileNotFoundError:
            pass
    return names


def growing(paths, sizes):
    """Whether one of paths grew since the sizes seen last (which are updated)."""
    grew = False
    for p in paths:
        try:
            size = p.stat().st_size
        except FileNotFoundError:  # renamed away
            continue
        grew |= p in sizes and sizes[p] != size
        sizes[p] = size
    return grew


def mbox_mid_append(root):
    """Whether the mbox ends anywhere but in the blank line that ends every append."""
    try:
        with open(root / "box.mbox", "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < 2:
                return False
            f.seek(size - 2)
            return f.read(2) != b"\n\n"
    except FileNotFoundError:
        return False


def kill_when(ms, aim, root, rng):
    """SIGKILL mailsink: at a random moment ("random"); for a file export, the moment a
    file new in its directories is seen growing (a write under way: under a temporary
    name, or, were the writes not atomic, under the final one); for the mbox, the moment
    it does not end in a blank line. After AIM_LIMIT seconds it kills anyway. True if it
    hit its aim."""
    hit = False
    if aim == "random":
        time.sleep(rng.uniform(*KILL_AFTER))
    else:
        before = export_names(aim, root) if aim != "mbox" else None
        sizes = {}
        deadline = time.monotonic() + AIM_LIMIT
        while not hit and time.monotonic() < deadline:
            hit = (mbox_mid_append(root) if aim == "mbox" else
                   growing(export_names(aim, root) - before, sizes))
    ms.expected_exit = None  # killed on purpose
    ms.proc.send_signal(signal.SIGKILL)
    assert ms.wait(10) == -signal.SIGKILL
    return hit


def test_kill9_during_export_leaves_files_absent_or_complete(start, tmp_path):
    db_path = str(tmp_path / "export.db")
    args = ("--maildir", str(tmp_path / "md"), "--eml-dir", str(tmp_path / "eml"),
            "--mbox", str(tmp_path / "box.mbox"))
    rng = random.Random(11)
    acked_all, log, torn, hits = {}, [], 0, {aim: 0 for aim in AIMS}
    ms = start(*args, db=db_path)
    # after the planned rounds, more mbox-aimed ones until a kill tears the mbox (an
    # aimed kill can still land just after the write, more often under ASan)
    for round_no in range(EXPORT_ROUNDS + EXTRA_MBOX_ROUNDS):
        if round_no >= EXPORT_ROUNDS and torn > 0:
            break
        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=sender, args=(ms, round_no, n, acked, stop, BIG_SHARE),
                                    daemon=True) for n in range(SENDERS)]
        for t in threads:
            t.start()
        aim = AIMS[round_no % len(AIMS)] if round_no < EXPORT_ROUNDS else "mbox"
        time.sleep(0.1)  # let the senders connect
        hit = kill_when(ms, aim, tmp_path, rng)
        hits[aim] += hit
        stop.set()
        for t in threads:
            t.join(SENDER_DEADLINE + 15)
        assert not any(t.is_alive() for t in threads), "a sender hangs"
        with Db(db_path) as db:
            for mid, content in acked:
                assert db.body(mid) == content, "acknowledged %s lost or changed" % mid
                acked_all[mid] = db.raw(mid)
        ms = start(*args, db=db_path)
        with Db(db_path) as db:
            line = check_exports(db, tmp_path, acked_all, round_no + 1)
        torn += line.endswith("torn tail")
        log.append("round %d: kill %s%s, acked %d, %s" % (round_no + 1, aim,
                                                         " (hit)" if hit else "",
                                                         len(acked), line))
    kills = len(log)
    serves(ms, "after the last kill")  # one more append, after a torn tail
    with Db(db_path) as db:
        log.append("end: " + check_exports(db, tmp_path, acked_all, kills))
    print("\n".join(log))
    print("kills that tore the mbox tail: %d of %d; aimed kills that hit: %r"
          % (torn, kills, hits))
    assert len(acked_all) >= EXPORT_ROUNDS, "hardly any load was acknowledged: %s" % log
    assert all(hits[aim] for aim in AIMS if aim != "random"), ("an aim never hit", hits, log)
    assert torn > 0, "no kill tore the mbox, so its repair went untested: %s" % log
