//! The store's clock: one `HeadBucket` of the hot bucket, its `Date` response header
//! kept by [`DateCapture`] with the local wall clock just before the request went out
//! and just after the answer came in (the SDK drops the header).

use std::sync::{Arc, Mutex};

use aws_sdk_s3::{
    config::{
        ConfigBag, Intercept, RuntimeComponents,
        interceptors::{
            BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
        },
    },
    error::BoxError,
};
use chrono::{DateTime, Utc};

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::Tier,
    storage::{
        StorageError,
        clock::{ServerDate, parse_http_date},
    },
};

/// What [`DateCapture`] saw of the last attempt.
#[derive(Debug, Default)]
struct Seen {
    sent: Option<DateTime<Utc>>,
    reading: Option<ServerDate>,
}

/// A per-request SDK interceptor that keeps the `Date` of the last attempt's answer and
/// the local times around that attempt.
#[derive(Debug, Clone, Default)]
pub(super) struct DateCapture {
    seen: Arc<Mutex<Seen>>,
}

impl DateCapture {
    /// The reading of the last attempt, if its answer had a `Date`.
    pub fn take(&self) -> Option<ServerDate> {
        self.seen.lock().ok().and_then(|mut g| g.reading.take())
    }
}

impl Intercept for DateCapture {
    fn name(&self) -> &'static str {
        "evidence-capture-date"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut g) = self.seen.lock() {
            g.sent = Some(Utc::now());
            g.reading = None;
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let received = Utc::now();
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(parse_http_date);
        if let Ok(mut g) = self.seen.lock() {
            g.reading = match (g.sent, date) {
                (Some(sent), Some(date)) => Some(ServerDate {
                    date,
                    sent,
                    received,
                }),
                _ => None,
            };
        }
        Ok(())
    }
}

impl S3TierStore {
    /// Read the store's clock: one `HeadBucket` of the hot bucket.
    pub(super) async fn read_server_date(&self) -> Result<Option<ServerDate>, StorageError> {
        let bucket = self.loc(Tier::Hot).bucket.clone();
        let capture = DateCapture::default();
        self.send("head_bucket", &bucket, &Calls::default(), || {
            self.client()
                .head_bucket()
                .bucket(&bucket)
                .customize()
                .interceptor(capture.clone())
                .send()
        })
        .await
        .map_err(|f| f.into_error("head_bucket", &bucket, None))?;
        Ok(capture.take())
    }
}
