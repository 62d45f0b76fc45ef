//! Request bodies for the synchronous store: the body is pumped through a small bounded channel
//! into a blocking task that reads it as `std::io::Read`, so memory stays at a few chunks
//! whatever the size, and the store's verified writer does the rest.

use std::io::{self, Read};

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult, Code};

/// Chunks in flight between the connection and the blocking writer.
const CHANNEL_CHUNKS: usize = 8;

/// Runs `work` on a blocking thread with the body as its reader, at most `limit` bytes of it
/// (more is an I/O error the store reports as a size mismatch).
pub(crate) async fn with_reader<T: Send + 'static>(
    body: Body,
    limit: u64,
    work: impl FnOnce(&mut dyn Read) -> T + Send + 'static,
) -> ApiResult<T> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        work(&mut reader)
    });
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let item = match chunk {
            Ok(bytes) => {
                total += bytes.len() as u64;
                if total > limit {
                    Err(io::Error::other("request body over the limit"))
                } else {
                    Ok(bytes)
                }
            }
            Err(e) => Err(io::Error::other(e)),
        };
        let stop = item.is_err();
        // The writer stopped reading (it failed, or it has all it wanted).
        if tx.send(item).await.is_err() || stop {
            break;
        }
    }
    drop(tx);
    task.await.map_err(|_| ApiError::internal())
}

/// Reads a whole body of at most `limit` bytes into memory (manifests).
pub(crate) async fn read_limited(body: Body, limit: u64) -> ApiResult<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                Code::SizeInvalid,
                "the request body broke off",
            )
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                format!("the body is larger than the limit of {limit} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
