//! Tenant isolation against the real servers: a namespace acts only on storage it
//! owns, with credentials it was given (README "Multi-tenancy").

use std::time::Duration;

use anyhow::Result;
use evidence_operator::api::EvidenceBucket;
use evidence_operator_tests::{RunningOperator, Tenant, eventually, servers};
use kube::Api;
use serde_json::json;

fn destructive_policy() -> serde_json::Value {
    json!({
        "default": { "retention": "1d", "onExpiry": "Delete" },
        "minimumAge": "24h",
    })
}

/// A bucket that names no credentials Secret, in a namespace this installation does
/// not grant the operator's own identity (the default: none), is refused before any
/// storage request: `Ready=False`/`Stalled=True`, reason `CredentialsRequired`, a
/// `Warning` event, and its expired clip is not deleted. (It used to be swept with
/// whatever identity the operator's pod had.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_without_a_secret_does_nothing_where_the_operators_identity_is_not_granted()
-> Result<()> {
    let t = Tenant::new("ten-noid").await?;
    t.put_clip("expired.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.apply_policy("policy", destructive_policy()).await?;
    let mut doc = t.bucket_doc("unit", &servers().s3_endpoint, "1m");
    if let Some(spec) = doc["spec"].as_object_mut() {
        spec.remove("credentialsSecretRef");
    }
    t.apply(doc).await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    op.check(async {
        let (status, reason, message) =
            eventually(Duration::from_secs(60), "the Ready condition", || async {
                t.condition("unit", "Ready").await
            })
            .await?;
        anyhow::ensure!(
            (status.as_str(), reason.as_str()) == ("False", "CredentialsRequired"),
            "{status} {reason}: {message}"
        );
        anyhow::ensure!(message.contains(&t.ns), "{message}");
        let stalled = t.condition("unit", "Stalled").await?;
        anyhow::ensure!(
            stalled.as_ref().map(|c| c.0.as_str()) == Some("True"),
            "{stalled:?}"
        );
        t.event("the CredentialsRequired event", |e| {
            e.reason.as_deref() == Some("CredentialsRequired")
        })
        .await?;
        anyhow::ensure!(
            t.keys(&t.hot).await?.contains("expired.mp4"),
            "the clip was deleted"
        );
        let status = t.bucket_status("unit").await?;
        anyhow::ensure!(status["lastSweep"].is_null(), "no sweep ran: {status}");
        Ok(())
    })
    .await
}

/// The EvidenceBucket doc of tenant `b` over tenant `a`'s three buckets.
fn over_the_buckets_of(a: &Tenant, b: &Tenant, name: &str) -> serde_json::Value {
    let mut doc = b.bucket_doc(name, &servers().s3_endpoint, "1m");
    doc["spec"]["tiers"] = json!({
        "hot": { "bucket": a.hot },
        "cool": { "bucket": a.cool },
        "legalHold": { "bucket": a.lock },
    });
    doc
}

/// Waits for `name`'s Ready condition to have `reason`; returns its message.
async fn ready_reason(t: &Tenant, name: &str, reason: &str) -> Result<String> {
    eventually(Duration::from_secs(60), reason, || async {
        Ok(t.condition(name, "Ready")
            .await?
            .and_then(|(_, r, m)| (r == reason).then_some(m)))
    })
    .await
}

/// One owner per storage location. Unit A manages its buckets and holds a clip for a
/// case. Unit B, in another namespace, with its own (valid) keys, points an
/// EvidenceBucket with a destructive policy and no holds at A's buckets: B is refused
/// before it lists a clip (`StorageClaimed`, `Stalled`, a `Warning` event, the message
/// naming A's EvidenceBucket), and A's clips stay where they are, the held one held. A
/// second EvidenceBucket in A's own namespace sharing only A's legal-hold bucket is
/// refused the same way. When A's EvidenceBucket is deleted its claim stays (B is still
/// refused); B then takes the locations over by annotation, which the audit chain
/// records, and B manages them. (Without claims, B deleted A's clips and released A's
/// held clip.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_managed_location_is_refused_to_every_other_evidence_bucket_until_taken_over()
-> Result<()> {
    use evidence_operator::{
        api::{EvidenceBucket, evidence_bucket::TAKE_OVER_ANNOTATION},
        audit::{AuditAction, AuditLog, AuditTarget, verify},
    };
    use kube::{
        ResourceExt,
        api::{DeleteParams, Patch, PatchParams},
    };

    let a = Tenant::new("ten-owner").await?;
    let b = Tenant::new("ten-other").await?;
    a.put_clip("force.mp4", Some("use-of-force"), 3, &[])
        .await?;
    a.put_clip("case.mp4", Some("use-of-force"), 3, &[]).await?;
    a.apply_policy(
        "policy",
        json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "categories": [{ "name": "use-of-force", "retention": "7y", "onExpiry": "Delete" }],
            "minimumAge": "24h",
        }),
    )
    .await?;
    a.apply_bucket("unit", &servers().s3_endpoint, "1m").await?;
    a.apply_hold(
        "case",
        "CASE-A",
        "unit A's case",
        json!({ "keys": ["case.mp4"] }),
    )
    .await?;
    let op_a = RunningOperator::for_namespace(&a.ns, &[]).await?;
    let result_a = async {
        eventually(Duration::from_secs(60), "A's clip held", || async {
            Ok(
                (a.keys(&a.lock).await?.contains("case.mp4") && a.held("case.mp4").await?)
                    .then_some(()),
            )
        })
        .await?;
        ready_reason(&a, "unit", "SweepComplete").await?;
        anyhow::Ok(())
    }
    .await;
    let stopped = op_a.stop().await;
    result_a?;
    stopped?;
    let a_uid = Api::<EvidenceBucket>::namespaced(a.client.clone(), &a.ns)
        .get("unit")
        .await?
        .uid()
        .unwrap_or_default();

    // B, over A's buckets, with a policy that would delete everything and no holds.
    b.apply_policy("policy", destructive_policy()).await?;
    b.apply(over_the_buckets_of(&a, &b, "intruder")).await?;
    // And a second EvidenceBucket in A's namespace sharing A's legal-hold bucket only.
    let shared = Tenant::new("ten-shared").await?;
    let mut second = a.bucket_doc("second", &servers().s3_endpoint, "1m");
    second["spec"]["tiers"] = json!({
        "hot": { "bucket": shared.hot },
        "cool": { "bucket": shared.cool },
        "legalHold": { "bucket": a.lock },
    });
    a.apply(second).await?;

    let op_a = RunningOperator::for_namespace(&a.ns, &[]).await?;
    let op_b = RunningOperator::for_namespace(&b.ns, &[]).await?;
    let result = async {
        let message = ready_reason(&b, "intruder", "StorageClaimed").await?;
        anyhow::ensure!(
            message.contains(&format!("{}/unit", a.ns)) && message.contains(&a_uid),
            "the owner is named: {message}"
        );
        let stalled = b.condition("intruder", "Stalled").await?;
        anyhow::ensure!(stalled.is_some_and(|c| c.0 == "True"), "Stalled");
        b.event("the StorageClaimed event", |e| {
            e.reason.as_deref() == Some("StorageClaimed")
        })
        .await?;
        let message = ready_reason(&a, "second", "StorageClaimed").await?;
        anyhow::ensure!(message.contains(&a.lock), "{message}");
        // Refused, it claimed none of its free locations either.
        let claims =
            a.s3.list_objects_v2()
                .bucket(&shared.hot)
                .prefix(".evidence-claims/")
                .send()
                .await?;
        anyhow::ensure!(
            claims.contents().is_empty(),
            "a refused bucket left a claim"
        );
        // A goes on managing its own.
        ready_reason(&a, "unit", "SweepComplete").await?;
        anyhow::ensure!(b.bucket_status("intruder").await?["lastSweep"].is_null());
        anyhow::ensure!(
            a.keys(&a.hot).await?.contains("force.mp4"),
            "A's clip deleted"
        );
        anyhow::ensure!(a.held("case.mp4").await?, "A's held clip released");
        Ok(())
    }
    .await;
    let (sa, sb) = (op_a.stop().await, op_b.stop().await);
    result?;
    sa?;
    sb?;

    // A's EvidenceBucket goes; its claim stays: B is still refused.
    let a_api: Api<EvidenceBucket> = Api::namespaced(a.client.clone(), &a.ns);
    a_api.delete("unit", &DeleteParams::default()).await?;
    a_api.delete("second", &DeleteParams::default()).await?;
    let op_b = RunningOperator::for_namespace(&b.ns, &[]).await?;
    op_b.check(async {
        // A fresh operator refuses again (the claim is in the storage, not in memory).
        let b_api: Api<EvidenceBucket> = Api::namespaced(b.client.clone(), &b.ns);
        b_api
            .patch(
                "intruder",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "sweepInterval": "2m" } })),
            )
            .await?;
        eventually(
            Duration::from_secs(60),
            "refused after A is gone",
            || async {
                let s = b.bucket_status("intruder").await?;
                let refused = s["observedGeneration"] == 2
                    && s["conditions"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "StorageClaimed"));
                Ok(refused.then_some(()))
            },
        )
        .await?;
        anyhow::ensure!(a.keys(&a.hot).await?.contains("force.mp4"));

        // The explicit take-over.
        b_api
            .patch(
                "intruder",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({ "metadata": { "annotations": { TAKE_OVER_ANNOTATION: a_uid } } }),
                ),
            )
            .await?;
        ready_reason(&b, "intruder", "SweepComplete").await?;
        let log = AuditLog::with_client(
            b.s3.clone(),
            AuditTarget {
                bucket: a.lock.clone(),
                prefix: format!("evidence-audit/{}/intruder/", b.ns),
                retention: None,
            },
        )?;
        let objects = log.read_all().await?;
        let (v, records) = verify(&log.target().prefix, &objects, None);
        anyhow::ensure!(v.first_break.is_none(), "chain broken");
        let taken: Vec<_> = records
            .iter()
            .filter(|r| r.action == AuditAction::ClaimTakenOver)
            .collect();
        anyhow::ensure!(
            !taken.is_empty() && taken.iter().all(|r| r.reason.contains(&a_uid)),
            "the take-over is in the audit chain: {taken:?}"
        );
        Ok(())
    })
    .await
}

