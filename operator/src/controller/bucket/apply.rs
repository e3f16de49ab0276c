//! Step 3 of a bucket's reconcile: act on storage. Connect (one store and audit log per
//! bucket, rebuilt when its configuration changes), prove every tier bucket's region
//! (and the legal-hold bucket's Object Lock) before any write, compare the local clock
//! with the store's and the API server's ([`super::clock`]), record the policy and
//! hold changes seen since the last record, sweep, then the opt-in integrity sweep. What
//! the storage proves wrong comes back as a [`Refusal`]; what fails, as an [`Error`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::info;

use kube::ResourceExt;

use super::{clock, fence::ApiHoldFence, refusal::Refusal, validate::ValidatedBucket};
use crate::{
    api::{EvidenceBucket, LegalHold, clip::Tier, evidence_bucket::TAKE_OVER_ANNOTATION},
    audit::{AuditAction, AuditLog, AuditSink, BucketAudit, ObjectInfo},
    catalogue::CataloguedStore,
    controller::{
        Context, Error,
        audit::{
            CountingSink, IntegrityFound, audit_condition, audit_skips, audit_target,
            integrity_sweep, policy_entries, remember_recorded,
        },
        key_of,
        status::Cond,
        sweep::{self, SweepAudit, SweepOptions, SweepOutcome},
    },
    storage::{
        BucketConfig, S3TierStore, StorageError, TierStore,
        claim::{Claim, ClaimOutcome, Owner, TakeOver},
    },
};

/// What acting on a bucket came to.
#[derive(Debug)]
pub enum Applied {
    /// The storage proved the bucket may not be used (region, Object Lock): nothing
    /// was written.
    Refused(Refusal),
    /// A sweep ran (to its end, or until it was interrupted).
    Swept(Box<SweepReport>),
}

/// What a sweep did, for [`super::report`].
#[derive(Debug)]
pub struct SweepReport {
    /// The sweep's counts.
    pub outcome: SweepOutcome,
    /// What the integrity sweep found, when it ran.
    pub integrity: Option<IntegrityFound>,
    /// The `AuditTrail` condition after the sweep's records.
    pub audit: Cond,
    /// The answers given to AccessRequests after this sweep, by name (requests not
    /// named keep their last answer).
    pub answers: std::collections::BTreeMap<String, super::export::Answer>,
    /// When the sweep started.
    pub started: DateTime<Utc>,
    /// When it (and the integrity sweep) ended.
    pub finished: DateTime<Utc>,
}

impl SweepReport {
    /// Whether every planned action was done: no failure, no interruption.
    pub fn complete(&self) -> bool {
        self.outcome.failed == 0 && !self.outcome.interrupted
    }
}

