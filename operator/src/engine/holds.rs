//! Active legal holds and how a hold's selector matches a clip.
//!
//! A selector matches a clip when ANY of its criteria does:
//! - `keys`: the clip's key is listed;
//! - `matchTags`: for every entry, the clip has a tag with that key and value (when a
//!   key appears twice on the clip, either value matches: a hold errs on the side of
//!   holding);
//! - `cameraWindow`: the clip has a camera tag equal to the camera, and its
//!   `recorded-at` lies in the window (inclusive), or its recording time is missing or
//!   unparseable (again: hold rather than risk losing it).
//!
//! An empty selector matches nothing (the API refuses empty selectors anyway).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::api::{
    clip::{Clip, TAG_CAMERA, TAG_RECORDED_AT},
    duration::RetentionDuration,
    legal_hold::{HoldSelector, LegalHold},
};

/// A legal hold in force (not being deleted), as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveHold {
    /// The LegalHold's name.
    pub name: String,
    /// Its case reference.
    pub case_reference: String,
    /// Which clips it selects.
    pub selector: HoldSelector,
    /// How long its clips are kept from the moment it is released (`retainAfterRelease`).
    pub retain_after_release: Option<RetentionDuration>,
}

impl ActiveHold {
    /// The active hold for a LegalHold object; `None` when the object is being deleted
    /// (its `deletionTimestamp` is set), since then its clips are to be released.
    pub fn from_legal_hold(hold: &LegalHold) -> Option<ActiveHold> {
        if hold.metadata.deletion_timestamp.is_some() {
            return None;
        }
        Some(ActiveHold {
            name: hold.metadata.name.clone().unwrap_or_default(),
            case_reference: hold.spec.case_reference.clone(),
            selector: hold.spec.selector.clone(),
            retain_after_release: hold.spec.retain_after_release,
        })
    }
}

/// A hold compiled for fast matching (keys in a hash set).
#[derive(Debug)]
pub(crate) struct CompiledHold<'a> {
    pub(crate) name: &'a str,
    /// Its `retainAfterRelease`.
    pub(crate) retain_after_release: Option<RetentionDuration>,
    keys: HashSet<&'a str>,
    selector: &'a HoldSelector,
}

impl<'a> CompiledHold<'a> {
    pub(crate) fn new(hold: &'a ActiveHold) -> Self {
        CompiledHold {
            name: &hold.name,
            retain_after_release: hold.retain_after_release,
            keys: hold.selector.keys.iter().map(String::as_str).collect(),
            selector: &hold.selector,
        }
    }

    /// Whether this hold selects the clip.
    pub(crate) fn selects(&self, clip: &Clip) -> bool {
        if self.keys.contains(clip.key.as_str()) {
            return true;
        }
        let tags = &self.selector.match_tags;
        if !tags.is_empty()
            && tags
                .iter()
                .all(|(k, v)| clip.tags.iter().any(|t| t.key == *k && t.value == *v))
        {
            return true;
        }
        if let Some(window) = &self.selector.camera_window {
            let camera = clip
                .tags
                .iter()
                .any(|t| t.key == TAG_CAMERA && t.value == window.camera);
            if camera {
                let mut times = clip
                    .tags
                    .iter()
                    .filter(|t| t.key == TAG_RECORDED_AT)
                    .map(|t| DateTime::parse_from_rfc3339(&t.value).map(|d| d.with_timezone(&Utc)));
                let mut any_time = false;
                let mut in_window = false;
                let mut unknown = false;
                for t in times.by_ref() {
                    any_time = true;
                    match t {
                        Ok(t) => in_window |= window.from <= t && t <= window.to,
                        Err(_) => unknown = true,
                    }
                }
                if in_window || unknown || !any_time {
                    return true;
                }
            }
        }
        false
    }
}
