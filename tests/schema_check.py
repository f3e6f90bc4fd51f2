#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Validates lifemon output (JSON Lines: stdout, an --output file, a dump of /ws) against
docs/event.schema.json, line by line, plus the cross-field rules a JSON Schema cannot state.

Usage: schema_check.py [--schema FILE] [--require TYPE]... [--max-errors N] [FILE | -]

Prints the first failures as "FILE:LINE: message" and a summary on stderr. Exit status:
0 every line is valid and at least one event line was seen (and every --require TYPE
appeared); 1 any failure, including a file without a single event line; 2 usage error
(bad option, unreadable FILE or schema). Starts and stops nothing. Needs Debian's
python3-jsonschema (4.10, draft 2020-12).
"""
import argparse
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("schema_check: python3-jsonschema is missing "
                     "(scripts/install-deps.sh installs it)\n")
    sys.exit(2)

TYPES = ("EXEC", "EXIT", "OOM_KILL", "LOST", "HELLO")
EVENT_TYPES = ("EXEC", "EXIT", "OOM_KILL")
DEFAULT_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs",
                              "event.schema.json")
# The string keys that may carry a raw hex twin "<key>_hex".
TWINS = ("comm", "pcomm", "filename", "exe", "cwd", "cgroup", "unit", "memcg")


def utf8_len(b, i):
    """Length of the valid UTF-8 sequence at b[i] (RFC 3629), or 0; as core/json.c has it."""
    n = len(b) - i
    c = b[i]
    if c < 0x80:
        return 1
    if 0xc2 <= c <= 0xdf:
        return 2 if n >= 2 and b[i + 1] & 0xc0 == 0x80 else 0
    if 0xe0 <= c <= 0xef:
        lo = 0xa0 if c == 0xe0 else 0x80
        hi = 0x9f if c == 0xed else 0xbf
        return 3 if n >= 3 and lo <= b[i + 1] <= hi and b[i + 2] & 0xc0 == 0x80 else 0
    if 0xf0 <= c <= 0xf4:
        lo = 0x90 if c == 0xf0 else 0x80
        hi = 0x8f if c == 0xf4 else 0xbf
        return (4 if n >= 4 and lo <= b[i + 1] <= hi and b[i + 2] & 0xc0 == 0x80 and
                b[i + 3] & 0xc0 == 0x80 else 0)
    return 0


def lifemon_decode(raw):
    """The string lifemon writes for raw bytes: valid UTF-8 kept, each invalid byte U+FFFD."""
    out = []
    i = 0
    while i < len(raw):
        n = utf8_len(raw, i)
        if n == 0:
            out.append("\ufffd")
            i += 1
        else:
            out.append(raw[i:i + n].decode("utf-8"))
            i += n
    return "".join(out)


def check_twin(what, text, hexstr):
    """A hex twin holds the raw bytes of a string that needed U+FFFD: returns a problem or None."""
    raw = bytes.fromhex(hexstr)
    if b"\0" in raw:
        return "%s_hex holds a NUL byte (the string ends at the first NUL)" % what
    try:
        raw.decode("utf-8")
        return "%s_hex is valid UTF-8, so it should be absent" % what
    except UnicodeDecodeError:
        pass
    if not isinstance(text, str) or lifemon_decode(raw) != text:
        return "%s does not match its hex twin (each invalid byte -> U+FFFD): %r vs %r" % (
            what, text, lifemon_decode(raw))
    return None


def cross_checks(ev):
    """Rules across keys that the schema cannot express. Yields problems. A key the schema
    let through as absent (an older --schema) is skipped, never a crash."""
    t = ev["type"]
    if t == "LOST":
        if all(k in ev for k in ("first_seq", "last_seq", "count")) and \
                ev["last_seq"] - ev["first_seq"] + 1 != ev["count"]:
            yield "LOST count %d != last_seq - first_seq + 1 (%d..%d)" % (
                ev["count"], ev["first_seq"], ev["last_seq"])
        return
    for k, of in (("key", "pid"), ("parent_key", "ppid")):
        if k in ev and of in ev and int(ev[k].split(":")[0]) != ev[of]:
            yield "%s %s does not start with %s %d" % (k, ev[k], of, ev[of])
    for k in TWINS:
        if k + "_hex" in ev:
            p = check_twin(k, ev.get(k), ev[k + "_hex"])
            if p:
                yield p
    if t == "EXIT" and ev.get("signal") and ev.get("exit_code") != 128 + ev["signal"]:
        yield "EXIT exit_code %s != 128 + signal %d" % (ev.get("exit_code"), ev["signal"])
    if t == "OOM_KILL" and ev.get("target_pid") != ev.get("pid"):
        yield "OOM_KILL target_pid %s != pid %s" % (ev.get("target_pid"), ev.get("pid"))
    if t != "EXEC" or "args" not in ev:
        return
    args, argc = ev["args"], ev.get("argc")
    if argc is not None and len(args) > argc:
        yield "args has %d items, more than argc %d" % (len(args), argc)
    elif argc is not None and len(args) != argc and "args" not in ev.get("truncated", ()):
        yield "args has %d items but argc is %d and \"args\" is not in truncated" % (
            len(args), argc)
    for idx, hexstr in sorted(ev.get("args_hex", {}).items()):
        i = int(idx)
        if i >= len(args):
            yield "args_hex key %s but args has %d items" % (idx, len(args))
            continue
        p = check_twin("args[%d]" % i, args[i], hexstr)
        if p:
            yield p


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError("duplicate key %s" % ", ".join(sorted(dup)))
    return dict(pairs)


def no_constant(name):
    raise ValueError("%s is not JSON" % name)


def no_float(text):
    raise ValueError("number %s is not an integer (lifemon writes integers only)" % text)


def lone_surrogate(v):
    """True if any string in v holds a UTF-16 surrogate (\\ud800 alone is not Unicode)."""
    if isinstance(v, str):
        return any(0xd800 <= ord(c) <= 0xdfff for c in v)
    if isinstance(v, list):
        return any(lone_surrogate(x) for x in v)
    if isinstance(v, dict):
        return any(lone_surrogate(k) or lone_surrogate(x) for k, x in v.items())
    return False


def line_problems(validator, raw):
    """Problems of one line (bytes without its '\\n'), and the parsed object or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["not UTF-8: %s" % e], None
    if not text:
        return ["empty line"], None
    if text != text.strip():
        return ["white space around the object (lifemon writes compact lines)"], None
    try:
        ev = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant,
                        parse_float=no_float)
    except ValueError as e:
        return ["not strict JSON: %s" % e], None
    if lone_surrogate(ev):
        return ["a string holds a lone UTF-16 surrogate"], None
    errs = sorted(validator.iter_errors(ev), key=lambda e: list(e.absolute_path))
    if errs:
        return ["%s: %s" % (e.json_path, e.message) for e in errs], None
    return list(cross_checks(ev)), ev


