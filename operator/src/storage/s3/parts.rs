//! Where the bytes of an upload come from: a file read part by part off the async
//! threads, or a stream (another object's GET, for an export copy) that the first upload
//! of it takes.

use std::{path::PathBuf, sync::Arc};

use futures::StreamExt;

use crate::storage::{ByteChunks, StorageError};

/// A stream of bytes that the first upload of it takes (a clip body is `Clone`; a
/// stream cannot be read twice).
#[derive(Clone)]
pub struct StreamBody(pub(super) Arc<tokio::sync::Mutex<Option<ByteChunks>>>);

impl std::fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamBody")
    }
}

/// Where the parts of a multipart upload come from, read in order.
pub(super) enum Parts {
    /// A file, read off the async threads.
    File {
        file: Option<std::fs::File>,
        path: PathBuf,
    },
    /// A stream of bytes (another object's GET).
    Stream {
        body: ByteChunks,
        pending: bytes::BytesMut,
    },
}

impl Parts {
    pub(super) fn open(path: &std::path::Path) -> Result<Parts, StorageError> {
        let file = std::fs::File::open(path)
            .map_err(|e| StorageError::InvalidInput(format!("reading {}: {e}", path.display())))?;
        Ok(Parts::File {
            file: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// The next `len` bytes.
    pub(super) async fn read(&mut self, len: usize) -> Result<Vec<u8>, StorageError> {
        match self {
            Parts::File { file, path } => {
                let read_err = |e: String| {
                    StorageError::InvalidInput(format!("reading {}: {e}", path.display()))
                };
                let mut f = file
                    .take()
                    .ok_or_else(|| read_err("read after a failure".into()))?;
                let (f, data) = tokio::task::spawn_blocking(move || {
                    use std::io::Read;
                    let mut data = vec![0u8; len];
                    f.read_exact(&mut data).map(|()| (f, data))
                })
                .await
                .map_err(|e| read_err(e.to_string()))?
                .map_err(|e| read_err(e.to_string()))?;
                *file = Some(f);
                Ok(data)
            }
            Parts::Stream { body, pending } => {
                while pending.len() < len {
                    match body.next().await {
                        Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                        Some(Err(e)) => return Err(e),
                        None => {
                            return Err(StorageError::InvalidInput(format!(
                                "the source ended {} bytes short of a part",
                                len - pending.len()
                            )));
                        }
                    }
                }
                Ok(pending.split_to(len).to_vec())
            }
        }
    }
}
