#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# ws_sink: a minimal WebSocket client for bench/storm.sh (python3 standard library only).
# Connects to lifemon's /ws with a hand-written RFC 6455 handshake, writes the payload of
# every text message (JSON lines) to a file, answers pings, and prints a one-line summary
# on stderr when the server closes or on SIGTERM/SIGINT.
import argparse
import base64
import hashlib
import os
import signal
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop()


def handshake(sock, host, port, path):
    key = base64.b64encode(os.urandom(16))
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    sock.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed during handshake")
        buf += chunk
        if len(buf) > 65536:
            raise ConnectionError("handshake response too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    if " 101 " not in lines[0] + " ":
        raise ConnectionError(f"upgrade refused: {lines[0]}")
    want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("sec-websocket-accept") != want:
        raise ConnectionError("bad Sec-WebSocket-Accept")
    return rest


def send_frame(sock, opcode, payload=b""):
    """Client frames must be masked (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    sock.sendall(hdr + mask + masked)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    ap.add_argument("--out", required=True, help="file for the received JSON lines")
    args = ap.parse_args()

    if not args.url.startswith("ws://"):
        sys.exit("ws_sink: only ws:// URLs")
    hostport, _, path = args.url[5:].partition("/")
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    path = "/" + path

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    out = open(args.out, "ab")
    stats = {"messages": 0, "bytes": 0, "pings": 0}
    why = "eof"
    t0 = time.monotonic()
    sock = None
    try:
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        buf = bytearray(handshake(sock, host, port, path))
        print("ws_sink: connected", file=sys.stderr, flush=True)
        pos = 0
        frag = []
        while True:
            # parse every complete frame in buf[pos:]
            while True:
                avail = len(buf) - pos
                if avail < 2:
                    break
                b0, b1 = buf[pos], buf[pos + 1]
                opcode, fin = b0 & 0x0F, b0 & 0x80
                n = b1 & 0x7F
                hl = 2
                if n == 126:
                    if avail < 4:
                        break
                    n = struct.unpack_from("!H", buf, pos + 2)[0]
                    hl = 4
                elif n == 127:
                    if avail < 10:
                        break
                    n = struct.unpack_from("!Q", buf, pos + 2)[0]
                    hl = 10
                mask = None
                if b1 & 0x80:
                    if avail < hl + 4:
                        break
                    mask = bytes(buf[pos + hl:pos + hl + 4])
                    hl += 4
                if avail < hl + n:
                    break
                payload = bytes(buf[pos + hl:pos + hl + n])
                pos += hl + n
                if mask:
                    payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
                if opcode in (0x0, 0x1, 0x2):
                    frag.append(payload)
                    if fin:
                        data = b"".join(frag)
                        frag = []
                        out.write(data)
                        stats["messages"] += 1
                        stats["bytes"] += len(data)
                elif opcode == 0x8:
                    send_frame(sock, 0x8, payload[:2])
                    why = "close"
                    raise Stop()
                elif opcode == 0x9:
                    stats["pings"] += 1
                    send_frame(sock, 0xA, payload)
            if pos:
                del buf[:pos]
                pos = 0
            out.flush()
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    except Stop:
        if why == "eof":
            why = "signal"
    except (ConnectionError, OSError) as e:
        why = f"error: {e}"
    finally:
        out.flush()
        out.close()
        if sock:
            sock.close()
    print(f"ws_sink: {why}: messages={stats['messages']} bytes={stats['bytes']} "
          f"pings={stats['pings']} seconds={time.monotonic() - t0:.1f}",
          file=sys.stderr, flush=True)
    return 0 if why in ("eof", "close", "signal") else 1


if __name__ == "__main__":
    sys.exit(main())
