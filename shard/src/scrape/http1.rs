//! One HTTP/1.1 `GET` over a kept-alive connection, and nothing else: what scraping a kubelet
//! needs. A general client (hyper's) keeps a write buffer, a request channel and a read buffer
//! alive with every idle connection, about 32 KiB each; a replica keeps one connection per
//! kubelet it scrapes, thousands of them. Here an idle connection is its TLS stream alone: the
//! read buffer lives only for the length of one exchange.
//!
//! Bodies come with `Content-Length`, `Transfer-Encoding: chunked` (what Go's `net/http` sends
//! for a body it did not measure, the kubelet's case) or, without either, up to the end of the
//! connection. Everything read is bounded: the head by [`MAX_HEAD_BYTES`], the body by the
//! caller's cap.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head (status line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 64;
/// Bytes asked of the socket per read; the read buffer grows in steps of this size.
const READ_CHUNK: usize = 16 * 1024;
/// Longest chunk-size line (hex digits, extensions) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection failed before any byte of the answer arrived: on a reused connection the
    /// server most likely closed it while idle, and the request may be sent again on a new one.
    #[error("connection closed before the answer: {0}")]
    NoAnswer(std::io::Error),
    #[error("reading the answer: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed in the middle of the answer")]
    Truncated,
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

/// An answer to a `GET`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body of a 200 answer; empty otherwise (its body is not read).
    pub body: Bytes,
    /// Whether the connection may carry the next request.
    pub reusable: bool,
}

