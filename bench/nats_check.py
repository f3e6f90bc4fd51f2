#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nats_check.py: bench/nats.sh's check of a NATS stream against lifemon's --output file.

usage: nats_check.py [--strict] FILE STREAM NATS_DROPPED FILE_DROPPED
  FILE          lifemon's --output file (one JSON line per event or notice)
  STREAM        what lifemon --nats-tail printed for the same lifemon instance
  NATS_DROPPED  lifemon_sink_dropped_total{sink="nats"} (plus any shutdown drop) of that run
  FILE_DROPPED  lifemon_sink_dropped_total{sink="file"} of that run

Both sinks get the same lines, so where neither dropped the stream must be the file, byte for
byte. When a sink dropped (by design only once its backlog is full and the kernel rings pass
their high-water mark, or the broker stopped acking, or the servers refused a message), each
event it lacks must lie in a LOST notice of its own (the stream's "nats_backlog_full" or
"nats_rejected", the file's "sink_full"), which no other place has, and the events each one
lacks must number exactly what the notices tell and what the sink counted. Every event present in both must be the same line, and each of them in seq order
without repeats. A kernel_ring_full notice is in both, unless the nats sink dropped it along
with the events around it (counted and reported, not an error: notices are not events).
--strict (bench/nats.sh --smoke): any difference fails. Prints one line; exit 0 when it holds.
"""
import bisect
import json
import sys


def events_and_notices(lines, own_reasons, where):
    """(seq -> line, [line of a notice not of own_reasons], [(first, last)], told, problems).
    An event line starts with {"seq":N, (core/json.c), so only notices are parsed."""
    ev, notes, ranges, told, bad = {}, [], [], 0, []
    last = 0
    for n, line in enumerate(lines, 1):
        if not line.startswith('{"seq":'):
            j = json.loads(line)
            if j.get("type") != "LOST":
                bad.append(f"{where} line {n}: neither an event nor a notice: {line:.80}")
            elif j.get("reason") in own_reasons:
                ranges.append((j["first_seq"], j["last_seq"]))
                told += j["count"]
            else:
                notes.append(line)
            continue
        seq = int(line[7:line.index(",", 7)])
        if seq <= last:
            bad.append(f"{where} line {n}: seq {seq} after {last}")
        last = seq
        ev[seq] = line
    return ev, notes, sorted(ranges), told, bad


def covered(seq, ranges):
    """Whether seq lies in one of the sorted, disjoint ranges."""
    i = bisect.bisect_right(ranges, (seq, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= seq <= ranges[i][1]


def main(argv):
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) != 4:
        sys.exit(__doc__)
    with open(args[0], encoding="utf-8") as f:
        F = f.read().splitlines()
    with open(args[1], encoding="utf-8") as f:
        T = f.read().splitlines()
    ndrop, fdrop = int(args[2]), int(args[3])
    if F == T:
        if ndrop or fdrop:
            print(f"stream = file ({len(F)} lines), yet the sinks counted {ndrop} (nats) and "
                  f"{fdrop} (file) dropped")
            return 1
        print(f"stream = file: {len(F)} lines, every one once and in order")
        return 0
    if strict:
        k = next((i for i, (x, y) in enumerate(zip(F, T)) if x != y), min(len(F), len(T)))
        print(f"stream != file: {len(F)} lines in the file, {len(T)} in the stream; first "
              f"difference at line {k + 1}: {F[k] if k < len(F) else '(end)':.100} | "
              f"{T[k] if k < len(T) else '(end)':.100}")
        return 1
    fev, fnotes, franges, ftold, bad = events_and_notices(F, ("sink_full",), "file")
    tev, tnotes, tranges, ttold, tbad = events_and_notices(
        T, ("nats_backlog_full", "nats_rejected"), "stream")
    bad += tbad
    top = max(list(fev) + list(tev) + [b for _, b in franges + tranges] + [0])
    not_in_stream = not_in_file = 0
    for seq in range(1, top + 1):
        f, t = fev.get(seq), tev.get(seq)
        if f is not None and t is not None:
            if f != t:
                bad.append(f"seq {seq} differs: {f:.80} | {t:.80}")
            continue
        if t is None:
            not_in_stream += 1
            if not covered(seq, tranges):
                bad.append(f"seq {seq} is not in the stream and no notice there tells")
        if f is None:
            not_in_file += 1
            if not covered(seq, franges):
                bad.append(f"seq {seq} is not in the file and no notice there tells")
    # kernel notices: the same in both, less those the nats sink dropped with the events
    dropped_notes = dropped_told = 0
    rest = list(tnotes)
    for line in fnotes:
        if line in rest:
            rest.remove(line)
            continue
        j = json.loads(line)
        if covered(j.get("before_seq", 0), tranges):
            dropped_notes += 1
            dropped_told += j.get("count", 0)
        else:
            bad.append(f"notice {line:.80} is not in the stream")
    bad += [f"notice {line:.80} is in the stream only" for line in rest]
    if (not_in_stream, ttold) != (ndrop, ndrop):
        bad.append(f"{not_in_stream} events not in the stream, its notices tell {ttold}, the "
                   f"nats sink counted {ndrop}")
    if (not_in_file, ftold) != (fdrop, fdrop):
        bad.append(f"{not_in_file} events not in the file, its notices tell {ftold}, the file "
                   f"sink counted {fdrop}")
    print(f"stream = file less what each sink dropped and told: the stream lacks "
          f"{not_in_stream} events ({len(tranges)} nats_backlog_full or nats_rejected "
          f"notices), the file "
          f"{not_in_file} ({len(franges)} sink_full notices)"
          + (f"; the nats sink dropped {dropped_notes} kernel_ring_full notices (telling "
             f"{dropped_told} events the kernel lost, which the stream then never tells)"
             if dropped_notes else "")
          + (f"; {len(bad)} problems: " + "; ".join(bad[:5]) if bad else "; all told exactly"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
