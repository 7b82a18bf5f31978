#!/usr/bin/env python3
"""RSS of an idle agent across config reloads (BENCHMARKS.md, "Memory
across reloads").

    python3 bench/reload_rss.py --bin target/release/logship [--reloads 12] [--change]

Starts the agent on one small file with the dir bucket, one webhook
channel (never reached: nothing crosses the rule's count) and one
threshold rule, waits 3 s, then sends SIGHUP every 2 s and prints VmRSS
after each reload and VmHWM at the end. With --change the rule's count is
edited before each SIGHUP, so the alert rules are rebuilt while
[redaction] stays as it was. Stdlib only; the temp dir is removed.
"""
import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time


def config(tmp, count):
    return f"""[agent]
instance_id = "reload-rss"
data_dir = "{tmp}/data"
log_level = "warn"

[[sources]]
name = "app"
include = ["{tmp}/in/*.log*"]

[bucket]
kind = "dir"
path = "{tmp}/bucket"

[alerts.channels.webhook]
url = "http://127.0.0.1:9/hook"
max_attempts = 1

[[alerts.rules]]
name = "errors"
type = "threshold"
count = {count}
window = "1m"
channels = ["webhook"]
[alerts.rules.match]
lvl = "error"
"""


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} for pid {pid}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="logship binary")
    ap.add_argument("--reloads", type=int, default=12)
    ap.add_argument("--change", action="store_true", help="edit the alert rule before each reload")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="logship-reload-rss-")
    try:
        os.makedirs(f"{tmp}/in")
        with open(f"{tmp}/in/a.log", "w") as f:
            f.write("an error line\n" * 100)
        cfg = f"{tmp}/agent.toml"
        with open(cfg, "w") as f:
            f.write(config(tmp, 1000))
        proc = subprocess.Popen([args.bin, "run", "-c", cfg])
        try:
            time.sleep(3)
            rss = [status(proc.pid, "VmRSS")]
            for i in range(args.reloads):
                if args.change:
                    with open(cfg, "w") as f:
                        f.write(config(tmp, 1001 + i))
                proc.send_signal(signal.SIGHUP)
                time.sleep(2)
                if proc.poll() is not None:
                    raise SystemExit(f"FAIL: the agent exited with {proc.returncode}")
                rss.append(status(proc.pid, "VmRSS"))
            peak = status(proc.pid, "VmHWM")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        print("RSS MiB after each reload:", " ".join(f"{x:.1f}" for x in rss))
        print(f"start {rss[0]:.1f} -> end {rss[-1]:.1f} MiB, peak {peak:.1f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
