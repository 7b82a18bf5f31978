#!/usr/bin/env python3
"""Soak test of the logship agent (opt-in; not part of `.ci/run`).

Runs the agent for `--minutes` (60 by default; `--short` is 5) against a
real Garage (S3) and a real redis-server on loopback, while:

- writers append numbered lines to several files at `--rate` MB/s in total;
- files are rotated in turn, alternately by rename (logrotate `create`) and
  by `copytruncate`; rotated files are deleted only once the checkpoint
  shows them read to the end, as a careful logrotate `maxage` would;
- the config is edited and reloaded with SIGHUP every `--reload-every` s;
- the S3 server goes away for `--outage` s in the middle of the run and
  comes back on the same port;
- redis-server (fleet-wide alert suppression) is killed and restarted every
  `--redis-every` s.

Every `--sample` s it records the agent's RSS, open file descriptors, CPU
(% of one core over the interval), the upload backlog and events written.
At the end it stops the writers, waits until the agent has written every
line, stops it with SIGTERM, and reads the whole bucket back: every line
must be there exactly once. It fails (exit 1) on any loss or duplicate, on
an agent exit, on a failed reload, or on growth: after the warm-up (the
first fifth of the samples), the median RSS of the last fifth may not
exceed that of the second fifth by more than 25 % and 8 MiB, and open fds
may not exceed the second fifth's maximum by more than 16.

Output: a Markdown table (one row per minute, or per sample with --short)
and a summary, printed and written to `--out`.

    cargo build --release
    python3 bench/soak.py --bin target/release/logship --short
    python3 bench/soak.py --bin target/release/logship --minutes 60 --out soak.md

Stdlib only; reuses the Garage and S3 helpers of bench/e2e.py.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


class RestartableGarage(e2e.Garage):
    """e2e.Garage, plus stop/start on the same ports and data (an outage)."""

    def __init__(self, binary, root):
        self.binary = binary
        super().__init__(binary, root)
        self.argv = self.proc.args
        self.env = dict(
            os.environ,
            GARAGE_DEFAULT_ACCESS_KEY=self.access_key,
            GARAGE_DEFAULT_SECRET_KEY=self.secret_key,
            GARAGE_DEFAULT_BUCKET=self.bucket,
            RUST_LOG="warn",
        )

    def down(self):
        self.proc.kill()
        self.proc.wait()

    def up(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.s3.list("")
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("FAIL: garage did not come back after the outage")
                time.sleep(0.2)


class Redis:
    def __init__(self, root):
        self.port = e2e.free_port()
        self.dir = os.path.join(root, "redis")
        os.makedirs(self.dir)
        self.proc = None
        self.up()

    def up(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def down(self):
        self.proc.kill()
        self.proc.wait()


class Writers(threading.Thread):
    """Appends numbered lines round-robin to `files` at `rate` bytes/s and
    rotates one file every `rotate_every` s. Holds `lock` while rotating so a
    copytruncate loses no line (the application would)."""

    TEMPLATES = [
        b"INFO  GET /api/items 200 12ms user=u%d",
        b"WARN  slow query took 812ms table=orders shard=%d",
        b"ERROR upstream timed out after 30s host=10.0.0.%d",
        b'{"level":"info","msg":"job done","job":%d}',
    ]

    def __init__(self, dir_, files, rate, rotate_every):
        super().__init__(daemon=True)
        self.dir, self.rate, self.rotate_every = dir_, rate, rotate_every
        self.paths = [os.path.join(dir_, f"app-{i}.log") for i in range(files)]
        self.outs = [open(p, "ab") for p in self.paths]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.count = 0
        self.rotations = 0
        self.rotated = []  # (path, rotated_at)
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = repr(e)

    def _run(self):
        t0 = time.monotonic()
        written = 0
        next_rotate = t0 + self.rotate_every
        while not self.stop.is_set():
            now = time.monotonic()
            budget = self.rate * (now - t0) - written
            if budget <= 0:
                time.sleep(0.01)
            else:
                with self.lock:
                    for _ in range(max(1, int(budget // 80))):
                        i = self.count % len(self.outs)
                        t = self.TEMPLATES[self.count % len(self.TEMPLATES)] % (self.count % 97)
                        line = b"%s #%d\n" % (t, self.count)
                        self.outs[i].write(line)
                        written += len(line)
                        self.count += 1
                    for o in self.outs:
                        o.flush()
            if now >= next_rotate:
                self.rotate()
                next_rotate = now + self.rotate_every
        for o in self.outs:
            o.close()

    def rotate(self):
        with self.lock:
            i = self.rotations % len(self.paths)
            path = self.paths[i]
            dest = f"{path}.{self.rotations}"
            if self.rotations % 2 == 0:
                self.outs[i].close()
                os.rename(path, dest)
                self.outs[i] = open(path, "ab")
            else:
                self.outs[i].flush()
                shutil.copyfile(path, dest)
                self.outs[i].truncate(0)
                self.outs[i].seek(0)
            self.rotated.append((dest, time.monotonic()))
            self.rotations += 1


def checkpoint_offsets(data_dir):
    try:
        with open(os.path.join(data_dir, "state", "checkpoint.json"), "rb") as f:
            cp = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    for f in cp.get("files", []) + cp.get("retired", []):
        out[f["path"]] = max(out.get(f["path"], 0), f["offset"])
    return out


def prune_rotated(writers, data_dir, keep_s):
    """Delete rotated files that are old and read to their end."""
    offsets = checkpoint_offsets(data_dir)
    kept = []
    for path, at in writers.rotated:
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if time.monotonic() - at > keep_s and offsets.get(path) == size:
            os.remove(path)
        else:
            kept.append((path, at))
    writers.rotated = kept


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            m[name] = float(value)
        except ValueError:
            pass
    return m


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss / 1024, fds, cpu


def write_config(path, tmp, garage, redis, metrics_port, threshold):
    with open(path, "w") as f:
        f.write(f"""# written by bench/soak.py
