//! The artifacts operators install: the systemd unit (verified and scored by
//! systemd-analyze), the .deb (built with cargo-deb from the binary cargo
//! already built for these tests, inspected, and — with
//! `LOGSHIP_DEB_INSTALL_TEST=1`, as root — installed, run and purged), and
//! the Kubernetes example (schema-validated with kubernetes-validate, its
//! embedded agent.toml passed through `logship check`).

use crate::ops_support;

use std::path::Path;
use std::process::Command;

use ops_support::{repo, require_tool, run_ok};

const BIN: &str = env!("CARGO_BIN_EXE_logship");

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let Some(analyze) = require_tool("systemd-analyze", "systemd_unit_verifies_and_is_hardened")
    else {
        return;
    };
    let unit = std::fs::read_to_string(repo().join("systemd/logship.service")).unwrap();
    for directive in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=logship",
        "StateDirectory=logship",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/logship",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SupplementaryGroups=adm",
        "Restart=on-failure",
        "WatchdogSec=",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(directive), "unit lacks {directive:?}");
    }
    // The stop timeout must outlast the default agent.shutdown_timeout (30s).
    let stop = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .expect("TimeoutStopSec=<N>s");
    assert!(stop > 30, "TimeoutStopSec={stop}s <= shutdown_timeout");

    // verify checks that executables exist: point it at the built binary.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("logship.service");
    std::fs::write(&local, unit.replace("/usr/bin/logship", BIN)).unwrap();
    let out = run_ok(Command::new(&analyze).arg("verify").arg(&local));
    let noise = String::from_utf8_lossy(&out.stderr);
    assert!(noise.trim().is_empty(), "verify warned:\n{noise}");

    // Exposure is on a 0..100 scale here (printed as 0.0..10.0); 2.5 or
    // better is "OK" in systemd's words.
    let out = run_ok(
        Command::new(&analyze)
            .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
            .arg(&local),
    );
    let report = stdout(&out);
    let score = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("security summary line");
    eprintln!("{score}");
}

/// Build the .deb from the already-built debug binary (stripped, fast
/// compression: seconds, not a release build).
fn build_deb(out_dir: &Path) -> Option<std::path::PathBuf> {
    let cargo_deb = require_tool("cargo-deb", "deb_package")?;
    // The conffile ships docs/operations.md; make sure the asset list and
    // the tree agree before blaming cargo-deb.
    for asset in [
        "packaging/deb/agent.toml",
        "docs/operations.md",
        "systemd/logship.service",
    ] {
        assert!(repo().join(asset).is_file(), "missing {asset}");
    }
    run_ok(
        Command::new(cargo_deb)
            .current_dir(repo())
            .args([
                "--no-build",
                "--profile",
                "dev",
                "--strip",
                "--fast",
                "--quiet",
                "-o",
            ])
            .arg(out_dir),
    );
    let deb = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb in the output directory");
    Some(deb)
}

#[test]
fn deb_package() {
    let dir = tempfile::tempdir().unwrap();
    let Some(deb) = build_deb(dir.path()) else {
        return;
    };
    let dpkg_deb = require_tool("dpkg-deb", "deb_package").expect("dpkg-deb");

    let listing = stdout(&run_ok(Command::new(&dpkg_deb).arg("-c").arg(&deb)));
    for (path, mode) in [
        ("./usr/bin/logship", "-rwxr-xr-x"),
        ("./etc/logship/agent.toml", "-rw-r-----"),
        ("./usr/lib/systemd/system/logship.service", "-rw-r--r--"),
        ("./usr/share/doc/logship/operations.md", "-rw-r--r--"),
    ] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{listing}"));
        assert!(line.starts_with(mode), "{line}: want {mode}");
    }
    let conffiles = stdout(&run_ok(
        Command::new(&dpkg_deb).arg("-I").arg(&deb).arg("conffiles"),
    ));
    assert_eq!(conffiles.trim(), "/etc/logship/agent.toml");
    let postinst = stdout(&run_ok(
        Command::new(&dpkg_deb).arg("-I").arg(&deb).arg("postinst"),
    ));
    assert!(postinst.contains("useradd --system"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper"),
        "unit enabled by postinst"
    );

    // The shipped conffile is a valid config.
    run_ok(
        Command::new(BIN)
            .args(["check", "-c"])
            .arg(repo().join("packaging/deb/agent.toml")),
    );

    if std::env::var("LOGSHIP_DEB_INSTALL_TEST").as_deref() != Ok("1") {
        eprintln!(
            "deb_package: install/remove part skipped: set LOGSHIP_DEB_INSTALL_TEST=1 \
             (as root; it runs dpkg -i and dpkg --purge on this machine)"
        );
        return;
    }
    install_run_purge(&deb);
}

/// Purges the package even when an assertion fails half-way.
struct Purge;
impl Drop for Purge {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "logship"]);
    }
}

