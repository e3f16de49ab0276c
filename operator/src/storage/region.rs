//! Region proof: the pure parts. Which AWS region an endpoint host names, what a
//! `GetBucketLocation` answer means ([`locate`]), the installation's declarations of
//! the region of endpoints whose stores report none ([`EndpointRegions`],
//! `--endpoint-region`), and the proof value a store caches. The store ([`super::s3`])
//! does the requests and refuses every write until a proof is held.
//!
//! A store that reports a region is always judged on what it reports. An empty answer
//! means `us-east-1` from AWS (as AWS documents), but "no region" from any other store
//! (SeaweedFS answers every bucket so): such a bucket is refused unless the
//! installation declares the region of its endpoint. A declaration fills only an empty
//! answer, never names an AWS endpoint (AWS always reports), and must itself name an
//! allowed UK region (checked when the operator starts).

use std::{fmt, str::FromStr, time::Instant};

use chrono::{DateTime, Utc};

use super::error::StorageError;
use crate::api::regions::AllowedRegions;

/// Proof that every tier bucket of a store is in an allowed UK region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionProof {
    /// Each distinct bucket and its region: the location its store reported, or, for
    /// the buckets in [`RegionProof::declared`], the installation's declaration.
    pub buckets: Vec<(String, String)>,
    /// The buckets whose store reported no region, and whose region is therefore the
    /// one the installation declares for their endpoint (`--endpoint-region`), as
    /// `bucket` → the declaration used (`HOST[:PORT]=REGION`).
    pub declared: Vec<(String, String)>,
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

/// Where a `GetBucketLocation` answer puts a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The store reported a region ([`normalize_location`]; AWS's empty answer is
    /// `us-east-1`).
    Reported(String),
    /// The store reported none, and the installation declares its endpoint's region.
    Declared {
        /// The declared region.
        region: String,
        /// The declaration, `HOST[:PORT]=REGION`.
        by: String,
    },
    /// The store reported none, and nothing declares its endpoint's region.
    Unreported,
}

/// What a `GetBucketLocation` answer (`constraint`: its `LocationConstraint`, `None` or
/// empty when there is none) from `endpoint` (`None`: AWS) means: a region the store
/// reports is the finding, always; an empty answer is `us-east-1` from AWS, and from any
/// other endpoint "no region", which only a declaration in `declared` can fill.
pub fn locate(
    endpoint: Option<&str>,
    constraint: Option<&str>,
    declared: &EndpointRegions,
) -> Location {
    let reported = constraint.map(str::trim).filter(|c| !c.is_empty());
    match (reported, endpoint) {
        (Some(c), _) => Location::Reported(normalize_location(Some(c))),
        (None, None) => Location::Reported(normalize_location(None)),
        (None, Some(ep)) if aws_endpoint_region(ep).is_some() => {
            Location::Reported(normalize_location(None))
        }
        (None, Some(ep)) => match declared.find(ep) {
            Some(d) => Location::Declared {
                region: d.region.clone(),
                by: d.to_string(),
            },
            None => Location::Unreported,
        },
    }
}

/// One `--endpoint-region` declaration: the stores at `host` (on `port` only, when one
/// is given; on any port otherwise) are in `region`, though they report none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRegion {
    /// The endpoint host, lower case (an IPv6 address without brackets).
    pub host: String,
    /// The port, when the declaration is for one port only.
    pub port: Option<u16>,
    /// The region the stores there are in.
    pub region: String,
}

impl fmt::Display for EndpointRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}={}", self.region),
            None => write!(f, "{host}={}", self.region),
        }
    }
}

impl FromStr for EndpointRegion {
    type Err = String;

