//! Hosts the functions in-process, as Lambda would: pollers per queue-driven function (as many as
//! its `MaximumConcurrency`, capped) that receive batches (batch size and window from the
//! template), hand them to the function's handler, delete what succeeded and leave failures for
//! redelivery (redrive after `maxReceiveCount`, by the queue itself); and the reservations API on
//! 127.0.0.1. Every function's AWS clients count their requests, tagged with its logical id.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use std::sync::Arc;

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use stockguard_adapters::{AwsClients, RequestCounter};
use stockguard_handlers::functions::{Function, Trigger};
use stockguard_handlers::{Deps, Settings};

/// The variable that names the Shopify webhook secret (a template parameter).
pub const WEBHOOK_SECRET_ENV: &str = "STOCKGUARD_SHOPIFY_WEBHOOK_SECRET";
use tokio::task::JoinHandle;

use crate::chaos::queue::{QueueFaultInjector, QueueFaults};
use crate::provision::Stack;
use crate::template::{FunctionSpec, StackSpec};

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Pollers per queue stand for Lambda's concurrency per event source: the template's
    /// `MaximumConcurrency`, at most this many (each is a task here, not an instance).
    pub max_pollers_per_queue: usize,
    /// Seconds before a failed message is visible again, per delivery so far (back-off). Lambda
    /// waits for the queue's visibility timeout; locally the wait is shortened to keep runs quick.
    pub retry_backoff_seconds: i32,
    pub retry_budget: u32,
    pub api_addr: Option<SocketAddr>,
    /// Fires every schedule at this interval instead of the template's (demos and tests).
    pub schedule_interval: Option<Duration>,
    /// The buffer recompute's interval when `schedule_interval` is unset: a local stack
    /// recomputes every 10 seconds (contract section 5) rather than every few minutes.
    pub buffer_recompute_interval: Duration,
    /// The Walmart and eBay order polls' interval when `schedule_interval` is unset: a local
    /// stack polls every few seconds rather than every minute, so orders placed on the fakes
    /// show soon.
    pub order_poll_interval: Duration,
    /// Divides the sales-rate horizons, for demos that compress time (1: as deployed).
    pub rate_horizon_compression: f64,
    /// Fault switch: the share of position events a channel queue loses before its sync function
    /// sees them, to prove that reconciliation repairs what events miss.
    pub drop_position_events: f64,
    /// Faults of the queue layer on every queue-driven function (the chaos run): lost,
    /// duplicated and reordered deliveries.
    pub queue_faults: Option<QueueFaults>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            max_pollers_per_queue: 4,
            retry_backoff_seconds: 1,
            retry_budget: Settings::default().retry_budget,
            api_addr: None,
            schedule_interval: None,
            buffer_recompute_interval: Duration::from_secs(10),
            order_poll_interval: Duration::from_secs(5),
            rate_horizon_compression: 1.0,
            drop_position_events: 0.0,
            queue_faults: None,
        }
    }
}

pub struct LocalRuntime {
    tasks: Vec<JoinHandle<()>>,
    pub api_addr: Option<SocketAddr>,
    /// AWS requests made by the hosted functions, by function, service and operation.
    pub requests: RequestCounter,
    /// Invocations of the queue-driven functions and how long their handlers ran.
    pub invocations: Invocations,
    /// What the scheduled functions answered, summed.
    pub scheduled: ScheduledRuns,
}

/// The scheduled functions' answers (what Lambda logs as each invocation's result), per
/// function (logical id): how many runs, and every integer field summed over them.
#[derive(Debug, Clone, Default)]
pub struct ScheduledRuns(Arc<std::sync::Mutex<BTreeMap<String, ScheduledTally>>>);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduledTally {
    pub runs: u64,
    pub totals: BTreeMap<String, i64>,
}

impl ScheduledRuns {
    fn record(&self, function: &str, answer: &serde_json::Value) {
        let mut all = self.0.lock().expect("scheduled runs");
        let tally = all.entry(function.to_owned()).or_default();
        tally.runs += 1;
        for (field, value) in answer.as_object().into_iter().flatten() {
            if let Some(n) = value.as_i64() {
                *tally.totals.entry(field.clone()).or_default() += n;
            }
        }
    }

    pub fn tally(&self, function: &str) -> ScheduledTally {
        self.0
            .lock()
            .expect("scheduled runs")
            .get(function)
            .cloned()
            .unwrap_or_default()
    }
}

/// Lambda bills each invocation and its duration; locally both are counted per function (logical
/// id). Durations here include the emulator's latency, so they bound Lambda's from above.
#[derive(Debug, Clone, Default)]
pub struct Invocations(Arc<std::sync::Mutex<BTreeMap<String, InvocationTally>>>);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InvocationTally {
    pub count: u64,
    pub busy: Duration,
}

impl Invocations {
    fn record(&self, function: &str, took: Duration) {
        let mut all = self.0.lock().expect("invocations");
        let tally = all.entry(function.to_owned()).or_default();
        tally.count += 1;
        tally.busy += took;
    }