/// Act on a validated bucket's storage.
pub async fn apply(
    eb: &EvidenceBucket,
    valid: &ValidatedBucket<'_>,
    ctx: &Context,
) -> Result<Applied, Error> {
    let key = key_of(eb);
    let storage = |source| Error::Storage {
        bucket: key.clone(),
        source,
    };
    let audit = |source| Error::Audit {
        bucket: key.clone(),
        source,
    };
    let (store, audit_log) = match store_for(eb, &valid.config, ctx).await {
        Ok(found) => found,
        Err(Error::Storage { source, .. }) => match Refusal::from_storage(source) {
            Ok(refusal) => return Ok(Applied::Refused(refusal)),
            Err(e) => return Err(storage(e)),
        },
        Err(e) => return Err(e),
    };

    // UK only, by proof: every tier bucket's actual location (and Object Lock).
    if let Err(e) = store.verify_region().await {
        return match Refusal::from_storage(e) {
            Ok(refusal) => Ok(Applied::Refused(refusal)),
            Err(e) => Err(storage(e)),
        };
    }
    // One owner per storage location: nothing is listed, written or deleted in a
    // location another EvidenceBucket claimed first.
    let taken_over = match claim(eb, store.as_ref(), ctx).await {
        Ok(Ok(taken_over)) => taken_over,
        Ok(Err(refusal)) => return Ok(Applied::Refused(refusal)),
        Err(e) => {
            return match Refusal::from_storage(e) {
                Ok(refusal) => Ok(Applied::Refused(refusal)),
                Err(e) => Err(storage(e)),
            };
        }
    };
    // A restore window needs versioned hot and cool buckets: otherwise a deletion could
    // not be undone, and nothing is done at all.
    if let Some(window) = valid.policy.spec.restore_window {
        for tier in [Tier::Hot, Tier::Cool] {
            match store.versioning_enabled(tier).await {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(Applied::Refused(Refusal::VersioningRequired {
                        policy: key_of(valid.policy),
                        window: window.to_string(),
                        tier: tier.to_string(),
                        bucket: valid.config.tiers.get(tier).bucket.clone(),
                    }));
                }
                Err(e) => {
                    return match Refusal::from_storage(e) {
                        Ok(refusal) => Ok(Applied::Refused(refusal)),
                        Err(e) => Err(storage(e)),
                    };
                }
            }
        }
    }
    // The clocks, just before the planner takes its `now`: a local clock that is not
    // the servers' would count ages wrongly, so nothing is done while they disagree.
    let s3_clock = match &valid.config.endpoint {
        Some(endpoint) => format!("the S3 store ({endpoint})"),
        None => format!("the S3 store (AWS, {})", valid.config.declared_region),
    };
    if let Some(refusal) = clock::check(ctx, &key, store.as_ref(), s3_clock).await? {
        return Ok(Applied::Refused(refusal));
    }
    let planner = match valid.planner(ctx.settings.now()) {
        Ok(p) => p,
        Err(refusal) => return Ok(Applied::Refused(refusal)),
    };

    // Policy and hold changes seen since the last record, written before any action
    // they cause.
    let sink = CountingSink {
        inner: BucketAudit {
            log: audit_log.as_ref(),
            actor: ctx.settings.actor(),
            bucket: key.clone(),
        },
        ctx,
    };
    let mut audit_head = None;
    let (mut entries, seen) = policy_entries(ctx, &key, valid.policy, &valid.holds).await;
    entries.extend(taken_over.iter().map(|c| take_over_entry(eb, c)));
    if !entries.is_empty() {
        let receipt = match sink.record(entries).await {
            Ok(receipt) => receipt,
            // The first write with these credentials: a denial is theirs to fix.
            Err(e) if e.is_denied() => {
                return Ok(Applied::Refused(Refusal::AccessDenied(e.to_string())));
            }
            Err(e) => return Err(audit(e)),
        };
        audit_head = receipt.map(|r| (r.batch, r.head));
        remember_recorded(ctx, &key, seen).await;
    }

    // ClipRestores: before the sweep, which then lists the restored clips.
    if !valid.restores.is_empty() {
        super::restore::restore_all(ctx, eb, &valid.restores, store.as_ref(), &sink).await?;
    }

    // The sweep.
    let started = Utc::now();
    let opts = SweepOptions {
        concurrency: ctx.settings.move_concurrency,
        skip: audit_skips(eb, &ctx.settings.audit_prefix),
        integrity_sample: ctx.settings.integrity_sample,
        catalogue: ctx
            .catalogue
            .as_ref()
            .map(|c| c.bucket(&key, &valid.config)),
        inputs: valid.inputs.clone(),
    };
    let releasing = valid.releasing_planner(ctx.settings.now());
    let flagged_before = ctx
        .flags_recorded
        .lock()
        .await
        .get(&key)
        .cloned()
        .unwrap_or_default();
    let sweep_audit = SweepAudit {
        sink: &sink,
        cases: valid
            .holds
            .iter()
            .map(|h| {
                (
                    kube::ResourceExt::name_any(*h),
                    h.spec.case_reference.clone(),
                )
            })
            .collect(),
        releasing: releasing.as_ref(),
        flagged_before: &flagged_before,
    };
    let ns = eb.namespace().unwrap_or_default();
    let fence = ApiHoldFence {
        api: kube::Api::namespaced(ctx.client.clone(), &ns),
        policies: kube::Api::namespaced(ctx.client.clone(), &ns),
        bucket: eb.name_any(),
        start: valid.active.clone(),
        policy_name: eb.spec.retention_policy_ref.name.clone(),
        start_policy: valid.policy.spec.clone(),
        requests: kube::Api::namespaced(ctx.client.clone(), &ns),
        start_preserves: valid.preserves.clone(),
    };
    // What docks ingested since the last sweep: the catalogue learns those clips from
    // their audit records, so that listing them reads nothing more of them. Not
    // fatal: a clip not learned is read from storage, as any new clip is.
    if let Some(cat) = &opts.catalogue {
        match cat.learn_ingested(&audit_log, &key, Utc::now()).await {
            Ok(learned) if learned.entries > 0 => {
                info!(bucket = %key, clips = learned.entries, batches = learned.batches,
                      "learned ingested clips from the audit chain");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(bucket = %key, error = %e, "could not read what docks ingested from the audit chain; the clips are read from storage");
            }
        }
    }
    let swept = sweep::sweep(
        store.as_ref(),
        &planner,
        &opts,
        &ctx.draining,
        &sweep_audit,
        Some(&fence),
    )
    .await;
    let mut outcome = match swept {
        Ok(outcome) => outcome,
        // A store may answer the region proof (the bucket's region comes back even with
        // a refused signature) and then deny the listing: the credentials are refused.
        Err(sweep::SweepError::List {
            source: e @ StorageError::AccessDenied { .. },
            ..
        }) => return Ok(Applied::Refused(Refusal::AccessDenied(e.to_string()))),
        Err(source) => {
            return Err(Error::Sweep {
                bucket: key.clone(),
                source,
            });
        }
    };
    if !outcome.flags_recorded.is_empty() {
        ctx.flags_recorded
            .lock()
            .await
            .entry(key.clone())
            .or_default()
            .extend(outcome.flags_recorded.drain(..));
    }
    if let Some(h) = outcome.audit_head.clone() {
        audit_head = Some(h);
    }
    // Holds that came (or went) while the sweep ran: its fence acted on them, naming
    // their cases; their own records (created, changed, deleted) are written now, so
    // that every hold in force is in the chain even when it lived between two sweeps.
    if let Ok(holds) =
        super::dereference::naming(&ctx.client, &ns, &eb.name_any(), |h: &LegalHold| {
            &h.spec.bucket_ref.name
        })
        .await
    {
        let holds: Vec<&LegalHold> = holds.iter().collect();
        let (entries, seen) = policy_entries(ctx, &key, valid.policy, &holds).await;
        if !entries.is_empty() {
            if let Some(receipt) = sink.record(entries).await.map_err(audit)? {
                audit_head = Some((receipt.batch, receipt.head));
            }
            remember_recorded(ctx, &key, seen).await;
        }
    }

    // Integrity sweep (opt-in): re-read a sample, compare, record; never delete.
    let integrity = if ctx.settings.integrity_sample > 0 && !ctx.draining.is_cancelled() {
        let found = integrity_sweep(&audit_log, &sink, ctx, eb, &outcome.sample).await?;
        if let Some(h) = found.head.clone() {
            audit_head = Some(h);
        }
        Some(found)
    } else {
        None
    };
    // AccessRequests: their manifests, where what they cover may have changed.
    let answers =
        super::export::answer_all(ctx, eb, valid, store.as_ref(), &sink, &outcome).await?;
    let finished = Utc::now();
    info!(bucket = %key, moved = outcome.moved, held = outcome.held, released = outcome.released,
          deleted = outcome.deleted, flagged = outcome.flagged, failed = outcome.failed,
          interrupted = outcome.interrupted, unlisted = ?outcome.unlisted, "sweep finished");
    Ok(Applied::Swept(Box::new(SweepReport {
        audit: audit_condition(&audit_log, audit_head).await,
        answers,
        outcome,
        integrity,
        started,
        finished,
    })))
}

