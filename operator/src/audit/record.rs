//! The audit record format and the hash chain.
//!
//! A record is one JSON object on one line. The chain runs over the **stored bytes**:
//! a record's hash is the SHA-256 of its line exactly as written (without the newline),
//! and every record carries the hash of the record before it in `prev` (the first
//! record of a chain carries [`GENESIS`]). Changing any byte of any record therefore
//! changes its hash, which no longer matches the next record's `prev` (or, for the very
//! last record, the head that the writer reports and the EvidenceBucket status shows).
//!
//! Every record also names its place: `batch` (the number of the audit object it is
//! stored in) and `index` (its line in that object), so records moved between objects
//! or reordered inside one are caught even before the hashes are compared.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::clip::{Tag, Tier};

/// The `prev` of the first record of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A clip was copied to another tier, the copy's SHA-256 verified, the source deleted.
    Moved,
    /// A clip was moved into the legal-hold tier, or its S3 legal hold was set.
    Held,
    /// A clip's S3 legal hold was cleared and it went back to the cool tier.
    Released,
    /// A clip was deleted: its retention ran out and no hold applied.
    Deleted,
    /// A clip's retention ran out under a `Review` rule: kept for a person's decision.
    FlaggedForReview,
    /// A clip's metadata is malformed: kept and flagged.
    FlaggedMalformed,
    /// An action the plan called for failed; the clip stayed where it was.
    Failed,
    /// The store refused an action (e.g. a WORM-protected version); the clip stayed.
    Refused,
    /// The integrity sweep re-read a clip and its SHA-256 matched the recorded one.
    IntegrityVerified,
    /// The integrity sweep re-read a clip and its SHA-256 did NOT match: the clip is
    /// kept and an alert is raised.
    IntegrityMismatch,
    /// Write-ahead: the sweep is about to act on a clip (the planned action is named in
    /// the reason, its destination in `to_tier`). Recorded, with the rest of its chunk,
    /// before the first action of the chunk starts; the outcome (`moved`, `deleted`,
    /// `failed`, ...) follows in a later record. An intent with no outcome after it
    /// means the action did not run to its end (the operator stopped or crashed): the
    /// clip is wherever the storage shows it, never in no tier.
    Intended,
    /// A RetentionPolicy or LegalHold was first seen (generation 1).
    PolicyCreated,
    /// A RetentionPolicy or LegalHold changed (a new generation was seen).
    PolicyChanged,
    /// A RetentionPolicy or LegalHold was deleted.
    PolicyDeleted,
    /// An EvidenceBucket took a storage location over from the previous owner the
    /// `evidence.bwv.io/take-over-claim` annotation named (the reason names both).
    ClaimTakenOver,
    /// A clip was uploaded from a dock into the hot tier by `evidence-operator ingest`,
    /// its SHA-256 verified by the store (the reason names the camera, officer, dock
    /// host and who ran the ingest; the actor is `ingest:<user>@<host>`).
    Ingested,
    /// A clip's retention ran out under a policy with a `restoreWindow`: it was
    /// soft-deleted (a delete marker over its version, which stays restorable until the
    /// reason's time).
    SoftDeleted,
    /// A soft-deleted clip's window passed and, planned again, the policy still deleted
    /// it: its data version and markers were deleted for good.
    Purged,
    /// A soft-deleted clip was brought back by a `ClipRestore` (its delete markers
    /// removed; the same version current again). The reason names the ClipRestore, its
    /// reference and reason, and who created it.
    Restored,
    /// An AccessRequest's manifest (the clips it found, each with its version, size and
    /// SHA-256) was written to its export location; `sha256` is the manifest's own, the
    /// reason names where it is (`object`: the AccessRequest).
    ManifestWritten,
    /// A clip was copied into an AccessRequest's export location (`export.copy`), the
    /// copy verified against the clip's SHA-256 (`object`: the AccessRequest; the reason
    /// names where the copy is).
    Exported,
    /// An export copy was deleted, `keepFor` after its request was closed.
    ExportDeleted,
    /// A time-limited link (an S3 presigned URL) to a clip was issued for an
    /// AccessRequest: `share` says to whom, by whom and until when (`object`: the
    /// AccessRequest; the actor `share:<user>@<host>`).
    Shared,
}

