//! The API contract against the real kube-apiserver: the generated CRDs and the region
//! admission policy install; every example in `deploy/examples/` is accepted (and
//! reads back into the Rust types, and compiles in the engine); every document in
//! `tests/invalid/` is refused with its expected message; an installation extends the
//! UK regions through the ConfigMap without touching the CRD; `bucketRef` is immutable.
//!
//! Every test works in namespaces of its own, so it runs beside the other tests.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use evidence_operator::{
    api::{
        EvidenceBucket, LegalHold, RetentionPolicy,
        crds::REGION_POLICY_NAME,
        regions::{
            ENDPOINTS_CONFIGMAP_KEY, REGIONS_CONFIGMAP, REGIONS_CONFIGMAP_KEY,
            REGIONS_CONFIGMAP_NAMESPACE,
        },
    },
    engine::{ActiveHold, Planner},
};
use evidence_operator_tests::{Servers, eventually, repo_root, servers, unique_name};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde::Deserialize as _;

/// Install the CRDs and the region policy once per test process (idempotent across
/// processes: server-side apply; the parameter ConfigMap is created only if missing,
/// so an extension made by a concurrent test is not reset).
fn install(s: &Servers) -> Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE
        .lock()
        .map_err(|_| anyhow::anyhow!("install lock poisoned"))?;
    if *done {
        return Ok(());
    }
    let root = repo_root();
    let crds = root.join("crds");
    kubectl_ok(
        s,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=crds-test",
            "-f",
            path(&crds)?,
        ],
    )?;
    let (ok, _, err) = s.kubectl(
        &[
            "create",
            "-f",
            path(&root.join("deploy/admission/uk-regions-params.yaml"))?,
        ],
        None,
    )?;
    ensure!(
        ok || err.contains("AlreadyExists"),
        "creating the region parameter: {err}"
    );
    kubectl_ok(
        s,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=crds-test",
            "-f",
            path(&root.join("deploy/admission/uk-regions.yaml"))?,
        ],
    )?;
    kubectl_ok(
        s,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/evidencebuckets.evidence.bwv.io",
            "crd/legalholds.evidence.bwv.io",
            "crd/retentionpolicies.evidence.bwv.io",
        ],
    )?;
    *done = true;
    Ok(())
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

fn kubectl_ok(s: &Servers, args: &[&str]) -> Result<String> {
    let (ok, out, err) = s.kubectl(args, None)?;
    ensure!(ok, "kubectl {} failed: {err}{out}", args.join(" "));
    Ok(out)
}

fn create_namespace(s: &Servers, prefix: &str) -> Result<String> {
    let ns = unique_name(prefix);
    kubectl_ok(s, &["create", "namespace", &ns])?;
    Ok(ns)
}

/// Server-side dry-run apply of one YAML document in a namespace: (accepted, message).
fn dry_run(s: &Servers, ns: &str, yaml: &str) -> Result<(bool, String)> {
    let (ok, out, err) = s.kubectl(
        &["apply", "--dry-run=server", "-n", ns, "-f", "-"],
        Some(yaml),
    )?;
    Ok((ok, format!("{err}{out}")))
}

/// How long the admission policy and its parameter may take to reach the apiserver.
const WAIT: Duration = Duration::from_secs(60);

