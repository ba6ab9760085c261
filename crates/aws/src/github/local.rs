//! GitHub standing in on a local port, for tests of the client and of the functions: each request read (method and
//! path, bearer token, body) and answered by the test's handler, on 127.0.0.1.

// Only tests build this server: a request it cannot read fails the test that sent it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use super::{GitHubClient, Timing};

/// One request as the server read it.
#[derive(Debug)]
pub struct Request {
    /// `METHOD /path`.
    pub call: String,
    pub bearer: Option<String>,
    pub body: Vec<u8>,
}

/// Serves each request with `answer` (an HTTP status line's rest, such as `201 Created`, and a
/// JSON body) until the test ends; returns the server's URL.
pub fn serve(answer: impl Fn(&Request) -> (&'static str, String) + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let request = read(&stream);
            let (status, body) = answer(&request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn read(stream: &std::net::TcpStream) -> Request {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (mut length, mut bearer) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(": ").unwrap_or((header, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap(),
            "authorization" => bearer = value.strip_prefix("Bearer ").map(str::to_owned),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let call: Vec<&str> = line.split(' ').take(2).collect();
    Request {
        call: call.join(" "),
        bearer,
        body,
    }
}

/// A client of the server at `url`, with time for one slow answer.
pub fn client(url: &str) -> GitHubClient {
    GitHubClient::new(
        crate::LazyHttpsClient::new(Duration::from_secs(2), false),
        url,
        Timing {
            attempt: Duration::from_secs(5),
            total: Duration::from_secs(5),
        },
    )
}
