//! Step 2 of a bucket's reconcile, pure: decide from the bucket and what it refers to
//! whether the operator may act on its storage at all. The answer is a
//! [`ValidatedBucket`] (the storage configuration, the policy, the holds in force and
//! those being released) or a [`Refusal`]. No I/O: every refusal can be unit tested, and
//! `evidence-operator plan` runs the same checks as the sweep.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::{
    dereference::{Credentials, Dereferenced},
    refusal::Refusal,
};
use crate::{
    api::{
        AccessRequest, ClipRestore, EvidenceBucket, LegalHold, RetentionPolicy,
        legal_hold::FINALIZER, regions::AllowedRegions,
    },
    controller::key_of,
    engine::{ActiveHold, Planner, Preserve},
    storage::{
        BucketConfig, StaticCredentials, TierLocation, Tiers,
        region::{check_endpoint, check_endpoint_host},
    },
};

/// A bucket the operator may act on, and everything a sweep of it needs.
#[derive(Debug)]
pub struct ValidatedBucket<'a> {
    /// Its RetentionPolicy.
    pub policy: &'a RetentionPolicy,
    /// Its storage: tiers, endpoint, credentials, allowed regions.
    pub config: BucketConfig,
    /// Every LegalHold naming the bucket (for audit records, case names, status).
    pub holds: Vec<&'a LegalHold>,
    /// The holds in force: those that carry the release finalizer and are not being
    /// deleted. A hold takes effect only once it carries the finalizer, which exists
    /// before the S3 legal holds it protects, so every clip held for a case is released,
    /// and recorded as released for that case.
    pub active: Vec<ActiveHold>,
    /// The holds being deleted, whose clips are released by this sweep.
    pub releasing: Vec<ActiveHold>,
    /// What the plan depends on besides storage and the clock: a sweep with the same
    /// inputs before its next due time is skipped.
    pub inputs: String,
    /// The ClipRestores naming the bucket that have not been carried out for their
    /// current generation.
    pub restores: Vec<&'a ClipRestore>,
    /// Every AccessRequest naming the bucket (open or closed: each gets its status).
    pub requests: Vec<&'a AccessRequest>,
    /// The open ones, as the planner's preserves.
    pub preserves: Vec<Preserve>,
}

impl ValidatedBucket<'_> {
    /// The planner for `now`: the policy with the holds in force.
    pub fn planner(&self, now: DateTime<Utc>) -> Result<Planner<'_>, Refusal> {
        Planner::new(&self.policy.spec, &self.active, now)
            .map(|p| p.preserving(&self.preserves))
            .map_err(|e| Refusal::PolicyInvalid {
                policy: key_of(self.policy),
                problem: e.to_string(),
            })
    }

    /// The planner that tells which clips the holds being deleted selected (None when
    /// no hold is being deleted).
    pub fn releasing_planner(&self, now: DateTime<Utc>) -> Option<Planner<'_>> {
        if self.releasing.is_empty() {
            return None;
        }
        Planner::new(&self.policy.spec, &self.releasing, now).ok()
    }
}

/// What the installation grants a bucket's namespace beyond its own resources.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// The bucket may omit `credentialsSecretRef` and act with the operator's own
    /// identity (`--operator-identity-namespaces`).
    pub operator_identity: bool,
    /// The endpoint hosts allowed (`--allowed-endpoints`: hosts or `*.suffix`; empty:
    /// any host but link-local and metadata addresses, which are never allowed).
    pub endpoints: Vec<String>,
}

impl Grants {
    /// What an installation that grants its own identity to `identity_namespaces`
    /// (`*`: all) and allows `endpoints` grants the EvidenceBuckets of `namespace`:
    /// the one reading of those settings, for the operator and `plan` alike.
    pub fn for_namespace(
        identity_namespaces: &[String],
        endpoints: &[String],
        namespace: &str,
    ) -> Grants {
        Grants {
            operator_identity: identity_namespaces
                .iter()
                .any(|g| g == "*" || g == namespace),
            // (an empty setting, such as the chart's `EVIDENCE_ALLOWED_ENDPOINTS=""`,
            // lists no host: any host is allowed, as documented)
            endpoints: endpoints
                .iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }
}

/// Decide whether the operator may act on `eb`, in this order: suspended; the declared
/// region, then the endpoint's, against the allowed UK regions; the endpoint's host
/// (never a metadata address; within the installation's allow-list); the policy found
/// and usable; the credentials Secret found and complete, or, where the bucket names
/// none, its namespace granted the operator's own identity.
pub fn validate<'a>(
    eb: &EvidenceBucket,
    found: &'a Dereferenced,
    allowed: &AllowedRegions,
    grants: &Grants,
    now: DateTime<Utc>,
) -> Result<ValidatedBucket<'a>, Refusal> {
    if eb.spec.suspend {
        return Err(Refusal::Suspended);
    }
    // UK only, by declaration: refused before any storage call.
    if !allowed.contains(&eb.spec.region) {
        return Err(Refusal::RegionNotAllowed(format!(
            "declared region {:?} is not an allowed UK region (allowed: {allowed}); nothing will be written to this bucket",
            eb.spec.region
        )));
    }
    check_endpoint(eb.spec.endpoint.as_deref(), allowed.as_slice())
        .map_err(|e| Refusal::RegionNotAllowed(e.to_string()))?;
    if let Some(ep) = eb.spec.endpoint.as_deref() {
        check_endpoint_host(ep, &grants.endpoints).map_err(Refusal::EndpointNotAllowed)?;
    }

    let ns = eb.namespace().unwrap_or_default();
    let Some(policy) = &found.policy else {
        return Err(Refusal::PolicyNotFound {
            policy: format!("{ns}/{}", eb.spec.retention_policy_ref.name),
        });
    };
    let holds: Vec<&LegalHold> = found.holds.iter().collect();
    let restores: Vec<&ClipRestore> = found.restores.iter().filter(|r| pending(r)).collect();
    let requests: Vec<&AccessRequest> = found.requests.iter().collect();
    let preserves: Vec<Preserve> = requests
        .iter()
        .filter_map(|r| Preserve::from_request(r))
        .collect();
    let active: Vec<ActiveHold> = holds
        .iter()
        .filter(|h| has_release_finalizer(h))
        .filter_map(|h| ActiveHold::from_legal_hold(h))
        .collect();
    let releasing = holds
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_some())
        .map(|h| ActiveHold {
            name: h.name_any(),
            case_reference: h.spec.case_reference.clone(),
            selector: h.spec.selector.clone(),
            retain_after_release: h.spec.retain_after_release,
        })
        .collect();
    let secret = match &found.credentials {
        Credentials::NotNamed if !grants.operator_identity => {
            return Err(Refusal::CredentialsRequired { namespace: ns });
        }
        Credentials::NotNamed => None,
        Credentials::Missing => {
            return Err(Refusal::CredentialsNotFound {
                secret: secret_name(eb),
            });
        }
        Credentials::Found(s) => Some(s.as_ref()),
    };
    let valid = ValidatedBucket {
        policy,
        config: bucket_config(eb, secret, allowed)?,
        inputs: sweep_inputs(eb, policy, &holds, &restores, &requests),
        holds,
        active,
        releasing,
        restores,
        requests,
        preserves,
    };
    valid.planner(now)?;
    Ok(valid)
}

