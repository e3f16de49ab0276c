//! Why a bucket is not swept: every reason the operator refuses to touch a bucket's
//! storage, and what each one reports: its conditions, its event and when to look
//! again. A refusal is not an error: the operator did what it should (nothing) and
//! says why. Found by [`super::validate`] (before any storage call) or by
//! [`super::apply`] (from the storage's own proof).

use std::time::Duration;

use kube::runtime::{controller::Action, events::EventType};

use crate::{
    controller::status::{
        self, Cond, POLICY_RESOLVED, READY, RECONCILING, REGION_VERIFIED, STALLED,
    },
    storage::StorageError,
};

/// Why the operator takes no action on a bucket's storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `spec.suspend` is true.
    #[error("spec.suspend is true: the operator takes no action on this bucket")]
    Suspended,
    /// The declared region, the endpoint's region or a tier bucket's proven region is
    /// not an allowed UK region, or a tier bucket's store reports no region and the
    /// installation declares none for its endpoint (`--endpoint-region`).
    #[error("{0}")]
    RegionNotAllowed(String),
    /// The RetentionPolicy does not exist.
    #[error("RetentionPolicy {policy} does not exist; no clip is touched until it does")]
    PolicyNotFound {
        /// `namespace/name`.
        policy: String,
    },
    /// The RetentionPolicy exists but the engine cannot use it.
    #[error("RetentionPolicy {policy} cannot be used: {problem}; no clip is touched")]
    PolicyInvalid {
        /// `namespace/name`.
        policy: String,
        /// The engine's reason.
        problem: String,
    },
    /// The credentials Secret does not exist.
    #[error("Secret {secret} named in spec.credentialsSecretRef does not exist")]
    CredentialsNotFound {
        /// `namespace/name`.
        secret: String,
    },
    /// The bucket names no credentials Secret, and this installation does not grant its
    /// namespace the operator's own identity.
    #[error(
        "spec.credentialsSecretRef is required in namespace {namespace}: this installation does not let its EvidenceBuckets act with the operator's own identity (--operator-identity-namespaces); nothing is done"
    )]
    CredentialsRequired {
        /// The bucket's namespace.
        namespace: String,
    },
    /// The credentials Secret lacks a key (or its value is blank).
    #[error("Secret {secret} has no key {key:?}")]
    CredentialsInvalid {
        /// `namespace/name`.
        secret: String,
        /// The missing key.
        key: String,
    },
    /// The store refused the bucket's credentials (or its policy denies them): proving
    /// the region was denied, so nothing else is tried.
    #[error(
        "{0}; check the keys in the credentials Secret and the bucket's policy (a corrected Secret is used from the next attempt, without a restart)"
    )]
    AccessDenied(String),
    /// Hot and cool are the same keys in a bucket without versioning Enabled: a move
    /// would replace a clip's only copy before verifying it.
    #[error("{0}")]
    SameKeyUnversioned(String),
    /// The policy has a `restoreWindow` but a hot or cool tier bucket does not have S3
    /// versioning `Enabled`, so a deletion there could not be undone.
    #[error(
        "RetentionPolicy {policy} has restoreWindow {window}, but the {tier} tier's bucket {bucket} does not have versioning Enabled, so a deletion could not be undone; nothing is moved or deleted until versioning is enabled on it (or the restoreWindow is removed)"
    )]
    VersioningRequired {
        /// `namespace/name` of the policy.
        policy: String,
        /// The policy's window, as written.
        window: String,
        /// `hot` or `cool`.
        tier: String,
        /// The bucket.
        bucket: String,
    },
    /// The legal-hold bucket has no Object Lock, so no clip can be held in it.
    #[error("{0}; nothing is moved until the legal-hold bucket has Object Lock")]
    ObjectLockMissing(String),
    /// A storage location of the bucket overlaps one another EvidenceBucket claimed
    /// first (one owner per location): nothing is listed, written or deleted.
    #[error(
        "storage location {location} is claimed by {owner} since {since}; this EvidenceBucket lists, writes and deletes nothing there. If that owner is gone for good, take the location over by annotating this EvidenceBucket {annotation}={uid} (recorded in the audit chain)"
    )]
    StorageClaimed {
        /// Our location (`bucket/prefix`) that overlaps the claim.
        location: String,
        /// The owner, in words.
        owner: String,
        /// The owner's uid (what a take-over names).
        uid: String,
        /// When it claimed the location.
        since: String,
        /// The take-over annotation.
        annotation: &'static str,
    },
    /// The endpoint's host is a link-local or metadata address, or outside the
    /// installation's allowed endpoints: no request is sent to it.
    #[error("{0}; no request is sent to this endpoint")]
    EndpointNotAllowed(String),
    /// The local clock disagrees with the S3 store's or the API server's by more than
    /// `--max-clock-skew`: ages counted by it could be wrong (see [`super::clock`]).
    #[error("{0}; no clip is moved, held, released or deleted until the clocks agree")]
    ClockSkew(String),
}

