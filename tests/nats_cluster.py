# SPDX-License-Identifier: GPL-2.0
"""A 3-node nats-server JetStream cluster on 127.0.0.1 for the NATS sink's integration tests
(tests/it_nats.py). Python 3 standard library only; Debian's nats-server 2.9.

Each node (n1..n3) gets a client, a cluster (route) and a monitoring (http) port, chosen free
at run time, its own JetStream store_dir and its own config file and log, all under one run
directory the caller owns (wiped when the cluster is made). The nodes route to each other as
one cluster. The class waits for the JetStream meta leader and finds a stream's leader through
each node's monitoring endpoint /jsz, and stops and restarts single nodes by the pid it
started them with: SIGTERM (an orderly shutdown) or SIGKILL (a crash). stop_all() stops every
server still running, by pid; callers run it in a finally. Each server is also started under
setpriv --pdeathsig KILL, so one the harness could not stop (the harness itself killed, as by
a ctest timeout) dies with it instead of outliving the test.

`python3 tests/nats_cluster.py RUN_DIR` checks the harness itself against the real server:
the cluster forms, a meta leader is found, a replicated stream made through a minimal client
of the NATS protocol gets a leader, that leader SIGKILLed by pid yields a new one, the node
restarted catches up, and every server is gone at the end.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

NATS_SERVER = "/usr/sbin/nats-server"
NODES = ("n1", "n2", "n3")
CLUSTER_NAME = "lmit"


class ClusterError(Exception):
    pass


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that were free a moment ago: all n bound at once
    (so none repeats), then closed for the servers to take."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_json(port, path, timeout=2.0):
    """The JSON body of GET http://127.0.0.1:port/path, or None when the node does not answer
    (down, starting, or a non-200 reply)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Node:
    def __init__(self, name, client, route, http, rundir):
        self.name = name
        self.client = client
        self.route = route
        self.http = http
        self.conf = os.path.join(rundir, f"{name}.conf")
        self.log = os.path.join(rundir, f"{name}.log")
        self.store = os.path.join(rundir, f"{name}-store")
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.client}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    """Three nodes, made (configs written) but not started; start() starts them."""

    def __init__(self, rundir, log=None):
        self.rundir = rundir = os.path.abspath(rundir)
        self.say = log or (lambda msg: None)
        shutil.rmtree(rundir, ignore_errors=True)
        os.makedirs(rundir)
        ports = free_ports(3 * len(NODES))
        self.nodes = [Node(name, *ports[3 * i:3 * i + 3], rundir)
                      for i, name in enumerate(NODES)]
        for n in self.nodes:
            self._write_conf(n)

    def _write_conf(self, n):
        routes = ", ".join(f"nats-route://127.0.0.1:{o.route}" for o in self.nodes)
        # no_advertise: the nodes and lifemon use only the loopback addresses written here,
        # never routes or client URLs the servers would gossip for other interfaces.
        with open(n.conf, "w", encoding="utf-8") as f:
            f.write(f"""# Written by tests/nats_cluster.py for one test run.
server_name: {n.name}
listen: 127.0.0.1:{n.client}
http: 127.0.0.1:{n.http}
log_file: "{n.log}"
jetstream {{
  store_dir: "{n.store}"
  max_memory_store: 256MB
  max_file_store: 4GB
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: 127.0.0.1:{n.route}
  no_advertise: true
  routes: [{routes}]
}}
""")

    def urls(self):
        return ",".join(n.url for n in self.nodes)

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"no node named {name!r}")

    # --- processes, by pid ---

    def start(self, names=None):
        """Starts the named nodes (default: all that are not running) and waits until each
        answers on its monitoring port."""
        todo = [n for n in self.nodes if (names is None or n.name in names) and not n.running()]
        for n in todo:
            # setpriv execs nats-server in place: n.proc.pid is the server's own pid. Its
            # stderr (a config error before log_file applies) goes to the same log.
            with open(n.log, "ab") as err:
                n.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--",
                                           NATS_SERVER, "-c", n.conf],
                                          stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            n.starts += 1
            self.say(f"started {n.name} pid {n.proc.pid} (client {n.client}, route {n.route}, "
                     f"http {n.http})")
        end = time.monotonic() + 20
        for n in todo:
            while http_json(n.http, "/varz") is None:
                if not n.running():
                    raise ClusterError(f"{n.name} (pid {n.pid}) exited with "
                                       f"{n.proc.returncode}; see {n.log}")
                if time.monotonic() > end:
                    raise ClusterError(f"{n.name} (pid {n.pid}) not answering on "
                                       f"127.0.0.1:{n.http} after 20 s; see {n.log}")
                time.sleep(0.05)

    def stop(self, name, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig to the node's pid and reaps it. SIGTERM is nats-server's orderly
        shutdown, SIGKILL a crash. Returns the seconds it took to exit."""
        n = self.node(name)
        if not n.running():
            raise ClusterError(f"{name} is not running")
        t0 = time.monotonic()
        n.proc.send_signal(sig)
        try:
            n.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            n.proc.wait()
            raise ClusterError(f"{name} (pid {n.pid}) did not exit within {timeout:.0f} s of "
                               f"{signal.Signals(sig).name}; killed")
        took = time.monotonic() - t0
        self.say(f"stopped {name} pid {n.pid} with {signal.Signals(sig).name} "
                 f"({took:.2f} s, status {n.proc.returncode})")
        return took

    def stop_all(self):
        """Stops every node still running (SIGTERM, SIGKILL after 10 s), by pid. Safe to call
        more than once; never raises."""
        for n in self.nodes:
            if n.proc is None or n.proc.poll() is not None:
                continue
            try:
                n.proc.send_signal(signal.SIGTERM)
                n.proc.wait(10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
            except OSError:
                pass
            self.say(f"stopped {n.name} pid {n.pid} (status {n.proc.returncode})")

    def pids(self):
        return {n.name: n.pid for n in self.nodes if n.running()}

    # --- JetStream state from /jsz ---

    def jsz(self, name, query=""):
        return http_json(self.node(name).http, "/jsz" + query)

    def meta_leader(self, names=None):
        """The meta leader's name when every running node (or every node in names) reports
        the same leader and that leader sees all of the cluster's peers current; else None."""
        names = names or [n.name for n in self.nodes if n.running()]
        leaders = set()
        for name in names:
            j = self.jsz(name)
            mc = (j or {}).get("meta_cluster") or {}
            leaders.add(mc.get("leader") or "")
        if len(leaders) != 1 or "" in leaders:
            return None
        leader = leaders.pop()
        if leader not in names:
            return None
        mc = (self.jsz(leader) or {}).get("meta_cluster") or {}
        peers = mc.get("replicas") or []
        if len(peers) + 1 != len(names) or not all(p.get("current") for p in peers):
            return None
        return leader

    def wait_meta_leader(self, timeout=30.0, names=None):
        end = time.monotonic() + timeout
        while True:
            leader = self.meta_leader(names)
            if leader:
                return leader
            if time.monotonic() > end:
                views = {n.name: ((self.jsz(n.name) or {}).get("meta_cluster"))
                         for n in self.nodes if n.running()}
                raise ClusterError(f"no meta leader after {timeout:.0f} s: {views}")
            time.sleep(0.1)

    def stream_view(self, name, stream):
        """(leader, replicas, state) of the stream as node name reports it, or None."""
        j = self.jsz(name, "?accounts=true&streams=true")
        for acc in (j or {}).get("account_details") or []:
            for sd in acc.get("stream_detail") or []:
                if sd.get("name") == stream:
                    cl = sd.get("cluster") or {}
                    return cl.get("leader") or "", cl.get("replicas") or [], sd.get("state") or {}
        return None

    def stream_leader(self, stream):
        """The stream's leader when a majority of the cluster's nodes name it and it is running
        and names itself; else None (no stream yet, an election under way, no quorum). A
        majority, because a restarted former leader may name itself for a moment."""
        votes = {}
        for n in self.nodes:
            if n.running():
                v = self.stream_view(n.name, stream)
                if v and v[0]:
                    votes[v[0]] = votes.get(v[0], 0) + 1
        for name, cnt in votes.items():
            if cnt * 2 > len(self.nodes) and self.node(name).running():
                lv = self.stream_view(name, stream)
                if lv and lv[0] == name:
                    return name
        return None

    def wait_stream_leader(self, stream, timeout=30.0, other_than=None):
        end = time.monotonic() + timeout
        while True:
            leader = self.stream_leader(stream)
            if leader and leader != other_than:
                return leader
            if time.monotonic() > end:
                raise ClusterError(f"no leader for stream {stream} after {timeout:.0f} s")
            time.sleep(0.1)

    def client_node(self, prefix):
        """The running node a client whose connection name starts with prefix is connected
        to, from each node's /connz; None when no node has it."""
        for n in self.nodes:
            if n.running():
                for c in (http_json(n.http, "/connz") or {}).get("connections") or []:
                    if (c.get("name") or "").startswith(prefix):
                        return n.name
        return None

    def stream_stepdown(self, stream, via):
        """Asks the stream's leader to step down (through node via); the reply as JSON."""
        mc = MiniClient(self.node(via).client)
        try:
            return mc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", {})
        finally:
            mc.close()

    def stream_state(self, stream):
        """The stream's state (messages, first_seq, last_seq, ...) as its leader reports it."""
        leader = self.stream_leader(stream)
        v = self.stream_view(leader, stream) if leader else None
        return v[2] if v else None

    def wait_replicas_current(self, stream, timeout=30.0):
        """Waits until the stream's leader sees every other node as a current replica (a
        restarted node has caught up)."""
        end = time.monotonic() + timeout
        while True:
            leader = self.stream_leader(stream)
            v = self.stream_view(leader, stream) if leader else None
            if v and len(v[1]) == len(self.nodes) - 1 and \
                    all(r.get("current") and not r.get("offline") for r in v[1]):
                return leader
            if time.monotonic() > end:
                raise ClusterError(f"stream {stream}: replicas not current after "
                                   f"{timeout:.0f} s: {v}")
            time.sleep(0.2)


class MiniClient:
    """Just enough of the NATS client protocol (CONNECT, SUB, PUB with a reply subject, MSG)
    to call the JetStream API once, for the harness's own check; the tests use lifemon."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self._line()  # INFO
        self.s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"lang":"py-it",'
                       b'"version":"0","protocol":1}\r\nSUB _INBOX.it 1\r\nPING\r\n')
        while self._line() != b"PONG":
            pass

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ClusterError("NATS connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def request(self, subject, payload):
        data = json.dumps(payload).encode()
        self.s.sendall(b"PUB %s _INBOX.it %d\r\n%s\r\n" % (subject.encode(), len(data), data))
        while True:
            line = self._line()
            if line == b"PING":
                self.s.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                while len(self.buf) < size + 2:
                    self.buf += self.s.recv(65536)
                body, self.buf = self.buf[:size], self.buf[size + 2:]
                return json.loads(body)
            elif line.startswith(b"-ERR"):
                raise ClusterError(line.decode())

    def close(self):
        self.s.close()


def selftest(rundir):
    import sys

    def say(msg):
        sys.stderr.write(f"INFO: nats_cluster: {msg}\n")

    c = Cluster(rundir, say)
    pids = []
    ok = False
    try:
        t0 = time.monotonic()
        c.start()
        pids = list(c.pids().values())
        leader = c.wait_meta_leader()
        say(f"meta leader {leader} after {time.monotonic() - t0:.2f} s")
        stream = f"H{os.getpid()}"
        for attempt in range(50):  # the meta leader may still be settling: retry briefly
            mc = MiniClient(c.nodes[0].client)
            r = mc.request(f"$JS.API.STREAM.CREATE.{stream}",
                           {"name": stream, "subjects": [f"h{os.getpid()}.>"], "num_replicas": 3,
                            "storage": "file"})
            mc.close()
            if "error" not in r:
                break
            time.sleep(0.2)
        if "error" in r:
            raise ClusterError(f"stream create: {r}")
        sl = c.wait_stream_leader(stream)
        say(f"stream {stream} leader {sl}; state {c.stream_state(stream)}")
        c.wait_replicas_current(stream)
        t1 = time.monotonic()
        c.stop(sl, signal.SIGKILL)
        nl = c.wait_stream_leader(stream, other_than=sl)
        say(f"after SIGKILL of {sl}: new stream leader {nl} in {time.monotonic() - t1:.2f} s")
        c.start([sl])
        pids.append(c.node(sl).pid)
        c.wait_replicas_current(stream)
        say(f"{sl} restarted (pid {c.node(sl).pid}) and current again")
        ok = True
    finally:
        c.stop_all()
    gone = [p for p in pids if os.path.exists(f"/proc/{p}") and
            open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    if gone:
        say(f"still running: {gone}")
        ok = False
    say("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: nats_cluster.py RUN_DIR")
    sys.exit(selftest(sys.argv[1]))