/// The storage of a bucket: built once, rebuilt when its configuration (spec, or a key
/// in its credentials Secret) changes.
async fn store_for(
    eb: &EvidenceBucket,
    cfg: &BucketConfig,
    ctx: &Context,
) -> Result<(Arc<dyn TierStore>, Arc<AuditLog>), Error> {
    let key = key_of(eb);
    let mut stores = ctx.stores.lock().await;
    // Compared in full, secret key included (its Debug form hides it).
    if let Some((_, store, audit)) = stores.get(&key).filter(|(built, _, _)| built == cfg) {
        return Ok((store.clone(), audit.clone()));
    }
    let audit = Arc::new(
        AuditLog::connect(cfg, audit_target(eb, ctx))
            .await
            .map_err(|source| Error::Audit {
                bucket: key.clone(),
                source,
            })?,
    );
    let store: Arc<dyn TierStore> = Arc::new(
        S3TierStore::new(
            cfg.clone(),
            ctx.settings.store_options.clone(),
            ctx.storage_metrics.clone(),
        )
        .await
        .map_err(|source| Error::Storage {
            bucket: key.clone(),
            source,
        })?,
    );
    // Listings through the catalogue, where the operator keeps one.
    let store: Arc<dyn TierStore> = match &ctx.catalogue {
        Some(catalogue) => Arc::new(CataloguedStore::new(
            store,
            catalogue
                .bucket(&key, cfg)
                .with_skip(audit_skips(eb, &ctx.settings.audit_prefix)),
        )),
        None => store,
    };
    stores.insert(key, (cfg.clone(), store.clone(), audit.clone()));
    Ok((store, audit))
}

