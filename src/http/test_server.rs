//! An in-process HTTP/1.1 server for unit tests: each request is logged (head and body, chunked
//! bodies decoded) and answered by a table the test gives, a function of the request. An answer
//! may also be silence (the connection held open), to play a host that stalls.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// What the server does with a request.
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Nothing, ever (the connection stays open).
    Silence,
    /// The head of an answer whose body never comes.
    HeadOnly {
        status: u16,
        headers: Vec<(String, String)>,
        length: usize,
    },
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        Reply::Answer {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }
}

type Table = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A server on a loopback port, for as long as the test's runtime runs.
pub struct TestServer {
    pub origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    pub async fn start(table: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let table: Arc<Table> = Arc::new(table);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, table.clone(), log.clone()));
            }
        });
        TestServer { origin, seen }
    }

    /// `origin` + `path`.
    pub fn url(&self, path: &str) -> reqwest::Url {
        format!("{}{path}", self.origin).parse().unwrap()
    }

    /// `host:port`.
    pub fn host(&self) -> &str {
        self.origin.trim_start_matches("http://")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(stream: TcpStream, table: Arc<Table>, log: Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(seen) = read_request(&mut reader).await else {
            return;
        };
        log.lock().unwrap().push(seen.clone());
        match table(&seen) {
            Reply::Silence => {
                std::future::pending::<()>().await;
            }
            Reply::HeadOnly {
                status,
                headers,
                length,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {length}\r\n");
                for (n, v) in &headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = reader.get_mut().write_all(head.as_bytes()).await;
                std::future::pending::<()>().await;
            }
            Reply::Answer {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\n");
                for (n, v) in &headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let stream = reader.get_mut();
                let body = if seen.method == "HEAD" {
                    &[][..]
                } else {
                    &body
                };
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(body).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    // A TLS ClientHello: answered as a plain HTTP server would, so the client sees no TLS.
    if reader.fill_buf().await.ok()?.first() == Some(&0x16) {
        let refusal = b"HTTP/1.1 400 X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let _ = reader.get_mut().write_all(refusal).await;
        return None;
    }
    let first = read_line(reader).await?;
    let mut parts = first.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader).await?;
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut seen = Seen {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if seen
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size =
                usize::from_str_radix(read_line(reader).await?.split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = seen.header("content-length").and_then(|v| v.parse().ok()) {
        let mut body = vec![0; n];
        reader.read_exact(&mut body).await.ok()?;
        seen.body = body;
    }
    Some(seen)
}
