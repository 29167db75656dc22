//! An HTTP proxy on 127.0.0.1 in front of a real S3 server that injects faults into the
//! requests a rule picks: an error status, a delay, a dropped connection, a truncated
//! response. Everything else is forwarded byte for byte (the `Host` header too, so request
//! signatures still match), and every request is logged.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a rule does to a request it picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answers with this status and an S3 error body (`InternalError`, `SlowDown`,
    /// `InvalidAccessKeyId`, ...), without asking the server.
    Status(u16, &'static str),
    /// Forwards it, and holds the answer back this long.
    Delay(Duration),
    /// Reads the request, then closes the connection without an answer.
    Drop,
    /// Forwards it, then sends the answer's head and half its body and closes.
    Truncate,
}

/// Which requests a rule picks, and how many more times.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `None`: any method.
    pub method: Option<&'static str>,
    /// A substring of the request target (`/bucket/key?query`).
    pub path_contains: String,
    pub fault: Fault,
    /// `None`: every matching request.
    pub remaining: Option<usize>,
    /// How many matching requests pass untouched before the rule starts.
    pub skip: usize,
}

/// A request the proxy saw, and the fault it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: what the agent's `REMOTE_ENDPOINT` is set to.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// However a test ends, the proxy stops by itself after this long.
const LIFETIME: Duration = Duration::from_secs(600);

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_state, accept_stop) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + LIFETIME;
            while !accept_stop.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (state, upstream) = (accept_state.clone(), upstream.clone());
                        std::thread::spawn(move || serve_connection(client, &upstream, &state));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            endpoint,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Adds a rule: `fault` for the next `times` requests (`None`: all) whose method is
    /// `method` (`None`: any) and whose target contains `path_contains`.
    pub fn inject(
        &self,
        method: Option<&'static str>,
        path_contains: &str,
        fault: Fault,
        times: Option<usize>,
    ) {
        self.add(Rule {
            method,
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
            skip: 0,
        });
    }

    /// Adds a rule that lets `skip` matching requests through, then gives every later one
    /// `fault` (e.g. credentials revoked in the middle of a run).
    pub fn inject_after(
        &self,
        method: Option<&'static str>,
        path_contains: &str,
        fault: Fault,
        skip: usize,
    ) {
        self.add(Rule {
            method,
            path_contains: path_contains.to_string(),
            fault,
            remaining: None,
            skip,
        });
    }

    fn add(&self, rule: Rule) {
        lock(&self.state).rules.push(rule);
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn heal(&self) {
        lock(&self.state).rules.clear();
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// How many requests got a fault.
    pub fn faults_injected(&self) -> usize {
        lock(&self.state)
            .seen
            .iter()
            .filter(|seen| seen.fault.is_some())
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fault for a request, taken from the first rule that picks it (and counted down).
fn pick(state: &Mutex<State>, method: &str, target: &str) -> Option<Fault> {
    let mut state = lock(state);
    let fault = state.rules.iter_mut().find_map(|rule| {
        let matches = rule.method.is_none_or(|m| m == method)
            && target.contains(&rule.path_contains)
            && rule.remaining != Some(0);
        if matches && rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        matches.then(|| {
            if let Some(remaining) = &mut rule.remaining {
                *remaining -= 1;
            }
            rule.fault.clone()
        })
    });
    state.seen.push(Seen {
        method: method.to_string(),
        target: target.to_string(),
        fault: fault.clone(),
    });
    fault
}

/// One client connection: its requests, one after another (keep-alive).
fn serve_connection(client: TcpStream, upstream: &str, state: &Mutex<State>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut writer) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(client);
    while let Some(request) = read_request(&mut reader, &mut writer) {
        let fault = pick(state, &request.method, &request.target);
        let answered = match fault {
            Some(Fault::Status(status, code)) => writer
                .write_all(&error_answer(status, code, &request.method))
                .is_ok(),
            Some(Fault::Drop) => false,
            Some(Fault::Delay(delay)) => forward(&request, upstream).is_some_and(|answer| {
                std::thread::sleep(delay);
                writer.write_all(&answer).is_ok()
            }),
            Some(Fault::Truncate) => {
                if let Some(answer) = forward(&request, upstream) {
                    let _ = writer.write_all(&truncated(&answer));
                }
                false
            }
            None => {
                forward(&request, upstream).is_some_and(|answer| writer.write_all(&answer).is_ok())
            }
        };
        if !answered {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

struct Request {
    method: String,
    target: String,
    /// The head as it goes upstream (`Connection: close`, no `Expect`), with the body.
    bytes: Vec<u8>,
}

/// Reads one request (head and body); `None` at the end of the connection. A client that
/// waits for `100 Continue` is told to go on.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let request_line = head.first()?.clone();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let header = |name: &str| {
        head.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut bytes = Vec::new();
    for line in head.iter().filter(|line| !is_hop_header(line)) {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"Connection: close\r\n\r\n");
    if chunked {
        read_chunked(reader, &mut bytes)?;
    } else {
        let start = bytes.len();
        bytes.resize(start + length, 0);
        reader.read_exact(&mut bytes[start..]).ok()?;
    }
    Some(Request {
        method,
        target,
        bytes,
    })
}

fn is_hop_header(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or("").trim();
    ["connection", "expect", "keep-alive"]
        .iter()
        .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// A chunked body, kept in its chunked framing, up to and with the last chunk's trailer.
fn read_chunked(reader: &mut BufReader<TcpStream>, out: &mut Vec<u8>) -> Option<()> {
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        out.extend_from_slice(size_line.as_bytes());
        let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok()?;
                out.extend_from_slice(trailer.as_bytes());
                if trailer == "\r\n" || trailer.is_empty() {
                    return Some(());
                }
            }
        }
        let start = out.len();
        out.resize(start + size + 2, 0);
        reader.read_exact(&mut out[start..]).ok()?;
    }
}

/// The server's whole answer to `request` (it closes the connection after it), with its
/// `Connection: close` left out so that the client may keep its connection.
fn forward(request: &Request, upstream: &str) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    server
        .set_read_timeout(Some(Duration::from_secs(120)))
        .ok()?;
    server.write_all(&request.bytes).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    let end = head_end(&answer)?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let kept: String = head
        .split("\r\n")
        .filter(|line| !line.is_empty() && !is_hop_header(line))
        .map(|line| format!("{line}\r\n"))
        .collect();
    let mut out = format!("{kept}\r\n").into_bytes();
    out.extend_from_slice(&answer[end..]);
    Some(out)
}

/// Where the head of an answer ends (after its blank line).
fn head_end(answer: &[u8]) -> Option<usize> {
    answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The answer's head and the first half of its body.
fn truncated(answer: &[u8]) -> Vec<u8> {
    let end = head_end(answer).unwrap_or(answer.len());
    let body = answer.len() - end;
    answer[..end + body / 2].to_vec()
}

fn error_answer(status: u16, code: &str, method: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test's fault proxy</Message></Error>"
    );
    let head = format!(
        "HTTP/1.1 {status} {code}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
