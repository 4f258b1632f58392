//! Caps on what a request may carry, checked before authentication so that no oversized
//! input reaches a parser or a review cache: header bytes (431), path and query length (414).
//! The selector inside a query has its own cap (`apimachinery::selector::MAX_SELECTOR_LEN`, 400) and
//! concurrency has `--max-requests-inflight` (429).

use crate::api::error::ApiError;
use crate::query::params::MAX_QUERY_LEN;
use actix_web::HttpRequest;

/// Most bytes of all header names and values together.
pub const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;
/// Longest request path, in bytes (Kubernetes names are at most 253 bytes; four of them and
/// the API prefix fit many times over).
pub const MAX_PATH_LEN: usize = 4096;

/// The first cap `req` breaks, if any.
pub fn check(req: &HttpRequest) -> Result<(), ApiError> {
    let header_bytes: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if header_bytes > MAX_REQUEST_HEADER_BYTES {
        return Err(ApiError::RequestHeaderFieldsTooLarge {
            message: format!("request headers longer than {MAX_REQUEST_HEADER_BYTES} bytes"),
        });
    }
    if req.path().len() > MAX_PATH_LEN {
        return Err(ApiError::RequestUriTooLong {
            message: format!("path longer than {MAX_PATH_LEN} bytes"),
        });
    }
    if req.query_string().len() > MAX_QUERY_LEN {
        return Err(ApiError::RequestUriTooLong {
            message: format!("query string longer than {MAX_QUERY_LEN} bytes"),
        });
    }
    Ok(())
}
