//! The rules of the requests people make of the evidence: an AccessRequest (a subject
//! access or disclosure search, and where its answer may go) and a ClipRestore (bringing
//! soft-deleted clips back). The shared rules (names, regions, endpoints, keys, tags)
//! are the parent module's.

use super::{
    Problem, Segment::Field, bucket_name_problem, endpoint_problems, is_dns_label, key_problems,
    match_tag_problems, region_problems, within_90_days,
};
use crate::api::{
    access_request::{
        AccessRequestSpec, KEEP_FOR_MESSAGE, REQUEST_REFERENCE_BLANK_MESSAGE,
        REQUEST_SELECTOR_EMPTY_MESSAGE, REQUEST_VALUE_BLANK_MESSAGE, REQUEST_WINDOW_ORDER_MESSAGE,
    },
    clip_restore::{ClipRestoreSpec, RESTORE_KEYS_EMPTY_MESSAGE, RESTORE_REFERENCE_BLANK_MESSAGE},
    evidence_bucket::PREFIX_MESSAGE,
    legal_hold::REASON_BLANK_MESSAGE,
    regions::AllowedRegions,
    retention_policy::CATEGORY_NAME_MESSAGE,
};

impl AccessRequestSpec {
    /// What is wrong with this request: a blank reference, an empty selector, a blank
    /// value, a reversed window, malformed keys, tags beyond the S3 limits, an export
    /// location with a malformed bucket, prefix or endpoint, or outside the UK
    /// (`allowed`, as for an EvidenceBucket).
    pub fn problems(&self, allowed: &AllowedRegions) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.reference.trim().is_empty() {
            out.push(Problem::at(
                [Field("reference")],
                REQUEST_REFERENCE_BLANK_MESSAGE,
            ));
        }
        let s = &self.selector;
        let values = [&s.officer, &s.camera, &s.case, &s.location];
        if values.iter().all(|v| v.is_none())
            && s.recorded_after.is_none()
            && s.recorded_before.is_none()
            && s.keys.is_empty()
            && s.match_tags.is_empty()
        {
            out.push(Problem::at(
                [Field("selector")],
                REQUEST_SELECTOR_EMPTY_MESSAGE,
            ));
        }
        if values
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| v.trim().is_empty()))
        {
            out.push(Problem::at(
                [Field("selector")],
                REQUEST_VALUE_BLANK_MESSAGE,
            ));
        }
        if let (Some(a), Some(b)) = (s.recorded_after, s.recorded_before)
            && a > b
        {
            out.push(Problem::at(
                [Field("selector")],
                REQUEST_WINDOW_ORDER_MESSAGE,
            ));
        }
        key_problems(&[Field("selector"), Field("keys")], &s.keys, &mut out);
        match_tag_problems(&s.match_tags, &mut out);
        if let Some(x) = &self.export {
            let at = |f| vec![Field("export"), Field(f)];
            if let Some(p) = bucket_name_problem(&x.bucket) {
                out.push(Problem::at(at("bucket"), p));
            }
            if x.prefix.as_deref().is_some_and(|p| p.starts_with('/')) {
                out.push(Problem::at(at("prefix"), PREFIX_MESSAGE));
            }
            if let Some(r) = &x.region {
                region_problems(&at("region"), "spec.export.region", r, allowed, &mut out);
            }
            if let Some(ep) = &x.endpoint {
                endpoint_problems(&at("endpoint"), ep, &mut out);
            }
            if !within_90_days(&x.keep_for) {
                out.push(Problem::at(
                    at("keepFor"),
                    format!("{}: {KEEP_FOR_MESSAGE}", x.keep_for),
                ));
            }
        }
        out
    }
}

impl ClipRestoreSpec {
    /// What is wrong with this restore: no keys, malformed keys, a blank reason or
    /// reference, a malformed category.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.keys.is_empty() {
            out.push(Problem::at([Field("keys")], RESTORE_KEYS_EMPTY_MESSAGE));
        }
        if self.keys.len() > 1000 {
            out.push(Problem::at([Field("keys")], "at most 1000 keys"));
        }
        key_problems(&[Field("keys")], &self.keys, &mut out);
        if self.reason.trim().is_empty() {
            out.push(Problem::at([Field("reason")], REASON_BLANK_MESSAGE));
        }
        if self.reference.trim().is_empty() {
            out.push(Problem::at(
                [Field("reference")],
                RESTORE_REFERENCE_BLANK_MESSAGE,
            ));
        }
        if let Some(c) = &self.category
            && !is_dns_label(c)
        {
            out.push(Problem::at(
                [Field("category")],
                format!("category {c:?}: {CATEGORY_NAME_MESSAGE}"),
            ));
        }
        out
    }
}
