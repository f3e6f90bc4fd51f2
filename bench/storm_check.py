#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# storm_check: the accounting half of bench/storm.sh (python3 standard library only).
# "record" matches forkbomb-lite's pid list against each contender output (lifemon JSON lines,
# bpftrace or forkstat text) and prints one JSON record per run; "report" turns the records
# into medians and a markdown table and can put it into the Storm section of BENCHMARKS.md.
# "bpfsnap" prints the run time and run count of each BPF program a process holds (fdinfo,
# needs kernel.bpf_stats_enabled), named by bpftool when it is installed.
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap

STORM_HEADING = "## Storm: lifemon vs peers"


def read_metrics(path):
    """Prometheus text -> {'name{labels}': float}; {} when the file is missing."""
    m = {}
    if not path or not os.path.exists(path):
        return m
    with open(path, errors="replace") as f:
        for ln in f:
            if not ln.strip() or ln.startswith("#"):
                continue
            k, _, v = ln.rstrip().rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
    return m


def host_busy_s(path):
    """Busy CPU seconds (all but idle and iowait) from a saved first line of /proc/stat."""
    with open(path) as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def bpf_snapshot(pid):
    """{prog_id: [run_time_ns, run_cnt]} of the BPF programs pid holds open (fdinfo)."""
    progs = {}
    d = f"/proc/{pid}/fdinfo"
    try:
        fds = os.listdir(d)
    except OSError:
        return progs
    for fd in fds:
        kv = {}
        try:
            with open(os.path.join(d, fd)) as f:
                for ln in f:
                    k, _, v = ln.partition(":")
                    kv[k.strip()] = v.strip()
        except OSError:
            continue
        if "prog_id" in kv and "run_cnt" in kv:
            progs[int(kv["prog_id"])] = [int(kv.get("run_time_ns", 0)), int(kv["run_cnt"])]
    return progs


def bpf_names(ids):
    """{prog_id: name} from bpftool; 'prog<id>' where bpftool is missing or says nothing."""
    names = {}
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                             timeout=10).stdout
        for p in json.loads(out or b"[]"):
            if p.get("id") in ids and p.get("name"):
                names[p["id"]] = p["name"]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    names = {i: names.get(i, f"prog{i}") for i in ids}
    # names are cut to 15 bytes (bpftrace's two sched_process_e...): number the repeats in
    # load order, which a program's id follows
    seen = collections.Counter(names.values())
    nth = collections.Counter()
    for i in sorted(ids):
        if seen[names[i]] > 1:
            nth[names[i]] += 1
            names[i] = f"{names[i]}#{nth[names[i]]}"
    return names


def cmd_bpfsnap(a):
    progs = bpf_snapshot(a.pid)
    names = bpf_names(set(progs))
    print(json.dumps({str(i): {"name": names[i], "ns": v[0], "runs": v[1]}
                      for i, v in sorted(progs.items())}, sort_keys=True))


def bpf_progs_delta(path0, path1):
    """Per program name: {"ns", "runs"} between two bpfsnap files (same program ids)."""
    s0, s1 = (json.load(open(p)) for p in (path0, path1))
    out = {}
    for i, p in s1.items():
        b = s0.get(i, {"ns": 0, "runs": 0})
        o = out.setdefault(p["name"], {"ns": 0, "runs": 0})
        o["ns"] += p["ns"] - b["ns"]
        o["runs"] += p["runs"] - b["runs"]
    return out


# per format: a line -> (type, pid, comm or None) or None; a line -> self-reported loss
RE_BT = re.compile(r"^(EXEC|EXIT) (\d+) (.*)$")
RE_BT_LOST = re.compile(r"Lost (\d+) events")
RE_FS = re.compile(r"^\S+ +(exec|exit) +(\d+) ")


