//! Verifying a chain: pure code over the stored audit objects (no I/O).
//!
//! The walk goes batch by batch in key order and reports the **first** break:
//! - a missing object (a gap in the batch numbers, or fewer batches than the head the
//!   operator last reported);
//! - an object in the audit prefix that is not a batch;
//! - an unreadable or altered record (not JSON, or its hash not the next record's `prev`);
//! - a reordered record (its `batch`/`index` are not where it is stored, or its `prev`
//!   names another record);
//! - a head that differs from the head the operator last reported.

use std::fmt;

use serde::Serialize;

use super::record::{GENESIS, Record, line_hash, parse_batch_key};

/// One stored audit object, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key.
    pub key: String,
    /// The version read (the oldest one, in a versioned bucket: the one written first).
    pub version_id: Option<String>,
    /// Its bytes.
    pub body: Vec<u8>,
    /// How many later versions exist on top of the one read (an overwrite attempt in a
    /// versioned bucket; the original, read here, is what counts).
    pub later_versions: usize,
}

/// Where a chain broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Break {
    /// A batch is missing.
    MissingObject {
        /// The batch number expected next.
        batch: u64,
        /// The key it should have.
        key: String,
    },
    /// An object in the audit prefix that is not a batch.
    UnexpectedObject {
        /// Its key.
        key: String,
    },
    /// A batch with no records.
    EmptyObject {
        /// Its key.
        key: String,
    },
    /// A line that is not a record.
    UnreadableRecord {
        /// The object.
        key: String,
        /// The line (from 0).
        line: usize,
        /// The parse error.
        error: String,
    },
    /// A record that claims another place than where it is stored.
    ReorderedRecord {
        /// The object.
        key: String,
        /// The line (from 0).
        line: usize,
        /// The batch the record claims.
        claims_batch: u64,
        /// The index the record claims.
        claims_index: u32,
    },
    /// A record whose `prev` is not the hash of the record stored before it: that one
    /// was altered, or records were removed or reordered.
    AlteredRecord {
        /// The object.
        key: String,
        /// The line (from 0) whose `prev` does not match.
        line: usize,
        /// The hash of the record stored before it.
        expected_prev: String,
        /// The `prev` it carries.
        found_prev: String,
    },
    /// The chain ends before, or differs from, the head the operator last reported.
    HeadMismatch {
        /// The reported head (batch, hash).
        expected_batch: u64,
        /// The reported head hash.
        expected_head: String,
        /// The hash the walk found at that batch (or the last one, if it ends earlier).
        found: String,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::MissingObject { batch, key } => {
                write!(f, "missing object: batch {batch} ({key}) is not in storage")
            }
            Break::UnexpectedObject { key } => {
                write!(
                    f,
                    "unexpected object {key} in the audit prefix (not a batch)"
                )
            }
            Break::EmptyObject { key } => write!(f, "altered object {key}: it holds no record"),
            Break::UnreadableRecord { key, line, error } => {
                write!(
                    f,
                    "altered record: {key} line {line} is not a record ({error})"
                )
            }
            Break::ReorderedRecord {
                key,
                line,
                claims_batch,
                claims_index,
            } => write!(
                f,
                "reordered records: {key} line {line} holds the record of batch {claims_batch} index {claims_index}"
            ),
            Break::AlteredRecord {
                key,
                line,
                expected_prev,
                found_prev,
            } => write!(
                f,
                "altered record: {key} line {line} says the previous record hashed to {found_prev}, \
                 but the record stored before it hashes to {expected_prev} (that record was changed, \
                 or records were removed or reordered)"
            ),
            Break::HeadMismatch {
                expected_batch,
                expected_head,
                found,
            } => write!(
                f,
                "the chain does not reach the head the operator reported (batch {expected_batch}, \
                 {expected_head}); found {found}: objects at the end are missing or altered"
            ),
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Batches walked (up to the first break).
    pub batches: u64,
    /// Records walked (up to the first break).
    pub records: u64,
    /// The hash of the last good record ([`GENESIS`] when there is none).
    pub head: String,
    /// The first break, if any.
    pub first_break: Option<Break>,
    /// Things worth knowing that do not break the chain (later versions on top of a
    /// locked original, for instance).
    pub notes: Vec<String>,
}

