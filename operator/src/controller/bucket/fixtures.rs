//! Test fixtures for the bucket pipeline: the resources of `deploy/examples/` (what a
//! platform team applies), with builders for the variations a test needs, such as
//! `EvidenceBucket::test().suspended()` or `LegalHold::test().deleting()`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use serde::de::DeserializeOwned;

use super::dereference::{Credentials, Dereferenced};
use crate::api::{EvidenceBucket, LegalHold, RetentionPolicy, legal_hold::FINALIZER};

/// A resource from `deploy/examples/`.
fn example<T: DeserializeOwned>(file: &str) -> T {
    let path = format!("{}/../deploy/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect(&path);
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text).expect(&path);
    // A uid and generation, as the API server would give them.
    value["metadata"]["uid"] = format!("uid-{file}").into();
    value["metadata"]["generation"] = 1.into();
    serde_yaml::from_value(value).expect(&path)
}

impl EvidenceBucket {
    /// `deploy/examples/evidencebucket.yaml`: `bwv-westminster/westminster`, eu-west-2,
    /// RetentionPolicy `met-bwv`, credentials in Secret `westminster-s3`.
    pub(crate) fn test() -> Self {
        example("evidencebucket.yaml")
    }

    /// With `spec.suspend: true`.
    pub(crate) fn suspended(mut self) -> Self {
        self.spec.suspend = true;
        self
    }

    /// Declaring another region.
    pub(crate) fn in_region(mut self, region: &str) -> Self {
        self.spec.region = region.into();
        self
    }

    /// At another endpoint.
    pub(crate) fn at_endpoint(mut self, endpoint: &str) -> Self {
        self.spec.endpoint = Some(endpoint.into());
        self
    }

    /// Naming no credentials Secret.
    pub(crate) fn without_credentials(mut self) -> Self {
        self.spec.credentials_secret_ref = None;
        self
    }
}

impl RetentionPolicy {
    /// `deploy/examples/retentionpolicy-met.yaml`: `bwv-westminster/met-bwv`.
    pub(crate) fn test() -> Self {
        example("retentionpolicy-met.yaml")
    }
}

impl LegalHold {
    /// `deploy/examples/legalhold.yaml` (`op-kestrel`, on bucket `westminster`), as the
    /// LegalHold controller leaves it: with the release finalizer.
    pub(crate) fn test() -> Self {
        let mut hold: LegalHold = example("legalhold.yaml");
        hold.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        hold
    }

    /// Named `name` (and a uid of its own).
    pub(crate) fn named(mut self, name: &str) -> Self {
        self.metadata.name = Some(name.into());
        self.metadata.uid = Some(format!("uid-{name}"));
        self
    }

    /// Just applied: the LegalHold controller has not added the finalizer yet.
    pub(crate) fn without_finalizer(mut self) -> Self {
        self.metadata.finalizers = None;
        self
    }

    /// Deleted, its finalizer still there (its clips are being released).
    pub(crate) fn deleting(mut self) -> Self {
        self.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        self
    }
}

/// `deploy/examples/credentials-secret.yaml` as the API server returns it (`stringData`
/// folded into `data`).
pub(crate) fn secret() -> Secret {
    let mut s: Secret = example("credentials-secret.yaml");
    let data: BTreeMap<String, ByteString> = s
        .string_data
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.into_bytes())))
        .collect();
    s.data = Some(data);
    s
}

/// What dereferencing the example bucket finds when everything exists.
pub(crate) fn found() -> Dereferenced {
    Dereferenced {
        policy: Some(RetentionPolicy::test()),
        holds: vec![LegalHold::test()],
        credentials: Credentials::Found(Box::new(secret())),
        restores: Vec::new(),
        requests: Vec::new(),
    }
}