def parse_line(fmt, ln, st):
    if fmt == "lifemon":
        try:
            o = json.loads(ln)
        except ValueError:
            st["invalid_json"] += 1
            return None
        t = o.get("type")
        if t == "LOST":
            st["lost_notices"] += 1
            st["lost_notice_events"] += int(o.get("count", 0))
        seq = o.get("seq")
        if seq is not None:
            if st["_last_seq"] is not None:
                if seq <= st["_last_seq"]:
                    st["seq_backwards"] += 1
                else:
                    st["silent_seq_gap_events"] += seq - st["_last_seq"] - 1
            st["_last_seq"] = seq
        elif t == "LOST" and o.get("last_seq") is not None:
            # the gap the notice announces is not silent: move the cursor past it
            st["_last_seq"] = o["last_seq"] if st["_last_seq"] is None else max(
                st["_last_seq"], o["last_seq"])
        if t in ("EXEC", "EXIT"):
            return t, o.get("pid"), o.get("comm")
        return None
    if fmt == "bpftrace":
        m = RE_BT.match(ln)
        if m:
            return m.group(1), int(m.group(2)), m.group(3).strip()
        m = RE_BT_LOST.search(ln)
        if m:
            st["self_reported_lost"] += int(m.group(1))
        return None
    if fmt == "forkstat":
        m = RE_FS.match(ln)
        if m:
            return m.group(1).upper(), int(m.group(2)), None
        return None
    raise ValueError(fmt)


def start_matches(fmt, ln, pid):
    if fmt == "lifemon":
        return f'"type":"EXIT","pid":{pid},' in ln
    if fmt == "bpftrace":
        return ln.startswith(f"EXIT {pid} ")
    return re.match(rf"^\S+ +exit +{pid} ", ln) is not None


def check_output(fmt, path, expect, comm, after_pid, want_exec):
    """Counts our children's EXEC/EXIT in one output. expect: Counter pid -> times started."""
    st = collections.Counter()
    st["_last_seq"] = None
    seen = {"EXEC": collections.Counter(), "EXIT": collections.Counter()}
    started = after_pid is None
    lines = 0
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for ln in f:
                if not started:
                    started = start_matches(fmt, ln, after_pid)
                    continue
                lines += 1
                ev = parse_line(fmt, ln, st)
                if not ev:
                    continue
                t, pid, c = ev
                if pid in expect and (comm is None or c is None or c == comm):
                    seen[t][pid] += 1
    else:
        st["missing_file"] = 1
    res = {"lines": lines, "window_found": started}
    for t in ("EXEC", "EXIT"):
        if t == "EXEC" and not want_exec:
            res["exec_lost"] = None
            continue
        lost = sum(max(0, n - seen[t][p]) for p, n in expect.items())
        dup = sum(max(0, seen[t][p] - expect[p]) for p in seen[t])
        res[t.lower() + "_lost"] = lost
        res[t.lower() + "_dup"] = dup
    st.pop("_last_seq", None)
    res.update({k: v for k, v in st.items() if v})
    return res


