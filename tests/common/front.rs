//! An HTTP/1.1 front for the tests: a small server, in threads, that stands in front of a real
//! registry (or of nothing) and decides, request by request, to pass it on, break it, or answer
//! it itself. It plays a flaky network, object storage on another host, a registry that
//! redirects, and hostile registries; it logs what reached it (with the `Authorization` header
//! each request carried), so tests can say what a client sent where.
//!
//! Forwarded requests go to the upstream on a connection of their own (`Connection: close`),
//! their bodies streamed as they come (chunked bodies included, byte for byte); the answer is read
//! whole and relayed with a `Content-Length`, on the client's connection, which stays open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the front saw it (its head; the body is streamed).
#[derive(Clone, Debug)]
pub struct Request {
    /// Position among the requests this front received, from 0.
    pub index: usize,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The value of a query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn body_framing(&self) -> Framing {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            Framing::Chunked
        } else {
            Framing::Length(
                self.header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0),
            )
        }
    }
}

/// The head of an answer, as a `Forwarding::edit_response` may change it.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Sets a header, replacing any of the same name.
    pub fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

/// A change made to an answer's head.
pub type EditResponse = Box<dyn FnOnce(&mut ResponseHead) + Send>;

/// Passes body bytes on (counting, throttling, cutting).
type Pass<'a> = dyn FnMut(&[u8], &mut dyn Write) -> std::io::Result<()> + 'a;

/// How a request that is passed on is changed on its way.
#[derive(Default)]
pub struct Forwarding {
    /// Headers set on the request (replacing any of the same name) before it goes on.
    pub set_request_headers: Vec<(String, String)>,
    /// A change to the answer's head before it is relayed.
    pub edit_response: Option<EditResponse>,
    /// The request body is passed on at this many bytes per second.
    pub throttle: Option<u64>,
    /// The path and query sent upstream instead of the request's own.
    pub target: Option<String>,
}

/// What the front does with one request.
pub enum Action {
    /// Pass it on (see [`Action::forward`] for the unchanged form).
    Forward(Forwarding),
    /// Pass on part of the request (half its body, at most 32 KiB; nothing of a request
    /// without a body), then drop both connections: the client gets no answer.
    DropMidBody,
    /// Pass it on, then relay only the first half of the answer and drop the connection.
    CutResponse,
    /// Answer it here; the request body is read and discarded first.
    Answer(Reply),
    /// Read the request, then answer nothing for this long (a silent registry), then drop the
    /// connection.
    Stall(Duration),
    /// Pass it on, relay the first half of the answer, then nothing more for this long (an
    /// answer stalled half-way), then drop the connection.
    StallResponse(Duration),
}

impl Action {
    pub fn forward() -> Action {
        Action::Forward(Forwarding::default())
    }

    /// An answer with a short body.
    pub fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Action {
        Action::Answer(Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: ReplyBody::Bytes(body.to_vec()),
        })
    }

    /// A short name, for logs and messages.
    pub fn name(&self) -> String {
        match self {
            Action::Forward(f) if f.throttle.is_some() => "throttle".into(),
            Action::Forward(_) => "forward".into(),
            Action::DropMidBody => "drop-mid-body".into(),
            Action::CutResponse => "cut-response".into(),
            Action::Answer(r) => format!("answer-{}", r.status),
            Action::Stall(_) => "stall".into(),
            Action::StallResponse(_) => "stall-response".into(),
        }
    }
}

/// An answer the front makes itself.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

pub enum ReplyBody {
    Bytes(Vec<u8>),
    /// `len` copies of `byte`, written as they go (never held in memory); with `declared`, the
    /// `Content-Length` says `len`, else the body ends when the connection does (endless when
    /// `len` is `u64::MAX`).
    Repeat {
        byte: u8,
        len: u64,
        declared: bool,
    },
}

/// What reached the front, one entry per request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// The `Authorization` header the request carried, if any.
    pub authorization: Option<String>,
    /// The `Referer` header the request carried, if any.
    pub referer: Option<String>,
    /// What the front did (see [`Action::name`]).
    pub action: String,
    /// The status relayed or answered, once known.
    pub status: Option<u16>,
    /// The `Location` of that answer, if any.
    pub location: Option<String>,
    /// The request's `Content-Length`, if it had one.
    pub content_length: Option<u64>,
    /// Its `Content-Range`, if any.
    pub content_range: Option<String>,
}

type Decide = dyn Fn(&Request) -> Action + Send + Sync;

