//! The chart's RBAC is enough for the operator, and no more.
//!
//! The chart is rendered with `helm template` (watching one tenant namespace); its
//! ServiceAccount, Roles, ClusterRoles and bindings are applied to the real test
//! kube-apiserver; a token is issued for the ServiceAccount (`kubectl create token`);
//! and the operator runs in-process (`runtime::run_with`, the binary's code) with a
//! client that authenticates with that token only, with the flags the chart's
//! Deployment sets (its `EVIDENCE_*` environment), leader election on (a Lease in the
//! release namespace) and its clock two days ahead. It goes through the lifecycle:
//! expire, cool, flag, hold, release. Requests outside the grant are shown to be
//! forbidden for the same token.

use std::{collections::BTreeSet, path::PathBuf, process::Command as Process, time::Duration};

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
use chrono::Utc;
use evidence_operator::api::{EvidenceBucket, LegalHold, RetentionPolicy};
use evidence_operator_tests::{
    RunningOperator, Tenant, eventually, operator, repo_root, servers, unique_name,
};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Namespace, Secret},
    events::v1::Event,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde::Deserialize;
use serde_json::json;

fn helm() -> PathBuf {
    let out = Process::new(repo_root().join("tests/servers/install.sh"))
        .arg("helm")
        .output()
        .expect("running tests/servers/install.sh helm");
    assert!(
        out.status.success(),
        "install.sh helm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("helm=").map(PathBuf::from))
        .expect("helm=<path>")
}

fn kube_version() -> String {
    std::fs::read_to_string(repo_root().join("tests/servers/versions.env"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_VERSION=v").map(str::to_string))
        .unwrap()
}

fn render(release: &str, ns: &str, set: &str) -> Result<Vec<serde_yaml::Value>> {
    let chart = repo_root().join("charts/evidence-operator");
    let out = Process::new(helm())
        .args(["template", release])
        .arg(&chart)
        .args([
            "--namespace",
            ns,
            "--kube-version",
            &kube_version(),
            "--set",
            set,
        ])
        .output()?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut docs = Vec::new();
    for d in serde_yaml::Deserializer::from_str(&text) {
        let v = serde_yaml::Value::deserialize(d)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn kind(v: &serde_yaml::Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn is_forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> bool {
    matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403)
}

async fn apply<K>(api: &Api<K>, name: &str, doc: serde_json::Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("tests").force(),
        &Patch::Apply(&doc),
    )
    .await?;
    Ok(())
}

/// Three buckets with three clips, the credentials Secret, a policy and an
/// EvidenceBucket `unit` in namespace `tenant`, created by the admin.
async fn tenant_setup(admin: &Client, tenant: &str) -> Result<Tenant> {
    let s = servers();
    let t = Tenant::in_namespace(admin.clone(), tenant, s, false).await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.put_clip("young.mp4", Some("use-of-force"), 3, &[])
        .await?;
    t.apply_policy(
        "policy",
        json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "categories": [{ "name": "use-of-force", "retention": "7y", "onExpiry": "Delete" }],
            "coolAfter": "30d", "minimumAge": "24h",
        }),
    )
    .await?;
    t.apply_bucket("unit", &s.s3_endpoint, "1h").await?;
    Ok(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_runs_the_lifecycle_with_only_the_charts_rbac() -> Result<()> {
    let s = servers();
    let admin = s.kube_client().await?;
    evidence_operator_tests::ensure_crds(&admin).await?;
    let ops = unique_name("rbac-ops");
    let tenant = unique_name("rbac-tenant");
    let nss: Api<Namespace> = Api::all(admin.clone());
    for ns in [&ops, &tenant] {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": ns } }))?,
        )
        .await?;
    }
    // A release name unique to this run, so its ClusterRoles do not collide.
    let release = unique_name("rbac");
    let lease = format!("{release}-lease");
    let docs = render(
        &release,
        &ops,
        &format!(
            "watchNamespaces={{{tenant}}},s3.minRequeue=1s,leaderElection.leaseName={lease},admissionPolicy.enabled=false"
        ),
    )?;

    // Apply the chart's identity and RBAC, nothing else.
    let rbac_kinds = [
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
    ];
    let rbac: Vec<&serde_yaml::Value> = docs
        .iter()
        .filter(|d| rbac_kinds.contains(&kind(d)))
        .collect();
    let applied: BTreeSet<&str> = rbac.iter().map(|d| kind(d)).collect();
    ensure!(
        applied == BTreeSet::from(["ServiceAccount", "Role", "ClusterRole", "RoleBinding"]),
        "namespaced mode renders SA, Roles, RoleBindings and the credentials ClusterRole: {applied:?}"
    );
    let yaml: String = rbac
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let (ok, out, err) = s.kubectl(&["apply", "-f", "-"], Some(&yaml))?;
    ensure!(ok, "applying the chart's RBAC: {out}{err}");
    let sa = docs
        .iter()
        .find(|d| kind(d) == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .context("ServiceAccount")?
        .to_string();
    let (ok, token, err) = s.kubectl(&["create", "token", &sa, "-n", &ops], None)?;
    ensure!(ok, "kubectl create token: {err}");
    let dir = s.dir.join(format!("rbac-{release}"));
    std::fs::create_dir_all(&dir)?;
    let client = s.client_with_token(token.trim(), &dir).await?;

    // Storage and the tenant's resources (created by the admin, as a platform team would).
    let s3 = s.s3_client();
    let t = tenant_setup(&admin, &tenant).await?;
    let (hot, cool, lock) = (t.hot.clone(), t.cool.clone(), t.lock.clone());
    let buckets: Api<EvidenceBucket> = Api::namespaced(admin.clone(), &tenant);

    // What the token may NOT do.
    let their_secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    ensure!(
        is_forbidden(their_secrets.list(&ListParams::default()).await),
        "listing Secrets in another namespace must be forbidden"
    );
    ensure!(
        is_forbidden(
            Api::<Secret>::namespaced(client.clone(), &ops)
                .get("anything")
                .await
        ),
        "reading Secrets in the operator's own namespace must be forbidden"
    );
    let tenant_secrets: Api<Secret> = Api::namespaced(client.clone(), &tenant);
    ensure!(
        is_forbidden(tenant_secrets.list(&ListParams::default()).await),
        "listing Secrets, even in the tenant namespace, must be forbidden (get by name only)"
    );
    ensure!(
        tenant_secrets.get("s3").await.is_ok(),
        "getting the credentials Secret by name is allowed"
    );
    let as_operator: Api<EvidenceBucket> = Api::namespaced(client.clone(), &tenant);
    ensure!(
        is_forbidden(as_operator.delete("unit", &DeleteParams::default()).await),
        "deleting an EvidenceBucket must be forbidden"
    );
    ensure!(
        is_forbidden(
            Api::<RetentionPolicy>::namespaced(client.clone(), &tenant)
                .patch(
                    "policy",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": { "coolAfter": "1d" } }))
                )
                .await
        ),
        "changing a RetentionPolicy must be forbidden"
    );
    ensure!(
        is_forbidden(
            Api::<EvidenceBucket>::namespaced(client.clone(), "default")
                .list(&ListParams::default())
                .await
        ),
        "EvidenceBuckets outside the watched namespaces must be invisible"
    );
    ensure!(
        is_forbidden(
            Api::<Lease>::namespaced(client.clone(), &ops)
                .get("someone-elses-lease")
                .await
        ),
        "other Leases must be forbidden"
    );

    // The operator, configured exactly as the chart's Deployment configures it.
    let deployment = docs
        .iter()
        .find(|d| kind(d) == "Deployment")
        .context("Deployment")?;
    let mut argv: Vec<String> = vec!["evidence-operator".into(), "run".into()];
    for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .context("env")?
    {
        let (Some(name), Some(value)) = (e["name"].as_str(), e["value"].as_str()) else {
            continue; // POD_NAME / POD_NAMESPACE come from the downward API: set below
        };
        let Some(flag) = name.strip_prefix("EVIDENCE_") else {
            continue;
        };
        if value.is_empty() || flag == "METRICS_ADDR" {
            continue;
        }
        argv.push(format!(
            "--{}={value}",
            flag.to_lowercase().replace('_', "-")
        ));
    }
    ensure!(
        argv.iter()
            .any(|a| a == &format!("--watch-namespace={tenant}"))
            && argv.iter().any(|a| a == "--leader-elect=true"),
        "the chart sets the watched namespace and leader election: {argv:?}"
    );
    argv.push(format!("--lease-namespace={ops}"));
    argv.push(format!("--identity={release}-0"));
    let op = RunningOperator::start(client.clone(), operator::settings_from_argv(&argv)?)?;

    let result = async {
        // Leader election through the Lease the chart allows.
        let leases: Api<Lease> = Api::namespaced(admin.clone(), &ops);
        eventually(Duration::from_secs(30), "the Lease", || async {
            let l = leases.get_opt(&lease).await?;
            Ok(l.and_then(|l| l.spec?.holder_identity)
                .filter(|h| h == &format!("{release}-0")))
        })
        .await?;

        // Expire and cool.
        eventually(Duration::from_secs(90), "the first sweep", || async {
            let b = buckets.get("unit").await?;
            let ready = b.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            Ok(ready.then_some(()))
        })
        .await?;
        let (h, c) = (t.keys(&hot).await?, t.keys(&cool).await?);
        ensure!(
            !h.contains("old-non-evidential.mp4") && !c.contains("old-non-evidential.mp4"),
            "expired clip deleted: {h:?} {c:?}"
        );
        ensure!(
            c.contains("force-old.mp4") && !h.contains("force-old.mp4"),
            "kept clip cooled: {h:?} {c:?}"
        );
        ensure!(h.contains("young.mp4"), "young clip stays hot: {h:?}");

        // Hold, then release (the finalizer is the operator's patch on legalholds).
        let holds: Api<LegalHold> = Api::namespaced(admin.clone(), &tenant);
        apply(
            &holds,
            "case",
            json!({
                "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold",
                "metadata": { "name": "case" },
                "spec": { "bucketRef": { "name": "unit" }, "caseReference": "CASE/1",
                          "reason": "rbac test", "selector": { "keys": ["force-old.mp4"] } },
            }),
        )
        .await?;
        eventually(Duration::from_secs(60), "the clip held", || async {
            if !t.keys(&lock).await?.contains("force-old.mp4") {
                return Ok(None);
            }
            let r = s3
                .get_object_legal_hold()
                .bucket(&lock)
                .key("force-old.mp4")
                .send()
                .await?;
            let on =
                r.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On);
            let h = holds.get("case").await?;
            let counted = h.status.and_then(|s| s.held_clips) == Some(1);
            let finalized = h
                .metadata
                .finalizers
                .unwrap_or_default()
                .iter()
                .any(|f| f == "evidence.bwv.io/release-clips");
            Ok((on && counted && finalized).then_some(()))
        })
        .await?;
        holds.delete("case", &DeleteParams::default()).await?;
        eventually(Duration::from_secs(60), "the hold released", || async {
            let gone = holds.get_opt("case").await?.is_none();
            let back = t.keys(&cool).await?.contains("force-old.mp4");
            Ok((gone && back).then_some(()))
        })
        .await?;

        // Events were written (events.k8s.io create).
        let events: Api<Event> = Api::namespaced(admin.clone(), &tenant);
        let reasons: BTreeSet<String> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect();
        ensure!(
            reasons.contains("Moved") && reasons.contains("Deleted"),
            "events: {reasons:?}"
        );

        // And not one request was refused along the way.
        for c in ["evidencebucket", "legalhold"] {
            let n: u64 = evidence_operator::controller::Error::KUBE_CATEGORIES
                .iter()
                .map(|category| {
                    op.metrics
                        .reconcile_errors
                        .with_label_values(&[c, category])
                        .get()
                })
                .sum();
            ensure!(
                n == 0,
                "{n} {c} reconcile(s) failed on the Kubernetes API (RBAC too narrow?)"
            );
        }
        Ok(())
    }
    .await;

    let stopped = op.stop().await;
    // Cluster-scoped objects of this run.
    for d in docs
        .iter()
        .filter(|d| matches!(kind(d), "ClusterRole" | "ClusterRoleBinding"))
    {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let _ = s.kubectl(
            &[
                "delete",
                &kind(d).to_lowercase(),
                name,
                "--ignore-not-found",
            ],
            None,
        );
    }
    result?;
    stopped?;
    // The Lease was released on shutdown.
    let l = Api::<Lease>::namespaced(admin.clone(), &ops)
        .get(&lease)
        .await?;
    ensure!(
        l.spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()
            .is_empty(),
        "the Lease is released on shutdown"
    );
    Ok(())
}

/// Every object version in a bucket (key, version id, ETag), and the bucket's tags.
async fn snapshot(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let listed = s3.list_object_versions().bucket(bucket).send().await?;
    for v in listed.versions() {
        let key = v.key().unwrap_or_default();
        let tags = s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(v.version_id().map(str::to_string))
            .send()
            .await?;
        let mut tags: Vec<String> = tags
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect();
        tags.sort();
        out.insert(format!(
            "{key} {} {} {}",
            v.version_id().unwrap_or_default(),
            v.e_tag().unwrap_or_default(),
            tags.join("&")
        ));
    }
    for m in listed.delete_markers() {
        out.insert(format!("deleted {}", m.key().unwrap_or_default()));
    }
    Ok(out)
}

/// `evidence-operator plan` against the live cluster and MinIO: reports what the
/// operator then does, and changes nothing (S3 object versions, tags, the resources'
/// resourceVersions and status, events).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_is_read_only_and_predicts_the_sweep() -> Result<()> {
    use evidence_operator::cli::{
        InstallationArgs,
        plan::{self, Output, PlanArgs},
    };
    use evidence_operator::engine::Action;

    let s = servers();
    let admin = s.kube_client().await?;
    evidence_operator_tests::ensure_crds(&admin).await?;
    let tenant = unique_name("plan");
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": tenant } }))?,
        )
        .await?;
    let t = tenant_setup(&admin, &tenant).await?;
    let (hot, cool, lock) = (t.hot.clone(), t.cool.clone(), t.lock.clone());
    let s3 = s.s3_client();
    let buckets: Api<EvidenceBucket> = Api::namespaced(admin.clone(), &tenant);
    let events: Api<Event> = Api::namespaced(admin.clone(), &tenant);

    let state = || async {
        let mut st = BTreeSet::new();
        for b in [&hot, &cool, &lock] {
            for v in snapshot(&s3, b).await? {
                st.insert(format!("{b}: {v}"));
            }
        }
        let eb = buckets.get("unit").await?;
        st.insert(format!(
            "eb {:?} {}",
            eb.metadata.resource_version,
            serde_json::to_string(&eb.status)?
        ));
        st.insert(format!(
            "events {}",
            events.list(&ListParams::default()).await?.items.len()
        ));
        anyhow::Ok(st)
    };
    let before = state().await?;

    // Two days ahead: past the safety floor for clips uploaded a moment ago.
    let at = Utc::now() + chrono::TimeDelta::days(2);
    let args = PlanArgs {
        bucket: format!("{tenant}/unit"),
        namespace: None,
        now: Some(at),
        output: Output::Json,
        all: false,
        installation: InstallationArgs::default(),
        audit_prefix: "evidence-audit/".into(),
    };
    let report = plan::plan(admin.clone(), &args).await?;
    let count = |a: Action| report.counts.get(&a).copied().unwrap_or(0);
    ensure!(count(Action::Delete) == 1, "{}", report.to_text());
    ensure!(count(Action::MoveToCool) == 1, "{}", report.to_text());
    ensure!(count(Action::Keep) == 1, "{}", report.to_text());
    let acted: BTreeSet<(String, Action)> = report
        .items
        .iter()
        .map(|c| (c.key.clone(), c.action))
        .collect();
    ensure!(
        acted
            == BTreeSet::from([
                ("old-non-evidential.mp4".to_string(), Action::Delete),
                ("force-old.mp4".to_string(), Action::MoveToCool),
            ]),
        "{acted:?}"
    );
    ensure!(report.items.iter().all(|c| !c.reason.is_empty()));
    let text = report.to_text();
    ensure!(
        text.contains("delete 1") && text.contains("old-non-evidential.mp4"),
        "{text}"
    );
    // Without --now (the real clock), the safety floor keeps the fresh uploads.
    let today = plan::plan(
        admin.clone(),
        &PlanArgs {
            now: None,
            ..args.clone()
        },
    )
    .await?;
    ensure!(
        today.counts.get(&Action::Delete).copied().unwrap_or(0) == 0,
        "nothing is deletable before the safety floor: {}",
        today.to_text()
    );
    // A bucket that does not exist is an error, not an empty plan.
    ensure!(
        plan::plan(
            admin.clone(),
            &PlanArgs {
                bucket: format!("{tenant}/nope"),
                ..args.clone()
            }
        )
        .await
        .is_err()
    );

    let after = state().await?;
    ensure!(
        before == after,
        "plan changed something:\nbefore {before:#?}\nafter {after:#?}"
    );

    // The operator, with the same clock, does what the plan said.
    let op = RunningOperator::start(
        admin.clone(),
        operator::settings_from_argv(&[
            "evidence-operator",
            "run",
            "--watch-namespace",
            &tenant,
            "--leader-elect=false",
            "--min-requeue=1s",
        ])?,
    )?;
    let swept = eventually(Duration::from_secs(60), "the sweep", || async {
        let h = t.keys(&hot).await?;
        let c = t.keys(&cool).await?;
        Ok(
            (!h.contains("old-non-evidential.mp4") && c.contains("force-old.mp4"))
                .then_some((h, c)),
        )
    })
    .await;
    op.stop().await?;
    let (h, c) = swept?;
    ensure!(h == BTreeSet::from(["young.mp4".to_string()]), "{h:?}");
    ensure!(c == BTreeSet::from(["force-old.mp4".to_string()]), "{c:?}");
    Ok(())
}

/// The default (cluster-wide) installation, asked of the real authorizer with
/// `kubectl auth can-i --as <the chart's ServiceAccount>`: reads the three resources in
/// every namespace, reads Secrets only where `credentialsNamespaces` says, and nothing
/// of what it must not do.
#[tokio::test]
async fn cluster_wide_install_reads_everywhere_but_secrets_only_where_listed() -> Result<()> {
    let s = servers();
    let admin = s.kube_client().await?;
    evidence_operator_tests::ensure_crds(&admin).await?;
    let ops = unique_name("rbac-cw-ops");
    let tenant = unique_name("rbac-cw-tenant");
    let other = unique_name("rbac-cw-other");
    for ns in [&ops, &tenant, &other] {
        let (ok, _, err) = s.kubectl(&["create", "namespace", ns], None)?;
        ensure!(ok, "{err}");
    }
    let release = unique_name("rbac-cw");
    let docs = render(
        &release,
        &ops,
        &format!("credentialsNamespaces={{{tenant}}}"),
    )?;
    let rbac: String = docs
        .iter()
        .filter(|d| {
            matches!(
                kind(d),
                "ServiceAccount" | "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
            )
        })
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let (ok, out, err) = s.kubectl(&["apply", "-f", "-"], Some(&rbac))?;
    ensure!(ok, "{out}{err}");
    let sa = docs
        .iter()
        .find(|d| kind(d) == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .context("ServiceAccount")?;
    let who = format!("system:serviceaccount:{ops}:{sa}");
    let can = |args: &[&str]| -> Result<bool> {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--as", &who]);
        let (_, out, _) = s.kubectl(&a, None)?;
        Ok(out.trim() == "yes")
    };
    let result = (|| -> Result<()> {
        for (args, expected) in [
            (vec!["list", "evidencebuckets.evidence.bwv.io", "-A"], true),
            (
                vec!["watch", "legalholds.evidence.bwv.io", "-n", &other],
                true,
            ),
            (
                vec!["get", "retentionpolicies.evidence.bwv.io", "-n", &other],
                true,
            ),
            (
                vec![
                    "patch",
                    "evidencebuckets.evidence.bwv.io",
                    "--subresource=status",
                    "-n",
                    &other,
                ],
                true,
            ),
            (
                vec![
                    "patch",
                    "retentionpolicies.evidence.bwv.io",
                    "--subresource=status",
                    "-n",
                    &other,
                ],
                true,
            ),
            (
                vec!["patch", "retentionpolicies.evidence.bwv.io", "-n", &other],
                false,
            ),
            (
                vec!["patch", "legalholds.evidence.bwv.io", "-n", &other],
                true,
            ),
            (vec!["create", "events.events.k8s.io", "-n", &other], true),
            (vec!["get", "secrets", "-n", &tenant], true),
            (vec!["list", "secrets", "-n", &tenant], false),
            (vec!["get", "secrets", "-n", &other], false),
            (vec!["get", "secrets", "-n", &ops], false),
            (
                vec!["delete", "evidencebuckets.evidence.bwv.io", "-n", &other],
                false,
            ),
            (
                vec!["patch", "evidencebuckets.evidence.bwv.io", "-n", &other],
                false,
            ),
            (
                vec!["create", "retentionpolicies.evidence.bwv.io", "-n", &other],
                false,
            ),
            (
                vec![
                    "update",
                    "leases.coordination.k8s.io/evidence-operator",
                    "-n",
                    &ops,
                ],
                true,
            ),
            (
                vec![
                    "update",
                    "leases.coordination.k8s.io/kube-scheduler",
                    "-n",
                    &ops,
                ],
                false,
            ),
            (
                vec!["create", "leases.coordination.k8s.io", "-n", &other],
                false,
            ),
            (vec!["create", "pods", "-n", &ops], false),
            (
                vec!["delete", "customresourcedefinitions.apiextensions.k8s.io"],
                false,
            ),
        ] {
            ensure!(
                can(&args)? == expected,
                "can-i {} should be {expected}",
                args.join(" ")
            );
        }
        Ok(())
    })();
    for d in docs
        .iter()
        .filter(|d| matches!(kind(d), "ClusterRole" | "ClusterRoleBinding"))
    {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let _ = s.kubectl(
            &[
                "delete",
                &kind(d).to_lowercase(),
                name,
                "--ignore-not-found",
            ],
            None,
        );
    }
    result
}
