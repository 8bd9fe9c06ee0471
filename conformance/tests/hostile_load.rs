//! Fair service under hostile load (issue 12): one tenant holding many slow uploads (a large
//! declared Content-Length, then one byte), unread downloads, slow request headers or slow
//! unauthenticated browser forms must not delay another tenant's requests, even when those
//! connections outnumber the blocking pool's threads many times over. The attacker's excess
//! is refused (503 SlowDown, or a connection closed over the cap) and every slow client is
//! cut by a deadline. Raw HTTP/1.1 over TCP to 127.0.0.1 only: this suite runs over the
//! plain transport (it is not one of `conformance/run`'s HTTPS suites).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use coffre_conformance::{pseudo_random_bytes, KeyPair, Payload, RawBody, TestServer};
use http::{Method, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

/// The blocking pool of every server here: small, so that a handful of held connections
/// would exhaust it if any of them held a thread.
const BLOCKING_THREADS: usize = 2;
/// Of each kind of slow client, this many: four times the pool.
const SLOW_CLIENTS: usize = 4 * BLOCKING_THREADS;
/// A prompt answer, generously: requests served in milliseconds must stay under this while
/// the attack is open.
const PROMPT: Duration = Duration::from_secs(2);
/// How long an event the test waits for (an answer, a cut connection) may take.
const EVENT_DEADLINE: Duration = Duration::from_secs(15);
/// An object larger than what the loopback socket buffers hold, so that an unread
/// download stays in progress.
const LARGE_OBJECT: usize = 16 << 20;

/// A server with the small pool and `extra` settings in its `[limits]` table.
fn server_with_limits(extra: &str) -> TestServer {
    let server = TestServer::start_with_config(
        &format!("[limits]\nblocking_threads = {BLOCKING_THREADS}\n{extra}"),
        &[],
    );
    assert!(
        !server.is_https(),
        "hostile_load speaks raw HTTP/1.1 over TCP: run it over the plain transport"
    );
    server
}

/// A tenant with a read-write key, as an ordinary customer has.
async fn tenant(server: &TestServer, name: &str) -> KeyPair {
    let admin = server.admin();
    admin
        .create_tenant(serde_json::json!({ "name": name }))
        .await;
    admin.create_key(name, "read-write", None).await
}

fn signed(
    server: &TestServer,
    key: &KeyPair,
    method: Method,
    path: &str,
) -> coffre_conformance::RawRequest {
    server
        .request(method, path)
        .access_key(&key.access_key)
        .secret_key(&key.secret_key)
}

/// The request line and headers of a built request, as sent on the wire.
fn head_bytes(request: &Request<RawBody>) -> Vec<u8> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method());
    if !request.headers().contains_key(http::header::HOST) {
        head.push_str(&format!("host: {}\r\n", uri.authority().unwrap()));
    }
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads until the end of a response head (or of the stream); the head as text.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = timeout(EVENT_DEADLINE, async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response head within {EVENT_DEADLINE:?}");
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads a whole answer (head and body) until the server closes the connection or the body
/// is complete.
async fn read_answer(stream: &mut TcpStream) -> String {
    let head = read_head(stream).await;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let read = timeout(EVENT_DEADLINE, stream.read_exact(&mut body)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the body of `{head}` did not arrive: {read:?}"
    );
    format!("{head}{}", String::from_utf8_lossy(&body))
}

/// Waits until the server closes `stream` (EOF or reset); the bytes read meanwhile.
async fn read_until_closed(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let closed = timeout(EVENT_DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server did not close the connection within {EVENT_DEADLINE:?}"
    );
    total
}

/// A signed PUT declaring `declared` bytes that sends one byte once the server asked for
/// the body (`100 Continue`: the handler is reading it), then stalls.
async fn slow_upload(server: &TestServer, key: &KeyPair, path: &str, declared: u64) -> TcpStream {
    let (_tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let request = signed(server, key, Method::PUT, path)
        .header("content-length", &declared.to_string())
        .header("expect", "100-continue")
        .payload(Payload::Unsigned)
        .body_channel(rx)
        .build();
    let mut stream = TcpStream::connect(server.s3_addr).await.unwrap();
    stream.write_all(&head_bytes(&request)).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 100"),
        "a slow upload was not taken up: {head}"
    );
    stream.write_all(b"x").await.unwrap();
    stream
}

/// A signed GET of `path` over a socket with a tiny receive buffer; returns once the
/// response head has arrived, and never reads the body.
async fn unread_download(server: &TestServer, key: &KeyPair, path: &str) -> TcpStream {
    let request = signed(server, key, Method::GET, path).build();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.s3_addr).await.unwrap();
    stream.write_all(&head_bytes(&request)).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "an unread download was not served: {head}"
    );
    stream
}

