#!/usr/bin/env python3
"""End-to-end benchmark of the logship agent: tail -> normalize -> redact ->
segment -> gzip -> bucket. The bucket is a local directory (`--bucket dir`)
or, as in production, S3 (`--bucket s3`): a Garage server that the harness
starts on loopback, configured like the tests' (tests/support/garage.rs).

It builds nothing: give it a release binary with --bin. It makes a temp dir
with an input dir, a data dir and a bucket, writes an agent.toml, prepares
N MB of input (loghub lines from the shared corpus, each suffixed with a
counter so no two lines are identical; generated lines when the corpus is
absent), runs the agent until the checkpoint shows every input byte read,
stops it with SIGTERM (which seals and uploads everything, then exits 0),
and reports wall time, CPU seconds per GB of input and peak RSS (VmHWM),
plus objects and stored bytes per input GB.

The floor is measured in the same run, after the agent: `gzip -1` and
`gzip -6` over the same raw input. CPU is reported as a ratio to `gzip -1`,
because absolute CPU seconds vary about 2x between the machines here and
with their load (printed too).

Correctness is checked, not assumed: the events in the bucket must number
exactly the input lines (with --deep, every event is parsed and the counter
suffixes and seq values must be exactly the expected sets), else it fails.

Units: MB and GB are 10^6 and 10^9 bytes; RSS is in MiB.
Stdlib only (Python 3.8+); S3 requests are signed here (SigV4).
"""

import argparse
import datetime
import glob
import gzip
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))


def default_corpus():
    """`shared/corpus` beside the checkout or beside any parent of it (a
    worktree under /work/wt/NAME finds /work/shared/corpus)."""
    d = os.path.dirname(HERE)
    while True:
        parent = os.path.dirname(d)
        cand = os.path.join(parent, "shared", "corpus")
        if os.path.isdir(cand) or parent == d:
            return cand
        d = parent


DEFAULT_CORPUS = default_corpus()
DEFAULT_GARAGE = os.environ.get("LOGSHIP_GARAGE") or os.path.join(
    os.environ.get("LOGSHIP_CI_CACHE", os.path.expanduser("~/.cache/logship-ci")), "garage", "bin", "garage"
)


def log(msg):
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ---------------------------------------------------------------- input


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


def java_records():
    """Template records of a Java service (issue 10): two of three a single
    line, one a chained exception of 23-32 lines (most lines are in traces).
    A template holding `\n` is one record of several lines."""
    out = []
    for r in range(3000):
        ts = b"2026-11-22 03:49:%02d.%03d" % (r % 60, r % 1000)
        if r % 3 == 2:
            lines = [ts + b" ERROR [exec-%d] c.a.orders.OrderService - could not load order %d" % (r % 8, r),
                     b"java.lang.IllegalStateException: order %d not found" % r]
            lines += [b"\tat com.acme.orders.Layer%d.call(Layer%d.java:%d)" % (j, j, 10 + j) for j in range(18 + r % 10)]
            lines += [b"Caused by: java.io.IOException: connection reset",
                      b"\tat com.acme.db.Pool.get(Pool.java:88)", b"\t... 12 more"]
            out.append(b"\n".join(lines))
        else:
            out.append(ts + b" INFO  [exec-%d] c.a.orders.OrderController - GET /orders/%d 200 in %dms" % (r % 8, r, r % 50))
    return out, "generated Java service (a third of the records are 23-32 line traces)"


def make_input(paths, size, templates):
    """Write whole lines, `size` bytes in all, round-robin over `paths`
    (about 1 MiB to each in turn): template + ' #<counter>' (a template of
    several lines is one record; the counter goes on its last line).
    Returns (bytes, lines, records)."""
    n = 0
    n_lines = 0
    written = 0
    outs = [open(p, "wb") for p in paths]
    try:
        turn = 0
        while written < size:
            block, block_bytes = [], 0
            while block_bytes < 1 << 20 and written < size:
                t = templates[n % len(templates)]
                line = b"%s #%d\n" % (t, n)
                n_lines += line.count(b"\n")
                block.append(line)
                block_bytes += len(line)
                written += len(line)
                n += 1
            outs[turn % len(outs)].write(b"".join(block))
            turn += 1
    finally:
        for o in outs:
            o.close()
    return written, n_lines, n


