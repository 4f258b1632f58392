//! One request across the seam between the HTTP layer (hyper, which speaks HTTP/2 and HTTP/1.1
//! and sends GOAWAY) and the application (actix-web's `App`, which routes, authenticates and
//! answers): a hyper request becomes an `actix_http::Request`, the application's response
//! streams back as a hyper body, chunk by chunk as actix produces it.
//!
//! The connection's client certificate chain rides in the request's extensions
//! ([`crate::auth::verifier::ClientChain`]), where the web layer looks for it.

use crate::auth::verifier::ClientChain;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_service::Service;
use actix_service::boxed::BoxService;
use actix_web::HttpMessage;
use actix_web::dev::ServiceResponse;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Largest request body read (the Metrics API takes none; this bounds what a client can make
/// the server buffer before the application refuses the method).
pub const MAX_REQUEST_BODY_BYTES: usize = 1024 * 1024;

/// The application as one worker runs it.
pub type AppService = BoxService<actix_http::Request, ServiceResponse<BoxBody>, actix_web::Error>;

/// What the connection knows about its peer.
#[derive(Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub chain: Arc<ClientChain>,
}

/// Runs `req` through the application; never fails (errors become responses).
pub async fn call(app: &AppService, req: http::Request<Incoming>, peer: &Peer) -> http::Response<ActixBody> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return plain(http::StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading a request body");
            return plain(http::StatusCode::BAD_REQUEST, "could not read the request body\n");
        }
    };
    let request = match to_actix(&parts, body, peer) {
        Some(r) => r,
        None => return plain(http::StatusCode::BAD_REQUEST, "malformed request\n"),
    };
    let response = match app.call(request).await {
        Ok(r) => r.into_parts().1,
        Err(e) => e.error_response(),
    };
    from_actix(response)
}

/// The request as actix sees it: same method, URI, version, headers; the body in memory.
fn to_actix(parts: &http::request::Parts, body: Bytes, peer: &Peer) -> Option<actix_http::Request> {
    let mut req = actix_http::Request::with_payload(actix_http::Payload::from(body));
    let head = req.head_mut();
    head.method = actix_http::Method::from_bytes(parts.method.as_str().as_bytes()).ok()?;
    head.uri = parts.uri.to_string().parse().ok()?;
    head.version = match parts.version {
        http::Version::HTTP_2 => actix_http::Version::HTTP_2,
        http::Version::HTTP_10 => actix_http::Version::HTTP_10,
        _ => actix_http::Version::HTTP_11,
    };
    head.peer_addr = Some(peer.addr);
    for (name, value) in &parts.headers {
        let name = actix_http::header::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
        let value = actix_http::header::HeaderValue::from_bytes(value.as_bytes()).ok()?;
        head.headers.append(name, value);
    }
    req.extensions_mut().insert(peer.chain.clone());
    Some(req)
}

fn from_actix(response: actix_web::HttpResponse<BoxBody>) -> http::Response<ActixBody> {
    let status =
        http::StatusCode::from_u16(response.status().as_u16()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = http::HeaderMap::with_capacity(response.headers().len());
    for (name, value) in response.headers() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) && !is_connection_header(&n)
        {
            headers.append(n, v);
        }
    }
    let mut out = http::Response::new(ActixBody(response.into_body()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Hop-by-hop headers HTTP/2 forbids; hyper manages them itself for HTTP/1.1.
fn is_connection_header(name: &http::HeaderName) -> bool {
    use http::header::{CONNECTION, TE, TRANSFER_ENCODING, UPGRADE};
    name == CONNECTION || name == TRANSFER_ENCODING || name == UPGRADE || name == TE || name.as_str() == "keep-alive"
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<ActixBody> {
    let mut out = http::Response::new(ActixBody(BoxBody::new(text)));
    *out.status_mut() = status;
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out
}

/// An actix response body read by hyper.
pub struct ActixBody(BoxBody);

impl hyper::body::Body for ActixBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.0).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e.to_string())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0.size(), BodySize::None | BodySize::Sized(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.0.size() {
            BodySize::None => SizeHint::with_exact(0),
            BodySize::Sized(n) => SizeHint::with_exact(n),
            BodySize::Stream => SizeHint::default(),
        }
    }
}