/// Tenant B's small PUT and GET, each answered within [`PROMPT`].
async fn assert_prompt_service(server: &TestServer, key: &KeyPair, bucket: &str, round: usize) {
    let data = pseudo_random_bytes(1024, round as u64);
    let path = format!("/{bucket}/small-{round}");
    let started = Instant::now();
    let put = timeout(
        PROMPT,
        signed(server, key, Method::PUT, &path)
            .body(data.clone())
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("round {round}: B's PUT took more than {PROMPT:?}"));
    put.assert_status(200);
    let got = timeout(PROMPT, signed(server, key, Method::GET, &path).send())
        .await
        .unwrap_or_else(|_| panic!("round {round}: B's GET took more than {PROMPT:?}"));
    got.assert_status(200);
    assert_eq!(got.body, data, "round {round}: B read back other bytes");
    eprintln!("round {round}: B's PUT+GET in {:?}", started.elapsed());
}

/// `coffre_rejected_requests_total{reason="..."}` from the admin listener's `/metrics`.
async fn rejected(server: &TestServer, reason: &str) -> u64 {
    let metrics = server.admin().send(Method::GET, "/metrics", None).await;
    metrics.assert_status(200);
    let series = format!("coffre_rejected_requests_total{{reason=\"{reason}\"}} ");
    metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[tokio::test]
async fn slow_uploads_and_unread_downloads_of_one_tenant_do_not_delay_another() {
    // Tenant A may hold exactly its attack in flight.
    let per_tenant = 2 * SLOW_CLIENTS;
    let server = server_with_limits(&format!(
        "max_requests_in_flight = 64\nmax_requests_in_flight_per_tenant = {per_tenant}\n\
         min_rate_window_secs = 120\n"
    ));
    let a = tenant(&server, "attacker").await;
    let b = tenant(&server, "bystander").await;
    signed(&server, &a, Method::PUT, "/flood")
        .send()
        .await
        .assert_status(200);
    signed(&server, &b, Method::PUT, "/calm")
        .send()
        .await
        .assert_status(200);
    let large = pseudo_random_bytes(LARGE_OBJECT, 1);
    signed(&server, &a, Method::PUT, "/flood/large")
        .body(large)
        .send()
        .await
        .assert_status(200);
    let slow_down_before = rejected(&server, "slow_down").await;

    // The attack: twice the pool's threads of each kind, every one being served.
    let mut held = Vec::new();
    for i in 0..SLOW_CLIENTS {
        held.push(slow_upload(&server, &a, &format!("/flood/slow-{i}"), 10_000_000).await);
        held.push(unread_download(&server, &a, "/flood/large").await);
    }

    // A's excess is refused at once.
    let started = Instant::now();
    let excess = timeout(
        PROMPT,
        signed(&server, &a, Method::GET, "/flood/large").send(),
    )
    .await
    .expect("A's excess request was not answered promptly");
    excess.assert_error(503, "SlowDown");
    assert!(started.elapsed() < PROMPT);
    assert!(rejected(&server, "slow_down").await > slow_down_before);

    // B is served as if nothing happened.
    for round in 0..5 {
        assert_prompt_service(&server, &b, "calm", round).await;
    }
    drop(held);
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused_and_the_rest_served() {
    const CAP: usize = 2 * BLOCKING_THREADS;
    let server = server_with_limits(&format!("max_connections_per_address = {CAP}\n"));
    let b = tenant(&server, "bystander").await;
    signed(&server, &b, Method::PUT, "/calm")
        .send()
        .await
        .assert_status(200);
    signed(&server, &b, Method::PUT, "/calm/k")
        .body("v")
        .send()
        .await
        .assert_status(200);

    // CAP keep-alive connections, each known to the server by a request it answered.
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(served_connection(&server, &b).await);
    }
    let refused_before = rejected(&server, "connections").await;

    // One more from the same address: a 503 SlowDown, then closed.
    let mut over = TcpStream::connect(server.s3_addr).await.unwrap();
    let answer = read_answer(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("<Code>SlowDown</Code>"), "{answer}");
    read_until_closed(&mut over).await;
    assert_eq!(rejected(&server, "connections").await, refused_before + 1);

    // A held connection is still served, and a closed one frees its slot.
    let request = signed(&server, &b, Method::GET, "/calm/k").build();
    held[0].write_all(&head_bytes(&request)).await.unwrap();
    assert!(read_answer(&mut held[0]).await.starts_with("HTTP/1.1 200"));
    drop(held.pop());
    held.push(served_connection(&server, &b).await);
}

/// A keep-alive connection on which the server answered a GET of `/calm/k`. A connection
/// refused over the cap (a slot still held by a connection the server has not yet seen
/// closed) is retried, within a deadline.
async fn served_connection(server: &TestServer, key: &KeyPair) -> TcpStream {
    let deadline = Instant::now() + EVENT_DEADLINE;
    loop {
        let mut stream = TcpStream::connect(server.s3_addr).await.unwrap();
        let request = signed(server, key, Method::GET, "/calm/k").build();
        stream.write_all(&head_bytes(&request)).await.unwrap();
        let answer = read_answer(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200") {
            return stream;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            Instant::now() < deadline,
            "no connection slot was freed in time"
        );
        // The poll interval of the wait for a freed slot, under the deadline above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn slow_headers_and_slow_unauthenticated_forms_are_cut_and_do_not_delay_others() {
    let server = server_with_limits("header_timeout_secs = 2\nform_fields_timeout_secs = 2\n");
    let b = tenant(&server, "bystander").await;
    signed(&server, &b, Method::PUT, "/calm")
        .send()
        .await
        .assert_status(200);
    let started = Instant::now();

    // Request headers that never end.
    let mut slow_headers = Vec::new();
    for i in 0..SLOW_CLIENTS {
        let mut stream = TcpStream::connect(server.s3_addr).await.unwrap();
        let partial = format!(
            "PUT /calm/h{i} HTTP/1.1\r\nhost: {}\r\nx-slow: a",
            server.s3_addr
        );
        stream.write_all(partial.as_bytes()).await.unwrap();
        slow_headers.push(stream);
    }
    // Browser forms, not authenticated until their fields arrive, that stop in a field.
    let mut slow_forms = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let mut stream = TcpStream::connect(server.s3_addr).await.unwrap();
        let head = format!(
            "POST /calm HTTP/1.1\r\nhost: {}\r\ncontent-type: multipart/form-data; \
             boundary=slowform\r\ncontent-length: 100000\r\nexpect: 100-continue\r\n\r\n",
            server.s3_addr
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let continued = read_head(&mut stream).await;
        assert!(continued.starts_with("HTTP/1.1 100"), "{continued}");
        stream
            .write_all(b"--slowform\r\ncontent-disposition: form-data; name=\"key\"\r\n\r\nslo")
            .await
            .unwrap();
        slow_forms.push(stream);
    }

    for round in 0..3 {
        assert_prompt_service(&server, &b, "calm", round).await;
    }

    // Every form is answered with RequestTimeout, every header-less connection closed.
    for mut stream in slow_forms {
        let answer = read_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    }
    for mut stream in slow_headers {
        assert_eq!(
            read_until_closed(&mut stream).await,
            0,
            "a connection without complete headers got an answer"
        );
    }
    assert!(
        started.elapsed() < EVENT_DEADLINE,
        "the slow clients took {:?} to be cut",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_bodies_and_responses_slower_than_the_minimum_rate_are_cut() {
    let server = server_with_limits(
        "min_rate_window_secs = 1\nbody_min_bytes_per_sec = 1000\n\
         response_min_bytes_per_sec = 1000\n",
    );
    let a = tenant(&server, "trickler").await;
    signed(&server, &a, Method::PUT, "/slow")
        .send()
        .await
        .assert_status(200);
    signed(&server, &a, Method::PUT, "/slow/large")
        .body(pseudo_random_bytes(LARGE_OBJECT, 2))
        .send()
        .await
        .assert_status(200);

    // A download nobody reads: cut once a window passes with nothing taken.
    let timeouts_before = rejected(&server, "timeout").await;
    let mut download = unread_download(&server, &a, "/slow/large").await;
    let deadline = Instant::now() + EVENT_DEADLINE;
    while rejected(&server, "timeout").await == timeouts_before {
        assert!(
            Instant::now() < deadline,
            "an unread download was not cut within {EVENT_DEADLINE:?}"
        );
        // The poll interval of the wait for the cut (counted in metrics), under the deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = read_until_closed(&mut download).await;
    assert!(
        received < LARGE_OBJECT,
        "the whole object ({received} bytes) went out to a reader that never read"
    );

    // An upload that sends one byte of a declared megabyte: RequestTimeout.
    let mut upload = slow_upload(&server, &a, "/slow/trickle", 1 << 20).await;
    let answer = read_answer(&mut upload).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    let absent = signed(&server, &a, Method::GET, "/slow/trickle")
        .send()
        .await;
    absent.assert_error(404, "NoSuchKey");
}
