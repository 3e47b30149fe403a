"""Fixtures for the fault tests (issue 7, the fault table at the end of
smtp-rules.md): mailsink servers that are always stopped and checked (exit status,
sanitizer reports) through tests/mailsink/mslib.py, a temporary directory per test, and a
hard deadline per test so that a hang fails the run instead of blocking it."""

import faulthandler
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "mailsink"))
sys.path.insert(0, _HERE)

from mslib import HOSTNAME, Mailsink, stop_all  # noqa: E402

import faultlib  # noqa: E402

# seconds; no test comes near it (a long kill -9 run gets 5 s per extra round)
TEST_DEADLINE = ((240 if faultlib.SANITIZED else 150) +
                 5 * max(0, faultlib.KILL_ROUNDS - 20))


def pytest_report_header(config):
    return ("faults: mailsink %s, %s build (MAILSINK_SANITIZED or an ASan runtime in the "
            "binary), kill rounds %d" % (faultlib.mailsink_bin(),
                                         "sanitizer" if faultlib.SANITIZED else "plain",
                                         faultlib.KILL_ROUNDS))


@pytest.fixture(autouse=True)
def _deadline():
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def start(tmp_path):
    """start(*args, db=..., env=...) runs mailsink on 127.0.0.1:0 with its own database
    (tmp/mail.db unless db is given) and --hostname mailsink.test, without HTTP, and stops
    it afterwards; env defaults to faultlib.server_env (a small ASan quarantine).
    Teardown fails the test unless it exits 0 on SIGTERM (or what ms.expected_exit says;
    None: not checked)."""
    started = []

    def _start(*args, db="default", env=None, smtp="127.0.0.1:0", listeners=1):
        argv = []
        if smtp:
            argv += ["--smtp", smtp]
        if db == "default":
            db = str(tmp_path / "mail.db")
        argv += ["--db", db, "--hostname", HOSTNAME] + list(args)
        if env is None:
            env = faultlib.server_env(tmp_path)
        ms = Mailsink(argv, tmp_path, env=env, listeners=listeners, db=db,
                      name="mailsink-%d" % len(started), http="none")
        started.append(ms)
        return ms

    yield _start
    bad = stop_all(started)
    if bad:
        pytest.fail("mailsink did not end cleanly: " + "; ".join(bad))