/// The bytes of `GET path` to `authority` with an optional `Authorization` value.
pub fn request(authority: &str, path: &str, authorization: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + authorization.map_or(0, <[u8]>::len));
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ha-metrics-server\r\nAccept: text/plain, */*\r\n");
    if let Some(value) = authorization {
        out.extend_from_slice(b"Authorization: ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Sends `request` and reads the answer; a 200 answer's body is read whole, at most
/// `max_body` bytes.
pub async fn exchange<S>(stream: &mut S, request: &[u8], max_body: usize) -> Result<Answer, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = async {
        stream.write_all(request).await?;
        stream.flush().await
    }
    .await
    {
        return Err(ExchangeError::NoAnswer(e));
    }
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let head = read_head(stream, &mut buf).await?;
    if head.status != 200 {
        // The body of an error is not needed; the connection is not reused, so it need not be
        // read either.
        return Ok(Answer {
            status: head.status,
            body: Bytes::new(),
            reusable: false,
        });
    }
    let rest = buf.split_off(head.length);
    let (body, ended_with_connection) = match head.framing {
        Framing::Length(n) if n > max_body as u64 => return Err(ExchangeError::TooLarge(max_body)),
        Framing::Length(n) => (read_length(stream, rest, n as usize).await?, false),
        Framing::Chunked => (read_chunked(stream, rest, max_body).await?, false),
        Framing::UntilClose => (read_to_end(stream, rest, max_body).await?, true),
    };
    Ok(Answer {
        status: head.status,
        body,
        reusable: head.keep_alive && !ended_with_connection,
    })
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct Head {
    status: u16,
    /// Bytes of the head in the buffer.
    length: usize,
    framing: Framing,
    keep_alive: bool,
}

/// Reads until `buf` holds a whole head; returns it parsed (the body's first bytes follow it in
/// `buf`).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Result<Head, ExchangeError> {
    loop {
        if let Some(head) = parse_head(buf)? {
            return Ok(head);
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(ExchangeError::Malformed(format!(
                "response head over {MAX_HEAD_BYTES} bytes"
            )));
        }
        match read_more(stream, buf).await {
            Ok(0) if buf.is_empty() => {
                return Err(ExchangeError::NoAnswer(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(0) => return Err(ExchangeError::Truncated),
            Ok(_) => {}
            Err(e) if buf.is_empty() => return Err(ExchangeError::NoAnswer(e)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Appends what one read gives to `buf`; returns how many bytes.
async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let read = stream.read(&mut buf[start..]).await;
    buf.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}

/// The head, if `buf` holds all of it.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ExchangeError::Malformed(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value
                .parse::<u64>()
                .map_err(|_| ExchangeError::Malformed(format!("Content-Length {value:?}")))?;
            framing = Framing::Length(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` is ever last; anything else (a compression we did not ask for) is
            // not something this client decodes.
            if !value.to_ascii_lowercase().ends_with("chunked") {
                return Err(ExchangeError::Malformed(format!("Transfer-Encoding {value:?}")));
            }
            framing = Framing::Chunked;
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.split(',').any(|t| t.trim() == "close") {
                keep_alive = false;
            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Some(Head {
        status,
        length,
        framing,
        keep_alive,
    }))
}

/// A body of exactly `length` bytes, of which `first` already arrived.
async fn read_length<S: AsyncRead + Unpin>(
    stream: &mut S,
    first: Vec<u8>,
    length: usize,
) -> Result<Bytes, ExchangeError> {
    if first.len() > length {
        return Err(ExchangeError::Malformed("more bytes than Content-Length".into()));
    }
    let mut body = BytesMut::with_capacity(length);
    body.extend_from_slice(&first);
    while body.len() < length {
        let want = (length - body.len()).min(READ_CHUNK);
        let start = body.len();
        body.resize(start + want, 0);
        let n = stream.read(&mut body[start..]).await?;
        body.truncate(start + n);
        if n == 0 {
            return Err(ExchangeError::Truncated);
        }
    }
    Ok(body.freeze())
}

/// A body that ends with the connection, of which `first` already arrived.
async fn read_to_end<S: AsyncRead + Unpin>(
    stream: &mut S,
    first: Vec<u8>,
    max_body: usize,
) -> Result<Bytes, ExchangeError> {
    let mut body = first;
    loop {
        if body.len() > max_body {
            return Err(ExchangeError::TooLarge(max_body));
        }
        if read_more(stream, &mut body).await? == 0 {
            return Ok(Bytes::from(body));
        }
    }
}

/// A chunked body, of which `first` already arrived.
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    first: Vec<u8>,
    max_body: usize,
) -> Result<Bytes, ExchangeError> {
    let mut decoder = Chunked::new(max_body);
    let mut body = BytesMut::with_capacity(first.len().max(READ_CHUNK) * 2);
    let mut input = first;
    loop {
        let consumed = decoder.feed(&input, &mut body)?;
        input.drain(..consumed);
        if decoder.done() {
            if !input.is_empty() {
                return Err(ExchangeError::Malformed("bytes after the last chunk".into()));
            }
            return Ok(body.freeze());
        }
        if read_more(stream, &mut input).await? == 0 {
            return Err(ExchangeError::Truncated);
        }
    }
}

/// Decodes `Transfer-Encoding: chunked`: chunk-size lines, data, and the trailer section after
/// the last (zero) chunk, which is read and dropped.
#[derive(Debug)]
pub struct Chunked {
    state: ChunkState,
    max_body: usize,
    written: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes of the current chunk are left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the zero chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

impl Chunked {
    pub fn new(max_body: usize) -> Chunked {
        Chunked {
            state: ChunkState::Size,
            max_body,
            written: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what it can of `input` into `out`; returns how many bytes of `input` it used
    /// (the rest is an incomplete line, to be offered again with more bytes).
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, ExchangeError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                ChunkState::Done => return Ok(at),
                ChunkState::Data(left) => {
                    let take = left.min(rest.len());
                    if take == 0 {
                        return Ok(at);
                    }
                    out.extend_from_slice(&rest[..take]);
                    at += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ExchangeError::Malformed("chunk data not followed by CRLF".into()));
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Size | ChunkState::Trailers => {
                    let Some(line) = line(rest)? else {
                        return Ok(at);
                    };
                    at += line.len() + 2;
                    self.state = match self.state {
                        ChunkState::Size => self.after_size_line(line)?,
                        _ if line.is_empty() => ChunkState::Done,
                        _ => ChunkState::Trailers,
                    };
                }
            }
        }
    }

    fn after_size_line(&mut self, line: &[u8]) -> Result<ChunkState, ExchangeError> {
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let digits = std::str::from_utf8(digits).unwrap_or("").trim();
        let size = usize::from_str_radix(digits, 16)
            .map_err(|_| ExchangeError::Malformed(format!("chunk size {digits:?}")))?;
        if size == 0 {
            return Ok(ChunkState::Trailers);
        }
        self.written = self.written.saturating_add(size);
        if self.written > self.max_body {
            return Err(ExchangeError::TooLarge(self.max_body));
        }
        Ok(ChunkState::Data(size))
    }
}

/// The line at the start of `input` without its CRLF, if it is complete.
fn line(input: &[u8]) -> Result<Option<&[u8]>, ExchangeError> {
    match memchr::memchr(b'\n', input) {
        Some(end) if end > 0 && input[end - 1] == b'\r' => Ok(Some(&input[..end - 1])),
        Some(_) => Err(ExchangeError::Malformed("line not ended by CRLF".into())),
        None if input.len() > MAX_CHUNK_LINE => Err(ExchangeError::Malformed("chunk line too long".into())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
