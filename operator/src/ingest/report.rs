//! What an ingest did, clip by clip, and its summary: text for people, JSON for
//! machines, and whether everything is in the hot tier (the exit status).

use std::{path::PathBuf, time::Duration};

use serde::Serialize;

/// What became of one clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Uploaded, verified (and recorded in the audit chain).
    Ingested,
    /// The key already holds this clip (same SHA-256): nothing was sent.
    AlreadyPresent,
    /// `--dry-run`: it would be uploaded.
    WouldIngest,
    /// Its metadata is refused (sidecar, category, time, name): nothing was sent.
    Refused,
    /// The key holds a different object: it was not overwritten.
    Conflict,
    /// The upload failed (after retries); a rerun tries again.
    Failed,
}

impl Outcome {
    /// A stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ingested => "ingested",
            Outcome::AlreadyPresent => "already_present",
            Outcome::WouldIngest => "would_ingest",
            Outcome::Refused => "refused",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }

    /// Whether the clip is (or, in a dry run, would be) in the hot tier.
    pub fn ok(self) -> bool {
        matches!(
            self,
            Outcome::Ingested | Outcome::AlreadyPresent | Outcome::WouldIngest
        )
    }
}

/// One clip of the dock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipReport {
    /// The file, relative to the dock folder.
    pub file: PathBuf,
    /// Its key in the hot tier, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Its SHA-256, once computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
    /// Why (refusals, conflicts, failures), or how it was verified.
    pub detail: String,
    /// The version written, where the bucket is versioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Whether the dock file was removed (`--remove-source`).
    pub source_removed: bool,
    /// What was written, for its `ingested` audit record (which the operator's clip
    /// catalogue learns from).
    #[serde(skip)]
    pub written: Option<crate::audit::Written>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Where the clips went (`s3://bucket/prefix`).
    pub target: String,
    /// The audit chain written to (`s3://bucket/prefix`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_chain: Option<String>,
    /// Audit records written by this run.
    pub audit_records: usize,
    /// A dry run.
    pub dry_run: bool,
    /// Every clip, in dock order.
    pub clips: Vec<ClipReport>,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl IngestReport {
    /// Clips with this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.clips.iter().filter(|c| c.outcome == outcome).count()
    }

    /// Whether every clip is in the hot tier (ingested now or before), or would be.
    pub fn ok(&self) -> bool {
        self.clips.iter().all(|c| c.outcome.ok())
    }

    /// One line of counts.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mib = self.bytes_uploaded as f64 / (1024.0 * 1024.0);
        let ingested = if self.dry_run {
            format!("would ingest {}", self.count(Outcome::WouldIngest))
        } else {
            format!("ingested {}", self.count(Outcome::Ingested))
        };
        format!(
            "{ingested}, already present {}, refused {}, conflicts {}, failed {}; {mib:.1} MiB in {secs:.1} s ({:.1} MiB/s)",
            self.count(Outcome::AlreadyPresent),
            self.count(Outcome::Refused),
            self.count(Outcome::Conflict),
            self.count(Outcome::Failed),
            if secs > 0.0 { mib / secs } else { 0.0 },
        )
    }

    /// The human report: a line per clip that is not in the hot tier, then the summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in self.clips.iter().filter(|c| !c.outcome.ok()) {
            s += &format!(
                "{:<8} {}: {}\n",
                c.outcome.as_str(),
                c.file.display(),
                c.detail
            );
        }
        s += &format!(
            "{} -> {}\n",
            if self.dry_run { "dry run" } else { "dock" },
            self.target
        );
        s += &self.summary();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_summary_counts_and_the_exit_status_follows_the_outcomes() {
        let clip = |outcome| ClipReport {
            file: "a.mp4".into(),
            key: None,
            size: 1,
            sha256: None,
            outcome,
            detail: "why".into(),
            version_id: None,
            source_removed: false,
            written: None,
        };
        let mut r = IngestReport {
            target: "s3://hot/".into(),
            audit_chain: None,
            audit_records: 0,
            dry_run: false,
            clips: vec![clip(Outcome::Ingested), clip(Outcome::AlreadyPresent)],
            bytes_uploaded: 1024 * 1024,
            elapsed: Duration::from_secs(1),
        };
        assert!(r.ok());
        r.clips.push(clip(Outcome::Refused));
        assert!(!r.ok());
        let text = r.to_text();
        assert!(text.contains("refused  a.mp4: why"), "{text}");
        assert!(
            text.contains("ingested 1, already present 1, refused 1"),
            "{text}"
        );
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["clips"][2]["outcome"], "refused");
    }
}
