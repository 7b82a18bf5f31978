#!/usr/bin/env python3
"""Live-tail benchmark: append -> SSE client latency (p50/p99), and the
agent's CPU for the same workload with 50 tail clients attached vs none.

Starts `logship run` (release build) with `[api]` on a loopback port, one
source, the default commit interval. Latency: a writer appends one line
every 10 ms carrying its wall-clock send time; an SSE client records the
receive time of each. CPU: --lines lines appended at a fixed rate, the
agent's utime+stime (from /proc) over that window, once with 0 clients and
once with 50 clients each reading everything.

Usage: bench/tail.py [--logship PATH] [--lines 100000] [--rate 20000]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Client(threading.Thread):
    def __init__(self, port, on_event=None):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /api/tail HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench\r\n\r\n".encode())
        self.on_event = on_event
        self.count = 0

    def run(self):
        f = self.sock.makefile("rb")
        for line in f:
            if line.startswith(b"data: "):
                self.count += 1
                if self.on_event:
                    self.on_event(line[6:])


def append_paced(path, n, rate, make):
    with open(path, "a") as f:
        t0 = time.monotonic()
        batch = max(1, rate // 100)
        for i in range(0, n, batch):
            f.write("".join(make(j) + "\n" for j in range(i, min(n, i + batch))))
            f.flush()
            sleep = t0 + (i + batch) / rate - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logship", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "logship"))
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=20_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="logship-tbench-")
    os.makedirs(f"{tmp}/logs")
    port = free_port()
    with open(f"{tmp}/agent.toml", "w") as f:
        f.write(f'[agent]\ninstance_id = "bench"\ndata_dir = "{tmp}/data"\n[[sources]]\nname = "app"\ninclude = ["{tmp}/logs/*.log"]\n'
                f'[metrics]\nenabled = false\n[api]\nlisten = "127.0.0.1:{port}"\ntoken = "bench"\n')
    agent = subprocess.Popen([a.logship, "run", "-c", f"{tmp}/agent.toml"], stderr=open(f"{tmp}/agent.err", "w"))
    time.sleep(1.5)
    print(f"load average before: {os.getloadavg()}")
    # Latency.
    lat = []

    def on_event(data):
        e = json.loads(data)
        if e["msg"].startswith("lat "):
            lat.append(time.time() * 1000 - int(e["msg"].split()[1]) / 1000)

    c = Client(port, on_event)
    c.start()
    time.sleep(0.3)
    with open(f"{tmp}/logs/lat.log", "a") as f:
        for i in range(500):
            f.write(f"lat {int(time.time() * 1_000_000)}\n")
            f.flush()
            time.sleep(0.01)
    time.sleep(1)
    lat.sort()
    if lat:
        print(f"tail latency append->SSE over {len(lat)} events: p50 {lat[len(lat) // 2]:.1f} ms, p99 {lat[int(len(lat) * 0.99)]:.1f} ms, max {lat[-1]:.1f} ms")
    c.sock.close()
    # CPU, none vs 50 clients.
    pad = "x" * 150
    for clients in (0, 50, 0, 50):
        cs = [Client(port) for _ in range(clients)]
        for x in cs:
            x.start()
        time.sleep(0.5)
        before = cpu_seconds(agent.pid)
        t = time.monotonic()
        append_paced(f"{tmp}/logs/cpu-{clients}-{time.monotonic_ns()}.log", a.lines, a.rate, lambda j: f"INFO request {j} {pad}")
        time.sleep(2)  # let the agent finish the lines
        used = cpu_seconds(agent.pid) - before
        got = min((x.count for x in cs), default=0)
        print(f"{clients:2} tail clients: agent CPU {used:.2f} s for {a.lines} lines in {time.monotonic() - t:.1f} s; slowest client got {got}")
        for x in cs:
            x.sock.close()
        time.sleep(1)
    print(f"load average after: {os.getloadavg()}")
    agent.terminate()
    agent.wait()
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
