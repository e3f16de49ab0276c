//! A fake S3 endpoint for unit tests of the request path: it answers every request
//! with one canned S3 error (status and code) and counts the requests it got, so a test
//! can tell how often a failure was retried.

#![allow(clippy::unwrap_used)]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use aws_sdk_s3::Client;
use axum::{Router, http::StatusCode};

use super::client::sdk_config;
use crate::storage::{BucketConfig, StaticCredentials, TierLocation, Tiers};

/// A local endpoint answering every request with the same error.
pub(crate) struct FakeS3 {
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeS3 {
    /// Serve `status` with the S3 error `code` to every request.
    pub(crate) async fn answering(status: u16, code: &'static str) -> FakeS3 {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let status = StatusCode::from_u16(status).unwrap();
        let app = Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (
                    status,
                    [("content-type", "application/xml")],
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                         <Message>canned by the test</Message><RequestId>1</RequestId></Error>"
                    ),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeS3 {
            endpoint,
            hits,
            server,
        }
    }

    /// The requests answered so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// A bucket configuration pointing at this endpoint (path style, static keys).
    pub(crate) fn config(&self) -> BucketConfig {
        BucketConfig {
            name: "ns/fake".into(),
            declared_region: "eu-west-2".into(),
            endpoint: Some(self.endpoint.clone()),
            force_path_style: true,
            credentials: Some(StaticCredentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
                session_token: None,
            }),
            tiers: Tiers {
                hot: TierLocation::bucket("hot"),
                cool: TierLocation::bucket("cool"),
                legal_hold: TierLocation::bucket("lock"),
            },
            allowed_regions: vec!["eu-west-2".into()],
        }
    }

    /// An SDK client for this endpoint, configured as every operator client is
    /// (`sdk_config`: SDK retries off).
    pub(crate) async fn client(&self) -> Client {
        let builder = sdk_config(
            &self.config(),
            std::time::Duration::from_secs(1),
            "evidence-operator-tests",
        )
        .await;
        Client::from_conf(builder.build())
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}