# ---------------------------------------------------------------- S3 (Garage)


class S3:
    """Just enough of an S3 client for the harness: ListObjectsV2 and GET,
    path-style, SigV4 with an unsigned payload (all requests are bodiless)."""

    def __init__(self, endpoint, bucket, access_key, secret_key, region):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port
        self.bucket, self.ak, self.sk, self.region = bucket, access_key, secret_key, region

    def _sign(self, method, path, query, now):
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        host = f"{self.host}:{self.port}"
        payload = "UNSIGNED-PAYLOAD"
        canon_q = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(query.items())
        )
        headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canon = "\n".join(
            [method, urllib.parse.quote(path, safe="/-_.~"), canon_q]
            + [f"{k}:{headers[k]}" for k in sorted(headers)]
            + ["", signed, payload]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
        k = ("AWS4" + self.sk).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
        )
        return headers, canon_q

    def request(self, method, key="", query=None):
        query = query or {}
        path = f"/{self.bucket}" + (f"/{key}" if key else "")
        headers, q = self._sign(method, path, query, datetime.datetime.now(datetime.timezone.utc))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, urllib.parse.quote(path, safe="/-_.~") + (f"?{q}" if q else ""), headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def list(self, prefix):
        """{key: size} of every object under `prefix`."""
        out, token = {}, None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            status, body = self.request("GET", query=q)
            if status != 200:
                raise RuntimeError(f"ListObjectsV2: HTTP {status}: {body[:300]!r}")
            root = ET.fromstring(body)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.iter(f"{ns}Contents"):
                out[c.find(f"{ns}Key").text] = int(c.find(f"{ns}Size").text)
            nxt = root.find(f"{ns}NextContinuationToken")
            if nxt is None or not nxt.text:
                return out
            token = nxt.text

    def get(self, key):
        status, body = self.request("GET", key=key)
        if status != 200:
            raise RuntimeError(f"GET {key}: HTTP {status}: {body[:300]!r}")
        return body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Garage:
    """A single-node Garage on loopback with one key and one bucket, as
    tests/support/garage.rs starts it (`server --single-node --default-bucket`)."""

    def __init__(self, binary, root):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} is not an executable; install it with bash .ci/install-garage.sh "
                             "or pass --garage / set LOGSHIP_GARAGE")
        self.dir = os.path.join(root, "garage")
        os.makedirs(self.dir)
        s3_port, rpc_port, admin_port = free_port(), free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{s3_port}"
        self.bucket, self.region = "logship-bench", "auto"
        self.access_key = "GK" + os.urandom(12).hex()
        self.secret_key = os.urandom(32).hex()
        cfg = os.path.join(self.dir, "garage.toml")
        with open(cfg, "w") as f:
            f.write(f"""metadata_dir = "{self.dir}/meta"
data_dir = "{self.dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{os.urandom(32).hex()}"

[s3_api]
s3_region = "{self.region}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{os.urandom(16).hex()}"
""")
        env = dict(os.environ, GARAGE_DEFAULT_ACCESS_KEY=self.access_key,
                   GARAGE_DEFAULT_SECRET_KEY=self.secret_key, GARAGE_DEFAULT_BUCKET=self.bucket,
                   RUST_LOG="warn")
        self.log = open(os.path.join(self.dir, "garage.log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", cfg, "server", "--single-node", "--default-bucket"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.s3 = S3(self.endpoint, self.bucket, self.access_key, self.secret_key, self.region)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"FAIL: garage exited with {self.proc.returncode}; see {self.dir}/garage.log")
            try:
                self.s3.list("")
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"FAIL: garage not ready in 60 s; see {self.dir}/garage.log")
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- agent


