//! Packaging checks, run by `make test` against the real test kube-apiserver:
//!
//! - the chart's CRDs and admission policy are the generated ones (no drift);
//! - `helm lint --strict` with the default values and with every option on;
//! - `values.schema.json` refuses bad values;
//! - `helm template` (every option) and `deploy/` (`kubectl apply -k`) pass
//!   `kubectl apply --dry-run=server`: the real API server's OpenAPI schemas, our CRDs'
//!   schemas and CEL rules, and admission. (This replaces kubeconform, whose schemas
//!   would have to be downloaded; the API server is the stronger check.)
//! - `deploy/evidence-operator.yaml` is what the chart renders (no drift);
//! - the operator's pod passes the *restricted* Pod Security Standard, enforced by the
//!   API server's PodSecurity admission (and a pod without the security context does not);
//! - RBAC: no wildcards, Secrets only by namespaced binding, exactly the verbs the
//!   operator uses;
//! - the alerts and dashboard name only metrics the operator exports.
//!
//! helm is the pinned one from `tests/servers/install.sh helm` (built and cached on
//! first use): a missing helm fails these tests, it never skips them.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, Result, bail, ensure};
use evidence_operator_tests::{repo_root, servers, unique_name};
use serde_yaml::Value;

/// The pinned Kubernetes version (without the `v`), for `--kube-version`.
fn kube_version() -> String {
    let env = std::fs::read_to_string(repo_root().join("tests/servers/versions.env"))
        .expect("reading versions.env");
    env.lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_VERSION="))
        .map(|v| v.trim().trim_start_matches('v').to_string())
        .expect("KUBERNETES_VERSION in versions.env")
}

/// The pinned helm binary, installed (built once, cached) by tests/servers/install.sh.
pub fn helm_path() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(repo_root().join("tests/servers/install.sh"))
            .arg("helm")
            .output()
            .expect("running tests/servers/install.sh helm");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tests/servers/install.sh helm failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = stdout
            .lines()
            .find_map(|l| l.strip_prefix("helm="))
            .map(PathBuf::from)
            .expect("install.sh printed helm=<path>");
        assert!(path.is_file(), "helm not found at {}", path.display());
        path
    })
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts/evidence-operator")
}

/// Run helm; Ok(stdout) on success, Err(stderr) otherwise.
fn helm(args: &[&str]) -> Result<String> {
    let out = Command::new(helm_path())
        .args(args)
        .output()
        .context("running helm")?;
    if !out.status.success() {
        bail!(
            "helm {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm template` of the chart with extra `--set`/`--values` arguments.
pub fn render(release: &str, namespace: &str, extra: &[&str]) -> Result<String> {
    let kv = kube_version();
    let chart = chart_dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
        "--kube-version",
        &kv,
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

/// Every option of the chart switched on.
const ALL_OPTIONS: &[&str] = &[
    "--set",
    "serviceMonitor.enabled=true,networkPolicy.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true",
    "--set",
    "allowedRegions={uk-london-1,uk-manchester-1}",
    "--set",
    "networkPolicy.extraEgressPorts={9000}",
    "--set",
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| {
            let v = serde_yaml::Value::deserialize(d).expect("rendered YAML parses");
            (!v.is_null()).then_some(v)
        })
        .collect()
}

use serde::Deserialize as _;

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn to_yaml(docs: &[&Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect()
}

/// Apply YAML with `--dry-run=server`; returns stdout + stderr, fails on refusal.
fn dry_run(yaml: &str, what: &str) -> Result<String> {
    let (ok, out, err) =
        servers().kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(yaml))?;
    ensure!(
        ok,
        "{what}: kubectl apply --dry-run=server refused:\n{out}{err}"
    );
    Ok(format!("{out}{err}"))
}

/// Create a namespace for real (idempotent).
fn ensure_namespace(ns: &str, labels: &[(&str, &str)]) -> Result<()> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": ns, "labels": labels },
    });
    let (ok, out, err) = servers().kubectl(&["apply", "-f", "-"], Some(&doc.to_string()))?;
    ensure!(ok, "creating namespace {ns}: {out}{err}");
    Ok(())
}

async fn crds_installed() -> Result<()> {
    let client = servers().kube_client().await?;
    evidence_operator_tests::ensure_crds(&client).await
}