impl AuditAction {
    /// A stable snake_case name (as serialised; also a bounded metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Moved => "moved",
            AuditAction::Held => "held",
            AuditAction::Released => "released",
            AuditAction::Deleted => "deleted",
            AuditAction::FlaggedForReview => "flagged_for_review",
            AuditAction::FlaggedMalformed => "flagged_malformed",
            AuditAction::Failed => "failed",
            AuditAction::Refused => "refused",
            AuditAction::IntegrityVerified => "integrity_verified",
            AuditAction::IntegrityMismatch => "integrity_mismatch",
            AuditAction::Intended => "intended",
            AuditAction::PolicyCreated => "policy_created",
            AuditAction::PolicyChanged => "policy_changed",
            AuditAction::PolicyDeleted => "policy_deleted",
            AuditAction::ClaimTakenOver => "claim_taken_over",
            AuditAction::Ingested => "ingested",
            AuditAction::SoftDeleted => "soft_deleted",
            AuditAction::Purged => "purged",
            AuditAction::Restored => "restored",
            AuditAction::ManifestWritten => "manifest_written",
            AuditAction::Exported => "exported",
            AuditAction::ExportDeleted => "export_deleted",
            AuditAction::Shared => "shared",
        }
    }

    /// Parse the snake_case name.
    pub fn parse(s: &str) -> Option<AuditAction> {
        ALL_ACTIONS.iter().copied().find(|a| a.as_str() == s)
    }
}

/// Every audit action.
pub const ALL_ACTIONS: [AuditAction; 23] = [
    AuditAction::Moved,
    AuditAction::Held,
    AuditAction::Released,
    AuditAction::Deleted,
    AuditAction::FlaggedForReview,
    AuditAction::FlaggedMalformed,
    AuditAction::Failed,
    AuditAction::Refused,
    AuditAction::IntegrityVerified,
    AuditAction::IntegrityMismatch,
    AuditAction::Intended,
    AuditAction::PolicyCreated,
    AuditAction::PolicyChanged,
    AuditAction::PolicyDeleted,
    AuditAction::ClaimTakenOver,
    AuditAction::Ingested,
    AuditAction::SoftDeleted,
    AuditAction::Purged,
    AuditAction::Restored,
    AuditAction::ManifestWritten,
    AuditAction::Exported,
    AuditAction::ExportDeleted,
    AuditAction::Shared,
];

/// Who acted: the operator replica and the leader Lease it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The operator replica's identity (its pod name).
    pub operator: String,
    /// The leader-election Lease (`namespace/name`), when leader election is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// The Lease's holder when the record was written (this replica: it only acts while
    /// it leads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
}

/// The clip a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipRef {
    /// The clip key (relative to the tier prefixes; the same in every tier).
    pub key: String,
    /// The object version acted on, where the bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

impl From<&crate::storage::DeletedClip> for ClipRef {
    /// A soft-deleted clip: its data version (none for an orphan marker: size 0).
    fn from(d: &crate::storage::DeletedClip) -> Self {
        ClipRef {
            key: d.key.clone(),
            version_id: d.data.as_ref().and_then(|c| c.version_id.clone()),
            size: d.data.as_ref().map_or(0, |c| c.size),
        }
    }
}

/// The Kubernetes object a policy record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectInfo {
    /// `RetentionPolicy` or `LegalHold`.
    pub kind: String,
    /// `namespace/name`.
    pub name: String,
    /// The object's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The generation seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Every field manager of the object's spec (from `metadata.managedFields`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    /// The manager of the most recent change, where the managed fields say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

