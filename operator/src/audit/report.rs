//! Reading a verified chain: filters (clip key, case reference, action, time range) and
//! the chain-of-custody report of one clip (every tier it lived in, when, why, with the
//! checksums), as text or JSON. Pure: the records come from [`super::chain::verify`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::{AuditAction, Record};
use crate::api::clip::Tier;

/// Which records to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only records about this clip key.
    pub clip: Option<String>,
    /// Only records naming this case reference.
    pub case: Option<String>,
    /// Only records about this AccessRequest (`namespace/name`): its manifests and the
    /// links shared for it.
    pub request: Option<String>,
    /// Only these actions (any of them).
    pub actions: Vec<AuditAction>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time.
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether a record passes.
    pub fn matches(&self, r: &Record) -> bool {
        if let Some(k) = &self.clip
            && r.clip.as_ref().map(|c| &c.key) != Some(k)
        {
            return false;
        }
        if let Some(c) = &self.case
            && !r.cases.iter().any(|x| x == c)
        {
            return false;
        }
        if let Some(req) = &self.request
            && !r
                .object
                .as_ref()
                .is_some_and(|o| o.kind == "AccessRequest" && &o.name == req)
        {
            return false;
        }
        if !self.actions.is_empty() && !self.actions.contains(&r.action) {
            return false;
        }
        let t = r.parsed_time();
        if let (Some(since), Some(t)) = (self.since, t)
            && t < since
        {
            return false;
        }
        if let (Some(until), Some(t)) = (self.until, t)
            && t >= until
        {
            return false;
        }
        true
    }
}

/// One stay of a clip in one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stay {
    /// The tier.
    pub tier: Tier,
    /// When it arrived (`None`: before the first record, i.e. on upload).
    pub from: Option<String>,
    /// When it left (`None`: still there, or deleted from there).
    pub until: Option<String>,
    /// Why it arrived.
    pub why: String,
    /// The verified SHA-256 on arrival, when recorded.
    pub sha256: Option<String>,
}

/// The chain-of-custody report of one clip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Custody {
    /// The clip key.
    pub clip: String,
    /// Every tier it lived in, in order.
    pub stays: Vec<Stay>,
    /// Whether the last record deleted it.
    pub deleted: bool,
    /// Every record about it, in chain order.
    pub records: Vec<Record>,
}

/// Build the chain-of-custody report of one clip from the records (chain order).
pub fn custody(records: &[Record], key: &str) -> Custody {
    let mine: Vec<Record> = records
        .iter()
        .filter(|r| r.clip.as_ref().is_some_and(|c| c.key == key))
        .cloned()
        .collect();
    let mut stays: Vec<Stay> = Vec::new();
    let mut deleted = false;
    for r in &mine {
        if stays.is_empty()
            && let Some(from) = r.from_tier
        {
            stays.push(Stay {
                tier: from,
                from: None,
                until: None,
                why: "uploaded (before the first audit record)".into(),
                sha256: None,
            });
        }
        let moved_to = match r.action {
            AuditAction::Moved
            | AuditAction::Held
            | AuditAction::Released
            | AuditAction::Ingested => r.to_tier,
            _ => None,
        };
        if let Some(to) = moved_to
            && stays.last().map(|s| s.tier) != Some(to)
        {
            if let Some(last) = stays.last_mut() {
                last.until = Some(r.time.clone());
            }
            stays.push(Stay {
                tier: to,
                from: Some(r.time.clone()),
                until: None,
                why: format!("{}: {}", r.action.as_str(), r.reason),
                sha256: r.sha256.clone(),
            });
        }
        match r.action {
            AuditAction::Deleted | AuditAction::SoftDeleted | AuditAction::Purged => {
                deleted = true;
                if let Some(last) = stays.last_mut() {
                    last.until = Some(r.time.clone());
                }
            }
            AuditAction::Restored => {
                deleted = false;
                if let Some(last) = stays.last_mut() {
                    last.until = None;
                }
            }
            _ => {}
        }
    }
    Custody {
        clip: key.to_string(),
        stays,
        deleted,
        records: mine,
    }
}

fn tier(t: Option<Tier>) -> &'static str {
    t.map(Tier::as_str).unwrap_or("-")
}

