//! The recording time an MP4 carries: the movie header's (`moov/mvhd`) creation time,
//! read with the `mp4-atom` crate. Only atom headers are read (the media data is skipped
//! by seeking) and only the `mvhd` inside `moov` is decoded, so a clip of several GiB
//! costs a few small reads. Never the file's mtime: a copy or a restore changes that.
//!
//! `minimal_mp4` writes the smallest well-formed file with a given creation time (ftyp,
//! mdat, moov with mvhd), for the tests and the demo's dock.

use std::{
    fs::File,
    io::{BufReader, Read, Seek, SeekFrom},
    path::Path,
};

use chrono::{DateTime, TimeDelta, Utc};
use mp4_atom::{Atom, Decode, Encode, FourCC, Ftyp, Header, Mdat, Moov, Mvhd, ReadFrom};

/// Seconds from the MP4 epoch (1904-01-01T00:00:00Z) to the Unix epoch.
const MP4_EPOCH_OFFSET: i64 = 2_082_844_800;

/// The largest `moov` atom read into memory (its sample tables grow with the clip's
/// length; an hour of video is a few MiB).
const MAX_MOOV: usize = 64 * 1024 * 1024;

/// The `mvhd` creation time of an MP4 file: `Ok(None)` when the file has none (no
/// `moov`, or a creation time of 0, "unknown"); `Err` when it is not a readable MP4.
pub fn creation_time(path: &Path) -> Result<Option<DateTime<Utc>>, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut r = BufReader::new(file);
    loop {
        let header = <Option<Header>>::read_from(&mut r)
            .map_err(|e| format!("reading an MP4 atom header: {e}"))?;
        let Some(header) = header else {
            return Ok(None);
        };
        let Some(size) = header.size else {
            // The atom runs to the end of the file: nothing after it.
            if header.kind == Moov::KIND {
                return Err("an open-ended moov atom".into());
            }
            return Ok(None);
        };
        if header.kind != Moov::KIND {
            r.seek(SeekFrom::Current(size as i64))
                .map_err(|e| format!("skipping a {} atom: {e}", header.kind))?;
            continue;
        }
        if size > MAX_MOOV {
            return Err(format!(
                "a moov atom of {size} bytes (more than {MAX_MOOV})"
            ));
        }
        let mut body = vec![0u8; size];
        r.read_exact(&mut body)
            .map_err(|e| format!("reading the moov atom: {e}"))?;
        return mvhd_time(&body);
    }
}

/// Find `mvhd` among the children of a `moov` body and convert its creation time.
fn mvhd_time(moov: &[u8]) -> Result<Option<DateTime<Utc>>, String> {
    let mut rest = moov;
    while rest.len() >= 8 {
        let header = Header::decode(&mut rest).map_err(|e| format!("a moov child: {e}"))?;
        let size = header.size.unwrap_or(rest.len());
        if size > rest.len() {
            return Err(format!(
                "a {} atom of {size} bytes in {} bytes",
                header.kind,
                rest.len()
            ));
        }
        let (child, after) = rest.split_at(size);
        if header.kind == Mvhd::KIND {
            let mut body = child;
            let mvhd = Mvhd::decode_body(&mut body).map_err(|e| format!("the mvhd atom: {e}"))?;
            return Ok(from_mp4_seconds(mvhd.creation_time));
        }
        rest = after;
    }
    Ok(None)
}

/// An MP4 time (seconds since 1904, UTC) as a time; `None` for 0 ("not set") or a
/// time before 1970 (a camera whose clock was never set).
pub fn from_mp4_seconds(secs: u64) -> Option<DateTime<Utc>> {
    let unix = i64::try_from(secs).ok()? - MP4_EPOCH_OFFSET;
    (secs != 0 && unix > 0)
        .then(|| DateTime::from_timestamp(unix, 0))
        .flatten()
}

/// A minimal well-formed MP4 (`ftyp`, `mdat` with `payload`, `moov` with an `mvhd`
/// created at `created`, or 0 for none): for tests and the demo's dock.
pub fn minimal_mp4(created: Option<DateTime<Utc>>, payload: &[u8]) -> Vec<u8> {
    let secs = created.map_or(0, |t| {
        u64::try_from(t.timestamp() + MP4_EPOCH_OFFSET).unwrap_or(0)
    });
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"isom"),
        minor_version: 512,
        compatible_brands: vec![FourCC::new(b"isom"), FourCC::new(b"mp41")],
    };
    let moov = Moov {
        mvhd: Mvhd {
            creation_time: secs,
            modification_time: secs,
            duration: 1000,
            ..Mvhd::default()
        },
        ..Moov::default()
    };
    let mut out = Vec::with_capacity(payload.len() + 256);
    let mdat = Mdat {
        data: payload.to_vec(),
    };
    // Encoding into a Vec cannot run out of room; an error here would be a bug in the
    // crate, and the caller's test would see a file without a creation time.
    let _ = ftyp.encode(&mut out);
    let _ = mdat.encode(&mut out);
    let _ = moov.encode(&mut out);
    out
}

/// The recording time is at most this far in the future of the store's clock (camera
/// clocks drift a little; a clip from tomorrow is refused).
pub const FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_creation_time_is_read_back() {
        let dir = std::env::temp_dir().join(format!("mp4-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = DateTime::parse_from_rfc3339("2026-03-01T14:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let with = dir.join("with.mp4");
        std::fs::write(&with, minimal_mp4(Some(t), &[7u8; 100_000])).unwrap();
        assert_eq!(creation_time(&with).unwrap(), Some(t));
        let without = dir.join("without.mp4");
        std::fs::write(&without, minimal_mp4(None, b"x")).unwrap();
        assert_eq!(creation_time(&without).unwrap(), None);
        let junk = dir.join("junk.mp4");
        std::fs::write(&junk, b"\x00\x00\x00\x10moovshort").unwrap();
        assert!(creation_time(&junk).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mp4_times_count_from_1904() {
        assert_eq!(from_mp4_seconds(0), None);
        assert_eq!(from_mp4_seconds(1), None);
        assert_eq!(
            from_mp4_seconds(2_082_844_800 + 86_400),
            DateTime::from_timestamp(86_400, 0)
        );
    }
}
