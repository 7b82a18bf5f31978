#!/usr/bin/env python3
"""Descriptors, memory and CPU of the agent following many files (issue #16).

Makes DIRS directories of FILES files each (default 2,000 x 10 = 20,000),
one line in each, starts the agent on them and samples /proc/PID every
0.5 s through three phases:

  catch-up  until every first line is in a local segment;
  idle      nothing written for --idle seconds (handles of fully read
            files close after 30 s idle);
  writes    --writers files appended to, 20 lines/s each, for --write s.

Prints one table row per phase: peak open descriptors, descriptors at the
end of the phase, peak RSS, CPU (% of one core, utime+stime over the phase).

    python3 bench/fds.py --bin target/debug/logship [--nofile 1024]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def sample(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    return fds, rss, hwm, cpu


def stored_lines(data):
    n = 0
    for root, _, files in os.walk(os.path.join(data, "system")):
        for name in files:
            if name.endswith(".ndjson"):
                with open(os.path.join(root, name), "rb") as f:
                    n += f.read().count(b"\n")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/logship")
    ap.add_argument("--dirs", type=int, default=2000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--idle", type=float, default=45)
    ap.add_argument("--write", type=float, default=30)
    ap.add_argument("--writers", type=int, default=10)
    ap.add_argument("--nofile", type=int, help="hard and soft RLIMIT_NOFILE for the agent")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="logship-fds-")
    logs, data = os.path.join(tmp, "logs"), os.path.join(tmp, "data")
    paths = []
    for d in range(args.dirs):
        dd = os.path.join(logs, f"d{d:04}")
        os.makedirs(dd)
        for i in range(args.files):
            p = os.path.join(dd, f"f{i}.log")
            with open(p, "w") as f:
                f.write(f"d{d} f{i} first line\n")
            paths.append(p)
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[agent]\ninstance_id = "bench"\ndata_dir = "{data}"\n\n'
            f'[[sources]]\nname = "app"\ninclude = ["{logs}/*/*.log"]\n\n'
            f"[metrics]\nenabled = false\n"
        )

    def limit():
        if args.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.nofile:
        soft = hard = args.nofile
    agent = subprocess.Popen(
        [args.bin, "run", "-c", cfg],
        env={**os.environ, "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(tmp, "agent.stderr"), "w"),
        preexec_fn=limit,
    )
    rows = []

    def phase(name, until, act=None):
        start = sample(agent.pid)
        t0 = time.time()
        peak = start[0]
        last = start
        while not until(time.time() - t0):
            if act:
                act(time.time() - t0)
            time.sleep(0.5)
            if agent.poll() is not None:
                sys.exit(f"agent exited: see {tmp}/agent.stderr")
            last = sample(agent.pid)
            peak = max(peak, last[0])
        secs = time.time() - t0
        cpu = 100 * (last[3] - start[3]) / secs
        rows.append((name, secs, peak, last[0], last[2] / 1024, cpu))

    total = len(paths)
    phase("catch-up", lambda t: stored_lines(data) >= total or t > 600)
    phase("idle", lambda t: t >= args.idle)
    writers = paths[: args.writers]
    n = [0]

    def write(t):
        want = int(t * 20)
        if want > n[0]:
            for p in writers:
                with open(p, "a") as f:
                    for k in range(n[0], want):
                        f.write(f"{p} line {k}\n")
            n[0] = want

    phase("writes", lambda t: t >= args.write, write)
    agent.terminate()
    agent.wait(timeout=120)
    print(f"files {total} in {args.dirs} directories; RLIMIT_NOFILE soft {soft} hard {hard}; {os.cpu_count()} CPUs")
    print("| phase | seconds | peak fds | fds at end | peak RSS (MiB) | CPU (% of a core) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, secs, peak, end, rss, cpu in rows:
        print(f"| {name} | {secs:.0f} | {peak} | {end} | {rss:.1f} | {cpu:.1f} |")
    print(f"exit {agent.returncode}; lines stored {stored_lines(data)} of {total + n[0] * len(writers)}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
