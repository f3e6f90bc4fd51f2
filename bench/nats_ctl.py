#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nats_ctl.py: the NATS cluster and the /metrics reader of bench/nats.sh, one long-lived
process for the whole run.

It starts a 3-node nats-server JetStream cluster through tests/nats_cluster.py (free ports on
127.0.0.1, a store_dir and a config file each under RUN_DIR; the servers die with this
process), and stops every server by pid when it ends: on "quit", on SIGTERM or SIGINT, or on
EOF. Every exec on the host is an event for lifemon, so /metrics is read over a raw socket and
the servers' CPU from /proc, never by running curl or ps per sample.

usage: nats_ctl.py RUN_DIR        (commands on stdin, one reply line each on stdout)
  start             start the cluster, wait for the JetStream meta leader;
                    reply "urls=URL,URL,URL pids=P,P,P leader=NAME seconds=S"
  attach PORT NATS PID  read the /metrics of lifemon (pid PID) at 127.0.0.1:PORT from now
                    on; NATS=1 when it runs with --nats (the books then include the nats sink)
  idle              wait (up to 30 s) until lifemon is ready (with NATS: the stream exists)
                    and every event counted has passed every sink; reply a snapshot
  snap              a snapshot now
  settle SECONDS    wait (up to SECONDS) until every event counted has passed every sink;
                    reply a snapshot
  threads [mark]    lifemon's CPU by thread name since the last "threads mark" (nats.c's
                    threads keep the name of the thread that started them: "lifemon");
                    reply "NAME=CPUs/SWITCHEScs ..." (CPU seconds, voluntary and
                    involuntary context switches) largest first ("ok" to a mark)
  delete STREAM     $JS.API.STREAM.DELETE.STREAM; reply "ok" or "error=..."
  quit              stop the servers and end
A snapshot: "settled=0|1|2 k=v ..." with the keys of KEYS; settled=1: the books balance
exactly, 2: everything counted 0.5 s earlier has passed every sink (other processes' events
were in flight at every sample), 0: neither in time. ackb is the histogram
lifemon_nats_ack_seconds, cumulative counts per bucket (ACK_LE_MS, then +Inf) joined by ','.
"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import nats_cluster  # noqa: E402  (tests/nats_cluster.py)

KEYS = ("t", "events", "kdrop", "read", "ser", "fdel", "fdrop", "ndel", "ndrop", "npend",
        "nbytes", "npeak", "ninfl", "npub", "nretry", "nfail", "ndup", "nlost", "nconn",
        "nready", "ackn", "acksum", "lmcpu", "srvcpu", "kpeak", "ackb")
METRICS = {
    "lifemon_events_total": "events",
    "lifemon_kernel_dropped_total": "kdrop",
    "lifemon_read_total": "read",
    "lifemon_serialized_total": "ser",
    "lifemon_nats_pending_events": "npend",
    "lifemon_nats_backlog_bytes": "nbytes",
    "lifemon_nats_backlog_peak_bytes": "npeak",
    "lifemon_nats_inflight": "ninfl",
    "lifemon_nats_published_total": "npub",
    "lifemon_nats_retries_total": "nretry",
    "lifemon_nats_failures_total": "nfail",
    "lifemon_nats_duplicates_total": "ndup",
    "lifemon_nats_lost_notices_total": "nlost",
    "lifemon_nats_connected": "nconn",
    "lifemon_nats_stream_ready": "nready",
    "lifemon_nats_ack_seconds_count": "ackn",
    "lifemon_nats_ack_seconds_sum": "acksum",
    "process_cpu_seconds_total": "lmcpu",
    "lifemon_kernel_ring_fill_peak_ratio": "kpeak",
}
SINKS = {("lifemon_sink_delivered_total", "file"): "fdel",
         ("lifemon_sink_dropped_total", "file"): "fdrop",
         ("lifemon_sink_delivered_total", "nats"): "ndel",
         ("lifemon_sink_dropped_total", "nats"): "ndrop"}
CLK_TCK = os.sysconf("SC_CLK_TCK")

cluster = None
port = 0
with_nats = False
lm_pid = 0


def say(msg):
    sys.stderr.write(f"{time.strftime('%T')} nats_ctl: {msg}\n")


def stat_cpu(path):
    """utime + stime in seconds and the name, from a /proc stat file."""
    with open(path) as f:
        head, _, tail = f.read().rpartition(")")
    fields = tail.split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, head.partition("(")[2]


threads_mark = {}


def threads_cpu():
    """{thread name: [CPU seconds, context switches]} of lifemon's threads now (a name's
    threads summed; a thread that ended is no longer counted)."""
    by_name = {}
    for tid in os.listdir(f"/proc/{lm_pid}/task"):
        try:
            cpu, name = stat_cpu(f"/proc/{lm_pid}/task/{tid}/stat")
            with open(f"/proc/{lm_pid}/task/{tid}/status") as f:
                cs = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except (OSError, IndexError, ValueError):
            continue
        v = by_name.setdefault(name, [0.0, 0])
        v[0] += cpu
        v[1] += cs
    return by_name


def servers_cpu():
    """utime + stime of the running servers, in seconds (all their threads)."""
    total = 0.0
    for pid in cluster.pids().values() if cluster else ():
        try:
            total += stat_cpu(f"/proc/{pid}/stat")[0]
        except (OSError, IndexError, ValueError):
            pass
    return total