def write_config(tmp, args, input_dir, bucket_toml):
    cfg = os.path.join(tmp, "agent.toml")
    segments = f"compression_level = {args.level}\n" if args.level else ""
    multiline = f'[sources.multiline]\nmode = "{args.multiline}"\n' if args.multiline else ""
    if args.max_bytes:
        segments += f'max_bytes = "{args.max_bytes}"\n'
    if args.commit_interval:
        segments += f'commit_interval = "{args.commit_interval}"\n'
    with open(cfg, "w") as f:
        f.write(
            f"""# written by bench/e2e.py
[agent]
instance_id = "bench"
data_dir = "{tmp}/data"
shutdown_timeout = "300s"
log_level = "warn"

[segments]
{segments}
[redaction]
enabled = {"false" if args.no_redact else "true"}

[[sources]]
name = "app"
include = ["{input_dir}/*.log"]
{multiline}
{bucket_toml}
[metrics]
enabled = false
"""
        )
        if args.alerts:
            with open(args.alerts) as a:
                f.write("\n# alert rules from " + args.alerts + "\n" + a.read())
    return cfg


def bucket_toml(args, tmp, garage, prefix):
    conc = f"concurrency = {args.concurrency}\n" if args.concurrency else ""
    if garage is None:
        return f'[bucket]\nkind = "dir"\npath = "{tmp}/bucket"\n{conc}'
    return (
        f'[bucket]\nkind = "s3"\nendpoint = "{garage.endpoint}"\nregion = "{garage.region}"\n'
        f'bucket = "{garage.bucket}"\naccess_key_id = "{garage.access_key}"\n'
        f'secret_access_key = "{garage.secret_key}"\nprefix = "{prefix}"\n{conc}'
    )


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
    """Appends each staged file to its destination at `rate` bytes/s in all,
    in ticks of `tick` seconds (default 50 ms), cutting only at line ends so
    the agent never waits on a partial line for long. A short tick is an
    application that writes a line or a few at a time."""

    def __init__(self, pairs, rate, tick=0.05):
        super().__init__(daemon=True)
        self.pairs, self.rate, self.tick = pairs, rate / len(pairs), tick
        self.done_at = None
        self.error = None

    def run(self):
        try:
            tick = self.tick
            srcs = []
            for staged, dest in self.pairs:
                with open(staged, "rb") as src:
                    srcs.append([src.read(), 0, open(dest, "ab")])
            start = time.monotonic()
            while any(pos < len(data) for data, pos, _ in srcs):
                due = int((time.monotonic() - start) * self.rate)
                for s in srcs:
                    data, pos, out = s
                    if due > pos and pos < len(data):
                        end = data.find(b"\n", min(due, len(data) - 1))
                        end = len(data) if end < 0 else end + 1
                        out.write(data[pos:end])
                        out.flush()
                        s[1] = end
                time.sleep(tick)
            for _, _, out in srcs:
                out.close()
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


class Tally:
    """Counts events (and with `deep`, checks counters and seq values) over
    the decompressed objects fed to it."""

    def __init__(self, deep, expect_lines):
        self.deep = deep
        self.objects = self.gz_bytes = self.ndjson_bytes = self.events = self.bad = 0
        self.counters = bytearray(expect_lines) if deep else None
        self.seqs = set() if deep else None

    def add(self, gz_bytes):
        self.objects += 1
        self.gz_bytes += len(gz_bytes)
        raw = gzip.decompress(gz_bytes)  # every member, as `gzip -d` does
        self.ndjson_bytes += len(raw)
        self.events += raw.count(b"\n")
        if not self.deep:
            return
        for line in raw.splitlines():
            ev = json.loads(line)
            self.seqs.add(ev["seq"])
            msg = ev["msg"]
            i = msg.rfind(" #")
            try:
                c = int(msg[i + 2:])
                self.counters[c] = min(self.counters[c] + 1, 255)
            except (ValueError, IndexError):
                self.bad += 1

    def check(self):
        if not self.deep:
            return
        missing = sum(1 for x in self.counters if x == 0)
        dup = sum(1 for x in self.counters if x > 1)
        if self.bad or missing or dup or len(self.seqs) != self.events:
            raise SystemExit(
                f"FAIL deep check: {missing} lines missing, {dup} duplicated, "
                f"{self.bad} without counter, {self.events - len(self.seqs)} repeated seq"
            )


