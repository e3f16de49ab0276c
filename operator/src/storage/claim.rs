//! Storage claims: one owner per storage location. A location is a bucket and a tier
//! prefix; two EvidenceBuckets whose locations overlap (same bucket, one prefix a
//! prefix of the other: in any tier, any namespace, any cluster) are never both
//! managed. The first to claim a location owns it, durably: a small JSON object in the
//! claimed bucket itself (`.evidence-claims/p=<prefix>`), written with `If-None-Match`,
//! read before every sweep, so it survives restarts and is seen by a second cluster
//! sharing the storage. When two overlapping claims exist (a race between different
//! prefixes), the older (then the smaller owner uid) wins, for both readers alike.
//!
//! Deleting an EvidenceBucket leaves its claims. Taking a location over from a
//! previous owner is explicit: the new owner names the previous owner's uid
//! ([`TakeOver`]), and the claim object is rewritten naming both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The key prefix, in each claimed bucket, under which claims are kept (outside any
/// clip: sweeps skip it where a tier prefix would include it).
pub const CLAIMS_PREFIX: &str = ".evidence-claims/";

/// Who claims: the EvidenceBucket, and the cluster it lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// The installation's cluster name (`--cluster-name`; may be empty).
    #[serde(default)]
    pub cluster: String,
    /// The EvidenceBucket's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid: what identifies the owner (a deleted and re-created EvidenceBucket is a
    /// new owner).
    pub uid: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cluster.is_empty() {
            write!(
                f,
                "EvidenceBucket {}/{} (uid {})",
                self.namespace, self.name, self.uid
            )
        } else {
            write!(
                f,
                "EvidenceBucket {}/{} (uid {}) in cluster {}",
                self.namespace, self.name, self.uid, self.cluster
            )
        }
    }
}

/// A claim object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// The claimed bucket.
    pub bucket: String,
    /// The claimed key prefix (empty: the whole bucket).
    pub prefix: String,
    /// Who owns it.
    pub owner: Owner,
    /// When it was first claimed (by this owner, or taken over).
    pub claimed_at: DateTime<Utc>,
    /// The owner it was taken over from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_over_from: Option<Owner>,
}

impl Claim {
    /// The object key of the claim of `prefix`.
    pub fn key_for(prefix: &str) -> String {
        format!("{CLAIMS_PREFIX}p={}", urlencode(prefix))
    }

    /// The prefix a claim key names, if it is one.
    pub fn prefix_of(key: &str) -> Option<String> {
        let enc = key.strip_prefix(CLAIMS_PREFIX)?.strip_prefix("p=")?;
        form_urlencoded::parse(format!("p={enc}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    }

    /// Whether this claim wins over `other` where both overlap: the older, then the
    /// smaller owner uid.
    pub fn wins_over(&self, other: &Claim) -> bool {
        (self.claimed_at, &self.owner.uid) <= (other.claimed_at, &other.owner.uid)
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Whether two prefixes of one bucket overlap (one is a prefix of the other).
pub fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// An explicit take-over: the uid of the previous owner whose claims the new owner
/// takes (from the EvidenceBucket's `evidence.bwv.io/take-over-claim` annotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeOver(pub String);

/// What claiming a store's locations came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Every location is this owner's (claimed now or before). `taken_over` lists the
    /// claims taken over from a previous owner in this call (to be audited).
    Owned {
        /// Claims rewritten in this call, each with the owner it was taken from.
        taken_over: Vec<Claim>,
    },
    /// A location overlaps one another owner holds: nothing may be done.
    ClaimedBy {
        /// The other owner's claim.
        claim: Box<Claim>,
        /// Our location it overlaps (`bucket/prefix`).
        ours: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn claim_keys_name_their_prefix_and_overlap_is_by_prefix() {
        for p in ["", "clips/", "a b/ü/", "x=y&z/"] {
            let key = Claim::key_for(p);
            assert!(key.starts_with(CLAIMS_PREFIX), "{key}");
            assert_eq!(Claim::prefix_of(&key).as_deref(), Some(p), "{key}");
        }
        assert_eq!(Claim::prefix_of("clips/a.mp4"), None);
        assert!(overlaps("", "clips/"));
        assert!(overlaps("clips/", "clips/unit-a/"));
        assert!(!overlaps("clips/a/", "clips/b/"));
        assert!(!overlaps("unit-a/", "unit-ab/"));
        assert!(overlaps("unit-a", "unit-ab"));
    }

    #[test]
    fn the_older_claim_wins_then_the_smaller_uid() {
        let owner = |uid: &str| Owner {
            cluster: String::new(),
            namespace: "ns".into(),
            name: "eb".into(),
            uid: uid.into(),
        };
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let claim = |uid: &str, s| Claim {
            bucket: "b".into(),
            prefix: String::new(),
            owner: owner(uid),
            claimed_at: at(s),
            taken_over_from: None,
        };
        assert!(claim("z", 1).wins_over(&claim("a", 2)));
        assert!(!claim("a", 2).wins_over(&claim("z", 1)));
        assert!(claim("a", 1).wins_over(&claim("b", 1)));
        assert!(!claim("b", 1).wins_over(&claim("a", 1)));
    }
}
