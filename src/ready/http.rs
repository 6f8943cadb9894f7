//! The `http` probe: one `GET` to `127.0.0.1:PORT`, ready on 2xx or 3xx.
//!
//! Deliberately minimal: HTTP/1.1 over plain TCP, one request per
//! connection, only the status line looked at. The app answering is what is
//! asked, not what it answers with, so no body, header or redirect is followed.
//! Everything the app sends back is untrusted: at most [`MAX_HEAD`] bytes are
//! read to find the status line, and the whole exchange is bounded by the
//! caller's timeout, so a hostile or stuck app costs one socket for that long.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The most bytes read while looking for the end of the status line.
pub const MAX_HEAD: usize = 4096;

/// The most bytes of the rest of a response read (and thrown away) after the
/// answer is known, so that the app can finish writing before the connection
/// closes instead of meeting a reset.
const MAX_DRAIN: usize = 64 * 1024;

/// Whether `GET PATH` on `127.0.0.1:PORT` answers 2xx or 3xx within `timeout`.
///
/// `false` for anything else: an invalid path (see [`valid_path`]), port 0, a
/// refused or reset connection, a timeout, a malformed or overlong status line.
pub async fn get_ok(port: u16, path: &str, timeout: Duration) -> bool {
    if port == 0 || !valid_path(path) {
        return false;
    }
    let deadline = Instant::now() + timeout;
    match timeout_at(deadline, exchange(port, path)).await {
        Ok(Ok((ok, mut stream))) => {
            // The answer is in; draining is a courtesy bounded by the same deadline.
            let _ = timeout_at(deadline, drain(&mut stream)).await;
            ok
        }
        Ok(Err(_)) | Err(_) => false,
    }
}

/// Whether `path` can go into a request line as it is: it starts with `/` and
/// holds only visible ASCII, so no space, CR, LF or other control character can
/// split the request line or inject a header, and no byte needs encoding.
#[must_use]
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic())
}

/// Sends the request and reads up to the end of the status line.
async fn exchange(port: u16, path: &str) -> io::Result<(bool, TcpStream)> {
    let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: ganger\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0_u8; MAX_HEAD];
    let mut len = 0;
    // `read` fills at most the slice it is given, so `len` stays within `head`.
    while len < head.len() {
        let n = stream.read(&mut head[len..]).await?;
        if n == 0 {
            // Closed before the status line ended.
            break;
        }
        if let Some(end) = memchr::memchr(b'\n', &head[len..len + n]) {
            return Ok((status_ok(&head[..len + end]), stream));
        }
        len += n;
    }
    Ok((false, stream))
}

