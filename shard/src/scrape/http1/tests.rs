use super::*;
use tokio::io::AsyncWriteExt;

/// Runs one exchange against a peer that answers `answer` and then closes the connection
/// (framed bodies must not read past their end).
async fn exchange_with(answer: &[u8], max_body: usize) -> (Result<Answer, ExchangeError>, Vec<u8>) {
    let (mut client, mut server) = tokio::io::duplex(1 << 20);
    let answer = answer.to_vec();
    let server = tokio::spawn(async move {
        let mut request = vec![0u8; 4096];
        let n = server.read(&mut request).await.unwrap();
        request.truncate(n);
        server.write_all(&answer).await.unwrap();
        request
    });
    let req = request("10.0.0.1:10250", "/metrics/resource", Some(b"Bearer t"));
    let result = exchange(&mut client, &req, max_body).await;
    (result, server.await.unwrap())
}

fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn the_request_names_host_path_and_token() {
    let (answer, request) = exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100).await;
    let text = String::from_utf8(request).unwrap();
    assert!(
        text.starts_with("GET /metrics/resource HTTP/1.1\r\nHost: 10.0.0.1:10250\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nAuthorization: Bearer t\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
    let answer = answer.unwrap();
    assert_eq!(
        (answer.status, &answer.body[..], answer.reusable),
        (200, &b"ok"[..], true)
    );
}

#[tokio::test]
async fn a_chunked_body_is_joined_and_the_connection_kept() {
    let body: Vec<u8> = (0..50_000).map(|i| b"abcdefghij\n"[i % 11]).collect();
    for size in [1, 7, 4096, 16_384, 60_000] {
        let (answer, _) = exchange_with(&chunked(&body, size), 1 << 20).await;
        let answer = answer.unwrap();
        assert_eq!(answer.body.len(), body.len(), "chunks of {size}");
        assert!(answer.body[..] == body[..], "chunks of {size}");
        assert!(answer.reusable);
    }
}

#[test]
fn the_chunk_decoder_takes_its_input_in_any_split() {
    let body = b"the kubelet's resource metrics\n".repeat(20);
    let wire = chunked(&body, 37);
    let start = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let wire = &wire[start..];
    for split in 0..wire.len() {
        let mut decoder = Chunked::new(1 << 20);
        let mut out = BytesMut::new();
        let mut pending = wire[..split].to_vec();
        let used = decoder.feed(&pending, &mut out).unwrap();
        pending.drain(..used);
        pending.extend_from_slice(&wire[split..]);
        let used = decoder.feed(&pending, &mut out).unwrap();
        assert_eq!(used, pending.len(), "split at {split}");
        assert!(decoder.done(), "split at {split}");
        assert_eq!(&out[..], &body[..], "split at {split}");
    }
}

#[tokio::test]
async fn chunk_extensions_and_trailers_are_skipped() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;name=v\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let (answer, _) = exchange_with(wire, 100).await;
    assert_eq!(&answer.unwrap().body[..], b"abc");
}

#[tokio::test]
async fn a_body_without_length_ends_with_the_connection_which_is_not_reused() {
    let (answer, _) = exchange_with(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", 100).await;
    let answer = answer.unwrap();
    assert_eq!(&answer.body[..], b"until the end");
    assert!(!answer.reusable);
}

#[tokio::test]
async fn connection_close_and_http_1_0_are_not_reused() {
    let (answer, _) = exchange_with(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        100,
    )
    .await;
    assert!(!answer.unwrap().reusable);
    let (answer, _) = exchange_with(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 100).await;
    assert!(!answer.unwrap().reusable);
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_however_framed() {
    let (answer, _) = exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100).await;
    assert!(matches!(answer, Err(ExchangeError::TooLarge(100))), "{answer:?}");
    let (answer, _) = exchange_with(&chunked(&[b'x'; 101], 10), 100).await;
    assert!(matches!(answer, Err(ExchangeError::TooLarge(100))), "{answer:?}");
    let mut endless = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    endless.extend_from_slice(&[b'x'; 101]);
    let (answer, _) = exchange_with(&endless, 100).await;
    assert!(matches!(answer, Err(ExchangeError::TooLarge(100))), "{answer:?}");
}

#[tokio::test]
async fn an_error_status_is_returned_without_its_body_and_the_connection_dropped() {
    let (answer, _) = exchange_with(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nUnauthorized",
        100,
    )
    .await;
    let answer = answer.unwrap();
    assert_eq!((answer.status, answer.body.len(), answer.reusable), (401, 0, false));
}

#[tokio::test]
async fn a_connection_closed_before_any_answer_may_be_retried_one_closed_midway_not() {
    let (answer, _) = exchange_with(b"", 100).await;
    assert!(matches!(answer, Err(ExchangeError::NoAnswer(_))), "{answer:?}");
    let (answer, _) = exchange_with(b"HTTP/1.1 200 OK\r\nContent-Le", 100).await;
    assert!(matches!(answer, Err(ExchangeError::Truncated)), "{answer:?}");
    let (answer, _) = exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100).await;
    assert!(matches!(answer, Err(ExchangeError::Truncated)), "{answer:?}");
    let (answer, _) = exchange_with(&chunked(b"abcdef", 3)[..60], 100).await;
    assert!(matches!(answer, Err(ExchangeError::Truncated)), "{answer:?}");
}

#[tokio::test]
async fn garbage_gets_a_clear_error() {
    for wire in [
        &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    ] {
        let (answer, _) = exchange_with(wire, 100).await;
        assert!(matches!(answer, Err(ExchangeError::Malformed(_))), "{answer:?}");
    }
}

#[tokio::test]
async fn an_endless_head_is_cut_at_its_limit() {
    let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
    while wire.len() < MAX_HEAD_BYTES + 100 {
        wire.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (answer, _) = exchange_with(&wire, 100).await;
    assert!(matches!(answer, Err(ExchangeError::Malformed(_))), "{answer:?}");
}