#[test]
fn chart_crds_and_admission_policy_are_the_generated_ones() {
    let root = repo_root();
    let generated = evidence_operator::api::crds::files().unwrap();
    let mut crds = 0;
    for file in &generated {
        let p = file.path.clone();
        let checked_in = std::fs::read_to_string(root.join(&file.path)).unwrap();
        assert_eq!(
            checked_in, file.contents,
            "{p} differs from the Rust types: run `make crds`"
        );
        if let Some(rest) = p.strip_prefix("crds/") {
            crds += 1;
            let in_chart = std::fs::read_to_string(chart_dir().join("crds").join(rest))
                .unwrap_or_else(|e| panic!("charts/evidence-operator/crds/{rest}: {e}"));
            assert_eq!(
                in_chart, file.contents,
                "charts/evidence-operator/crds/{rest} differs from {p}: run deploy/render.sh"
            );
        }
        if p == "deploy/admission/uk-regions.yaml" {
            let in_chart =
                std::fs::read_to_string(chart_dir().join("files/admission/uk-regions.yaml"))
                    .unwrap();
            assert_eq!(
                in_chart, file.contents,
                "charts/evidence-operator/files/admission/uk-regions.yaml differs from {p}: run deploy/render.sh"
            );
        }
    }
    assert_eq!(crds, 5, "five CRDs are generated");
    let in_chart = std::fs::read_dir(chart_dir().join("crds")).unwrap().count();
    assert_eq!(in_chart, crds, "the chart has exactly the generated CRDs");
}

#[test]
fn helm_lint_strict_passes_with_defaults_and_every_option() {
    let kv = kube_version();
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let out = helm(&["lint", "--strict", "--kube-version", &kv, chart]).unwrap();
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let mut args = vec!["lint", "--strict", "--kube-version", &kv, chart];
    args.extend_from_slice(ALL_OPTIONS);
    args.extend_from_slice(&["--set", "watchNamespaces={tenant-a,tenant-b}"]);
    let out = helm(&args).unwrap();
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn values_schema_refuses_bad_values() {
    for bad in [
        "replicaCount=0",
        "logFormat=xml",
        "leaderElection.leaseDuration=fifteen",
        "allowedRegions={EU_WEST_1}",
        "endpointRegions.http://h=eu-west-2",
        "endpointRegions.h=EU West",
        "unknownKey=1",
        "image.digest=latest",
    ] {
        let err = render(
            "evidence-operator",
            "evidence-operator-system",
            &["--set", bad],
        )
        .expect_err(&format!("values.schema.json accepted --set {bad}"));
        assert!(
            err.to_string()
                .contains("values don't meet the specifications")
                || err.to_string().contains("schema"),
            "--set {bad}: {err}"
        );
    }
}

#[test]
fn deploy_is_the_rendered_chart() {
    let fresh = render(
        "evidence-operator",
        "evidence-operator-system",
        &["--include-crds"],
    )
    .unwrap();
    let checked_in =
        std::fs::read_to_string(repo_root().join("deploy/evidence-operator.yaml")).unwrap();
    let body: String = checked_in
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body, fresh,
        "deploy/evidence-operator.yaml is stale: run deploy/render.sh"
    );
}

