//! The operator's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive) and `/readyz` (the operator finished start-up: connected to
//! the API server and, as leader or standby, running).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio_util::sync::CancellationToken;

use crate::controller::metrics::Metrics;

/// Shared state of the endpoints.
#[derive(Clone)]
pub struct Health {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

impl Health {
    /// New state, not ready yet.
    pub fn new(metrics: Metrics) -> Self {
        Health {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Mark the operator ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
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
    if h.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
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
