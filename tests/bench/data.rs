//! The synthetic clips: deterministic (the same clips for every tool and run), with a
//! key layout that lets tools which cannot read tags (rclone, s5cmd) select the same set
//! the operator selects by tag:
//!
//! ```text
//! <category>/<yyyy>/<mm>/<dd>/cam-<camera>/clip-<index>.mp4
//! ```
//!
//! Every clip also carries the rclone modification-time metadata (`x-amz-meta-mtime`,
//! Unix seconds) set to its recording time, so `rclone --min-age` selects by age as the
//! operator's policy does.

use aws_sdk_s3::{Client, primitives::ByteStream, types::ChecksumAlgorithm};
use chrono::{DateTime, TimeDelta, Utc};
use evidence_operator::api::clip::{
    Clip, META_SHA256, TAG_CAMERA, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT, Tag, Tier,
};
use evidence_operator::storage::tagging_query;
use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

/// A small deterministic generator (SplitMix64): no dependency, same clips every run.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// What the tools are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Delete every non-evidential clip older than 31 days (half the clips); the other
    /// half is recent evidence, which stays.
    Expire,
    /// Move every evidential clip older than 30 days from hot to cool (half the clips);
    /// the other half is recent evidence, which stays hot.
    Move,
}

impl Scenario {
    /// A stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Expire => "expire",
            Scenario::Move => "move",
        }
    }

    /// The key prefix that holds exactly the clips acted on (for rclone and s5cmd).
    pub fn acted_prefix(self) -> &'static str {
        match self {
            Scenario::Expire => "non-evidential/",
            Scenario::Move => "domestic-abuse/",
        }
    }
}

/// One clip to upload.
#[derive(Debug, Clone)]
pub struct SeedClip {
    /// The object key.
    pub key: String,
    /// The category tag.
    pub category: &'static str,
    /// The recording time.
    pub recorded: DateTime<Utc>,
    /// The camera number.
    pub camera: u32,
    /// Whether the scenario acts on this clip (deletes or moves it).
    pub acted: bool,
}

impl SeedClip {
    /// Clip `i` of a dataset, keyed `<category>/<yyyy/mm/dd>/cam-<camera>/clip-<i>.mp4`.
    pub fn new(
        i: usize,
        category: &'static str,
        recorded: DateTime<Utc>,
        camera: u32,
        acted: bool,
    ) -> Self {
        SeedClip {
            key: format!(
                "{category}/{}/cam-{camera:04}/clip-{i:07}.mp4",
                recorded.format("%Y/%m/%d")
            ),
            category,
            recorded,
            camera,
            acted,
        }
    }

    /// The S3 `Tagging` header value (query-encoded).
    pub fn tagging(&self) -> String {
        tagging_query([
            (TAG_CATEGORY, self.category.to_string()),
            (TAG_RECORDED_AT, self.recorded.to_rfc3339()),
            (TAG_CAMERA, format!("cam-{:04}", self.camera)),
            (TAG_OFFICER, format!("{}", 100_000 + self.camera * 7)),
        ])
    }
}

/// The clips of one scenario: `n` clips, every even one acted on.
pub fn dataset(scenario: Scenario, n: usize, now: DateTime<Utc>) -> Vec<SeedClip> {
    let mut rng = SplitMix::new(0x5EED ^ n as u64);
    (0..n)
        .map(|i| {
            let acted = i % 2 == 0;
            // Ages in days. Recent clips are at most 20 days old: with the operator's
            // clock two days ahead (the safety floor counts from upload) they are still
            // short of both 30 (cool after) and 31 (non-evidential retention).
            let (category, age_days) = match (scenario, acted) {
                (Scenario::Expire, true) => ("non-evidential", rng.range(33, 400)),
                (Scenario::Expire, false) => ("domestic-abuse", rng.range(1, 20)),
                (Scenario::Move, true) => ("domestic-abuse", rng.range(40, 400)),
                (Scenario::Move, false) => ("murder", rng.range(1, 20)),
            };
            let secs = i64::try_from(age_days * 86_400 + rng.range(0, 86_400)).unwrap_or(0);
            let recorded = now - TimeDelta::seconds(secs);
            let camera = u32::try_from(rng.range(0, 2000)).unwrap_or(0);
            SeedClip::new(i, category, recorded, camera, acted)
        })
        .collect()
}

