//! The S3 server's request log: a proxy in front of `rclone serve s3` that writes down every
//! request it forwards (who sent it, what, when its body ended), and slows request bodies
//! down so a test can catch an upload while it is still being sent. `rclone serve s3` logs
//! only refused requests, so the log is kept here, where the Pods' addresses are seen.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as the proxy forwarded it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub client: IpAddr,
    pub method: String,
    pub path: String,
    pub started: Instant,
    /// When the last byte of it was forwarded, once its body was sent or the client went
    /// away in the middle of it (or stalled for [`BODY_STALL`]: a killed Pod's connection
    /// can vanish without a FIN when its network namespace goes first); None while it is
    /// still being sent.
    pub ended: Option<Instant>,
}

impl LoggedRequest {
    /// A request that changes the remote (reads are GET and HEAD).
    pub fn writes(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "POST" | "DELETE")
    }
}

type Log = Arc<Mutex<Vec<LoggedRequest>>>;

/// A request body that sends nothing for this long is given up on, as S3 servers do.
pub const BODY_STALL: Duration = Duration::from_secs(10);

pub struct S3RequestLog {
    pub address: String,
    log: Log,
    stop: Arc<AtomicBool>,
}

impl S3RequestLog {
    /// Listens on `listen` (`ip:port`) and forwards to `upstream`; request bodies go at
    /// most `body_bytes_per_second` per connection.
    pub fn start(
        listen: &str,
        upstream: &str,
        body_bytes_per_second: u64,
    ) -> Result<S3RequestLog, String> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| format!("the S3 request log on {listen}: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| e.to_string())?
            .to_string();
        let log = Log::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, accepted_log, accepted_stop) =
            (upstream.to_string(), log.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepted_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, log) = (upstream.clone(), accepted_log.clone());
                thread::spawn(move || {
                    let _ = forward(client, &upstream, &log, body_bytes_per_second);
                });
            }
        });
        Ok(S3RequestLog { address, log, stop })
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for S3RequestLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// One client connection: responses are copied back as they come; requests are parsed
/// (headers, then a Content-Length or chunked body) so each is logged.
fn forward(
    client: TcpStream,
    upstream: &str,
    log: &Log,
    body_bytes_per_second: u64,
) -> std::io::Result<()> {
    let client_ip = client.peer_addr()?.ip();
    let server = TcpStream::connect(upstream)?;
    let (mut to_client, mut from_server) = (client.try_clone()?, server.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let mut requests = BufReader::new(client);
    let mut to_server = Throttled::new(server, body_bytes_per_second);
    while let Some(head) = read_head(&mut requests)? {
        let mut words = head.lines().next().unwrap_or_default().split(' ');
        let entry = LoggedRequest {
            client: client_ip,
            method: words.next().unwrap_or_default().to_string(),
            path: words.next().unwrap_or_default().to_string(),
            started: Instant::now(),
            ended: None,
        };
        let index = push(log, entry);
        to_server.inner.write_all(head.as_bytes())?;
        to_server.restart();
        requests.get_ref().set_read_timeout(Some(BODY_STALL))?;
        let sent = match body_length(&head) {
            Body::Chunked => copy_chunked(&mut requests, &mut to_server),
            Body::Length(length) => copy_exactly(&mut requests, &mut to_server, length),
        };
        requests.get_ref().set_read_timeout(None)?;
        if let Some(entry) = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(index)
        {
            entry.ended = Some(to_server.last_byte);
        }
        sent?;
    }
    to_server.inner.shutdown(Shutdown::Write)
}

fn push(log: &Log, entry: LoggedRequest) -> usize {
    let mut log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    log.push(entry);
    log.len() - 1
}

/// The request line and headers up to the blank line, or None at the end of the connection.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" && head.len() > 2 {
            return Ok(Some(head));
        }
    }
}

enum Body {
    Length(u64),
    Chunked,
}

fn body_length(head: &str) -> Body {
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Body::Chunked;
    }
    Body::Length(
        header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

fn copy_exactly(from: &mut impl Read, to: &mut Throttled, length: u64) -> std::io::Result<()> {
    let copied = std::io::copy(&mut from.take(length), to)?;
    if copied < length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A chunked body: size lines, chunks, and the trailers up to the blank line.
fn copy_chunked(from: &mut impl BufRead, to: &mut Throttled) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        from.read_line(&mut size_line)?;
        to.write_all(size_line.as_bytes())?;
        let hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(hex, 16)
            .map_err(|_| std::io::Error::other(format!("chunk size {size_line:?}")))?;
        if size == 0 {
            return copy_trailers(from, to);
        }
        copy_exactly(from, to, size + 2)?;
    }
}

fn copy_trailers(from: &mut impl BufRead, to: &mut Throttled) -> std::io::Result<()> {
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Ok(());
        }
        to.write_all(line.as_bytes())?;
        if line == "\r\n" {
            return Ok(());
        }
    }
}

/// A writer that keeps to a byte rate (a slow network for request bodies).
struct Throttled {
    inner: TcpStream,
    bytes_per_second: u64,
    since: Instant,
    written: u64,
    last_byte: Instant,
}

impl Throttled {
    fn new(inner: TcpStream, bytes_per_second: u64) -> Throttled {
        Throttled {
            inner,
            bytes_per_second,
            since: Instant::now(),
            written: 0,
            last_byte: Instant::now(),
        }
    }

    /// Each body keeps to the rate on its own: idle time between requests is no credit.
    fn restart(&mut self) {
        self.since = Instant::now();
        self.written = 0;
        self.last_byte = self.since;
    }
}

impl Write for Throttled {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // Small pieces, so the rate holds within a second too.
        let piece = &bytes[..bytes.len().min(16 * 1024)];
        let written = self.inner.write(piece)?;
        self.written += written as u64;
        self.last_byte = Instant::now();
        let due = Duration::from_secs_f64(self.written as f64 / self.bytes_per_second as f64);
        if let Some(early) = due.checked_sub(self.since.elapsed()) {
            thread::sleep(early);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
