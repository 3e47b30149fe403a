#!/usr/bin/python3
"""The throughput benchmark: mailsink, libsmtpd alone and Postfix's smtp-sink side by
side, in one run on one machine, so that only ratios from the same run are compared.

Servers (each run gets a fresh one):
  smtp-sink      Postfix's smtp-sink, discarding (the C reference)
  smtp-sink -D   smtp-sink appending every transaction to a file (the storing reference)
  libsmtpd       bench/sink.c: the library discarding (the library alone)
  mailsink       the program, storing every message in SQLite (default durability)

Loads: Postfix's smtp-source (no pipelining; -d keeps the connection for many messages
per connection) and bench/smtp-load (ours; with and without PIPELINING).

Figures per configuration: messages/s, server CPU seconds per 10,000 messages (utime +
stime of the server process from /proc, all threads), peak RSS (VmHWM); medians of
--runs runs with min-max; ratios against smtp-sink of the same run. Then memory per idle
connection with --idle connections held open.

Run through bench/run.sh (builds a release binary, installs Postfix's tools). Every loop
is bounded in count and time; servers listen on 127.0.0.1 only.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_listening(port, proc, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(512)  # the greeting: the server is really serving
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


class Server:
    """One fresh server process of the given kind on a free port."""

    def __init__(self, kind, tools, workdir):
        self.kind = kind
        self.port = free_port()
        addr = "127.0.0.1:%d" % self.port
        # smtp-sink refuses to run as root without a user to become
        as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
        if kind == "smtp-sink":
            argv = [tools["smtp-sink"], "-m", "20000"] + as_user + [addr, "1024"]
        elif kind == "smtp-sink -D":
            os.chmod(workdir, 0o777)  # the dump file is written as that user
            argv = [tools["smtp-sink"], "-m", "20000", "-D",
                    os.path.join(workdir, "dump")] + as_user + [addr, "1024"]
        elif kind == "libsmtpd" or kind.startswith("libsmtpd="):
            binary = kind.split("=", 1)[1] if "=" in kind else tools["libsink"]
            argv = [binary, "-o", "max-sessions=20000", "-o", "max-sessions-per-ip=20000", "-o",
                    "max-message-size=209715200", "127.0.0.1", str(self.port)]
        elif kind == "mailsink" or kind.startswith("mailsink="):
            # "mailsink=PATH" (and "libsmtpd=PATH" above): another binary, for A/B runs
            binary = kind.split("=", 1)[1] if "=" in kind else tools["mailsink"]
            argv = [binary, "--smtp", addr, "--db",
                    os.path.join(workdir, "mail.db"), "--http", "none",
                    "--max-message-size", "200M", "--max-connections", "20000",
                    "--max-connections-per-ip", "20000"] + \
                   tools.get("mailsink_args", [])
        else:
            raise ValueError(kind)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(workdir, "server.err"), "ab"),
                                     cwd=workdir)
        wait_listening(self.port, self.proc)

    def cpu(self):
        return proc_cpu_seconds(self.proc.pid)

    def peak_rss_kib(self):
        return proc_status_kib(self.proc.pid, "VmHWM")

    def rss_kib(self):
        return proc_status_kib(self.proc.pid, "VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_load(load, port, cfg, tools, timeout_s):
    """Returns the seconds the load took; raises when it did not deliver everything."""
    n, size, sessions, per_conn = cfg["messages"], cfg["size"], cfg["sessions"], cfg["per_conn"]
    if load == "smtp-source":
        argv = [tools["smtp-source"], "-l", str(size), "-m", str(n), "-s", str(sessions),
                "-f", "load@example.com", "-t", "sink@example.com"]
        if per_conn != 1:
            argv.append("-d")
        argv.append("127.0.0.1:%d" % port)
    else:
        argv = [tools["smtp-load"], "--port", str(port), "--messages", str(n), "--size",
                str(size), "--sessions", str(sessions), "--per-connection",
                str(0 if per_conn != 1 else 1), "--timeout", str(timeout_s)]
        if load == "smtp-load --pipelining":
            argv.append("--pipelining")
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout_s + 30)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                   r.stderr.decode(errors="replace")[-500:]))
    return secs


def measure(kind, load, cfg, tools, timeout_s):
    work = tempfile.mkdtemp(prefix="mailsink-bench-")
    try:
        srv = Server(kind, tools, work)
        try:
            cpu0 = srv.cpu()
            secs = run_load(load, srv.port, cfg, tools, timeout_s)
            # the server may still be finishing (a store's last commit): let CPU settle
            time.sleep(0.2)
            cpu = srv.cpu() - cpu0
            peak = srv.peak_rss_kib()
        finally:
            srv.stop()
        return {"msgs_per_s": cfg["messages"] / secs,
                "cpu_s_per_10k": cpu * 10000 / cfg["messages"],
                "peak_rss_mib": peak / 1024}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def idle_connections(kind, count, tools, timeout_s):
    """KiB of server RSS per idle connection with `count` connections held open."""
    work = tempfile.mkdtemp(prefix="mailsink-bench-idle-")
    socks = []
    try:
        srv = Server(kind, tools, work)
        try:
            time.sleep(0.3)
            before = srv.rss_kib()
            end = time.monotonic() + timeout_s
            for _ in range(count):
                if time.monotonic() > end:
                    raise RuntimeError("idle: opening connections timed out")
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                socks.append(s)
            greeted = 0
            for s in socks:  # every one is a real session: it got its greeting
                if s.recv(512).startswith(b"220"):
                    greeted += 1
            time.sleep(0.5)
            after = srv.rss_kib()
        finally:
            for s in socks:
                s.close()
            srv.stop()
        return {"connections": count, "greeted": greeted,
                "kib_per_conn": (after - before) / count}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


CONFIGS = [
    # name, size, sessions, messages per connection (0 = many), loads
    ("1 KiB, 20 sessions, many/conn", 1024, 20, 0),
    ("100 KiB, 20 sessions, many/conn", 102400, 20, 0),
    ("1 KiB, 1 session, many/conn", 1024, 1, 0),
    ("100 KiB, 1 session, many/conn", 102400, 1, 0),
    ("1 KiB, 20 sessions, 1/conn", 1024, 20, 1),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="release build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages-small", type=int, default=20000, help="per run at 1 KiB")
    ap.add_argument("--messages-large", type=int, default=2000, help="per run at 100 KiB")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections held")
    ap.add_argument("--servers", default="smtp-sink,smtp-sink -D,libsmtpd,mailsink")
    ap.add_argument("--configs", help="only configurations whose name contains one of these "
                    "';'-separated strings (e.g. '1 KiB, 20 sessions, many;100 KiB, 20')",
                    default="")
    ap.add_argument("--loads", default="", help="only these loads, comma-separated "
                    "(smtp-source, smtp-load, smtp-load --pipelining)")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle-connection test")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per load run")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="1 run, fewer messages, 1000 idle")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.messages_small, a.messages_large, a.idle = 1, 3000, 300, 1000
    tools = {"smtp-sink": shutil.which("smtp-sink") or "/usr/sbin/smtp-sink",
             "smtp-source": shutil.which("smtp-source") or "/usr/sbin/smtp-source",
             "smtp-load": os.path.join(a.bin, "smtp-load"),
             "libsink": os.path.join(a.bin, "smtp-libsink"),
             "mailsink": os.path.join(a.bin, "mailsink")}
    # enough descriptors for the idle test, for us and (inherited) for the servers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * a.idle + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    results = {"machine": os.uname().nodename, "cpus": os.cpu_count(),
               "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "runs": a.runs, "throughput": [], "idle": []}
    only_configs = [c.strip() for c in a.configs.split(";") if c.strip()]
    only_loads = [x.strip() for x in a.loads.split(",") if x.strip()]
    for name, size, sessions, per_conn in CONFIGS:
        if only_configs and not any(c in name for c in only_configs):
            continue
        n = a.messages_small if size <= 1024 else a.messages_large
        cfg = {"messages": n, "size": size, "sessions": sessions, "per_conn": per_conn}
        loads = ["smtp-source", "smtp-load"]
        if per_conn != 1:
            loads.append("smtp-load --pipelining")
        for load in [x for x in loads if not only_loads or x in only_loads]:
            # interleave servers within each run so that noise hits them alike
            samples = {s: [] for s in servers}
            for _ in range(a.runs):
                for s in servers:
                    samples[s].append(measure(s, load, cfg, tools, a.timeout))
            for s in servers:
                row = {"config": name, "load": load, "server": s, "messages": n}
                for k in ("msgs_per_s", "cpu_s_per_10k", "peak_rss_mib"):
                    row[k] = summarize([x[k] for x in samples[s]])
                results["throughput"].append(row)
                print("%-34s %-24s %-13s %9.0f msg/s  %6.2f CPU-s/10k  %6.1f MiB" % (
                    name, load, s, row["msgs_per_s"]["median"],
                    row["cpu_s_per_10k"]["median"], row["peak_rss_mib"]["median"]),
                    flush=True)
    for s in [] if a.no_idle else servers:
        try:
            results["idle"].append(dict(idle_connections(s, a.idle, tools, a.timeout),
                                        server=s))
        except (RuntimeError, OSError) as e:
            results["idle"].append({"server": s, "error": str(e)})
        print("idle %-13s %s" % (s, results["idle"][-1]), flush=True)
    print()
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def table(results):
    """The markdown table for bench/README.md: medians (min-max), ratio to smtp-sink."""
    out = ["| configuration | load | server | msg/s | × smtp-sink | CPU-s/10k | "
           "× smtp-sink | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    ref = {}
    for r in results["throughput"]:
        if r["server"] == "smtp-sink":
            ref[(r["config"], r["load"])] = r
    for r in results["throughput"]:
        base = ref.get((r["config"], r["load"]))
        m, c = r["msgs_per_s"], r["cpu_s_per_10k"]
        rate_ratio = m["median"] / base["msgs_per_s"]["median"] if base else float("nan")
        cpu_ratio = (c["median"] / base["cpu_s_per_10k"]["median"]
                     if base and base["cpu_s_per_10k"]["median"] else float("nan"))
        out.append("| %s | %s | %s | %.0f (%.0f–%.0f) | %.2f | %.2f (%.2f–%.2f) | %.2f | %.1f |"
                   % (r["config"], r["load"], r["server"], m["median"], m["min"], m["max"],
                      rate_ratio, c["median"], c["min"], c["max"], cpu_ratio,
                      r["peak_rss_mib"]["median"]))
    out.append("")
    out.append("| server | idle connections | KiB per connection |")
    out.append("|---|---|---|")
    for r in results["idle"]:
        if "error" in r:
            out.append("| %s | – | %s |" % (r["server"], r["error"]))
        else:
            out.append("| %s | %d (greeted %d) | %.2f |" % (r["server"], r["connections"],
                                                             r["greeted"], r["kib_per_conn"]))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
