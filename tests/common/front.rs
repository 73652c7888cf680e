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

mod serve;

use serve::serve;

/// Kept here too for the tests that look for leaks through a front.
#[allow(unused_imports)]
pub use super::run::{assert_no_secret, SECRET_PASSWORD};

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

/// How a request's body is delimited.
enum Framing {
    Length(u64),
    Chunked,
}
