//! Region proof: the pure parts. Which AWS region an endpoint host names, what a
//! `GetBucketLocation` answer means, and the proof value a store caches. The store
//! ([`super::s3`]) does the requests and refuses every write until a proof is held.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::error::StorageError;

/// Proof that every tier bucket of a store is in an allowed UK region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionProof {
    /// Each distinct bucket and the location its store reported.
    pub buckets: Vec<(String, String)>,
    /// The allowed set it was checked against.
    pub allowed: Vec<String>,
    /// When the check was made.
    pub checked_at: DateTime<Utc>,
}

/// A cached proof and when it stops being trusted.
#[derive(Debug, Clone)]
pub(crate) struct CachedProof {
    pub(crate) proof: RegionProof,
    pub(crate) expires: Instant,
}

/// The region a `GetBucketLocation` answer names. AWS answers empty (no
/// `LocationConstraint`) for `us-east-1` and the legacy `EU` for `eu-west-1`.
pub fn normalize_location(constraint: Option<&str>) -> String {
    match constraint.map(str::trim) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    }
}

fn looks_like_region(s: &str) -> bool {
    // e.g. eu-west-2, us-gov-west-1, ap-southeast-3
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The host of an endpoint URL (no scheme, user info, port or path), lower case.
fn endpoint_host(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map_or(host, |h| h.trim_start_matches('['))
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The AWS region an S3 endpoint names, when it is an AWS S3 endpoint:
/// `s3.<region>.amazonaws.com`, `s3-<region>.amazonaws.com`,
/// `<bucket>.s3.<region>.amazonaws.com`, `s3.dualstack.<region>...`, `s3-fips...`;
/// the global `s3.amazonaws.com` is `us-east-1`. `None` for any other host (MinIO, Ceph),
/// whose location only `GetBucketLocation` can tell.
pub fn aws_endpoint_region(endpoint: &str) -> Option<String> {
    let host = endpoint_host(endpoint);
    let stem = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = stem.split('.').collect();
    let pos = labels
        .iter()
        .position(|l| *l == "s3" || l.starts_with("s3-"))?;
    let first = labels[pos];
    if let Some(rest) = first.strip_prefix("s3-")
        && looks_like_region(rest)
    {
        return Some(rest.to_string());
    }
    for l in &labels[pos + 1..] {
        if looks_like_region(l) {
            return Some((*l).to_string());
        }
    }
    // s3.amazonaws.com, s3-external-1.amazonaws.com, bucket.s3.amazonaws.com
    Some("us-east-1".to_string())
}

/// Refuse an endpoint that is an AWS S3 endpoint of a region outside `allowed`.
pub fn check_endpoint(endpoint: Option<&str>, allowed: &[String]) -> Result<(), StorageError> {
    let Some(ep) = endpoint else { return Ok(()) };
    match aws_endpoint_region(ep) {
        Some(region) if !allowed.contains(&region) => Err(StorageError::EndpointNotAllowed {
            endpoint: ep.to_string(),
            region,
            allowed: allowed.to_vec(),
        }),
        _ => Ok(()),
    }
}

/// Why an endpoint's host may not be used, whatever its region: a link-local or cloud
/// metadata address (never: the operator's own credentials live behind them; see
/// [`crate::api::validation::endpoint_host`]), or a host outside the installation's
/// allow-list (`allowed_hosts`: exact hosts or `*.suffix` patterns; empty: any host).
pub fn check_endpoint_host(endpoint: &str, allowed_hosts: &[String]) -> Result<(), String> {
    let host = crate::api::validation::endpoint_host(endpoint)?;
    if allowed_hosts.is_empty() || allowed_hosts.iter().any(|p| host_matches(&host, p)) {
        Ok(())
    } else {
        Err(format!(
            "endpoint host {host:?} is not among this installation's allowed endpoints ({}; --allowed-endpoints)",
            allowed_hosts.join(", ")
        ))
    }
}

/// Whether `host` matches an allow-list entry: equal, or `*.suffix` and a subdomain.
fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// Pull the region a store expects out of a "wrong region" error message, e.g. MinIO's
/// `the region 'eu-west-2' is wrong; expecting 'us-east-1'` or AWS's
/// `AuthorizationHeaderMalformed` message.
pub(crate) fn region_from_error_message(message: &str) -> Option<String> {
    let idx = message.find("expecting")?;
    let tail = &message[idx..];
    let start = tail.find('\'')? + 1;
    let end = tail[start..].find('\'')? + start;
    let r = &tail[start..end];
    (!r.is_empty()).then(|| r.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metadata_and_link_local_endpoints_are_always_refused() {
        for ep in [
            "http://169.254.169.254",
            "http://169.254.170.2:80/latest",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]:9000",
            "http://[::ffff:169.254.169.254]",
            "http://metadata.google.internal",
            "http://METADATA.google.internal./computeMetadata",
        ] {
            let e = check_endpoint_host(ep, &[]).unwrap_err();
            assert!(e.contains("always refused"), "{ep}: {e}");
        }
        for ep in [
            "http://127.0.0.1:9000",
            "https://minio.storage.svc:9000",
            "http://[::1]:9000",
        ] {
            assert_eq!(check_endpoint_host(ep, &[]), Ok(()), "{ep}");
        }
    }

    #[test]
    fn an_allow_list_admits_its_hosts_and_subdomains_only() {
        let allowed = vec![
            "minio.storage.svc".to_string(),
            "*.s3.eu-west-2.amazonaws.com".to_string(),
        ];
        for ep in [
            "https://minio.storage.svc:9000",
            "https://MINIO.storage.svc",
            "https://clips.s3.eu-west-2.amazonaws.com",
        ] {
            assert_eq!(check_endpoint_host(ep, &allowed), Ok(()), "{ep}");
        }
        for ep in [
            "https://minio.other.svc",
            "https://s3.eu-west-2.amazonaws.com.evil.example",
            "https://s3.eu-west-2.amazonaws.com",
            "http://10.0.0.5:9000",
        ] {
            let e = check_endpoint_host(ep, &allowed).unwrap_err();
            assert!(e.contains("--allowed-endpoints"), "{ep}: {e}");
        }
    }

    fn allowed() -> Vec<String> {
        vec!["eu-west-2".into(), "uk-dc-1".into()]
    }

    #[test]
    fn aws_endpoints_name_their_region() {
        for (ep, region) in [
            ("https://s3.eu-west-2.amazonaws.com", "eu-west-2"),
            ("https://s3.us-east-1.amazonaws.com/", "us-east-1"),
            ("https://s3-eu-west-1.amazonaws.com", "eu-west-1"),
            ("https://clips.s3.us-west-2.amazonaws.com", "us-west-2"),
            (
                "https://clips.s3-ap-south-1.amazonaws.com:443/x",
                "ap-south-1",
            ),
            ("https://s3.dualstack.eu-west-2.amazonaws.com", "eu-west-2"),
            (
                "https://s3-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            ("https://s3.amazonaws.com", "us-east-1"),
            ("https://bucket.s3.amazonaws.com", "us-east-1"),
            ("S3.EU-WEST-2.AMAZONAWS.COM", "eu-west-2"),
            ("https://s3.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ] {
            assert_eq!(aws_endpoint_region(ep).as_deref(), Some(region), "{ep}");
        }
    }

    #[test]
    fn other_endpoints_are_left_to_get_bucket_location() {
        for ep in [
            "http://127.0.0.1:9000",
            "http://minio.storage.svc:9000",
            "https://objects.example.co.uk",
            "http://[::1]:9000",
        ] {
            assert_eq!(aws_endpoint_region(ep), None, "{ep}");
            assert!(check_endpoint(Some(ep), &allowed()).is_ok());
        }
    }

    #[test]
    fn non_uk_aws_endpoint_is_refused_with_context() {
        let err = check_endpoint(Some("https://s3.us-east-1.amazonaws.com"), &allowed());
        match err {
            Err(StorageError::EndpointNotAllowed {
                region, allowed, ..
            }) => {
                assert_eq!(region, "us-east-1");
                assert_eq!(allowed, super::tests::allowed());
            }
            other => panic!("expected EndpointNotAllowed, got {other:?}"),
        }
        assert!(check_endpoint(Some("https://s3.eu-west-2.amazonaws.com"), &allowed()).is_ok());
        assert!(check_endpoint(None, &allowed()).is_ok());
    }

    #[test]
    fn location_constraints_are_normalized() {
        assert_eq!(normalize_location(None), "us-east-1");
        assert_eq!(normalize_location(Some("")), "us-east-1");
        assert_eq!(normalize_location(Some("EU")), "eu-west-1");
        assert_eq!(normalize_location(Some("eu-west-2")), "eu-west-2");
    }

    #[test]
    fn expected_region_is_read_from_error_messages() {
        assert_eq!(
            region_from_error_message("the region 'eu-west-2' is wrong; expecting 'us-east-1'")
                .as_deref(),
            Some("us-east-1")
        );
        assert_eq!(region_from_error_message("Access Denied"), None);
    }
}
