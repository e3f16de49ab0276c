//! Preserves: the clips an open access request (or disclosure) covers, and how its
//! selector matches a clip. A preserved clip is neither deleted nor moved (a move
//! rewrites it) whatever the policy says; a legal hold still takes it into the
//! legal-hold tier, and it is not released from there while preserved (see the planner).
//!
//! A request's selector matches a clip when ALL of its criteria do (unlike a legal
//! hold's, where any one does):
//! - `keys`: the clip's key is listed;
//! - `officer`, `camera`, `case`, `location`: the clip has that tag with that value
//!   (when the clip carries the tag twice, either value matches);
//! - `matchTags`: the clip has every one of those tags with that value;
//! - `recordedAfter` / `recordedBefore`: its `recorded-at` lies in the window
//!   (inclusive), or its recording time is missing or unparseable (a request errs on
//!   the side of preserving).
//!
//! An empty selector matches nothing (the API refuses empty selectors anyway).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::api::{
    AccessRequest, AccessSelector,
    clip::{Clip, TAG_CAMERA, TAG_CASE, TAG_LOCATION, TAG_OFFICER, TAG_RECORDED_AT},
};

/// An open access request, as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preserve {
    /// The AccessRequest's name.
    pub name: String,
    /// Its request or case number.
    pub reference: String,
    /// Which clips it covers.
    pub selector: AccessSelector,
}

impl Preserve {
    /// The preserve of an AccessRequest; `None` once it is closed or being deleted.
    pub fn from_request(r: &AccessRequest) -> Option<Preserve> {
        if r.spec.closed || r.metadata.deletion_timestamp.is_some() {
            return None;
        }
        Some(Preserve {
            name: r.metadata.name.clone().unwrap_or_default(),
            reference: r.spec.reference.clone(),
            selector: r.spec.selector.clone(),
        })
    }
}

/// A preserve compiled for fast matching (keys in a hash set).
#[derive(Debug)]
pub(crate) struct CompiledPreserve<'a> {
    pub(crate) name: &'a str,
    keys: HashSet<&'a str>,
    selector: &'a AccessSelector,
}

impl<'a> CompiledPreserve<'a> {
    pub(crate) fn new(p: &'a Preserve) -> Self {
        CompiledPreserve {
            name: &p.name,
            keys: p.selector.keys.iter().map(String::as_str).collect(),
            selector: &p.selector,
        }
    }

    /// Whether this request covers the clip.
    pub(crate) fn selects(&self, clip: &Clip) -> bool {
        let s = self.selector;
        let has_tag = |key: &str, value: &str| {
            clip.tags
                .iter()
                .any(|t| t.key == key && t.value.trim() == value.trim())
        };
        let mut any = false;
        if !self.keys.is_empty() {
            any = true;
            if !self.keys.contains(clip.key.as_str()) {
                return false;
            }
        }
        for (key, value) in [
            (TAG_OFFICER, &s.officer),
            (TAG_CAMERA, &s.camera),
            (TAG_CASE, &s.case),
            (TAG_LOCATION, &s.location),
        ] {
            if let Some(v) = value {
                any = true;
                if !has_tag(key, v) {
                    return false;
                }
            }
        }
        if !s.match_tags.is_empty() {
            any = true;
            if !s.match_tags.iter().all(|(k, v)| has_tag(k, v)) {
                return false;
            }
        }
        if s.recorded_after.is_some() || s.recorded_before.is_some() {
            any = true;
            let times: Vec<Option<DateTime<Utc>>> = clip
                .tags
                .iter()
                .filter(|t| t.key == TAG_RECORDED_AT)
                .map(|t| {
                    DateTime::parse_from_rfc3339(t.value.trim())
                        .ok()
                        .map(|d| d.with_timezone(&Utc))
                })
                .collect();
            let unknown = times.is_empty() || times.iter().any(Option::is_none);
            let inside = times.iter().flatten().any(|t| {
                s.recorded_after.is_none_or(|a| a <= *t)
                    && s.recorded_before.is_none_or(|b| *t <= b)
            });
            if !(unknown || inside) {
                return false;
            }
        }
        any
    }
}
