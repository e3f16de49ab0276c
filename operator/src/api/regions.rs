//! Which storage regions count as "in the UK".
//!
//! The built-in set is [`BUILTIN_UK_REGIONS`]: the London and Cardiff regions of the
//! public clouds. On-premises S3 (MinIO, Ceph) in a UK data centre names its own region
//! (`uk-london-1`, say), which an installation adds to the allowed set.
//!
//! The set is enforced three times, by the same list:
//! 1. at apply time, by the `ValidatingAdmissionPolicy` `evidence-operator-uk-regions`
//!    (rendered by [`crate::api::crds::admission_policy_objects`], shipped as
//!    `deploy/admission/uk-regions.yaml`). Its parameter is the ConfigMap
//!    [`REGIONS_CONFIGMAP`] in namespace [`REGIONS_CONFIGMAP_NAMESPACE`]; its key
//!    [`REGIONS_CONFIGMAP_KEY`] lists the extra regions, separated by commas or
//!    whitespace. Adding a region is `kubectl edit configmap`, never a CRD edit. The
//!    CRD itself only checks that `region` is a well-formed name: a CRD rule cannot
//!    read a ConfigMap, and an admission policy can only refuse more, never allow what
//!    a CRD refused.
//! 2. at run time by the operator ([`is_allowed`] with its `--allowed-regions` flag),
//!    before any write;
//! 3. by the storage layer, which asks the store which region a bucket is really in.

/// The regions allowed everywhere: AWS London, Azure UK South and UK West, Google London.
pub const BUILTIN_UK_REGIONS: [&str; 4] = ["eu-west-2", "uksouth", "ukwest", "europe-west2"];

/// Name of the ConfigMap that lists an installation's extra UK regions.
pub const REGIONS_CONFIGMAP: &str = "evidence-operator-regions";
/// Namespace of [`REGIONS_CONFIGMAP`].
pub const REGIONS_CONFIGMAP_NAMESPACE: &str = "evidence-operator-system";
/// Key of [`REGIONS_CONFIGMAP`] holding the extra regions (comma or whitespace separated).
pub const REGIONS_CONFIGMAP_KEY: &str = "extraRegions";
/// Key of [`REGIONS_CONFIGMAP`] holding the endpoint hosts EvidenceBuckets may name
/// (hosts or `*.suffix`, comma or whitespace separated; empty: any host), as the
/// operator's `--allowed-endpoints`.
pub const ENDPOINTS_CONFIGMAP_KEY: &str = "allowedEndpoints";

/// The pattern a region name must match (checked by the CRD): lower-case letters,
/// digits and dashes, starting and ending with a letter or digit, at most 63 characters.
pub const REGION_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// Whether `region` is a built-in UK region or one of `extra`.
///
/// Matching is exact (regions are lower-case names); blanks in `extra` are ignored.
pub fn is_allowed(region: &str, extra: &[String]) -> bool {
    !region.is_empty()
        && (BUILTIN_UK_REGIONS.contains(&region) || extra.iter().any(|r| r.trim() == region))
}

/// The regions an installation allows: the built-in UK set plus its extras (blanks
/// dropped, trimmed), sorted and de-duplicated. Built once, from the `--allowed-regions`
/// flag, by the operator and by each subcommand that checks a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRegions(Vec<String>);

impl AllowedRegions {
    /// The built-in UK regions plus `extra`.
    pub fn new<I, S>(extra: I) -> AllowedRegions
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all: Vec<String> = BUILTIN_UK_REGIONS.iter().map(|r| r.to_string()).collect();
        all.extend(
            extra
                .into_iter()
                .map(|r| r.as_ref().trim().to_string())
                .filter(|r| !r.is_empty()),
        );
        all.sort();
        all.dedup();
        AllowedRegions(all)
    }

    /// Whether `region` is allowed (exact match).
    pub fn contains(&self, region: &str) -> bool {
        !region.is_empty() && self.0.iter().any(|r| r == region)
    }

    /// The regions, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for AllowedRegions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// Split an extra-regions list as written in the ConfigMap or a flag (`"uk-london-1,
/// uk-manchester-1"`) into names.
pub fn parse_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_regions_are_built_once_sorted_and_deduplicated() {
        let allowed = AllowedRegions::new([" uk-london-1 ", "", "eu-west-2", "uk-london-1"]);
        assert_eq!(
            allowed.as_slice(),
            [
                "eu-west-2",
                "europe-west2",
                "uk-london-1",
                "uksouth",
                "ukwest"
            ]
        );
        assert!(allowed.contains("uk-london-1"));
        assert!(!allowed.contains("us-east-1"));
        assert!(!allowed.contains(""));
        assert_eq!(
            allowed.to_string(),
            "eu-west-2, europe-west2, uk-london-1, uksouth, ukwest"
        );
    }

    #[test]
    fn builtin_and_extra_regions() {
        for r in BUILTIN_UK_REGIONS {
            assert!(is_allowed(r, &[]));
        }
        assert!(!is_allowed("us-east-1", &[]));
        assert!(!is_allowed("", &[String::new()]));
        assert!(!is_allowed("EU-WEST-2", &[]));
        let extra = parse_list("uk-london-1, uk-manchester-1\n");
        assert_eq!(extra, ["uk-london-1", "uk-manchester-1"]);
        assert!(is_allowed("uk-manchester-1", &extra));
        assert!(!is_allowed("us-east-1", &extra));
    }
}
