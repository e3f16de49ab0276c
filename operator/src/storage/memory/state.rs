//! What a [`super::MemoryTierStore`] holds: per tier, a bucket of objects, each a list of
//! S3 object versions (or delete markers), oldest first, the last one current; plus the
//! knobs tests turn (region, Object Lock, injected failures, the clock).
//!
//! Everything here is synchronous and runs under the store's one lock; the store never
//! holds that lock across an `await` (the fault hook may call back into the store).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{
    api::clip::{Clip, META_SHA256, META_UPLOADED_AT, Tag, Tier, parse_uploaded_at},
    storage::{DeletedClip, ListedObject, RegionProof, StorageError},
};

/// An operation whose next calls can be made to fail ([`super::MemoryTierStore::fail_next`]),
/// and whose calls are counted ([`super::MemoryTierStore::calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryOp {
    /// Listing a tier: the stream yields one error and ends.
    List,
    /// The copy of a move (step 5).
    Copy,
    /// Setting or clearing a legal hold (a move's step 7, or `set_legal_hold`).
    Hold,
    /// Deleting one object version: a move's step 8 (the move fails), or one clip of
    /// `delete_clips` (reported as failed, retryable).
    Delete,
    /// Reading one listed object's facts (`TierStore::read_facts`: its tags and hold).
    ReadFacts,
}

impl MemoryOp {
    /// The S3 operation this stands for, as named in errors.
    pub fn s3_name(self) -> &'static str {
        match self {
            MemoryOp::List => "list_objects_v2",
            MemoryOp::Copy => "copy_object",
            MemoryOp::Hold => "put_object_legal_hold",
            MemoryOp::Delete => "delete_object",
            MemoryOp::ReadFacts => "get_object_tagging",
        }
    }
}

/// The SHA-256 of some bytes, lower-case hex.
pub(super) fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// One object version.
#[derive(Debug, Clone)]
pub(super) struct Version {
    /// `null` in an unversioned tier.
    pub(super) id: String,
    pub(super) data: Vec<u8>,
    pub(super) tags: Vec<Tag>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) class: String,
    pub(super) last_modified: DateTime<Utc>,
    pub(super) legal_hold: bool,
}

impl Version {
    /// The recorded SHA-256 (`evidence-sha256` metadata), when well formed.
    pub(super) fn recorded(&self) -> Option<String> {
        self.metadata
            .get(META_SHA256)
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| is_sha256_hex(s))
    }

    /// This version as a clip of `key` in `tier`, as a listing shows it (its version id
    /// only where the tier is `versioned`).
    pub(super) fn clip(&self, key: &str, tier: Tier, versioned: bool) -> Clip {
        Clip {
            key: key.to_string(),
            tier,
            version_id: versioned.then(|| self.id.clone()),
            size: self.size(),
            storage_class: Some(self.class.clone()),
            last_modified: self.last_modified,
            tags: self.tags.clone(),
            sha256: self.recorded(),
            uploaded_at: self.uploaded_at(),
            legal_hold: self.legal_hold,
            plain_headers: None,
        }
    }

    /// The recorded upload time (`evidence-uploaded-at` metadata), when well formed.
    pub(super) fn uploaded_at(&self) -> Option<DateTime<Utc>> {
        self.metadata
            .get(META_UPLOADED_AT)
            .and_then(|v| parse_uploaded_at(v))
    }

    pub(super) fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// A version or a delete marker.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    Data(Version),
    /// A delete marker: its version id and when it was written.
    Marker {
        id: String,
        at: DateTime<Utc>,
    },
}

/// One tier: its bucket's name, the storage class it writes, whether it is versioned,
/// and its objects by clip key.
#[derive(Debug)]
pub(super) struct TierState {
    pub(super) bucket: String,
    pub(super) class: String,
    pub(super) versioned: bool,
    pub(super) objects: BTreeMap<String, Vec<Slot>>,
}

/// A version refused a delete because it is under legal hold.
pub(super) struct HeldVersion;

/// The whole store.
#[derive(Debug)]
pub(super) struct State {
    pub(super) tiers: [TierState; 3],
    next_version: u64,
    pub(super) region: String,
    pub(super) allowed: Vec<String>,
    pub(super) object_lock: bool,
    pub(super) faults: HashMap<MemoryOp, usize>,
    pub(super) calls: HashMap<MemoryOp, u64>,
    pub(super) clock: Option<DateTime<Utc>>,
    /// Storage claims, by bucket (each tier here is a whole bucket).
    pub(super) claims: HashMap<String, crate::storage::claim::Claim>,
}