/// Reads and discards what is left of the response, up to [`MAX_DRAIN`] bytes.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0_u8; 4096];
    let mut total = 0;
    while total < MAX_DRAIN {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Whether a status line (without its `\n`) says 2xx or 3xx:
/// `HTTP/1.x SSS[ reason]`, the reason optional, a trailing `\r` allowed.
fn status_ok(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(rest) = line.strip_prefix(b"HTTP/1.") else {
        return false;
    };
    let [minor, b' ', d0, d1, d2, tail @ ..] = rest else {
        return false;
    };
    let reason_ok = tail.is_empty() || tail.first() == Some(&b' ');
    minor.is_ascii_digit()
        && [d0, d1, d2].iter().all(|d| d.is_ascii_digit())
        && matches!(d0, b'2' | b'3')
        && reason_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// Generous: the suite runs on busy 2-core machines.
    const PATIENCE: Duration = Duration::from_secs(20);

    /// A server for one connection: reads the request head, then does what
    /// `reply` says (`None`: never answer, hold the connection until the client
    /// leaves). Returns the port and the request it read.
    async fn serve(reply: Option<Vec<u8>>) -> (u16, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return request,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            match reply {
                Some(reply) => {
                    let _ = stream.write_all(&reply).await;
                }
                None => while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {},
            }
            request
        });
        (port, task)
    }

    async fn answer(reply: &[u8]) -> bool {
        let (port, server) = serve(Some(reply.to_vec())).await;
        let ok = get_ok(port, "/health", PATIENCE).await;
        server.await.expect("server");
        ok
    }

    #[tokio::test]
    async fn sends_a_minimal_request() {
        let (port, server) = serve(Some(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())).await;
        assert!(get_ok(port, "/up?full=1", PATIENCE).await);
        let request = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert_eq!(
            request,
            format!(
                "GET /up?full=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: ganger\r\n\
                 Accept: */*\r\nConnection: close\r\n\r\n"
            )
        );
    }

    #[tokio::test]
    async fn success_and_redirects_are_ready() {
        assert!(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await);
        assert!(answer(b"HTTP/1.0 204 No Content\r\n\r\n").await);
        assert!(answer(b"HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n").await);
    }

    #[tokio::test]
    async fn errors_are_not_ready() {
        assert!(!answer(b"HTTP/1.1 404 Not Found\r\n\r\n").await);
        assert!(!answer(b"HTTP/1.1 500 Internal Server Error\r\n\r\n").await);
        assert!(!answer(b"HTTP/1.1 100 Continue\r\n\r\n").await);
    }

    #[tokio::test]
    async fn garbage_is_not_ready() {
        assert!(!answer(b"SSH-2.0-OpenSSH_9.6\r\n").await);
        assert!(!answer(b"\x00\x01\x02\xff\n").await);
        assert!(!answer(b"HTTP/1.1 200 OK").await); // never ends its status line
        assert!(!answer(b"").await);
    }

    #[tokio::test]
    async fn an_overlong_status_line_is_not_ready() {
        let mut reply = b"HTTP/1.1 200 ".to_vec();
        reply.resize(4 * MAX_HEAD, b'A');
        reply.extend_from_slice(b"\r\n\r\n");
        assert!(!answer(&reply).await);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_drain_still_answers() {
        let mut reply = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        reply.resize(4 * MAX_DRAIN, b'x');
        assert!(answer(&reply).await);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let (port, server) = serve(None).await;
        let started = Instant::now();
        assert!(!get_ok(port, "/", Duration::from_millis(200)).await);
        assert!(started.elapsed() < PATIENCE);
        // Leaving closed the connection, which ended the server.
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_server_that_closes_at_once_is_not_ready() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            drop(listener.accept().await.expect("accept"));
        });
        assert!(!get_ok(port, "/", PATIENCE).await);
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_ready() {
        // Port 1 (tcpmux) is served by nothing here; a port freed by dropping a
        // listener could be taken at once by another test's server.
        assert!(!get_ok(1, "/", PATIENCE).await);
        assert!(!get_ok(0, "/", PATIENCE).await);
    }

    #[tokio::test]
    async fn paths_that_could_inject_are_refused_unsent() {
        for path in [
            "",
            "health",
            "/a b",
            "/a\r\nX-Evil: 1",
            "/a\n",
            "/\t",
            "/\u{7f}",
            "/é",
        ] {
            assert!(!valid_path(path), "{path:?}");
            // A server that would say yes, so only the refusal can say no.
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            assert!(!get_ok(port, path, PATIENCE).await, "{path:?}");
        }
        for path in ["/", "/health", "/up?x=1&y=%20", "/a/b#c"] {
            assert!(valid_path(path), "{path:?}");
        }
    }

    #[test]
    fn status_lines() {
        for line in [
            &b"HTTP/1.1 200 OK"[..],
            b"HTTP/1.1 200 OK\r",
            b"HTTP/1.0 301 Moved Permanently\r",
            b"HTTP/1.1 399",
            b"HTTP/1.1 250 ",
        ] {
            assert!(status_ok(line), "{line:?}");
        }
        for line in [
            &b""[..],
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 20x OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1 404 Not Found",
            b"HTTP/1.1 199 OK",
            b"HTTP/1.1 400",
            b"HTTP/2 200",
            b"HTTP/1.x 200 OK",
            b"http/1.1 200 OK",
            b" HTTP/1.1 200 OK",
            b"HTTP/1.1 200\tOK",
        ] {
            assert!(!status_ok(line), "{line:?}");
        }
    }
}