fn bucket_yaml(name: &str, region: &str) -> String {
    format!(
        "apiVersion: evidence.bwv.io/v1alpha1\nkind: EvidenceBucket\nmetadata:\n  name: {name}\nspec:\n  region: {region}\n  retentionPolicyRef:\n    name: p\n  tiers:\n    hot:\n      bucket: hot-bucket\n    cool:\n      bucket: cool-bucket\n    legalHold:\n      bucket: held-bucket\n"
    )
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    Ok(files)
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_are_accepted_and_read_back_into_the_types() -> Result<()> {
    let s = servers();
    install(s)?;
    // Wait until the region policy is in force, so that acceptance below means the
    // example passed it (not that it was not loaded yet).
    let probe = create_namespace(s, "crds-probe")?;
    // (the admission policy and its parameter reach the apiserver's informers a
    // moment after they are written)
    eventually(WAIT, "the region policy refuses us-east-1", || async {
        let (ok, msg) = dry_run(s, &probe, &bucket_yaml("probe", "us-east-1"))?;
        Ok((!ok && msg.contains(REGION_POLICY_NAME)).then_some(()))
    })
    .await?;

    let ns = create_namespace(s, "crds-examples")?;
    let mut applied = 0;
    for file in yaml_files(&repo_root().join("deploy/examples"))? {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut value = serde_yaml::Value::deserialize(doc)?;
            if value["kind"] == "Namespace" {
                continue; // the test's own namespace stands in for it
            }
            value["metadata"]["namespace"] = ns.clone().into();
            let yaml = serde_yaml::to_string(&value)?;
            let (ok, out, err) = s.kubectl(&["apply", "-f", "-"], Some(&yaml))?;
            ensure!(ok, "{} was refused: {err}{out}", file.display());
            applied += 1;
        }
    }
    ensure!(
        applied >= 4,
        "expected at least 4 example objects, applied {applied}"
    );
    eprintln!("{applied} example objects accepted");

    // Read back through the typed API: defaults applied, the engine accepts them.
    let client = s.kube_client().await?;
    let policies: Api<RetentionPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = policies.get("met-bwv").await?;
    ensure!(
        policy.spec.categories.len() >= 8,
        "the Met policy lists its categories"
    );
    let holds: Api<LegalHold> = Api::namespaced(client.clone(), &ns);
    let hold = holds.get("op-kestrel").await?;
    let active: Vec<ActiveHold> = ActiveHold::from_legal_hold(&hold).into_iter().collect();
    ensure!(active.len() == 1);
    Planner::new(&policy.spec, &active, chrono::Utc::now())?;
    let buckets: Api<EvidenceBucket> = Api::namespaced(client, &ns);
    let bucket = buckets.get("westminster").await?;
    ensure!(bucket.spec.region == "eu-west-2");
    ensure!(bucket.spec.sweep_interval.as_std() == Duration::from_secs(3600));

    // A minimal policy gets every documented default from the API server.
    let (ok, out, err) = s.kubectl(
        &["apply", "-n", &ns, "-f", "-"],
        Some("apiVersion: evidence.bwv.io/v1alpha1\nkind: RetentionPolicy\nmetadata:\n  name: minimal\nspec: {}\n"),
    )?;
    ensure!(ok, "minimal policy refused: {err}{out}");
    let minimal = policies.get("minimal").await?;
    ensure!(
        minimal.spec == evidence_operator::api::RetentionPolicySpec::default(),
        "defaults: {:?}",
        minimal.spec
    );

    for n in [ns, probe] {
        s.kubectl(&["delete", "namespace", &n, "--wait=false"], None)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_documents_are_refused_with_their_message() -> Result<()> {
    let s = servers();
    install(s)?;
    let ns = create_namespace(s, "crds-invalid")?;
    // (the admission policy and its parameter reach the apiserver's informers a
    // moment after they are written)
    eventually(WAIT, "the region policy refuses us-east-1", || async {
        let (ok, msg) = dry_run(s, &ns, &bucket_yaml("probe", "us-east-1"))?;
        Ok((!ok && msg.contains(REGION_POLICY_NAME)).then_some(()))
    })
    .await?;
    let files = yaml_files(&repo_root().join("tests/invalid"))?;
    ensure!(
        files.len() >= 30,
        "the corpus has {} documents, want at least 30",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .with_context(|| format!("{} has no `# expect: <fragment>` line", file.display()))?;
        let (ok, msg) = dry_run(s, &ns, &text)?;
        if ok {
            failures.push(format!(
                "{}: ACCEPTED, expected refusal with {expect:?}",
                file.display()
            ));
        } else if !msg.contains(expect) {
            failures.push(format!(
                "{}: refused, but without {expect:?}: {msg}",
                file.display()
            ));
        }
    }
    s.kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    ensure!(
        failures.is_empty(),
        "{} of {} invalid documents misjudged:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} invalid documents refused, each with its expected message",
        files.len()
    );
    Ok(())
}

/// Read-modify-write the extra regions, retrying on conflicts with concurrent writers.
async fn edit_extra_regions(api: &Api<ConfigMap>, edit: impl Fn(&mut Vec<String>)) -> Result<()> {
    for _ in 0..10 {
        let mut cm = api.get(REGIONS_CONFIGMAP).await?;
        let data = cm.data.get_or_insert_with(Default::default);
        let mut list = evidence_operator::api::regions::parse_list(
            data.get(REGIONS_CONFIGMAP_KEY)
                .map(String::as_str)
                .unwrap_or(""),
        );
        edit(&mut list);
        data.insert(REGIONS_CONFIGMAP_KEY.to_string(), list.join(", "));
        match api
            .replace(REGIONS_CONFIGMAP, &PostParams::default(), &cm)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("could not update the regions ConfigMap: too many conflicts")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installation_adds_an_on_prem_uk_region_through_the_configmap() -> Result<()> {
    let s = servers();
    install(s)?;
    let ns = create_namespace(s, "crds-region")?;
    // A region name no other test uses.
    let region = unique_name("uk-onprem");
    let bucket = bucket_yaml("onprem", &region);
    let refused = |msg: &str| msg.contains("is not an allowed UK region") && msg.contains(&region);

    eventually(WAIT, "the new region is refused", || async {
        let (ok, msg) = dry_run(s, &ns, &bucket)?;
        Ok((!ok && refused(&msg)).then_some(()))
    })
    .await?;

    let crd_generation = || {
        kubectl_ok(
            s,
            &[
                "get",
                "crd",
                "evidencebuckets.evidence.bwv.io",
                "-o",
                "jsonpath={.metadata.generation}",
            ],
        )
    };
    let generation_before = crd_generation()?;
    let client = s.kube_client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, REGIONS_CONFIGMAP_NAMESPACE);
    let r = region.clone();
    edit_extra_regions(&api, move |l| l.push(r.clone())).await?;
    let accepted = eventually(
        WAIT,
        "the region listed in the ConfigMap is accepted",
        || async {
            let (ok, _) = dry_run(s, &ns, &bucket)?;
            Ok(ok.then_some(()))
        },
    )
    .await;
    // Whatever happened, take the region out again.
    let r = region.clone();
    edit_extra_regions(&api, move |l| l.retain(|x| *x != r)).await?;
    accepted?;
    // The CRD was not touched by the extension.
    ensure!(
        crd_generation()? == generation_before,
        "the CRD changed while extending the regions"
    );

    eventually(WAIT, "the removed region is refused again", || async {
        let (ok, msg) = dry_run(s, &ns, &bucket)?;
        Ok((!ok && refused(&msg)).then_some(()))
    })
    .await?;
    // A built-in region is accepted all along.
    let (ok, msg) = dry_run(s, &ns, &bucket_yaml("london", "eu-west-2"))?;
    ensure!(ok, "eu-west-2 refused: {msg}");
    s.kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}

/// An installation that lists its endpoint hosts in the region policy's ConfigMap
/// (`allowedEndpoints`, as the operator's `--allowed-endpoints`) has any other host
/// refused at apply time, with a message naming the list; listed hosts and `*.suffix`
/// subdomains are accepted. (The loopback test store stays listed, for the tests
/// running meanwhile.)
#[tokio::test(flavor = "multi_thread")]
async fn an_installation_restricts_endpoints_through_the_configmap() -> Result<()> {
    use kube::api::{Patch, PatchParams};
    let s = servers();
    install(s)?;
    let ns = create_namespace(s, "crds-endpoints")?;
    let at = |name: &str, endpoint: &str| {
        bucket_yaml(name, "eu-west-2").replace(
            "  retentionPolicyRef:",
            &format!("  endpoint: {endpoint}\n  retentionPolicyRef:"),
        )
    };
    let api: Api<ConfigMap> = Api::namespaced(s.kube_client().await?, REGIONS_CONFIGMAP_NAMESPACE);
    let set = |list: &'static str| {
        let api = api.clone();
        async move {
            api.patch(
                REGIONS_CONFIGMAP,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "data": { ENDPOINTS_CONFIGMAP_KEY: list } })),
            )
            .await
        }
    };
    set("127.0.0.1, minio.storage.svc, *.s3.eu-west-2.amazonaws.com").await?;
    let result = async {
        eventually(WAIT, "an unlisted host is refused", || async {
            let (ok, msg) = dry_run(s, &ns, &at("other", "http://minio.other.svc:9000"))?;
            Ok((!ok
                && msg.contains("is not among the allowed endpoints")
                && msg.contains("minio.storage.svc"))
            .then_some(()))
        })
        .await?;
        for (name, ep) in [
            ("listed", "http://minio.storage.svc:9000"),
            ("subdomain", "https://clips.s3.eu-west-2.amazonaws.com"),
        ] {
            let (ok, msg) = dry_run(s, &ns, &at(name, ep))?;
            ensure!(ok, "{ep} refused: {msg}");
        }
        let (ok, _) = dry_run(
            s,
            &ns,
            &at("suffix", "https://s3.eu-west-2.amazonaws.com.evil.example"),
        )?;
        ensure!(!ok, "a look-alike host was accepted");
        anyhow::Ok(())
    }
    .await;
    set("").await?;
    result?;
    eventually(WAIT, "any host once the list is empty", || async {
        let (ok, _) = dry_run(s, &ns, &at("other", "http://minio.other.svc:9000"))?;
        Ok(ok.then_some(()))
    })
    .await?;
    s.kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}

