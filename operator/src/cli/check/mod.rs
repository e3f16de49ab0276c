//! `evidence-operator check -f <files or dirs>`: offline validation of the
//! `evidence.bwv.io` resources in a GitOps repository, for a CI step.
//!
//! Every YAML document (multi-document files, directories searched recursively for
//! `*.yaml` / `*.yml`) whose `apiVersion` is in group `evidence.bwv.io` is checked:
//!
//! - **schema**: it deserialises into the operator's own types (the same ones the CRDs
//!   are generated from), and has no field those types do not know;
//! - **the CRDs' rules**: region and bucket names, endpoint URLs, prefixes, storage
//!   classes, tier layout, sweep interval, category names and uniqueness, hold selectors,
//!   blank case references and reasons, camera windows, a policy's `restoreWindow`, a
//!   ClipRestore's keys, reason, reference and category, an AccessRequest's selector
//!   and reference;
//! - **UK only**: the region is a built-in UK region or one passed with
//!   `--allowed-regions` (what the installation's ConfigMap lists);
//! - **policy semantics**: the engine accepts the policy; no category (nor the default)
//!   is kept for less than the safety floor `minimumAge`;
//! - **references within the file set**: an EvidenceBucket's `retentionPolicyRef` and a
//!   LegalHold's, ClipRestore's or AccessRequest's `bucketRef` name an object of the files checked, in the same namespace;
//!   no object is defined twice.
//!
//! Each problem is printed as `file:line: Kind/name: message`; the exit code is 1 when
//! there is any. Documents of other groups are ignored.
//!
//! Where each part lives: this module reads the files and reports the findings; [`files`]
//! walks the paths, splits documents and finds a field's line; [`fields`] reads a spec
//! and finds unknown fields; the rules of one spec are the api's own
//! ([`crate::api::validation`], with the CRDs' messages); the engine judges the policy;
//! [`references`] checks the file set as a whole.

use std::{fmt, path::PathBuf};

use chrono::Utc;
use clap::Args;
use serde_json::Value;

use crate::{
    api::{
        AccessRequestSpec, ClipRestoreSpec, EvidenceBucketSpec, LegalHoldSpec, Problem,
        RetentionPolicySpec, regions::AllowedRegions,
    },
    engine::Planner,
};

mod fields;
mod files;
mod references;
#[cfg(test)]
mod tests;

use fields::spec_of;
use files::{Doc, collect, split_docs};
use references::cross_check;

/// The API group checked.
const GROUP: &str = "evidence.bwv.io";
/// The served version.
const VERSION: &str = "evidence.bwv.io/v1alpha1";

/// Flags of `evidence-operator check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Files or directories (searched recursively for *.yaml and *.yml) to check.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Regions beyond the built-in UK set that the installation allows
    /// (comma-separated), as in the operator's --allowed-regions.
    #[arg(long, env = "EVIDENCE_ALLOWED_REGIONS", value_delimiter = ',')]
    pub allowed_regions: Vec<String>,
    /// The namespace of objects that do not name one (as `kubectl apply -n` would).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

/// Errors that stop a check before any object is looked at.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A path could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The paths hold no YAML file.
    #[error("no *.yaml or *.yml file under {0}")]
    NoFiles(String),
}

/// One problem found, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// `Kind/name`, or `-` when the document has none.
    pub object: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.object,
            self.message
        )
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Files read.
    pub files: usize,
    /// evidence.bwv.io objects checked.
    pub objects: usize,
    /// Problems, in file and line order.
    pub findings: Vec<Finding>,
}

/// Options of a check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The allowed regions (built-in UK set and the installation's extras).
    pub allowed_regions: AllowedRegions,
    /// Namespace of objects without one.
    pub namespace: String,
}

/// Run `evidence-operator check`: print the findings; an error when there are any.
pub fn main(args: CheckArgs) -> anyhow::Result<()> {
    let opts = Options {
        allowed_regions: AllowedRegions::new(&args.allowed_regions),
        namespace: args.namespace.clone(),
    };
    let report = check_paths(&args.paths, &opts)?;
    for f in &report.findings {
        println!("{f}");
    }
    eprintln!(
        "checked {} evidence.bwv.io object(s) in {} file(s): {} problem(s)",
        report.objects,
        report.files,
        report.findings.len()
    );
    if report.findings.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} problem(s) found", report.findings.len())
    }
}

/// Check files and directories.
pub fn check_paths(paths: &[PathBuf], opts: &Options) -> Result<Report, CheckError> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    if files.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CheckError::NoFiles(names.join(", ")));
    }
    files.sort();
    files.dedup();
    let mut sources = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| CheckError::Read {
            path: f.clone(),
            source,
        })?;
        sources.push((f, text));
    }
    Ok(check_sources(&sources, opts))
}

/// A parsed evidence.bwv.io object.
struct Object<'a> {
    doc: &'a Doc<'a>,
    kind: String,
    name: String,
    namespace: String,
    value: Value,
}

impl Object<'_> {
    fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Problems of one object: path within the document and message.
