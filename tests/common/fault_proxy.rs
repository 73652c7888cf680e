//! The simplest fault: a TCP proxy that cuts one request in the middle, and passes everything
//! else through byte for byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A TCP proxy in front of a registry that breaks one request on purpose: the first time the
/// client sends `needle` (a request line prefix such as `PATCH /v2/`), it forwards `budget` more
/// bytes and then cuts both connections, as a dropped network or a crashed frontend would.
/// Everything else passes through unchanged.
pub struct FaultProxy {
    pub port: u16,
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub fn start(target_port: u16, needle: &'static [u8], budget: usize) -> FaultProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tripped = Arc::new(AtomicBool::new(false));
        let flag = tripped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let flag = flag.clone();
                std::thread::spawn(move || {
                    proxy_connection(client, target_port, needle, budget, &flag)
                });
            }
        });
        FaultProxy { port, tripped }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the fault has happened.
    pub fn tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn proxy_connection(
    mut client: TcpStream,
    target_port: u16,
    needle: &[u8],
    budget: usize,
    tripped: &std::sync::atomic::AtomicBool,
) {
    use std::net::Shutdown;
    use std::sync::atomic::Ordering;
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target_port)) else {
        return;
    };
    let (mut back_from, mut back_to) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Both);
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut remaining: Option<usize> = None;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut forward = n;
        if remaining.is_none() && !tripped.load(Ordering::SeqCst) {
            let mut window = carry.clone();
            window.extend_from_slice(chunk);
            if let Some(at) = window.windows(needle.len()).position(|w| w == needle) {
                if !tripped.swap(true, Ordering::SeqCst) {
                    let start_in_chunk = at.saturating_sub(carry.len());
                    let extra = budget.min(n - start_in_chunk);
                    forward = start_in_chunk + extra;
                    remaining = Some(budget - extra);
                }
            }
            let keep = needle.len().saturating_sub(1).min(window.len());
            carry = window[window.len() - keep..].to_vec();
        } else if let Some(left) = remaining {
            forward = left.min(n);
            remaining = Some(left - forward);
        }
        if upstream.write_all(&chunk[..forward]).is_err() {
            break;
        }
        if remaining == Some(0) {
            let _ = upstream.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
}