def cmd_record(a):
    expect = collections.Counter()
    for p in a.pids:
        with open(p) as f:
            expect.update(int(x) for x in f if x.strip())
    fb = []
    for p in a.fb:
        with open(p) as f:
            for ln in f:
                if ln.startswith("{"):
                    fb.append(json.loads(ln))
    spawned = sum(x["spawned"] for x in fb)
    seconds = sum(x["seconds"] for x in fb)
    rec = {
        "kind": a.kind, "round": a.round, "seq": a.seq, "shape": a.shape,
        "contender": a.contender,
        "spawned": spawned, "pid_list": sum(expect.values()),
        "rate": spawned / seconds if seconds else 0.0, "fb_seconds": seconds,
        "fork_failed": sum(x["fork_failed"] for x in fb),
        "exec_failed": sum(x.get("exec_failed", 0) for x in fb),
        "storm_events": spawned * (2 if a.want_exec else 1),
    }
    if a.host0 and a.host1:
        rec["host_busy_s"] = host_busy_s(a.host1) - host_busy_s(a.host0)
    if a.cpu_ns is not None:
        rec["cpu_s"] = a.cpu_ns / 1e9
    if a.extra_cpu_ns is not None:
        rec["client_cpu_s"] = a.extra_cpu_ns / 1e9
    if a.hwm_kb is not None:
        rec["hwm_kb"] = a.hwm_kb
    if a.bpf_runs:
        rec["bpf_ns"], rec["bpf_runs"] = a.bpf_ns, a.bpf_runs
    if a.bpf0 and a.bpf1:
        rec["bpf_progs"] = bpf_progs_delta(a.bpf0, a.bpf1)
    for k in ("pause_s", "catchup_s"):
        v = getattr(a, k)
        if v is not None:
            rec[k] = v
    m0, m1 = read_metrics(a.metrics0), read_metrics(a.metrics1)
    if m1:
        def d(key):
            return m1.get(key, 0.0) - m0.get(key, 0.0)
        rec["metrics"] = {
            "events_exec": d('lifemon_events_total{type="exec"}'),
            "events_exit": d('lifemon_events_total{type="exit"}'),
            "kernel_dropped_exec": d('lifemon_kernel_dropped_total{type="exec"}'),
            "kernel_dropped_exit": d('lifemon_kernel_dropped_total{type="exit"}'),
            "sink_dropped_file": d('lifemon_sink_dropped_total{sink="file"}'),
            "ws_dropped": d("lifemon_ws_dropped_total"),
            "ws_delivered": d("lifemon_ws_delivered_total"),
            "ws_published": d("lifemon_ws_published_total"),
            "stage_waits_reader": d('lifemon_stage_waits_total{stage="reader"}'),
            "process_cpu_s": d("process_cpu_seconds_total"),
            "rss_bytes_end": m1.get("process_resident_memory_bytes", 0.0),
            # every record read, events and cgroup records, and the ring bytes they took
            "records_read": sum(d(f'lifemon_read_total{{type="{t}"}}')
                                for t in ("exec", "exit", "oom")) +
            d('lifemon_cgroup_records_total{result="read"}'),
            "ring_bytes": d("lifemon_read_ring_bytes_total"),
        }
        if "lifemon_read_ring_bytes_total" in m1 and rec["metrics"]["records_read"] > 0:
            bpr = rec["metrics"]["ring_bytes"] / rec["metrics"]["records_read"]
            rec["ring_bytes_per_record"] = bpr
            # a full-rate stall that --ring-size 32M absorbs: every CPU's ring full
            # (assumes the records spread evenly over the CPUs)
            ev_s = rec["rate"] * (2 if a.want_exec else 1)
            if ev_s:
                rec["stall_s_32m"] = (os.cpu_count() or 1) * 32 * 2**20 / (bpr * ev_s)
    rec["outputs"] = {}
    for spec in a.out:
        label, fmt, path = spec.split(":", 2)
        rec["outputs"][label] = check_output(fmt, path, expect, a.comm, a.after_pid,
                                             a.want_exec)
    if a.note:
        rec["note"] = a.note
    if a.ring:
        rec["ring"] = a.ring
    if a.load is not None:
        rec["load"] = a.load
    print(json.dumps(rec, sort_keys=True))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_num(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


def lost_cell(runs, key):
    """Lost summed over rounds; worst output first, each output listed when any lost."""
    labels = sorted({lb for r in runs for lb in r["outputs"]})
    if not labels:
        return "-"
    per = {}
    for lb in labels:
        vals = [r["outputs"][lb].get(key) for r in runs if lb in r["outputs"]]
        if any(v is None for v in vals):
            return "n/a"
        per[lb] = sum(vals)
    worst = max(per.values())
    if len(per) == 1 or not worst:
        return fmt_num(worst)
    return fmt_num(worst) + " (" + ", ".join(f"{lb} {per[lb]:,}" for lb in labels) + ")"


CONTENDER_NAMES = {
    "none": "none (baseline)",
    "lifemon": "lifemon (file + 2 WS)",
    "bpftrace": "bpftrace one-liner",
    "forkstat": "forkstat -e exec,exit",
    "bcc": "execsnoop/exitsnoop-bpfcc",
}


def storm_table(recs, skipped):
    order = ["none", "lifemon", "bpftrace", "forkstat", "bcc"]
    shapes = sorted({r["shape"] for r in recs}, key=int)
    base, by_seq = collections.defaultdict(list), {}
    for r in recs:
        if r["contender"] == "none":
            base[(r["round"], r["shape"])].append(r["rate"])
            by_seq[r.get("seq")] = r

    def baseline(r):
        """Mean rate of the baseline runs just before and after, else of the round."""
        near = [by_seq[q]["rate"] for q in (r.get("seq", 0) - 1, r.get("seq", 0) + 1)
                if r.get("seq") and q in by_seq and by_seq[q]["shape"] == r["shape"]]
        near = near or base.get((r["round"], r["shape"]), [])
        return sum(near) / len(near) if near else None
    rows = ["| contender | live | rounds | spawned | EXEC lost | EXIT lost | exec/s | "
            "vs none | CPU s /10k ev | BPF ns /run | host CPU s /10k ev | peak RSS MiB | "
            "ring B /record | 32M rings hold s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in order:
        for s in shapes:
            runs = [r for r in recs if r["contender"] == c and r["shape"] == s]
            if not runs:
                if c in skipped and s == shapes[0]:
                    rows.append(f"| {CONTENDER_NAMES.get(c, c)} | - | - | - | "
                                "not runnable here | - | - | - | - | - | - | - | - | - |")
                continue
            ratios = [r["rate"] / baseline(r) for r in runs if baseline(r)]
            per10k = [r["cpu_s"] / r["storm_events"] * 1e4 for r in runs
                      if "cpu_s" in r and r["storm_events"]]
            host10k = [r["host_busy_s"] / r["storm_events"] * 1e4 for r in runs
                       if "host_busy_s" in r and r["storm_events"]]
            hwm = [r["hwm_kb"] / 1024 for r in runs if r.get("hwm_kb")]
            bpf = [r["bpf_ns"] / r["bpf_runs"] for r in runs if r.get("bpf_runs")]
            bpr = [r["ring_bytes_per_record"] for r in runs if "ring_bytes_per_record" in r]
            stall = [r["stall_s_32m"] for r in runs if "stall_s_32m" in r]
            spawned = sum(r["spawned"] for r in runs)
            rows.append("| " + " | ".join([
                CONTENDER_NAMES.get(c, c), str(s), str(len(runs)), fmt_num(spawned),
                lost_cell(runs, "exec_lost") if c != "none" else "-",
                lost_cell(runs, "exit_lost") if c != "none" else "-",
                fmt_num(med([r["rate"] for r in runs])),
                fmt_num(med(ratios), 3) if c != "none" else "1",
                fmt_num(med(per10k), 3) if c != "none" else "-",
                fmt_num(med(bpf)) if bpf else "-",
                fmt_num(med(host10k), 2),
                fmt_num(med(hwm), 1) if c != "none" else "-",
                med_range(bpr, 1), med_range(stall, 0),
            ]) + " |")
    return "\n".join(rows)


def med_range(xs, nd):
    """'median (min-max)' of a list, '-' when empty."""
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt_num(xs[0], nd)
    return f"{fmt_num(med(xs), nd)} ({fmt_num(min(xs), nd)}-{fmt_num(max(xs), nd)})"


def bpf_table(recs):
    """Per contender, shape and BPF program: runs per storm child and ns per run."""
    rows = ["| contender | live | program | runs | runs /child | ns /run: median (min-max) |",
            "|---|---:|---|---:|---:|---:|"]
    keys = sorted({(r["contender"], r["shape"]) for r in recs if r.get("bpf_progs")},
                  key=lambda k: (k[0], int(k[1])))
    for c, s in keys:
        runs = [r for r in recs if r["contender"] == c and r["shape"] == s and r.get("bpf_progs")]
        names = sorted({n for r in runs for n, v in r["bpf_progs"].items() if v["runs"]})
        for n in names + ["all"]:
            ns, cnt, per = [], 0, []
            for r in runs:
                ps = r["bpf_progs"]
                v = ({"ns": sum(x["ns"] for x in ps.values()),
                      "runs": sum(x["runs"] for x in ps.values())} if n == "all" else ps.get(n))
                if not v or not v["runs"]:
                    continue
                ns.append(v["ns"] / v["runs"])
                cnt += v["runs"]
                if r["spawned"]:
                    per.append(v["runs"] / r["spawned"])
            if ns:
                rows.append(f"| {CONTENDER_NAMES.get(c, c)} | {s} | {n} | {cnt:,} | "
                            f"{fmt_num(med(per), 2)} | {med_range(ns, 0)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def storm_details(recs):
    out = []
    for c in ("lifemon", "bpftrace", "forkstat"):
        runs = [r for r in recs if r["contender"] == c]
        if not runs:
            continue
        flags = collections.Counter()
        for r in runs:
            for lb, o in r["outputs"].items():
                for k in ("exec_dup", "exit_dup", "lost_notices", "lost_notice_events",
                          "silent_seq_gap_events", "seq_backwards", "invalid_json",
                          "self_reported_lost", "missing_file"):
                    if o.get(k):
                        flags[f"{lb}.{k}"] += o[k]
                if not o.get("window_found", True):
                    flags[f"{lb}.start_marker_missing"] += 1
            for k, v in r.get("metrics", {}).items():
                if k.startswith(("kernel_dropped", "sink_dropped", "ws_dropped")) and v:
                    flags["metrics." + k] += int(v)
        cl = [r["client_cpu_s"] / r["storm_events"] * 1e4 for r in runs
              if "client_cpu_s" in r and r["storm_events"]]
        line = f"- {c}: " + (", ".join(f"{k}={v:,}" for k, v in sorted(flags.items()))
                             or "no duplicates, no loss notices, no counter drops")
        if cl:
            line += (f"; the two python WS clients used {med(cl):.3f} CPU s /10k events "
                     "(not in lifemon's column)")
        out.append(textwrap.fill(line, 96, subsequent_indent="  "))
    return "\n".join(out)


def pause_table(recs):
    rows = ["| contender | output | paused s | spawned | EXEC lost | EXIT lost | lost % | "
            "kernel dropped (exec/exit) | loss told in-band / by the tool | catch-up s | "
            "peak RSS MiB | ring B /record |",
            "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in recs:
        m = r.get("metrics", {})
        kd = (f"{int(m.get('kernel_dropped_exec', 0)):,} / "
              f"{int(m.get('kernel_dropped_exit', 0)):,}" if m else "n/a")
        tot = r["storm_events"] or 1
        name = r["contender"]
        if r.get("ring"):
            name += f" --ring-size {r['ring']}"
        outs = sorted(r["outputs"].items()) or [("-", {})]
        for i, (lb, o) in enumerate(outs):
            told = []
            if o.get("lost_notices"):
                told.append(f"{o['lost_notices']:,} LOST notices for "
                            f"{o.get('lost_notice_events', 0):,} events")
            if o.get("self_reported_lost"):
                told.append(f"'Lost {o['self_reported_lost']:,} events'")
            if o.get("silent_seq_gap_events"):
                told.append(f"{o['silent_seq_gap_events']:,} events in silent seq gaps")
            if i == len(outs) - 1 and r.get("note"):
                told.append(r["note"])
            el, xl = o.get("exec_lost") or 0, o.get("exit_lost") or 0
            rows.append("| " + " | ".join([
                name if i == 0 else "", lb, fmt_num(r.get("pause_s")), fmt_num(r["spawned"]),
                fmt_num(el), fmt_num(xl), f"{100.0 * (el + xl) / tot:.1f}",
                kd if i == 0 else "", "; ".join(told) or "nothing",
                fmt_num(r.get("catchup_s"), 1) if i == 0 else "",
                (fmt_num(r["hwm_kb"] / 1024, 1) if r.get("hwm_kb") else "-") if i == 0 else "",
                fmt_num(r.get("ring_bytes_per_record"), 1) if i == 0 else "",
            ]) + " |")
    return "\n".join(rows)


def put_in_benchmarks(path, block):
    """Appends block to the end of the Storm section, creating file or section if needed."""
    text = open(path).read() if os.path.exists(path) else ""
    if not text:
        text = ("# lifemon benchmarks\n\nNumbers from the scripts under `bench/`, newest run last "
                "in each section. Each run records its exact command, date, kernel and CPU.\n")
    if STORM_HEADING not in text:
        text = text.rstrip("\n") + "\n\n" + STORM_HEADING + "\n"
    start = text.index(STORM_HEADING) + len(STORM_HEADING)
    nxt = re.search(r"^## ", text[start:], re.M)
    end = start + nxt.start() if nxt else len(text)
    section = text[start:end].rstrip("\n") + "\n\n" + block.strip("\n") + "\n"
    text = text[:start] + section + ("\n" + text[end:] if nxt else "")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def cmd_report(a):
    recs, pause = [], []
    for p in a.records:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for ln in f:
                if ln.strip():
                    r = json.loads(ln)
                    (pause if r["kind"] == "pause" else recs).append(r)
    meta = json.load(open(a.meta)) if a.meta else {}
    skipped = meta.get("skipped", {})
    parts = []
    head = (f"### Run {meta.get('date', '?')}\n\n"
            f"- command: `{meta.get('command', '?')}`\n"
            f"- kernel {meta.get('kernel', '?')}, CPU {meta.get('cpu', '?')} "
            f"({meta.get('ncpu', '?')} CPUs), lifemon {meta.get('lifemon_rev', '?')}\n"
            f"- {meta.get('params', '')}\n")
    loads = [r["load"] for r in recs + pause if "load" in r]
    if loads:
        head += (f"- 1-min load average after each run: {min(loads):.2f} to {max(loads):.2f} "
                 "(the benchmark alone keeps it near 1-2 on this host)\n")
    parts.append(head)
    if recs:
        parts.append(storm_table(recs, skipped))
        parts.append("\n" + textwrap.fill("Lost = summed over rounds, worst output first (lifemon: file sink, "
                     "ws1, ws2). Other columns are medians over rounds. `vs none` = exec "
                     "rate with the contender / mean rate of the baseline runs just before and "
                     "after it. CPU s = the "
                     "contender process (all threads, from /proc/PID/task/*/schedstat) from "
                     "ready to caught up; BPF ns /run = average run time of the contender's "
                     "BPF programs (kernel.bpf_stats_enabled; charged to the traced "
                     "processes, not to the contender); host CPU s = busy time of all CPUs "
                     "(/proc/stat) during the same window. ring B /record = kernel ring "
                     "bytes per record read (lifemon_read_ring_bytes_total: 8-byte header and "
                     "padding included) / records read; 32M rings hold s = the seconds of a "
                     "stall at this run's event rate that --ring-size 32M absorbs: CPUs x 32 "
                     "MiB / (B per record x events/s), records spread evenly over the CPUs.",
                     96) + "\n")
        bt = bpf_table(recs)
        if bt:
            parts.append("BPF programs (kernel.bpf_stats_enabled; runs /child = program runs "
                         "per storm child, median over rounds):\n")
            parts.append(bt + "\n")
        det = storm_details(recs)
        for c, why in sorted(skipped.items()):
            det += f"\n- {c}: {why}"
        if det:
            parts.append(det.strip("\n") + "\n")
    if pause:
        parts.append("Pause experiment (contender SIGSTOPped in the middle of a max-rate "
                     "storm, then SIGCONT):\n")
        parts.append(pause_table(pause))
    block = "\n".join(parts).rstrip("\n") + "\n"
    print(block)
    if a.bench:
        put_in_benchmarks(a.bench, block)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--kind", default="storm", choices=["storm", "pause"])
    r.add_argument("--round", type=int, default=0)
    r.add_argument("--seq", type=int, default=0, help="run number, for the baseline neighbours")
    r.add_argument("--shape", default="0")
    r.add_argument("--contender", required=True)
    r.add_argument("--pids", action="append", default=[])
    r.add_argument("--fb", action="append", default=[], help="forkbomb-lite --json output")
    r.add_argument("--comm", help="comm of our children (EXEC/EXIT must carry it)")
    r.add_argument("--want-exec", action="store_true")
    r.add_argument("--after-pid", type=int, help="count only after this pid's EXIT line")
    r.add_argument("--out", action="append", default=[], help="label:format:path")
    r.add_argument("--cpu-ns", type=int)
    r.add_argument("--extra-cpu-ns", type=int)
    r.add_argument("--hwm-kb", type=int)
    r.add_argument("--bpf-ns", type=int, help="BPF program run time (bpf_stats)")
    r.add_argument("--bpf-runs", type=int)
    r.add_argument("--bpf0", help="bpfsnap output before the storm")
    r.add_argument("--bpf1", help="bpfsnap output after it")
    r.add_argument("--host0")
    r.add_argument("--host1")
    r.add_argument("--metrics0")
    r.add_argument("--metrics1")
    r.add_argument("--pause-s", type=float)
    r.add_argument("--catchup-s", type=float)
    r.add_argument("--note")
    r.add_argument("--ring", help="lifemon --ring-size used")
    r.add_argument("--load", type=float, help="1-min load average after the run")
    r.set_defaults(fn=cmd_record)
    p = sub.add_parser("report")
    p.add_argument("records", nargs="+")
    p.add_argument("--meta")
    p.add_argument("--bench", help="BENCHMARKS.md to add the block to")
    p.set_defaults(fn=cmd_report)
    b = sub.add_parser("bpfsnap")
    b.add_argument("pid", type=int)
    b.set_defaults(fn=cmd_bpfsnap)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
