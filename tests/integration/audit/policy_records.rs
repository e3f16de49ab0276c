//! The chain's records of the RetentionPolicies and LegalHolds themselves
//! (`policy_created`, `policy_changed`, `policy_deleted`), where the operator's looks
//! at them and their lives do not line up.

use super::*;

/// A LegalHold that came and went between two looks of the operator (created and
/// deleted while a sweep ran, so no sweep started while it was in force) is in the
/// chain as in force before it is deleted. Made to happen without timing: the hold is
/// created and deleted before the operator starts, and kept by a finalizer of the test's
/// own, so the operator's first look sees it already being deleted. (Only its
/// `policy_deleted` was written: a deletion of something the chain never said was in
/// force.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_first_seen_being_deleted_is_recorded_in_force_then_deleted() -> Result<()> {
    use kube::api::{Patch, PatchParams, PostParams};

    const KEEP: &str = "test.evidence.bwv.io/keep";
    let t = Tenant::new("audit-brief").await?;
    t.setup().await?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    let hold: LegalHold = serde_json::from_value(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold",
        "metadata": { "name": "brief", "finalizers": [KEEP] },
        "spec": {
            "bucketRef": { "name": "unit" },
            "caseReference": "CASE-BRIEF",
            "reason": "applied and withdrawn between two sweeps",
            "selector": { "matchTags": { TAG_CASE: "CASE-BRIEF" } },
        }
    }))?;
    holds.create(&PostParams::default(), &hold).await?;
    holds.delete("brief", &DeleteParams::default()).await?;

    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let found = op
        .check(async {
            eventually(
                Duration::from_secs(60),
                "the hold's deletion recorded",
                || async {
                    let records = t.records().await?;
                    let of_hold: Vec<AuditAction> = records
                        .iter()
                        .filter(|r| {
                            r.object.as_ref().is_some_and(|o| {
                                o.kind == "LegalHold" && o.name.ends_with("/brief")
                            })
                        })
                        .map(|r| r.action)
                        .collect();
                    Ok(of_hold
                        .contains(&AuditAction::PolicyDeleted)
                        .then_some(of_hold))
                },
            )
            .await
        })
        .await;
    // Let the hold go whatever the outcome.
    holds
        .patch(
            "brief",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
        )
        .await?;
    let of_hold = found?;
    assert_eq!(
        of_hold,
        vec![AuditAction::PolicyCreated, AuditAction::PolicyDeleted],
        "in force, then deleted"
    );
    Ok(())
}