fn index(tier: Tier) -> usize {
    match tier {
        Tier::Hot => 0,
        Tier::Cool => 1,
        Tier::LegalHold => 2,
    }
}

impl State {
    pub(super) fn new() -> Self {
        let tier = |bucket: &str, class: &str, versioned| TierState {
            bucket: bucket.to_string(),
            class: class.to_string(),
            versioned,
            objects: BTreeMap::new(),
        };
        State {
            tiers: [
                tier("memory-hot", "STANDARD", false),
                tier("memory-cool", "STANDARD_IA", false),
                tier("memory-legal-hold", "STANDARD", true),
            ],
            next_version: 0,
            region: "eu-west-2".into(),
            allowed: vec!["eu-west-2".into()],
            object_lock: true,
            faults: HashMap::new(),
            calls: HashMap::new(),
            clock: None,
            claims: HashMap::new(),
        }
    }

    pub(super) fn tier(&self, tier: Tier) -> &TierState {
        &self.tiers[index(tier)]
    }

    pub(super) fn tier_mut(&mut self, tier: Tier) -> &mut TierState {
        &mut self.tiers[index(tier)]
    }

    /// The time written objects get.
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// Count a call of `op` on `tier`'s bucket; the injected failure, if one is due.
    pub(super) fn call(&mut self, op: MemoryOp, tier: Tier) -> Result<(), StorageError> {
        *self.calls.entry(op).or_default() += 1;
        match self.faults.get_mut(&op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(StorageError::Transient {
                    op: op.s3_name(),
                    bucket: self.tier(tier).bucket.clone(),
                    attempts: 1,
                    message: "injected failure (MemoryTierStore::fail_next)".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The region proof, or the refusal S3's store gives for a bucket elsewhere.
    pub(super) fn prove(&self) -> Result<RegionProof, StorageError> {
        if !self.allowed.contains(&self.region) {
            return Err(StorageError::RegionNotAllowed {
                bucket: self.tiers[0].bucket.clone(),
                found: self.region.clone(),
                allowed: self.allowed.clone(),
            });
        }
        Ok(RegionProof {
            buckets: self
                .tiers
                .iter()
                .map(|t| (t.bucket.clone(), self.region.clone()))
                .collect(),
            declared: Vec::new(),
            allowed: self.allowed.clone(),
            checked_at: Utc::now(),
        })
    }

    /// The legal-hold tier's Object Lock, as the S3 store checks it.
    pub(super) fn ensure_object_lock(&self) -> Result<(), StorageError> {
        if self.object_lock {
            Ok(())
        } else {
            Err(StorageError::ObjectLockMissing {
                bucket: self.tier(Tier::LegalHold).bucket.clone(),
            })
        }
    }

    /// One version of a key (`None`: the current one, unless that is a delete marker).
    pub(super) fn find(&self, tier: Tier, key: &str, version: Option<&str>) -> Option<&Version> {
        let slots = self.tier(tier).objects.get(key)?;
        match version {
            Some(id) => slots.iter().find_map(|s| match s {
                Slot::Data(v) if v.id == id => Some(v),
                _ => None,
            }),
            None => match slots.last()? {
                Slot::Data(v) => Some(v),
                Slot::Marker { .. } => None,
            },
        }
    }

    /// The version a clip was listed as, or `NotFound`.
    pub(super) fn listed_version(&self, clip: &Clip) -> Result<&Version, StorageError> {
        self.find(clip.tier, &clip.key, clip.version_id.as_deref())
            .ok_or_else(|| StorageError::NotFound {
                bucket: clip.tier.to_string(),
                key: clip.key.clone(),
            })
    }

    pub(super) fn find_mut(
        &mut self,
        tier: Tier,
        key: &str,
        version: Option<&str>,
    ) -> Option<&mut Version> {
        let slots = self.tier_mut(tier).objects.get_mut(key)?;
        match version {
            Some(id) => slots.iter_mut().find_map(|s| match s {
                Slot::Data(v) if v.id == id => Some(v),
                _ => None,
            }),
            None => match slots.last_mut()? {
                Slot::Data(v) => Some(v),
                Slot::Marker { .. } => None,
            },
        }
    }

    /// Write a new current version of `key` (an unversioned tier replaces the object);
    /// its version id.
    pub(super) fn write(&mut self, tier: Tier, key: &str, mut v: Version) -> String {
        let versioned = self.tier(tier).versioned;
        v.id = if versioned {
            self.next_version += 1;
            format!("mem-{:08}", self.next_version)
        } else {
            "null".into()
        };
        let id = v.id.clone();
        let objects = &mut self.tier_mut(tier).objects;
        if versioned {
            objects
                .entry(key.to_string())
                .or_default()
                .push(Slot::Data(v));
        } else {
            objects.insert(key.to_string(), vec![Slot::Data(v)]);
        }
        id
    }

    /// Delete one version (`None`: the current object: removed in an unversioned tier,
    /// hidden by a delete marker in a versioned one). A version under legal hold is
    /// refused; a version that is not there is no error (as in S3).
    pub(super) fn delete(
        &mut self,
        tier: Tier,
        key: &str,
        version: Option<&str>,
    ) -> Result<(), HeldVersion> {
        let versioned = self.tier(tier).versioned;
        let objects = &mut self.tier_mut(tier).objects;
        let Some(slots) = objects.get_mut(key) else {
            return Ok(());
        };
        let id = match version {
            Some(id) => id.to_string(),
            None if versioned => {
                self.next_version += 1;
                let id = format!("mem-{:08}", self.next_version);
                let at = self.clock.unwrap_or_else(Utc::now);
                if let Some(slots) = self.tier_mut(tier).objects.get_mut(key) {
                    slots.push(Slot::Marker { id, at });
                }
                return Ok(());
            }
            None => "null".to_string(),
        };
        if let Some(m) = slots
            .iter()
            .position(|s| matches!(s, Slot::Marker { id: m, .. } if *m == id))
        {
            slots.remove(m);
            if slots.is_empty() {
                objects.remove(key);
            }
            return Ok(());
        }
        let Some(at) = slots
            .iter()
            .position(|s| matches!(s, Slot::Data(v) if v.id == id))
        else {
            return Ok(());
        };
        if matches!(&slots[at], Slot::Data(v) if v.legal_hold) {
            return Err(HeldVersion);
        }
        slots.remove(at);
        if slots.iter().all(|s| matches!(s, Slot::Marker { .. })) {
            objects.remove(key);
        }
        Ok(())
    }

    /// The current objects of a tier, as a listing without MinIO's extension shows them
    /// (no facts; the ETag is the data's MD5-length prefix of its SHA-256).
    pub(super) fn listed(&self, tier: Tier) -> Vec<ListedObject> {
        let t = self.tier(tier);
        t.objects
            .iter()
            .filter_map(|(key, slots)| match slots.last()? {
                Slot::Data(v) => Some(ListedObject {
                    key: key.clone(),
                    version_id: t.versioned.then(|| v.id.clone()),
                    etag: Some(sha_hex(&v.data)[..32].to_string()),
                    size: v.size(),
                    storage_class: v.class.clone(),
                    last_modified: v.last_modified,
                    facts: None,
                }),
                Slot::Marker { .. } => None,
            })
            .collect()
    }

    /// The current clips of a tier, as a listing (with MinIO's extension) shows them.
    pub(super) fn clips(&self, tier: Tier) -> Vec<Clip> {
        let t = self.tier(tier);
        t.objects
            .iter()
            .filter_map(|(key, slots)| match slots.last()? {
                Slot::Data(v) => Some(v.clip(key, tier, t.versioned)),
                Slot::Marker { .. } => None,
            })
            .collect()
    }

    /// The soft-deleted clips of a tier (a delete marker on top), in key order.
    pub(super) fn deleted(&self, tier: Tier, prefix: &str) -> Vec<DeletedClip> {
        let t = self.tier(tier);
        t.objects
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, slots)| {
                let Slot::Marker { at: deleted_at, .. } = slots.last()? else {
                    return None;
                };
                let mut markers = Vec::new();
                let mut data = None;
                for slot in slots.iter().rev() {
                    match slot {
                        Slot::Marker { id, .. } => markers.push(id.clone()),
                        Slot::Data(v) => {
                            data = Some(v.clip(key, tier, true));
                            break;
                        }
                    }
                }
                Some(DeletedClip {
                    data,
                    key: key.clone(),
                    tier,
                    markers,
                    deleted_at: *deleted_at,
                })
            })
            .collect()
    }
}
