"""Fixtures for the hostile-input suite (issue 7): mailsink servers that are always
stopped and checked (exit 0 on SIGTERM, no sanitizer report) through
tests/mailsink/mslib.py, one shared server per module where cases cannot disturb each
other (shared(...)) and fresh ones where they can (start(...)), and a hard deadline per
test so that a hang fails the run instead of blocking it."""

import faulthandler
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
# Appended, not prepended: tests/mailsink has a conftest.py of its own.
sys.path.append(os.path.join(_HERE, "..", "..", "mailsink"))
sys.path.insert(0, _HERE)

from mslib import HOSTNAME, Mailsink, stop_all  # noqa: E402

import hostlib  # noqa: E402

TEST_DEADLINE = 120 * hostlib.SLOW  # seconds; no test comes near it


def pytest_report_header(config):
    return "hostile: mailsink %s (%s build)" % (
        hostlib.mailsink_bin(), "sanitizer" if hostlib.SLOW > 1 else "plain")


@pytest.fixture(autouse=True)
def _deadline():
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


def _launcher(tmpdir, started):
    def _start(*args, http=True, cwd=None, env=None):
        n = len(started)
        db = os.path.join(str(tmpdir), "mail-%d.db" % n)
        argv = ["--smtp", "127.0.0.1:0", "--db", db, "--hostname", HOSTNAME] + list(args)
        ms = Mailsink(argv, tmpdir, env=env, db=db, cwd=cwd, name="mailsink-%d" % n,
                      http="127.0.0.1:0" if http else "none")
        started.append(ms)
        return ms
    return _start


@pytest.fixture
def start(tmp_path):
    """start(*args, http=True) runs a fresh mailsink on 127.0.0.1:0 (SMTP, and HTTP
    unless http=False) with its own database; stopped and checked after the test."""
    started = []
    yield _launcher(tmp_path, started)
    bad = stop_all(started)
    if bad:
        pytest.fail("mailsink did not end cleanly: " + "; ".join(bad))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """shared(*args, cwd=None) is one mailsink per distinct argument list for the whole
    module (the cases using it do not disturb each other); stopped and checked at the
    end. cwd only counts when that server is started."""
    started = []
    servers = {}
    launch = _launcher(tmp_path_factory.mktemp("shared"), started)

    def _get(*args, cwd=None):
        if args not in servers:  # never restarted: a crash must fail the cases
            servers[args] = launch(*args, cwd=cwd)
        return servers[args]

    yield _get
    bad = stop_all(started)
    if bad:
        pytest.fail("shared mailsink did not end cleanly: " + "; ".join(bad))