/// One record as a line of text.
pub fn record_line(r: &Record) -> String {
    let mut s = format!(
        "{} #{}.{} {:<18} {}",
        r.time,
        r.batch,
        r.index,
        r.action.as_str(),
        r.bucket
    );
    if let Some(c) = &r.clip {
        let _ = write!(s, " clip={}", c.key);
        if let Some(v) = &c.version_id {
            let _ = write!(s, " version={v}");
        }
    }
    if r.from_tier.is_some() || r.to_tier.is_some() {
        let _ = write!(s, " {} -> {}", tier(r.from_tier), tier(r.to_tier));
    }
    if let Some(sha) = &r.sha256 {
        let _ = write!(s, " sha256={sha}");
    }
    if let Some(o) = &r.object {
        let _ = write!(s, " {} {}", o.kind, o.name);
        if let Some(g) = o.generation {
            let _ = write!(s, " generation={g}");
        }
        if let Some(by) = &o.changed_by {
            let _ = write!(s, " by={by}");
        }
    }
    if let Some(sh) = &r.share {
        let _ = write!(
            s,
            " to={:?} by={} until={}",
            sh.recipient, sh.issued_by, sh.expires
        );
    }
    if !r.holds.is_empty() {
        let _ = write!(s, " holds={}", r.holds.join(","));
    }
    if !r.cases.is_empty() {
        let _ = write!(s, " cases={}", r.cases.join(","));
    }
    let _ = write!(
        s,
        " actor={}{} reason: {}",
        r.actor.operator,
        r.actor
            .lease_holder
            .as_deref()
            .map(|h| format!(" (lease holder {h})"))
            .unwrap_or_default(),
        r.reason
    );
    s
}

/// The custody report as text.
pub fn custody_text(c: &Custody) -> String {
    let mut s = format!("Chain of custody for clip {}\n\nTiers:\n", c.clip);
    if c.stays.is_empty() {
        s.push_str("  (no move recorded)\n");
    }
    for st in &c.stays {
        let _ = writeln!(
            s,
            "  {:<10} from {} until {}\n             why: {}{}",
            st.tier.as_str(),
            st.from.as_deref().unwrap_or("upload"),
            st.until
                .as_deref()
                .unwrap_or(if c.deleted { "deleted" } else { "now" }),
            st.why,
            st.sha256
                .as_deref()
                .map(|h| format!("\n             sha256 verified: {h}"))
                .unwrap_or_default()
        );
    }
    if c.deleted {
        s.push_str("  deleted (see the last record for the rule and retention)\n");
    }
    let _ = writeln!(s, "\nRecords ({}):", c.records.len());
    for r in &c.records {
        let _ = writeln!(s, "  {}", record_line(r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Actor, ClipRef, Entry, GENESIS, seal};

    fn e(action: AuditAction, from: Tier, to: Option<Tier>, case: Option<&str>) -> Entry {
        let mut e = Entry::clip(
            action,
            ClipRef {
                key: "k.mp4".into(),
                version_id: None,
                size: 1,
            },
            Some(from),
            "why",
        );
        e.to_tier = to;
        e.sha256 = Some("ab".repeat(32));
        e.cases = case.map(|c| vec![c.to_string()]).unwrap_or_default();
        e
    }

    #[test]
    fn a_restored_clip_is_not_deleted_in_its_custody() -> Result<(), serde_json::Error> {
        let actor = Actor {
            operator: "op".into(),
            lease: None,
            lease_holder: None,
        };
        let soft = vec![e(AuditAction::SoftDeleted, Tier::Hot, None, None)];
        let b = seal(0, GENESIS, &actor, "ns/u", &soft)?;
        assert!(custody(&b.records, "k.mp4").deleted);
        let mut both = soft.clone();
        both.push(e(AuditAction::Restored, Tier::Hot, None, None));
        let b = seal(0, GENESIS, &actor, "ns/u", &both)?;
        let c = custody(&b.records, "k.mp4");
        assert!(!c.deleted);
        assert_eq!(
            c.stays.last().map(|s| (s.tier, s.until.clone())),
            Some((Tier::Hot, None))
        );
        both.push(e(AuditAction::Purged, Tier::Hot, None, None));
        let b = seal(0, GENESIS, &actor, "ns/u", &both)?;
        assert!(custody(&b.records, "k.mp4").deleted);
        Ok(())
    }

    #[test]
    fn custody_lists_every_tier_in_order() -> Result<(), serde_json::Error> {
        let actor = Actor {
            operator: "op".into(),
            lease: None,
            lease_holder: None,
        };
        let entries = vec![
            e(AuditAction::Moved, Tier::Hot, Some(Tier::Cool), None),
            e(
                AuditAction::Held,
                Tier::Cool,
                Some(Tier::LegalHold),
                Some("CASE-1"),
            ),
            e(
                AuditAction::Released,
                Tier::LegalHold,
                Some(Tier::Cool),
                Some("CASE-1"),
            ),
            e(AuditAction::Deleted, Tier::Cool, None, None),
        ];
        let b = seal(0, GENESIS, &actor, "ns/u", &entries)?;
        let c = custody(&b.records, "k.mp4");
        let tiers: Vec<Tier> = c.stays.iter().map(|s| s.tier).collect();
        assert_eq!(
            tiers,
            vec![Tier::Hot, Tier::Cool, Tier::LegalHold, Tier::Cool]
        );
        assert!(c.deleted);
        assert!(c.stays.iter().all(|s| s.until.is_some()));
        let f = Filter {
            case: Some("CASE-1".into()),
            ..Filter::default()
        };
        assert_eq!(b.records.iter().filter(|r| f.matches(r)).count(), 2);
        let text = custody_text(&c);
        assert!(text.contains("legal-hold") && text.contains("released"));
        Ok(())
    }
}
