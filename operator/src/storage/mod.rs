//! The storage layer: one small trait over the three tiers of an evidence bucket, and
//! its S3 implementation (verified moves, legal holds, batch deletes, region proof).
