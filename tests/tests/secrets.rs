//! No log line, published event or dead letter ever carries a channel credential: not the tokens
//! and client secrets stockguard is configured with, and not the access tokens channels issue to
//! it. Channel syncs and a reconciliation run against the fake channels and against a stand-in
//! channel that echoes whatever credential it is shown in its 401, 500 and 429 answers, with every
//! log line captured at TRACE (the most verbose level the template allows).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use stockguard_domain::ChannelName;
use stockguard_domain::channel::BufferPolicy;
use stockguard_handlers::channel_sync::ChannelSync;
use stockguard_handlers::reconcile::{channel_syncs, reconcile_all};
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS};
use stockguard_tests::{TestStack, envelope, now_rfc3339, of_type, sqs_event, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Everything logged in this test process, as the functions' subscriber would write it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Captures every log line at TRACE. Installed before the stack, whose own subscriber then stays
/// out. The fake channels are left out: they stand for the channels' servers, not for stockguard.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,stockguard_fake_channels=off,axum=off,tower_http=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the test's subscriber is the first");
    captured
}

fn distinctive(what: &str) -> String {
    format!("sg-{what}-{:016x}", rand::random::<u64>())
}

fn basic(id: &str, secret: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{id}:{secret}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A channel that answers every call with `status`, quoting back the credential it was shown
/// (token, bearer, Basic credentials) in several shapes, and issues a token to Walmart's token
/// requests.
struct EchoChannel {
    url: String,
    status: Arc<Mutex<u16>>,
    issued: Arc<Mutex<Vec<String>>>,
}

impl EchoChannel {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let status = Arc::new(Mutex::new(401));
        let issued: Arc<Mutex<Vec<String>>> = Arc::default();
        let (answer_status, issuing) = (status.clone(), issued.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer_status, issuing) = (answer_status.clone(), issuing.clone());
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut socket).await else {
                        return;
                    };
                    let (status, body) = if head.starts_with("POST /v3/token ") {
                        let token = distinctive("issued");
                        issuing.lock().unwrap().push(token.clone());
                        (
                            200,
                            json!({"access_token": token, "token_type": "Bearer", "expires_in": 900}),
                        )
                    } else {
                        let shown = presented(&head);
                        let status = *answer_status.lock().unwrap();
                        (
                            status,
                            json!({
                                "errors": [{"code": "ECHO", "message": format!("credential {shown} refused"), "errorId": 1,
                                             "description": shown, "extensions": {"code": "ACCESS_DENIED"}}],
                                "request_headers": head,
                            }),
                        )
                    };
                    let body = body.to_string();
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 0\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            url,
            status,
            issued,
        }
    }

    fn answer_with(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

async fn read_head(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = socket.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(head);
        }
    }
}

