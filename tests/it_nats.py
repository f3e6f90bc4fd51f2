#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The NATS JetStream sink against a real 3-node nats-server cluster (tests/nats_cluster.py),
the real kernel and a real fork+exec storm.

Usage: it_nats.py CASE LIFEMON FORKBOMB BUILD_DIR
CASE is one of:
  steady       a storm into a healthy cluster
  leader_kill  the node leading the stream SIGKILLed in a storm, restarted after it; the
               stream read through it while it catches up
  conn_kill    the node lifemon is connected to (not the stream's leader: moved off it first)
               SIGKILLed in a storm: lifemon connects to another, and what was in flight on
               the dead connection keeps its place
  quorum       two of three nodes (the stream leader among them) stopped with SIGTERM for
               10 s in a storm, then started again; a backlog sized for the outage
  tiny_backlog as quorum with --nats-backlog-bytes 64K: loss happens, counted and announced
  cold_start   lifemon started with every node down; a storm; then the cluster started

Each case runs lifemon with --nats <the three URLs>, a stream of its own (T<pid>), --output
(its JSON Lines file has every event lifemon serialized) and /metrics polled every 100 ms,
then stops lifemon (SIGTERM: it publishes what is left while the brokers ack) and reads the
stream back with `lifemon --nats-tail`. Checks: every seq of the file is in the stream once
and in order, with the same JSON line; the instance is the file's; the stream's message count
(/jsz) is what nats-tail printed; the books (delivered + dropped + pending = serialized,
pending 0 at the end); the seqs missing from the stream are exactly those the stream's LOST
notices (reason nats_backlog_full) name, and their counts sum to
lifemon_sink_dropped_total{sink="nats"} (0 in every case but tiny_backlog, where it must be
more than 0). Prints the numbers for the closing note: events/s acked, the longest stall
between acks while events waited, the backlog peak, retries, duplicates the server reported,
reconnects and losses.

Starts: three nats-server (by pid, SIGTERM at the end; SIGKILL for the leader and connection
kills), lifemon (SIGTERM), two bench/forkbomb-lite drivers (bounded in time, live and total
children) and lifemon --nats-tail; all under setpriv --pdeathsig, so none outlives a killed harness. Ports
are chosen free. Everything lives in BUILD_DIR/nats-it/CASE (fresh for each run, removed
after a pass, kept after a failure). Exit 0 pass, 1 fail, 77 skip (not root, no BTF, no
nats-server; with CI=true those fail instead). Bounded: gives up after its case's deadline.
Run by hand under `flock /tmp/lm-it.lock`.
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nats_cluster  # noqa: E402

STORM_LIVE = 8       # live children per driver, two drivers
STORM_TOTAL = 100000  # per driver (forkbomb-lite's hard cap)
OUTAGE_S = 10
POLL_S = 0.1
# Per case: the harness's own deadline (below the ctest TIMEOUT) and the storm's length.
DEADLINES = {"steady": 75, "leader_kill": 100, "conn_kill": 100, "quorum": 120, "tiny_backlog": 120,
             "cold_start": 100}
STORM_S = {"steady": 6, "leader_kill": 14, "conn_kill": 10, "quorum": 18, "tiny_backlog": 18, "cold_start": 5}
# quorum's backlog: the outage at the storm's rate needs about 10 s x 5k ev/s x 1 KB here;
# four times that leaves room for a faster host.
QUORUM_BACKLOG = "256M"
QUORUM_BACKLOG_BYTES = 256 << 20

TEST = "it_nats"
failures = []
deadline = 0.0


def log(tag, msg):
    sys.stderr.write(f"{tag}: {TEST}: {msg}\n")
    sys.stderr.flush()


def note(msg):
    log("INFO", msg)


def result(msg):
    """A measured number for the closing note."""
    log("RESULT", msg)


def skip(msg):
    strict = os.environ.get("CI") == "true"
    log("FAIL" if strict else "SKIP", msg)
    sys.exit(1 if strict else 77)


def expect(cond, msg):
    if not cond:
        failures.append(msg)
        log("FAIL", msg)
    return cond


class Fatal(Exception):
    pass


def left():
    return deadline - time.monotonic()


def wait_for(what, fn, timeout, interval=0.1):
    """Polls fn() until it returns something truthy; returns that, or raises Fatal."""
    end = min(time.monotonic() + timeout, deadline)
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= end:
            raise Fatal(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def spawn(argv, **kw):
    """Starts argv under setpriv --pdeathsig KILL (exec'd in place: the pid is argv's)."""
    return subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *argv],
                            stdin=subprocess.DEVNULL, **kw)