#[tokio::test]
async fn rendered_chart_passes_server_side_dry_run() {
    crds_installed().await.unwrap();
    // The default installation.
    ensure_namespace("evidence-operator-system", &[]).unwrap();
    let yaml = render(
        "evidence-operator",
        "evidence-operator-system",
        &["--include-crds"],
    )
    .unwrap();
    let out = dry_run(&yaml, "helm template (defaults)").unwrap();
    for k in [
        "deployment.apps/evidence-operator",
        "clusterrole.rbac.authorization.k8s.io/evidence-operator",
        "validatingadmissionpolicy.admissionregistration.k8s.io/evidence-operator-uk-regions",
        "customresourcedefinition.apiextensions.k8s.io/evidencebuckets.evidence.bwv.io",
    ] {
        assert!(out.contains(k), "{k} not applied:\n{out}");
    }

    // Every option, namespaced mode, another release namespace. The ServiceMonitor and
    // PrometheusRule kinds need prometheus-operator's CRDs, which the test apiserver does
    // not have: they are checked structurally (and against the metrics) below.
    let ns = unique_name("pkg-ops");
    let (t1, t2) = (unique_name("pkg-tenant"), unique_name("pkg-tenant"));
    for n in [&ns, &t1, &t2] {
        ensure_namespace(n, &[]).unwrap();
    }
    let watch = format!("watchNamespaces={{{t1},{t2}}}");
    let mut extra = ALL_OPTIONS.to_vec();
    extra.extend_from_slice(&["--set", &watch]);
    let release = "evidence-operator";
    let all = render(release, &ns, &extra).unwrap();
    let all_docs = docs(&all);
    let (monitoring, core): (Vec<&Value>, Vec<&Value>) = all_docs.iter().partition(|d| {
        d["apiVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("monitoring.coreos.com/")
    });
    let kinds: BTreeSet<&str> = monitoring.iter().map(|d| kind(d)).collect();
    assert_eq!(kinds, BTreeSet::from(["PrometheusRule", "ServiceMonitor"]));
    // The cluster-scoped admission policy has the same name in both renderings; a dry
    // run does not persist, so both pass independently.
    let out = dry_run(&to_yaml(&core), "helm template (every option)").unwrap();
    for k in [
        "networkpolicy.networking.k8s.io/evidence-operator",
        "role.rbac.authorization.k8s.io/evidence-operator",
        "configmap/evidence-operator-dashboard",
    ] {
        assert!(out.contains(k), "{k} not applied:\n{out}");
    }
    // Roles in each watched namespace, a ClusterRole only for reading Secrets.
    let roles: Vec<(&str, &str)> = core
        .iter()
        .filter(|d| kind(d) == "Role")
        .map(|d| (d["metadata"]["namespace"].as_str().unwrap(), name(d)))
        .collect();
    assert!(
        roles.contains(&(t1.as_str(), "evidence-operator")),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(t2.as_str(), "evidence-operator")),
        "{roles:?}"
    );
    assert!(
        !core.iter().any(|d| kind(d) == "ClusterRoleBinding"),
        "namespaced mode binds no ClusterRole cluster-wide"
    );
}

#[tokio::test]
async fn deploy_kustomization_passes_server_side_dry_run() {
    crds_installed().await.unwrap();
    ensure_namespace("evidence-operator-system", &[]).unwrap();
    let dir = repo_root().join("deploy");
    let (ok, out, err) = servers()
        .kubectl(
            &["apply", "--dry-run=server", "-k", dir.to_str().unwrap()],
            None,
        )
        .unwrap();
    assert!(ok, "kubectl apply -k deploy/ --dry-run=server:\n{out}{err}");
    assert!(out.contains("deployment.apps/evidence-operator"), "{out}");
    assert!(out.contains("namespace/evidence-operator-system"), "{out}");
    // And the examples, on top of the CRDs (the tenant namespace exists for real first).
    ensure_namespace("bwv-westminster", &[]).unwrap();
    let examples = repo_root().join("deploy/examples");
    let (ok, out, err) = servers()
        .kubectl(
            &[
                "apply",
                "--dry-run=server",
                "-f",
                examples.to_str().unwrap(),
            ],
            None,
        )
        .unwrap();
    assert!(ok, "deploy/examples --dry-run=server:\n{out}{err}");
    assert!(
        out.contains("evidencebucket.evidence.bwv.io/westminster"),
        "{out}"
    );
}

/// The Deployment's pod template as a Pod in `ns`.
fn operator_pod(rendered: &str, ns: &str) -> serde_json::Value {
    let deployment = docs(rendered)
        .into_iter()
        .find(|d| kind(d) == "Deployment")
        .expect("a Deployment");
    let template: serde_json::Value =
        serde_json::to_value(&deployment["spec"]["template"]).unwrap();
    let mut spec = template["spec"].clone();
    spec["serviceAccountName"] = serde_json::json!("default");
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "evidence-operator-pss", "namespace": ns,
                      "labels": template["metadata"]["labels"] },
        "spec": spec,
    })
}

