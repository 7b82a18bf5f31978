//! `logship run`: the agent.
//!
//! Wiring only: the async runtime hosts signals, the endpoint, reloads,
//! uploads and alerts; the pipeline runs on its own thread; a stop signal
//! travels through [`crate::ops::shutdown`] and the pipeline's graceful
//! drain decides when the process exits. The endpoint has its own stop
//! trigger, fired after the drain, so `/metrics` stays up while it runs.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::RunArgs;
use crate::config;
use crate::ops::log::LogFormat;
use crate::ops::reload::Reloader;
use crate::ops::systemd::Notifier;
use crate::ops::{http, shutdown, Readiness};
use crate::pipeline::tap::Tap;
use crate::pipeline::{self, now_ms, Parts};
use crate::redact::Redactor;
use crate::ship::uploader::{Uploader, UploaderConfig};
use crate::ship::Bucket;

/// The watchdog is fed only while the pipeline loop made progress this
/// recently.
const PIPELINE_STALL: Duration = Duration::from_secs(20);
/// At a graceful stop, how long queued stream events may take to go out.
const STREAMS_DRAIN: Duration = Duration::from_secs(2);

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let format = LogFormat::resolve(args.log_format)?;
    let path = args.config.path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("logship-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // First, before the config is even read: a SIGTERM from the start
        // on is a graceful stop, never the default kill (a service stopped
        // while it starts, or a restart right after the last one stopped).
        let stops = Stops {
            term: signal(tokio::signal::unix::SignalKind::terminate())?,
            int: signal(tokio::signal::unix::SignalKind::interrupt())?,
        };
        let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::ops::log::init(&loaded.config.agent.log_level, format);
        raise_fd_limit();
        agent(path, loaded, stops).await
    })
}

/// The stop signals, registered before anything else.
struct Stops {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

fn signal(kind: tokio::signal::unix::SignalKind) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).context("cannot install a signal handler")
}

async fn agent(
    path: std::path::PathBuf,
    loaded: config::Loaded,
    stops: Stops,
) -> anyhow::Result<ExitCode> {
    let Stops {
        term: mut sigterm,
        int: mut sigint,
    } = stops;
    let cfg = loaded.config.clone();
    let notifier = Notifier::from_env();
    let ready = Readiness::default();
    ready.set_config_loaded();
    let (stop_trigger, stop) = shutdown::channel();
    let (http_trigger, http_stop) = shutdown::channel();
    if cfg.metrics.enabled {
        let addr: SocketAddr = cfg.metrics.listen.parse().context("metrics.listen")?;
        let endpoint = http::bind(addr).await?;
        tracing::info!(listen = %endpoint.local_addr(), "metrics endpoint up");
        let ready = ready.clone();
        tokio::spawn(async move {
            if let Err(e) = endpoint.serve(ready, http_stop).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }

    let redactor = Arc::new(Redactor::new(&cfg.redaction).map_err(anyhow::Error::msg)?);
    let bucket: Arc<dyn Bucket> = crate::ship::from_config(&cfg).await?;
    tracing::info!(bucket = %bucket.describe(), instance_id = %cfg.agent.instance_id(), sources = cfg.sources.len(), "logship starting");
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let uploader = Uploader::spawn(bucket, UploaderConfig::from_bucket(&cfg.bucket), done_tx);
    // /readyz turns not-ready while uploads have failed for too long.
    ready.set_max_upload_failing(cfg.bucket.not_ready_after.get());
    let stream_health = crate::source::stream::Health::default();
    {
        let (uploader, ready, mut stop) = (uploader.clone(), ready.clone(), stop.clone());
        let streams = stream_health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        ready.set_upload_failing_since(uploader.failing_since());
                        let failing = streams.failing_too_long(std::time::Instant::now());
                        ready.set_stream_failing(failing.map(|f| (f.source, f.for_, f.limit)));
                    }
                    _ = stop.wait() => break,
                }
            }
        });
    }

    let dir_retention = spawn_dir_pruning(&cfg, stop.clone());
    let alerts = crate::alert::start(&cfg.alerts, &cfg.agent.instance_id(), stop.clone())?;
    let tap = Tap::default();
    spawn_api(&cfg, &tap, stop.clone()).await?;
    let streams = crate::fanout::Publisher::spawn(&cfg.streams, &tap)?;

    // Reloads: validated configs only. Alert rules and channels change in
    // place here; the rest is applied by the pipeline thread.
    let (reload_tx, reload_rx) = std::sync::mpsc::channel();
    let mut reloads = Reloader::new(&path)
        .notifier(notifier.clone())
        .current(&loaded)
        .spawn(stop.clone())?;
    {
        let (alerts, uploader, ready) = (alerts.clone(), uploader.clone(), ready.clone());
        let mut running_bucket = cfg.bucket.clone();
        tokio::spawn(async move {
            while let Some(new) = reloads.recv().await {
                dir_retention.store(new.config.bucket.retention.is_some(), Ordering::Relaxed);
                if new.config.bucket != running_bucket
                    && rebuild_bucket(&new.config, &uploader, &ready).await
                {
                    running_bucket = new.config.bucket.clone();
                }
                if let Err(e) = alerts.reconfigure(&new.config.alerts) {
                    tracing::error!(error = %e, "new alert rules could not be applied; keeping the running ones");
                }
                if reload_tx.send(new.config).is_err() {
                    break;
                }
            }
        });
    }

    let heartbeat = Arc::new(AtomicI64::new(now_ms()));
    let on_ready = {
        let (ready, notifier) = (ready.clone(), notifier.clone());
        Box::new(move || {
            ready.set_sources_watched(true);
            notifier.ready();
            tracing::info!("sources watched; agent ready");
        })
    };
    {
        let hb = heartbeat.clone();
        notifier.spawn_watchdog_checked(stop.clone(), move || {
            now_ms() - hb.load(Ordering::Relaxed) < PIPELINE_STALL.as_millis() as i64
        });
    }
    let parts = Parts {
        config: cfg,
        redactor,
        alerts,
        uploader,
        upload_done: done_rx,
        shutdown: stop.clone(),
        reload: Some(reload_rx),
        on_ready: Some(on_ready),
        heartbeat: Some(heartbeat),
        tap,
        readiness: ready.clone(),
        streams: Some(crate::source::stream::Link {
            runtime: tokio::runtime::Handle::current(),
            shutdown: stop.clone(),
            health: stream_health,
        }),
    };
    let worker = std::thread::Builder::new()
        .name("logship-pipeline".into())
        .spawn(move || pipeline::run(parts))
        .context("cannot start the pipeline thread")?;
    let (done_tx, mut pipeline_done) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(worker.join());
    });
    let stopping = || {
        ready.set_stopping();
        notifier.stopping();
        stop_trigger.fire();
    };
    let result = tokio::select! {
        r = &mut pipeline_done => r,
        _ = sigterm.recv() => { tracing::info!("SIGTERM: sealing, uploading and stopping"); stopping(); pipeline_done.await }
        _ = sigint.recv() => { tracing::info!("SIGINT: sealing, uploading and stopping"); stopping(); pipeline_done.await }
    };
    stop_trigger.fire();
    if let Some(p) = &streams {
        // What the final commit made durable still goes out, if Redis is
        // there to take it.
        p.drain(STREAMS_DRAIN).await;
    }
    http_trigger.fire();
    match result {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped cleanly");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => anyhow::bail!("the pipeline thread panicked"),
        Err(_) => anyhow::bail!("lost track of the pipeline thread"),
    }
}

