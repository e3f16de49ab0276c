//! [`RecordingSink`]: an [`AuditSink`] in memory, for tests (feature `testing`). It keeps
//! every batch it was given, answers with a [`Receipt`] whose head chains the batches,
//! and can be told to fail, so that a test sees what a sweep recorded and what it does
//! when the audit trail cannot be written.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{AuditError, AuditSink, Entry, Receipt, record::GENESIS};

#[derive(Debug)]
struct Inner {
    batches: Vec<Vec<Entry>>,
    calls: usize,
    fail_next: usize,
    head: String,
}

/// An audit sink that keeps its records in memory, and fails on demand.
#[derive(Debug)]
pub struct RecordingSink {
    inner: Mutex<Inner>,
}

impl Default for RecordingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSink {
    /// A sink that stores every batch.
    pub fn new() -> Self {
        RecordingSink {
            inner: Mutex::new(Inner {
                batches: Vec::new(),
                calls: 0,
                fail_next: 0,
                head: GENESIS.to_string(),
            }),
        }
    }

    /// A sink whose every write fails.
    pub fn failing() -> Self {
        let sink = Self::new();
        sink.fail_next(usize::MAX);
        sink
    }

    /// Make the next `n` writes fail (nothing of them is kept).
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Every entry stored, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().batches.iter().flatten().cloned().collect()
    }

    /// The batches stored, in order.
    pub fn batches(&self) -> Vec<Vec<Entry>> {
        self.lock().batches.clone()
    }

    /// Writes asked for (failed ones included).
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AuditSink for RecordingSink {
    async fn record(&self, entries: Vec<Entry>) -> Result<Option<Receipt>, AuditError> {
        let mut inner = self.lock();
        inner.calls += 1;
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err(AuditError::Request {
                op: "put_object",
                bucket: "memory-audit".into(),
                key: None,
                status: Some(503),
                code: Some("ServiceUnavailable".into()),
                message: "injected failure (RecordingSink::fail_next)".into(),
            });
        }
        let mut hash = Sha256::new();
        hash.update(inner.head.as_bytes());
        for e in &entries {
            hash.update(format!("{e:?}").as_bytes());
        }
        inner.head = hex::encode(hash.finalize());
        let records = entries.len();
        inner.batches.push(entries);
        let batch = inner.batches.len() as u64;
        Ok(Some(Receipt {
            batch,
            key: format!("memory/{batch:020}.jsonl"),
            records,
            head: inner.head.clone(),
            conflicts: 0,
        }))
    }
}