fn presented(head: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| {
            matches!(
                name.to_ascii_lowercase().as_str(),
                "authorization"
                    | "x-shopify-access-token"
                    | "x-amz-access-token"
                    | "wm_sec.access_token"
            )
        })
        .map(|(_, v)| v.trim().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn position_event(sku: &str, version: u64) -> String {
    envelope(
        "stockguard.core",
        "InventoryPositionChanged",
        &json!({"sku": sku, "version": version, "on_hand": 0, "hard_reserved": 0,
        "soft_reserved": 0, "available": 0, "changed_at": now_rfc3339(),
        "cause": {"event_id": "x", "detail_type": "StockReceived", "occurred_at": now_rfc3339()}}),
    )
}

/// One record; `receive_count` at the retry budget makes a failure final (published and
/// dead-lettered), below it a retry (logged).
fn batch(body: String, receive_count: u32) -> SqsEvent {
    sqs_event(&[(body, receive_count)])
}

fn dlq_of(kind: &str) -> String {
    let mut name = kind.to_owned();
    name[..1].make_ascii_uppercase();
    format!("{name}SyncDLQ")
}

fn sync_for(stack: &TestStack, kind: &str) -> ChannelSync {
    let deps = stack
        .deps
        .with_dead_letters(&stack.stack.queues[&dlq_of(kind)].url);
    ChannelSync::new(deps, ChannelName::parse(kind).unwrap())
}

async fn set_credentials(stack: &TestStack, kind: &str, creds: &Value) {
    let name = ChannelName::parse(kind).unwrap();
    let settings = stack.deps.store.channel(&name).await.unwrap().unwrap();
    aws_sdk_secretsmanager::Client::new(&stack.config)
        .put_secret_value()
        .secret_id(&settings.credentials)
        .secret_string(creds.to_string())
        .send()
        .await
        .unwrap();
}

async fn set_endpoint(stack: &TestStack, kind: &str, url: &str) {
    let name = ChannelName::parse(kind).unwrap();
    let mut settings = stack.deps.store.channel(&name).await.unwrap().unwrap();
    settings.endpoint = url.to_owned();
    stack.deps.store.put_channel(&settings).await.unwrap();
}

/// Every dead letter of the channel syncs, with all its attributes, as text.
async fn dead_letters(stack: &TestStack) -> Vec<String> {
    let mut out = Vec::new();
    for kind in KINDS {
        let url = &stack.stack.queues[&dlq_of(kind)].url;
        loop {
            let received = stack
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = received.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                out.push(format!("{m:?}"));
                stack
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    out
}

/// Walmart tokens as the fake issues them: `wm-` and 32 hex digits.
fn fake_walmart_tokens(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.match_indices("wm-") {
        let tail = &bytes[at + 3..];
        if tail.len() >= 32 && tail[..32].iter().all(u8::is_ascii_hexdigit) {
            found.push(text[at..at + 35].to_owned());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_event_or_dead_letter_carries_a_channel_credential() {
    let logs = capture_logs();
    let stack = TestStack::new().await;
    let token = distinctive("token");
    let (client_id, client_secret) = (distinctive("client"), distinctive("secret"));
    let fakes = FakeChannels::start(FakeOptions {
        access_token: token.clone(),
        walmart_client_id: client_id.clone(),
        walmart_client_secret: client_secret.clone(),
        ..FakeOptions::default()
    })
    .await
    .expect("fake channels");
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["SEC-1"])
        .await;
    let good =
        json!({"access_token": token, "client_id": client_id, "client_secret": client_secret});
    for kind in KINDS {
        set_credentials(&stack, kind, &good).await;
    }
    let (wrong_token, wrong_secret) = (distinctive("wrong-token"), distinctive("wrong-secret"));
    let mut secrets = vec![
        token.clone(),
        client_secret.clone(),
        basic(&client_id, &client_secret),
        wrong_token.clone(),
        wrong_secret.clone(),
        basic(&client_id, &wrong_secret),
    ];
    let mut version = 0;
    let mut next_version = async || {
        stack.apply("StockReceived", json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": "SEC-1", "quantity": 1})).await;
        version += 1;
        version
    };

    // Pushes that go through, on every channel.
    let v = next_version().await;
    for kind in KINDS {
        let (_, report) = sync_for(&stack, kind)
            .handle_batch(batch(position_event("SEC-1", v), 1))
            .await;
        assert_eq!(report.pushed, 1, "{kind}: {report:?}");
    }

    // The fakes answering 500, then refusing wrong credentials: retried, then final.
    for fault in ["server_error", "wrong_credentials"] {
        match fault {
            "server_error" => KINDS.iter().for_each(|k| {
                stockguard_tests::channels::fake(&fakes, k).update_settings(|s| s.error_rate = 1.0)
            }),
            _ => {
                KINDS.iter().for_each(|k| {
                    stockguard_tests::channels::fake(&fakes, k)
                        .update_settings(|s| s.error_rate = 0.0)
                });
                let wrong = json!({"access_token": wrong_token, "client_id": client_id, "client_secret": wrong_secret});
                for kind in KINDS {
                    set_credentials(&stack, kind, &wrong).await;
                }
            }
        }
        let v = next_version().await;
        for kind in KINDS {
            for receive_count in [1, 5] {
                let (_, report) = sync_for(&stack, kind)
                    .handle_batch(batch(position_event("SEC-1", v), receive_count))
                    .await;
                assert_eq!(report.failed, 1, "{fault} {kind}: {report:?}");
            }
        }
    }

    // A channel that echoes the credential it was shown, in its 401, 500 and 429 answers.
    let echo = EchoChannel::start().await;
    for kind in KINDS {
        set_credentials(&stack, kind, &good).await;
        set_endpoint(&stack, kind, &echo.url).await;
    }
    for status in [401, 500, 429] {
        echo.answer_with(status);
        let v = next_version().await;
        for kind in KINDS {
            for receive_count in [1, 5] {
                let (_, report) = sync_for(&stack, kind)
                    .handle_batch(batch(position_event("SEC-1", v), receive_count))
                    .await;
                assert_eq!(report.failed, 1, "echo {status} {kind}: {report:?}");
            }
        }
    }
    // Reconciliation reads every channel back and meets the same answers.
    echo.answer_with(401);
    let syncs = channel_syncs(&stack.deps).await.expect("channel syncs");
    let _ = reconcile_all(&syncs, Duration::from_secs(20)).await;
    assert!(
        !echo.issued().is_empty(),
        "walmart asked the echo for tokens"
    );
    secrets.extend(echo.issued());

    let published = stack.drain_published(Duration::from_millis(500)).await;
    let dead = dead_letters(&stack).await;
    let logs = logs.text();

    // The failures happened and were reported: the check below looks at real reasons.
    let failed = of_type(&published, "ChannelSyncFailed");
    assert!(failed.len() >= 4 * 4, "{} ChannelSyncFailed", failed.len());
    assert!(
        failed.iter().any(|e| e["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ECHO"))),
        "the echoed answers were read"
    );
    assert!(dead.len() >= 4 * 4, "{} dead letters", dead.len());
    assert!(
        logs.contains("push failed; will be retried"),
        "logs were captured"
    );
    assert!(logs.contains("TRACE"), "at TRACE");

    let published_text: Vec<String> = published.iter().map(Value::to_string).collect();
    for (what, texts) in [
        ("log", vec![logs.clone()]),
        ("published event", published_text),
        ("dead letter", dead),
    ] {
        for text in &texts {
            for secret in &secrets {
                if let Some(at) = text.find(secret.as_str()) {
                    let from = text[..at]
                        .char_indices()
                        .rev()
                        .nth(300)
                        .map_or(0, |(i, _)| i);
                    panic!(
                        "a credential is in a {what}: …{}…",
                        &text[from..(at + secret.len()).min(text.len())]
                    );
                }
            }
            let issued_by_fake = fake_walmart_tokens(text);
            assert!(
                issued_by_fake.is_empty(),
                "a token the Walmart channel issued is in a {what}: {issued_by_fake:?}"
            );
        }
    }
}
