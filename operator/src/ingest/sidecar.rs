//! What the dock says about a clip: the sidecar file (schema v1, JSON or YAML), the
//! folder's defaults (flags), the MP4's own creation time; checked with the operator's
//! own rules into the clip's tags and its key.
//!
//! A clip `NAME.mp4` may have one sidecar next to it: `NAME.json`, `NAME.yaml` or
//! `NAME.yml` (two of them: refused as ambiguous). Schema
//! (`docs/ingest-sidecar.schema.json`):
//!
//! ```yaml
//! schema: evidence.bwv.io/ingest-sidecar/v1   # required, exactly this
//! category: domestic-abuse                    # else --category
//! camera: BWV-0042                            # else --camera
//! officer: "PC 1234"                          # else --officer
//! recordedAt: 2026-03-01T14:05:00Z            # else the MP4's mvhd creation time
//! case: "01/123456/26"                        # optional
//! sha256: 9f86d0…                             # optional: the camera's own hash, checked
//! ```
//!
//! Key scheme: `<yyyy>/<mm>/<dd>/<camera>/<NAME>.mp4`, the date of the recording in
//! UTC. Camera identifiers and file names are limited to `A-Z a-z 0-9 . _ -` so the key
//! is the same on every dock and every store.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::clip::{
    TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT, Tag,
    tag_limits::{MAX_TAGS, MAX_VALUE_CHARS},
};

/// The `schema` value of a version 1 sidecar.
pub const SIDECAR_V1: &str = "evidence.bwv.io/ingest-sidecar/v1";

/// A sidecar file, version 1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    /// Always [`SIDECAR_V1`].
    pub schema: String,
    /// The clip's category (a category of the bucket's RetentionPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The camera (device) identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The officer (collar number or staff id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// When the recording started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// The case reference, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The clip's SHA-256 as the camera computed it (hex): checked against the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The folder's defaults (the flags), for what a clip's sidecar does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `--category`.
    pub category: Option<String>,
    /// `--camera`.
    pub camera: Option<String>,
    /// `--officer`.
    pub officer: Option<String>,
    /// `--case`.
    pub case: Option<String>,
}

/// Which categories a clip may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Categories {
    /// Any non-empty category (plain S3 settings without `--categories`).
    Any,
    /// Only these (the RetentionPolicy's, or `--categories`), compared as the engine
    /// compares them: ignoring case and surrounding blanks.
    Known(Vec<String>),
}

impl Categories {
    fn check(&self, category: &str) -> Result<(), String> {
        match self {
            Categories::Any => Ok(()),
            Categories::Known(known) => {
                let c = category.trim().to_lowercase();
                if known.iter().any(|k| k.trim().to_lowercase() == c) {
                    Ok(())
                } else {
                    Err(format!(
                        "unknown category {category:?} (known: {})",
                        known.join(", ")
                    ))
                }
            }
        }
    }
}

/// Where the recording time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeSource {
    /// The sidecar's `recordedAt`.
    Sidecar,
    /// The MP4's `mvhd` creation time.
    Mp4,
}

/// A clip's metadata, checked: what goes into its tags and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipMeta {
    /// Category.
    pub category: String,
    /// Camera.
    pub camera: String,
    /// Officer.
    pub officer: String,
    /// Recording time.
    pub recorded_at: DateTime<Utc>,
    /// Where it came from.
    pub time_source: TimeSource,
    /// Case reference.
    pub case: Option<String>,
    /// The camera's SHA-256, when the sidecar gave one.
    pub sha256: Option<String>,
}

impl ClipMeta {
    /// The clip's object tags (the documented `evidence.bwv.io/*` keys).
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = vec![
            Tag::new(TAG_CATEGORY, &self.category),
            Tag::new(
                TAG_RECORDED_AT,
                self.recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            Tag::new(TAG_CAMERA, &self.camera),
            Tag::new(TAG_OFFICER, &self.officer),
        ];
        if let Some(case) = &self.case {
            tags.push(Tag::new(TAG_CASE, case));
        }
        tags
    }

    /// The clip's key: `<yyyy>/<mm>/<dd>/<camera>/<stem>.mp4`.
    pub fn key(&self, stem: &str) -> String {
        format!(
            "{}/{}/{stem}.mp4",
            self.recorded_at.format("%Y/%m/%d"),
            self.camera
        )
    }
}