/// The event a refusal publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalEvent {
    /// Warning (every refusal that has an event is one).
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What the operator was doing.
    pub action: &'static str,
}

impl Refusal {
    /// The CamelCase reason of its conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Suspended => "Suspended",
            Refusal::RegionNotAllowed(_) => "RegionNotAllowed",
            Refusal::PolicyNotFound { .. } => "PolicyNotFound",
            Refusal::PolicyInvalid { .. } => "PolicyInvalid",
            Refusal::CredentialsNotFound { .. } => "CredentialsNotFound",
            Refusal::CredentialsRequired { .. } => "CredentialsRequired",
            Refusal::CredentialsInvalid { .. } => "CredentialsInvalid",
            Refusal::AccessDenied(_) => "AccessDenied",
            Refusal::SameKeyUnversioned(_) => "SameKeyUnversioned",
            Refusal::ObjectLockMissing(_) => "ObjectLockMissing",
            Refusal::VersioningRequired { .. } => "VersioningRequired",
            Refusal::StorageClaimed { .. } => "StorageClaimed",
            Refusal::EndpointNotAllowed(_) => "EndpointNotAllowed",
            Refusal::ClockSkew(_) => "ClockSkew",
        }
    }

    /// Whether this is the UK-only promise at work (counted in
    /// `evidence_operator_region_violations_total`).
    pub fn is_region_violation(&self) -> bool {
        matches!(self, Refusal::RegionNotAllowed(_))
    }

    /// The conditions it sets. `policy` is the name of the bucket's RetentionPolicy:
    /// refusals found after the policy resolved say so.
    pub fn conditions(&self, policy: &str) -> Vec<Cond> {
        let message = self.to_string();
        let reason = self.reason();
        let policy_found = || {
            Cond::yes(
                POLICY_RESOLVED,
                "PolicyFound",
                format!("using RetentionPolicy {policy}"),
            )
        };
        let mut conds = status::stalled(reason, &message).to_vec();
        match self {
            // Suspension is a person's choice, not a stall.
            Refusal::Suspended => {
                return vec![
                    Cond::no(READY, reason, &message),
                    Cond::no(RECONCILING, reason, &message),
                    Cond::no(STALLED, reason, &message),
                ];
            }
            Refusal::RegionNotAllowed(_) => {
                conds.push(Cond::no(REGION_VERIFIED, reason, &message));
            }
            Refusal::PolicyNotFound { .. } | Refusal::PolicyInvalid { .. } => {
                conds.push(Cond::no(POLICY_RESOLVED, reason, &message));
            }
            Refusal::CredentialsNotFound { .. }
            | Refusal::CredentialsRequired { .. }
            | Refusal::CredentialsInvalid { .. }
            | Refusal::AccessDenied(_)
            | Refusal::SameKeyUnversioned(_)
            | Refusal::ObjectLockMissing(_)
            | Refusal::VersioningRequired { .. }
            | Refusal::StorageClaimed { .. }
            | Refusal::ClockSkew(_) => conds.push(policy_found()),
            Refusal::EndpointNotAllowed(_) => {}
        }
        conds
    }

    /// The event it publishes (its note is the refusal's message), if any.
    pub fn event(&self) -> Option<RefusalEvent> {
        let warning = |reason, action| {
            Some(RefusalEvent {
                type_: EventType::Warning,
                reason,
                action,
            })
        };
        match self {
            Refusal::Suspended => None,
            Refusal::RegionNotAllowed(_) => warning("RegionRefused", "Verify"),
            Refusal::PolicyNotFound { .. } => warning("PolicyNotFound", "Resolve"),
            Refusal::PolicyInvalid { .. } => warning("PolicyInvalid", "Resolve"),
            Refusal::CredentialsNotFound { .. } => warning("CredentialsNotFound", "Configure"),
            Refusal::CredentialsRequired { .. } => warning("CredentialsRequired", "Configure"),
            Refusal::CredentialsInvalid { .. } => warning("CredentialsInvalid", "Configure"),
            Refusal::AccessDenied(_) => warning("AccessDenied", "Verify"),
            Refusal::SameKeyUnversioned(_) => warning("SameKeyUnversioned", "Verify"),
            Refusal::ObjectLockMissing(_) => warning("ObjectLockMissing", "Verify"),
            Refusal::VersioningRequired { .. } => warning("VersioningRequired", "Verify"),
            Refusal::StorageClaimed { .. } => warning("StorageClaimed", "Claim"),
            Refusal::EndpointNotAllowed(_) => warning("EndpointNotAllowed", "Verify"),
            Refusal::ClockSkew(_) => warning("ClockSkew", "Verify"),
        }
    }

    /// When to look again: a suspended bucket when it changes; a missing or invalid
    /// policy after 5 minutes, credentials after 1 (a Secret change triggers nothing);
    /// a clock skew after 30 s (a clock put right is used soon); storage facts (region,
    /// Object Lock) at the sweep interval.
    pub fn requeue(&self, interval: Duration) -> Action {
        match self {
            Refusal::Suspended => Action::await_change(),
            Refusal::PolicyNotFound { .. } | Refusal::PolicyInvalid { .. } => {
                Action::requeue(Duration::from_secs(300))
            }
            Refusal::CredentialsNotFound { .. }
            | Refusal::CredentialsRequired { .. }
            | Refusal::CredentialsInvalid { .. }
            | Refusal::AccessDenied(_) => Action::requeue(Duration::from_secs(60)),
            Refusal::ClockSkew(_) => Action::requeue(Duration::from_secs(30)),
            Refusal::EndpointNotAllowed(_) => Action::await_change(),
            Refusal::RegionNotAllowed(_)
            | Refusal::ObjectLockMissing(_)
            | Refusal::VersioningRequired { .. }
            | Refusal::SameKeyUnversioned(_)
            | Refusal::StorageClaimed { .. } => Action::requeue(interval),
        }
    }

    /// The refusal a storage error met while connecting or proving the region amounts
    /// to, if it is one: a region the store proved or an endpoint outside the allowed
    /// set, a legal-hold bucket without Object Lock, hot and cool on the same keys of an
    /// unversioned bucket, or credentials the store denies.
    /// Any other storage error is handed back.
    pub fn from_storage(e: StorageError) -> Result<Refusal, StorageError> {
        match e {
            StorageError::RegionNotAllowed { .. }
            | StorageError::RegionUnreported { .. }
            | StorageError::EndpointNotAllowed { .. } => {
                Ok(Refusal::RegionNotAllowed(e.to_string()))
            }
            StorageError::ObjectLockMissing { .. } => Ok(Refusal::ObjectLockMissing(e.to_string())),
            StorageError::AccessDenied { .. } => Ok(Refusal::AccessDenied(e.to_string())),
            StorageError::SameKeyUnversioned { .. } => {
                Ok(Refusal::SameKeyUnversioned(e.to_string()))
            }
            other => Err(other),
        }
    }
}
