//! The file set as a whole: references between its objects (an EvidenceBucket's
//! `retentionPolicyRef`, a LegalHold's or ClipRestore's `bucketRef`) name an object defined in the files
//! checked, in the same namespace, and no object is defined twice.

use std::collections::BTreeMap;

use super::{Object, Report, push};

/// References and duplicates across the whole file set.
pub(super) fn cross_check(objects: &[Object<'_>], report: &mut Report) {
    let mut defined: BTreeMap<(String, String, String), &Object<'_>> = BTreeMap::new();
    for o in objects.iter().filter(|o| !o.name.is_empty()) {
        let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
        if let Some(first) = defined.get(&key) {
            let at = format!("{}:{}", first.doc.file.display(), first.doc.start);
            push(
                report,
                o,
                vec![(
                    vec!["metadata".into(), "name".into()],
                    format!(
                        "{} {}/{} is also defined at {at}",
                        o.kind, o.namespace, o.name
                    ),
                )],
            );
        } else {
            defined.insert(key, o);
        }
    }
    let exists = |kind: &str, ns: &str, name: &str| {
        defined.contains_key(&(kind.to_string(), ns.to_string(), name.to_string()))
    };
    for o in objects {
        let (path, kind, target) = match o.kind.as_str() {
            "EvidenceBucket" => (
                ["spec", "retentionPolicyRef", "name"],
                "RetentionPolicy",
                &o.value["spec"]["retentionPolicyRef"]["name"],
            ),
            "LegalHold" | "ClipRestore" | "AccessRequest" => (
                ["spec", "bucketRef", "name"],
                "EvidenceBucket",
                &o.value["spec"]["bucketRef"]["name"],
            ),
            _ => continue,
        };
        let Some(target) = target.as_str() else {
            continue;
        };
        if !exists(kind, &o.namespace, target) {
            push(
                report,
                o,
                vec![(
                    path.iter().map(|s| s.to_string()).collect(),
                    format!(
                        "{kind} {}/{target} is not defined in the files checked",
                        o.namespace
                    ),
                )],
            );
        }
    }
}