    /// `HOST=REGION` or `HOST:PORT=REGION` (an IPv6 host in brackets, `[::1]:9000`).
    /// An AWS host (`*.amazonaws.com`) is refused: AWS always reports a bucket's region.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--endpoint-region {s:?}: {why} (expected HOST=REGION or HOST:PORT=REGION, e.g. minio.storage.svc:9000=eu-west-2)"
            )
        };
        let (authority, region) = s.trim().split_once('=').ok_or_else(|| bad("no '='"))?;
        let region = region.trim();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad("the region must be a lower-case region name"));
        }
        let authority = authority.trim().to_ascii_lowercase();
        if authority.contains(['/', '@', '?', '#']) {
            return Err(bad("give a host (and port), not a URL"));
        }
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match tail.strip_prefix(':') {
                Some(p) => (h.to_string(), Some(p)),
                None if tail.is_empty() => (h.to_string(), None),
                None => return Err(bad("unexpected text after ']'")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.clone(), None),
            }
        };
        let host = host.trim_end_matches('.').to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            None => None,
        };
        if host.ends_with(".amazonaws.com")
            || host.ends_with(".amazonaws.com.cn")
            || host == "amazonaws.com"
        {
            return Err(format!(
                "--endpoint-region {s:?}: an AWS endpoint's region cannot be declared: AWS reports every bucket's region, and that answer is the one the operator goes by"
            ));
        }
        Ok(EndpointRegion {
            host,
            port,
            region: region.to_string(),
        })
    }
}

impl EndpointRegion {
    /// Whether this declaration is for `endpoint` (a URL): the same host, and, when the
    /// declaration names a port, the same port (the scheme's default when the URL names
    /// none).
    pub fn matches(&self, endpoint: &str) -> bool {
        let Ok(uri) = endpoint.parse::<http::Uri>() else {
            return false;
        };
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host != self.host {
            return false;
        }
        match self.port {
            None => true,
            Some(want) => {
                let port = uri.port_u16().or(match uri.scheme_str() {
                    Some("https") => Some(443),
                    Some("http") => Some(80),
                    _ => None,
                });
                port == Some(want)
            }
        }
    }
}

/// The installation's declarations of the regions of endpoints whose stores report
/// none (`--endpoint-region`, chart value `endpointRegions`). Never set by a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRegions(Vec<EndpointRegion>);

impl EndpointRegions {
    /// The declarations (checked by [`EndpointRegions::check`]).
    pub fn new(entries: Vec<EndpointRegion>) -> Self {
        EndpointRegions(entries)
    }

    /// Refuse (when the operator starts) a declaration whose region is not an allowed
    /// UK region, and two declarations of different regions for one host and port.
    pub fn check(&self, allowed: &AllowedRegions) -> Result<(), String> {
        if let Some(d) = self.0.iter().find(|d| !allowed.contains(&d.region)) {
            return Err(format!(
                "--endpoint-region {d}: {:?} is not an allowed UK region (allowed: {allowed}); an endpoint can only be declared to be in one",
                d.region
            ));
        }
        for (i, a) in self.0.iter().enumerate() {
            if let Some(b) = self.0[i + 1..]
                .iter()
                .find(|b| a.host == b.host && a.port == b.port && a.region != b.region)
            {
                return Err(format!(
                    "--endpoint-region declares two regions for one endpoint: {a} and {b}"
                ));
            }
        }
        Ok(())
    }

    /// The declaration for `endpoint`: one for its port before one for the whole host.
    pub fn find(&self, endpoint: &str) -> Option<&EndpointRegion> {
        self.0
            .iter()
            .filter(|d| d.matches(endpoint))
            .max_by_key(|d| d.port.is_some())
    }

    /// The declarations.
    pub fn as_slice(&self) -> &[EndpointRegion] {
        &self.0
    }
}

