//! Peer bodies are bincode (`bincode::serialize`, fixed-width integers), `application/x-bincode`,
//! and size-capped both ways. [`Bincode`] is the actix-web extractor for requests and the
//! responder for answers; the client in `client.rs` uses the same [`encode`] and [`decode`].
//!
//! Every input is bounded: a request over the cap gets 413 without being buffered, a body that
//! does not decode gets 400, and decoding never trusts a length prefix beyond the body's size.

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};
use bincode::Options;
use bytes::BytesMut;
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest response body a peer sends or accepts. The biggest answer is a fan-out query: an
/// all-namespace pod list of a 150,000-pod cluster is about 200 bytes per pod in bincode (two
/// name strings, timestamp, window, one or two containers with name, CPU and memory), so about
/// 30 MB when one owner holds nearly every shard (a lone survivor, or quorum loss). 64 MiB is
/// twice that, and small next to the replica's memory budget.
pub const MAX_PEER_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Largest request body a peer route accepts unless a [`BincodeConfig`] says otherwise. Requests
/// are small: a query is its selectors, Raft messages carry the `ShardMap` (kilobytes at 256
/// shards), and replication and handoff move one shard's points at a time (a shard of a
/// 5,000-node cluster is about 20 nodes, 600 pods: well under 1 MiB). 16 MiB leaves room for
/// batching without letting one request pin much memory.
pub const MAX_PEER_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The content type of every peer body.
pub const CONTENT_TYPE: &str = "application/x-bincode";

/// The most buffer reserved up front from a request's `Content-Length`; beyond it the buffer
/// grows as bytes actually arrive, so a false length costs nothing.
const INITIAL_BUFFER: usize = 256 * 1024;

/// A bincode body: extract it from a request, or return it as a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bincode<T>(pub T);

impl<T> Bincode<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Bincode<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A route's request size cap, as app data (`web::resource(..).app_data(BincodeConfig::limit(n))`);
/// [`MAX_PEER_REQUEST_BYTES`] when absent.
#[derive(Debug, Clone, Copy)]
pub struct BincodeConfig {
    limit: usize,
}

impl BincodeConfig {
    pub fn limit(limit: usize) -> BincodeConfig {
        BincodeConfig { limit }
    }
}

impl Default for BincodeConfig {
    fn default() -> Self {
        BincodeConfig::limit(MAX_PEER_REQUEST_BYTES)
    }
}

/// Why a peer body was refused. Answered in plain text; the caller's bug or a broken peer, so
/// not worth retrying unchanged (except `Payload`, a connection that broke mid-body).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading request body: {0}")]
    Payload(#[from] PayloadError),
    #[error("request body is not valid bincode for this route: {0}")]
    Decode(bincode::Error),
    #[error("body to send larger than {limit} bytes")]
    EncodeTooLarge { limit: usize },
    #[error("encoding response: {0}")]
    Encode(bincode::Error),
}

impl ResponseError for CodecError {
    fn status_code(&self) -> StatusCode {
        match self {
            CodecError::TooLarge { .. } | CodecError::Payload(PayloadError::Overflow) => StatusCode::PAYLOAD_TOO_LARGE,
            CodecError::Payload(_) | CodecError::Decode(_) => StatusCode::BAD_REQUEST,
            CodecError::EncodeTooLarge { .. } | CodecError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Bincode<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BincodeConfig>().copied().unwrap_or_default().limit;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let payload = payload.take();
        Box::pin(async move {
            let body = read_capped(payload, declared, limit).await?;
            let value = decode(&body).map_err(CodecError::Decode)?;
            Ok(Bincode(value))
        })
    }
}

/// Reads the whole body, refusing it as soon as it is known to exceed `limit`: from the declared
/// length before reading anything, else when the bytes received pass it.
async fn read_capped(mut payload: Payload, declared: Option<u64>, limit: usize) -> Result<BytesMut, CodecError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(CodecError::TooLarge { limit });
    }
    let reserve = declared.map_or(0, |n| n as usize).min(INITIAL_BUFFER);
    let mut body = BytesMut::with_capacity(reserve);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl<T: Serialize> Responder for Bincode<T> {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        match encode(&self.0, MAX_PEER_BODY_BYTES) {
            Ok(bytes) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(bytes),
            Err(e) => {
                tracing::error!(error = %e, "peer response not sent");
                e.error_response()
            }
        }
    }
}

/// Encodes with `bincode::serialize`, refusing (before allocating) a value over `limit` bytes.
pub fn encode<T: Serialize + ?Sized>(value: &T, limit: usize) -> Result<Vec<u8>, CodecError> {
    let size = bincode::serialized_size(value).map_err(CodecError::Encode)?;
    if size > limit as u64 {
        return Err(CodecError::EncodeTooLarge { limit });
    }
    bincode::serialize(value).map_err(CodecError::Encode)
}

/// Decodes what `bincode::serialize` wrote. Stricter than `bincode::deserialize`: no length
/// prefix may claim more bytes than the body holds, and trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(bytes.len() as u64)
        .reject_trailing_bytes()
        .deserialize(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        values: Vec<u64>,
        window: Option<i64>,
    }

    #[test]
    fn decode_reads_what_bincode_serialize_wrote() {
        let sample = Sample {
            name: "kube-system/coredns".into(),
            values: vec![1, u64::MAX],
            window: Some(15),
        };
        let bytes = bincode::serialize(&sample).unwrap();
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample);
        assert_eq!(encode(&sample, 1024).unwrap(), bytes);
    }

    #[test]
    fn decode_refuses_garbage_trailing_bytes_and_lying_lengths() {
        assert!(decode::<Sample>(b"").is_err());
        assert!(decode::<Sample>(b"not bincode at all, not at all").is_err());
        let mut bytes = bincode::serialize(&vec![1u64, 2]).unwrap();
        bytes.push(0);
        assert!(decode::<Vec<u64>>(&bytes).is_err());
        // A string claiming 2^62 bytes must fail on the length, not try to allocate it.
        let lying = (1u64 << 62).to_le_bytes();
        assert!(decode::<String>(&lying).is_err());
        assert!(decode::<Vec<u8>>(&lying).is_err());
    }

    #[test]
    fn encode_refuses_values_over_the_cap() {
        let err = encode(&vec![0u64; 16], 64).unwrap_err();
        assert!(matches!(err, CodecError::EncodeTooLarge { limit: 64 }));
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