/// A link to a clip given to someone (a `shared` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Who the link was given to, as the person issuing it named them (such as
    /// `CPS case 01/123`).
    pub recipient: String,
    /// Who issued it: the Kubernetes user the API server names for the credentials used
    /// (`SelfSubjectReview`), else the local user and host.
    pub issued_by: String,
    /// When the link stops working (RFC 3339, UTC).
    pub expires: String,
}

/// What an ingest wrote into the hot tier (an `ingested` record). With the record's
/// clip (key, version, size) and SHA-256, it is what the operator's clip catalogue needs
/// to know the new clip without reading it back from storage
/// (`catalogue::ingested`). Not proof of anything: the catalogue uses it only for the
/// version the listing shows, and every destructive action still reads the clip again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// The ETag the store answered (quotes removed).
    pub etag: String,
    /// The storage class asked for; none: the store's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The `Content-Type` written.
    pub content_type: String,
    /// The tags written.
    pub tags: Vec<Tag>,
    /// The `evidence-uploaded-at` metadata written (the store's clock, RFC 3339).
    pub uploaded_at: String,
}

/// What the controller hands to the audit log: everything but the chain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// What happened.
    pub action: AuditAction,
    /// The clip, for clip actions.
    pub clip: Option<ClipRef>,
    /// The tier the clip was in.
    pub from_tier: Option<Tier>,
    /// The tier the clip went to.
    pub to_tier: Option<Tier>,
    /// The clip's verified (moves) or measured (integrity) full-object SHA-256.
    pub sha256: Option<String>,
    /// Why, in words: the engine's reason, the error, the rule.
    pub reason: String,
    /// LegalHold names involved.
    pub holds: Vec<String>,
    /// Case references involved.
    pub cases: Vec<String>,
    /// The Kubernetes object, for policy actions.
    pub object: Option<ObjectInfo>,
    /// To whom a link was given, for `shared` records.
    pub share: Option<Share>,
    /// What an ingest wrote, for `ingested` records.
    pub written: Option<Written>,
}

impl Entry {
    /// An entry about a clip.
    pub fn clip(
        action: AuditAction,
        clip: ClipRef,
        from: Option<Tier>,
        reason: impl Into<String>,
    ) -> Self {
        Entry {
            time: Utc::now(),
            action,
            clip: Some(clip),
            from_tier: from,
            to_tier: None,
            sha256: None,
            reason: reason.into(),
            holds: Vec::new(),
            cases: Vec::new(),
            object: None,
            share: None,
            written: None,
        }
    }

    /// An entry about a RetentionPolicy or LegalHold.
    pub fn policy(action: AuditAction, object: ObjectInfo, reason: impl Into<String>) -> Self {
        Entry {
            time: Utc::now(),
            action,
            clip: None,
            from_tier: None,
            to_tier: None,
            sha256: None,
            reason: reason.into(),
            holds: Vec::new(),
            cases: Vec::new(),
            object: Some(object),
            share: None,
            written: None,
        }
    }
}

/// One record as stored: an [`Entry`] placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The audit object (batch) number this record is stored in.
    pub batch: u64,
    /// The record's line in its batch, from 0.
    pub index: u32,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// Who acted.
    pub actor: Actor,
    /// The EvidenceBucket (`namespace/name`).
    pub bucket: String,
    /// What happened.
    pub action: AuditAction,
    /// The clip, for clip actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipRef>,
    /// The tier the clip was in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_tier: Option<Tier>,
    /// The tier the clip went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_tier: Option<Tier>,
    /// Verified or measured full-object SHA-256 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why.
    pub reason: String,
    /// LegalHold names involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// Case references involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<String>,
    /// The Kubernetes object, for policy actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectInfo>,
    /// To whom a link was given, for `shared` records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    /// What an ingest wrote, for `ingested` records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
    /// SHA-256 (hex) of the previous record's line; [`GENESIS`] for the first.
    pub prev: String,
}