def main():
    ap = argparse.ArgumentParser(description="Validate lifemon JSON Lines output.")
    ap.add_argument("file", nargs="?", default="-", help="JSONL file, - for stdin")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA, help="schema (docs/event.schema.json)")
    ap.add_argument("--require", action="append", default=[], choices=TYPES, metavar="TYPE",
                    help="fail unless a line of this type is present (EXEC, EXIT, OOM_KILL, "
                    "LOST); repeatable")
    ap.add_argument("--max-errors", type=int, default=10, metavar="N",
                    help="failing lines printed (default 10)")
    a = ap.parse_args()  # exits 2 on a usage error

    try:
        with open(a.schema, "rb") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        sys.stderr.write("schema_check: schema %s: %s\n" % (a.schema, e))
        return 2
    validator = jsonschema.Draft202012Validator(schema)
    name = "<stdin>" if a.file == "-" else a.file
    try:
        if a.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(a.file, "rb") as f:
                data = f.read()
    except OSError as e:
        sys.stderr.write("schema_check: %s: %s\n" % (name, e))
        return 2

    counts = dict.fromkeys(TYPES, 0)
    bad = shown = 0
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    elif data:
        bad += 1
        shown += 1
        sys.stderr.write("schema_check: %s:%d: the last line does not end with \\n\n" %
                         (name, len(lines)))
    for no, raw in enumerate(lines, 1):
        problems, ev = line_problems(validator, raw)
        if ev is not None and not problems:
            counts[ev["type"]] += 1
            continue
        bad += 1
        if shown < a.max_errors:
            shown += 1
            for p in problems[:5]:
                sys.stderr.write("schema_check: %s:%d: %s\n" % (name, no, p))
            sys.stderr.write("schema_check: %s:%d:   line: %s\n" %
                             (name, no, raw[:300].decode("utf-8", "backslashreplace")))
    events = sum(counts[t] for t in EVENT_TYPES)
    if events == 0:
        bad += 1
        sys.stderr.write("schema_check: %s: no valid event line: a validation of nothing "
                         "proves nothing\n" % name)
    for t in a.require:
        if counts[t] == 0:
            bad += 1
            sys.stderr.write("schema_check: %s: no valid %s line (--require %s)\n" %
                             (name, t, t))
    sys.stderr.write("schema_check: %s: %d lines, %s; %s\n" % (
        name, len(lines), ", ".join("%s %d" % (t, counts[t]) for t in TYPES),
        "%d failures" % bad if bad else "all valid"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
