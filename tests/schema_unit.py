#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Unit test (ctest schema_unit) of docs/event.schema.json and tests/schema_check.py: every
line of tests/data/schema_good.jsonl must pass, every case of tests/data/schema_bad.txt must
fail for the stated reason, and the checker's file-level rules and exit codes must hold.

Usage: schema_unit.py SCHEMA_CHECK DATA_DIR [SCHEMA [README]]
With README, every line of its ```json blocks must pass too, so the examples stay true.
Runs SCHEMA_CHECK with this interpreter on temporary files (removed at the end); starts
nothing else. Exit 0 when every case behaves, 1 otherwise.
"""
import os
import subprocess
import sys
import tempfile

failures = 0


def fail(msg):
    global failures
    failures += 1
    sys.stderr.write("FAIL: schema_unit: %s\n" % msg)


def run(checker, schema, data, args=(), stdin=False):
    """Runs the checker on `data` (bytes; a file, or stdin). Returns (status, stderr)."""
    cmd = [sys.executable, checker, "--max-errors", "1000"]
    if schema:
        cmd += ["--schema", schema]
    cmd += list(args)
    with tempfile.NamedTemporaryFile(prefix="lm-schema-", suffix=".jsonl") as f:
        f.write(data)
        f.flush()
        if stdin:
            f.seek(0)
            p = subprocess.run(cmd + ["-"], stdin=f, capture_output=True, timeout=60)
        else:
            p = subprocess.run(cmd + [f.name], capture_output=True, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "backslashreplace")


def read_bad_cases(path):
    """(what, expect, line) for each case of the bad-line file."""
    cases, pending = [], None
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            text = raw.decode("utf-8")
            if text.startswith("# ") and " | expect: " in text:
                what, expect = text[2:].split(" | expect: ", 1)
                pending = (what, expect)
            elif text.startswith("#") or not text:
                continue
            else:
                if pending is None:
                    raise SystemExit("schema_bad.txt: a line without its comment: %s" % text)
                cases.append((pending[0], pending[1], raw))
                pending = None
    return cases


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.stderr.write(__doc__)
        return 2
    checker, data_dir = sys.argv[1], sys.argv[2]
    schema = sys.argv[3] if len(sys.argv) >= 4 else None
    readme = sys.argv[4] if len(sys.argv) == 5 else None
    with open(os.path.join(data_dir, "schema_good.jsonl"), "rb") as f:
        good = f.read()
    good_lines = good.split(b"\n")[:-1]
    exec_line = good_lines[0]

    # The good file passes whole, from a file and from stdin, requiring every type.
    req = ["--require", "EXEC", "--require", "EXIT", "--require", "OOM_KILL", "--require", "LOST"]
    for stdin in (False, True):
        st, err = run(checker, schema, good, req, stdin)
        if st != 0:
            fail("good lines (stdin=%s) exit %d, want 0:\n%s" % (stdin, st, err))
    # The README's examples are real lines too.
    if readme:
        with open(readme, "rb") as f:
            blocks = f.read().split(b"```json\n")[1:]
        examples = b"".join(b.split(b"```")[0] for b in blocks)
        st, err = run(checker, schema, examples, ["--require", "EXEC", "--require", "LOST"])
        if st != 0 or not examples:
            fail("README.md's json examples: exit %d, want 0:\n%s" % (st, err))

    # Every bad line fails, at its own line number, for the stated reason. One run over all
    # of them after a valid EXEC (so the file holds an event): failures are per line.
    cases = read_bad_cases(os.path.join(data_dir, "schema_bad.txt"))
    data = exec_line + b"\n" + b"".join(line + b"\n" for _, _, line in cases)
    st, err = run(checker, schema, data)
    if st != 1:
        fail("bad lines: exit %d, want 1:\n%s" % (st, err))
    by_line = {}
    for out in err.splitlines():
        parts = out.split(":", 3)
        if len(parts) == 4 and parts[2].isdigit():
            by_line.setdefault(int(parts[2]), []).append(parts[3])
    if 1 in by_line:
        fail("the valid EXEC before the bad lines failed: %s" % by_line[1])
    for no, (what, expect, line) in enumerate(cases, 2):
        got = "\n".join(by_line.get(no, []))
        if not got:
            fail("%s: line %d passed, want a failure: %s" % (what, no, line.decode()))
        elif expect not in got:
            fail("%s: line %d failed without saying %r:\n%s" % (what, no, expect, got))
    if sorted(by_line) != list(range(2, len(cases) + 2)):
        fail("failures reported on lines %s, want 2..%d" % (sorted(by_line), len(cases) + 1))

    # File-level rules: nothing validated is a failure, and so is a missing --require type.
    lost_only = b"".join(l + b"\n" for l in good_lines if b'"type":"LOST"' in l)
    exits_only = b"".join(l + b"\n" for l in good_lines if b'"type":"EXIT"' in l)
    file_cases = [
        ("empty file", b"", [], 1, "no valid event line"),
        ("LOST lines only", lost_only, [], 1, "no valid event line"),
        ("an invalid line only", b"{}\n", [], 1, "no valid event line"),
        ("--require OOM_KILL without one", exits_only, ["--require", "OOM_KILL"], 1,
         "no valid OOM_KILL line (--require OOM_KILL)"),
        ("EXIT lines only", exits_only, ["--require", "EXIT"], 0, "all valid"),
        ("no final newline", exec_line, [], 1, ":1: the last line does not end with \\n"),
        ("an empty line", exec_line + b"\n\n" + exec_line + b"\n", [], 1, ":2: empty line"),
        ("invalid UTF-8 in a line", exec_line.replace(b'"ls"', b'"l\xff"') + b"\n", [], 1,
         ":1: not UTF-8"),
        ("CRLF line ends", exec_line + b"\r\n", [], 1, ":1: white space around the object"),
        ("--require of an unknown type", good, ["--require", "FORK"], 2, "invalid choice"),
        ("an unknown option", good, ["--frobnicate"], 2, "unrecognized arguments"),
    ]
    for what, data, args, want, expect in file_cases:
        st, err = run(checker, schema, data, args)
        if st != want or expect not in err:
            fail("%s: exit %d, want %d saying %r:\n%s" % (what, st, want, expect, err))
    p = subprocess.run([sys.executable, checker, "/nonexistent/lifemon.jsonl"],
                       capture_output=True, timeout=60)
    if p.returncode != 2:
        fail("a missing file: exit %d, want 2" % p.returncode)

    total = 3 + len(cases) + len(file_cases) + 1
    if failures:
        sys.stderr.write("schema_unit: %d of %d cases failed\n" % (failures, total))
        return 1
    sys.stderr.write("schema_unit: PASS: %d good lines, %d bad lines, %d file cases\n" %
                     (len(good_lines), len(cases), len(file_cases) + 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