/// Whether a name is safe in a key: `A-Z a-z 0-9 . _ -`, 1 to 128 characters, not
/// starting with a dot.
pub fn key_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The sidecar files next to a clip that exist.
pub fn sidecars_of(clip: &Path) -> Vec<PathBuf> {
    ["json", "yaml", "yml"]
        .iter()
        .map(|ext| clip.with_extension(ext))
        .filter(|p| p.is_file())
        .collect()
}

/// Read and parse a sidecar (JSON for `.json`, YAML otherwise), checking its schema.
pub fn read_sidecar(path: &Path) -> Result<Sidecar, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading: {e}"))?;
    let sidecar: Sidecar = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("not a v1 sidecar: {e}"))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| format!("not a v1 sidecar: {e}"))?
    };
    if sidecar.schema != SIDECAR_V1 {
        return Err(format!(
            "schema {:?} is not {SIDECAR_V1:?} (the only version this ingest reads)",
            sidecar.schema
        ));
    }
    Ok(sidecar)
}

fn nonempty(what: &str, v: Option<&String>) -> Result<String, String> {
    let v = v
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no {what} (sidecar, or --{what} for the folder)"))?;
    if v.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "the {what} is longer than the {MAX_VALUE_CHARS} characters a tag value may have"
        ));
    }
    Ok(v)
}