def count_bucket(bucket_dir, garage, prefix, deep, expect_lines):
    t = Tally(deep, expect_lines)
    if garage is None:
        for o in sorted(glob.glob(os.path.join(bucket_dir, "**", "*.gz"), recursive=True)):
            with open(o, "rb") as f:
                t.add(f.read())
    else:
        listed = garage.s3.list(prefix + "/")
        for key, size in sorted(listed.items()):
            body = garage.s3.get(key)
            if len(body) != size:
                raise SystemExit(f"FAIL: {key}: listed {size} bytes, GET returned {len(body)}")
            t.add(body)
    t.check()
    return t


def run_agent(args, tmp, cfg, input_bytes, pairs):
    input_dir = os.path.join(tmp, "in")
    data_dir = os.path.join(tmp, "data")
    if args.mode == "live":
        for _, dest in pairs:
            open(dest, "wb").close()
    agent_log = open(os.path.join(tmp, "agent.log"), "ab")
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
        writer = LiveWriter(pairs, args.rate * 1e6, args.tick)
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


def run_idle(args, cfg, tmp):
    """Start the agent on an empty watched file, let it settle, then count
    its CPU ticks over `--idle-seconds` (from /proc/<pid>/stat)."""
    open(os.path.join(tmp, "in", "app.log"), "wb").close()
    agent_log = open(os.path.join(tmp, "agent.log"), "ab")
    proc = subprocess.Popen([args.bin, "run", "-c", cfg], stdout=agent_log, stderr=subprocess.STDOUT)

    def ticks():
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    try:
        time.sleep(3)
        if proc.poll() is not None:
            raise SystemExit(f"FAIL: agent exited early with {proc.returncode}; see {tmp}/agent.log")
        t0 = ticks()
        time.sleep(args.idle_seconds)
        t1 = ticks()
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    finally:
        proc.terminate()
        proc.wait()
        agent_log.close()
    hz = os.sysconf("SC_CLK_TCK")
    print(f"| idle, {args.bucket} bucket | {args.idle_seconds:g} s | {t1 - t0} ticks "
          f"({(t1 - t0) / hz * 1000:.0f} ms CPU) | RSS {rss / 1024:.1f} MiB |")


# ---------------------------------------------------------------- floor


def gzip_floor(paths):
    """CPU seconds of `gzip -1` and `gzip -6` over the raw input files, and
    their output bytes: {level: (cpu, out_bytes, wall)}."""
    res = {}
    for lvl in (1, 6):
        cpu = out = 0.0
        t0 = time.monotonic()
        for path in paths:
            with open(path, "rb") as src:
                p = subprocess.Popen(["gzip", f"-{lvl}", "-c"], stdin=src, stdout=subprocess.PIPE)
                while True:
                    b = p.stdout.read(1 << 20)
                    if not b:
                        break
                    out += len(b)
                code, ru = wait4_rusage(p.pid)
                p.returncode = code
                cpu += ru.ru_utime + ru.ru_stime
        res[lvl] = (cpu, out, time.monotonic() - t0)
    return res


# ---------------------------------------------------------------- main


