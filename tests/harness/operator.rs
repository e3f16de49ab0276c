//! The operator, running in-process against the test servers: the same
//! `runtime::run_with` the binary runs, with its own metrics, stopped on demand.

use anyhow::{Result, bail};
use clap::Parser;
use evidence_operator::{
    cli::{Cli, Command},
    controller::metrics::Metrics,
    runtime::{self, Settings, server::Health},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How far the tests' operators run ahead of the wall clock: clips uploaded a moment
/// ago are then past the 24-hour safety floor, which counts from upload time too.
pub const CLOCK_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// The settings of `evidence-operator run` with these flags, watching `ns` (its Lease
/// there too, leader election off unless a flag turns it on, sweeps at most a second
/// apart, audit objects locked for a day, a clip catalogue of its own), the clock
/// [`CLOCK_AHEAD`].
pub fn settings(ns: &str, flags: &[&str]) -> Result<Settings> {
    let mut argv = vec![
        "evidence-operator",
        "run",
        "--watch-namespace",
        ns,
        "--lease-namespace",
        ns,
        "--min-requeue",
        "1s",
        "--audit-retention-days",
        "1",
    ];
    argv.extend_from_slice(flags);
    if !flags.iter().any(|a| a.starts_with("--leader-elect")) {
        argv.push("--leader-elect=false");
    }
    // Each operator its own clip catalogue (a replica's is its own, as in a pod).
    let catalogue = crate::servers()
        .dir
        .join("catalogues")
        .join(crate::unique_name("operator"));
    let catalogue = catalogue.to_string_lossy().into_owned();
    if !flags.iter().any(|a| a.starts_with("--catalogue-dir")) {
        argv.push("--catalogue-dir");
        argv.push(&catalogue);
    }
    settings_from_argv(&argv)
}

/// The settings of exactly this command line (`evidence-operator run ...`), the clock
/// [`CLOCK_AHEAD`].
pub fn settings_from_argv<S: AsRef<str>>(argv: &[S]) -> Result<Settings> {
    let argv = argv.iter().map(AsRef::as_ref);
    let Command::Run(args) = Cli::try_parse_from(argv)?.command else {
        bail!("not a run command");
    };
    let mut settings = args.settings();
    settings.controllers.clock_offset = CLOCK_AHEAD;
    Ok(settings)
}

/// An operator running in-process until [`RunningOperator::stop`].
pub struct RunningOperator {
    shutdown: CancellationToken,
    task: JoinHandle<Result<()>>,
    /// Its metrics (its own registry).
    pub metrics: Metrics,
}

impl RunningOperator {
    /// Start the operator for namespace `ns` with the test servers' admin client: the
    /// test defaults of [`settings`] plus `flags`.
    pub async fn for_namespace(ns: &str, flags: &[&str]) -> Result<RunningOperator> {
        let client = crate::servers().kube_client().await?;
        RunningOperator::start(client, settings(ns, flags)?)
    }

    /// Start the operator with `settings`, acting as `client`.
    pub fn start(client: kube::Client, settings: Settings) -> Result<RunningOperator> {
        let metrics = Metrics::new()?;
        let health = Health::new(metrics.clone());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime::run_with(
            client,
            settings,
            metrics.clone(),
            health,
            shutdown.clone(),
        ));
        Ok(RunningOperator {
            shutdown,
            task,
            metrics,
        })
    }

    /// Await `check` while the operator runs, then shut it down: the check's error
    /// first, else how the operator's run ended, else the check's value.
    pub async fn check<T>(self, check: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let result = check.await;
        let stopped = self.stop().await;
        let value = result?;
        stopped?;
        Ok(value)
    }

    /// Shut it down gracefully and return how its run ended.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// EvidenceBucket reconciles it has started.
    pub fn reconciles(&self) -> u64 {
        self.metrics
            .reconciles
            .with_label_values(&["evidencebucket"])
            .get()
    }
}
