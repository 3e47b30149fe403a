"""Fixtures for the mailsink end-to-end tests: servers that are always stopped (and must
exit 0 on SIGTERM), a temporary directory per test with its own database, HOME and
XDG_DATA_HOME, and a hard deadline per test so that a hang fails the run."""

import faulthandler
import sys

import pytest

from mslib import HOSTNAME, Mailsink, clean_env, stop_all

TEST_DEADLINE = 240  # seconds; no test comes near it


@pytest.fixture(autouse=True)
def _deadline():
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def start(tmp_path):
    """start(*args, db=..., env=..., smtp=True, hostname=True, listeners=1) runs mailsink
    on 127.0.0.1:0 with its own database (tmp/mail.db unless db is given; db=None for
    none) and stops it afterwards. Teardown fails the test unless it exits 0 on SIGTERM
    (or whatever ms.expected_exit says; None: not checked)."""
    started = []

    def _start(*args, db="default", env=None, smtp=True, hostname=True, listeners=1,
               cwd=None):
        argv = []
        if smtp:
            argv += ["--smtp", "127.0.0.1:0"]
        if db == "default":
            db = str(tmp_path / "mail.db")
        if db is not None:
            argv += ["--db", db]
        if hostname:
            argv += ["--hostname", HOSTNAME]
        argv += list(args)
        ms = Mailsink(argv, tmp_path, env=env, listeners=listeners,
                      db=db if db not in (None, ":memory:") else None, cwd=cwd,
                      name="mailsink-%d" % len(started))
        started.append(ms)
        return ms

    yield _start
    bad = stop_all(started)
    if bad:
        pytest.fail("mailsink did not end cleanly: " + "; ".join(bad))


@pytest.fixture
def ms(start):
    """A plain mailsink on 127.0.0.1:0 with tmp/mail.db."""
    return start()


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)