def one_round(args, tmp, garage, i, input_bytes, input_lines, pairs, inputs):
    """One agent run on fresh state, then the floor. Returns a result dict."""
    data_dir = os.path.join(tmp, "data")
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "bucket"), ignore_errors=True)
    if args.mode == "live":
        for _, dest in pairs:
            if os.path.exists(dest):
                os.remove(dest)
    prefix = f"round{i}"
    cfg = write_config(tmp, args, os.path.join(tmp, "in"), bucket_toml(args, tmp, garage, prefix))
    load = load_average()
    r = run_agent(args, tmp, cfg, input_bytes, pairs)
    t = count_bucket(os.path.join(tmp, "bucket"), garage, prefix, args.deep, input_lines)
    if t.events != input_lines:
        raise SystemExit(f"FAIL: {t.events} events in the bucket for {input_lines} input lines")
    r.update(objects=t.objects, gz=t.gz_bytes, ndjson=t.ndjson_bytes, load=load)
    r["floor"] = None if args.no_floor else gzip_floor(inputs)
    r["load_after"] = load_average()
    log(f"round {i}: ok, {t.events} events in {t.objects} objects == input lines"
        + (" (deep check passed)" if args.deep else "")
        + f"; wall {r['wall']:.2f}s (all read at {r['read_wall']:.2f}s, stop took {r['stop']:.2f}s"
        + (f", read lag after writer end {r['lag']:.2f}s" if r["lag"] is not None else "")
        + f"); user {r['utime']:.2f}s sys {r['stime']:.2f}s; CPU {r['cpu']:.2f}s"
        + (f" = {r['cpu'] / r['floor'][1][0]:.2f}x gzip -1" if r["floor"] else "")
        + f"; VmHWM {r['hwm_kib'] / 1024:.1f} MiB; load {load:.1f}")
    return r


