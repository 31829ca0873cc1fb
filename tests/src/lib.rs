//! Test harness: each test provisions its own stack from `template.yaml` into the emulator under
//! a unique prefix, so tests run in parallel and never see each other's data. The emulator's
//! endpoint comes from `AWS_ENDPOINT_URL` (set by `infra/with-emulator.sh`, which `make test` uses).

use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{Value, json};
use stockguard_domain::{Position, Sku};
use stockguard_handlers::{Deps, Settings, handle_batch};
use stockguard_local::tap::{EventTap, drain_queue};
use stockguard_local::{LocalRuntime, RuntimeOptions, Stack, StackSpec, provision};

pub use serde_json;

pub mod model;

pub struct TestStack {
    pub config: aws_config::SdkConfig,
    pub spec: StackSpec,
    pub stack: Stack,
    pub deps: Deps,
    /// A queue subscribed to every event stockguard publishes (`stockguard.*` sources).
    pub published: EventTap,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// RFC 3339 for `offset_ms` from now.
pub fn at(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

impl TestStack {
    pub async fn new() -> Self {
        Self::with_parameters(&[]).await
    }

    /// A stack deployed with these template parameters given values.
    pub async fn with_parameters(parameters: &[(&str, &str)]) -> Self {
        Self::try_new(parameters)
            .await
            .expect("provisioning a test stack (is AWS_ENDPOINT_URL set? run `make test`)")
    }

    async fn try_new(parameters: &[(&str, &str)]) -> Result<Self> {
        // Handler and runtime logs on stderr (shown for failing tests); RUST_LOG overrides.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        std::env::var("AWS_ENDPOINT_URL")
            .context("AWS_ENDPOINT_URL is not set: run the tests with `make test`")?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let spec = StackSpec::load_default_with(parameters)?;
        let prefix = format!("t{:08x}-", rand::random::<u32>());
        let stack = provision(&config, &spec, &prefix, &format!("{prefix}bus")).await?;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let events = aws_sdk_eventbridge::Client::new(&config);
        // The test's own subscriber: not part of the product, so not in the template.
        let published =
            EventTap::create(&config, &stack.bus, &format!("{prefix}published")).await?;
        let deps = Deps::new(&config, &stack.table, &stack.bus, None, Settings::default());
        Ok(Self {
            config,
            spec,
            stack,
            deps,
            published,
            sqs,
            events,
        })
    }

    /// Dependencies as the function for `detail_type` has them (its own dead-letter queue).
    pub fn function_deps(&self, detail_type: &str) -> Deps {
        self.deps
            .with_dead_letters(&self.stack.queues[&format!("{detail_type}DLQ")].url)
    }

    pub async fn start_runtime(&self, options: RuntimeOptions) -> LocalRuntime {
        LocalRuntime::start(&self.config, &self.spec, &self.stack, options)
            .await
            .expect("starting the local runtime")
    }

    pub async fn start_runtime_with_api(&self) -> (LocalRuntime, String) {
        let options = RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let rt = self.start_runtime(options).await;
        let url = format!("http://{}", rt.api_addr.unwrap());
        (rt, url)
    }

    /// Publishes an inbound event on the bus, as a producer would.
    pub async fn put_event(&self, source: &str, detail_type: &str, detail: &Value) {
        let out = self
            .events
            .put_events()
            .entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.stack.bus)
                    .source(source)
                    .detail_type(detail_type)
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("PutEvents");
        assert_eq!(out.failed_entry_count(), 0, "PutEvents failed: {out:?}");
    }

    /// Runs one SQS batch through the real handler of `detail_type`, as Lambda would deliver it.
    /// Each record is (body, ApproximateReceiveCount).
    pub async fn run_batch(
        &self,
        detail_type: &str,
        records: &[(String, u32)],
    ) -> SqsBatchResponse {
        let event = sqs_event(records);
        handle_batch(&self.function_deps(detail_type), detail_type, event).await
    }

    /// Applies one event through its function's handler (first delivery); panics if it failed.
    pub async fn apply(&self, detail_type: &str, detail: Value) {
        let resp = self
            .run_batch(
                detail_type,
                &[(envelope("erp.test", detail_type, &detail), 1)],
            )
            .await;
        assert!(
            resp.batch_item_failures.is_empty(),
            "{detail_type} {detail} failed"
        );
    }

    pub async fn position(&self, sku: &str) -> Position {
        let sku = Sku::parse(sku).unwrap();
        self.deps.store.position(&sku).await.unwrap()
    }

    pub async fn hard_reserved(&self, sku: &str) -> i64 {
        self.position(sku).await.hard_reserved
    }

    /// Receives what stockguard published, until nothing new arrives for `quiet`.
    pub async fn drain_published(&self, quiet: Duration) -> Vec<Value> {
        self.published
            .drain(quiet)
            .await
            .expect("draining published events")
    }

    /// Waits until published events satisfy `done` (or `timeout`), returning all received.
    pub async fn await_published(
        &self,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut all = Vec::new();
        while tokio::time::Instant::now() < deadline {
            all.extend(self.drain_published(Duration::from_millis(200)).await);
            if done(&all) {
                break;
            }
        }
        all
    }

    /// Messages in a dead-letter queue: (body, reason_code attribute).
    pub async fn dead_letters(&self, queue_logical_id: &str) -> Vec<(String, Option<String>)> {
        drain_queue(
            &self.sqs,
            &self.stack.queues[queue_logical_id].url,
            Duration::from_millis(300),
        )
        .await
        .expect("draining a dead-letter queue")
    }
}

/// An EventBridge event as a rule delivers it to SQS.
/// What [`raw_http`] read back.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Sends `head` (the request line and headers, each line ending in CRLF, without the blank line)
/// and then `body` on a raw connection to `url`'s host, and returns the answer. For limits a well-behaved client such as reqwest will not break: a declared length with
/// no body, or a chunked body that is longer than any limit.
pub async fn raw_http(url: &str, head: &str, body: &[u8]) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(url).expect("a URL");
    let host = url.host_str().expect("a host");
    let mut socket = tokio::net::TcpStream::connect((host, url.port().expect("a port")))
        .await
        .expect("connect");
    let request = format!("{head}Host: {host}\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the head");
    // The server may answer and close before the whole body is written; what it says is the test.
    let _ = socket.write_all(body).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| rest.len() >= n) {
                let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok());
                let status = status.unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
                let content_type = head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-type")
                        .then(|| value.trim().to_owned())
                });
                let body = rest.to_owned();
                return RawAnswer {
                    status,
                    content_type,
                    body,
                };
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .expect("answered in time")
            .expect("read the answer");
        assert!(
            read > 0,
            "the connection closed before a whole answer: {text:?}"
        );
        answer.extend_from_slice(&chunk[..read]);
    }
}