/// Combine a sidecar (if any), the folder defaults and the MP4's own time into the
/// clip's metadata, checked: categories, tag limits, a key-safe camera, a recording
/// time that is not after `now` (the store's clock) by more than `tolerance`.
pub fn resolve(
    sidecar: Option<&Sidecar>,
    defaults: &Defaults,
    mp4_time: impl FnOnce() -> Result<Option<DateTime<Utc>>, String>,
    categories: &Categories,
    now: DateTime<Utc>,
    tolerance: chrono::TimeDelta,
) -> Result<ClipMeta, String> {
    let empty = Sidecar::default();
    let s = sidecar.unwrap_or(&empty);
    let category = nonempty(
        "category",
        s.category.as_ref().or(defaults.category.as_ref()),
    )?;
    categories.check(&category)?;
    let camera = nonempty("camera", s.camera.as_ref().or(defaults.camera.as_ref()))?;
    if !key_safe(&camera) {
        return Err(format!(
            "camera {camera:?} has characters other than A-Z a-z 0-9 . _ - (it names the key)"
        ));
    }
    let officer = nonempty("officer", s.officer.as_ref().or(defaults.officer.as_ref()))?;
    let case = match s.case.as_ref().or(defaults.case.as_ref()) {
        Some(c) => Some(nonempty("case", Some(c))?),
        None => None,
    };
    let (recorded_at, time_source) = match &s.recorded_at {
        Some(t) => (
            DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| format!("recordedAt {t:?} is not an RFC 3339 time: {e}"))?
                .with_timezone(&Utc),
            TimeSource::Sidecar,
        ),
        None => (
            mp4_time()
                .map_err(|e| format!("no recordedAt, and the MP4 could not be read: {e}"))?
                .ok_or("no recordedAt, and the MP4 has no mvhd creation time (the file's mtime is never used)")?,
            TimeSource::Mp4,
        ),
    };
    if recorded_at > now + tolerance {
        return Err(format!(
            "recorded at {} is in the future of the store's clock ({})",
            recorded_at.to_rfc3339(),
            now.to_rfc3339()
        ));
    }
    let sha256 = match &s.sha256 {
        Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => return Err(format!("sha256 {h:?} is not 64 hex digits")),
        None => None,
    };
    let meta = ClipMeta {
        category,
        camera,
        officer,
        recorded_at,
        time_source,
        case,
        sha256,
    };
    if meta.tags().len() > MAX_TAGS {
        return Err(format!("more than {MAX_TAGS} tags"));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn known() -> Categories {
        Categories::Known(vec!["non-evidential".into(), "Domestic-Abuse".into()])
    }

    #[test]
    fn a_sidecar_wins_over_the_folder_and_makes_the_key_and_tags() {
        let s: Sidecar = serde_yaml::from_str(
            "schema: evidence.bwv.io/ingest-sidecar/v1\ncategory: domestic-abuse\ncamera: BWV-0042\nrecordedAt: 2026-03-01T14:05:00+01:00\ncase: 01/1/26\n",
        )
        .unwrap();
        let d = Defaults {
            category: Some("non-evidential".into()),
            camera: Some("BWV-0001".into()),
            officer: Some("PC 1".into()),
            case: None,
        };
        let now = t("2026-06-01T00:00:00Z");
        let m = resolve(Some(&s), &d, || panic!("not read"), &known(), now, FIVE).unwrap();
        assert_eq!(m.camera, "BWV-0042");
        assert_eq!(m.officer, "PC 1");
        assert_eq!(m.key("clip-1"), "2026/03/01/BWV-0042/clip-1.mp4");
        let tags = m.tags();
        assert!(tags.contains(&Tag::new(TAG_RECORDED_AT, "2026-03-01T13:05:00Z")));
        assert!(tags.contains(&Tag::new(TAG_CASE, "01/1/26")));
        assert_eq!(m.time_source, TimeSource::Sidecar);
    }

    const FIVE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

    #[test]
    fn refusals_say_why() {
        let d = Defaults {
            category: Some("murder".into()),
            camera: Some("BWV-1".into()),
            officer: Some("PC 1".into()),
            case: None,
        };
        let now = t("2026-06-01T00:00:00Z");
        let at = || Ok(Some(t("2026-05-01T00:00:00Z")));
        let e = resolve(None, &d, at, &known(), now, FIVE).unwrap_err();
        assert!(e.contains("unknown category"), "{e}");
        assert!(resolve(None, &d, at, &Categories::Any, now, FIVE).is_ok());
        let future = || Ok(Some(t("2026-06-02T00:00:00Z")));
        let e = resolve(None, &d, future, &Categories::Any, now, FIVE).unwrap_err();
        assert!(e.contains("future"), "{e}");
        let e = resolve(None, &d, || Ok(None), &Categories::Any, now, FIVE).unwrap_err();
        assert!(e.contains("mtime is never used"), "{e}");
        let bad_camera = Defaults {
            camera: Some("cam/../x".into()),
            ..d.clone()
        };
        assert!(resolve(None, &bad_camera, at, &Categories::Any, now, FIVE).is_err());
        let no_officer = Defaults {
            officer: None,
            ..d.clone()
        };
        let e = resolve(None, &no_officer, at, &Categories::Any, now, FIVE).unwrap_err();
        assert!(e.contains("no officer"), "{e}");
    }

    #[test]
    fn sidecars_are_strict() {
        assert!(
            serde_json::from_str::<Sidecar>(
                r#"{"schema":"evidence.bwv.io/ingest-sidecar/v1","categroy":"x"}"#
            )
            .is_err()
        );
        let dir = std::env::temp_dir().join(format!("sidecar-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        std::fs::write(&p, r#"{"schema":"evidence.bwv.io/ingest-sidecar/v2"}"#).unwrap();
        assert!(read_sidecar(&p).unwrap_err().contains("v2"));
        std::fs::write(&p, r#"{"schema":"evidence.bwv.io/ingest-sidecar/v1"}"#).unwrap();
        assert!(read_sidecar(&p).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(key_safe("BWV-0042_20260301.x"));
        assert!(!key_safe("a b") && !key_safe(".hidden") && !key_safe(""));
    }

    #[test]
    fn the_shipped_examples_and_json_schema_match_the_type() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for f in std::fs::read_dir(root.join("docs/examples/dock")).unwrap() {
            let path = f.unwrap().path();
            read_sidecar(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("docs/ingest-sidecar.schema.json")).unwrap(),
        )
        .unwrap();
        let mut documented: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        let full = Sidecar {
            schema: SIDECAR_V1.into(),
            category: Some(String::new()),
            camera: Some(String::new()),
            officer: Some(String::new()),
            recorded_at: Some(String::new()),
            case: Some(String::new()),
            sha256: Some(String::new()),
        };
        let json = serde_json::to_value(full).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            documented, fields,
            "docs/ingest-sidecar.schema.json drifted"
        );
        assert_eq!(schema["properties"]["schema"]["const"], SIDECAR_V1);
    }
}
