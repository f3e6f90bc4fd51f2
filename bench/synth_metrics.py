#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""synth_metrics.py: /metrics reader for bench/synth.sh, one long-lived process per round.

Every exec on the host is an event for lifemon, so running curl or awk per sample would feed
the very counters being compared and a sample could catch its own event in flight. This
process fetches /metrics over a raw socket and reads the client's stat file itself.

stdin commands, one reply line each on stdout:
  baseline  learn how many events were published before the client connected (its first
            seq - 1), wait until the books balance; reply with a snapshot
  snap      wait (up to 20 s) until every stage has finished with what the kernel counted;
            reply with a snapshot (settled=1: the books balance exactly; settled=2: after 3 s
            without an exact balance, everything counted 0.5 s earlier has passed every stage,
            so what is left in flight is other processes' events)
A snapshot: "settled=0|1 events=.. kdrop=.. read=.. ser=.. pub=.. wsdel=.. wsdrop=.. fdel=..
fdrop=.. cpu=.. cev=.. clost=.. clients=.. t=.. offws=.." (t: monotonic s;
offws: events published before the client connected)
"""
import socket
import sys
import time

PORT = int(sys.argv[1])
STAT = sys.argv[2]
KEYS = ("events", "kdrop", "read", "ser", "pub", "wsdel", "wsdrop", "fdel", "fdrop", "cpu",
        "cev", "clost", "clients", "t", "offws")
METRICS = {
    "lifemon_events_total": "events",
    "lifemon_kernel_dropped_total": "kdrop",
    "lifemon_read_total": "read",
    "lifemon_serialized_total": "ser",
    "lifemon_ws_published_total": "pub",
    "lifemon_ws_delivered_total": "wsdel",
    "lifemon_ws_dropped_total": "wsdrop",
    "lifemon_sink_delivered_total": "fdel",
    "lifemon_sink_dropped_total": "fdrop",
    "process_cpu_seconds_total": "cpu",
    "lifemon_ws_clients": "clients",
}


def fetch():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
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
    v["cfirst"] = 0.0
    for line in body.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, val = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base in METRICS and (not base.startswith("lifemon_sink_") or 'sink="file"' in name):
            v[METRICS[base]] += float(val)
    try:
        for line in open(STAT):
            k, _, val = line.partition(" ")
            if k == "events":
                v["cev"] = float(val)
            elif k == "lost":
                v["clost"] = float(val)
            elif k == "first_seq":
                v["cfirst"] = float(val)
    except OSError:
        pass
    return v


off_ws = 0.0  # events published before the client connected
off_cl = 0.0  # the only client: ws delivered counts exactly what it received


def balanced(v):
    return (v["events"] == v["kdrop"] + v["read"] and v["ser"] == v["read"]
            and v["pub"] == v["ser"] and v["fdel"] + v["fdrop"] == v["ser"]
            and v["pub"] - v["wsdel"] - v["wsdrop"] == off_ws
            and v["wsdel"] - v["cev"] == off_cl)


def caught_up(old, v):
    """Everything counted at `old` has passed every stage by `v` (host noise may follow)."""
    return (v["read"] + v["kdrop"] >= old["events"] and v["ser"] >= old["read"]
            and v["pub"] >= old["ser"] and v["fdel"] + v["fdrop"] >= old["ser"]
            and v["wsdel"] + v["wsdrop"] + off_ws >= old["pub"]
            and v["cev"] + off_cl >= old["wsdel"])


def reply(v, ok):
    v["offws"] = off_ws
    print("settled=%d " % ok + " ".join("%s=%.6f" % (k, v[k]) for k in KEYS), flush=True)


for cmd in sys.stdin:
    cmd = cmd.strip()
    deadline = time.monotonic() + 20
    if cmd == "baseline":
        # the client saw every event from its first seq on: the ones before it were
        # published before it connected. Wait for its first event (this process's own
        # start was one), then for the books.
        while time.monotonic() < deadline:
            v = fetch()
            if v["cfirst"] and v["clients"] >= 1:
                break
            time.sleep(0.05)
        off_ws = v["cfirst"] - 1
        ok = 0
        while time.monotonic() < deadline:
            v = fetch()
            if balanced(v):
                ok = 1
                break
            time.sleep(0.05)
        reply(v, ok)
    elif cmd == "snap":
        # 1: balanced exactly; 2: caught up, but other processes' events were in flight at
        # the sample (a busy host never stops exec'ing); 0: neither within 20 s
        ok = 0
        hist = []
        while time.monotonic() < deadline:
            v = fetch()
            if balanced(v):
                ok = 1
                break
            hist.append(v)
            old = [h for h in hist if v["t"] - h["t"] >= 0.5]
            if time.monotonic() > deadline - 17 and old and caught_up(old[-1], v):
                ok = 2
                break
            time.sleep(0.05)
        reply(v, ok)
    elif cmd == "quit":
        break