/// An SQS batch as Lambda delivers it: one record per (body, ApproximateReceiveCount), with
/// message ids `m0`, `m1`, ...
pub fn sqs_event(records: &[(String, u32)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records
        .iter()
        .enumerate()
        .map(|(i, (body, count))| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(body.clone());
            m.attributes
                .insert("ApproximateReceiveCount".into(), count.to_string());
            m
        })
        .collect();
    event
}

/// [`sqs_event`] of first deliveries.
pub fn first_deliveries(bodies: &[String]) -> SqsEvent {
    let records: Vec<(String, u32)> = bodies.iter().map(|b| (b.clone(), 1)).collect();
    sqs_event(&records)
}

pub fn envelope(source: &str, detail_type: &str, detail: &Value) -> String {
    json!({
        "version": "0",
        "id": format!("{:032x}", rand::random::<u128>()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": now_rfc3339(),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

/// Polls `condition` every 100 ms until it holds; fails the test, naming `what`, after 30 s.
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, condition: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events of one detail-type among those published.
pub fn of_type<'a>(events: &'a [Value], detail_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["detail-type"] == detail_type)
        .collect()
}

/// The four fake channels, wired to a test stack as configured channels.
pub mod channels {
    use stockguard_adapters::channel_store::ChannelSettings;
    use stockguard_domain::Sku;
    use stockguard_domain::channel::BufferPolicy;
    pub use stockguard_fake_channels::{FakeChannel, FakeChannels, FakeKind, FakeOptions};
    pub use stockguard_local::fake_wiring::{KINDS, fake, listing_key};
    use stockguard_local::fake_wiring::{configure_fake_channels, map_on_fakes, static_buffers};

    use super::{TestStack, now_rfc3339, until};

    impl TestStack {
        /// Configures the four channels against `fakes` with static `buffer`, credentials in Secrets
        /// Manager, and maps `skus` on every channel (registered on the fakes too).
        pub async fn configure_channels(
            &self,
            fakes: &FakeChannels,
            buffer: BufferPolicy,
            skus: &[&str],
        ) {
            self.configure_channels_with(fakes, static_buffers(buffer), skus)
                .await;
        }

        /// As [`TestStack::configure_channels`], with dynamic buffers at their defaults and then
        /// `customise` applied to each channel.
        pub async fn configure_channels_with(
            &self,
            fakes: &FakeChannels,
            customise: impl Fn(&mut ChannelSettings),
            skus: &[&str],
        ) {
            configure_fake_channels(
                &self.config,
                &self.deps.store,
                &self.stack.prefix,
                fakes,
                customise,
            )
            .await
            .expect("configuring channels");
            let skus: Vec<Sku> = skus.iter().map(|s| Sku::parse(s).unwrap()).collect();
            map_on_fakes(&self.deps.store, fakes, &skus)
                .await
                .expect("mapping listings");
        }

        /// Receives `stock` units of each of `skus` from the ERP, then waits until each channel
        /// of `shown_on` shows them.
        pub async fn receive_stock_shown_on(
            &self,
            fakes: &FakeChannels,
            skus: &[&str],
            stock: i64,
            shown_on: &[&str],
        ) {
            for sku in skus {
                let detail = serde_json::json!({"event_id": format!("in-{sku}"),
                    "occurred_at": now_rfc3339(), "sku": sku, "quantity": stock});
                self.put_event("erp.test", "StockReceived", &detail).await;
            }
            for sku in skus {
                for kind in shown_on {
                    let key = listing_key(kind, sku);
                    until(&format!("{kind} shows {sku}"), || async {
                        fake(fakes, kind).shown(&key) == Some(stock)
                    })
                    .await;
                }
            }
        }
    }
}
