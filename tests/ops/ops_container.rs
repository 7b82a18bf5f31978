//! The container image, built and run: `packaging/build-image-offline.sh`
//! builds the runtime stage of `packaging/Dockerfile` with podman (no daemon,
//! vfs storage under a temp dir, so nothing is left behind), around the
//! binary these tests use. The container then runs as the Dockerfile's
//! non-root user against a mounted, read-only log directory and a data
//! volume holding the dir bucket, is stopped with `podman stop` (SIGTERM),
//! and every line must be in the bucket exactly once.
//!
//! podman and runc come from `.ci/install-ops-deps.sh`. Where podman is
//! installed but cannot run a container at all (no namespaces, a hybrid
//! cgroup setup crun refuses, ...), the test prints why and skips; a
//! container that starts but whose agent misbehaves fails it.

use crate::ops_support::{repo, require_tool, run_ok};

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_logship");
const LINES: usize = 2000;

struct Podman {
    exe: PathBuf,
    flags: Vec<String>,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(&self.flags);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers and images live under the temp root; unmount what the
        // storage driver may still hold before the dir goes.
        let _ = self.cmd().args(["rm", "-af"]).output();
        let _ = self.cmd().args(["rmi", "-af"]).output();
    }
}

fn events(bucket: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut stack = vec![bucket.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "gz") {
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
            }
        }
    }
    out
}

#[test]
fn container_image_runs_as_nonroot_and_ships_every_line() {
    let Some(exe) = require_tool(
        "podman",
        "container_image_runs_as_nonroot_and_ships_every_line",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let runtime = if require_tool("runc", "container_image").is_some() {
        // crun refuses the hybrid cgroup v1 layout of these machines; runc
        // runs there.
        "runc"
    } else {
        "crun"
    };
    let podman = Podman {
        exe,
        flags: vec![
            format!("--root={}", t.join("storage").display()),
            format!("--runroot={}", t.join("run").display()),
            "--storage-driver=vfs".into(),
            format!("--runtime={runtime}"),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
        ],
    };

    let tag = format!("localhost/logship-test:{}", std::process::id());
    let out = run_ok(
        Command::new("bash")
            .arg(repo().join("packaging/build-image-offline.sh"))
            .args([BIN, &tag])
            .env("PODMAN_FLAGS", podman.flags.join(" ")),
    );
    let built = String::from_utf8_lossy(&out.stderr);
    for from_dockerfile in ["USER 65532:65532", "ENTRYPOINT [\"/usr/bin/logship\"]"] {
        assert!(built.contains(from_dockerfile), "{built}");
    }

    // Limits the sandbox may refuse to raise are set to values it allows.
    let limits = ["--ulimit=nofile=1024:1024", "--ulimit=nproc=1000:1000"];
    let probe = podman
        .cmd()
        .args(["run", "--rm", "--network=none"])
        .args(limits)
        .args([tag.as_str(), "version"])
        .output()
        .unwrap();
    if !probe.status.success() {
        let err = String::from_utf8_lossy(&probe.stderr);
        // 125/126/127: podman or the OCI runtime failed, not the agent.
        if matches!(probe.status.code(), Some(125..=127)) {
            eprintln!("SKIPPED container test: podman cannot run a container here: {err}");
            return;
        }
        panic!(
            "`logship version` in the image failed: {}\n{err}",
            probe.status
        );
    }
    assert!(String::from_utf8_lossy(&probe.stdout).contains("logship"));

    let (logs, data, conf) = (t.join("logs"), t.join("data"), t.join("conf"));
    for d in [&logs, &data, &conf] {
        std::fs::create_dir_all(d).unwrap();
    }
    let text: String = (0..LINES)
        .map(|i| format!("2026-12-01T10:00:00Z ERROR request {i} failed\n"))
        .collect();
    std::fs::write(logs.join("app.log"), text).unwrap();
    std::fs::write(
        conf.join("agent.toml"),
        "[agent]\ninstance_id = \"ctr\"\ndata_dir = \"/var/lib/logship\"\n\
         [[sources]]\nname = \"app\"\ninclude = [\"/logs/*.log\"]\n\
         [metrics]\nenabled = false\n",
    )
    .unwrap();
    // The volume must be writable by the image's user, as in a pod with
    // fsGroup or a host dir chowned by the operator.
    run_ok(Command::new("chown").args(["65532:65532"]).arg(&data));

    let mount = |host: &Path, at: &str, ro: bool| {
        format!(
            "--volume={}:{at}{}",
            host.display(),
            if ro { ":ro" } else { "" }
        )
    };
    let name = format!("logship-test-{}", std::process::id());
    run_ok(
        podman
            .cmd()
            .args(["run", "-d", "--network=none", "--name", &name])
            .args(limits)
            .arg(mount(&logs, "/logs", true))
            .arg(mount(&data, "/var/lib/logship", false))
            .arg(mount(&conf, "/etc/logship", true))
            .arg(&tag),
    );
    // Wait until the agent has checkpointed the whole file, then stop it.
    let want = std::fs::metadata(logs.join("app.log")).unwrap().len();
    let cp = data.join("state/checkpoint.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let read = std::fs::read(&cp)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["files"][0]["offset"].as_u64());
        if read == Some(want) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let logs = podman.cmd().args(["logs", &name]).output().unwrap();
            panic!(
                "agent in the container did not read the file: {read:?} of {want}\n{}",
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run_ok(podman.cmd().args(["stop", "-t", "30", &name]));
    let code = run_ok(podman.cmd().args(["wait", &name]));
    let agent_log = run_ok(podman.cmd().args(["logs", &name]));
    let agent_log = String::from_utf8_lossy(&agent_log.stderr).into_owned()
        + &String::from_utf8_lossy(&agent_log.stdout);
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "exit code after SIGTERM; log:\n{agent_log}"
    );
    assert!(agent_log.contains("stopped cleanly"), "{agent_log}");
    assert!(
        !agent_log.contains('\u{1b}'),
        "colour codes in a container's log"
    );

    // Written by the image's user, not root.
    use std::os::unix::fs::MetadataExt;
    let state = std::fs::metadata(data.join("state")).unwrap();
    assert_eq!((state.uid(), state.gid()), (65532, 65532));

    let evs = events(&data.join("bucket"));
    let msgs: HashSet<String> = evs
        .iter()
        .map(|e| e["msg"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(evs.len(), LINES, "events in the bucket");
    assert_eq!(msgs.len(), LINES, "distinct lines");
    assert!(evs
        .iter()
        .all(|e| e["lvl"] == "error" && e["instanceId"] == "ctr"));
}
