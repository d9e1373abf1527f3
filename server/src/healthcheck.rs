//! `queuelab healthcheck`: probes `/healthz` over plain HTTP/1.0 so a slim
//! container image needs no curl for its `HEALTHCHECK`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Only `http://host:port/path` URLs are supported.
    #[error("unsupported URL `{0}`: expected http://host:port/path")]
    BadUrl(String),
    /// The server could not be reached or stopped answering.
    #[error("could not reach {addr}: {source}")]
    Io {
        /// The `host:port` that was tried.
        addr: String,
        /// The underlying socket error.
        source: std::io::Error,
    },
    /// The server answered with something other than `200`.
    #[error("unhealthy: server answered `{0}`")]
    Status(String),
}

/// Sends `GET` to `url` and succeeds only on an HTTP 200 answer.
pub fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host_port.is_empty() {
        return Err(ProbeError::BadUrl(url.to_owned()));
    }
    let io = |source| ProbeError::Io {
        addr: host_port.to_owned(),
        source,
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").map_err(io)?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(io)?;
    let status_line = String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(ProbeError::Status(status_line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_http_urls() {
        for url in ["https://x:1/", "ftp://x", "http:///healthz"] {
            assert!(
                matches!(
                    probe(url, Duration::from_secs(1)),
                    Err(ProbeError::BadUrl(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn refused_connection_is_an_io_error() {
        // Bind then drop, so the port is (very likely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = probe(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(1),
        );
        assert!(matches!(err, Err(ProbeError::Io { .. })));
    }
}