[agent]
instance_id = "soak"
data_dir = "{tmp}/data"
shutdown_timeout = "120s"
log_level = "warn"

[segments]
max_bytes = "4MiB"
max_age = "1m"

[[sources]]
name = "app"
include = ["{tmp}/in/*.log*"]

[bucket]
kind = "s3"
endpoint = "{garage.endpoint}"
region = "{garage.region}"
bucket = "{garage.bucket}"
access_key_id = "{garage.access_key}"
secret_access_key = "{garage.secret_key}"
prefix = "soak"

[metrics]
listen = "127.0.0.1:{metrics_port}"

[alerts]
redis_url = "redis://127.0.0.1:{redis.port}"

[alerts.channels.webhook]
url = "http://127.0.0.1:9/hook"
max_attempts = 1

[[alerts.rules]]
name = "soak_errors"
type = "threshold"
count = {threshold}
window = "1m"
severity = "low"
channels = ["webhook"]
[alerts.rules.match]
lvl = "error"
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="logship binary (a release build)")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--short", action="store_true", help="5 minutes, samples every 10 s, outage 30 s")
    ap.add_argument("--rate", type=float, default=1.0, help="MB/s written in total")
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rotate-every", type=float, default=30)
    ap.add_argument("--reload-every", type=float, default=60)
    ap.add_argument("--redis-every", type=float, default=120)
    ap.add_argument("--outage", type=float, default=120, help="seconds without S3")
    ap.add_argument("--sample", type=float, default=10)
    ap.add_argument("--garage", default=os.environ.get(
        "LOGSHIP_GARAGE", os.path.expanduser("~/.cache/logship-ci/garage/bin/garage")))
    ap.add_argument("--out", default="soak.md")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    if args.short:
        args.minutes, args.outage, args.redis_every, args.reload_every = 5, 30, 60, 45
    duration = args.minutes * 60

    tmp = tempfile.mkdtemp(prefix="logship-soak-")
    os.makedirs(f"{tmp}/in")
    garage = RestartableGarage(args.garage, tmp)
    redis = Redis(tmp)
    metrics_port = e2e.free_port()
    cfg = os.path.join(tmp, "agent.toml")
    threshold = 50
    write_config(cfg, tmp, garage, redis, metrics_port, threshold)
    writers = Writers(f"{tmp}/in", args.files, args.rate * 1e6, args.rotate_every)
    agent_log = open(os.path.join(tmp, "agent.log"), "wb")
    env = dict(os.environ)
    env.pop("LOGSHIP_CONFIG", None)
    agent = subprocess.Popen([args.bin, "run", "-c", cfg], stdout=agent_log, stderr=subprocess.STDOUT, env=env)
    failures = []
    samples = []
    try:
        deadline = time.monotonic() + 30
        while scrape(metrics_port) is None:
            if agent.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"FAIL: agent did not come up; see {tmp}/agent.log")
            time.sleep(0.1)
        writers.start()
        t0 = time.monotonic()
        outage_at = t0 + duration / 2 - args.outage / 2
        outage_end = None
        next_reload = t0 + args.reload_every
        next_redis = t0 + args.redis_every
        next_sample = t0
        reloads = redis_restarts = 0
        prev_cpu, prev_t = proc_sample(agent.pid)[2], t0
        while time.monotonic() - t0 < duration:
            now = time.monotonic()
            if agent.poll() is not None:
                raise SystemExit(f"FAIL: agent exited with {agent.returncode}; see {tmp}/agent.log")
            if writers.error:
                raise SystemExit(f"FAIL: writer: {writers.error}")
            if outage_end is None and now >= outage_at:
                garage.down()
                outage_end = now + args.outage
                print(f"t={now - t0:6.0f}s S3 down for {args.outage:.0f}s", flush=True)
            elif outage_end is not None and outage_end > 0 and now >= outage_end:
                garage.up()
                outage_end = 0
                print(f"t={now - t0:6.0f}s S3 back", flush=True)
            if now >= next_reload:
                threshold = 100 if threshold == 50 else 50
                write_config(cfg, tmp, garage, redis, metrics_port, threshold)
                agent.send_signal(signal.SIGHUP)
                reloads += 1
                next_reload = now + args.reload_every
            if now >= next_redis:
                redis.down()
                time.sleep(2)
                redis.up()
                redis_restarts += 1
                next_redis = now + args.redis_every
            if now >= next_sample:
                rss, fds, cpu = proc_sample(agent.pid)
                m = scrape(metrics_port) or {}
                samples.append({
                    "t": now - t0, "rss": rss, "fds": fds,
                    "cpu": 100 * (cpu - prev_cpu) / max(now - prev_t, 1e-6),
                    "backlog": metric_sum(m, "logship_upload_backlog_bytes") / 1e6,
                    "written": metric_sum(m, "logship_events_written_total"),
                    "lines": writers.count,
                })
                prev_cpu, prev_t = cpu, now
                next_sample += args.sample
                prune_rotated(writers, f"{tmp}/data", keep_s=2 * args.rotate_every)
            time.sleep(0.2)
        writers.stop.set()
        writers.join()
        if outage_end:
            garage.up()
        expect = writers.count
        deadline = time.monotonic() + 300
        while True:
            m = scrape(metrics_port) or {}
            if metric_sum(m, "logship_events_written_total") >= expect:
                break
            if time.monotonic() > deadline:
                failures.append(f"agent wrote {metric_sum(m, 'logship_events_written_total'):.0f} of {expect} lines")
                break
            time.sleep(0.5)
        m = scrape(metrics_port) or {}
        ok_reloads = m.get('logship_config_reloads_total{result="ok"}', 0)
        if ok_reloads < reloads:
            failures.append(f"{reloads} reloads sent, {ok_reloads:.0f} counted ok")
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(180)
        if code != 0:
            failures.append(f"agent exited {code} after SIGTERM")
        try:
            # Every counter exactly once and every seq unique, or SystemExit.
            tally = e2e.count_bucket(None, garage, "soak", deep=True, expect_lines=expect)
        except SystemExit as e:
            failures.append(str(e))
            tally = None
    finally:
        writers.stop.set()
        if agent.poll() is None:
            agent.kill()
        garage.stop()
        redis.down()
        agent_log.close()

    # Growth: compare the second fifth (after warm-up) with the last fifth.
    n = len(samples)
    k = max(1, n // 5)
    base, last = samples[k:2 * k], samples[-k:]
    rss_base = statistics.median(s["rss"] for s in base)
    rss_last = statistics.median(s["rss"] for s in last)
    fds_base = max(s["fds"] for s in base)
    fds_last = max(s["fds"] for s in last)
    if rss_last > rss_base * 1.25 and rss_last - rss_base > 8:
        failures.append(f"RSS grew: median {rss_base:.1f} MiB -> {rss_last:.1f} MiB")
    if fds_last > fds_base + 16:
        failures.append(f"open fds grew: max {fds_base} -> {fds_last}")

    every = 1 if args.short else max(1, int(60 / args.sample))
    rows = ["| t (s) | RSS (MiB) | open fds | CPU (% of a core) | backlog (MB) | events written | lines written |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in samples[::every]:
        rows.append(f"| {s['t']:.0f} | {s['rss']:.1f} | {s['fds']} | {s['cpu']:.1f} | {s['backlog']:.1f} "
                    f"| {s['written']:.0f} | {s['lines']} |")
    summary = [
        f"duration {duration / 60:.0f} min, {args.rate} MB/s into {args.files} files, "
        f"{writers.rotations} rotations, {reloads} reloads, {redis_restarts} Redis restarts, "
        f"S3 down {args.outage:.0f} s at mid-run",
        f"lines {writers.count}, objects {tally.objects if tally else '?'}, "
        f"events in the bucket {tally.events if tally else '?'}",
        f"RSS median {rss_base:.1f} MiB after warm-up, {rss_last:.1f} MiB at the end, "
        f"peak {max(s['rss'] for s in samples):.1f} MiB; open fds max {fds_base} -> {fds_last}",
        "result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)),
    ]
    text = "\n".join(rows) + "\n\n" + "\n".join(f"- {s}" for s in summary) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    if args.keep or failures:
        print(f"temp dir kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
