//! Large response bodies handed to actix in pieces. actix-http copies a body into the
//! connection's write buffer until that buffer reaches its high-water mark, so a 50 MiB LIST
//! passed as one chunk is copied whole into a second 50 MiB buffer before the first byte goes
//! out. Pieces of [`CHUNK`] bytes (views of the one body, not copies) keep that buffer small.

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Size of the pieces; bodies up to this size are sent as one.
pub const CHUNK: usize = 64 * 1024;

/// A body of known length (sent with `Content-Length`) yielded in [`CHUNK`]-byte views.
pub struct Pieces {
    size: u64,
    rest: Bytes,
}

impl Pieces {
    pub fn new(body: Vec<u8>) -> Self {
        Self {
            size: body.len() as u64,
            rest: Bytes::from(body),
        }
    }
}

impl MessageBody for Pieces {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(self.rest.split_to(n))))
    }
}

/// A 200 response with a possibly large body.
pub fn list(content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::Ok().content_type(content_type.to_string()).take();
    if body.len() > CHUNK {
        response.body(Pieces::new(body))
    } else {
        response.body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn pieces_add_up_to_the_body_with_its_length() {
        let body: Vec<u8> = (0..(2 * CHUNK + 5)).map(|i| i as u8).collect();
        let response = list("application/json", body.clone());
        assert_eq!(response.body().size(), BodySize::Sized(body.len() as u64));
        let got = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        assert_eq!(got, body);
    }
}
