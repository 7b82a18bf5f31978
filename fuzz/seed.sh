#!/usr/bin/env bash
# Seed each fuzz target's corpus (fuzz/corpus/<target>/, git-ignored) from
# the project's own fixtures and example configs. Idempotent.
#
#   bash fuzz/seed.sh && cargo +nightly fuzz run config -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p "$c/config" "$c/checkpoint" "$c/line_path" "$c/redact" "$c/records"
for f in agent.toml.example packaging/deb/agent.toml src/alert/example.toml; do
    # config: the first line is the value every ${VAR} expands to.
    { echo "x"; cat "$f"; } > "$c/config/$(echo "$f" | tr / _)"
done
cp tests/fixtures/checkpoint-v1/data/state/checkpoint.json "$c/checkpoint/v1.json"
# v2, the format written today: one followed file with an open PEM block, one
# retired head, one open segment.
cat > "$c/checkpoint/v2.json" <<'JSON'
{"version":2,"instance_id":"h","seq_lease_end":67108864,"files":[{"source":"app","path":"/var/log/app.log","dev":1,"ino":2,"offset":180,"head":{"len":180,"hash":42},"skipping":false,"pem_block":[3,120],"shadow_of":null}],"retired":[{"source":"app","path":"/var/log/app.log.1","head":{"len":1024,"hash":7},"offset":4096,"skipping":false}],"segments":[{"id":1,"tier":"system","group":null,"day":20788,"path":"/d/system/2026-12-01/h-01M8RCSFYT1MT9GN1BHYMWX54H.ndjson","key":"system/2026/12/01/h-01M8RCSFYT1MT9GN1BHYMWX54H.ndjson.gz","len":100,"lines":2,"first_ts":1,"last_ts":2,"created_ms":1,"last_write_ms":2,"status":"open","generation":0,"uploaded_ms":null}]}
JSON
for f in tests/fixtures/redact/benign/* tests/fixtures/checkpoint-v1/logs/*; do
    for sel in 0 1 2 3; do
        { printf "\\x$(printf %02x "$sel")"; head -c 4096 "$f"; } > "$c/line_path/$sel-$(basename "$f")"
    done
    head -c 4096 "$f" > "$c/redact/$(basename "$f")"
done
# records: the first byte picks the format (auto, cri, docker) and the
# multiline mode; the stack traces and container lines of the format tests.
for f in tests/fixtures/formats/*; do
    for sel in 0 4 7 10 13 16 19 22 25; do
        { printf "\\x$(printf %02x "$sel")"; head -c 8192 "$f"; } > "$c/records/$sel-$(basename "$f")"
    done
done
echo "seeded: $(find "$c" -type f | wc -l) files under $c"
