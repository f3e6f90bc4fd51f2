#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Checks deploy/kubernetes/: every YAML document parses (Debian's python3-yaml) and the fields
# that decide whether lifemon runs and is reachable agree with each other and with lifemon:
# kinds and apiVersions, namespace, hostPID, the capabilities (the systemd unit's set, minus
# what only --user needs), the volumes behind every mount, the NATS URL from a ConfigMap key
# that exists, the credentials file from the Secret's key, probes, annotations and the Service
# on the port lifemon listens on; and every option the DaemonSet or deploy/default/lifemon
# names is one LIFEMON --help lists. Runs LIFEMON --help only. Exit 0, or 1 with every
# problem listed.
#   deploy_yaml.py SOURCE_DIR LIFEMON
import os
import re
import subprocess
import sys

import yaml

KNOWN = {
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
    ("apps/v1", "DaemonSet"), ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
# what lifemon needs only with --user (see deploy/systemd/lifemon.service)
USER_CAPS = {"SETUID", "SETGID", "CHOWN"}

problems = []


def fail(msg):
    problems.append(msg)


def load(kdir):
    docs = {}  # file name -> list of documents
    for name in sorted(os.listdir(kdir)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(kdir, name), encoding="utf-8") as f:
            try:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                fail(f"{name}: does not parse: {e}")
                continue
        if not docs[name]:
            fail(f"{name}: no YAML document")
        for d in docs[name]:
            if not isinstance(d, dict):
                fail(f"{name}: a document is not a mapping")
            elif (d.get("apiVersion"), d.get("kind")) not in KNOWN:
                fail(f"{name}: unexpected apiVersion/kind {d.get('apiVersion')}/{d.get('kind')}")
    return docs


def one(docs, kind):
    found = [(n, d) for n, ds in docs.items() for d in ds
             if isinstance(d, dict) and d.get("kind") == kind]
    if len(found) != 1:
        fail(f"want exactly one {kind}, found {len(found)}")
        return None, {}
    return found[0]


def unit_caps(src):
    """CapabilityBoundingSet of the systemd unit, without the CAP_ prefix."""
    path = os.path.join(src, "deploy/systemd/lifemon.service")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return {c.removeprefix("CAP_") for c in line.split("=", 1)[1].split()}
    fail(f"{path}: no CapabilityBoundingSet=")
    return set()


def arg_value(args, opt):
    """Values of --opt=VALUE or --opt VALUE in a container's args."""
    vals = []
    for i, a in enumerate(args):
        if a.startswith(opt + "="):
            vals.append(a[len(opt) + 1:])
        elif a == opt and i + 1 < len(args):
            vals.append(args[i + 1])
    return vals


def check_probe(c, kind, ports):
    p = c.get(kind)
    if not p:
        fail(f"container {c.get('name')}: no {kind}")
        return
    get = p.get("httpGet") or {}
    if get.get("path") != "/healthz":
        fail(f"{kind}: httpGet.path {get.get('path')!r}, want /healthz")
    port = get.get("port")
    if ports.get(port) is None:
        fail(f"{kind}: port {port!r} is not a container port")
    elif ports[port] != ports.get("http"):
        fail(f"{kind}: port {port!r} is not the port lifemon listens on")


def check_daemonset(ds, cm, secret, caps_unit):
    spec = ds.get("spec") or {}
    tmpl = spec.get("template") or {}
    meta = tmpl.get("metadata") or {}
    pod = tmpl.get("spec") or {}
    labels = meta.get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        fail(f"DaemonSet selector {sel} does not match the pod labels {labels}")
    if pod.get("hostPID") is not True:
        fail("DaemonSet: hostPID must be true (event pids are the host's)")
    if pod.get("hostNetwork") is True and pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        fail("DaemonSet: hostNetwork without dnsPolicy ClusterFirstWithHostNet cannot resolve "
             "the cluster's Service names")
    if pod.get("automountServiceAccountToken") is not False:
        fail("DaemonSet: lifemon needs no API token: automountServiceAccountToken false")
    if not any(t.get("operator") == "Exists" and "key" not in t
               for t in pod.get("tolerations") or []):
        fail("DaemonSet: no toleration for every taint: tainted nodes go unwatched")

    ctrs = pod.get("containers") or []
    if len(ctrs) != 1:
        fail(f"DaemonSet: want one container, found {len(ctrs)}")
        return
    c = ctrs[0]
    if "command" in c:
        fail("container: command overrides the image's entrypoint (/usr/local/bin/lifemon)")
    args = [str(a) for a in c.get("args") or []]
    if not args or any(not a.startswith("--") for a in args if "=" in a or a.startswith("-")):
        fail(f"container: args {args} are not lifemon options")

    env = {e.get("name"): e for e in c.get("env") or []}
    for a in args:
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
            if var not in env:
                fail(f"arg {a}: $({var}) is not in the container's env")

    ports = {}
    for p in c.get("ports") or []:
        ports[p.get("name")] = p.get("containerPort")
        ports[p.get("containerPort")] = p.get("containerPort")
    if "http" not in ports:
        fail("container: no port named http")

    listen = arg_value(args, "--listen")
    if len(listen) != 1:
        fail(f"container: want one --listen, found {listen}")
    else:
        m = re.fullmatch(r"(.+):(\d+)", listen[0])
        if not m:
            fail(f"--listen {listen[0]}: not HOST:PORT")
        else:
            if int(m.group(2)) != ports.get("http"):
                fail(f"--listen port {m.group(2)} is not containerPort {ports.get('http')}")
            if m.group(1) == "$(POD_IP)":
                ref = (env.get("POD_IP", {}).get("valueFrom") or {}).get("fieldRef") or {}
                if ref.get("fieldPath") != "status.podIP":
                    fail("env POD_IP does not come from status.podIP")
            elif m.group(1) in ("0.0.0.0", "[::]"):
                # the kubelet and Prometheus send the pod IP as Host: it must be allowed
                if not any("$(POD_IP)" in h for h in arg_value(args, "--allow-host")):
                    fail("--listen on any address answers only Host names it knows: "
                         "add --allow-host=$(POD_IP) for the probes and Prometheus")

    ann = meta.get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true":
        fail("pod annotation prometheus.io/scrape is not \"true\"")
    if ann.get("prometheus.io/path") != "/metrics":
        fail("pod annotation prometheus.io/path is not /metrics")
    if ann.get("prometheus.io/port") != str(ports.get("http")):
        fail(f"pod annotation prometheus.io/port {ann.get('prometheus.io/port')!r} is not "
             f"containerPort {ports.get('http')}")

    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        check_probe(c, kind, ports)

    # NATS: the URL from a ConfigMap key that exists, the credentials from the Secret's key
    nats = arg_value(args, "--nats")
    if nats != ["$(NATS_URL)"]:
        fail(f"container: --nats {nats}, want --nats=$(NATS_URL)")
    ref = (env.get("NATS_URL", {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
    cm_name = (cm.get("metadata") or {}).get("name")
    if ref.get("name") != cm_name:
        fail(f"NATS_URL comes from ConfigMap {ref.get('name')!r}, not {cm_name!r}")
    url = (cm.get("data") or {}).get(ref.get("key"))
    if not url:
        fail(f"ConfigMap {cm_name} has no key {ref.get('key')!r}")
    elif not all(re.fullmatch(r"(nats|tls)://[^,\s]+:\d+", u) for u in url.split(",")):
        fail(f"ConfigMap {cm_name}: {url!r} is not a list of nats:// URLs")

    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = c.get("volumeMounts") or []
    used = set()
    for m in mounts:
        v = vols.get(m.get("name"))
        used.add(m.get("name"))
        if v is None:
            fail(f"volumeMount {m.get('name')} has no volume")
            continue
        if "hostPath" in v and m.get("readOnly") is not True:
            fail(f"volumeMount {m.get('name')}: host paths are mounted read-only")
    for name in vols:
        if name not in used:
            fail(f"volume {name} is mounted nowhere")
    want_host = {"/sys/kernel/btf": "/sys/kernel/btf", "/sys/fs/cgroup": "/sys/fs/cgroup"}
    for hp, mp in want_host.items():
        if not any((vols.get(m.get("name"), {}).get("hostPath") or {}).get("path") == hp and
                   m.get("mountPath") == mp for m in mounts):
            fail(f"no read-only hostPath {hp} mounted at {mp}")

    creds = arg_value(args, "--nats-creds")
    if len(creds) != 1:
        fail(f"container: want one --nats-creds FILE, found {creds}")
    else:
        d, base = os.path.split(creds[0])
        m = next((m for m in mounts if m.get("mountPath") == d), None)
        sv = (vols.get(m.get("name")) or {}).get("secret") if m else None
        if not sv:
            fail(f"--nats-creds {creds[0]}: {d} is not a Secret volume's mount")
        else:
            sname = (secret.get("metadata") or {}).get("name")
            if sv.get("secretName") != sname:
                fail(f"creds volume uses Secret {sv.get('secretName')!r}, the example is "
                     f"{sname!r}")
            keys = set((secret.get("stringData") or {}).keys()) | \
                set((secret.get("data") or {}).keys())
            items = {i.get("path"): i.get("key") for i in sv.get("items") or []}
            key = items.get(base, base if not items else None)
            if key not in keys:
                fail(f"--nats-creds {creds[0]}: Secret key {key!r} not in {sorted(keys)}")

    sc = c.get("securityContext") or {}
    if sc.get("runAsUser") != 0:
        fail("securityContext.runAsUser must be 0: lifemon refuses to start otherwise")
    capsc = sc.get("capabilities") or {}
    add = set(capsc.get("add") or [])
    if sc.get("privileged") is not True:
        want = caps_unit - (set() if arg_value(args, "--user") else USER_CAPS)
        if add != want:
            fail(f"capabilities.add {sorted(add)} is not the systemd unit's set {sorted(want)}")
        if "ALL" not in (capsc.get("drop") or []):
            fail("capabilities: drop ALL first")
    if "SYS_ADMIN" in add and sc.get("allowPrivilegeEscalation") is False:
        fail("Kubernetes refuses allowPrivilegeEscalation false with SYS_ADMIN")
    sink_args = [a for a in args if a == "--stdout" or a.startswith("--output")]
    if (sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault" and sink_args:
        fail(f"{sink_args}: these sinks use io_uring, which runtime default seccomp "
             "profiles may refuse")
    if sc.get("readOnlyRootFilesystem") is True:
        for out in arg_value(args, "--output"):
            d = os.path.dirname(out)
            if not any(m.get("mountPath") == d and not m.get("readOnly") for m in mounts):
                fail(f"--output {out}: the root file system is read-only and {d} is no "
                     "writable volume")

    res = c.get("resources") or {}
    for k in ("cpu", "memory"):
        if k not in (res.get("requests") or {}):
            fail(f"resources.requests.{k} missing")
    if "memory" not in (res.get("limits") or {}):
        fail("resources.limits.memory missing")
    if "cpu" in (res.get("limits") or {}):
        fail("resources.limits.cpu: a throttled reader loses events in bursts")
    return labels, ports


def check_service(svc, labels, ports):
    spec = svc.get("spec") or {}
    sel = spec.get("selector") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        fail(f"Service selector {sel} does not match the pod labels {labels}")
    if spec.get("clusterIP") != "None":
        fail("Service: clusterIP None, so each node's metrics are reached on their own")
    sp = spec.get("ports") or []
    if len(sp) != 1:
        fail(f"Service: want one port, found {len(sp)}")
        return
    tp = sp[0].get("targetPort", sp[0].get("port"))
    if ports.get(tp) != ports.get("http") or sp[0].get("port") != ports.get("http"):
        fail(f"Service port {sp[0].get('port')} -> {tp!r} is not lifemon's port "
             f"{ports.get('http')}")


def check_options(src, lifemon, ds):
    """Every --option in the DaemonSet's args and in the default file is lifemon's."""
    helptext = subprocess.run([lifemon, "--help"], capture_output=True, text=True,
                              check=True).stdout
    known = set(re.findall(r"(--[a-z][a-z-]*)", helptext))
    ctrs = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    for c in ctrs or []:
        for a in c.get("args") or []:
            opt = str(a).split("=", 1)[0]
            if opt.startswith("--") and opt not in known:
                fail(f"DaemonSet arg {a}: lifemon --help has no {opt}")
    path = os.path.join(src, "deploy/default/lifemon")
    with open(path, encoding="utf-8") as f:
        for opt in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", f.read()))):
            if opt not in known:
                fail(f"deploy/default/lifemon names {opt}, which lifemon --help lacks")


def main():
    if len(sys.argv) != 3:
        print("usage: deploy_yaml.py SOURCE_DIR LIFEMON", file=sys.stderr)
        return 2
    src = sys.argv[1]
    kdir = os.path.join(src, "deploy/kubernetes")
    docs = load(kdir)

    _, kust = one(docs, "Kustomization")
    _, ns = one(docs, "Namespace")
    _, cm = one(docs, "ConfigMap")
    sfile, secret = one(docs, "Secret")
    _, ds = one(docs, "DaemonSet")
    _, svc = one(docs, "Service")

    nsname = (ns.get("metadata") or {}).get("name")
    if kust.get("namespace") != nsname:
        fail(f"kustomization namespace {kust.get('namespace')!r} is not {nsname!r}")
    if (ns.get("metadata", {}).get("labels") or {}).get(
            "pod-security.kubernetes.io/enforce") != "privileged":
        fail("Namespace: host namespaces and paths need Pod Security level privileged")
    for name, ds_ in docs.items():
        for d in ds_:
            if isinstance(d, dict) and d.get("kind") not in ("Namespace", "Kustomization") \
                    and (d.get("metadata") or {}).get("namespace") != nsname:
                fail(f"{name}: {d.get('kind')} is not in namespace {nsname}")
    want = sorted(n for n in docs if n != "kustomization.yaml" and ".example." not in n)
    have = kust.get("resources") or []
    if sorted(have) != want:
        fail(f"kustomization resources {have}, want {want}")
    if sfile and ".example." not in sfile:
        fail(f"{sfile}: a Secret is an example, never applied from the repository")

    labels, ports = check_daemonset(ds, cm, secret, unit_caps(src)) or ({}, {})
    check_service(svc, labels, ports)
    check_options(src, sys.argv[2], ds)

    for p in problems:
        print(f"FAIL: deploy_yaml: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"deploy_yaml: {sum(len(d) for d in docs.values())} documents in {len(docs)} files "
          "consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