#[test]
fn a_legal_hold_cannot_be_moved_to_another_bucket() -> Result<()> {
    let s = servers();
    install(s)?;
    let ns = create_namespace(s, "crds-immutable")?;
    let hold = |bucket: &str| {
        format!(
            "apiVersion: evidence.bwv.io/v1alpha1\nkind: LegalHold\nmetadata:\n  name: h\nspec:\n  bucketRef:\n    name: {bucket}\n  caseReference: c-1\n  reason: test\n  selector:\n    keys: [a.mp4]\n"
        )
    };
    let (ok, out, err) = s.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(&hold("first")))?;
    ensure!(ok, "{err}{out}");
    let (ok, out, err) = s.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(&hold("second")))?;
    ensure!(!ok, "changing bucketRef was accepted: {out}");
    ensure!(
        err.contains("bucketRef is immutable"),
        "unexpected refusal: {err}"
    );
    s.kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}

/// The README's example of the three resources is accepted as written (in a namespace
/// of its own), so the front page cannot drift from the API.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_example_is_accepted() -> Result<()> {
    let s = servers();
    install(s)?;
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let start = readme
        .find("```yaml\napiVersion: evidence.bwv.io/v1alpha1\nkind: RetentionPolicy")
        .context("the README has the resources example")?
        + "```yaml\n".len();
    let end = start
        + readme[start..]
            .find("```")
            .context("the README example block ends")?;
    let ns = create_namespace(s, "crds-readme")?;
    let yaml =
        readme[start..end].replace("namespace: bwv-westminster", &format!("namespace: {ns}"));
    ensure!(
        yaml.matches("kind: ").count() == 3,
        "three resources in the example"
    );
    eventually(WAIT, "the README example is accepted", || async {
        let (ok, msg) = dry_run(s, &ns, &yaml)?;
        if !ok && !msg.contains(REGION_POLICY_NAME) {
            bail!("the README example was refused: {msg}");
        }
        Ok(ok.then_some(()))
    })
    .await
}