def report(args, rounds, input_bytes, input_lines):
    gb = input_bytes / 1e9
    med = lambda f: statistics.median(f(r) for r in rounds)  # noqa: E731
    cpu, wall, hwm = med(lambda r: r["cpu"]), med(lambda r: r["wall"]), max(r["hwm_kib"] for r in rounds)
    r0 = rounds[0]
    mode = args.mode if args.mode == "preload" else f"live {args.rate:g} MB/s" + (f" tick {args.tick:g}s" if args.tick != 0.05 else "")
    knobs = f"level {args.level}" if args.level else "default level"
    if args.concurrency:
        knobs += f", concurrency {args.concurrency}"
    if args.max_bytes:
        knobs += f", max_bytes {args.max_bytes}"
    if args.commit_interval:
        knobs += f", commit_interval {args.commit_interval}"
    if args.no_redact:
        knobs += ", redaction off"
    if args.alerts:
        knobs += f", alerts {os.path.basename(args.alerts)}"
    loads = ", ".join(f"{r['load']:.1f}" for r in rounds)
    print(f"\n{len(rounds)} round(s), {input_bytes / 1e6:.0f} MB / {input_lines} lines in {args.files} file(s); "
          f"load average {loads}; medians, peak RSS is the max")
    print("| bucket | mode | settings | wall s | MB/s | CPU s/GB | CPU / gzip -1 | CPU / gzip -6 "
          "| peak RSS MiB | objects /GB | stored MB /GB | input/stored | ndjson/stored |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    f1 = f6 = "–"
    if r0["floor"]:
        f1 = f"{med(lambda r: r['cpu'] / r['floor'][1][0]):.2f}"
        f6 = f"{med(lambda r: r['cpu'] / r['floor'][6][0]):.2f}"
    print(
        f"| {args.bucket} | {mode} | {knobs} | {wall:.2f} | {input_bytes / 1e6 / wall:.1f} | {cpu / gb:.2f} | "
        f"{f1} | {f6} | {hwm / 1024:.1f} | {r0['objects'] / gb:.0f} | {r0['gz'] / 1e6 / gb:.1f} | "
        f"{input_bytes / r0['gz']:.2f} | {r0['ndjson'] / r0['gz']:.2f} |"
    )
    if r0["floor"]:
        print("\n| floor (same run) | CPU s/GB | out MB /GB | input/out |")
        print("| --- | ---: | ---: | ---: |")
        for lvl in (1, 6):
            c = med(lambda r: r["floor"][lvl][0])
            out = r0["floor"][lvl][1]
            print(f"| gzip -{lvl} | {c / gb:.2f} | {out / 1e6 / gb:.1f} | {input_bytes / out:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/logship", help="the logship binary (built by you)")
    ap.add_argument("--bucket", choices=["dir", "s3"], default="dir",
                    help="dir: a local directory; s3: a Garage started on loopback")
    ap.add_argument("--garage", default=DEFAULT_GARAGE, help="the garage binary (for --bucket s3)")
    ap.add_argument("--size-mb", type=float, default=200, help="input size in MB (10^6 bytes)")
    ap.add_argument("--files", type=int, default=1, help="number of input files the input is spread over")
    ap.add_argument("--level", type=int, default=None,
                    help="segments.compression_level (default: the agent's)")
    ap.add_argument("--concurrency", type=int, default=None, help="bucket.concurrency (default: the agent's)")
    ap.add_argument("--commit-interval", default=None,
                    help='segments.commit_interval, e.g. "1s" (default: the agent\'s 200ms)')
    ap.add_argument("--max-bytes", default=None, help='segments.max_bytes, e.g. "64MiB" (default: the agent\'s)')
    ap.add_argument("--no-redact", action="store_true", help="redaction.enabled = false")
    ap.add_argument("--alerts", default=None,
                    help="a TOML file of [alerts] tables appended to the config (e.g. bench/alerts20.toml)")
    ap.add_argument("--input", choices=["loghub", "java"], default="loghub",
                    help="loghub lines (default) or a generated Java service with stack traces")
    ap.add_argument("--multiline", default=None,
                    help="[sources.multiline] mode (e.g. java, auto); events are then counted per record")
    ap.add_argument("--mode", choices=["preload", "live", "idle"], default="preload",
                    help="preload: input written before the agent starts; live: appended while it runs; "
                         "idle: CPU ticks of an agent watching an empty file")
    ap.add_argument("--rate", type=float, default=20, help="live mode: append rate in MB/s (all files)")
    ap.add_argument("--tick", type=float, default=0.05,
                    help="live mode: seconds between a file's appends (0.001: about a write per line at 1 MB/s)")
    ap.add_argument("--idle-seconds", type=float, default=10, help="idle mode: how long to count")
    ap.add_argument("--rounds", type=int, default=1, help="agent runs (each on fresh state); medians reported")
    ap.add_argument("--corpus", default=os.environ.get("LOGSHIP_CORPUS", DEFAULT_CORPUS))
    ap.add_argument("--tmp", default=None, help="parent of the temp dir (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--deep", action="store_true",
                    help="parse every event: no line missing or duplicated, seq unique")
    ap.add_argument("--no-floor", action="store_true", help="skip timing gzip -1/-6 on the same input")
    ap.add_argument("--compare", choices=["gzip"], help=argparse.SUPPRESS)  # the floor is always on now
    ap.add_argument("--progress", action="store_true",
                    help="log each change of the checkpointed read offset")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before giving up")
    args = ap.parse_args()

    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"{args.bin} is not an executable; build it first: cargo build --release")
    args.bin = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="logship-e2e-", dir=args.tmp)
    os.makedirs(os.path.join(tmp, "in"))
    garage = None
    try:
        if args.bucket == "s3":
            garage = Garage(args.garage, tmp)
            log(f"garage up at {garage.endpoint}, bucket {garage.bucket}")
        if args.mode == "idle":
            cfg = write_config(tmp, args, os.path.join(tmp, "in"), bucket_toml(args, tmp, garage, "idle"))
            run_idle(args, cfg, tmp)
            return
        templates, origin = java_records() if args.input == "java" else base_lines(args.corpus)
        size = int(args.size_mb * 1e6)
        names = [f"app{i}.log" for i in range(args.files)]
        dests = [os.path.join(tmp, "in", n) for n in names]
        staged = [os.path.join(tmp, "staged", n) for n in names]
        inputs = staged if args.mode == "live" else dests
        os.makedirs(os.path.join(tmp, "staged"), exist_ok=True)
        t = time.monotonic()
        input_bytes, raw_lines, records = make_input(inputs, size, templates)
        # With multiline grouping an event is a record; else a line.
        input_lines = records if args.multiline else raw_lines
        log(f"input: {input_bytes} bytes, {raw_lines} lines, {records} records in {args.files} file(s) from {origin} "
            f"(made in {time.monotonic() - t:.1f}s) in {tmp}")
        pairs = list(zip(staged, dests))
        rounds = [one_round(args, tmp, garage, i, input_bytes, input_lines, pairs, inputs)
                  for i in range(args.rounds)]
        report(args, rounds, input_bytes, input_lines)
    finally:
        if garage is not None:
            garage.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