def fetch():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    v = dict.fromkeys(KEYS, 0.0)
    v["t"] = time.monotonic()
    ackb = []
    for line in body.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, val = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base == "lifemon_nats_ack_seconds_bucket":
            ackb.append(int(float(val)))
        elif base in METRICS:
            v[METRICS[base]] += float(val)
        elif base.startswith("lifemon_sink_"):
            sink = name.partition('sink="')[2].partition('"')[0]
            if (base, sink) in SINKS:
                v[SINKS[(base, sink)]] += float(val)
    v["ackb"] = ackb
    v["srvcpu"] = servers_cpu()
    return v


def balanced(v):
    return (v["events"] == v["kdrop"] + v["read"] and v["ser"] == v["read"]
            and v["fdel"] + v["fdrop"] == v["ser"]
            and (not with_nats or (v["npend"] == 0 and v["ndel"] + v["ndrop"] == v["ser"])))


def caught_up(old, v):
    """Everything counted at `old` has passed every sink by `v` (host noise may follow).
    Against what was read, not lifemon_serialized_total: that is added once per batch, and a
    batch lasts as long as the reader keeps up, so it can lag the sinks by 100,000s of
    events; the nats sink's own count (delivered + dropped + pending) is exact."""
    return (v["read"] + v["kdrop"] >= old["events"] and v["ser"] >= old["read"]
            and v["fdel"] + v["fdrop"] >= old["read"]
            and (not with_nats or (v["ndel"] + v["ndrop"] >= old["read"] and
                                   v["ndel"] + v["ndrop"] >= old["ndel"] + old["ndrop"] +
                                   old["npend"])))


def reply_snap(v, ok):
    out = []
    for k in KEYS:
        if k == "ackb":
            out.append("ackb=" + ",".join(str(c) for c in v["ackb"]))
        else:
            out.append("%s=%.6f" % (k, v[k]))
    reply("settled=%d " % ok + " ".join(out))


def reply(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def settle(seconds, need_ready=False):
    """1: balanced; 2: caught up with a sample >= 0.5 s old, after 3 s without an exact
    balance (a busy host never stops exec'ing); 0: neither within `seconds`."""
    start = time.monotonic()
    deadline = start + seconds
    hist = []
    while True:
        v = fetch()
        ready = not need_ready or (v["nready"] == 1 and v["nconn"] == 1)
        if ready and balanced(v):
            return v, 1
        hist.append(v)
        old = [h for h in hist if v["t"] - h["t"] >= 0.5]
        if ready and v["t"] - start > 3 and old and caught_up(old[-1], v):
            return v, 2
        if v["t"] > deadline:
            return v, 0
        time.sleep(0.05)


def stream_delete(name):
    """Deletes a stream through the NATS protocol (Debian has no nats CLI), asking each
    running node in turn until one answers."""
    last = "no server answered"
    for n in cluster.nodes:
        if not n.running():
            continue
        try:
            mc = nats_cluster.MiniClient(n.client)
            r = mc.request(f"$JS.API.STREAM.DELETE.{name}", {})
            mc.close()
        except (OSError, nats_cluster.ClusterError) as e:
            last = str(e)
            continue
        if r.get("success"):
            return "ok"
        last = str(r.get("error"))
    return "error=" + last.replace(" ", "_")


def main():
    global cluster, port, with_nats, lm_pid, threads_mark
    if len(sys.argv) != 2:
        sys.exit("usage: nats_ctl.py RUN_DIR")
    # SIGTERM from nats.sh's trap: leave through the finally that stops the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for cmd in sys.stdin:
            args = cmd.split()
            if not args:
                continue
            if args[0] == "start":
                t0 = time.monotonic()
                cluster = nats_cluster.Cluster(sys.argv[1], say)
                cluster.start()
                leader = cluster.wait_meta_leader()
                reply("urls=%s pids=%s leader=%s seconds=%.2f" % (
                    cluster.urls(), ",".join(str(p) for p in cluster.pids().values()), leader,
                    time.monotonic() - t0))
            elif args[0] == "attach":
                port = int(args[1])
                with_nats = args[2] == "1"
                lm_pid = int(args[3])
                reply("ok")
            elif args[0] == "idle":
                reply_snap(*settle(30, need_ready=with_nats))
            elif args[0] == "snap":
                reply_snap(fetch(), 0)
            elif args[0] == "settle":
                reply_snap(*settle(float(args[1])))
            elif args[0] == "threads":
                now = threads_cpu()
                if args[1:] == ["mark"]:
                    threads_mark = now
                    reply("ok")
                    continue
                d = {n: [c - threads_mark.get(n, (0.0, 0))[0], cs - threads_mark.get(n, (0, 0))[1]]
                     for n, (c, cs) in now.items()}
                reply(" ".join("%s=%.2fs/%dcs" % (n.replace(" ", "_"), c, cs)
                               for n, (c, cs) in sorted(d.items(), key=lambda x: -x[1][0])))
            elif args[0] == "delete":
                reply(stream_delete(args[1]))
            elif args[0] == "quit":
                break
            else:
                reply("error=unknown_command")
    except KeyboardInterrupt:
        pass
    finally:
        if cluster:
            cluster.stop_all()


if __name__ == "__main__":
    main()
