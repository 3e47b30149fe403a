"""Fixtures for the end-to-end tests: example processes that are always stopped, and a
hard deadline per test so that a hang fails the run instead of blocking it."""

import faulthandler
import sys

import pytest

from e2elib import Example, RecordingProxy

TEST_DEADLINE = 180  # seconds; no test comes near it


@pytest.fixture(autouse=True)
def _deadline():
    # A test that hangs despite its socket and process timeouts dumps every thread's
    # stack and ends the run: better a loud failure than a silent CI timeout.
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def start(tmp_path):
    """start(name, *args) runs an example on 127.0.0.1 port 0 and stops it afterwards;
    its stderr (the -v transcript) is printed when the test fails."""
    started = []

    def _start(name, *args, **kw):
        log = tmp_path / ("%s-%d.stderr" % (name, len(started)))
        ex = Example(name, args, errpath=str(log), **kw)
        started.append(ex)
        return ex

    yield _start
    bad = []
    for ex in started:
        rc = ex.close()
        err = ex.stderr_tail(20000)
        print("---- %s stderr ----\n%s" % (" ".join(ex.argv), err[-4000:]))
        # every example must end cleanly: exit 0 on SIGTERM, no sanitizer report
        if rc != 0 or "Sanitizer" in err or "runtime error:" in err:
            bad.append("%s: exit status %s" % (" ".join(ex.argv), rc))
    if bad:
        pytest.fail("example did not end cleanly: " + "; ".join(bad))


@pytest.fixture
def catch(start):
    return start("catch")


@pytest.fixture
def validate(start):
    return start("validate")


@pytest.fixture
def proxy_for():
    """proxy_for(example) -> a RecordingProxy in front of it, closed afterwards."""
    proxies = []

    def _make(ex):
        p = RecordingProxy(ex.port, ex.addr)
        proxies.append(p)
        return p

    yield _make
    for p in proxies:
        p.close()