/// How often the `dir` bucket's retention classes are pruned.
const DIR_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// For a `dir` bucket: prune its `retain-{days}d/` trees at start and every
/// [`DIR_PRUNE_EVERY`] while `[bucket.retention]` is set (the returned flag;
/// a reload updates it). An s3/r2 bucket expires them with lifecycle rules.
fn spawn_dir_pruning(cfg: &config::Config, mut stop: shutdown::Shutdown) -> Arc<AtomicBool> {
    let on = Arc::new(AtomicBool::new(cfg.bucket.retention.is_some()));
    if cfg.bucket.kind != config::BucketKind::Dir {
        return on;
    }
    let bucket = crate::ship::dir::DirBucket::new(cfg.dir_bucket_path());
    let bucket = Arc::new(bucket);
    let prefix = cfg.bucket.key_prefix().to_string();
    let flag = on.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DIR_PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait() => return,
            }
            if !flag.load(Ordering::Relaxed) {
                continue;
            }
            let (b, p) = (bucket.clone(), prefix.clone());
            let now = std::time::SystemTime::now();
            match tokio::task::spawn_blocking(move || b.prune_classes(&p, now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(
                    objects = n,
                    "dir bucket: removed objects past their retention class"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "dir bucket: pruning retention classes failed; retried later")
                }
                Err(e) => tracing::warn!(error = %e, "dir bucket: pruning task failed"),
            }
        }
    });
    on
}

/// The `[api]` listener, when configured: bound now (a taken port fails the
/// start), serving until the stop signal.
async fn spawn_api(
    cfg: &config::Config,
    tap: &Tap,
    stop: shutdown::Shutdown,
) -> anyhow::Result<()> {
    let Some(addr) = cfg.api.addr() else {
        return Ok(());
    };
    let reader = crate::read::Reader::from_config(cfg)?;
    let listener = crate::api::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr(), "api up");
    let api = crate::api::Api::start(cfg.api.clone(), reader, tap);
    tokio::spawn(listener.serve(api, stop));
    Ok(())
}

/// A reload changed `[bucket]`: build a client from the new settings (new
/// credentials, endpoint, timeouts) and hand it to the uploader, which uses
/// it from the next attempt on. `false` (and the old client stays) if it
/// cannot be built.
async fn rebuild_bucket(cfg: &config::Config, uploader: &Uploader, ready: &Readiness) -> bool {
    match crate::ship::from_config(cfg).await {
        Ok(bucket) => {
            tracing::info!(bucket = %bucket.describe(), "bucket client rebuilt from the reloaded [bucket]; uploads continue with it");
            uploader.replace(bucket, UploaderConfig::from_bucket(&cfg.bucket));
            ready.set_max_upload_failing(cfg.bucket.not_ready_after.get());
            true
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the reloaded [bucket] could not be applied; uploads continue with the previous client");
            false
        }
    }
}

/// Take the hard `RLIMIT_NOFILE` as the soft one (a unit's default soft
/// limit of 1024 is far below the usual hard one), as servers that hold
/// many files do: the tailer keeps its handles within a share of it
/// (`source::fds`), so the more it may hold, the fewer reopens.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur >= lim.rlim_max
    {
        return;
    }
    let old = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::debug!(
            from = old,
            to = lim.rlim_max,
            "raised the open-files limit to its hard limit"
        );
    }
}