# --- /metrics ---

METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        m = METRIC_RE.match(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


DELIVERED = 'lifemon_sink_delivered_total{sink="nats"}'
DROPPED = 'lifemon_sink_dropped_total{sink="nats"}'
PENDING = "lifemon_nats_pending_events"


def http_get(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:port/path; status 0 when unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class Poller:
    """Polls lifemon's /metrics every 100 ms on its own thread (HTTP only: the thread starts
    no process, so no --pdeathsig fires when it ends) and keeps (time, metrics) samples."""

    def __init__(self, port):
        self.port = port
        self.samples = []
        self.misses = 0
        self.stop_ev = threading.Event()
        self.thr = threading.Thread(target=self._run, daemon=True)
        self.thr.start()

    def _run(self):
        while not self.stop_ev.is_set():
            t = time.monotonic()
            st, body = http_get(self.port, "/metrics")
            if st == 200:
                self.samples.append((t, parse_metrics(body.decode())))
            else:
                self.misses += 1
            self.stop_ev.wait(max(0.0, POLL_S - (time.monotonic() - t)))

    def stop(self):
        self.stop_ev.set()
        self.thr.join()

    def dump(self, path, t0):
        """The samples of the books as a table, times from t0, for a look after a run."""
        keys = (DELIVERED, DROPPED, PENDING, "lifemon_nats_backlog_bytes",
                "lifemon_nats_inflight", "lifemon_nats_retries_total",
                "lifemon_nats_duplicates_total", "lifemon_nats_connected",
                "lifemon_serialized_total")
        with open(path, "w", encoding="utf-8") as f:
            f.write("t " + " ".join(k.split("{")[0].replace("lifemon_", "") for k in keys) + "\n")
            for t, m in self.samples:
                f.write(f"{t - t0:.2f} " + " ".join(f"{m.get(k, -1):.0f}" for k in keys) + "\n")

    def changed(self, key, t_from=None):
        """(first, last) time a counter grew, or None."""
        first = last = None
        prev = None
        for t, m in self.samples:
            v = m.get(key)
            if v is None:
                continue
            if prev is not None and v > prev and (t_from is None or t >= t_from):
                first = first if first is not None else t
                last = t
            prev = v
        return (first, last) if first is not None else None

    def latest(self):
        return self.samples[-1][1] if self.samples else {}

    def longest_stall(self, t_from=None, t_to=None):
        """(seconds, start time) of the longest time without a new ack while events waited:
        the time between two polls that saw lifemon_sink_delivered_total{sink="nats"} grow,
        restarted at any poll that saw nothing pending."""
        best, best_at = 0.0, None
        ref = last = None
        for t, m in self.samples:
            if (t_from is not None and t < t_from) or (t_to is not None and t > t_to):
                continue
            d, p = m.get(DELIVERED), m.get(PENDING)
            if d is None or p is None:
                continue
            if ref is None:
                ref, last = t, d
                continue
            if d > last:
                if t - ref > best:
                    best, best_at = t - ref, ref
                ref = t
            elif p == 0:
                ref = t
            last = d
        return best, best_at


# --- lifemon ---

class Lifemon:
    def __init__(self, binary, rundir):
        self.binary = binary
        self.port = nats_cluster.free_ports(1)[0]
        self.out = os.path.join(rundir, "events.jsonl")
        self.errpath = os.path.join(rundir, "lifemon.err")
        self.proc = None

    def start(self, extra):
        argv = [self.binary, "--listen", f"127.0.0.1:{self.port}", "--output", self.out, *extra]
        note("lifemon " + " ".join(argv[1:]))
        with open(self.errpath, "ab") as err:
            self.proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=err)
        wait_for("lifemon /healthz", lambda: self.proc.poll() is not None or
                 http_get(self.port, "/healthz")[0] == 200, 20)
        if self.proc.poll() is not None:
            raise Fatal(f"lifemon exited with {self.proc.returncode}; see {self.errpath}")
        note(f"lifemon pid {self.proc.pid} healthy on 127.0.0.1:{self.port}")

    def metrics(self):
        st, body = http_get(self.port, "/metrics", 5.0)
        if st != 200:
            raise Fatal(f"/metrics answered {st}")
        return parse_metrics(body.decode())

    def stop(self, timeout=30.0):
        """SIGTERM by pid; returns the seconds until it exited (it publishes what is left)."""
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fatal(f"lifemon did not stop within {timeout:.0f} s of SIGTERM")
        took = time.monotonic() - t0
        expect(self.proc.returncode == 0, f"lifemon exited with {self.proc.returncode}")
        return took

    def stderr(self):
        try:
            with open(self.errpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def ws_hello(port):
    """Opens /ws with a raw RFC 6455 handshake and returns the first text frame (HELLO)."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise Fatal("/ws closed during the handshake")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise Fatal(f"/ws answered {head.splitlines()[0]!r}")

        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise Fatal("/ws closed before HELLO")
                buf += chunk

        need(2)
        ln = buf[1] & 0x7f
        off = 2
        if ln == 126:
            need(4)
            ln, off = int.from_bytes(buf[2:4], "big"), 4
        elif ln == 127:
            need(10)
            ln, off = int.from_bytes(buf[2:10], "big"), 10
        need(off + ln)
        return json.loads(buf[off:off + ln])


# --- the storm ---

class Storm:
    def __init__(self, fb, seconds):
        self.drivers = []
        self.t0 = time.monotonic()
        for _ in range(2):
            self.drivers.append(spawn([fb, "--mode", "exec", "--exec", "/bin/true",
                                       "--seconds", str(seconds), "--max-live", str(STORM_LIVE),
                                       "--total", str(STORM_TOTAL)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.t1 = None
        note(f"storm: 2 x forkbomb-lite pids {[p.pid for p in self.drivers]}, {seconds} s, "
             f"{STORM_LIVE} live each")

    def done(self):
        if all(p.poll() is not None for p in self.drivers):
            if self.t1 is None:
                self.t1 = time.monotonic()
            return True
        return False

    def wait(self):
        wait_for("the storm's end", self.done, left())
        for p in self.drivers:
            expect(p.returncode == 0, f"forkbomb-lite {p.pid} exited with {p.returncode}")

    def kill(self):
        for p in self.drivers:
            if p.poll() is None:
                p.kill()
                p.wait()


# --- reading back and checking ---

def read_file(path):
    """(events by seq in file order, instance, LOST notices) of lifemon's JSON Lines file."""
    events, lost, instance = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            ev = json.loads(line)
            if ev.get("type") == "LOST":
                lost.append(ev)
                continue
            events.append((ev["seq"], line))
            instance = instance or ev.get("instance")
    return events, instance, lost


def tail(lifemon_bin, url, stream, rundir, name="tail", subject=None):
    """Runs lifemon --nats-tail (of one subject, if given) and returns (lines, summary line
    on stderr)."""
    outp = os.path.join(rundir, f"{name}.jsonl")
    errp = os.path.join(rundir, f"{name}.err")
    end = time.monotonic() + 15
    while True:
        with open(outp, "wb") as out, open(errp, "wb") as err:
            p = spawn([lifemon_bin, "--nats-tail", "--nats", url, "--nats-stream", stream] +
                      (["--nats-subject", subject] if subject else []), stdout=out, stderr=err)
            try:
                rc = p.wait(max(5.0, min(60.0, left())))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise Fatal("lifemon --nats-tail did not finish within 60 s")
        with open(errp, encoding="utf-8", errors="replace") as f:
            errtext = f.read()
        # Right after a restart, JetStream may refuse the consumer for a moment; nats-tail
        # says so and exits 1, which is fair. Printing less than the stream holds is not.
        if rc == 0 or "temporarily unavailable" not in errtext or time.monotonic() > end:
            break
        note(f"nats-tail: {errtext.strip()}; again in 0.5 s")
        time.sleep(0.5)
    if rc != 0:
        raise Fatal(f"lifemon --nats-tail exited with {rc}: {errtext[-2000:]}")
    with open(outp, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    summary = [ln for ln in errtext.splitlines() if ln.startswith("nats-tail:")]
    return lines, (summary[-1] if summary else errtext.strip())


def check_stream(file_events, instance, lines, dropped, expect_loss):
    """The stream against the file: in order, once each, same lines; the missing seqs are
    exactly the LOST notices' ranges, whose counts sum to dropped. Returns numbers."""
    by_seq = dict(file_events)
    seqs = [s for s, _ in file_events]
    expect(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False,
           "the file's seqs are not contiguous: the reference itself has a gap")
    got, notices, other, bad = [], [], [], []
    for i, ln in enumerate(lines):
        try:
            ev = json.loads(ln)
        except ValueError as e:
            bad.append(i + 1)
            if len(bad) == 1:
                expect(False, f"stream message {i + 1} is not JSON ({e}): {ln[:200]!r}")
            continue
        if ev.get("type") == "LOST":
            notices.append(ev)
        elif "seq" in ev:
            got.append(ev["seq"])
            if ev.get("instance") != instance:
                other.append(ev["seq"])
            elif by_seq.get(ev["seq"]) != ln:
                expect(False, f"seq {ev['seq']}: the stream's line differs from the file's")
    expect(len(bad) <= 1, f"{len(bad)} stream messages are not JSON (numbers {bad[:10]})")
    expect(not other, f"{len(other)} events of another instance in the stream (first {other[:5]})")
    dups = len(got) - len(set(got))
    disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
    expect(dups == 0, f"{dups} seqs appear more than once in the stream")
    expect(disorder == 0, f"{disorder} times a seq follows one not below it in the stream; "
           f"the stream's seqs run {runs(got)}")
    missing = sorted(set(seqs) - set(got))
    extra = sorted(set(got) - set(seqs))
    expect(not extra, f"{len(extra)} seqs in the stream are not in the file: {extra[:10]}")
    covered = set()
    for n in notices:
        expect(n.get("reason") == "nats_backlog_full", f"unexpected LOST notice in stream: {n}")
        f, last = n.get("first_seq"), n.get("last_seq")
        expect(isinstance(f, int) and isinstance(last, int) and f <= last and
               n.get("count") == last - f + 1, f"LOST notice without a consistent range: {n}")
        if isinstance(f, int) and isinstance(last, int):
            rng = set(range(f, last + 1))
            expect(not (rng & covered), f"LOST notices overlap: {n}")
            covered |= rng
    lost_count = sum(n.get("count", 0) for n in notices)
    expect(sorted(covered) == missing,
           f"missing seqs ({len(missing)}: {summarize(missing)}) are not exactly the LOST "
           f"notices' ranges ({len(covered)}: {summarize(sorted(covered))})")
    expect(lost_count == dropped, f"LOST notices count {lost_count}, "
           f"lifemon_sink_dropped_total{{sink=\"nats\"}} is {dropped:.0f}")
    if expect_loss:
        expect(dropped > 0, "no loss with a 64K backlog through a 10 s outage: the case "
               "did not test what it is for")
    else:
        expect(not missing and not notices, f"{len(missing)} events lost ({summarize(missing)}), "
               f"{len(notices)} LOST notices")
    return {"events": len(seqs), "in_stream": len(got), "missing": len(missing),
            "notices": len(notices), "lost_count": lost_count, "dups": dups,
            "disorder": disorder}


def runs(seqs):
    """The runs of consecutive values in a list, in its order, for messages."""
    out, start, prev = [], None, None
    for s in seqs:
        if start is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            out.append(f"{start}..{prev}")
        start = prev = s
    if start is not None:
        out.append(f"{start}..{prev}")
    return ", ".join(out[:12]) + (", ..." if len(out) > 12 else "")


def summarize(seqs):
    """Ranges of a sorted seq list, for messages."""
    out, start, prev = [], None, None
    for s in seqs:
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = s
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(out[:8]) + (",..." if len(out) > 8 else "")


def ack_quantile(m, q):
    """A quantile of lifemon_nats_ack_seconds from its buckets (the bucket's upper bound)."""
    buckets = sorted(((float(k.split('le="')[1].rstrip('"}')) if "+Inf" not in k
                       else float("inf")), v) for k, v in m.items()
                     if k.startswith("lifemon_nats_ack_seconds_bucket"))
    if not buckets or buckets[-1][1] == 0:
        return None
    want = q * buckets[-1][1]
    for le, c in buckets:
        if c >= want:
            return le
    return None


# --- the cases ---

class Run:
    def __init__(self, case, lifemon_bin, fb, build):
        self.case = case
        self.lifemon_bin = lifemon_bin
        self.fb = fb
        self.rundir = os.path.join(os.path.abspath(build), "nats-it", case)
        self.cluster = nats_cluster.Cluster(self.rundir, note)
        self.stream = f"T{os.getpid()}"
        self.lm = Lifemon(lifemon_bin, self.rundir)
        self.poller = None
        self.storm = None

    def start_lifemon(self, extra=()):
        self.lm.start(["--nats", self.cluster.urls(), "--nats-stream", self.stream, *extra])
        self.poller = Poller(self.lm.port)

    def wait_stream(self):
        """Until lifemon found or made its stream and the cluster elected its leader."""
        wait_for("lifemon_nats_stream_ready 1",
                 lambda: self.lm.metrics().get("lifemon_nats_stream_ready") == 1, 30)
        leader = self.cluster.wait_stream_leader(self.stream, min(30, left()))
        self.cluster.wait_replicas_current(self.stream, min(30, left()))
        return leader

    def drain(self, timeout):
        """Waits until the storm ended and nothing is pending in the sink; returns the time
        pending reached 0 and the metrics then."""
        self.storm.wait()
        m = wait_for("lifemon_nats_pending_events 0",
                     lambda: (lambda m: m if m.get(PENDING) == 0 else None)(self.lm.metrics()),
                     timeout)
        return time.monotonic(), m

    def finish(self, m_end, t_acked, expect_loss=False):
        """Stops lifemon, reads the stream back and checks it against the file and books."""
        self.poller.stop()
        self.poller.dump(os.path.join(self.rundir, "books.txt"), self.storm.t0)
        ser = m_end.get("lifemon_serialized_total", -1)
        deliv, drop, pend = m_end.get(DELIVERED, -1), m_end.get(DROPPED, -1), m_end.get(PENDING)
        expect(deliv + drop + pend == ser,
               f"books: delivered {deliv:.0f} + dropped {drop:.0f} + pending {pend:.0f} != "
               f"serialized {ser:.0f}")
        fdrop = m_end.get('lifemon_sink_dropped_total{sink="file"}', -1)
        kdrop = sum(v for k, v in m_end.items() if k.startswith("lifemon_kernel_dropped_total"))
        note(f"at pending 0: serialized {ser:.0f}, delivered {deliv:.0f}, dropped {drop:.0f}, "
             f"kernel dropped {kdrop:.0f}, file dropped {fdrop:.0f}")
        took = self.lm.stop()
        note(f"lifemon stopped in {took:.2f} s")
        unacked = [ln for ln in self.lm.stderr().splitlines() if "before shutdown" in ln]
        expect(not unacked, f"lifemon's shutdown left events unacked: {unacked}")
        events, instance, file_lost = read_file(self.lm.out)
        expect(all(n.get("reason") == "kernel_ring_full" for n in file_lost),
               f"LOST notices in the file: {file_lost[:3]}")
        # The shutdown published what came after m_end; read what the stream holds now, from
        # a settled cluster (a node restarted in the case may still be catching up).
        self.cluster.wait_meta_leader(min(30, left()))
        self.cluster.wait_replicas_current(self.stream, min(30, left()))
        state = self.cluster.stream_state(self.stream) or {}
        lines, summary = tail(self.lifemon_bin, self.cluster.nodes[0].url, self.stream,
                              self.rundir)
        note(f"{summary}; /jsz: {state.get('messages')} messages, stream seq "
             f"{state.get('first_seq')}..{state.get('last_seq')}")
        expect(state.get("messages") == len(lines),
               f"nats-tail printed {len(lines)} messages, the stream holds {state.get('messages')}")
        m = re.search(r"nats-tail: (\d+) messages", summary)
        expect(m is not None and int(m.group(1)) == len(lines),
               f"nats-tail's summary {summary!r} does not count the {len(lines)} lines")
        r = check_stream(events, instance, lines, drop, expect_loss)
        result(f"{self.case}: {r['events']} events in the file, {r['in_stream']} in the stream, "
               f"{r['dups']} of them twice or more, {r['disorder']} out of order; "
               f"{r['missing']} missing = {r['lost_count']} announced in {r['notices']} LOST "
               f"notices, {drop:.0f} counted dropped")
        self.report(m_end, t_acked)
        return r

    def report(self, m, t_acked):
        s0 = self.storm.t0
        first = next(((t, x) for t, x in self.poller.samples if t >= s0), None)
        d0 = first[1].get(DELIVERED, 0) if first else 0
        deliv = m.get(DELIVERED, 0)
        secs = t_acked - s0
        stall, at = self.poller.longest_stall(s0, t_acked)
        q50, q99 = ack_quantile(m, 0.5), ack_quantile(m, 0.99)
        result(f"{self.case}: {deliv - d0:.0f} events acked in {secs:.1f} s from the storm's "
               f"start to nothing pending = {(deliv - d0) / secs:.0f} events/s (storm "
               f"{self.storm.t1 - s0:.1f} s); ack round trip p50 <= {q50} s, p99 <= {q99} s")
        result(f"{self.case}: longest stall between acks with events waiting "
               f"{stall:.1f} s" + (f" (from {at - s0:.1f} s into the storm)" if at else "") +
               f"; backlog peak {m.get('lifemon_nats_backlog_peak_bytes', -1):.0f} bytes; "
               f"retries {m.get('lifemon_nats_retries_total', -1):.0f}, failures "
               f"{m.get('lifemon_nats_failures_total', -1):.0f}, duplicates reported by the "
               f"server {m.get('lifemon_nats_duplicates_total', -1):.0f}, reconnects "
               f"{m.get('lifemon_nats_reconnects_total', -1):.0f}, dropped "
               f"{m.get(DROPPED, -1):.0f}, LOST notices acked "
               f"{m.get('lifemon_nats_lost_notices_total', -1):.0f}; /metrics polls missed "
               f"{self.poller.misses}")
        return stall, at

    def cleanup(self):
        if self.storm:
            self.storm.kill()
        if self.poller:
            self.poller.stop()
        try:
            self.lm.stop()
        except Fatal as e:
            expect(False, str(e))
        self.cluster.stop_all()


def mid_tail(r, via):
    """Reads the stream back through node via, just restarted and still catching up (an
    ephemeral consumer is placed on the node asked, when it is one of the stream's): nats-tail
    must print at least everything the stream's leader held when it started, from stream seq
    1 without a gap, the events' lifemon seqs rising (LOST notices have none)."""
    state = r.cluster.stream_state(r.stream) or {}
    held = state.get("last_seq", 0)
    # lifemon's own subject first (narrower than the stream's lifemon.>: nats-tail finds the
    # end through the subject's last message), then the whole stream
    subj = re.search(r"publishing to ([A-Za-z0-9_.-]+)", r.lm.stderr())
    if not expect(subj is not None, "lifemon's stderr does not name its subject"):
        return
    for subject in (subj.group(1), None):
        mid_tail_once(r, via, held, subject)


def mid_tail_once(r, via, held, subject):
    when = f"{via} just restarted" + (f", subject {subject}" if subject else "")
    t = time.monotonic()
    lines, summary = tail(r.lifemon_bin, r.cluster.node(via).url, r.stream, r.rundir,
                          "mid-tail", subject)
    m = re.search(r"nats-tail: (\d+) messages, stream seq (\d+)\.\.(\d+)", summary)
    seqs = [ev["seq"] for ev in map(json.loads, lines) if ev.get("type") != "LOST"]
    ok = expect(m is not None and int(m.group(2)) == 1 and int(m.group(3)) >= held and
                int(m.group(1)) == len(lines) == int(m.group(3)),
                f"{when}: nats-tail printed {len(lines)} messages ({summary!r}) while the "
                f"stream's leader held stream seq 1..{held}")
    ok &= expect(all(b > a for a, b in zip(seqs, seqs[1:])),
                 f"{when}: nats-tail's lifemon seqs do not rise")
    if ok:
        note(f"{when}: nats-tail read {len(lines)} messages (the leader held {held}) in "
             f"{time.monotonic() - t:.2f} s")


def case_steady(r):
    r.cluster.start()
    r.cluster.wait_meta_leader(min(30, left()))
    r.start_lifemon()
    leader = r.wait_stream()
    note(f"stream {r.stream} leader {leader}")
    r.storm = Storm(r.fb, STORM_S[r.case])
    t_acked, m = r.drain(30)
    expect(m.get(DROPPED) == 0, f"dropped {m.get(DROPPED)} in a steady storm")
    r.finish(m, t_acked)


def case_leader_kill(r):
    r.cluster.start()
    r.cluster.wait_meta_leader(min(30, left()))
    r.start_lifemon()
    leader = r.wait_stream()
    r.storm = Storm(r.fb, STORM_S[r.case])
    time.sleep(3)
    t_kill = time.monotonic()
    r.cluster.stop(leader, signal.SIGKILL)
    note(f"SIGKILLed stream leader {leader} {t_kill - r.storm.t0:.1f} s into the storm")
    new = r.cluster.wait_stream_leader(r.stream, min(30, left()), other_than=leader)
    t_new = time.monotonic()
    note(f"new stream leader {new} {t_new - t_kill:.2f} s after the kill")
    t_acked, m = r.drain(60)
    # Restarted once the storm is in the stream: it has all of it to catch up on while it is
    # read through.
    r.cluster.start([leader])
    note(f"restarted {leader} {time.monotonic() - t_kill:.1f} s after the kill")
    mid_tail(r, leader)
    r.cluster.wait_replicas_current(r.stream, min(30, left()))
    expect(m.get(DROPPED) == 0, f"dropped {m.get(DROPPED)} around a leader kill")
    r.finish(m, t_acked)
    stall, _ = r.poller.longest_stall(t_kill - 1, t_acked)
    result(f"leader_kill: new stream leader elected {t_new - t_kill:.2f} s after SIGKILL; "
           f"stall around the kill {stall:.1f} s")


def case_conn_kill(r):
    """SIGKILLs the node lifemon is connected to, mid-storm: what was in flight on the dead
    connection must not be overtaken by what follows on the next one."""
    r.cluster.start()
    r.cluster.wait_meta_leader(min(30, left()))
    r.start_lifemon()
    leader = r.wait_stream()
    node = r.cluster.client_node("lifemon ")
    if node is None:
        raise Fatal("no node lists lifemon's connection in /connz")
    # Only the connection dies: the stream's leader moves off lifemon's node first (a leader
    # kill is leader_kill's case), so the stream takes the next message at once.
    for _ in range(5):
        if leader != node:
            break
        via = next(n.name for n in r.cluster.nodes if n.name != node)
        note(f"stream leader {leader} is lifemon's node: step down: "
             f"{r.cluster.stream_stepdown(r.stream, via)}")
        leader = r.cluster.wait_stream_leader(r.stream, min(30, left()), other_than=node)
    expect(leader != node, f"the stream's leader stays on lifemon's node {node}")
    r.storm = Storm(r.fb, STORM_S[r.case])
    time.sleep(3)
    t_kill = time.monotonic()
    r.cluster.stop(node, signal.SIGKILL)
    note(f"SIGKILLed {node}, the node lifemon is connected to (stream leader {leader}), "
         f"{t_kill - r.storm.t0:.1f} s into the storm")
    wait_for("lifemon_nats_reconnects_total 1",
             lambda: r.lm.metrics().get("lifemon_nats_reconnects_total", 0) >= 1, 30)
    t_re = time.monotonic()
    note(f"lifemon reconnected {t_re - t_kill:.2f} s after the kill")
    t_acked, m = r.drain(60)
    r.cluster.start([node])
    r.cluster.wait_replicas_current(r.stream, min(30, left()))
    expect(m.get(DROPPED) == 0, f"dropped {m.get(DROPPED)} around the kill of lifemon's node")
    r.finish(m, t_acked)
    stall, _ = r.poller.longest_stall(t_kill - 1, t_acked)
    result(f"conn_kill: reconnected {t_re - t_kill:.2f} s after SIGKILL of its node "
           f"(stream leader {leader}); stall around the kill {stall:.1f} s")


def outage(r):
    """Stops the stream leader and one other node with SIGTERM for OUTAGE_S in the storm."""
    leader = r.cluster.stream_leader(r.stream) or r.wait_stream()
    other = next(n.name for n in r.cluster.nodes if n.name != leader)
    time.sleep(3)
    t_down = time.monotonic()
    r.cluster.stop(leader, signal.SIGTERM)
    r.cluster.stop(other, signal.SIGTERM)
    note(f"stopped {leader} (stream leader) and {other} with SIGTERM "
         f"{t_down - r.storm.t0:.1f} s into the storm")
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
    m = r.lm.metrics()
    note(f"after {OUTAGE_S} s without quorum: backlog {m.get('lifemon_nats_backlog_bytes'):.0f} "
         f"bytes, pending {m.get(PENDING):.0f}, dropped {m.get(DROPPED):.0f}")
    t_up = time.monotonic()
    r.cluster.start([leader, other])
    note(f"started {leader} and {other} again after {t_up - t_down:.1f} s")
    new = r.cluster.wait_stream_leader(r.stream, min(60, left()))
    t_lead = time.monotonic()
    note(f"stream leader {new} {t_lead - t_up:.2f} s after the restart")
    mid_tail(r, other)
    return t_down, t_up, t_lead


def case_quorum(r, tiny):
    r.cluster.start()
    r.cluster.wait_meta_leader(min(30, left()))
    r.start_lifemon(["--nats-backlog-bytes", "64K" if tiny else QUORUM_BACKLOG])
    r.wait_stream()
    r.storm = Storm(r.fb, STORM_S[r.case])
    t_down, t_up, t_lead = outage(r)
    t_acked, m = r.drain(60)
    if not tiny:
        expect(m.get(DROPPED) == 0, f"dropped {m.get(DROPPED)} with the backlog holding")
        expect(m.get("lifemon_nats_backlog_peak_bytes", 0) < QUORUM_BACKLOG_BYTES,
               "the backlog filled: the storm outran the outage's sizing")
    r.finish(m, t_acked, expect_loss=tiny)
    stall, _ = r.poller.longest_stall(t_down - 1, t_acked)
    result(f"{r.case}: two of three down {t_up - t_down:.1f} s; a stream leader again "
           f"{t_lead - t_up:.1f} s after the restart; all pending acked {t_acked - t_up:.1f} s "
           f"after the restart; stall around the outage {stall:.1f} s")
    drops = r.poller.changed(DROPPED)
    if drops:
        result(f"{r.case}: drops counted from {drops[0] - t_down:.1f} s to {drops[1] - t_down:.1f} s "
               f"after the nodes were stopped (restarted at {t_up - t_down:.1f} s, a stream "
               f"leader at {t_lead - t_down:.1f} s)")


def case_cold_start(r):
    r.start_lifemon()
    st, body = http_get(r.lm.port, "/healthz")
    expect(st == 200, f"/healthz answered {st} with the cluster down")
    hello = ws_hello(r.lm.port)
    expect(hello.get("type") == "HELLO", f"/ws's first message is not HELLO: {hello}")
    note(f"cluster down: /healthz {st}, /ws HELLO next_seq {hello.get('next_seq')}")
    r.storm = Storm(r.fb, STORM_S[r.case])
    r.storm.wait()
    time.sleep(3)  # lifemon keeps trying meanwhile; it must still say so only once
    m = r.lm.metrics()
    note(f"storm done with the cluster down: pending {m.get(PENDING):.0f}, backlog "
         f"{m.get('lifemon_nats_backlog_bytes'):.0f} bytes, connected "
         f"{m.get('lifemon_nats_connected')}")
    expect(m.get("lifemon_nats_connected") == 0, "connected to a cluster that is down")
    expect(m.get(PENDING, 0) > 0, "nothing pending while the cluster is down")
    t_up = time.monotonic()
    r.cluster.start()
    r.cluster.wait_meta_leader(min(30, left()))
    note(f"cluster up, meta leader after {time.monotonic() - t_up:.2f} s")
    t_acked, m = r.drain(60)
    note(f"backlog acked {t_acked - t_up:.1f} s after the cluster started")
    expect(m.get(DROPPED) == 0, f"dropped {m.get(DROPPED)} waiting for the cluster")
    err = r.lm.stderr()
    unreachable = [ln for ln in err.splitlines() if "nats" in ln.lower() and
                   re.search(r"unreachable|no (nats )?server|not reachable|cannot connect",
                             ln, re.I)]
    expect(len(unreachable) == 1,
           f"stderr should say once that NATS is unreachable, has {len(unreachable)} such lines: "
           f"{unreachable[:3]}")
    if unreachable:
        note(f"stderr: {unreachable[0]}")
    res = r.finish(m, t_acked)
    events, _, _ = read_file(r.lm.out)
    expect(events and events[0][0] == 1, "the file does not start at seq 1")
    expect(res["in_stream"] == res["events"], "not every event since the start is in the stream")


def preconditions():
    if os.geteuid() != 0:
        skip(f"needs root (euid is {os.geteuid()})")
    if not os.access("/sys/kernel/btf/vmlinux", os.R_OK):
        skip("/sys/kernel/btf/vmlinux is not readable (kernel without BTF)")
    if not os.access(nats_cluster.NATS_SERVER, os.X_OK):
        skip(f"{nats_cluster.NATS_SERVER} missing (scripts/install-deps.sh installs nats-server)")


CASES = {"steady": case_steady, "leader_kill": case_leader_kill, "conn_kill": case_conn_kill,
         "quorum": lambda r: case_quorum(r, False),
         "tiny_backlog": lambda r: case_quorum(r, True), "cold_start": case_cold_start}


def on_sigterm(signum, frame):
    raise Fatal("SIGTERM")


def main():
    global TEST, deadline
    if len(sys.argv) != 5 or sys.argv[1] not in CASES:
        sys.stderr.write(f"usage: it_nats.py {{{'|'.join(CASES)}}} LIFEMON FORKBOMB BUILD_DIR\n")
        return 1
    case, lifemon_bin, fb, build = sys.argv[1:]
    TEST = f"it_nats_{case}"
    preconditions()
    t0 = time.monotonic()
    deadline = t0 + DEADLINES[case]
    # A ctest timeout or ^C: unwind through the finally below, which stops everything.
    signal.signal(signal.SIGTERM, on_sigterm)
    r = Run(case, lifemon_bin, fb, build)
    try:
        CASES[case](r)
    except (Fatal, nats_cluster.ClusterError) as e:
        expect(False, str(e))
    except Exception:  # a bug of the harness, or input it did not expect: still a failure
        expect(False, traceback.format_exc())
    finally:
        r.cleanup()
        if failures:
            err = r.lm.stderr()
            sys.stderr.write("---- lifemon stderr (tail) ----\n" + err[-4000:] + "----\n")
    note(f"took {time.monotonic() - t0:.1f} s")
    if failures:
        log("FAIL", f"{len(failures)} failure(s); kept {r.rundir}")
        return 1
    if os.environ.get("LM_IT_KEEP") != "1":  # kept for a look at books.txt and the logs
        shutil.rmtree(r.rundir, ignore_errors=True)
    log("PASS", "all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
