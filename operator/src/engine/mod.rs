//! The retention engine: given a policy, the active legal holds, a stream of clips and
//! `now`, decide for every clip what should happen and why. Pure: no I/O, no clock.
