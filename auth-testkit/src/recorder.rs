//! [`HeaderRecorder`]: a plain HTTP server on loopback that answers every request `200 OK` and keeps the headers
//! it received, to prove what a client sent to a host outside the bot's services.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crate::TestkitError;

/// One request as the recorder received it: method, path and headers (names lower-cased), body dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// The headers in the order received, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The value of header `name` (any case), when present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A server on `127.0.0.1` that answers `200 OK` with an empty body to every request and records its head. One
/// thread per connection; stops accepting on drop.
#[derive(Debug)]
pub struct HeaderRecorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    stop: Arc<AtomicBool>,
}

impl HeaderRecorder {
    /// Starts the recorder on a free port.
    ///
    /// # Errors
    /// [`TestkitError::Io`] when no port can be bound.
    pub fn start() -> Result<Self, TestkitError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || serve(stream, &seen));
            }
        });
        Ok(Self { addr, requests, stop })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for HeaderRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one keep-alive connection until the client closes it or sends something that is not HTTP/1.1.
fn serve(stream: TcpStream, seen: &Mutex<Vec<RecordedRequest>>) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else { return };
        let mut request = RecordedRequest { method: method.to_owned(), path: path.to_owned(), headers: Vec::new() };
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else { return };
            request.headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length = request.header("content-length").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        if request.header("transfer-encoding").is_some() && !skip_chunked(&mut reader) {
            return;
        }
        if std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).is_err() {
            return;
        }
        seen.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

/// Reads a chunked body to its end; false when it is malformed.
fn skip_chunked(reader: &mut impl BufRead) -> bool {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(size) = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16) else { return false };
        // The chunk and its CRLF; the last chunk is followed by an empty trailer line.
        if std::io::copy(&mut reader.take(size + 2), &mut std::io::sink()).is_err() {
            return false;
        }
        if size == 0 {
            return true;
        }
    }
}