/// `dpkg`, retried while another dpkg/apt holds the lock.
fn dpkg(args: &[&str]) -> std::process::Output {
    for _ in 0..60 {
        let out = Command::new("dpkg").args(args).output().expect("dpkg");
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains("lock") {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    panic!("dpkg lock held for 60 s");
}

fn install_run_purge(deb: &Path) {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "LOGSHIP_DEB_INSTALL_TEST=1 needs root"
    );
    let _purge = Purge;
    let out = dpkg(&["-i", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dpkg -i: {}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );

    run_ok(Command::new("getent").args(["passwd", "logship"]));
    let state = stdout(&run_ok(Command::new("stat").args([
        "-c",
        "%U:%G %a",
        "/var/lib/logship",
    ])));
    assert_eq!(state.trim(), "logship:logship 750");
    let conf = stdout(&run_ok(Command::new("stat").args([
        "-c",
        "%U:%G %a",
        "/etc/logship/agent.toml",
    ])));
    assert_eq!(conf.trim(), "root:logship 640");

    // As root and as the service user (who reads the config via its group).
    let check = stdout(&run_ok(Command::new("/usr/bin/logship").args([
        "check",
        "-c",
        "/etc/logship/agent.toml",
    ])));
    assert!(check.starts_with("/etc/logship/agent.toml: OK"), "{check}");
    run_ok(Command::new("runuser").args([
        "-u",
        "logship",
        "--",
        "/usr/bin/logship",
        "check",
        "-c",
        "/etc/logship/agent.toml",
    ]));
    // The installed unit, against the installed binary.
    if let Some(analyze) = ops_support::find_tool("systemd-analyze") {
        run_ok(Command::new(analyze).args(["verify", "/usr/lib/systemd/system/logship.service"]));
    }

    let out = dpkg(&["--purge", "logship"]);
    assert!(
        out.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for gone in [
        "/usr/bin/logship",
        "/etc/logship/agent.toml",
        "/var/lib/logship",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}

#[test]
fn kubernetes_example_validates() {
    let Some(validate) = require_tool("kubernetes-validate", "kubernetes_example_validates") else {
        return;
    };
    let manifest = repo().join("packaging/k8s/logship-sidecar.yaml");
    let out = run_ok(Command::new(&validate).arg("--strict").arg(&manifest));
    let report = stdout(&out);
    assert!(report.contains("deployment/web"), "{report}");

    // The validator does reject mistakes (a typo'd field, a wrong type).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &bad,
        text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .unwrap();
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "validator accepted a typo");

    // Grace period outlasts the agent's shutdown_timeout.
    let grace: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > 30,
        "terminationGracePeriodSeconds {grace} <= shutdown_timeout 30s"
    );

    // The ConfigMap's agent.toml passes `logship check` with the Secret's
    // variables set (PyYAML comes with kubernetes-validate).
    let python = validate.with_file_name("python3");
    let toml = stdout(&run_ok(Command::new(python).arg("-c").arg(
        "import sys, yaml\n\
         docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d['kind'] == 'ConfigMap']\n\
         sys.stdout.write(docs[0]['data']['agent.toml'])",
    ).arg(&manifest)));
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = run_ok(
        Command::new(BIN)
            .args(["check", "-c"])
            .arg(&cfg)
            .env("POD_NAME", "web-5d8f-abcde")
            .env("R2_ACCOUNT_ID", "0123456789abcdef")
            .env("R2_WRITE_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("R2_WRITE_SECRET_ACCESS_KEY", "not-a-real-secret"),
    );
    let summary = stdout(&out);
    assert!(
        !summary.contains("not-a-real-secret"),
        "secret printed:\n{summary}"
    );
}

/// What the Kubernetes example and the agent's defaults rely on (the image
/// itself is built and run in `ops_container.rs`).
#[test]
fn dockerfile_agrees_with_the_kubernetes_example() {
    let docker = std::fs::read_to_string(repo().join("packaging/Dockerfile")).unwrap();
    let k8s = std::fs::read_to_string(repo().join("packaging/k8s/logship-sidecar.yaml")).unwrap();
    let last_stage = docker.rsplit("\nFROM ").next().unwrap();
    assert!(
        last_stage.contains("USER 65532:65532"),
        "final stage runs as non-root"
    );
    assert!(k8s.contains("runAsUser: 65532") && k8s.contains("runAsNonRoot: true"));
    assert!(
        last_stage.contains("EXPOSE 9464"),
        "the default metrics port"
    );
    assert!(k8s.contains("containerPort: 9464"));
    assert!(last_stage.contains("ENTRYPOINT [\"/usr/bin/logship\"]"));
    assert!(k8s.contains("args: [\"run\", \"-c\", \"/etc/logship/agent.toml\"]"));
    assert!(k8s.contains("mountPath: /etc/logship") && k8s.contains("mountPath: /var/lib/logship"));
    // The builder must compile what the lockfile pins.
    assert!(docker.contains("cargo build --release --locked"));
}
