//! `logship run`: the agent.
//!
//! Wiring only: the async runtime hosts signals, uploads and alerts; the
//! pipeline runs on its own thread; a stop signal travels through
//! [`crate::ops::shutdown`] and the pipeline's graceful drain decides when
//! the process exits.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::ConfigArg;
use crate::config;
use crate::ops::shutdown;
use crate::pipeline::{self, Parts};
use crate::redact::Redactor;
use crate::ship::dir::DirBucket;
use crate::ship::uploader::{Uploader, UploaderConfig};
use crate::ship::Bucket;

pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let path = args.path();
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = loaded.config;
    init_logging(&cfg.agent.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("logship-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(agent(cfg))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn agent(cfg: config::Config) -> anyhow::Result<ExitCode> {
    let redactor = Arc::new(Redactor::new(&cfg.redaction).map_err(anyhow::Error::msg)?);
    let bucket: Arc<dyn Bucket> = Arc::new(DirBucket::new(cfg.dir_bucket_path()));
    tracing::info!(bucket = %bucket.describe(), instance_id = %cfg.agent.instance_id(), sources = cfg.sources.len(), "logship starting");
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let uploader = Uploader::spawn(bucket, UploaderConfig::default(), done_tx);
    let (trigger, stop) = shutdown::channel();
    let parts = Parts {
        config: cfg,
        redactor,
        alerts: crate::alert::AlertHandle::disabled(),
        uploader,
        upload_done: done_rx,
        shutdown: stop.clone(),
        reload: None,
        on_ready: Some(Box::new(|| tracing::info!("sources watched; agent ready"))),
    };
    let worker = std::thread::Builder::new()
        .name("logship-pipeline".into())
        .spawn(move || pipeline::run(parts))
        .context("cannot start the pipeline thread")?;
    let (done_tx, mut pipeline_done) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(worker.join());
    });
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let result = tokio::select! {
        r = &mut pipeline_done => r,
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); trigger.fire(); pipeline_done.await }
        _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); trigger.fire(); pipeline_done.await }
    };
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