/// What the front does with a connection that opens with a TLS ClientHello (a client trying
/// HTTPS first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsHello {
    /// Answer `400` as a plain HTTP server does: the client sees that this is not TLS.
    #[default]
    Answer,
    /// Close the connection without a word: the client's handshake meets its end.
    Close,
    /// Reset the connection, as some port-forwarders do with what they cannot parse.
    Reset,
}

struct Shared {
    upstream: Option<u16>,
    decide: Box<Decide>,
    requests: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// Body bytes of the front's own answers that the client's socket took.
    answered_bytes: AtomicU64,
    tls_hello: Mutex<TlsHello>,
    /// Connections that opened with a TLS ClientHello.
    tls_hellos: AtomicUsize,
}

/// A running front; it serves until the test process ends.
pub struct Front {
    pub ip: String,
    pub port: u16,
    shared: Arc<Shared>,
}

impl Front {
    /// A front on 127.0.0.1 passing requests to `upstream` (a port on 127.0.0.1) or, without
    /// one, answering `502` to whatever `decide` forwards.
    pub fn start(
        upstream: Option<u16>,
        decide: impl Fn(&Request) -> Action + Send + Sync + 'static,
    ) -> Front {
        Front::start_on("127.0.0.1", upstream, decide)
    }

    /// The same on another loopback address (`127.0.0.2`: another host, for a client).
    pub fn start_on(
        ip: &str,
        upstream: Option<u16>,
        decide: impl Fn(&Request) -> Action + Send + Sync + 'static,
    ) -> Front {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            decide: Box::new(decide),
            requests: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            answered_bytes: AtomicU64::new(0),
            tls_hello: Mutex::new(TlsHello::default()),
            tls_hellos: AtomicUsize::new(0),
        });
        let for_thread = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let shared = for_thread.clone();
                std::thread::spawn(move || serve(client, &shared));
            }
        });
        Front {
            ip: ip.to_owned(),
            port,
            shared,
        }
    }

    /// `IP:PORT`
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `http://IP:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How the front meets a TLS ClientHello from now on.
    pub fn on_tls_hello(&self, what: TlsHello) {
        *self.shared.tls_hello.lock().unwrap() = what;
    }

    /// Connections so far that opened with a TLS ClientHello.
    pub fn tls_hellos(&self) -> usize {
        self.shared.tls_hellos.load(Ordering::SeqCst)
    }

    /// Body bytes of the front's own answers that the client's socket accepted (what a client
    /// that stops reading leaves unread stays far below what the answer offered).
    pub fn answered_bytes(&self) -> u64 {
        self.shared.answered_bytes.load(Ordering::SeqCst)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

enum Framing {
    Length(u64),
    Chunked,
}

/// Serves one client connection, request after request.
fn serve(client: TcpStream, shared: &Shared) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    loop {
        let request = match read_request_head(&mut reader, shared) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => {
                // A TLS record starts with 0x16 (a handshake): the client tries HTTPS first.
                if reader.buffer().first() == Some(&0x16) {
                    shared.tls_hellos.fetch_add(1, Ordering::SeqCst);
                    match *shared.tls_hello.lock().unwrap() {
                        TlsHello::Answer => {}
                        TlsHello::Close => return,
                        TlsHello::Reset => {
                            reset(&writer);
                            return;
                        }
                    }
                }
                // Not HTTP: answer as a plain HTTP server does, which tells a TLS client this
                // port does not speak TLS.
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                );
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        };
        let action = (shared.decide)(&request);
        let entry = {
            let mut seen = shared.seen.lock().unwrap();
            seen.push(Seen {
                method: request.method.clone(),
                target: request.target.clone(),
                authorization: request.header("authorization").map(str::to_owned),
                referer: request.header("referer").map(str::to_owned),
                action: action.name(),
                status: None,
                location: None,
                content_length: request
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok()),
                content_range: request.header("content-range").map(str::to_owned),
            });
            seen.len() - 1
        };
        let record = |head: &ResponseHead| {
            let mut seen = shared.seen.lock().unwrap();
            seen[entry].status = Some(head.status);
            seen[entry].location = head.header("location").map(str::to_owned);
        };
        let keep_open = match action {
            Action::Answer(reply) => {
                if copy_body(
                    &mut reader,
                    request.body_framing(),
                    &mut std::io::sink(),
                    None,
                    None,
                )
                .is_err()
                {
                    return;
                }
                record(&ResponseHead {
                    status: reply.status,
                    headers: reply.headers.clone(),
                });
                write_reply(&mut writer, &request, reply, shared)
            }
            Action::DropMidBody => {
                let limit = match request.body_framing() {
                    Framing::Length(n) => (n / 2).min(32 * 1024),
                    Framing::Chunked => 32 * 1024,
                };
                if limit > 0 {
                    if let Ok(mut upstream) = open_upstream(shared, &request, &[], None) {
                        let _ = copy_body(
                            &mut reader,
                            request.body_framing(),
                            &mut upstream,
                            Some(limit),
                            None,
                        );
                        let _ = upstream.shutdown(Shutdown::Both);
                    }
                }
                false
            }
            Action::Stall(how_long) => {
                let _ = copy_body(
                    &mut reader,
                    request.body_framing(),
                    &mut std::io::sink(),
                    None,
                    None,
                );
                std::thread::sleep(how_long);
                false
            }
            Action::StallResponse(how_long) => {
                match forward(&mut reader, &request, shared, Forwarding::default()) {
                    Some((head, body)) => {
                        record(&head);
                        let bytes = response_bytes(&request, &head, &body);
                        let _ = writer.write_all(&bytes[..bytes.len() - body.len() / 2]);
                        let _ = writer.flush();
                        std::thread::sleep(how_long);
                        false
                    }
                    None => false,
                }
            }
            Action::CutResponse => {
                match forward(&mut reader, &request, shared, Forwarding::default()) {
                    Some((head, body)) => {
                        record(&head);
                        let bytes = response_bytes(&request, &head, &body);
                        let _ = writer.write_all(&bytes[..bytes.len() / 2]);
                        false
                    }
                    None => false,
                }
            }
            Action::Forward(forwarding) => match forward(&mut reader, &request, shared, forwarding)
            {
                Some((head, body)) => {
                    record(&head);
                    writer
                        .write_all(&response_bytes(&request, &head, &body))
                        .is_ok()
                }
                None => false,
            },
        };
        if !keep_open {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Closes `stream` with a reset (RST) rather than an orderly end: `SO_LINGER` with a zero
/// timeout, then the close that dropping the last handle makes.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, and a `linger` of the size given.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        done,
        0,
        "setsockopt(SO_LINGER): {}",
        std::io::Error::last_os_error()
    );
}

/// Reads a request line and headers; `Ok(None)` at a clean end of the connection.
fn read_request_head(
    reader: &mut BufReader<TcpStream>,
    shared: &Shared,
) -> std::io::Result<Option<Request>> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP request");
    // A request line starts with a method in capitals; a TLS record starts with 0x16. Look
    // before reading a whole line, which a TLS client waiting for our answer never ends.
    match reader.fill_buf()?.first() {
        None => return Ok(None),
        Some(b) if !b.is_ascii_uppercase() => return Err(bad()),
        Some(_) => {}
    }
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or_else(bad)?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(Some(Request {
        index: shared.requests.fetch_add(1, Ordering::SeqCst),
        method,
        target,
        headers,
    }))
}

/// Copies a request body from the client to `out` as it comes, framing included (a chunked body
/// stays chunked). With `limit`, stops after that many bytes with an error; with `rate`, at
/// most that many bytes a second.
fn copy_body(
    reader: &mut BufReader<TcpStream>,
    framing: Framing,
    out: &mut dyn Write,
    limit: Option<u64>,
    rate: Option<u64>,
) -> std::io::Result<()> {
    let mut budget = limit.unwrap_or(u64::MAX);
    let mut pass = |bytes: &[u8], out: &mut dyn Write| -> std::io::Result<()> {
        let n = (bytes.len() as u64).min(budget) as usize;
        out.write_all(&bytes[..n])?;
        budget -= n as u64;
        if let Some(rate) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
        if budget == 0 {
            return Err(std::io::Error::other("body cut"));
        }
        Ok(())
    };
    let copy_exact = |reader: &mut BufReader<TcpStream>,
                      mut left: u64,
                      out: &mut dyn Write,
                      pass: &mut Pass|
     -> std::io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            pass(&buf[..n], out)?;
            left -= n as u64;
        }
        Ok(())
    };
    match framing {
        Framing::Length(n) => copy_exact(reader, n, out, &mut pass),
        Framing::Chunked => loop {
            let mut size_line = String::new();
            if reader.read_line(&mut size_line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let size =
                u64::from_str_radix(size_line.trim().split(';').next().unwrap_or_default(), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                // The end: the trailer (usually empty) up to a blank line. Held back from a
                // cut body, whose end must never arrive.
                let mut end = size_line.into_bytes();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    end.extend_from_slice(line.as_bytes());
                    if line.trim().is_empty() {
                        break;
                    }
                }
                if limit.is_some() {
                    return Err(std::io::Error::other("body cut before its end"));
                }
                return pass(&end, out);
            }
            pass(size_line.as_bytes(), out)?;
            copy_exact(reader, size + 2, out, &mut pass)?;
        },
    }
}

/// Opens a connection to the upstream and sends the request head, `Connection: close`.
fn open_upstream(
    shared: &Shared,
    request: &Request,
    set_headers: &[(String, String)],
    target: Option<&str>,
) -> std::io::Result<TcpStream> {
    let port = shared
        .upstream
        .ok_or_else(|| std::io::Error::other("no upstream"))?;
    let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
    let target = target.unwrap_or(&request.target);
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method);
    for (k, v) in &request.headers {
        let replaced = set_headers.iter().any(|(s, _)| s.eq_ignore_ascii_case(k));
        if !replaced
            && !k.eq_ignore_ascii_case("connection")
            && !k.eq_ignore_ascii_case("keep-alive")
        {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    for (k, v) in set_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    Ok(upstream)
}

/// Passes a request on and reads the whole answer: its head and its body (de-chunked).
fn forward(
    reader: &mut BufReader<TcpStream>,
    request: &Request,
    shared: &Shared,
    forwarding: Forwarding,
) -> Option<(ResponseHead, Vec<u8>)> {
    let Ok(mut upstream) = open_upstream(
        shared,
        request,
        &forwarding.set_request_headers,
        forwarding.target.as_deref(),
    ) else {
        // Nothing behind (a fake with no registry): say so, as a gateway would.
        copy_body(
            reader,
            request.body_framing(),
            &mut std::io::sink(),
            None,
            None,
        )
        .ok()?;
        return Some((
            ResponseHead {
                status: 502,
                headers: vec![],
            },
            Vec::new(),
        ));
    };
    copy_body(
        reader,
        request.body_framing(),
        &mut upstream,
        None,
        forwarding.throttle,
    )
    .ok()?;
    let mut raw = Vec::new();
    upstream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    let mut head = ResponseHead { status, headers };
    if let Some(edit) = forwarding.edit_response {
        edit(&mut head);
    }
    Some((head, body))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 2 + size + 2).min(raw.len())..];
    }
    out
}

/// The bytes of an answer relayed on the client's (kept-alive) connection.
fn response_bytes(request: &Request, head: &ResponseHead, body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", head.status, reason(head.status));
    let no_body = request.method == "HEAD" || matches!(head.status, 204 | 304);
    for (k, v) in &head.headers {
        let framing = ["connection", "keep-alive", "transfer-encoding"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            // A HEAD answer keeps the length a GET would have; others get their own below.
            || (k.eq_ignore_ascii_case("content-length") && request.method != "HEAD");
        if !framing {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !no_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !no_body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Writes one of the front's own answers; whether the connection may serve another request.
fn write_reply(writer: &mut TcpStream, request: &Request, reply: Reply, shared: &Shared) -> bool {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let head_only = request.method == "HEAD";
    match &reply.body {
        ReplyBody::Bytes(b) => head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len())),
        ReplyBody::Repeat {
            len,
            declared: true,
            ..
        } => head.push_str(&format!("Content-Length: {len}\r\n\r\n")),
        ReplyBody::Repeat {
            declared: false, ..
        } => head.push_str("Connection: close\r\n\r\n"),
    }
    if writer.write_all(head.as_bytes()).is_err() {
        return false;
    }
    if head_only {
        return true;
    }
    match reply.body {
        ReplyBody::Bytes(b) => {
            let ok = writer.write_all(&b).is_ok();
            shared
                .answered_bytes
                .fetch_add(b.len() as u64, Ordering::SeqCst);
            ok
        }
        ReplyBody::Repeat {
            byte,
            len,
            declared,
        } => {
            let block = vec![byte; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                match writer.write(&block[..n]) {
                    Ok(0) | Err(_) => return false,
                    Ok(w) => {
                        shared.answered_bytes.fetch_add(w as u64, Ordering::SeqCst);
                        left -= w as u64;
                    }
                }
            }
            declared
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The password the tests that look for leaks give nixpush: it must never be printed.
pub const SECRET_PASSWORD: &str = "s3cr3t-PASSWORD-xyz";

/// Fails the test if any of `secrets` (or the Basic form of `user` with the first) shows in what
/// nixpush printed.
pub fn assert_no_secret(run: &super::Run, user: &str, secrets: &[&str]) {
    use base64::Engine as _;
    let mut needles: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    if let Some(first) = secrets.first() {
        needles.push(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{first}")));
    }
    for needle in &needles {
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(needle.as_str()),
                "a secret was printed on {name}:\n{text}"
            );
        }
    }
}
