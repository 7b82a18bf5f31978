#!/usr/bin/env python3
"""End-to-end benchmark of the logship agent: tail -> normalize -> redact ->
segment -> gzip -> dir bucket.

It builds nothing: give it a release binary with --bin. It makes a temp dir
with an input dir, a data dir and a dir bucket, writes an agent.toml, prepares
N MB of input (loghub lines from the shared corpus, each suffixed with a
counter so no two lines are identical; generated lines when the corpus is
absent), runs the agent until the checkpoint shows every input byte read,
stops it with SIGTERM (which seals and uploads everything, then exits 0),
and reports wall time, CPU seconds per GB of input and peak RSS from the
agent's own rusage (os.wait4), plus output size and ratio.

Correctness is checked, not assumed: the events in the bucket must number
exactly the input lines (with --deep, every event is parsed and the counter
suffixes and seq values must be exactly the expected sets), else it fails.

Units: MB and GB are 10^6 and 10^9 bytes; RSS is in MiB.
Stdlib only (Python 3.8+).
"""

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "corpus"))


def log(msg):
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


def base_lines(corpus):
    """Template lines: loghub lines if the corpus is there, else generated."""
    files = sorted(glob.glob(os.path.join(corpus, "loghub", "*.log")))
    lines = []
    for f in files:
        with open(f, "rb") as fh:
            for raw in fh.read().split(b"\n"):
                raw = raw.rstrip(b"\r")
                if raw.strip():
                    lines.append(raw)
    if lines:
        return lines, f"loghub ({len(files)} files, {len(lines)} distinct lines)"
    gen = []
    levels = [b"INFO", b"WARN", b"ERROR", b"DEBUG"]
    for i in range(4000):
        gen.append(
            b"2024-01-15T10:%02d:%02d.%03dZ %s [worker-%d] request served path=/api/v1/items/%d status=200 ms=%d"
            % (i // 60 % 60, i % 60, i % 1000, levels[i % 4], i % 8, i, i % 997)
        )
    return gen, "generated (corpus not found)"


def make_input(path, size, templates):
    """Write whole lines up to `size` bytes: template + ' #<counter>'.
    Returns (bytes, lines)."""
    n = 0
    written = 0
    block = []
    block_bytes = 0
    with open(path, "wb") as out:
        while written < size:
            t = templates[n % len(templates)]
            line = b"%s #%d\n" % (t, n)
            block.append(line)
            block_bytes += len(line)
            written += len(line)
            n += 1
            if block_bytes >= 1 << 20:
                out.write(b"".join(block))
                block, block_bytes = [], 0
        out.write(b"".join(block))
    return written, n


def write_config(tmp, level, input_dir):
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(
            f"""# written by bench/e2e.py
[agent]
instance_id = "bench"
data_dir = "{tmp}/data"
shutdown_timeout = "300s"
log_level = "warn"

[segments]
compression_level = {level}

[redaction]
enabled = true

[[sources]]
name = "app"
include = ["{input_dir}/*.log"]

[bucket]
kind = "dir"
path = "{tmp}/bucket"

[metrics]
enabled = false
"""
        )
    return cfg


def read_offsets(data_dir, input_dir):
    """Sum of checkpointed offsets of files in the input dir (0 if none)."""
    p = os.path.join(data_dir, "state", "checkpoint.json")
    try:
        with open(p, "rb") as f:
            cp = json.load(f)
    except (OSError, ValueError):
        return 0
    return sum(
        fs.get("offset", 0)
        for fs in cp.get("files", [])
        if os.path.dirname(fs.get("path", "")) == input_dir
    )


class LiveWriter(threading.Thread):
    """Appends `staged` to `dest` at `rate` bytes/s, in 50 ms ticks, cutting
    only at line ends so the agent never waits on a partial line for long."""

    def __init__(self, staged, dest, rate):
        super().__init__(daemon=True)
        self.staged, self.dest, self.rate = staged, dest, rate
        self.done_at = None
        self.error = None

    def run(self):
        try:
            tick = 0.05
            with open(self.staged, "rb") as src, open(self.dest, "ab") as out:
                data = src.read()
                pos = 0
                start = time.monotonic()
                while pos < len(data):
                    due = int((time.monotonic() - start) * self.rate)
                    if due > pos:
                        end = data.find(b"\n", min(due, len(data) - 1))
                        end = len(data) if end < 0 else end + 1
                        out.write(data[pos:end])
                        out.flush()
                        pos = end
                    time.sleep(tick)
            self.done_at = time.monotonic()
        except Exception as e:  # reported by the main thread
            self.error = e


class HwmPoller(threading.Thread):
    """Polls VmHWM (peak RSS of the process's own address space) every 20 ms
    until stopped. `ru_maxrss` from wait4 is not used for RSS: Linux carries
    the parent's (Python's) high-water mark into a child across fork/vfork
    and exec, so it overstates a small agent's peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.hwm_kib = pid, 0
        self.stop = threading.Event()

    def run(self):
        path = f"/proc/{self.pid}/status"
        while not self.stop.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self.stop.wait(0.02)


def wait4_rusage(pid, poller=None):
    _, status, ru = os.wait4(pid, 0)
    if poller is not None:
        poller.stop.set()
        poller.join()
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    return code, ru


def count_bucket(bucket, deep, expect_lines):
    """(objects, gz bytes, ndjson bytes, events); with `deep`, also checks
    counters and seq values are exactly the expected sets."""
    objs = sorted(glob.glob(os.path.join(bucket, "**", "*.gz"), recursive=True))
    gz_bytes = ndjson_bytes = events = 0
    counters = bytearray(expect_lines) if deep else None
    seqs = set() if deep else None
    bad = 0
    for o in objs:
        gz_bytes += os.path.getsize(o)
        with open(o, "rb") as f:
            raw = zlib.decompress(f.read(), 16 + zlib.MAX_WBITS)
        ndjson_bytes += len(raw)
        events += raw.count(b"\n")
        if deep:
            for line in raw.splitlines():
                ev = json.loads(line)
                seqs.add(ev["seq"])
                msg = ev["msg"]
                i = msg.rfind(" #")
                try:
                    c = int(msg[i + 2:])
                    counters[c] = min(counters[c] + 1, 255)
                except (ValueError, IndexError):
                    bad += 1
    if deep:
        missing = sum(1 for x in counters if x == 0)
        dup = sum(1 for x in counters if x > 1)
        if bad or missing or dup or len(seqs) != events:
            raise SystemExit(
                f"FAIL deep check: {missing} lines missing, {dup} duplicated, "
                f"{bad} without counter, {events - len(seqs)} repeated seq"
            )
    return len(objs), gz_bytes, ndjson_bytes, events


def run_agent(args, tmp, input_bytes, input_lines, staged):
    input_dir = os.path.join(tmp, "in")
    data_dir = os.path.join(tmp, "data")
    cfg = write_config(tmp, args.level, input_dir)
    dest = os.path.join(input_dir, "app.log")
    if args.mode == "live":
        open(dest, "wb").close()
    agent_log = open(os.path.join(tmp, "agent.log"), "wb")
    env = dict(os.environ)
    env.pop("LOGSHIP_CONFIG", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [args.bin, "run", "-c", cfg], stdout=agent_log, stderr=subprocess.STDOUT, env=env
    )
    poller = HwmPoller(proc.pid)
    poller.start()
    writer = None
    if args.mode == "live":
        writer = LiveWriter(staged, dest, args.rate * 1e6)
        writer.start()
    deadline = t0 + args.timeout
    t_read = None
    last_offset = -1
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"FAIL: agent exited early with {proc.returncode}; see {tmp}/agent.log")
        if writer is not None and writer.error:
            raise SystemExit(f"FAIL: live writer: {writer.error}")
        writer_done = writer is None or writer.done_at is not None
        offset = read_offsets(data_dir, input_dir)
        if args.progress and offset != last_offset:
            log(f"t={time.monotonic() - t0:7.2f}s checkpointed offset {offset / 1e6:8.1f} MB")
            last_offset = offset
        if writer_done and offset >= input_bytes:
            t_read = time.monotonic()
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"FAIL: timeout: input not fully read after {args.timeout}s")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    code, ru = wait4_rusage(proc.pid, poller)
    t_exit = time.monotonic()
    proc.returncode = code  # reaped by wait4; keep Popen from waiting again
    agent_log.close()
    if code != 0:
        raise SystemExit(f"FAIL: agent exited {code} after SIGTERM; see {tmp}/agent.log")
    lag = (t_read - writer.done_at) if writer is not None else None
    return {
        "wall": t_exit - t0,
        "read_wall": t_read - t0,
        "stop": t_exit - t_read,
        "lag": lag,
        "cpu": ru.ru_utime + ru.ru_stime,
        "utime": ru.ru_utime,
        "stime": ru.ru_stime,
        "hwm_kib": poller.hwm_kib,
    }


def compare_gzip(path, size):
    rows = []
    for lvl in (1, 6):
        with open(path, "rb") as src, open(os.devnull, "wb") as null:
            t0 = time.monotonic()
            p = subprocess.Popen(["gzip", f"-{lvl}", "-c"], stdin=src, stdout=subprocess.PIPE)
            poller = HwmPoller(p.pid)
            poller.start()
            out = 0
            while True:
                b = p.stdout.read(1 << 20)
                if not b:
                    break
                out += len(b)
            code, ru = wait4_rusage(p.pid, poller)
            p.returncode = code
            wall = time.monotonic() - t0
        cpu = ru.ru_utime + ru.ru_stime
        rows.append(
            f"| gzip -{lvl} | {size / 1e6:.0f} | {wall:.2f} | {size / 1e6 / wall:.1f} | "
            f"{cpu:.2f} | {cpu / (size / 1e9):.2f} | {poller.hwm_kib / 1024:.1f} | "
            f"{out / 1e6:.1f} | {size / out:.2f} |"
        )
    print("\n| tool | input MB | wall s | MB/s | CPU s | CPU s/GB | peak RSS MiB | out MB | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/logship", help="the logship binary (built by you)")
    ap.add_argument("--size-mb", type=float, default=200, help="input size in MB (10^6 bytes)")
    ap.add_argument("--level", type=int, default=6, help="segments.compression_level (1..9)")
    ap.add_argument("--mode", choices=["preload", "live"], default="preload",
                    help="preload: input written before the agent starts; live: appended while it runs")
    ap.add_argument("--rate", type=float, default=20, help="live mode: append rate in MB/s")
    ap.add_argument("--corpus", default=os.environ.get("LOGSHIP_CORPUS", DEFAULT_CORPUS))
    ap.add_argument("--tmp", default=None, help="parent of the temp dir (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--deep", action="store_true",
                    help="parse every event: no line missing or duplicated, seq unique")
    ap.add_argument("--compare", choices=["gzip"], help="also time gzip -1/-6 on the same input")
    ap.add_argument("--progress", action="store_true",
                    help="log each change of the checkpointed read offset")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before giving up")
    args = ap.parse_args()

    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"{args.bin} is not an executable; build it first: cargo build --release")
    args.bin = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="logship-e2e-", dir=args.tmp)
    os.makedirs(os.path.join(tmp, "in"))
    try:
        templates, origin = base_lines(args.corpus)
        size = int(args.size_mb * 1e6)
        staged = os.path.join(tmp, "staged.log")
        target = staged if args.mode == "live" else os.path.join(tmp, "in", "app.log")
        t = time.monotonic()
        input_bytes, input_lines = make_input(target, size, templates)
        log(f"input: {input_bytes} bytes, {input_lines} lines from {origin} "
            f"(made in {time.monotonic() - t:.1f}s) in {tmp}")
        r = run_agent(args, tmp, input_bytes, input_lines, staged)
        objs, gz_bytes, ndjson_bytes, events = count_bucket(
            os.path.join(tmp, "bucket"), args.deep, input_lines)
        if events != input_lines:
            raise SystemExit(f"FAIL: {events} events in the bucket for {input_lines} input lines")
        gb = input_bytes / 1e9
        log(f"ok: {events} events in {objs} objects == input lines"
            + (" (deep check passed)" if args.deep else ""))
        log(f"wall {r['wall']:.2f}s (all read at {r['read_wall']:.2f}s, stop took {r['stop']:.2f}s"
            + (f", read lag after writer end {r['lag']:.2f}s" if r["lag"] is not None else "")
            + f"); user {r['utime']:.2f}s sys {r['stime']:.2f}s; ndjson {ndjson_bytes / 1e6:.1f} MB")
        print("| mode | level | input MB | lines | wall s | lines/s | MB/s | CPU s | CPU s/GB "
              "| peak RSS MiB | gz MB | ratio (input/gz) | ratio (ndjson/gz) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        mode = args.mode if args.mode == "preload" else f"live {args.rate:g} MB/s"
        print(
            f"| {mode} | {args.level} | {input_bytes / 1e6:.0f} | {input_lines} | {r['wall']:.2f} | "
            f"{input_lines / r['wall']:.0f} | {input_bytes / 1e6 / r['wall']:.1f} | {r['cpu']:.2f} | "
            f"{r['cpu'] / gb:.2f} | {r['hwm_kib'] / 1024:.1f} | {gz_bytes / 1e6:.1f} | "
            f"{input_bytes / gz_bytes:.2f} | {ndjson_bytes / gz_bytes:.2f} |"
        )
        if args.compare == "gzip":
            compare_gzip(target, input_bytes)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