    pub fn snapshot(&self) -> BTreeMap<String, InvocationTally> {
        self.0.lock().expect("invocations").clone()
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl LocalRuntime {
    pub async fn start(
        config: &aws_config::SdkConfig,
        spec: &StackSpec,
        stack: &Stack,
        options: RuntimeOptions,
    ) -> Result<Self> {
        let settings = Settings {
            retry_budget: options.retry_budget,
            rate_horizon_compression: options.rate_horizon_compression,
        };
        let requests = RequestCounter::new();
        let invocations = Invocations::default();
        let scheduled = ScheduledRuns::default();
        let mut tasks = Vec::new();
        let mut api = None;
        let mut poller_streams = 0u64;
        let mut webhooks = None;
        for f in &spec.functions {
            let counted = SharedInterceptor::new(requests.tagged(&f.logical_id));
            let clients = AwsClients::with_interceptors(config, &[counted]);
            // The event source mapping's requests count as the function's.
            let sqs = clients.sqs.clone();
            let env = environment(f, spec, stack)?;
            let deps = Deps::from_clients(
                clients,
                &stack.table,
                &stack.bus,
                env.get("STOCKGUARD_DLQ_URL").map(String::as_str),
                settings.clone(),
            );
            // The same entry point as the function's `main`, from the same environment.
            let function = Function::new(&f.binary, deps, &|name| env.get(name).cloned())
                .map_err(|e| anyhow!("{}: {e}", f.logical_id))?;
            let function = Arc::new(function);
            match function.trigger() {
                Trigger::Http if f.binary == "shopify-webhooks" => webhooks = Some(function),
                Trigger::Http => api = Some(function),
                Trigger::Schedule => {
                    let Some(every) = f.schedule else {
                        return Err(anyhow!(
                            "{}: a scheduled function without a schedule",
                            f.logical_id
                        ));
                    };
                    let every = match (options.schedule_interval, f.binary.as_str()) {
                        (Some(every), _) => every,
                        (None, "recompute-buffers") => options.buffer_recompute_interval,
                        (None, "poll-walmart-orders" | "poll-ebay-orders") => {
                            options.order_poll_interval
                        }
                        (None, _) => every,
                    };
                    tasks.push(tokio::spawn(run_schedule(
                        f.logical_id.clone(),
                        function,
                        every,
                        f.timeout,
                        scheduled.clone(),
                    )));
                }
                Trigger::Queue => {
                    let event = f.queue_event.as_ref().ok_or_else(|| {
                        anyhow!(
                            "{}: a queue-driven function without an SQS event",
                            f.logical_id
                        )
                    })?;
                    if let Function::Inbound { detail_type, .. } = function.as_ref() {
                        // The bus rule must route this function's detail-type, and only it.
                        let routed = spec.detail_types_into(&event.queue);
                        if routed != [*detail_type] {
                            return Err(anyhow!(
                                "{}: applies {detail_type}, but {} receives {routed:?}",
                                f.logical_id,
                                event.queue
                            ));
                        }
                    }
                    let queue = stack.queue(&event.queue)?.clone();
                    let pollers = event
                        .maximum_concurrency
                        .unwrap_or(options.max_pollers_per_queue)
                        .min(options.max_pollers_per_queue);
                    for _ in 0..pollers.max(1) {
                        let poller = Poller {
                            function: f.logical_id.clone(),
                            invocations: invocations.clone(),
                            sqs: sqs.clone(),
                            queue_url: queue.url.clone(),
                            batch_size: event.batch_size.max(1),
                            window: Duration::from_secs(event.batching_window_seconds.max(0) as u64),
                            handler: function.clone(),
                            drop_share: if matches!(function.as_ref(), Function::ChannelSync(_)) {
                                options.drop_position_events
                            } else {
                                0.0
                            },
                            retry_backoff_seconds: options.retry_backoff_seconds,
                            faults: options.queue_faults.as_ref().map(|f| {
                                poller_streams += 1;
                                Arc::new(QueueFaultInjector::new(f, poller_streams))
                            }),
                        };
                        tasks.push(tokio::spawn(poller.run()));
                    }
                }
            }
        }
        let mut api_addr = None;
        if let Some(addr) = options.api_addr {
            let api = api
                .ok_or_else(|| anyhow!("the template has no reservations-api function to serve"))?;
            let (bound, task) =
                stockguard_handlers::runtime::serve_reservations_api(api, webhooks, addr).await?;
            api_addr = Some(bound);
            tasks.push(task);
        }
        Ok(Self {
            tasks,
            api_addr,
            requests,
            invocations,
            scheduled,
        })
    }
}

/// A function's environment as Lambda would set it in this stack: its literal variables, and
/// those that name a resource or a parameter resolved (queue URLs, parameter values; the webhook
/// secret's name as this stack names its secrets).
fn environment(
    f: &FunctionSpec,
    spec: &StackSpec,
    stack: &Stack,
) -> Result<BTreeMap<String, String>> {
    let mut env = f.env_values.clone();
    for (var, target) in &f.env_refs {
        let value = if var == WEBHOOK_SECRET_ENV {
            let secret = spec.parameters.get(target).ok_or_else(|| {
                anyhow!(
                    "{}: {WEBHOOK_SECRET_ENV} must name a parameter",
                    f.logical_id
                )
            })?;
            crate::fake_wiring::stack_secret_name(secret, &stack.prefix)
        } else if let Some(value) = spec.parameters.get(target) {
            value.clone()
        } else if spec.queue(target).is_some() {
            stack.queue(target)?.url.clone()
        } else {
            // The table and the bus: the dependencies already name them.
            continue;
        };
        env.insert(var.clone(), value);
    }
    Ok(env)
}

/// Invokes a scheduled function every `every`, as EventBridge Scheduler would, each time with
/// the deadline Lambda would give it (`timeout` from now).
async fn run_schedule(
    logical_id: String,
    function: Arc<Function>,
    every: Duration,
    timeout: Duration,
    answers: ScheduledRuns,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A schedule first fires one period after it is created, not at once.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let result = function
            .run_scheduled(std::time::SystemTime::now() + timeout)
            .await;
        match result {
            Ok(answer) => answers.record(&logical_id, &answer),
            Err(e) => tracing::warn!(function = %logical_id, error = %e, "scheduled run failed"),
        }
    }
}

struct Poller {
    function: String,
    invocations: Invocations,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    batch_size: i32,
    window: Duration,
    handler: Arc<Function>,
    retry_backoff_seconds: i32,
    drop_share: f64,
    faults: Option<Arc<QueueFaultInjector>>,
}

impl Poller {
    async fn run(self) {
        loop {
            if let Err(e) = self.poll_once().await {
                tracing::warn!(queue = %self.queue_url, error = format!("{e:#}"), "poll failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    async fn receive(&self, max: i32, wait: i32) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        Ok(self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?
            .messages
            .unwrap_or_default())
    }

    /// Makes a failed message visible again after `seconds`. If that cannot be done, the queue's
    /// own visibility timeout (minutes) applies, as on Lambda: said, since a local run then
    /// stalls on that message.
    async fn retry_after(&self, seconds: i32, receipt: &str) {
        let mut last = None;
        for attempt in 0..3u64 {
            let changed = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .send()
                .await;
            match changed {
                Ok(_) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
        }
        if let Some(e) = last {
            tracing::warn!(
                queue = %self.queue_url,
                error = format!("{:#}", anyhow::Error::from(e)),
                "a failed message waits for the queue's visibility timeout: its back-off could not be set"
            );
        }
    }

    async fn poll_once(&self) -> Result<()> {
        // Long polling keeps idle queues cheap for the emulator and for SQS alike.
        let mut messages = self.receive(self.batch_size.min(10), 5).await?;
        if messages.is_empty() {
            return Ok(());
        }
        // The batching window: keep gathering until the batch is full or the window closes.
        let deadline = tokio::time::Instant::now() + self.window;
        // Long polls that end when a message arrives or the window closes, as the event source
        // mapping waits: no request per few milliseconds while a batch fills.
        while (messages.len() as i32) < self.batch_size {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = left.as_secs_f64().ceil() as i32;
            let more = self
                .receive((self.batch_size - messages.len() as i32).min(10), wait)
                .await?;
            messages.extend(more);
        }
        if self.drop_share > 0.0 {
            let (lost, kept): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .partition(|_| rand::random::<f64>() < self.drop_share);
            for m in &lost {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await?;
            }
            messages = kept;
            if messages.is_empty() {
                return Ok(());
            }
        }
        if let Some(faults) = &self.faults {
            messages = faults.disturb(&self.sqs, &self.queue_url, messages).await?;
            if messages.is_empty() {
                return Ok(());
            }
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(to_lambda_record).collect();
        let started = tokio::time::Instant::now();
        let response = self.handler.handle_batch(event).await;
        self.invocations.record(&self.function, started.elapsed());
        let failed: std::collections::HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let mut done = Vec::new();
        for m in &messages {
            let id = m.message_id().unwrap_or_default();
            let receipt = m.receipt_handle().unwrap_or_default();
            if failed.contains(id) {
                let count: i32 = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                self.retry_after((self.retry_backoff_seconds * count).min(60), receipt)
                    .await;
            } else {
                done.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(done.len().to_string())
                        .receipt_handle(receipt)
                        .build()?,
                );
            }
        }
        // DeleteMessageBatch takes at most 10 entries.
        for chunk in done.chunks(10) {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await?;
        }
        Ok(())
    }
}

fn to_lambda_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id.clone();
    r.receipt_handle = m.receipt_handle.clone();
    r.body = m.body.clone();
    r.attributes = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    r.event_source = Some("aws:sqs".into());
    r
}