impl Verification {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Walk the chain stored in `objects` (any order; they are sorted by key here). Returns
/// the verification and the records up to the first break. `expected_head` is the last
/// head the operator reported (batch number, hash), when known.
pub fn verify(
    prefix: &str,
    objects: &[StoredObject],
    expected_head: Option<(u64, &str)>,
) -> (Verification, Vec<Record>) {
    let mut sorted: Vec<&StoredObject> = objects.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut v = Verification {
        head: GENESIS.to_string(),
        ..Verification::default()
    };
    let mut records = Vec::new();
    let mut heads: Vec<String> = Vec::new();
    for obj in sorted {
        let Some(batch) = parse_batch_key(prefix, &obj.key) else {
            v.first_break = Some(Break::UnexpectedObject {
                key: obj.key.clone(),
            });
            return (v, records);
        };
        if batch != v.batches {
            v.first_break = Some(Break::MissingObject {
                batch: v.batches,
                key: super::record::batch_key(prefix, v.batches),
            });
            return (v, records);
        }
        if obj.later_versions > 0 {
            v.notes.push(format!(
                "{}: {} later version(s) written on top of the original; the original (version {}) was verified",
                obj.key,
                obj.later_versions,
                obj.version_id.as_deref().unwrap_or("null")
            ));
        }
        let lines: Vec<&[u8]> = obj
            .body
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            v.first_break = Some(Break::EmptyObject {
                key: obj.key.clone(),
            });
            return (v, records);
        }
        for (i, line) in lines.iter().enumerate() {
            let record: Record = match serde_json::from_slice(line) {
                Ok(r) => r,
                Err(e) => {
                    v.first_break = Some(Break::UnreadableRecord {
                        key: obj.key.clone(),
                        line: i,
                        error: e.to_string(),
                    });
                    return (v, records);
                }
            };
            if record.batch != batch || usize::try_from(record.index).ok() != Some(i) {
                v.first_break = Some(Break::ReorderedRecord {
                    key: obj.key.clone(),
                    line: i,
                    claims_batch: record.batch,
                    claims_index: record.index,
                });
                return (v, records);
            }
            if record.prev != v.head {
                v.first_break = Some(Break::AlteredRecord {
                    key: obj.key.clone(),
                    line: i,
                    expected_prev: v.head.clone(),
                    found_prev: record.prev.clone(),
                });
                return (v, records);
            }
            v.head = line_hash(line);
            v.records += 1;
            records.push(record);
        }
        heads.push(v.head.clone());
        v.batches += 1;
    }
    if let Some((batch, hash)) = expected_head {
        let found = usize::try_from(batch)
            .ok()
            .and_then(|b| heads.get(b))
            .cloned();
        if found.as_deref() != Some(hash) {
            v.first_break = Some(Break::HeadMismatch {
                expected_batch: batch,
                expected_head: hash.to_string(),
                found: found.unwrap_or_else(|| {
                    format!("a chain of {} batch(es) ending at {}", v.batches, v.head)
                }),
            });
        }
    }
    (v, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::clip::Tier,
        audit::record::{Actor, AuditAction, ClipRef, Entry, batch_key, seal},
    };

    fn chain(n: u64) -> Result<(Vec<StoredObject>, Vec<String>), serde_json::Error> {
        let actor = Actor {
            operator: "op".into(),
            lease: None,
            lease_holder: None,
        };
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        let mut heads = Vec::new();
        for b in 0..n {
            let entries: Vec<Entry> = (0..3)
                .map(|i| {
                    Entry::clip(
                        AuditAction::Moved,
                        ClipRef {
                            key: format!("clip-{b}-{i}"),
                            version_id: None,
                            size: 1,
                        },
                        Some(Tier::Hot),
                        "test",
                    )
                })
                .collect();
            let sealed = seal(b, &prev, &actor, "ns/unit", &entries)?;
            prev = sealed.head.clone();
            heads.push(sealed.head.clone());
            out.push(StoredObject {
                key: batch_key("p/", b),
                version_id: None,
                body: sealed.body,
                later_versions: 0,
            });
        }
        Ok((out, heads))
    }

    #[test]
    fn an_intact_chain_verifies() -> Result<(), serde_json::Error> {
        let (objs, heads) = chain(4)?;
        let (v, records) = verify("p/", &objs, Some((3, &heads[3])));
        assert!(v.ok(), "{:?}", v.first_break);
        assert_eq!((v.batches, v.records, records.len()), (4, 12, 12));
        assert_eq!(v.head, heads[3]);
        Ok(())
    }

    #[test]
    fn every_single_byte_flip_is_detected() -> Result<(), serde_json::Error> {
        let (objs, heads) = chain(2)?;
        for o in 0..objs.len() {
            for i in 0..objs[o].body.len() {
                let mut tampered = objs.clone();
                tampered[o].body[i] ^= 0x01;
                let (v, _) = verify("p/", &tampered, Some((1, &heads[1])));
                assert!(!v.ok(), "flip at object {o} byte {i} went unnoticed");
            }
        }
        Ok(())
    }

    #[test]
    fn missing_swapped_and_reordered_are_detected() -> Result<(), serde_json::Error> {
        let (objs, heads) = chain(3)?;
        let mut missing = objs.clone();
        missing.remove(1);
        let (v, _) = verify("p/", &missing, None);
        assert!(matches!(
            v.first_break,
            Some(Break::MissingObject { batch: 1, .. })
        ));

        let mut last_gone = objs.clone();
        last_gone.pop();
        let (v, _) = verify("p/", &last_gone, Some((2, &heads[2])));
        assert!(matches!(v.first_break, Some(Break::HeadMismatch { .. })));

        let mut swapped = objs.clone();
        let b0 = swapped[0].body.clone();
        swapped[0].body = swapped[2].body.clone();
        swapped[2].body = b0;
        let (v, _) = verify("p/", &swapped, None);
        assert!(matches!(
            v.first_break,
            Some(Break::ReorderedRecord {
                claims_batch: 2,
                ..
            })
        ));

        let mut lines_swapped = objs.clone();
        let text = String::from_utf8_lossy(&lines_swapped[1].body).to_string();
        let mut ls: Vec<&str> = text.lines().collect();
        ls.swap(0, 1);
        lines_swapped[1].body = format!("{}\n", ls.join("\n")).into_bytes();
        let (v, _) = verify("p/", &lines_swapped, None);
        assert!(matches!(v.first_break, Some(Break::ReorderedRecord { .. })));

        let mut foreign = objs;
        foreign.push(StoredObject {
            key: "p/notes.txt".into(),
            version_id: None,
            body: b"x".to_vec(),
            later_versions: 0,
        });
        let (v, _) = verify("p/", &foreign, None);
        assert!(matches!(
            v.first_break,
            Some(Break::UnexpectedObject { .. })
        ));
        Ok(())
    }
}