type Problems = Vec<(Vec<String>, String)>;

fn problem(out: &mut Problems, path: &[&str], message: impl Into<String>) {
    out.push((path.iter().map(|s| s.to_string()).collect(), message.into()));
}

/// Check YAML sources (path, contents): the pure core of `check`.
pub fn check_sources(sources: &[(PathBuf, String)], opts: &Options) -> Report {
    let mut report = Report {
        files: sources.len(),
        ..Report::default()
    };
    let docs: Vec<Doc<'_>> = sources.iter().flat_map(|(f, t)| split_docs(f, t)).collect();
    let mut objects = Vec::new();
    for doc in &docs {
        let text = doc.lines.join("\n");
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        {
            continue;
        }
        let value: serde_yaml::Value = match serde_yaml::from_str(&text) {
            Ok(v) => v,
            // Unparseable documents matter only when they could be ours (a Helm
            // template or another tool's file in the same repository is not).
            Err(_) if !text.contains(GROUP) => continue,
            Err(e) => {
                report.findings.push(Finding {
                    file: doc.file.to_path_buf(),
                    line: doc.start + e.location().map_or(0, |l| l.line().saturating_sub(1)),
                    object: "-".into(),
                    message: format!("not valid YAML: {e}"),
                });
                continue;
            }
        };
        let value: Value = match serde_json::to_value(&value) {
            Ok(v) => v,
            Err(e) => {
                report.findings.push(Finding {
                    file: doc.file.to_path_buf(),
                    line: doc.start,
                    object: "-".into(),
                    message: format!("not a Kubernetes object: {e}"),
                });
                continue;
            }
        };
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
        if api_version.split('/').next() != Some(GROUP) {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = value["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&opts.namespace)
            .to_string();
        report.objects += 1;
        let obj = Object {
            doc,
            kind,
            name,
            namespace,
            value,
        };
        let mut problems = Problems::new();
        if api_version != VERSION {
            problem(
                &mut problems,
                &["apiVersion"],
                format!("apiVersion {api_version:?} is not served; use {VERSION}"),
            );
        }
        if obj.name.is_empty() {
            problem(
                &mut problems,
                &["metadata"],
                "metadata.name: Required value",
            );
        }
        match obj.kind.as_str() {
            "RetentionPolicy" => check_policy(&obj.value, &mut problems),
            "EvidenceBucket" => check_bucket(&obj.value, opts, &mut problems),
            "LegalHold" => check_hold(&obj.value, &mut problems),
            "ClipRestore" => check_restore(&obj.value, &mut problems),
            "AccessRequest" => check_request(&obj.value, opts, &mut problems),
            other => problem(
                &mut problems,
                &["kind"],
                format!(
                    "unknown kind {other:?} in {GROUP} (EvidenceBucket, RetentionPolicy, LegalHold, ClipRestore, AccessRequest)"
                ),
            ),
        }
        push(&mut report, &obj, problems);
        objects.push(obj);
    }
    cross_check(&objects, &mut report);
    report
        .findings
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    report
}

fn push(report: &mut Report, obj: &Object<'_>, problems: Problems) {
    for (path, message) in problems {
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        report.findings.push(Finding {
            file: obj.doc.file.to_path_buf(),
            line: obj.doc.line_of(&segs),
            object: obj.id(),
            message,
        });
    }
}

/// A spec's problems, as the api reports them (paths from the spec down), under `spec`.
fn add(out: &mut Problems, problems: Vec<Problem>) {
    for p in problems {
        let mut path = vec!["spec".to_string()];
        path.extend(p.path.iter().map(ToString::to_string));
        out.push((path, p.message));
    }
}

fn check_policy(value: &Value, out: &mut Problems) {
    let Some(spec) = spec_of::<RetentionPolicySpec>(value, out) else {
        return;
    };
    // In this order (category rules, the engine, the safety floor): findings on one line
    // keep the order they have always had.
    add(out, spec.category_problems());
    if let Err(e) = Planner::new(&spec, &[], Utc::now()) {
        problem(
            out,
            &["spec", "categories"],
            format!("the engine refuses this policy: {e}"),
        );
    }
    add(out, spec.safety_floor_problems());
    add(out, spec.restore_window_problems());
}

fn check_bucket(value: &Value, opts: &Options, out: &mut Problems) {
    if let Some(spec) = spec_of::<EvidenceBucketSpec>(value, out) {
        add(out, spec.problems(&opts.allowed_regions));
    }
}

fn check_request(value: &Value, opts: &Options, out: &mut Problems) {
    if let Some(spec) = spec_of::<AccessRequestSpec>(value, out) {
        add(out, spec.problems(&opts.allowed_regions));
    }
}

fn check_restore(value: &Value, out: &mut Problems) {
    if let Some(spec) = spec_of::<ClipRestoreSpec>(value, out) {
        add(out, spec.problems());
    }
}

fn check_hold(value: &Value, out: &mut Problems) {
    if let Some(spec) = spec_of::<LegalHoldSpec>(value, out) {
        add(out, spec.problems());
    }
}
