#!/usr/bin/env python3
"""Read-path benchmark: `logship query` vs a naive sequential scan vs DuckDB.

Writes 24 h of one instance in the exact bucket layout the agent produces
(`system/YYYY/MM/DD/{instance}-{ulid}.ndjson.gz`, gzip level 1, metadata in
`.meta/{key}.json`, segments of --segment-mib uncompressed) into a local
directory bucket, plus build objects, then measures in the same run:

- `logship query --tier system --since 24h --grep RARE` (wall, peak RSS,
  objects fetched, compressed bytes read: the engine's --stats line),
- `logship query --tier build --build-id X`,
- a naive baseline: list the prefix, then for each object sequentially
  download (read), gunzip, parse every line, filter, and sort at the end,
- DuckDB (`read_ndjson` over the same objects, from the venv of
  .ci/install-read-deps.sh) with the same filter.

Usage: bench/query.py [--raw-mib 256] [--segment-mib 16] [--logship PATH]
"""

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

DAY = 86_400_000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def write_corpus(root, raw_mib, segment_mib, now_ms):
    rng = random.Random(11)
    seg_bytes = segment_mib << 20
    start = now_ms - DAY + 60_000
    total = raw_mib << 20
    n_lines_est = total // 260
    step = max(1, DAY // max(1, n_lines_est))
    written, seq, ts, seg_no, rare = 0, 0, start, 0, 0
    while written < total:
        lines = []
        size = 0
        first = ts
        while size < seg_bytes and written + size < total:
            lvl = "error" if rng.random() < 0.01 else "info"
            if rng.random() < 0.0001:
                msg = f"RARE needle {seq}"
                rare += 1
            else:
                msg = f"request {seq} served in {rng.randint(1, 900)}ms path=/api/v1/items/{rng.randint(1, 99999)} user=u{rng.randint(1, 500)}"
            e = {"ts": ts - rng.randint(0, 3000), "instanceId": "bench-host", "tier": "system", "kind": "line",
                 "lvl": lvl, "projectId": None, "buildId": None, "userId": None, "reqId": None, "seq": seq,
                 "src": "app", "msg": msg, "data": None}
            line = json.dumps(e, separators=(",", ":")) + "\n"
            lines.append(line)
            size += len(line)
            seq += 1
            ts += step
        raw = "".join(lines).encode()
        day = time.gmtime(first / 1000)
        key = f"system/{day.tm_year:04}/{day.tm_mon:02}/{day.tm_mday:02}/bench-host-{seg_no:026}.ndjson.gz"
        put(root, key, raw, lines)
        written += size
        seg_no += 1
    # Builds: 200 objects, one is asked for.
    for b in range(200):
        lines = []
        for i in range(500):
            e = {"ts": start + b * 1000 + i, "instanceId": "bench-host", "tier": "build", "kind": "line", "lvl": "info",
                 "projectId": None, "buildId": f"b{b}", "userId": None, "reqId": None, "seq": seq, "src": "build",
                 "msg": f"step {i} of build b{b}", "data": None}
            seq += 1
            lines.append(json.dumps(e, separators=(",", ":")) + "\n")
        put(root, f"builds/b{b}.ndjson.gz", "".join(lines).encode(), lines)
    return seg_no, written, rare


def put(root, key, raw, lines):
    path = os.path.join(root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(raw, compresslevel=1, mtime=0))
    all_ts = [int(l[6:l.index(",")]) for l in lines]
    meta = {"first-ts": str(min(all_ts)), "last-ts": str(max(all_ts)), "lines": str(len(lines)),
            "tier": "system", "instance-id": "bench-host"}
    mpath = os.path.join(root, ".meta", key + ".json")
    os.makedirs(os.path.dirname(mpath), exist_ok=True)
    with open(mpath, "w") as f:
        json.dump(meta, f)


def measure(cmd):
    """Wall time and peak RSS (KiB) of a child, via wait4."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    return time.monotonic() - t, ru.ru_maxrss, out, err.decode(errors="replace"), status


NAIVE = r'''
import gzip, json, os, re, sys
root, pat = sys.argv[1], re.compile(sys.argv[2])
hits, nbytes, objs = [], 0, 0
for d, _, files in sorted(os.walk(os.path.join(root, "system"))):
    for f in sorted(files):
        if not f.endswith(".ndjson.gz"):
            continue
        with open(os.path.join(d, f), "rb") as fh:
            data = fh.read()
        nbytes += len(data); objs += 1
        for line in gzip.decompress(data).splitlines():
            e = json.loads(line)
            if pat.search(e["msg"]):
                hits.append(e)
hits.sort(key=lambda e: (e["ts"], e["instanceId"], e["seq"]))
for e in hits:
    print(json.dumps(e))
print(f"objects={objs} bytes_read={nbytes}", file=sys.stderr)
'''

DUCK = r'''
import duckdb, sys
q = f"""SELECT ts, instanceId, seq, msg FROM read_ndjson('{sys.argv[1]}/system/*/*/*/*.ndjson.gz',
  columns = {{ts: 'BIGINT', instanceId: 'VARCHAR', lvl: 'VARCHAR', seq: 'UBIGINT', msg: 'VARCHAR'}})
  WHERE regexp_matches(msg, '{sys.argv[2]}') ORDER BY ts, instanceId, seq"""
for r in duckdb.sql(q).fetchall():
    print(r)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw-mib", type=int, default=256)
    ap.add_argument("--segment-mib", type=int, default=16)
    ap.add_argument("--logship", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "logship"))
    ap.add_argument("--duckdb-python", default=os.path.expanduser("~/.cache/logship-ci/read-venv/bin/python"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="logship-qbench-")
    bucket = os.path.join(tmp, "bucket")
    now = int(time.time() * 1000)
    t = time.monotonic()
    segs, raw, rare = write_corpus(bucket, a.raw_mib, a.segment_mib, now)
    log(f"corpus: {segs} system objects, {raw / 2**20:.0f} MiB raw, {rare} RARE lines, 200 build objects ({time.monotonic() - t:.0f}s)")
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(f'[agent]\ninstance_id = "reader"\ndata_dir = "{tmp}/data"\n[bucket]\nkind = "dir"\npath = "{bucket}"\n[metrics]\nenabled = false\n')
    print(f"load average before: {os.getloadavg()}")
    rows = []
    w, rss, out, err, st = measure([a.logship, "query", "-c", cfg, "--tier", "system", "--since", "24h", "--grep", "RARE", "--stats"])
    n_ours = out.count(b"\n")
    rows.append(("logship query --since 24h --grep RARE", w, rss, n_ours, err.strip().splitlines()[-1] if err.strip() else ""))
    w, rss, out, err, st = measure([sys.executable, "-c", NAIVE, bucket, "RARE"])
    rows.append(("naive sequential scan (python)", w, rss, out.count(b"\n"), err.strip()))
    if os.path.exists(a.duckdb_python):
        w, rss, out, err, st = measure([a.duckdb_python, "-c", DUCK, bucket, "RARE"])
        rows.append(("duckdb read_ndjson", w, rss, out.count(b"\n"), "" if st == 0 else err[-200:]))
    w, rss, out, err, st = measure([a.logship, "query", "-c", cfg, "--tier", "build", "--since", "48h", "--build-id", "b117", "--stats"])
    rows.append(("logship query --build-id b117", w, rss, out.count(b"\n"), err.strip().splitlines()[-1] if err.strip() else ""))
    print(f"load average after: {os.getloadavg()}")
    print("| run | wall s | peak RSS MiB | events | counters |")
    print("| --- | --- | --- | --- | --- |")
    for name, w, rss, n, extra in rows:
        print(f"| {name} | {w:.2f} | {rss / 1024:.0f} | {n} | {extra} |")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