/// How an endpoint's host (and port, when the URL names one) is written in a
/// declaration: `127.0.0.1:8333`, `minio.storage.svc`, `[::1]:9000`.
pub fn endpoint_authority(endpoint: &str) -> String {
    match endpoint.parse::<http::Uri>() {
        Ok(uri) => match (uri.host(), uri.port_u16()) {
            (Some(h), Some(p)) => format!("{}:{p}", h.to_ascii_lowercase()),
            (Some(h), None) => h.to_ascii_lowercase(),
            _ => endpoint.to_string(),
        },
        Err(_) => endpoint.to_string(),
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

    fn declared(entries: &[&str]) -> EndpointRegions {
        EndpointRegions::new(entries.iter().map(|e| e.parse().unwrap()).collect())
    }

    #[test]
    fn a_reported_region_is_always_the_finding() {
        let d = declared(&["127.0.0.1:8333=eu-west-2", "s3.example.co.uk=uk-dc-1"]);
        assert_eq!(
            locate(Some("http://127.0.0.1:8333"), Some("us-east-1"), &d),
            Location::Reported("us-east-1".into()),
            "a declaration never overrides what the store reports"
        );
        assert_eq!(
            locate(Some("https://s3.example.co.uk"), Some("EU"), &d),
            Location::Reported("eu-west-1".into())
        );
    }

    #[test]
    fn an_empty_answer_is_us_east_1_from_aws_and_no_region_elsewhere() {
        let none = EndpointRegions::default();
        for ep in [None, Some("https://s3.amazonaws.com")] {
            for empty in [None, Some(""), Some("  ")] {
                assert_eq!(
                    locate(ep, empty, &none),
                    Location::Reported("us-east-1".into())
                );
            }
        }
        assert_eq!(
            locate(Some("http://127.0.0.1:8333"), Some(""), &none),
            Location::Unreported
        );
        let d = declared(&["127.0.0.1:8333=eu-west-2"]);
        assert_eq!(
            locate(Some("http://127.0.0.1:8333/"), None, &d),
            Location::Declared {
                region: "eu-west-2".into(),
                by: "127.0.0.1:8333=eu-west-2".into()
            }
        );
        assert_eq!(
            locate(Some("http://127.0.0.1:9000"), None, &d),
            Location::Unreported,
            "a declaration with a port is for that port only"
        );
    }

    #[test]
    fn declarations_match_host_and_port() {
        let d = declared(&[
            "minio.storage.svc=uk-dc-1",
            "MINIO.storage.svc:9443=eu-west-2",
            "[::1]:9000=eu-west-2",
        ]);
        let region = |ep: &str| d.find(ep).map(|e| e.region.clone());
        assert_eq!(
            region("https://minio.storage.svc:9443"),
            Some("eu-west-2".into())
        );
        assert_eq!(region("https://minio.storage.svc"), Some("uk-dc-1".into()));
        assert_eq!(
            region("http://minio.storage.svc.:9000"),
            Some("uk-dc-1".into())
        );
        assert_eq!(region("http://[::1]:9000"), Some("eu-west-2".into()));
        assert_eq!(region("http://[::1]:9001"), None);
        assert_eq!(region("http://minio.other.svc"), None);
        let d = declared(&["h:443=eu-west-2"]);
        assert!(d.find("https://h").is_some(), "the scheme's default port");
        assert!(d.find("http://h").is_none());
        assert_eq!(
            "[::1]:9000=eu-west-2"
                .parse::<EndpointRegion>()
                .unwrap()
                .to_string(),
            "[::1]:9000=eu-west-2"
        );
    }

    #[test]
    fn declarations_that_cannot_be_made_are_refused() {
        for bad in [
            "s3.eu-west-2.amazonaws.com=eu-west-2",
            "clips.s3.amazonaws.com:443=eu-west-2",
            "host",
            "host=",
            "=eu-west-2",
            "http://host:9000=eu-west-2",
            "host:port=eu-west-2",
            "host=EU West",
        ] {
            assert!(bad.parse::<EndpointRegion>().is_err(), "{bad}");
        }
        let e = "s3.eu-west-2.amazonaws.com=eu-west-2"
            .parse::<EndpointRegion>()
            .unwrap_err();
        assert!(e.contains("AWS reports"), "{e}");
        let allowed = AllowedRegions::new(["uk-dc-1"]);
        assert!(
            declared(&["h=uk-dc-1", "g:1=eu-west-2"])
                .check(&allowed)
                .is_ok()
        );
        let e = declared(&["h=us-east-1"]).check(&allowed).unwrap_err();
        assert!(
            e.contains("us-east-1") && e.contains("not an allowed UK region"),
            "{e}"
        );
        let e = declared(&["h:1=eu-west-2", "h:1=uk-dc-1"])
            .check(&allowed)
            .unwrap_err();
        assert!(e.contains("two regions"), "{e}");
    }

    #[test]
    fn authorities_are_written_as_declarations_are() {
        assert_eq!(
            endpoint_authority("http://127.0.0.1:8333"),
            "127.0.0.1:8333"
        );
        assert_eq!(endpoint_authority("https://Minio.svc/x"), "minio.svc");
        assert_eq!(endpoint_authority("http://[::1]:9000"), "[::1]:9000");
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
