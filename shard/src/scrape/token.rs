//! The kubelet client's bearer token: inline, or read from a file that rotates (an in-cluster
//! service-account token is a projected volume the kubelet rewrites before the token expires).
//!
//! A token file is re-read the way client-go's cached file token source does it
//! (`k8s.io/client-go/transport/token_source.go`): the token read from the file counts as good
//! for one minute minus ten seconds of leeway, so the file is read again, when a request needs
//! the token, once the cached copy is older than [`REREAD_AFTER`]; a read that fails keeps the
//! token already held (and logs), and a kubelet answering 401 marks every token read before that
//! request as stale, so the next request reads the file at once. One difference: after a failed
//! read client-go tries again on every request, we after the next period (or the next 401), so a
//! vanished file logs once a period rather than once per kubelet per scrape.

use http::HeaderValue;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// How long a token read from its file is used before the file is read again: client-go's
/// period of one minute less its ten-second leeway.
pub const REREAD_AFTER: Duration = Duration::from_secs(50);

/// Why a token could not be had. Not worth retrying until the file changes.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading token file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("token in {0} is empty or not a valid header value")]
    Invalid(PathBuf),
}

/// Where the `Authorization: Bearer` header comes from.
#[derive(Debug)]
pub enum BearerToken {
    /// A token given inline (kubeconfig `token:`); never changes.
    Fixed(HeaderValue),
    /// A token file (kubeconfig `tokenFile:`, in-cluster service account), re-read as above.
    File(FileToken),
}

impl BearerToken {
    /// An inline token.
    pub fn fixed(token: &str) -> Result<BearerToken, TokenError> {
        header(token.trim())
            .map(BearerToken::Fixed)
            .ok_or(TokenError::Invalid(PathBuf::from("<inline>")))
    }

    /// A token file, read once now (so a missing or empty file is an error at start-up).
    pub fn file(path: &Path) -> Result<BearerToken, TokenError> {
        let value = read(path)?;
        Ok(BearerToken::File(FileToken {
            path: path.to_path_buf(),
            cached: Mutex::new(Cached {
                value,
                read_at: Instant::now(),
                stale: false,
            }),
        }))
    }

    /// The header to send now (re-reading a file token whose copy is stale).
    pub fn header(&self) -> HeaderValue {
        match self {
            BearerToken::Fixed(v) => v.clone(),
            BearerToken::File(f) => f.current(),
        }
    }

    /// A request sent at `sent` was refused with 401: a file token read before then is stale.
    pub fn refused(&self, sent: Instant) {
        if let BearerToken::File(f) = self {
            f.reset_older_than(sent);
        }
    }
}

#[derive(Debug)]
pub struct FileToken {
    path: PathBuf,
    cached: Mutex<Cached>,
}

#[derive(Debug)]
struct Cached {
    value: HeaderValue,
    /// When the file was last read.
    read_at: Instant,
    /// A kubelet refused a request sent after that read: read the file on the next request.
    stale: bool,
}

impl FileToken {
    fn current(&self) -> HeaderValue {
        let mut cached = self.cached.lock().expect("token lock");
        if !cached.stale && cached.read_at.elapsed() < REREAD_AFTER {
            return cached.value.clone();
        }
        match read(&self.path) {
            Ok(value) => {
                if value != cached.value {
                    tracing::info!(file = %self.path.display(), "kubelet bearer token re-read: it changed");
                }
                *cached = Cached {
                    value,
                    read_at: Instant::now(),
                    stale: false,
                };
            }
            // As client-go: keep using the token held, and try again on the next request.
            Err(e) => {
                cached.read_at = Instant::now();
                cached.stale = false;
                tracing::error!("unable to rotate the kubelet bearer token: {e}");
            }
        }
        cached.value.clone()
    }

    fn reset_older_than(&self, t: Instant) {
        let mut cached = self.cached.lock().expect("token lock");
        if cached.read_at < t {
            cached.stale = true;
        }
    }
}

fn header(token: &str) -> Option<HeaderValue> {
    if token.is_empty() {
        return None;
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn read(path: &Path) -> Result<HeaderValue, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    header(text.trim()).ok_or_else(|| TokenError::Invalid(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_token(contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_is_read_again_after_the_period() {
        let (_dir, path) = temp_token("old\n");
        let token = BearerToken::file(&path).unwrap();
        assert_eq!(token.header(), "Bearer old");
        std::fs::write(&path, "new").unwrap();
        tokio::time::advance(REREAD_AFTER - Duration::from_secs(1)).await;
        assert_eq!(
            token.header(),
            "Bearer old",
            "within the period the cached copy is used"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(token.header(), "Bearer new");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_makes_the_next_request_read_the_file() {
        let (_dir, path) = temp_token("old");
        let token = BearerToken::file(&path).unwrap();
        std::fs::write(&path, "new").unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        let sent = Instant::now();
        assert_eq!(token.header(), "Bearer old");
        token.refused(sent);
        assert_eq!(token.header(), "Bearer new");
        // A 401 for a request sent before the file was read again does not force another read.
        std::fs::write(&path, "newer").unwrap();
        token.refused(sent);
        assert_eq!(token.header(), "Bearer new");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_file_keeps_the_token_held() {
        let (_dir, path) = temp_token("old");
        let token = BearerToken::file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(REREAD_AFTER * 2).await;
        assert_eq!(token.header(), "Bearer old");
        std::fs::write(&path, "   ").unwrap();
        tokio::time::advance(REREAD_AFTER * 2).await;
        assert_eq!(token.header(), "Bearer old", "an empty file is not a token");
    }

    #[test]
    fn missing_or_empty_files_and_bad_tokens_are_errors() {
        assert!(BearerToken::file(Path::new("/nonexistent/token")).is_err());
        let (_dir, path) = temp_token("\n");
        assert!(matches!(BearerToken::file(&path), Err(TokenError::Invalid(_))));
        assert!(BearerToken::fixed("bad\ntoken").is_err());
        assert_eq!(BearerToken::fixed(" t ").unwrap().header(), "Bearer t");
    }
}
