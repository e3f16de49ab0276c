//! What a tier store is told: where each tier lives ([`BucketConfig`]) and how to behave
//! ([`StoreOptions`]: multipart threshold, concurrency, retries, region-proof cache).
//! The storage layer never sees a CRD: the controller maps an `EvidenceBucket` to these.

use std::{fmt, sync::Arc, time::Duration};

use futures::future::BoxFuture;

use super::{
    error::{MoveStep, StorageError},
    region::EndpointRegions,
};
use crate::api::clip::Tier;

/// Where one tier's clips live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLocation {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (may be empty); a clip's key is relative to it.
    pub prefix: String,
    /// The storage class objects are written with in this tier (`None`: the bucket's
    /// default, `STANDARD`).
    pub storage_class: Option<String>,
}

impl TierLocation {
    /// A location with no prefix and the default storage class.
    pub fn bucket(bucket: impl Into<String>) -> Self {
        TierLocation {
            bucket: bucket.into(),
            prefix: String::new(),
            storage_class: None,
        }
    }

    /// The storage class written here, `STANDARD` when none is set.
    pub fn class(&self) -> &str {
        self.storage_class.as_deref().unwrap_or("STANDARD")
    }

    /// The full object key of a clip key in this tier.
    pub fn object_key(&self, clip_key: &str) -> String {
        format!("{}{clip_key}", self.prefix)
    }

    /// Whether two locations address the same objects (same bucket and prefix).
    pub fn same_objects(&self, other: &TierLocation) -> bool {
        self.bucket == other.bucket && self.prefix == other.prefix
    }
}

/// The three tiers of an evidence bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    /// New uploads.
    pub hot: TierLocation,
    /// Kept evidence: another bucket, or the same bucket with a cheaper storage class.
    pub cool: TierLocation,
    /// The Object Lock bucket.
    pub legal_hold: TierLocation,
}

impl Tiers {
    /// The location of one tier.
    pub fn get(&self, tier: Tier) -> &TierLocation {
        match tier {
            Tier::Hot => &self.hot,
            Tier::Cool => &self.cool,
            Tier::LegalHold => &self.legal_hold,
        }
    }

    /// The distinct buckets of the three tiers, in tier order.
    pub fn buckets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in Tier::ALL {
            let b = &self.get(t).bucket;
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
        out
    }
}

/// Static S3 credentials (e.g. from a Kubernetes Secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Everything a store needs to know about one evidence bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    /// A name for messages and metrics, e.g. `<namespace>/<evidencebucket>`.
    pub name: String,
    /// The region the bucket is declared to be in (`EvidenceBucket.spec.region`); the
    /// client signs for it. The actual location is proven before any write.
    pub declared_region: String,
    /// An S3-compatible endpoint (MinIO, Ceph); `None` means AWS.
    pub endpoint: Option<String>,
    /// Path-style addressing (needed by most S3-compatible stores).
    pub force_path_style: bool,
    /// Static credentials; `None` uses the default AWS chain.
    pub credentials: Option<StaticCredentials>,
    /// The three tiers.
    pub tiers: Tiers,
    /// The full allowed UK region set in force.
    pub allowed_regions: Vec<String>,
}

