//! A loopback HTTP/1.1 proxy in front of an S3 server that records every
//! request's headers and injects faults.
//!
//! It understands just enough HTTP for the SDK's traffic: requests framed by
//! `Content-Length` (a chunked request is recorded and the connection
//! dropped: logship must never send one), responses framed by
//! `Content-Length`, chunked encoding, or nothing (HEAD, 204, 304). Interim
//! `1xx` responses from the server are swallowed.
//!
//! Faults are chosen by request number (1-based), so a run is repeatable:
//! `fail_every = 3` answers 503 to requests 1, 4, 7, ...; `reset_every`
//! reads half the body and resets the connection; `cut_every` forwards the
//! request and cuts the response halfway through its body; `delay` holds
//! every forwarded request back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Lowercased names, in order.
    pub headers: Vec<(String, String)>,
    /// base64 MD5 of the body, when the body was read in full.
    pub body_md5: Option<String>,
    pub body_len: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Answer 503 SlowDown to every n-th request (0 = never).
    pub fail_every: u64,
    /// Reset the connection mid-body on every n-th request (0 = never);
    /// checked after `fail_every`.
    pub reset_every: u64,
    /// Forward every n-th request (0 = never), then send the response's
    /// head and half its body and reset the connection: a transfer cut
    /// mid-body. Checked after `reset_every`; a response without a
    /// `Content-Length` body is forwarded whole.
    pub cut_every: u64,
    /// The first request for each method and target gets a 503, so every
    /// operation is retried exactly once, whatever else runs at the same
    /// time. Checked before the counted faults.
    pub fail_first_each: bool,
    /// The first GET of each target that is forwarded has its response
    /// cut halfway through the body (after `fail_first_each`'s 503).
    pub cut_first_each: bool,
    /// Hold each forwarded request back this long.
    pub delay: Duration,
}

#[derive(Default)]
struct State {
    faults: Mutex<Faults>,
    recorded: Mutex<Vec<Recorded>>,
    counter: AtomicU64,
    /// Method and target of requests already failed or cut once.
    failed_once: Mutex<std::collections::HashSet<String>>,
    cut_once: Mutex<std::collections::HashSet<String>>,
}

pub struct Proxy {
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

enum Action {
    Forward,
    Fail,
    Reset,
    Cut,
}

impl Proxy {
    /// Listen on an ephemeral loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            faults: Mutex::new(faults),
            ..Default::default()
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream, st).await;
                });
            }
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            state,
            task,
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> u64 {
        self.state.counter.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn decide(st: &State, method: &str, target: &str) -> (Action, Duration) {
    let n = st.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let f = *st.faults.lock().unwrap();
    let hits = |every: u64| every > 0 && (n - 1).is_multiple_of(every);
    let id = format!("{method} {target}");
    if f.fail_first_each && st.failed_once.lock().unwrap().insert(id.clone()) {
        (Action::Fail, Duration::ZERO)
    } else if f.cut_first_each && method == "GET" && st.cut_once.lock().unwrap().insert(id) {
        (Action::Cut, f.delay)
    } else if hits(f.fail_every) {
        (Action::Fail, Duration::ZERO)
    } else if hits(f.reset_every) {
        (Action::Reset, Duration::ZERO)
    } else if hits(f.cut_every) {
        (Action::Cut, f.delay)
    } else {
        (Action::Forward, f.delay)
    }
}

/// Read a message head (through the blank line); `None` at clean EOF.
async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            return Ok(Some(head));
        }
    }
}

fn headers_of(head: &str) -> Vec<(String, String)> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn md5_b64(bytes: &[u8]) -> String {
    logship::ship::s3::content_md5(bytes)
}

async fn serve(client: TcpStream, upstream: SocketAddr, st: Arc<State>) -> std::io::Result<()> {
    let (cr, mut cw) = client.into_split();
    let mut cr = BufReader::new(cr);
    let mut up: Option<(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    )> = None;
    while let Some(head) = read_head(&mut cr).await? {
        let mut words = head.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let target = words.next().unwrap_or_default().to_string();
        let headers = headers_of(&head);
        let chunked = find(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let len: usize = find(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut rec = Recorded {
            method: method.clone(),
            target,
            headers: headers.clone(),
            body_md5: None,
            body_len: len,
        };
        if chunked {
            st.recorded.lock().unwrap().push(rec);
            return Ok(());
        }
        let (action, delay) = decide(&st, &rec.method, &rec.target);
        if let Action::Reset = action {
            let mut half = vec![0; len / 2];
            cr.read_exact(&mut half).await?;
            st.recorded.lock().unwrap().push(rec);
            cw.as_ref().set_zero_linger()?;
            return Ok(());
        }
        let mut body = vec![0; len];
        cr.read_exact(&mut body).await?;
        rec.body_md5 = Some(md5_b64(&body));
        st.recorded.lock().unwrap().push(rec);
        if let Action::Fail = action {
            // A HEAD response has no body, whatever its headers say.
            let xml = if method == "HEAD" {
                ""
            } else {
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>"
            };
            let resp = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            );
            cw.write_all(resp.as_bytes()).await?;
            continue;
        }
        tokio::time::sleep(delay).await;
        if up.is_none() {
            // Server down: the client sees its connection dropped.
            let s = TcpStream::connect(upstream).await?;
            let (r, w) = s.into_split();
            up = Some((BufReader::new(r), w));
        }
        let Some((ur, uw)) = up.as_mut() else {
            return Ok(());
        };
        uw.write_all(head.as_bytes()).await?;
        uw.write_all(&body).await?;
        // Skip interim responses (100 Continue).
        let resp_head = loop {
            let h = read_head(ur)
                .await?
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            if !h.starts_with("HTTP/1.1 1") {
                break h;
            }
        };
        let status: u16 = resp_head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let rh = headers_of(&resp_head);
        cw.write_all(resp_head.as_bytes()).await?;
        let close = find(&rh, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if method == "HEAD" || status == 204 || status == 304 {
            // no body
        } else if let Some(n) = find(&rh, "content-length").and_then(|v| v.parse::<u64>().ok()) {
            if let Action::Cut = action {
                let mut half = (&mut *ur).take(n / 2);
                tokio::io::copy(&mut half, &mut cw).await?;
                cw.flush().await?;
                cw.as_ref().set_zero_linger()?;
                return Ok(());
            }
            let mut limited = (&mut *ur).take(n);
            tokio::io::copy(&mut limited, &mut cw).await?;
        } else if find(&rh, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            copy_chunked(ur, &mut cw).await?;
        } else {
            tokio::io::copy(ur, &mut cw).await?;
            return Ok(());
        }
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// Copy a chunked body verbatim, through the final empty chunk and trailers.
async fn copy_chunked<R: AsyncRead + Unpin, W: tokio::io::AsyncWrite + Unpin>(
    r: &mut BufReader<R>,
    w: &mut W,
) -> std::io::Result<()> {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        w.write_all(line.as_bytes()).await?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut t = String::new();
                r.read_line(&mut t).await?;
                w.write_all(t.as_bytes()).await?;
                if t == "\r\n" || t.is_empty() {
                    return Ok(());
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk).await?;
        w.write_all(&chunk).await?;
    }
}
