//! What the store proves about its buckets before it writes, and caches for
//! `region_cache_ttl`: that every tier bucket is in an allowed UK region (`prove`,
//! dropped by [`S3TierStore::forget_region_proof`]: the region its store reports, or,
//! when it reports none, the installation's declaration for the endpoint,
//! `StoreOptions::endpoint_regions`), that the legal-hold bucket has
//! Object Lock (`ensure_object_lock`), and whether a bucket is versioned (`versioned`,
//! refreshed by every listing through `remember_versioning`).
//!
//! The proof runs inside the store before every write (copy, hold, delete), so no caller
//! can forget it.

use std::time::Instant;

use aws_sdk_s3::types::{BucketVersioningStatus, ObjectLockEnabled};
use chrono::Utc;

use super::{
    S3TierStore,
    client::Calls,
    extended::{Capture, parse_location},
};
use crate::{
    api::clip::Tier,
    storage::{
        RegionProof, StorageError,
        region::{CachedProof, Location, check_endpoint, endpoint_authority, locate},
        retry::FailureKind,
    },
};

impl S3TierStore {
    /// Forget the cached region proof and Object Lock check (the next write re-proves).
    pub async fn forget_region_proof(&self) {
        *self.region.lock().await = None;
        *self.object_lock_until.lock().await = None;
    }

    /// Prove (or reuse a cached proof) that every tier bucket is in an allowed region.
    pub(super) async fn prove(&self, calls: &Calls) -> Result<RegionProof, StorageError> {
        let mut cached = self.region.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expires > Instant::now()
        {
            return Ok(c.proof.clone());
        }
        *cached = None;
        let allowed = &self.cfg.allowed_regions;
        check_endpoint(self.cfg.endpoint.as_deref(), allowed)?;
        let endpoint = self.cfg.endpoint.as_deref();
        let mut buckets = Vec::new();
        let mut declared = Vec::new();
        for bucket in self.cfg.tiers.buckets() {
            let capture = Capture::with_body();
            let constraint = match self
                .send("get_bucket_location", &bucket, calls, || {
                    self.client()
                        .get_bucket_location()
                        .bucket(&bucket)
                        .customize()
                        .interceptor(capture.clone())
                        .send()
                })
                .await
            {
                Ok(out) => out.location_constraint().map(|c| c.as_str().to_string()),
                // A store that refuses our signature because the bucket is elsewhere tells
                // us where: that is the finding.
                Err(f) if f.bucket_region.is_some() => f.bucket_region.clone(),
                // An answer the SDK could not decode (SeaweedFS puts the constraint
                // under another root): read from the body.
                Err(f) if f.status == Some(200) => {
                    match capture.take().body.as_deref().map(parse_location) {
                        Some(Ok(c)) => c,
                        _ => return Err(f.into_error("get_bucket_location", &bucket, None)),
                    }
                }
                Err(f) => return Err(f.into_error("get_bucket_location", &bucket, None)),
            };
            let found = match locate(endpoint, constraint.as_deref(), &self.opts.endpoint_regions) {
                Location::Reported(region) => region,
                Location::Declared { region, by } => {
                    declared.push((bucket.clone(), by));
                    region
                }
                Location::Unreported => {
                    let endpoint = endpoint.unwrap_or_default().to_string();
                    tracing::warn!(
                        bucket,
                        endpoint,
                        "bucket refused: its store reports no region"
                    );
                    return Err(StorageError::RegionUnreported {
                        bucket,
                        authority: endpoint_authority(&endpoint),
                        endpoint,
                        suggested: self.cfg.declared_region.clone(),
                    });
                }
            };
            if !allowed.contains(&found) {
                tracing::warn!(
                    bucket,
                    found,
                    ?allowed,
                    "bucket refused: not in an allowed UK region"
                );
                return Err(StorageError::RegionNotAllowed {
                    bucket,
                    found,
                    allowed: allowed.clone(),
                });
            }
            buckets.push((bucket, found));
        }
        let proof = RegionProof {
            buckets,
            declared,
            allowed: allowed.clone(),
            checked_at: Utc::now(),
        };
        *cached = Some(CachedProof {
            proof: proof.clone(),
            expires: Instant::now() + self.opts.region_cache_ttl,
        });
        Ok(proof)
    }

    /// Refuse a legal-hold bucket without Object Lock (cached like the region proof).
    pub(super) async fn ensure_object_lock(&self, calls: &Calls) -> Result<(), StorageError> {
        let mut until = self.object_lock_until.lock().await;
        if until.is_some_and(|u| u > Instant::now()) {
            return Ok(());
        }
        let bucket = self.loc(Tier::LegalHold).bucket.clone();
        let enabled = match self
            .send("get_object_lock_configuration", &bucket, calls, || {
                self.client()
                    .get_object_lock_configuration()
                    .bucket(&bucket)
                    .send()
            })
            .await
        {
            Ok(out) => {
                out.object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled)
            }
            Err(f)
                if f.code == "ObjectLockConfigurationNotFoundError"
                    || (f.kind == FailureKind::NotFound && f.code != "NoSuchBucket") =>
            {
                false
            }
            Err(f) => return Err(f.into_error("get_object_lock_configuration", &bucket, None)),
        };
        if !enabled {
            return Err(StorageError::ObjectLockMissing { bucket });
        }
        *until = Some(Instant::now() + self.opts.region_cache_ttl);
        Ok(())
    }

    /// Whether `bucket` has versioning enabled (or suspended), cached like the region
    /// proof; listings refresh it.
    pub(super) async fn versioned(
        &self,
        bucket: &str,
        calls: &Calls,
    ) -> Result<bool, StorageError> {
        if let Some((v, at)) = self.versioning.lock().await.get(bucket)
            && at.elapsed() < self.opts.region_cache_ttl
        {
            return Ok(*v);
        }
        let out = self
            .send("get_bucket_versioning", bucket, calls, || {
                self.client().get_bucket_versioning().bucket(bucket).send()
            })
            .await
            .map_err(|f| f.into_error("get_bucket_versioning", bucket, None))?;
        let v = out.status().is_some();
        self.remember_versioning(bucket, v).await;
        Ok(v)
    }

    /// Refuse tiers that are the same objects (hot and cool told apart by storage class
    /// only) unless their bucket has versioning Enabled: see
    /// [`StorageError::SameKeyUnversioned`]. One `GetBucketVersioning` for such a layout,
    /// none otherwise. Suspended versioning is refused too: a copy then overwrites the
    /// `null` version it was made from.
    pub(super) async fn ensure_safe_layout(&self, calls: &Calls) -> Result<(), StorageError> {
        let (hot, cool) = (self.loc(Tier::Hot), self.loc(Tier::Cool));
        if !hot.same_objects(cool) {
            return Ok(());
        }
        let bucket = hot.bucket.clone();
        let out = self
            .send("get_bucket_versioning", &bucket, calls, || {
                self.client().get_bucket_versioning().bucket(&bucket).send()
            })
            .await
            .map_err(|f| f.into_error("get_bucket_versioning", &bucket, None))?;
        match out.status() {
            Some(BucketVersioningStatus::Enabled) => Ok(()),
            other => Err(StorageError::SameKeyUnversioned {
                bucket,
                status: other.map_or("never enabled".to_string(), |s| s.as_str().to_string()),
            }),
        }
    }

    /// Record what a listing (or [`Self::versioned`]) found out about `bucket`.
    pub(super) async fn remember_versioning(&self, bucket: &str, versioned: bool) {
        self.versioning
            .lock()
            .await
            .insert(bucket.to_string(), (versioned, Instant::now()));
    }
}