impl BucketConfig {
    /// Check the layout before any request: regions listed, tiers that share a bucket
    /// distinguishable, the legal-hold tier not shared.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |reason: String| StorageError::Config {
            name: self.name.clone(),
            reason,
        };
        if self.allowed_regions.is_empty() {
            return Err(bad("no allowed regions are configured".into()));
        }
        if !self.allowed_regions.contains(&self.declared_region) {
            return Err(StorageError::RegionNotAllowed {
                bucket: self.name.clone(),
                found: self.declared_region.clone(),
                allowed: self.allowed_regions.clone(),
            });
        }
        for t in Tier::ALL {
            if self.tiers.get(t).bucket.is_empty() {
                return Err(bad(format!("tier {t} has no bucket")));
            }
        }
        for (i, a) in Tier::ALL.iter().enumerate() {
            for b in Tier::ALL.iter().skip(i + 1) {
                let (la, lb) = (self.tiers.get(*a), self.tiers.get(*b));
                if la.bucket != lb.bucket {
                    continue;
                }
                if la.prefix == lb.prefix {
                    if *a == Tier::LegalHold || *b == Tier::LegalHold {
                        return Err(bad(format!(
                            "tiers {a} and {b} share bucket {} and prefix {:?}; the legal-hold tier needs its own place",
                            la.bucket, la.prefix
                        )));
                    }
                    if la.class() == lb.class() {
                        return Err(bad(format!(
                            "tiers {a} and {b} share bucket {} and prefix {:?} with the same storage class {}: their clips cannot be told apart",
                            la.bucket,
                            la.prefix,
                            la.class()
                        )));
                    }
                } else if la.prefix.starts_with(&lb.prefix) || lb.prefix.starts_with(&la.prefix) {
                    return Err(bad(format!(
                        "tiers {a} and {b} in bucket {} have nested prefixes {:?} and {:?}",
                        la.bucket, la.prefix, lb.prefix
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What a fault-injection hook is told after a move step.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The step just completed.
    pub step: MoveStep,
    /// The clip key.
    pub clip_key: String,
    /// The destination bucket.
    pub dst_bucket: String,
    /// The destination object key.
    pub dst_key: String,
    /// The destination version written, where the bucket is versioned.
    pub dst_version_id: Option<String>,
}

/// Test-only fault injection: called after each move step; returning `false` stops the
/// move right there (as if the process died), returning [`StorageError::Interrupted`].
/// The hook may also tamper with the store (e.g. corrupt the destination) before it returns.
#[doc(hidden)]
pub type FaultHook = Arc<dyn Fn(StepContext) -> BoxFuture<'static, bool> + Send + Sync>;

/// Test-only pause point: called with the clip keys just before their tags are read
/// again at the point of no return (`TierStore::current_tags`), so that a test can
/// change the world (re-tag a clip) after the listing and before the delete.
#[doc(hidden)]
pub type RecheckHook = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, ()> + Send + Sync>;

/// How a store behaves.
#[derive(Clone)]
pub struct StoreOptions {
    /// Objects larger than this are copied with multipart copy (`UploadPartCopy`).
    /// S3's single CopyObject limit is 5 GiB, the default.
    pub multipart_threshold: u64,
    /// Part size for multipart copies (raised automatically to stay within 10,000 parts;
    /// at least 5 MiB).
    pub part_size: u64,
    /// At most this many requests in flight per bucket.
    pub concurrency_per_bucket: usize,
    /// At most this many per-object listing calls (tagging, head) in flight per `list`.
    pub list_concurrency: usize,
    /// Keys per ListObjects page (at most 1,000).
    pub list_page_size: i32,
    /// Also HEAD every hot/cool object while listing, to report its recorded SHA-256
    /// (one more request per clip; the legal-hold tier always does, for its hold status).
    pub list_checksums: bool,
    /// Ask the store for each object's tags, recorded checksum and legal hold inside the
    /// listing (MinIO's `metadata=true` extension), instead of one `GetObjectTagging`
    /// (and, in the legal-hold tier, one `HeadObject`) per object. Stores that do not
    /// support it ignore the parameter and are read object by object, as with `false`.
    pub list_metadata: bool,
    /// Attempts per request (1 = no retry) on throttling and transient errors.
    pub max_attempts: u32,
    /// First backoff; doubled each retry, with full jitter in `[base/2, base]`.
    pub backoff_base: Duration,
    /// Backoff ceiling.
    pub backoff_max: Duration,
    /// How long a successful region proof (and Object Lock check) is trusted.
    pub region_cache_ttl: Duration,
    /// Connect timeout for each request.
    pub connect_timeout: Duration,
    /// The installation's declarations of the region of endpoints whose stores report
    /// none (`--endpoint-region`): they fill an empty `GetBucketLocation` answer only.
    pub endpoint_regions: EndpointRegions,
    /// Test-only fault injection between move steps.
    #[doc(hidden)]
    pub fault_hook: Option<FaultHook>,
    /// Test-only pause point before the point-of-no-return tag read.
    #[doc(hidden)]
    pub recheck_hook: Option<RecheckHook>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            multipart_threshold: 5 * 1024 * 1024 * 1024,
            part_size: 512 * 1024 * 1024,
            concurrency_per_bucket: 32,
            list_concurrency: 16,
            list_page_size: 1000,
            list_checksums: false,
            list_metadata: true,
            max_attempts: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            region_cache_ttl: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            endpoint_regions: EndpointRegions::default(),
            fault_hook: None,
            recheck_hook: None,
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("concurrency_per_bucket", &self.concurrency_per_bucket)
            .field("list_concurrency", &self.list_concurrency)
            .field("list_page_size", &self.list_page_size)
            .field("list_checksums", &self.list_checksums)
            .field("list_metadata", &self.list_metadata)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("region_cache_ttl", &self.region_cache_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("endpoint_regions", &self.endpoint_regions)
            .field("fault_hook", &self.fault_hook.as_ref().map(|_| "<hook>"))
            .field(
                "recheck_hook",
                &self.recheck_hook.as_ref().map(|_| "<hook>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tiers: Tiers) -> BucketConfig {
        BucketConfig {
            name: "ns/unit".into(),
            declared_region: "eu-west-2".into(),
            endpoint: None,
            force_path_style: false,
            credentials: None,
            tiers,
            allowed_regions: vec!["eu-west-2".into()],
        }
    }

    #[test]
    fn separate_buckets_are_valid() {
        let c = cfg(Tiers {
            hot: TierLocation::bucket("hot"),
            cool: TierLocation::bucket("cool"),
            legal_hold: TierLocation::bucket("lock"),
        });
        assert!(c.validate().is_ok());
        assert_eq!(c.tiers.buckets(), vec!["hot", "cool", "lock"]);
    }

    #[test]
    fn same_bucket_tiers_need_distinct_storage_classes() {
        let mut cool = TierLocation::bucket("hot");
        let c = cfg(Tiers {
            hot: TierLocation::bucket("hot"),
            cool: cool.clone(),
            legal_hold: TierLocation::bucket("lock"),
        });
        assert!(matches!(c.validate(), Err(StorageError::Config { .. })));
        cool.storage_class = Some("REDUCED_REDUNDANCY".into());
        let c = cfg(Tiers {
            hot: TierLocation::bucket("hot"),
            cool,
            legal_hold: TierLocation::bucket("lock"),
        });
        assert!(c.validate().is_ok());
    }

    #[test]
    fn nested_prefixes_and_shared_legal_hold_are_refused() {
        let mut cool = TierLocation::bucket("hot");
        cool.prefix = "cool/".into();
        let c = cfg(Tiers {
            hot: TierLocation::bucket("hot"),
            cool,
            legal_hold: TierLocation::bucket("lock"),
        });
        assert!(matches!(c.validate(), Err(StorageError::Config { .. })));
        let c = cfg(Tiers {
            hot: TierLocation::bucket("lock"),
            cool: TierLocation::bucket("cool"),
            legal_hold: TierLocation::bucket("lock"),
        });
        assert!(matches!(c.validate(), Err(StorageError::Config { .. })));
    }

    #[test]
    fn declared_region_must_be_allowed() {
        let mut c = cfg(Tiers {
            hot: TierLocation::bucket("hot"),
            cool: TierLocation::bucket("cool"),
            legal_hold: TierLocation::bucket("lock"),
        });
        c.declared_region = "us-east-1".into();
        assert!(matches!(
            c.validate(),
            Err(StorageError::RegionNotAllowed { .. })
        ));
    }

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let c = StaticCredentials {
            access_key_id: "AKIA".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("tok".into()),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret") && !s.contains("tok\""));
    }
}
