#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Browser test of the live page at "/": Debian's headless Chromium, driven through
chromium-driver by Debian's python3-selenium, against a real lifemon and real processes.

Usage: it_page.py LIFEMON BUILD_DIR

Checks: the page's files come with their Content-Types, CSP and nosniff; model.js's pure
functions (row of an event, filter -> /ws query, chart points); real processes appear in the
table with their exit code (0, 3) and a failed exit stands out; a filter typed in the bar
becomes the /ws query (window.lifemon.wsUrl) and the table then holds only matching events;
a bad filter shows the server's 400 reason; pause counts what arrives and resume shows it;
clear empties the table; a row's details give its parent chain and children; export is valid JSON Lines; the
counters and chart fill; 10,000 events/s fed through the page's message path for 3 s are
kept up with (frames keep coming, rows and processes stay at their caps); after lifemon is stopped (SIGTERM) and started again the page
reconnects by itself with since=, says so and notices the new instance; no CSP violation
or script error in the console; the copy button answers; the dark scheme is followed. Saves
BUILD_DIR/it_page.png and BUILD_DIR/it_page-dark.png.

Starts: lifemon (twice, on 127.0.0.1:18120), chromedriver and its Chromium (selenium), short
/bin/true and /bin/sh children. Stops them by pid (lifemon with SIGTERM, the browser with
driver.quit()). Uses BUILD_DIR/it_page-profile (a fresh Chromium profile, removed) and a temp
dir (removed). Exit 0 pass, 1 fail, 77 skip (not root, no BTF, no Chromium/driver/selenium;
with CI=true those fail instead). Bounded: gives up after 110 s.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TEST = "it_page"
PORT = 18120
BASE = f"http://127.0.0.1:{PORT}"
DEADLINE = time.monotonic() + 110
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"

failures = []


def log(tag, msg):
    sys.stderr.write(f"{tag}: {TEST}: {msg}\n")
    sys.stderr.flush()


def note(msg):
    log("INFO", msg)


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