/// An installation that lists its endpoints (`--allowed-endpoints`) refuses a bucket at
/// any other host before sending it a request (`EndpointNotAllowed`), and its clips are
/// kept; the metadata addresses are refused at apply time (`tests/invalid/48-*`, `49-*`,
/// in `crds::invalid_documents_are_refused_with_their_message`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_outside_the_installations_list_gets_no_request() -> Result<()> {
    let t = Tenant::new("ten-endpoint").await?;
    t.put_clip("expired.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.apply_policy("policy", destructive_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1m").await?;
    let op = RunningOperator::for_namespace(
        &t.ns,
        &[
            "--allowed-endpoints",
            "minio.storage.svc,*.s3.eu-west-2.amazonaws.com",
        ],
    )
    .await?;
    op.check(async {
        let message = ready_reason(&t, "unit", "EndpointNotAllowed").await?;
        anyhow::ensure!(
            message.contains("--allowed-endpoints") && message.contains("127.0.0.1"),
            "{message}"
        );
        anyhow::ensure!(t.keys(&t.hot).await?.contains("expired.mp4"));
        anyhow::ensure!(t.bucket_status("unit").await?["lastSweep"].is_null());
        Ok(())
    })
    .await
}

/// A tenant cannot reach another namespace's Secret through the operator: a unit
/// admin's ServiceAccount (allowed to manage evidence resources in its own namespace
/// only) cannot read the other namespace's Secret itself, cannot name it from an
/// EvidenceBucket (the reference has no namespace: the field is refused), and an
/// EvidenceBucket naming a Secret of that name gets the one in its own namespace or
/// nothing (`CredentialsNotFound` naming its own namespace), never the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_cannot_reach_another_namespaces_secret_through_the_operator() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};

    let s = servers();
    let victim = Tenant::new("ten-victim").await?;
    let tenant = Tenant::new("ten-tenant").await?;
    // The tenant's unit admin: evidence resources in its own namespace, nothing else.
    let role = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: unit-admin\n  namespace: {ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: unit-admin\n  namespace: {ns}\nrules:\n- apiGroups: [evidence.bwv.io]\n  resources: [evidencebuckets, retentionpolicies, legalholds]\n  verbs: [get, list, watch, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: unit-admin\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: unit-admin\nsubjects:\n- kind: ServiceAccount\n  name: unit-admin\n  namespace: {ns}\n",
        ns = tenant.ns
    );
    let (ok, out, err) = s.kubectl(&["apply", "-f", "-"], Some(&role))?;
    anyhow::ensure!(ok, "{out}{err}");
    let (ok, token, err) = s.kubectl(&["create", "token", "unit-admin", "-n", &tenant.ns], None)?;
    anyhow::ensure!(ok, "{err}");
    let dir = s.dir.join(format!("tenancy-{}", tenant.ns));
    std::fs::create_dir_all(&dir)?;
    let unit_admin = s.client_with_token(token.trim(), &dir).await?;

    // Not directly.
    let theirs: Api<Secret> = Api::namespaced(unit_admin.clone(), &victim.ns);
    anyhow::ensure!(
        matches!(theirs.get("s3").await, Err(kube::Error::Api(ref e)) if e.code == 403),
        "the unit admin read the other namespace's Secret"
    );
    // Not by naming it: an EvidenceBucket's Secret reference has no namespace.
    let ebs: Api<EvidenceBucket> = Api::namespaced(unit_admin.clone(), &tenant.ns);
    let mut doc = over_the_buckets_of(&victim, &tenant, "borrowed");
    doc["spec"]["credentialsSecretRef"] = json!({ "name": "s3", "namespace": victim.ns });
    let strict = ebs
        .patch(
            "borrowed",
            &PatchParams::apply("unit-admin").validation_strict(),
            &Patch::Apply(&doc),
        )
        .await;
    anyhow::ensure!(
        matches!(&strict, Err(kube::Error::Api(e)) if e.message.contains("namespace")),
        "a namespace in the Secret reference was accepted: {strict:?}"
    );
    // Named by name only, it is the tenant's own namespace that is read; without a
    // Secret of that name there, nothing is done.
    doc["spec"]["credentialsSecretRef"] = json!({ "name": "victims-keys" });
    ebs.patch(
        "borrowed",
        &PatchParams::apply("unit-admin"),
        &Patch::Apply(&doc),
    )
    .await?;
    tenant.apply_policy("policy", destructive_policy()).await?;
    let op = RunningOperator::for_namespace(&tenant.ns, &[]).await?;
    op.check(async {
        let message = ready_reason(&tenant, "borrowed", "CredentialsNotFound").await?;
        anyhow::ensure!(
            message.contains(&format!("{}/victims-keys", tenant.ns)),
            "{message}"
        );
        anyhow::ensure!(tenant.bucket_status("borrowed").await?["lastSweep"].is_null());
        Ok(())
    })
    .await
}