#[test]
fn operator_pod_meets_the_restricted_pod_security_standard() {
    let ns = unique_name("pkg-pss");
    ensure_namespace(
        &ns,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ],
    )
    .unwrap();
    let rendered = render("evidence-operator", &ns, &[]).unwrap();
    let pod = operator_pod(&rendered, &ns);
    let out = dry_run(&pod.to_string(), "the operator pod under restricted PSS").unwrap();
    assert!(!out.contains("violate"), "{out}");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(c["livenessProbe"].is_object() && c["readinessProbe"].is_object());
    assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object());

    // The control: the same pod without its security contexts is refused, so the
    // namespace really enforces the standard.
    let mut bare = pod.clone();
    bare["spec"]["securityContext"] = serde_json::json!({});
    bare["spec"]["containers"][0]["securityContext"] = serde_json::json!({});
    let (ok, out, err) = servers()
        .kubectl(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&bare.to_string()),
        )
        .unwrap();
    assert!(!ok, "a pod without security context was admitted:\n{out}");
    assert!(err.contains("violates PodSecurity"), "{err}");

    // Two replicas, leader election on, a disruption budget.
    let d = docs(&rendered);
    let dep = d.iter().find(|d| kind(d) == "Deployment").unwrap();
    assert_eq!(dep["spec"]["replicas"].as_u64(), Some(2));
    let env =
        serde_json::to_value(&dep["spec"]["template"]["spec"]["containers"][0]["env"]).unwrap();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "EVIDENCE_LEADER_ELECT" && e["value"] == "true"),
        "{env}"
    );
    assert!(d.iter().any(|d| kind(d) == "PodDisruptionBudget"));
}

/// One flattened rule: API group, resource, verbs, resource names.
type Grant = (String, String, Vec<String>, Vec<String>);

