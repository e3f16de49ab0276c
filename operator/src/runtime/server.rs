//! The operator's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive) and `/readyz` (the operator is able to do its work).
//!
//! Readiness means: start-up is done (the election and, while leading, the controllers
//! run) and, with leader election, the API server answered this replica within the
//! renew deadline. The election talks to the API server every retry period, leader or
//! standby, so that is known at no extra cost; a replica that cannot reach the API
//! server can neither lead nor take over, and an unready new pod holds a rolling update
//! back before the old ones are stopped. It does *not* mean the S3 stores answer: a
//! store outage is a bucket's (its conditions, events and metrics), and failing every
//! replica's readiness for it would only stop the metrics being scraped. Without
//! leader election (one replica) readiness stays what start-up set.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::controller::metrics::Metrics;

/// When the API server last answered, and how old that may be for `/readyz`.
#[derive(Clone)]
struct ApiContact {
    last: watch::Receiver<Option<Instant>>,
    stale_after: Duration,
}

/// Shared state of the endpoints.
#[derive(Clone)]
pub struct Health {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    api: Arc<Mutex<Option<ApiContact>>>,
}

impl Health {
    /// New state, not ready yet.
    pub fn new(metrics: Metrics) -> Self {
        Health {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            api: Arc::new(Mutex::new(None)),
        }
    }

    /// Mark the operator started (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// From now on, ready only while `last` (when the API server last answered) is at
    /// most `stale_after` old.
    pub fn track_api(&self, last: watch::Receiver<Option<Instant>>, stale_after: Duration) {
        if let Ok(mut api) = self.api.lock() {
            *api = Some(ApiContact { last, stale_after });
        }
    }

    /// What `/readyz` answers now.
    pub fn readiness(&self) -> Readiness {
        let api = self
            .api
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .map(|a| (*a.last.borrow(), a.stale_after));
        readiness(self.ready.load(Ordering::SeqCst), api, Instant::now())
    }
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Start-up is not done.
    Starting,
    /// The API server has not answered within the renew deadline (or not yet).
    NoApiServer,
    /// Ready.
    Ready,
}

impl Readiness {
    fn response(self) -> (StatusCode, &'static str) {
        match self {
            Readiness::Ready => (StatusCode::OK, "ready"),
            Readiness::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
            Readiness::NoApiServer => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no answer from the API server within the renew deadline",
            ),
        }
    }
}

/// Readiness, pure: `started`, and with `api` = (when the API server last answered,
/// how old that may be), that answer recent enough at `now`.
pub fn readiness(
    started: bool,
    api: Option<(Option<Instant>, Duration)>,
    now: Instant,
) -> Readiness {
    if !started {
        return Readiness::Starting;
    }
    match api {
        None => Readiness::Ready,
        Some((Some(last), stale_after)) if now.saturating_duration_since(last) <= stale_after => {
            Readiness::Ready
        }
        Some(_) => Readiness::NoApiServer,
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    match h.metrics.render() {
        Ok(text) => (StatusCode::OK, text),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    h.readiness().response()
}

/// Serve the endpoints on `addr` until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // the address actually bound: with port 0 (tests, the demo) the kernel picks a free
    // port, which is only known here
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_started_and_while_the_api_server_answers() {
        let t0 = Instant::now();
        let ten = Duration::from_secs(10);
        assert_eq!(readiness(false, None, t0), Readiness::Starting);
        // without leader election: started is ready
        assert_eq!(readiness(true, None, t0), Readiness::Ready);
        // with it: not before the first answer
        assert_eq!(
            readiness(true, Some((None, ten)), t0),
            Readiness::NoApiServer
        );
        assert_eq!(
            readiness(true, Some((Some(t0), ten)), t0 + ten),
            Readiness::Ready
        );
        assert_eq!(
            readiness(
                true,
                Some((Some(t0), ten)),
                t0 + ten + Duration::from_millis(1)
            ),
            Readiness::NoApiServer
        );
        assert_eq!(
            readiness(false, Some((Some(t0), ten)), t0),
            Readiness::Starting
        );
    }

    #[test]
    fn readyz_follows_the_last_answer() -> Result<(), prometheus::Error> {
        let h = Health::new(Metrics::new()?);
        let (tx, rx) = watch::channel(None);
        h.set_ready(true);
        assert_eq!(h.readiness(), Readiness::Ready);
        h.track_api(rx, Duration::from_secs(10));
        assert_eq!(h.readiness(), Readiness::NoApiServer);
        tx.send_replace(Some(Instant::now()));
        assert_eq!(h.readiness().response(), (StatusCode::OK, "ready"));
        tx.send_replace(Instant::now().checked_sub(Duration::from_secs(11)));
        assert_eq!(h.readiness(), Readiness::NoApiServer);
        assert_eq!(h.readiness().response().0, StatusCode::SERVICE_UNAVAILABLE);
        Ok(())
    }
}
