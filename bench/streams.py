#!/usr/bin/env python3
"""Pipeline throughput with `[streams]` (SPEC §12) on and off, in the same
run, on the same input, and with Redis stopped; optionally with
`[bucket.retention]` (SPEC §13) splitting segments by level.

Builds nothing: give it a release binary with --bin. Reuses bench/e2e.py
(input from the shared loghub corpus, the agent run until every input byte
is checkpointed, SIGTERM, CPU from wait4, the bucket checked to hold exactly
the input lines) and runs these variants, interleaved round by round so
they see the same machine load:

- off:       no [streams]
- on:        [streams] publishing every event (tier "system", i.e. all of
             the input) to a redis-server started here on loopback
- on-other-tiers: [streams] with the default tiers (deploy, build) while
             the input is all system: what configuring it costs the rest
- stopped:   [streams] pointing at a loopback port nobody listens on
             (Redis down for the whole run: the queue fills, drops counted)
- retention: no [streams], [bucket.retention] debug=1 info=7 warn=14 error=30
             (only with --retention)

After each `on` run the stream's `entries-added` (XINFO STREAM) says how
many events reached Redis; after each `stopped` run the agent's log must
hold the one "Redis unreachable" warning. The `gzip -1` floor is measured in
the same run, over the same input, after each round; CPU is reported as a
ratio to it because absolute CPU differs about 2x between machines here.

Stdlib only. Units as in e2e.py (MB = 10^6 bytes).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402


def log(msg):
    print(f"[streams] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise SystemExit("FAIL: redis-server did not answer PING")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return r.stdout.strip()

    def entries_added(self, key):
        out = self.cli("XINFO", "STREAM", key).split("\n")
        for k, v in zip(out, out[1:]):
            if k == "entries-added":
                return int(v)
        return 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def variant_toml(name, redis_port, dead_port, maxlen, queue):
    q = f"queue = {queue}\n" if queue else ""
    if name == "on":
        return f'\n[streams]\nredis_url = "redis://127.0.0.1:{redis_port}"\ntiers = ["system"]\nmaxlen = {maxlen}\n{q}'
    if name == "on-other-tiers":
        return f'\n[streams]\nredis_url = "redis://127.0.0.1:{redis_port}"\ntiers = ["deploy", "build"]\nmaxlen = {maxlen}\n{q}'
    if name == "stopped":
        return f'\n[streams]\nredis_url = "redis://127.0.0.1:{dead_port}"\ntiers = ["system"]\nmaxlen = {maxlen}\n{q}'
    if name == "retention":
        return "\n[bucket.retention]\ndebug = 1\ninfo = 7\nwarn = 14\nerror = 30\n"
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/logship")
    ap.add_argument("--size-mb", type=float, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--maxlen", type=int, default=10000)
    ap.add_argument("--queue", type=int, default=None, help="streams.queue (default: the agent's, 10000)")
    ap.add_argument("--retention", action="store_true", help="also run the [bucket.retention] variant")
    ap.add_argument("--corpus", default=os.environ.get("LOGSHIP_CORPUS", e2e.DEFAULT_CORPUS))
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"{args.bin} is not an executable; build it first: cargo build --release")
    args.bin = os.path.abspath(args.bin)
    # What e2e's helpers read from their own arguments.
    e2e_args = argparse.Namespace(
        bin=args.bin, level=None, max_bytes=None, no_redact=False, mode="preload", rate=0,
        timeout=1800, progress=False, concurrency=None, bucket="dir", deep=False)
    tmp = tempfile.mkdtemp(prefix="logship-streams-", dir=args.tmp)
    os.makedirs(os.path.join(tmp, "in"))
    redis = Redis(tmp)
    dead_port = free_port()
    variants = ["off", "on", "on-other-tiers", "stopped"] + (["retention"] if args.retention else [])
    results = {v: [] for v in variants}
    floors = []
    try:
        templates, origin = e2e.base_lines(args.corpus)
        inputs = [os.path.join(tmp, "in", "app0.log")]
        input_bytes, input_lines = e2e.make_input(inputs, int(args.size_mb * 1e6), templates)
        log(f"input: {input_bytes} bytes, {input_lines} lines from {origin}; redis on {redis.port}")
        for i in range(args.rounds):
            for v in variants:
                shutil.rmtree(os.path.join(tmp, "data"), ignore_errors=True)
                shutil.rmtree(os.path.join(tmp, "bucket"), ignore_errors=True)
                open(os.path.join(tmp, "agent.log"), "w").close()
                redis.cli("DEL", "logship:system")
                bucket = e2e.bucket_toml(e2e_args, tmp, None, "") + variant_toml(v, redis.port, dead_port, args.maxlen, args.queue)
                cfg = e2e.write_config(tmp, e2e_args, os.path.join(tmp, "in"), bucket)
                r = e2e.run_agent(e2e_args, tmp, cfg, input_bytes, [])
                t = e2e.count_bucket(os.path.join(tmp, "bucket"), None, "", False, input_lines)
                if t.events != input_lines:
                    raise SystemExit(f"FAIL: {v}: {t.events} events in the bucket for {input_lines} lines")
                r["objects"] = t.objects
                if v == "on":
                    r["published"] = redis.entries_added("logship:system")
                    r["xlen"] = int(redis.cli("XLEN", "logship:system") or 0)
                if v == "stopped":
                    with open(os.path.join(tmp, "agent.log")) as f:
                        text = f.read()
                    r["warnings"] = text.count("Redis unreachable or too slow")
                    if r["warnings"] != 1:
                        raise SystemExit(f"FAIL: stopped: {r['warnings']} 'Redis unreachable' warnings, want 1")
                results[v].append(r)
                extra = ""
                if v == "on":
                    extra = f", {r['published']} events published, XLEN {r['xlen']}"
                log(f"round {i} {v}: wall {r['wall']:.2f}s CPU {r['cpu']:.2f}s, {t.objects} objects{extra}")
            floors.append(e2e.gzip_floor(inputs)[1][0])
            log(f"round {i}: gzip -1 CPU {floors[-1]:.2f}s")
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    gb = input_bytes / 1e9
    floor = statistics.median(floors)
    base_wall = statistics.median(r["wall"] for r in results["off"])
    base_cpu = statistics.median(r["cpu"] for r in results["off"])
    print(f"\n{args.rounds} round(s), {input_bytes / 1e6:.0f} MB / {input_lines} lines; medians; "
          f"gzip -1 of the same input in the same run: {floor:.2f} s CPU ({floor / gb:.2f} s/GB)")
    print("| variant | wall s | MB/s | vs off | CPU s | CPU / gzip -1 | CPU vs off | objects | published |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for v in variants:
        rs = results[v]
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        pub = "–"
        if v == "on":
            pub = f"{statistics.median(r['published'] for r in rs):.0f} / {input_lines}"
        if v == "stopped":
            pub = "0 (1 warning)"
        print(f"| {v} | {wall:.2f} | {input_bytes / 1e6 / wall:.1f} | {wall / base_wall:.2f}x | {cpu:.2f} | "
              f"{cpu / floor:.2f} | {cpu / base_cpu:.2f}x | {rs[0]['objects']} | {pub} |")


if __name__ == "__main__":
    main()
