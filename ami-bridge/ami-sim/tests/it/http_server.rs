//! A minimal HTTP/1.1 server on 127.0.0.1 standing in for the platform's prompt and upload
//! URLs: fixed answers by path, and every request noted (method, path, headers, body, when).
//! One request per connection (`Connection: close`), bodies by `Content-Length` only: what
//! the simulator's client sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct HttpServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Serves `routes` (path -> reply, whatever the method); other paths: 404 to a GET,
    /// 201 to anything else (an upload).
    pub async fn start(routes: Vec<(&str, Reply)>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let addr = listener.local_addr().expect("http addr");
        let routes: Arc<Vec<(String, Reply)>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let noted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, routes.clone(), noted.clone()));
            }
        });
        HttpServer {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }

    /// The requests once `n` have come (or all that came within `within`).
    pub async fn wait_requests(&self, n: usize, within: Duration) -> Vec<Request> {
        let end = Instant::now() + within;
        while self.requests().len() < n && Instant::now() < end {
            sleep(Duration::from_millis(10)).await;
        }
        self.requests()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A URL nothing listens on (connection refused).
pub async fn unreachable_url(path: &str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}{path}")
}

async fn serve(
    mut stream: TcpStream,
    routes: Arc<Vec<(String, Reply)>>,
    noted: Arc<Mutex<Vec<Request>>>,
) {
    let Some(req) = read_request(&mut stream).await else {
        return;
    };
    let reply = match routes.iter().find(|(p, _)| *p == req.path) {
        Some((_, r)) => r.clone(),
        None if req.method == "GET" => Reply {
            status: 404,
            body: b"not found".to_vec(),
        },
        None => Reply {
            status: 201,
            body: Vec::new(),
        },
    };
    noted.lock().expect("requests").push(req);
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 || stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        if stream.read_buf(&mut body).await.ok()? == 0 {
            return None;
        }
    }
    Some(Request {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

/// A prompt as the platform serves it: PCM 16-bit, 8000 Hz, mono, `ms` of silence.
pub fn prompt_wav(ms: u64) -> Vec<u8> {
    let data_len = (ms * 16) as u32;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    w.resize(w.len() + data_len as usize, 0);
    w
}

/// What a WAV's header says: (format, channels, sample rate, bits per sample, data bytes).
pub fn wav_header(w: &[u8]) -> Option<(u16, u16, u32, u16, usize)> {
    if w.len() < 44 || &w[0..4] != b"RIFF" || &w[8..16] != b"WAVEfmt " {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([w[i], w[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]);
    if &w[36..40] != b"data" || u32_at(4) as usize != w.len() - 8 {
        return None;
    }
    let data = u32_at(40) as usize;
    (data == w.len() - 44).then(|| (u16_at(20), u16_at(22), u32_at(24), u16_at(34), data))
}