/// Claim the bucket's storage locations: `Ok(Ok(claims taken over))` when every one is
/// this EvidenceBucket's, `Ok(Err(StorageClaimed))` when one overlaps another owner's.
async fn claim(
    eb: &EvidenceBucket,
    store: &dyn TierStore,
    ctx: &Context,
) -> Result<Result<Vec<Claim>, Refusal>, StorageError> {
    let owner = Owner {
        cluster: ctx.settings.cluster_name.clone(),
        namespace: eb.namespace().unwrap_or_default(),
        name: eb.name_any(),
        uid: eb.uid().unwrap_or_default(),
    };
    let take_over = eb
        .annotations()
        .get(TAKE_OVER_ANNOTATION)
        .map(|uid| TakeOver(uid.trim().to_string()))
        .filter(|t| !t.0.is_empty());
    Ok(match store.claim(&owner, take_over.as_ref()).await? {
        ClaimOutcome::Owned { taken_over } => Ok(taken_over),
        ClaimOutcome::ClaimedBy { claim, ours } => Err(Refusal::StorageClaimed {
            location: ours,
            owner: claim.owner.to_string(),
            uid: claim.owner.uid.clone(),
            since: claim.claimed_at.to_rfc3339(),
            annotation: TAKE_OVER_ANNOTATION,
        }),
    })
}

/// The audit record of a storage location taken over.
fn take_over_entry(eb: &EvidenceBucket, c: &Claim) -> crate::audit::Entry {
    let previous = c
        .taken_over_from
        .as_ref()
        .map_or_else(|| "an unknown owner".to_string(), ToString::to_string);
    crate::audit::Entry::policy(
        AuditAction::ClaimTakenOver,
        ObjectInfo {
            kind: "EvidenceBucket".into(),
            name: key_of(eb),
            uid: eb.uid(),
            generation: eb.metadata.generation,
            managers: Vec::new(),
            changed_by: None,
        },
        format!(
            "storage location {}/{} taken over from {previous} ({TAKE_OVER_ANNOTATION})",
            c.bucket, c.prefix
        ),
    )
}
