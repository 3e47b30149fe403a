"""Disk full during the commit (fault table: "disk full during spool or commit").

Input: the database on a small tmpfs filled up by another file, or a file size limit
(prlimit --fsize, EFBIG) set on the running mailsink; then a message that needs space.
Expected: 452 4.3.1 (or 451 4.3.0) after the final dot, never 250; nothing of it stored;
the server keeps serving (EHLO on another session) and, once space returns (the filler
deleted, the limit lifted), the next message gets 250 and is stored byte for byte;
descriptors and RSS back to where they were."""

import os
import subprocess

import pytest

from faultlib import RSS_SLACK, MiB, Proc, deliver, message, settle, transaction
from mslib import Db, RawClient

TEMP_FAILURES = ((452, "4.3.1"), (451, "4.3.0"))


def is_temp_failure(code, text):
    return (code, text[0].split(" ", 1)[0]) in TEMP_FAILURES


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs mounted on tmp/fs for the duration of the test."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % r.stdout.decode()[-200:])
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], timeout=20)


def fill(path):
    """Write path until the file system says ENOSPC; octets written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for _ in range(100000):  # bounded: far more than the 4 MiB there is
            try:
                n += f.write(chunk)
            except OSError:
                break
    # what was left after the last whole chunk, one small write at a time
    with open(str(path) + ".2", "wb", buffering=0) as f:
        for _ in range(65536):
            try:
                n += f.write(b"\0" * 512)
            except OSError:
                break
    return n


def test_disk_full_gives_4xx_and_recovers_when_space_returns(start, small_fs):
    db_path = str(small_fs / "mail.db")
    ms = start(db=db_path)
    first = deliver(ms, message("before the disk fills"))
    before = Proc(ms.proc.pid).snapshot()
    filler = small_fs / "filler"
    assert fill(filler) > 0

    # another session is open while the store fails, and stays usable
    other = RawClient(ms.addr, ms.port)
    assert other.reply()[0] == 220
    for i in range(3):
        code, text = transaction(ms, message("disk full %d" % i, 512 * 1024))
        assert is_temp_failure(code, text), "reply on a full disk: %d %r" % (code, text)
    assert other.cmd("EHLO other.test")[0] == 250
    with Db(db_path) as db:
        assert db.ids() == [first], "a message refused for lack of space is visible"

    # space returns: the next message is stored, without a restart
    os.unlink(str(filler))
    os.unlink(str(filler) + ".2")
    content = message("after space returned", 64 * 1024)
    rid = deliver(ms, content)
    with Db(db_path) as db:
        assert sorted(db.ids()) == sorted([first, rid])
        assert db.body(rid) == content
        assert db.integrity() == ["ok"]
    assert other.cmd("QUIT")[0] == 221
    other.close()
    settle(ms, before)


def test_file_size_limit_gives_4xx_and_recovers_when_lifted(start, tmp_path):
    """RLIMIT_FSIZE (prlimit --fsize on the running process): a write past it fails with
    EFBIG instead of SIGXFSZ killing the process (mailsink ignores SIGXFSZ, as Postfix
    does) and the message gets a 4xx; lifting the limit makes the store work again."""
    ms = start()
    first = deliver(ms, message("before the limit"))
    before = Proc(ms.proc.pid).snapshot()
    sizes = [os.path.getsize(ms.db + sfx) for sfx in ("", "-wal") if os.path.exists(ms.db + sfx)]
    limit = max(sizes) + 64 * 1024
    size = limit + MiB  # bigger than the limit: no file can hold it, wherever it starts
    pid = str(ms.proc.pid)
    subprocess.run(["prlimit", "--pid", pid, "--fsize=%d:" % limit], check=True,
                   timeout=20)
    try:
        try:
            code, text = transaction(ms, message("too big for the limit", size))
        except (OSError, ConnectionError) as e:
            code, text = 0, [repr(e)]
        ms.wait(1)
        assert ms.proc.poll() is None, "mailsink died (SIGXFSZ?): exit %s" % ms.proc.returncode
        assert is_temp_failure(code, text), "reply past the file size limit: %d %r" % (code,
                                                                                     text)
        with Db(ms.db) as db:
            assert db.ids() == [first]
    finally:
        if ms.proc.poll() is None:
            subprocess.run(["prlimit", "--pid", pid, "--fsize=unlimited:"],
                           timeout=20)
        else:
            ms.expected_exit = None  # already reported above
    content = message("after the limit was lifted", size)
    rid = deliver(ms, content)
    with Db(ms.db) as db:
        assert sorted(db.ids()) == sorted([first, rid])
        assert db.body(rid) == content
        assert db.integrity() == ["ok"]
    # two messages of this size went through the process: allow for their buffers
    settle(ms, before, rss_slack=RSS_SLACK + 3 * size)
