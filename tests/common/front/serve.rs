//! The front's wire side: reading requests off a client's connection, passing them on to the
//! upstream (bodies streamed, counted, throttled or cut as an [`Action`] says), and writing
//! answers back, the front's own or the upstream's.

use super::*;

/// Serves one client connection, request after request.
pub(super) fn serve(client: TcpStream, shared: &Shared) {
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
