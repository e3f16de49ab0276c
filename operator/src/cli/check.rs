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
//!   blank case references and reasons, camera windows;
//! - **UK only**: the region is a built-in UK region or one passed with
//!   `--allowed-regions` (what the installation's ConfigMap lists);
//! - **policy semantics**: the engine accepts the policy; no category (nor the default)
//!   is kept for less than the safety floor `minimumAge`;
//! - **references within the file set**: an EvidenceBucket's `retentionPolicyRef` and a
//!   LegalHold's `bucketRef` name an object of the files checked, in the same namespace;
//!   no object is defined twice.
//!
//! Each problem is printed as `file:line: Kind/name: message`; the exit code is 1 when
//! there is any. Documents of other groups are ignored.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use chrono::{DateTime, TimeZone, Utc};
use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    api::{EvidenceBucketSpec, LegalHoldSpec, RetentionPolicySpec, regions::AllowedRegions},
    engine::Planner,
};

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

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CheckError> {
    let read = |source| CheckError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(read)? {
        let p = entry.map_err(read)?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// One YAML document of a file.
struct Doc<'a> {
    file: &'a Path,
    /// 1-based line of the document's first line.
    start: usize,
    lines: Vec<&'a str>,
}

impl Doc<'_> {
    /// The line of the value at `path` (keys and list indexes), best effort: the
    /// deepest segment found.
    fn line_of(&self, path: &[&str]) -> usize {
        let mut at: Option<usize> = None;
        let mut indent: isize = -1;
        for seg in path {
            let from = at.map_or(0, |i| i + 1);
            if let Some(text) = seg.strip_prefix('=') {
                // the first line from here on that contains this text
                let Some(i) = (from..self.lines.len()).find(|i| self.lines[*i].contains(text))
                else {
                    break;
                };
                at = Some(i);
                continue;
            }
            if let Ok(index) = seg.parse::<usize>() {
                // the index-th item of the list below the current key
                let Some((i, _)) = self.list_items(from).nth(index) else {
                    break;
                };
                at = Some(i);
                indent = indent_of(self.lines[i]) as isize;
                continue;
            }
            let found = self.lines.iter().enumerate().skip(from).find(|(i, l)| {
                let t = l.trim_start();
                let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
                let is_key = t.starts_with(&format!("{seg}:"))
                    || t.starts_with(&format!("\"{seg}\":"))
                    || t.starts_with(&format!("'{seg}':"));
                let own_item = at == Some(*i);
                is_key && (own_item || indent_of(l) as isize > indent || at.is_none())
            });
            let Some((i, l)) = found else { break };
            at = Some(i);
            // a key on a list item's line is indented past the dash
            let t = l.trim_start();
            indent = if t.starts_with("- ") {
                (indent_of(l) + 2) as isize
            } else {
                indent_of(l) as isize
            };
        }
        self.start + at.unwrap_or(0)
    }
}