/// Upload `clips` of `size` bytes each into `bucket`, `concurrency` at a time; with
/// `checksum`, each upload carries its full-object SHA-256 (`x-amz-checksum-sha256`), as
/// an uploader configured for evidence would send it; with `record`, the SHA-256 is also
/// recorded in the `evidence-sha256` user metadata (an uploader that hashes at ingest),
/// so that the operator needs no read of the clip before its first move.
pub async fn seed(
    client: &Client,
    bucket: &str,
    clips: &[SeedClip],
    size: usize,
    concurrency: usize,
    checksum: bool,
    record: bool,
) -> anyhow::Result<()> {
    stream::iter(clips)
        .map(|c| async move {
            let mut body = Vec::with_capacity(size);
            body.extend_from_slice(c.key.as_bytes());
            let mut rng = SplitMix::new(body.len() as u64 ^ u64::from(c.camera));
            while body.len() < size {
                body.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            body.truncate(size);
            let recorded = record.then(|| format!("{:x}", Sha256::digest(&body)));
            client
                .put_object()
                .bucket(bucket)
                .key(&c.key)
                .body(ByteStream::from(body))
                .tagging(c.tagging())
                .set_metadata(Some(
                    [("mtime".to_string(), c.recorded.timestamp().to_string())]
                        .into_iter()
                        .chain(recorded.map(|h| (META_SHA256.to_string(), h)))
                        .collect(),
                ))
                .set_checksum_algorithm(checksum.then_some(ChecksumAlgorithm::Sha256))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("seeding {bucket}/{}: {e:?}", c.key))
                .map(|_| ())
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Generated clips for planning alone (no storage): a realistic mix of categories, ages
/// and tiers, as the engine's criterion benchmark generates them.
pub fn planning_clips(n: usize, now: DateTime<Utc>) -> Vec<Clip> {
    let categories = [
        "non-evidential",
        "non-evidential",
        "non-evidential",
        "non-evidential",
        "domestic-abuse",
        "stop-and-search",
        "use-of-force",
        "mopi-group-3",
        "murder",
        "",
    ];
    let mut rng = SplitMix::new(7);
    (0..n)
        .map(|i| {
            let age = i64::try_from(rng.range(0, 8 * 365 * 86_400)).unwrap_or(0);
            let recorded = now - TimeDelta::seconds(age);
            let camera = rng.range(0, 2000);
            let mut tags = vec![
                Tag::new(TAG_RECORDED_AT, recorded.to_rfc3339()),
                Tag::new(TAG_CAMERA, format!("cam-{camera:04}")),
                Tag::new(TAG_OFFICER, format!("{}", rng.range(100_000, 999_999))),
            ];
            let category = categories[i % categories.len()];
            if !category.is_empty() {
                tags.push(Tag::new(TAG_CATEGORY, category));
            }
            let tier = match rng.range(0, 10) {
                0..=3 => Tier::Hot,
                4..=8 => Tier::Cool,
                _ => Tier::LegalHold,
            };
            Clip {
                key: format!("{category}/cam-{camera:04}/clip-{i:07}.mp4"),
                tier,
                version_id: None,
                size: rng.range(1_000_000, 4_000_000_000),
                storage_class: None,
                last_modified: recorded + TimeDelta::hours(8),
                tags,
                sha256: None,
                uploaded_at: None,
                legal_hold: tier == Tier::LegalHold,
                plain_headers: None,
            }
        })
        .collect()
}
