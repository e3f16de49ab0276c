//! Step 1 of a bucket's reconcile: read what the EvidenceBucket names. Its
//! RetentionPolicy, the LegalHolds that reference it (all of them: active, not yet
//! active, being deleted; [`super::validate`] tells them apart), the ClipRestores and
//! AccessRequests that reference it, and its credentials Secret. Reads only; a missing object is not an error here but a fact that `validate`
//! turns into a refusal.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::{
    api::{AccessRequest, ClipRestore, EvidenceBucket, LegalHold, RetentionPolicy},
    controller::Error,
};

/// What an EvidenceBucket refers to, as read from the API server.
#[derive(Debug, Clone, Default)]
pub struct Dereferenced {
    /// The RetentionPolicy named by `spec.retentionPolicyRef` (None: it does not exist).
    pub policy: Option<RetentionPolicy>,
    /// Every LegalHold in the namespace whose `spec.bucketRef` names this bucket.
    pub holds: Vec<LegalHold>,
    /// The credentials Secret named by `spec.credentialsSecretRef`.
    pub credentials: Credentials,
    /// Every ClipRestore in the namespace whose `spec.bucketRef` names this bucket.
    pub restores: Vec<ClipRestore>,
    /// Every AccessRequest in the namespace whose `spec.bucketRef` names this bucket.
    pub requests: Vec<AccessRequest>,
}

/// The credentials Secret, as found.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// The bucket names no Secret: the operator's own identity is used.
    #[default]
    NotNamed,
    /// The named Secret does not exist.
    Missing,
    /// The named Secret.
    Found(Box<Secret>),
}

/// Read the policy, the holds and the credentials of an EvidenceBucket.
pub async fn dereference(client: &Client, eb: &EvidenceBucket) -> Result<Dereferenced, Error> {
    let ns = eb.namespace().unwrap_or_default();
    let policy_name = &eb.spec.retention_policy_ref.name;
    let policy = Api::<RetentionPolicy>::namespaced(client.clone(), &ns)
        .get_opt(policy_name)
        .await
        .map_err(Error::read(format!("RetentionPolicy {ns}/{policy_name}")))?;
    let name = eb.name_any();
    let holds = naming(client, &ns, &name, |h: &LegalHold| &h.spec.bucket_ref.name).await?;
    let restores = naming(client, &ns, &name, |r: &ClipRestore| {
        &r.spec.bucket_ref.name
    })
    .await?;
    let requests = naming(client, &ns, &name, |r: &AccessRequest| {
        &r.spec.bucket_ref.name
    })
    .await?;
    Ok(Dereferenced {
        policy,
        holds,
        restores,
        requests,
        credentials: credentials(client, eb).await?,
    })
}

/// The objects of kind `K` in namespace `ns` whose bucket reference (`bucket_ref`)
/// names the EvidenceBucket `name`: one list of the namespace.
pub(super) async fn naming<K>(
    client: &Client,
    ns: &str,
    name: &str,
    bucket_ref: impl Fn(&K) -> &String,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .map_err(Error::read(format!(
            "the {}s of namespace {ns}",
            K::kind(&())
        )))?
        .items
        .into_iter()
        .filter(|o| bucket_ref(o) == name)
        .collect())
}

/// Read the credentials Secret of an EvidenceBucket (also used on its own by
/// `evidence-operator audit`, which needs nothing else).
pub async fn credentials(client: &Client, eb: &EvidenceBucket) -> Result<Credentials, Error> {
    let Some(r) = &eb.spec.credentials_secret_ref else {
        return Ok(Credentials::NotNamed);
    };
    let ns = eb.namespace().unwrap_or_default();
    let found = Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(&r.name)
        .await
        .map_err(Error::read(format!("Secret {ns}/{}", r.name)))?;
    Ok(match found {
        Some(secret) => Credentials::Found(Box::new(secret)),
        None => Credentials::Missing,
    })
}
