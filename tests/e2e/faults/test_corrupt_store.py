"""A damaged database at start (fault table: "corrupt store at start").

A database with 40 messages made by mailsink itself (stopped cleanly, so no WAL is
left) is damaged in four ways: the file truncated to a third, the SQLite header
overwritten, pages in the middle overwritten with random bytes, the whole file random
bytes. Expected: mailsink refuses to start (exit 1 or 2, within seconds, never
listening) with an error that names the database file and says what is wrong; the
damaged file is left as it was (nothing "repaired" away behind the user's back), or, if
mailsink quarantines it, the original is kept beside it."""

import os
import random
import re
import shutil
import subprocess

import pytest

from faultlib import message
from mslib import clean_env, mailsink_bin, send

PAGE = 4096


@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    """A database with 40 messages, left by a clean stop."""
    from mslib import Mailsink
    d = tmp_path_factory.mktemp("good")
    path = str(d / "good.db")
    ms = Mailsink(["--smtp", "127.0.0.1:0", "--db", path, "--hostname", "mailsink.test"], d,
                  http="none")
    try:
        for i in range(40):
            send(ms, "a@x.example", ["b@y.example"], message("corrupt me %d" % i, 6000))
    finally:
        rc = ms.stop()
    assert rc == 0, ms.stderr()
    assert not os.path.exists(path + "-wal") or os.path.getsize(path + "-wal") == 0
    return path


def truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(max(PAGE * 2, size // 3 // PAGE * PAGE))


def garble_header(path):
    with open(path, "r+b") as f:
        f.write(b"This is no SQLite database!!!!!!" * 3)


def garble_middle(path):
    rng = random.Random(5)
    size = os.path.getsize(path)
    pages = size // PAGE
    with open(path, "r+b") as f:
        for p in range(2, max(3, pages // 2)):
            f.seek(p * PAGE)
            f.write(bytes(rng.randrange(256) for _ in range(PAGE)))


def all_random(path):
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(os.urandom(size))


DAMAGE = {"truncated": truncate, "header": garble_header, "middle pages": garble_middle,
          "random file": all_random}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_corrupt_database_refuses_to_start(good_db, tmp_path, how):
    path = str(tmp_path / "damaged.db")
    shutil.copyfile(good_db, path)
    DAMAGE[how](path)
    with open(path, "rb") as f:
        damaged = f.read()
    r = subprocess.run([mailsink_bin(), "--smtp", "127.0.0.1:0", "--http", "none", "--db", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(tmp_path), cwd=str(tmp_path), timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode in (1, 2), "exit %s; stderr: %s" % (r.returncode, err)
    assert "listening on" not in err, err
    assert path in err, "the error does not name the database: %r" % err
    assert re.search(r"(?i)malformed|not a database|corrupt|integrity|damaged|quick_check",
                     err), "the error does not say what is wrong: %r" % err
    assert "Sanitizer" not in err and "runtime error:" not in err, err
    # the evidence stays: the file as it was, or a quarantined copy of it
    kept = [p for p in os.listdir(str(tmp_path)) if p.startswith("damaged.db")]
    contents = []
    for name in kept:
        with open(str(tmp_path / name), "rb") as f:
            contents.append(f.read())
    assert damaged in contents, "the damaged file is gone or changed: %r" % kept