impl Doc<'_> {
    /// The list items (line index, line) of the block sequence starting at or after
    /// line `from`.
    fn list_items(&self, from: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let is_item = |l: &str| l.trim_start().starts_with("- ") || l.trim() == "-";
        let first = self
            .lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| is_item(l))
            .map(|(i, l)| (i, indent_of(l)));
        let (start, item_indent) = first.unwrap_or((self.lines.len(), 0));
        self.lines
            .iter()
            .enumerate()
            .skip(start)
            .take_while(move |(_, l)| {
                let t = l.trim_start();
                t.is_empty()
                    || t.starts_with('#')
                    || indent_of(l) > item_indent
                    || (indent_of(l) == item_indent && is_item(l))
            })
            .filter(move |(_, l)| indent_of(l) == item_indent && is_item(l))
            .map(|(i, l)| (i, *l))
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Split a file into YAML documents, remembering where each starts.
fn split_docs<'a>(file: &'a Path, text: &'a str) -> Vec<Doc<'a>> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(Doc {
                file,
                start,
                lines: std::mem::take(&mut lines),
            });
            start = i + 2;
        } else {
            lines.push(line);
        }
    }
    docs.push(Doc { file, start, lines });
    docs
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
            other => problem(
                &mut problems,
                &["kind"],
                format!(
                    "unknown kind {other:?} in {GROUP} (EvidenceBucket, RetentionPolicy, LegalHold)"
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

/// Deserialise `spec` into the operator's type; report unknown fields.
fn spec_of<T: DeserializeOwned + serde::Serialize>(value: &Value, out: &mut Problems) -> Option<T> {
    let Some(spec) = value.get("spec") else {
        problem(out, &[], "spec: Required value");
        return None;
    };
    match serde_json::from_value::<T>(spec.clone()) {
        Ok(t) => {
            if let Ok(back) = serde_json::to_value(&t) {
                unknown_fields(spec, &back, &mut vec!["spec".to_string()], out);
            }
            Some(t)
        }
        Err(e) => {
            let msg = e.to_string();
            let message = match msg
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                Some(field) => {
                    format!("spec: {field}: Required value (a field under spec is missing)")
                }
                None => format!("spec: {msg}"),
            };
            // point at the offending value when serde quotes it
            let quoted = msg
                .split(['"', '`'])
                .nth(1)
                .filter(|q| !q.is_empty() && !msg.starts_with("missing field"));
            match quoted {
                Some(q) => problem(out, &["spec", &format!("={q}")], message),
                None => problem(out, &["spec"], message),
            }
            None
        }
    }
}

/// Fields present in `input` that the type dropped when it was read.
fn unknown_fields(input: &Value, known: &Value, path: &mut Vec<String>, out: &mut Problems) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                path.push(key.clone());
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, path, out),
                    None if is_empty(v) => {}
                    None => {
                        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
                        out.push((
                            path.clone(),
                            format!("unknown field \"{}\"", segs.join(".")),
                        ));
                    }
                }
                path.pop();
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                path.push(n.to_string());
                unknown_fields(iv, kv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`: region and category names.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// The S3 bucket-naming rules, as the CRD checks them.
fn bucket_name_problem(s: &str) -> Option<String> {
    if s.len() < 3 {
        return Some(format!("bucket {s:?} should be at least 3 chars long"));
    }
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'.' || *c == b'-')
        && !s.contains("..");
    (!valid).then(|| {
        format!("bucket {s:?}: bucket must follow the S3 naming rules: 3 to 63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit")
    })
}

fn check_policy(value: &Value, out: &mut Problems) {
    let Some(spec) = spec_of::<RetentionPolicySpec>(value, out) else {
        return;
    };
    let mut seen = BTreeSet::new();
    for (i, c) in spec.categories.iter().enumerate() {
        let idx = i.to_string();
        if !is_dns_label(&c.name) {
            problem(
                out,
                &["spec", "categories", &idx, "name"],
                format!(
                    "category {:?}: a category name is lower-case letters, digits and dashes, at most 63 characters, such as domestic-abuse",
                    c.name
                ),
            );
        }
        if !seen.insert(c.name.as_str()) {
            problem(
                out,
                &["spec", "categories", &idx, "name"],
                format!(
                    "category names must be unique: {:?} is listed twice",
                    c.name
                ),
            );
        }
    }
    if spec.categories.len() > 100 {
        problem(out, &["spec", "categories"], "at most 100 categories");
    }
    if let Err(e) = Planner::new(&spec, &[], Utc::now()) {
        problem(
            out,
            &["spec", "categories"],
            format!("the engine refuses this policy: {e}"),
        );
    }
    // The safety floor: a retention shorter than minimumAge is a policy that says one
    // thing and does another (nothing is deleted before minimumAge).
    let floor_ends = |d: &crate::api::RetentionDuration, t: DateTime<Utc>| d.after(t);
    for t0 in reference_times() {
        let Some(floor) = floor_ends(&spec.minimum_age, t0) else {
            break; // minimumAge Forever: nothing is ever deleted; nothing to compare
        };
        let mut short = |path: &[&str], what: String, retention: &crate::api::RetentionDuration| {
            if retention.after(t0).is_some_and(|end| end < floor) {
                let msg = format!(
                    "{what}: retention {retention} is shorter than the safety floor minimumAge {}: clips would be kept until minimumAge anyway",
                    spec.minimum_age
                );
                if !out.iter().any(|(_, m)| *m == msg) {
                    problem(out, path, msg);
                }
            }
        };
        short(
            &["spec", "default", "retention"],
            "default".into(),
            &spec.default.retention,
        );
        for (i, c) in spec.categories.iter().enumerate() {
            let idx = i.to_string();
            short(
                &["spec", "categories", &idx, "retention"],
                format!("category {:?}", c.name),
                &c.retention,
            );
        }
    }
}

/// Start times at which calendar durations are compared (month lengths differ).
fn reference_times() -> Vec<DateTime<Utc>> {
    [(2024, 1, 31), (2024, 2, 1), (2025, 2, 1), (2025, 7, 1)]
        .iter()
        .filter_map(|(y, m, d)| Utc.with_ymd_and_hms(*y, *m, *d, 0, 0, 0).single())
        .collect()
}

fn check_bucket(value: &Value, opts: &Options, out: &mut Problems) {
    let Some(spec) = spec_of::<EvidenceBucketSpec>(value, out) else {
        return;
    };
    let region = spec.region.as_str();
    if !is_dns_label(region) {
        problem(
            out,
            &["spec", "region"],
            format!(
                "region {region:?}: region must be a region name such as eu-west-2: lower-case letters, digits and dashes"
            ),
        );
    } else if !opts.allowed_regions.contains(region) {
        problem(
            out,
            &["spec", "region"],
            format!(
                "spec.region: {region} is not an allowed UK region (allowed: {}; pass --allowed-regions for an installation's on-premises UK regions)",
                opts.allowed_regions
            ),
        );
    }
    if let Some(ep) = &spec.endpoint {
        let host = ep
            .strip_prefix("https://")
            .or_else(|| ep.strip_prefix("http://"))
            .map(|r| r.split(['/', ':', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(str::is_empty) || ep.len() > 2048 {
            problem(
                out,
                &["spec", "endpoint"],
                format!("endpoint {ep:?}: endpoint must be an http:// or https:// URL with a host"),
            );
        }
    }
    let tiers = [
        ("hot", &spec.tiers.hot),
        ("cool", &spec.tiers.cool),
        ("legalHold", &spec.tiers.legal_hold),
    ];
    for (name, t) in tiers {
        if let Some(p) = bucket_name_problem(&t.bucket) {
            problem(out, &["spec", "tiers", name, "bucket"], p);
        }
        if t.prefix.as_deref().is_some_and(|p| p.starts_with('/')) {
            problem(
                out,
                &["spec", "tiers", name, "prefix"],
                "prefix must not start with /",
            );
        }
        if let Some(class) = &t.storage_class {
            let b = class.as_bytes();
            let well_formed = b.first().is_some_and(u8::is_ascii_uppercase)
                && b.iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
            if !well_formed {
                problem(
                    out,
                    &["spec", "tiers", name, "storageClass"],
                    format!(
                        "{class:?}: storageClass is an S3 storage class name such as STANDARD or STANDARD_IA"
                    ),
                );
            } else if class == "GLACIER" || class == "DEEP_ARCHIVE" {
                problem(
                    out,
                    &["spec", "tiers", name, "storageClass"],
                    "archive storage classes (GLACIER, DEEP_ARCHIVE) cannot be read without a restore, so clips there cannot be verified",
                );
            }
        }
    }
    let (hot, cool, lh) = (&spec.tiers.hot, &spec.tiers.cool, &spec.tiers.legal_hold);
    if lh.bucket == hot.bucket || lh.bucket == cool.bucket {
        problem(
            out,
            &["spec", "tiers", "legalHold", "bucket"],
            "the legalHold tier must be a bucket of its own, not the hot or cool bucket",
        );
    }
    let prefix =
        |t: &crate::api::evidence_bucket::TierLocation| t.prefix.clone().unwrap_or_default();
    let distinct_class =
        matches!((&hot.storage_class, &cool.storage_class), (Some(a), Some(b)) if a != b);
    if hot.bucket == cool.bucket && prefix(hot) == prefix(cool) && !distinct_class {
        problem(
            out,
            &["spec", "tiers", "cool"],
            "hot and cool share a bucket: give them different prefixes, or different storage classes on both",
        );
    }
    if spec.sweep_interval.as_std() < std::time::Duration::from_secs(60) {
        problem(
            out,
            &["spec", "sweepInterval"],
            format!("sweepInterval {}: must be at least 1m", spec.sweep_interval),
        );
    }
}

fn check_hold(value: &Value, out: &mut Problems) {
    let Some(spec) = spec_of::<LegalHoldSpec>(value, out) else {
        return;
    };
    if spec.case_reference.trim().is_empty() {
        problem(
            out,
            &["spec", "caseReference"],
            "caseReference must not be blank",
        );
    }
    if spec.reason.trim().is_empty() {
        problem(out, &["spec", "reason"], "reason must not be blank");
    }
    let s = &spec.selector;
    if s.keys.is_empty() && s.match_tags.is_empty() && s.camera_window.is_none() {
        problem(
            out,
            &["spec", "selector"],
            "selector must not be empty: give keys, matchTags or cameraWindow",
        );
    }
    for (i, k) in s.keys.iter().enumerate() {
        if k.is_empty() || k.starts_with('/') {
            problem(
                out,
                &["spec", "selector", "keys", &i.to_string()],
                format!("{k:?}: keys must be non-empty and must not start with /"),
            );
        }
    }
    for (k, v) in &s.match_tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            problem(
                out,
                &["spec", "selector", "matchTags"],
                "matchTags keys are 1 to 128 characters and values at most 256 (the S3 tag limits)",
            );
        }
    }
    if s.match_tags.len() > 10 {
        problem(
            out,
            &["spec", "selector", "matchTags"],
            "at most 10 matchTags (the S3 tag limit)",
        );
    }
    if let Some(w) = &s.camera_window {
        if w.camera.trim().is_empty() {
            problem(
                out,
                &["spec", "selector", "cameraWindow", "camera"],
                "camera must not be blank",
            );
        }
        if w.from > w.to {
            problem(
                out,
                &["spec", "selector", "cameraWindow"],
                "cameraWindow.from must not be after cameraWindow.to",
            );
        }
    }
}

/// References and duplicates across the whole file set.
fn cross_check(objects: &[Object<'_>], report: &mut Report) {
    let mut defined: BTreeMap<(String, String, String), &Object<'_>> = BTreeMap::new();
    for o in objects.iter().filter(|o| !o.name.is_empty()) {
        let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
        if let Some(first) = defined.get(&key) {
            let at = format!("{}:{}", first.doc.file.display(), first.doc.start);
            push(
                report,
                o,
                vec![(
                    vec!["metadata".into(), "name".into()],
                    format!(
                        "{} {}/{} is also defined at {at}",
                        o.kind, o.namespace, o.name
                    ),
                )],
            );
        } else {
            defined.insert(key, o);
        }
    }
    let exists = |kind: &str, ns: &str, name: &str| {
        defined.contains_key(&(kind.to_string(), ns.to_string(), name.to_string()))
    };
    for o in objects {
        let (path, kind, target) = match o.kind.as_str() {
            "EvidenceBucket" => (
                ["spec", "retentionPolicyRef", "name"],
                "RetentionPolicy",
                &o.value["spec"]["retentionPolicyRef"]["name"],
            ),
            "LegalHold" => (
                ["spec", "bucketRef", "name"],
                "EvidenceBucket",
                &o.value["spec"]["bucketRef"]["name"],
            ),
            _ => continue,
        };
        let Some(target) = target.as_str() else {
            continue;
        };
        if !exists(kind, &o.namespace, target) {
            push(
                report,
                o,
                vec![(
                    path.iter().map(|s| s.to_string()).collect(),
                    format!(
                        "{kind} {}/{target} is not defined in the files checked",
                        o.namespace
                    ),
                )],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn run(files: &[(&str, &str)]) -> Report {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        check_sources(
            &sources,
            &Options {
                allowed_regions: AllowedRegions::new(["uk-london-1"]),
                namespace: "default".into(),
            },
        )
    }

    const POLICY: &str = "apiVersion: evidence.bwv.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: met
  namespace: unit
spec:
  default:
    retention: 31d
    onExpiry: Delete
  categories:
    - name: murder
      retention: Forever
      onExpiry: Review
    - name: stop-and-search
      retention: 6y
      onExpiry: Review
";

    fn bucket(region: &str, policy: &str) -> String {
        format!(
            "apiVersion: evidence.bwv.io/v1alpha1
kind: EvidenceBucket
metadata:
  name: unit
  namespace: unit
spec:
  region: {region}
  retentionPolicyRef:
    name: {policy}
  tiers:
    hot:
      bucket: unit-hot
    cool:
      bucket: unit-cool
    legalHold:
      bucket: unit-lock
"
        )
    }

    #[test]
    fn a_consistent_set_is_clean() {
        let text = format!("{POLICY}---\n{}", bucket("eu-west-2", "met"));
        let r = run(&[("set.yaml", &text)]);
        assert_eq!(r.objects, 2);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn region_outside_the_uk_is_flagged_with_its_line() {
        let text = format!("{POLICY}---\n{}", bucket("eu-west-1", "met"));
        let r = run(&[("set.yaml", &text)]);
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        let f = &r.findings[0];
        assert_eq!(f.object, "EvidenceBucket/unit");
        assert!(f.message.contains("is not an allowed UK region"), "{f}");
        let region_line = text
            .lines()
            .position(|l| l.contains("region: eu-west-1"))
            .unwrap()
            + 1;
        assert_eq!(f.line, region_line, "{f}");
        assert!(
            f.to_string()
                .starts_with(&format!("set.yaml:{region_line}: EvidenceBucket/unit: "))
        );
        // an installation's extra region is allowed
        let ok = run(&[
            ("a.yaml", POLICY),
            ("b.yaml", &bucket("uk-london-1", "met")),
        ]);
        assert!(ok.findings.is_empty(), "{:?}", ok.findings);
    }

    #[test]
    fn unknown_policy_reference_is_flagged() {
        let r = run(&[("a.yaml", POLICY), ("b.yaml", &bucket("eu-west-2", "nope"))]);
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert!(
            r.findings[0]
                .message
                .contains("RetentionPolicy unit/nope is not defined")
        );
        assert_eq!(r.findings[0].file, PathBuf::from("b.yaml"));
        assert_eq!(r.findings[0].line, 9, "{}", r.findings[0]);
    }

    #[test]
    fn retention_shorter_than_the_safety_floor_is_flagged() {
        let text = POLICY.replace(
            "    - name: stop-and-search\n      retention: 6y",
            "    - name: stop-and-search\n      retention: 12h",
        ) + "  minimumAge: 2d\n";
        let r = run(&[("p.yaml", &text)]);
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        let f = &r.findings[0];
        assert!(f.message.contains("shorter than the safety floor"), "{f}");
        assert!(f.message.contains("stop-and-search"), "{f}");
        assert_eq!(
            f.line,
            text.lines()
                .position(|l| l.contains("retention: 12h"))
                .unwrap()
                + 1
        );
    }

    #[test]
    fn schema_problems_are_flagged() {
        let unknown = POLICY.to_string() + "  retentionDays: 31\n";
        let r = run(&[("p.yaml", &unknown)]);
        assert!(
            r.findings
                .iter()
                .any(|f| f.message.contains("unknown field \"spec.retentionDays\"")),
            "{:?}",
            r.findings
        );
        let bad_duration = POLICY.replace("retention: 6y", "retention: 6years");
        let r = run(&[("p.yaml", &bad_duration)]);
        assert!(
            r.findings
                .iter()
                .any(|f| f.message.contains("invalid duration")),
            "{:?}",
            r.findings
        );
        let dup = POLICY.replace("stop-and-search", "murder");
        let r = run(&[("p.yaml", &dup)]);
        assert!(
            r.findings
                .iter()
                .any(|f| f.message.contains("category names must be unique")),
            "{:?}",
            r.findings
        );
        let broken = "apiVersion: evidence.bwv.io/v1alpha1\nkind: [unclosed\n";
        let r = run(&[("x.yaml", broken)]);
        assert!(
            r.findings[0].message.contains("not valid YAML"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn hold_rules_and_references() {
        let hold = "apiVersion: evidence.bwv.io/v1alpha1
kind: LegalHold
metadata:
  name: case
  namespace: unit
spec:
  bucketRef:
    name: missing
  caseReference: ' '
  reason: r
  selector: {}
";
        let r = run(&[("h.yaml", hold)]);
        let msgs: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("caseReference must not be blank")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("selector must not be empty")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("EvidenceBucket unit/missing is not defined")),
            "{msgs:?}"
        );
    }

    #[test]
    fn other_groups_are_ignored_and_duplicates_flagged() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
        let template = "{{- if .Values.x }}\nkind: ConfigMap\n{{- end }}\n";
        assert!(run(&[("t.yaml", template)]).findings.is_empty());
        let r = run(&[
            ("a.yaml", &format!("{cm}---\n{POLICY}")),
            ("b.yaml", POLICY),
        ]);
        assert_eq!(r.objects, 2);
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert!(
            r.findings[0].message.contains("also defined at a.yaml:"),
            "{:?}",
            r.findings
        );
    }

    /// The repository's examples are clean; every document in tests/invalid/ (which the
    /// API server refuses) is flagged too, with the same meaning as the server's message.
    #[test]
    fn examples_are_clean_and_every_invalid_document_is_flagged() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let opts = Options {
            allowed_regions: AllowedRegions::new::<_, &str>([]),
            namespace: "default".into(),
        };
        let report = check_paths(&[root.join("deploy/examples")], &opts).unwrap();
        assert!(report.objects >= 3, "{report:?}");
        assert!(report.findings.is_empty(), "{:?}", report.findings);

        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/invalid"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 40, "tests/invalid/ has its documents");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let expect = text
                .lines()
                .find_map(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{} has an # expect: line", file.display()));
            // The API server's wording for what serde reports in its own words.
            let wanted: Vec<String> = if expect.contains("must be a duration") {
                vec!["invalid duration".into()]
            } else if expect.contains("must be an interval") {
                vec!["invalid interval".into()]
            } else if expect.contains("Required value") {
                vec!["Required value".into()]
            } else if let Some(v) = expect.strip_prefix("Unsupported value: ") {
                vec![format!("unknown variant `{}`", v.trim_matches('"'))]
            } else if expect.contains("must be of type boolean") {
                vec!["expected a boolean".into()]
            } else if expect.contains("must be of type date-time") {
                vec!["spec: ".into()]
            } else {
                vec![expect.to_string()]
            };
            let report = check_paths(std::slice::from_ref(&file), &opts).unwrap();
            let own: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| !f.message.contains("is not defined in the files checked"))
                .collect();
            assert!(
                own.iter()
                    .any(|f| wanted.iter().any(|w| f.message.contains(w.as_str()))),
                "{}: expected a finding with {wanted:?}, got {:?}",
                file.display(),
                report.findings
            );
            for f in &own {
                assert!(f.line > 2, "{f}: points past the comment header");
            }
        }
    }
}