impl Record {
    /// The record's time, parsed.
    pub fn parsed_time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// SHA-256 (hex) of one stored line (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// A batch ready to store: its body and the chain head after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBatch {
    /// The batch number.
    pub batch: u64,
    /// The records, in order.
    pub records: Vec<Record>,
    /// The object body: one JSON line per record, each ending in `\n`.
    pub body: Vec<u8>,
    /// The hash of the last line: the chain head once this batch is stored.
    pub head: String,
}

/// Place entries in the chain after `prev`, as batch number `batch`.
pub fn seal(
    batch: u64,
    prev: &str,
    actor: &Actor,
    bucket: &str,
    entries: &[Entry],
) -> Result<SealedBatch, serde_json::Error> {
    let mut prev = prev.to_string();
    let mut body = Vec::new();
    let mut records = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let record = Record {
            batch,
            index: u32::try_from(i).unwrap_or(u32::MAX),
            time: e.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            actor: actor.clone(),
            bucket: bucket.to_string(),
            action: e.action,
            clip: e.clip.clone(),
            from_tier: e.from_tier,
            to_tier: e.to_tier,
            sha256: e.sha256.clone(),
            reason: e.reason.clone(),
            holds: e.holds.clone(),
            cases: e.cases.clone(),
            object: e.object.clone(),
            share: e.share.clone(),
            written: e.written.clone(),
            prev: prev.clone(),
        };
        let line = serde_json::to_vec(&record)?;
        prev = line_hash(&line);
        body.extend_from_slice(&line);
        body.push(b'\n');
        records.push(record);
    }
    Ok(SealedBatch {
        batch,
        records,
        body,
        head: prev,
    })
}

/// The object key of batch `batch` under `prefix` (zero-padded so that a listing sorts
/// by batch number).
pub fn batch_key(prefix: &str, batch: u64) -> String {
    format!("{prefix}{batch:020}.jsonl")
}

/// The batch number of an object key under `prefix`, when it is a batch key.
pub fn parse_batch_key(prefix: &str, key: &str) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?.strip_suffix(".jsonl")?;
    if rest.len() != 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            operator: "op-0".into(),
            lease: Some("ns/lease".into()),
            lease_holder: Some("op-0".into()),
        }
    }

    fn entry(key: &str) -> Entry {
        Entry::clip(
            AuditAction::Moved,
            ClipRef {
                key: key.into(),
                version_id: None,
                size: 3,
            },
            Some(Tier::Hot),
            "cool after 30d",
        )
    }

    #[test]
    fn sealing_chains_each_line_to_the_one_before() -> Result<(), serde_json::Error> {
        let b = seal(0, GENESIS, &actor(), "ns/unit", &[entry("a"), entry("b")])?;
        let lines: Vec<&[u8]> = b
            .body
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(b.records[0].prev, GENESIS);
        assert_eq!(b.records[1].prev, line_hash(lines[0]));
        assert_eq!(b.head, line_hash(lines[1]));
        let back: Record = serde_json::from_slice(lines[1])?;
        assert_eq!(back, b.records[1]);
        assert_eq!(
            serde_json::to_vec(&back)?,
            lines[1],
            "serialisation is stable"
        );
        Ok(())
    }

    #[test]
    fn batch_keys_sort_and_parse() {
        assert_eq!(batch_key("a/", 7), "a/00000000000000000007.jsonl");
        assert_eq!(parse_batch_key("a/", &batch_key("a/", 42)), Some(42));
        assert_eq!(parse_batch_key("a/", "a/7.jsonl"), None);
        assert_eq!(parse_batch_key("a/", "b/00000000000000000007.jsonl"), None);
        assert!(batch_key("", 9) < batch_key("", 10));
    }

    #[test]
    fn actions_round_trip_by_name() {
        for a in ALL_ACTIONS {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_string(&a).ok(),
                Some(format!("\"{}\"", a.as_str()))
            );
        }
    }
}
