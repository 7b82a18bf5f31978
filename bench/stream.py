#!/usr/bin/env python3
"""Throughput of an `http_ndjson` event-stream source (SPEC §11): HTTP
response -> bounded line splitter -> queue -> de-duplication -> normalize ->
redact -> segment -> gzip -> dir bucket.

It builds nothing: give it a release binary with --bin. It prepares N events
`{"id","created","ts","level","msg"}` (msg: loghub lines from the shared
corpus when present, else generated text), serves them from a local HTTP
server as one long-lived response (chunked, left open like `follow=1`),
runs the agent until its checkpoint shows the stream's cursor at the last
event, stops it with SIGTERM (seal, upload, exit 0) and reports wall time,
events/s, the agent's CPU (user+sys from wait4) per GB of NDJSON input and
its peak RSS (VmHWM, polled).

The floor is measured in the same run: `gzip -1` over the same NDJSON.
Correctness is checked: the bucket must hold every event id exactly once.

Stdlib only (Python 3.8+). MB/GB are 10^6/10^9 bytes.
"""

import argparse
import glob
import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared", "corpus", "loghub")


def messages(n):
    lines = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "**", "*.log"), recursive=True)):
        with open(path, errors="replace") as f:
            for line in f:
                lines.append(line.rstrip("\n"))
                if len(lines) >= n:
                    return lines
    i = len(lines)
    while len(lines) < n:
        lines.append(f"worker {i % 17} handled request {i} in {i % 997} ms path=/api/v1/items/{i}")
        i += 1
    return lines


def watch_hwm(pid, out, stop):
    """Peak RSS (VmHWM) of the agent's own address space, polled every
    20 ms: wait4's ru_maxrss would include this script's high-water mark,
    which Linux carries into a child across fork and exec."""
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[0] = max(out[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        stop.wait(0.02)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--events", type=int, default=500_000)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="logship-stream-bench-")
    base = int(time.time() * 1000) - 3_600_000
    levels = ["info", "warn", "error", "debug"]
    body = bytearray()
    for i, m in enumerate(messages(args.events)):
        ev = {"id": f"e-{i}", "created": i, "ts": base + i, "level": levels[i % 4], "msg": f"{m} #{i}"}
        body += json.dumps(ev).encode() + b"\n"
    data = bytes(body)
    input_path = os.path.join(tmp, "input.ndjson")
    with open(input_path, "wb") as f:
        f.write(data)
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/x-ndjson")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            since = -1
            if "since=" in self.path:
                since = int(self.path.split("since=")[1].split("&")[0])
            start = 0 if since < 0 else data.find(f'"created": {since},'.encode())
            start = data.rfind(b"\n", 0, max(start, 0)) + 1 if start > 0 else 0
            view = memoryview(data)[start:]
            step = 256 * 1024
            try:
                for off in range(0, len(view), step):
                    chunk = view[off : off + step]
                    self.wfile.write(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
                while not done.wait(0.5):
                    pass  # follow=1: stays open
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream?follow=1"
    data_dir = os.path.join(tmp, "data")
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(
            f"""
[agent]
instance_id = "bench"
data_dir = "{data_dir}"
log_level = "warn"

[[sources]]
name = "events"
kind = "http_ndjson"
tier = "system"
url = "{url}"
id_field = "id"
cursor_field = "created"

[metrics]
enabled = false
"""
        )
    last = str(args.events - 1)
    t0 = time.time()
    agent = subprocess.Popen([args.bin, "run", "-c", cfg], stderr=open(os.path.join(tmp, "agent.stderr"), "w"))
    hwm, hwm_stop = [0], threading.Event()
    threading.Thread(target=watch_hwm, args=(agent.pid, hwm, hwm_stop), daemon=True).start()
    cp_path = os.path.join(data_dir, "state", "checkpoint.json")
    while True:
        time.sleep(0.05)
        try:
            with open(cp_path) as f:
                cp = json.load(f)
            if any(s.get("cursor") == last for s in cp.get("streams", [])):
                break
        except (OSError, ValueError):
            pass
        if agent.poll() is not None:
            sys.exit("agent exited early; see " + tmp)
    read_s = time.time() - t0
    agent.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(agent.pid, 0)
    hwm_stop.set()
    done.set()
    server.shutdown()
    cpu = ru.ru_utime + ru.ru_stime
    if status != 0:
        sys.exit(f"agent exit status {status}; see {tmp}")

    ids = {}
    for obj in glob.glob(os.path.join(data_dir, "bucket", "**", "*.ndjson.gz"), recursive=True):
        with gzip.open(obj) as g:
            for line in g:
                ev = json.loads(line)
                # The stream's `id` field lands in data.id.
                k = ev["data"]["id"]
                ids[k] = ids.get(k, 0) + 1
    dups = sum(1 for v in ids.values() if v > 1)
    if len(ids) != args.events or dups:
        sys.exit(f"bucket has {len(ids)} ids ({dups} duplicated), expected {args.events}; see {tmp}")

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["gzip", "-1", "-c", input_path], stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    gz = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    gb = len(data) / 1e9
    print(
        json.dumps(
            {
                "events": args.events,
                "input_mb": round(len(data) / 1e6, 1),
                "until_cursor_s": round(read_s, 2),
                "events_per_s": round(args.events / read_s),
                "agent_cpu_s": round(cpu, 2),
                "agent_cpu_s_per_gb": round(cpu / gb, 1),
                "gzip1_cpu_s_per_gb": round(gz / gb, 1),
                "ratio_to_gzip1": round(cpu / gz, 2),
                "peak_rss_mib": round(hwm[0] / 1024, 1),
                "load_avg": round(os.getloadavg()[0], 2),
            }
        )
    )
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