/// The rules of every Role and ClusterRole, keyed by kind/namespace/name.
fn rules(docs: &[Value]) -> BTreeMap<String, Vec<Grant>> {
    let mut out = BTreeMap::new();
    for d in docs
        .iter()
        .filter(|d| matches!(kind(d), "Role" | "ClusterRole"))
    {
        let key = format!(
            "{}/{}/{}",
            kind(d),
            d["metadata"]["namespace"].as_str().unwrap_or(""),
            name(d)
        );
        let mut rs = Vec::new();
        for r in d["rules"].as_sequence().unwrap() {
            let list = |k: &str| -> Vec<String> {
                r[k].as_sequence()
                    .map(|s| s.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            for g in list("apiGroups") {
                for res in list("resources") {
                    rs.push((g.clone(), res, list("verbs"), list("resourceNames")));
                }
            }
        }
        out.insert(key, rs);
    }
    out
}

#[test]
fn rbac_is_least_privilege() {
    let rendered = render(
        "evidence-operator",
        "evidence-operator-system",
        &["--set", "credentialsNamespaces={bwv-westminster}"],
    )
    .unwrap();
    let d = docs(&rendered);
    let all = rules(&d);
    let mut grants: BTreeSet<String> = BTreeSet::new();
    for (role, rs) in &all {
        for (group, res, verbs, names) in rs {
            assert!(
                group != "*" && res != "*",
                "{role}: wildcard in {group}/{res}"
            );
            assert!(!verbs.iter().any(|v| v == "*"), "{role}: wildcard verb");
            for v in verbs {
                let scope = if names.is_empty() {
                    String::new()
                } else {
                    format!("[{}]", names.join(","))
                };
                grants.insert(format!("{group}/{res}{scope}:{v}"));
            }
        }
    }
    let expected: BTreeSet<String> = [
        "evidence.bwv.io/evidencebuckets:get",
        "evidence.bwv.io/evidencebuckets:list",
        "evidence.bwv.io/evidencebuckets:watch",
        "evidence.bwv.io/retentionpolicies:get",
        "evidence.bwv.io/retentionpolicies:list",
        "evidence.bwv.io/retentionpolicies:watch",
        "evidence.bwv.io/legalholds:get",
        "evidence.bwv.io/legalholds:list",
        "evidence.bwv.io/legalholds:watch",
        "evidence.bwv.io/legalholds:patch",
        "evidence.bwv.io/cliprestores:get",
        "evidence.bwv.io/cliprestores:list",
        "evidence.bwv.io/cliprestores:watch",
        "evidence.bwv.io/cliprestores/status:patch",
        "evidence.bwv.io/accessrequests:get",
        "evidence.bwv.io/accessrequests:list",
        "evidence.bwv.io/accessrequests:watch",
        "evidence.bwv.io/accessrequests:patch",
        "evidence.bwv.io/accessrequests/status:patch",
        "evidence.bwv.io/evidencebuckets/status:patch",
        "evidence.bwv.io/retentionpolicies/status:patch",
        "evidence.bwv.io/legalholds/status:patch",
        "events.k8s.io/events:create",
        "events.k8s.io/events:patch",
        "/secrets:get",
        "coordination.k8s.io/leases[evidence-operator]:get",
        "coordination.k8s.io/leases[evidence-operator]:update",
        "coordination.k8s.io/leases:create",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        grants, expected,
        "the chart grants exactly what the operator uses"
    );
    // Secrets: a ClusterRole only ever bound by a RoleBinding in a listed namespace.
    let secret_roles: BTreeSet<&str> = d
        .iter()
        .filter(|d| kind(d) == "ClusterRole")
        .filter(|d| {
            serde_yaml::to_string(&d["rules"])
                .unwrap()
                .contains("secrets")
        })
        .map(name)
        .collect();
    assert_eq!(
        secret_roles,
        BTreeSet::from(["evidence-operator-credentials"])
    );
    for b in d.iter().filter(|d| kind(d) == "ClusterRoleBinding") {
        assert_ne!(
            b["roleRef"]["name"].as_str(),
            Some("evidence-operator-credentials"),
            "Secrets are never granted cluster-wide"
        );
    }
    let bound_in: Vec<&str> = d
        .iter()
        .filter(|d| kind(d) == "RoleBinding")
        .filter(|d| d["roleRef"]["name"].as_str() == Some("evidence-operator-credentials"))
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(bound_in, ["bwv-westminster"]);
    // Without credentialsNamespaces (and watching all namespaces) no Secret is readable.
    let defaults = docs(&render("evidence-operator", "evidence-operator-system", &[]).unwrap());
    assert!(
        !serde_yaml::to_string(&defaults)
            .unwrap()
            .contains("secrets"),
        "the default installation reads no Secret"
    );
}

#[test]
fn alerts_and_dashboard_name_only_exported_metrics() {
    let rendered = render("evidence-operator", "evidence-operator-system", ALL_OPTIONS).unwrap();
    let d = docs(&rendered);
    let rule = d.iter().find(|d| kind(d) == "PrometheusRule").unwrap();
    let alerts: BTreeSet<&str> = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for a in [
        "EvidenceRegionViolation",
        "EvidenceChecksumMismatch",
        "EvidenceSweepStalled",
        "EvidenceReconcileErrors",
        "EvidenceAuditWriteFailing",
    ] {
        assert!(alerts.contains(a), "alert {a} missing: {alerts:?}");
    }
    let dashboard = d
        .iter()
        .find(|d| kind(d) == "ConfigMap" && name(d).ends_with("-dashboard"))
        .unwrap();
    let json = dashboard["data"]["evidence-operator.json"]
        .as_str()
        .unwrap();
    let _: serde_json::Value = serde_json::from_str(json).expect("dashboard is JSON");

    let sources = [
        "operator/src/controller/metrics.rs",
        "operator/src/storage/metrics.rs",
        "operator/src/audit/metrics.rs",
    ]
    .map(|p| std::fs::read_to_string(repo_root().join(p)).unwrap())
    .join("\n");
    let text = format!("{}\n{json}", serde_yaml::to_string(rule).unwrap());
    let mut seen = 0;
    for (i, _) in text.match_indices("evidence_operator_") {
        let rest = &text[i + "evidence_operator_".len()..];
        let metric: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| metric.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
            .unwrap_or(&metric);
        assert!(
            sources.contains(&format!("\"{base}\"")),
            "evidence_operator_{metric} is not a metric the operator exports"
        );
        seen += 1;
    }
    assert!(
        seen >= 10,
        "expected the rules and dashboard to use metrics"
    );
    // Off by default.
    let defaults = render("evidence-operator", "evidence-operator-system", &[]).unwrap();
    for k in ["PrometheusRule", "ServiceMonitor", "NetworkPolicy"] {
        assert!(
            !defaults.contains(&format!("kind: {k}")),
            "{k} is on by default"
        );
    }
    assert!(
        !defaults.contains("-dashboard"),
        "the dashboard is on by default"
    );
}