def wait_for(what, fn, timeout=10.0, interval=0.1):
    """Polls fn() until it returns something truthy; returns that, or raises Fatal."""
    end = min(time.monotonic() + timeout, DEADLINE)
    last = None
    while True:
        try:
            last = fn()
        except Exception as e:  # a stale element or a page between loads: poll again
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= end:
            raise Fatal(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(interval)


def http_get(path, timeout=2.0):
    """(status, headers, body) of GET BASE+path; status 0 when unreachable."""
    try:
        with urllib.request.urlopen(BASE + path, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError):
        return 0, None, b""


class Lifemon:
    def __init__(self, binary, errpath):
        self.binary = binary
        self.errpath = errpath
        self.proc = None

    def start(self, extra=(), token=""):
        err = open(self.errpath, "ab")
        self.proc = subprocess.Popen([self.binary, "--listen", f"127.0.0.1:{PORT}", *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err)
        err.close()
        health = "/healthz" + (f"?token={token}" if token else "")
        wait_for("lifemon /healthz", lambda: self.proc.poll() is None and
                 http_get(health)[0] == 200 or self.proc.poll() is not None, 20)
        if self.proc.poll() is not None:
            raise Fatal(f"lifemon exited with {self.proc.returncode}; see {self.errpath}")
        note(f"lifemon pid {self.proc.pid} healthy on 127.0.0.1:{PORT}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Fatal("lifemon did not stop within 15 s of SIGTERM")
        self.proc = None


def preconditions():
    if os.geteuid() != 0:
        skip(f"needs root (euid is {os.geteuid()})")
    if not os.access("/sys/kernel/btf/vmlinux", os.R_OK):
        skip("/sys/kernel/btf/vmlinux is not readable (kernel without BTF)")
    for p in (CHROMIUM, DRIVER):
        if not os.access(p, os.X_OK):
            skip(f"{p} missing (scripts/install-deps.sh installs chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip("python3-selenium missing (scripts/install-deps.sh installs it)")


def open_browser(profile, downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,900", f"--user-data-dir={profile}", "--no-first-run",
              "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.set_script_timeout(15)
    drv.set_page_load_timeout(15)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": downloads})
    return drv


def js(drv, expr, *args):
    return drv.execute_script(f"return ({expr});", *args)


def rows_with(drv, text):
    """The table rows whose text contains `text`: type, status, classes, command."""
    return js(drv, """[...document.querySelectorAll('#events tbody tr')]
        .filter(tr => tr.textContent.includes(arguments[0]))
        .map(tr => ({type: tr.dataset.type, seq: Number(tr.dataset.seq),
                     status: (tr.querySelector('.col-status') || {}).textContent,
                     cmd: (tr.querySelector('.col-cmd') || {}).textContent,
                     cls: tr.className}))""", text)


def run(*argv):
    subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=10)


def click(drv, css):
    drv.find_element("css selector", css).click()


def set_field(drv, name, value):
    el = drv.find_element("css selector", f'#filter input[name="{name}"]')
    el.clear()
    if value:
        el.send_keys(value)


def check_served():
    st, hdr, body = http_get("/")
    expect(st == 200 and body.startswith(b"<!doctype html>"), f"GET / -> {st}")
    csp = hdr.get("Content-Security-Policy", "") if hdr else ""
    expect("script-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"CSP on /: {csp!r}")
    expect(hdr and hdr.get("X-Content-Type-Options") == "nosniff", "no nosniff on /")
    for path, ctype in (("/app.js", "text/javascript"), ("/model.js", "text/javascript"),
                        ("/chart.js", "text/javascript"), ("/style.css", "text/css")):
        st, hdr, body = http_get(path)
        expect(st == 200 and hdr and hdr.get("Content-Type", "").startswith(ctype) and body,
               f"GET {path} -> {st} {hdr and hdr.get('Content-Type')}")
    expect(http_get("/nope.js")[0] == 404, "GET /nope.js is not 404")
    expect(http_get("/index.html")[0] == 404, "GET /index.html is not 404 (only / names it)")


def check_model(drv):
    got = js(drv, """(() => { const M = window.lifemon.model;
        const ex = {seq: 5, timestamp: 1795610031539337156, type: 'EXIT', pid: 7, uid: 1000,
                    comm: 'sh', exit_code: 3, signal: 0, duration_ns: 1953000, key: '7:1'};
        const k = {...ex, exit_code: 137, signal: 9};
        const oom = {seq: 6, type: 'OOM_KILL', pid: 8, comm: 'x', container_id: 'ab'.repeat(32)};
        const lost = {type: 'LOST', count: 3, first_seq: 1, last_seq: 3, reason: 'slow_client'};
        const rc = new M.RateCounter(60);
        rc.add('exec', 100); rc.add('exec', 100); rc.add('exit', 101);
        const pts = M.chartPoints(rc, 101, 60);
        return {
          a: M.rowFromEvent(ex), b: M.rowFromEvent(k), c: M.rowFromEvent(oom),
          d: M.rowFromEvent(lost),
          q: M.queryFromFilterForm({type: 'exec,EXIT', comm: ' a* ', exit: true, pid: '',
                                   args: 'x y,z&', bogus: 1}),
          f: M.filterFormFromQuery('comm=a&comm=b&token=t&since=4'),
          u: M.wsUrl({protocol: 'http:', host: 'h:1'}, 'comm=a', {since: 9, instance: 'i',
                                                                   token: 't+'}),
          p: [pts.series.exec[58], pts.series.exit[59], pts.max, pts.series.exec.length],
        }; })()""")
    expect(got["a"]["status"] == "3" and "fail" in got["a"]["cls"] and
           got["a"]["duration"] == "1.95 ms", f"rowFromEvent(exit 3): {got['a']}")
    expect(got["b"]["status"] == "SIGKILL" and "fail" in got["b"]["cls"],
           f"rowFromEvent(SIGKILL): {got['b']}")
    expect(got["c"]["status"] == "OOM kill" and "oom" in got["c"]["cls"] and
           got["c"]["containerShort"] == "abababababab", f"rowFromEvent(OOM_KILL): {got['c']}")
    expect("lost" in got["d"]["cls"] and "seq 1-3" in got["d"]["text"],
           f"rowFromEvent(LOST): {got['d']}")
    expect(got["q"] == "type=exec,exit&comm=a*&exit=nonzero&args=x%20y,z%26",
           f"queryFromFilterForm: {got['q']}")
    expect(got["f"] == {"comm": "a,b"}, f"filterFormFromQuery: {got['f']}")
    expect(got["u"] == "ws://h:1/ws?comm=a&since=9&instance=i&token=t%2B", f"wsUrl: {got['u']}")
    expect(got["p"] == [2, 1, 2, 60], f"chartPoints: {got['p']}")


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: it_page.py LIFEMON BUILD_DIR\n")
        return 2
    lifemon_bin, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    preconditions()
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="lm-it-page-")
    profile = os.path.join(build, "it_page-profile")
    shutil.rmtree(profile, ignore_errors=True)
    lm = Lifemon(lifemon_bin, os.path.join(tmp, "lifemon.stderr"))
    drv = None
    try:
        lm.start()
        check_served()
        drv = open_browser(profile, tmp)
        drv.get(BASE + "/")
        wait_for("the page's WebSocket to open", lambda: js(drv, "window.lifemon?.state") == "open")
        check_model(drv)
        first_instance = js(drv, "window.lifemon.instance")
        note(f"page connected: {js(drv, 'window.lifemon.wsUrl')}, instance {first_instance}")

        # real processes, with an argument of their own, and their exit codes
        tag = f"lmpage{os.getpid()}x{int(time.time() * 1000) % 100000}"
        run("/bin/true", tag + "ok")
        run("/bin/sh", "-c", "exit 3", tag + "three")
        ok = wait_for("/bin/true's EXIT row", lambda: [r for r in rows_with(drv, tag + "ok")
                                                         if r["type"] == "EXIT"])
        three = wait_for("sh's EXIT row", lambda: [r for r in rows_with(drv, tag + "three")
                                                     if r["type"] == "EXIT"])
        expect(ok[0]["status"] == "0" and "fail" not in ok[0]["cls"], f"true's EXIT row: {ok[0]}")
        expect(three[0]["status"] == "3" and "fail" in three[0]["cls"],
               f"sh -c 'exit 3' EXIT row: {three[0]}")
        expect(any(r["type"] == "EXEC" for r in rows_with(drv, tag + "ok")), "no EXEC row for true")
        seqs = js(drv, "[...document.querySelectorAll('#events tbody tr[data-seq]')]"
                       ".map(tr => Number(tr.dataset.seq))")
        expect(seqs == sorted(seqs, reverse=True), "table is not newest first")

        # details: a shell with two children; the parent chain and the children seen
        run("/bin/sh", "-c", "/bin/true kid1; /bin/true kid2; exit 0", tag + "parent")
        wait_for("the parent shell's EXIT", lambda: [r for r in rows_with(drv, tag + "parent")
                                                      if r["type"] == "EXIT"])
        wait_for("both children's EXIT rows", lambda: len([r for r in rows_with(drv, "kid")
                                                            if r["type"] == "EXIT"]) >= 2)
        drv.execute_script("""[...document.querySelectorAll('#events tbody tr[data-type="EXEC"]')]
            .find(tr => tr.textContent.includes(arguments[0])).click()""", tag + "parent")
        kids = js(drv, "[...document.querySelectorAll('#children li')].map(li => li.textContent)")
        expect(js(drv, "!document.getElementById('details').hidden"), "details panel hidden")
        expect(len(kids) == 2 and all("/usr/bin/true" in k for k in kids),
               f"children of the shell: {kids}")
        expect(tag + "parent" in js(drv, "document.getElementById('raw').textContent"),
               "raw JSON of the row missing")
        drv.execute_script("""[...document.querySelectorAll('#events tbody tr[data-type="EXIT"]')]
            .find(tr => tr.querySelector('.col-cmd').textContent.endsWith('/bin/true kid1'))
            .click()""")
        chain = js(drv, "[...document.querySelectorAll('#parents li')].map(li => li.textContent)")
        expect(chain and tag + "parent" in chain[0] and len(chain) >= 2,
               f"parent chain of kid1: {chain}")

        # export: the rows shown as JSON Lines
        lines = js(drv, "window.lifemon.model.toJsonLines(window.lifemon.events())").splitlines()
        expect(lines and all(json.loads(x) for x in lines) and
               any(tag + "three" in x for x in lines), "export is not the rows as JSON Lines")
        click(drv, "#export")
        dl = wait_for("the exported file", lambda: [f for f in os.listdir(tmp)
                                                     if f.endswith(".jsonl")], 5)
        with open(os.path.join(tmp, dl[0]), encoding="utf-8") as f:
            exported = f.read().splitlines()
        expect(len(exported) >= len(lines) and any(tag + "ok" in x for x in exported),
               f"downloaded {dl[0]} has {len(exported)} lines")

        # a filter: the /ws query follows the bar, and the table holds only matching events
        comm = f"lmp{os.getpid() % 100000}"
        copy = os.path.join(tmp, comm)
        shutil.copy("/bin/true", copy)
        set_field(drv, "comm", comm)
        click(drv, "#apply")
        wait_for("the filtered stream to open", lambda: js(drv, "window.lifemon.state") == "open"
                 and f"comm={comm}" in js(drv, "window.lifemon.wsUrl"))
        note(f"filtered: {js(drv, 'window.lifemon.wsUrl')}")
        expect(js(drv, "document.getElementById('query').textContent") == f"/ws?comm={comm}",
               "the query shown is not the filter")
        run("/bin/true", tag + "unfiltered")
        run(copy, tag + "filtered")
        wait_for("the filtered process's EXIT", lambda: [r for r in rows_with(drv, tag + "filtered")
                                                          if r["type"] == "EXIT"])
        run("/bin/true", tag + "unfiltered2")
        time.sleep(0.5)
        others = js(drv, "window.lifemon.events().filter(e => e.seq && e.comm !== arguments[0])"
                         ".map(e => e.comm)", comm)
        expect(not others, f"filter comm={comm}: the table also shows {others[:5]}")
        expect(not rows_with(drv, tag + "unfiltered"), "an unfiltered process is in the table")

        # a bad filter: the server's reason shows
        set_field(drv, "comm", "")
        set_field(drv, "pid", "12x")
        click(drv, "#apply")
        reason = wait_for("the bad filter's reason", lambda: js(
            drv, "!document.getElementById('filter-error').hidden && "
                 "document.getElementById('filter-error').textContent"))
        note(f"bad filter reason shown: {reason!r}")
        expect("pid" in reason and "12x" in reason, f"bad filter reason: {reason!r}")
        expect(js(drv, "window.lifemon.state") == "refused", "a bad filter is retried")

        # clicking a value adds it as a filter
        set_field(drv, "pid", "")
        click(drv, "#reset")
        wait_for("the unfiltered stream", lambda: js(drv, "window.lifemon.state") == "open"
                 and "?" not in js(drv, "window.lifemon.wsUrl"))
        run(copy, tag + "chip")
        wait_for("the copy's row", lambda: rows_with(drv, tag + "chip"))
        drv.execute_script("""[...document.querySelectorAll('#events tbody tr')]
            .find(tr => tr.textContent.includes(arguments[0]))
            .querySelector('.chip[data-k="exe"]').click()""", tag + "chip")
        wait_for("the exe filter from a click", lambda: f"exe={copy.replace('/', '%2F')}" in
                 js(drv, "window.lifemon.wsUrl") and js(drv, "window.lifemon.state") == "open")
        click(drv, "#reset")
        wait_for("the unfiltered stream", lambda: js(drv, "window.lifemon.state") == "open"
                 and "?" not in js(drv, "window.lifemon.wsUrl"))

        # pause: what arrives is counted, not shown; resume shows it
        click(drv, "#pause")
        for i in range(5):
            run("/bin/true", f"{tag}paused{i}")
        wait_for("10 events counted while paused",
                 lambda: js(drv, "window.lifemon.counters.pausedCount") >= 10)
        expect(not rows_with(drv, tag + "paused"), "rows were added while paused")
        shown = js(drv, "document.getElementById('paused-count').textContent")
        expect("new while paused" in shown, f"paused count shows {shown!r}")
        click(drv, "#pause")
        wait_for("the paused events after resume",
                 lambda: len([r for r in rows_with(drv, tag + "paused")
                              if r["type"] == "EXIT"]) == 5)

        # clear empties the table; new events fill it again. Every exec on the host shows
        # here, so one may land between the click and the look: what must be gone is every
        # row and event from before the click.
        before = js(drv, "Math.max(0, ...window.lifemon.events().map(e => e.seq || 0))")
        expect(before > 0, "no events with a seq before clear")
        click(drv, "#clear")
        left = drv.execute_script("""const b = arguments[0];
            return {rows: [...document.querySelectorAll('#events tbody tr')]
                      .filter(tr => !(Number(tr.dataset.seq) > b)).length,
                    events: window.lifemon.events().filter(e => !(e.seq > b)).length,
                    shown: window.lifemon.counters.rows,
                    dom: document.querySelectorAll('#events tbody tr').length};""", before)
        expect(left["rows"] == 0 and left["events"] == 0 and left["shown"] == left["dom"],
               f"clear left rows from before it (seq <= {before}): {left}")
        run("/bin/true", tag + "cleared")
        wait_for("a row after clear", lambda: rows_with(drv, tag + "cleared"))

        # counters from /metrics and the chart
        wait_for("the exec counter", lambda: js(drv, "window.lifemon.metrics?.events.exec") > 0, 5)
        expect(js(drv, "document.querySelector('#counters td[data-m=\"events.exec\"]').textContent")
               != "", "the exec counter is empty")
        expect(js(drv, """(() => { const c = document.getElementById('chart');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })()""")
               > 100, "the chart is empty")

        # restart lifemon: the page reconnects by itself and says so
        before = js(drv, "window.lifemon.counters.reconnects")
        lm.stop()
        wait_for("the page to see lifemon gone", lambda: js(drv, "window.lifemon.state") != "open")
        status = js(drv, "document.getElementById('status').textContent")
        expect("reconnecting" in status or "retrying" in status or "unreachable" in status,
               f"status while lifemon is down: {status!r}")
        lm.start()
        wait_for("the page to reconnect", lambda: js(drv, "window.lifemon.state") == "open"
                 and js(drv, "window.lifemon.counters.reconnects") > before, 15)
        status = js(drv, "document.getElementById('status').textContent")
        expect("reconnected" in status, f"status after the restart: {status!r}")
        note(f"status after the restart: {status!r}")
        expect("since=" in js(drv, "window.lifemon.wsUrl"), "the reconnect did not resume (since=)")
        new_instance = wait_for("the new instance", lambda: js(drv, "window.lifemon.instance")
                                != first_instance and js(drv, "window.lifemon.instance"), 5)
        note(f"reconnected: {js(drv, 'window.lifemon.wsUrl')}, instance {new_instance}")
        notices = js(drv, "window.lifemon.notices")
        expect(any("restarted" in n for n in notices), f"no restart notice: {notices}")
        expect(not js(drv, "document.getElementById('notice').hidden"), "notice not shown")
        run("/bin/true", tag + "after")
        wait_for("a process after the restart", lambda: [r for r in rows_with(drv, tag + "after")
                                                          if r["type"] == "EXIT"])

        wait_for("the restarted lifemon's counters",
                 lambda: js(drv, "window.lifemon.metrics?.events.exec") > 0, 5)
        drv.save_screenshot(os.path.join(build, "it_page.png"))
        note(f"screenshot: {os.path.join(build, 'it_page.png')}")

        # the copy button answers (the clipboard, or a selection to copy by hand)
        drv.execute_script("document.querySelector('#events tbody tr[data-seq]').click()")
        click(drv, "#copy")
        copied = wait_for("the copy button's answer", lambda: js(
            drv, "document.getElementById('copy').textContent") != "Copy JSON" and
            js(drv, "document.getElementById('copy').textContent"), 3)
        expect(copied in ("Copied", "Selected: press Ctrl+C"), f"copy button says {copied!r}")

        # the system's dark scheme is followed
        light = js(drv, "getComputedStyle(document.body).backgroundColor")
        drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = js(drv, "getComputedStyle(document.body).backgroundColor")
        expect(light == "rgb(255, 255, 255)" and dark != light,
               f"background light {light}, dark {dark}")
        drv.save_screenshot(os.path.join(build, "it_page-dark.png"))
        drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

        # nothing refused by the CSP, no script error (failed /ws connects are expected, and
        # so is a /metrics poll refused while lifemon was down for the restart above)
        bad = [e["message"] for e in drv.get_log("browser")
               if "Content Security Policy" in e["message"] or
               (e["level"] == "SEVERE" and "/ws" not in e["message"] and
                "favicon" not in e["message"] and
                not ("/metrics" in e["message"] and
                     "ERR_CONNECTION_REFUSED" in e["message"]))]
        expect(not bad, f"console errors: {bad[:5]}")

        # with --token-file: "/" wants the token, the page's files do not, and a page opened
        # with ?token= passes it on to /ws and /metrics
        drv.get("about:blank")
        lm.stop()
        token = os.urandom(16).hex()
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w", encoding="ascii") as f:
            f.write(token + "\n")
        lm.start(["--token-file", token_file], token)
        expect(http_get("/")[0] == 401, "GET / without the token is not 401")
        expect(http_get("/app.js")[0] == 200, "GET /app.js without the token is not 200")
        drv.get(f"{BASE}/?token={token}")
        wait_for("the page to connect with the token",
                 lambda: js(drv, "window.lifemon?.state") == "open", 10)
        expect(f"token={token}" in js(drv, "window.lifemon.wsUrl"), "the /ws URL has no token")
        wait_for("/metrics read with the token",
                 lambda: js(drv, "window.lifemon.metrics?.ws_clients") >= 1, 5)

        # 10,000 events/s for 3 s through the page's message path: frames keep coming and
        # the table and the process index stay at their caps
        load = drv.execute_async_script("""const done = arguments[arguments.length - 1];
            const L = window.lifemon, msgs = [], now = Date.now() * 1e6;
            let seq = 1e9;
            for (let m = 0; m < 30; m++) { // 100 ms of events each, made beforehand
              let s = '';
              for (let i = 0; i < 1000; i++, seq++)
                s += JSON.stringify({seq, timestamp: now + m * 1e8, type: i % 2 ? 'EXIT' : 'EXEC',
                  pid: seq % 4000000, uid: 0, comm: 'storm', exit_code: i % 7 ? 0 : 1,
                  signal: 0, key: `${seq}:1`, parent_key: `${seq - 1}:1`, exe: '/bin/storm',
                  args: ['storm', String(seq)], duration_ns: 1000}) + '\\n';
              msgs.push(s);
            }
            const t0 = performance.now();
            let last = t0, maxGap = 0, work = 0, sent = 0;
            (function frame(t) {
              maxGap = Math.max(maxGap, t - last); last = t;
              if (performance.now() - t0 < 3200) requestAnimationFrame(frame);
            })(t0);
            const iv = setInterval(() => {
              const a = performance.now(); L.feed(msgs[sent / 1000]); sent += 1000;
              work += performance.now() - a;
              if (sent === msgs.length * 1000) {
                clearInterval(iv);
                const took = performance.now() - t0;
                setTimeout(() => done({maxGap, work, sent, took, rows: L.counters.rows,
                  procs: L.counters.processes, pending: L.counters.pending, flushMs: L.counters.flushMs}), 400);
              }
            }, 100);""")
        note(f"load: {load['sent']} events in {load['took']:.0f} ms, longest frame gap {load['maxGap']:.0f} ms, "
             f"message handling {load['work']:.0f} ms, row updates {load['flushMs']} ms, rows {load['rows']}, "
             f"processes {load['procs']}")
        expect(load["rows"] == 2000 and load["procs"] <= 20000 and load["pending"] <= 4000,
               f"bounds under load: {load}")
        expect(load["maxGap"] < 500 and load["took"] < 4500,
               f"sluggish under load: {load}")
    except Fatal as e:
        expect(False, str(e))
        if drv:
            try:
                drv.save_screenshot(os.path.join(build, "it_page.png"))
                state = js(drv, "JSON.stringify({url: window.lifemon?.wsUrl, state: "
                                "window.lifemon?.state, err: window.lifemon?.lastError, "
                                "c: window.lifemon?.counters, "
                                "status: document.getElementById('status').textContent})")
                note(f"page state: {state}")
            except Exception:
                pass
    finally:
        if drv:
            drv.quit()
        try:
            lm.stop()
        except Fatal as e:
            expect(False, str(e))
        if failures and os.path.exists(lm.errpath):
            with open(lm.errpath, encoding="utf-8", errors="replace") as f:
                sys.stderr.write("---- lifemon stderr ----\n" + f.read()[-4000:] + "----\n")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)
    note(f"took {time.monotonic() - t0:.1f} s")
    if failures:
        log("FAIL", f"{len(failures)} failure(s)")
        return 1
    log("PASS", "all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
