//! The tests of `check` as a whole: YAML in, findings (file, line, object, message) out,
//! including the repository's examples and every document of `tests/invalid/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

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