/// The storage configuration of an EvidenceBucket: its spec plus the credentials from
/// its Secret (`None`: the bucket names none). Also used by `evidence-operator audit`.
pub fn bucket_config(
    eb: &EvidenceBucket,
    secret: Option<&Secret>,
    allowed: &AllowedRegions,
) -> Result<BucketConfig, Refusal> {
    let credentials = match (&eb.spec.credentials_secret_ref, secret) {
        (Some(r), Some(secret)) => {
            let read = |k: &str| -> Result<String, Refusal> {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| Refusal::CredentialsInvalid {
                        secret: secret_name(eb),
                        key: k.to_string(),
                    })
            };
            Some(StaticCredentials {
                access_key_id: read(&r.access_key_id_key)?,
                secret_access_key: read(&r.secret_access_key_key)?,
                session_token: None,
            })
        }
        (Some(_), None) => {
            return Err(Refusal::CredentialsNotFound {
                secret: secret_name(eb),
            });
        }
        (None, _) => None,
    };
    let loc = |t: &crate::api::evidence_bucket::TierLocation| TierLocation {
        bucket: t.bucket.clone(),
        prefix: t.prefix.clone().unwrap_or_default(),
        storage_class: t.storage_class.clone(),
    };
    Ok(BucketConfig {
        name: key_of(eb),
        declared_region: eb.spec.region.clone(),
        endpoint: eb.spec.endpoint.clone(),
        force_path_style: eb
            .spec
            .force_path_style
            .unwrap_or(eb.spec.endpoint.is_some()),
        credentials,
        tiers: Tiers {
            hot: loc(&eb.spec.tiers.hot),
            cool: loc(&eb.spec.tiers.cool),
            legal_hold: loc(&eb.spec.tiers.legal_hold),
        },
        allowed_regions: allowed.as_slice().to_vec(),
    })
}

/// `namespace/name` of the bucket's credentials Secret.
fn secret_name(eb: &EvidenceBucket) -> String {
    let name = eb
        .spec
        .credentials_secret_ref
        .as_ref()
        .map(|r| r.name.as_str())
        .unwrap_or_default();
    format!("{}/{name}", eb.namespace().unwrap_or_default())
}

/// Whether a LegalHold carries the finalizer that guarantees its clips' release.
pub fn has_release_finalizer(hold: &LegalHold) -> bool {
    hold.finalizers().iter().any(|f| f == FINALIZER)
}

/// Whether a ClipRestore still has work: not yet `Complete=True` for its generation.
fn pending(r: &ClipRestore) -> bool {
    let Some(status) = &r.status else {
        return true;
    };
    let done = status.observed_generation == r.metadata.generation
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True");
    !done
}

/// What a sweep's plan depends on, besides storage and the clock: the bucket's spec,
/// the policy's spec, and the holds that reference the bucket.
fn sweep_inputs(
    eb: &EvidenceBucket,
    policy: &RetentionPolicy,
    holds: &[&LegalHold],
    restores: &[&ClipRestore],
    requests: &[&AccessRequest],
) -> String {
    let mut parts = vec![
        format!("bucket {:?}/{:?}", eb.metadata.uid, eb.metadata.generation),
        format!(
            "policy {:?}/{:?}",
            policy.metadata.uid, policy.metadata.generation
        ),
    ];
    let mut hs: Vec<String> = holds
        .iter()
        .map(|h| {
            format!(
                "hold {:?}/{:?}/{}/{}",
                h.metadata.uid,
                h.metadata.generation,
                h.metadata.deletion_timestamp.is_some(),
                has_release_finalizer(h)
            )
        })
        .collect();
    hs.sort();
    parts.extend(hs);
    let mut rs: Vec<String> = restores
        .iter()
        .map(|r| format!("restore {:?}/{:?}", r.metadata.uid, r.metadata.generation))
        .collect();
    rs.sort();
    parts.extend(rs);
    let mut qs: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "request {:?}/{:?}/{}",
                r.metadata.uid,
                r.metadata.generation,
                r.metadata.deletion_timestamp.is_some()
            )
        })
        .collect();
    qs.sort();
    parts.extend(qs);
    parts.join(";")
}
