//! The functions of the stack, one entry point each: which handler a binary runs (named by its
//! binary and its environment), and how it takes an SQS batch, a schedule tick or an HTTP
//! request. The Lambda `main`s ([`run`]) and the local runtime call the same [`Function`], so a
//! test of the local stack runs the Lambda entry points themselves; time budgets come from the
//! invocation's deadline, here and nowhere else.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use http::HeaderMap;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use stockguard_domain::ChannelName;
use stockguard_domain::inbound::INBOUND_DETAIL_TYPES;

use crate::amazon_notifications::AmazonNotifications;
use crate::batch::handle_batch;
use crate::buffers::BufferRecompute;
use crate::channel_sync::ChannelSync;
use crate::compensation::Compensation;
use crate::deps::{Deps, now_ms};
use crate::http_api::{HttpAnswer, MAX_API_BODY_BYTES, route, too_large, webhook_refused};
use crate::order_polls::{OrderPoller, PollSettings, PolledChannel};
use crate::shopify_partner_events::ShopifyPartnerEvents;
use crate::shopify_webhooks::{ShopifyWebhooks, WebhookHeaders};

/// The expiry sweep stops this long before its invocation's deadline, to finish inside it.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// Reconciliation stops this long before its deadline; its report says where the next resumes.
const RECONCILE_MARGIN: Duration = Duration::from_secs(60);
/// The wait re-check stops this long before its deadline (a cancellation is a few channel calls);
/// the waits it did not reach stay due.
const RECHECK_MARGIN: Duration = Duration::from_secs(20);

/// A function's environment: the value of a variable, as Lambda would set it.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One function of the stack, built once per cold start and kept warm between invocations.
pub enum Function {
    /// Applies one inbound detail-type from its queue.
    Inbound {
        detail_type: &'static str,
        deps: Deps,
    },
    /// Pushes one channel's quantities (`STOCKGUARD_CHANNEL` names it).
    ChannelSync(ChannelSync),
    AmazonNotifications(AmazonNotifications),
    /// Shopify's webhooks from its EventBridge partner event source, queued by a rule.
    ShopifyPartnerEvents(ShopifyPartnerEvents),
    CompensateOversell(Compensation),
    /// Invoked by its schedule.
    Scheduled(Box<dyn ScheduledRun>),
    /// `POST /v1/reservations`, confirm, release, availability and buffers.
    ReservationsApi(Deps),
    /// `POST /v1/webhooks/shopify`.
    ShopifyWebhooks(ShopifyWebhooks),
}

/// A function a schedule invokes: one run that must end by `deadline` (its invocation's),
/// reporting as JSON. A new scheduled function implements this and adds its arm to
/// [`Function::new`].
pub trait ScheduledRun: Send + Sync {
    fn run(&self, deadline: SystemTime) -> BoxFuture<'_, Result<Value, String>>;
}

/// The time from now to `deadline`, less `margin` to finish and report in.
pub fn budget(deadline: SystemTime, margin: Duration) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(margin)
}

/// Releases lapsed reservations.
pub struct ExpireReservations(pub Deps);

impl ScheduledRun for ExpireReservations {
    fn run(&self, deadline: SystemTime) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let budget = budget(deadline, EXPIRY_MARGIN);
            let report = Box::pin(crate::reservations::expire_lapsed(&self.0, budget))
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(?report, "expiry sweep done");
            Ok(json!({"expired": report.expired, "already_settled": report.already_settled}))
        })
    }
}

/// Compares what each channel shows with what it should, and repairs drift.
pub struct ReconcileChannels(pub Deps);

impl ScheduledRun for ReconcileChannels {
    fn run(&self, deadline: SystemTime) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let syncs = Box::pin(crate::reconcile::channel_syncs(&self.0)).await?;
            let budget = budget(deadline, RECONCILE_MARGIN);
            let report = Box::pin(crate::reconcile::reconcile_all(&syncs, budget)).await;
            tracing::info!(?report, "reconciliation done");
            Ok(json!({
                "checked": report.checked, "drift": report.drift.len(),
                "drift_units": report.drift_units,
                "repaired": report.drift.iter().filter(|d| d.repaired).count(),
                "repaired_upward": report.repaired_upward(), "deferred": report.deferred(),
                "errors": report.errors,
                "resume_after": report.resume_after,
            }))
        })
    }
}

/// Decides again about short orders whose wait for inbound stock has run out.
pub struct RecheckWaits(pub Compensation);

impl ScheduledRun for RecheckWaits {
    fn run(&self, deadline: SystemTime) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let budget = budget(deadline, RECHECK_MARGIN);
            let report = Box::pin(self.0.recheck_waits(now_ms(), budget)).await;
            if report.errors.is_empty() {
                tracing::info!(?report, "wait re-check done");
            } else {
                tracing::warn!(?report, "wait re-check done with errors");
            }
            Ok(json!({
                "due": report.due, "skipped": report.skipped, "actions": report.actions,
                "errors": report.errors,
            }))
        })
    }
}

/// Kept warm between runs, as Lambda keeps a function's state between invocations.
impl ScheduledRun for BufferRecompute {
    fn run(&self, _deadline: SystemTime) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let report = Box::pin(BufferRecompute::run(self, now_ms())).await;
            if report.errors.is_empty() {
                tracing::info!(?report, "buffer recompute done");
            } else {
                tracing::warn!(?report, "buffer recompute done with errors");
            }
            Ok(json!({
                "skus_recomputed": report.skus_recomputed,
                "buffers_changed": report.buffers_changed,
                "channels_assessed": report.channels_assessed, "errors": report.errors,
            }))
        })
    }
}

/// What invokes a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Queue,
    Schedule,
    Http,
}

impl Function {
    /// The function `binary` (its package under `functions/`) runs, with the variables it reads
    /// from `env` beyond what `deps` holds. An unknown binary or a missing variable is an error.
    pub fn new(binary: &str, deps: Deps, env: Env) -> Result<Self, String> {
        Ok(match binary {
            "sync-channel" => {
                let name = env("STOCKGUARD_CHANNEL")
                    .ok_or("environment variable STOCKGUARD_CHANNEL is required")?;
                let channel = ChannelName::parse(&name)?;
                Function::ChannelSync(ChannelSync::new(deps, channel))
            }
            "amazon-notifications" => Function::AmazonNotifications(AmazonNotifications::new(deps)),
            "shopify-partner-events" => {
                Function::ShopifyPartnerEvents(ShopifyPartnerEvents::new(deps))
            }
            "compensate-oversell" => Function::CompensateOversell(Compensation::new(deps)),
            "expire-reservations" => Function::Scheduled(Box::new(ExpireReservations(deps))),
            "recheck-waits" => Function::Scheduled(Box::new(RecheckWaits(Compensation::new(deps)))),
            "reconcile-channels" => Function::Scheduled(Box::new(ReconcileChannels(deps))),
            "recompute-buffers" => {
                Function::Scheduled(Box::new(BufferRecompute::from_env(deps, env)?))
            }
            "poll-walmart-orders" | "poll-ebay-orders" => {
                let kind = if binary == "poll-walmart-orders" {
                    PolledChannel::Walmart
                } else {
                    PolledChannel::Ebay
                };
                let settings = PollSettings::from_env(env)?;
                Function::Scheduled(Box::new(OrderPoller::new(deps, kind, settings)))
            }
            "reservations-api" => Function::ReservationsApi(deps),
            "shopify-webhooks" => Function::ShopifyWebhooks(ShopifyWebhooks::from_env(deps, env)?),
            other => match inbound_detail_type(other) {
                Some(detail_type) => Function::Inbound { detail_type, deps },
                None => return Err(format!("{other} is not one of stockguard's functions")),
            },
        })
    }

    pub fn trigger(&self) -> Trigger {
        match self {
            Function::Inbound { .. }
            | Function::ChannelSync(_)
            | Function::AmazonNotifications(_)
            | Function::ShopifyPartnerEvents(_)
            | Function::CompensateOversell(_) => Trigger::Queue,
            Function::Scheduled(_) => Trigger::Schedule,
            Function::ReservationsApi(_) | Function::ShopifyWebhooks(_) => Trigger::Http,
        }
    }

    /// Handles one SQS batch, answering with the records to retry. A function that no queue
    /// invokes fails every record, so that nothing is lost.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        match self {
            // Boxed: the handlers' futures are deep, and the runtimes nest them further.
            Function::Inbound { detail_type, deps } => {
                Box::pin(handle_batch(deps, detail_type, event)).await
            }
            Function::ChannelSync(sync) => {
                let (response, report) = Box::pin(sync.handle_batch(event)).await;
                tracing::info!(?report, "sync batch done");
                response
            }
            Function::AmazonNotifications(n) => Box::pin(n.handle_batch(event)).await,
            Function::ShopifyPartnerEvents(p) => Box::pin(p.handle_batch(event)).await,
            Function::CompensateOversell(c) => Box::pin(c.handle_batch(event)).await,
            Function::Scheduled(_)
            | Function::ReservationsApi(_)
            | Function::ShopifyWebhooks(_) => {
                tracing::error!("an SQS batch reached a function that no queue invokes");
                let mut response = SqsBatchResponse::default();
                response.batch_item_failures = event
                    .records
                    .iter()
                    .map(|r| {
                        let mut f = aws_lambda_events::event::sqs::BatchItemFailure::default();
                        f.item_identifier = r.message_id.clone().unwrap_or_default();
                        f
                    })
                    .collect();
                response
            }
        }
    }

    /// One scheduled run that must end by `deadline` (the invocation's). Its report, as JSON.
    pub async fn run_scheduled(&self, deadline: SystemTime) -> Result<Value, String> {
        match self {
            Function::Scheduled(scheduled) => scheduled.run(deadline).await,
            _ => Err("a schedule tick reached a function that no schedule invokes".into()),
        }
    }

    /// Answers one HTTP request whose body has been read whole (API Gateway reads it, 10 MB at
    /// most; the webhook function measures it before use).
    pub async fn answer_http(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> HttpAnswer {
        match self {
            // API Gateway has already read the body; it is measured before it is parsed.
            Function::ReservationsApi(deps) => {
                match too_large(Some(body.len()), MAX_API_BODY_BYTES) {
                    Some(refused) => refused,
                    None => Box::pin(route(deps, method, path, body)).await,
                }
            }
            Function::ShopifyWebhooks(webhooks) => {
                match webhook_refused(method, Some(body.len())) {
                    Some(refused) => refused,
                    None => {
                        let headers = WebhookHeaders::from_map(headers);
                        Box::pin(webhooks.handle(&headers, body)).await
                    }
                }
            }
            _ => HttpAnswer {
                status: 404,
                body: json!({"error": "not_found", "message": "this function serves no HTTP route"}),
            },
        }
    }
}

/// The inbound detail-type a binary applies: `order-placed` applies `OrderPlaced`.
fn inbound_detail_type(binary: &str) -> Option<&'static str> {
    INBOUND_DETAIL_TYPES
        .into_iter()
        .find(|d| kebab_case(d) == binary)
}

fn kebab_case(pascal: &str) -> String {
    let mut out = String::with_capacity(pascal.len() + 4);
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `main` of every function: builds `binary`'s function from the environment and serves
/// its invocations until Lambda stops it.
pub async fn run(binary: &str) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let deps = Deps::from_env().await?;
    let function = Function::new(binary, deps, &env)?;
    let function = &function;
    match function.trigger() {
        Trigger::Queue => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
                Ok::<_, lambda_runtime::Error>(Box::pin(function.handle_batch(event.payload)).await)
            }))
            .await
        }
        Trigger::Schedule => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                let deadline = event.context.deadline();
                Ok::<_, lambda_runtime::Error>(Box::pin(function.run_scheduled(deadline)).await?)
            }))
            .await
        }
        Trigger::Http => {
            lambda_http::run(lambda_http::service_fn(
                move |req: lambda_http::Request| async move {
                    let answer = Box::pin(function.answer_http(
                        req.method().as_str(),
                        req.uri().path(),
                        req.headers(),
                        req.body().as_ref(),
                    ))
                    .await;
                    Ok::<_, lambda_http::Error>(
                        crate::runtime::to_response(answer)?.map(lambda_http::Body::from),
                    )
                },
            ))
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::Settings;

    /// Dependencies that are never called: building a function calls nothing.
    fn deps() -> Deps {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Deps::new(&config, "table", "bus", None, Settings::default())
    }

    fn build(binary: &str, vars: &[(&str, &str)]) -> Result<Function, String> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Function::new(binary, deps(), &env)
    }

    #[test]
    fn every_binary_is_one_function_with_its_trigger() {
        let cases = [
            ("order-placed", Trigger::Queue),
            ("stock-counted", Trigger::Queue),
            ("amazon-notifications", Trigger::Queue),
            ("shopify-partner-events", Trigger::Queue),
            ("compensate-oversell", Trigger::Queue),
            ("expire-reservations", Trigger::Schedule),
            ("recheck-waits", Trigger::Schedule),
            ("reconcile-channels", Trigger::Schedule),
            ("recompute-buffers", Trigger::Schedule),
            ("poll-walmart-orders", Trigger::Schedule),
            ("poll-ebay-orders", Trigger::Schedule),
            ("reservations-api", Trigger::Http),
        ];
        for (binary, trigger) in cases {
            let function = build(binary, &[]).unwrap_or_else(|e| panic!("{binary}: {e}"));
            assert_eq!(function.trigger(), trigger, "{binary}");
        }
        let sync = build("sync-channel", &[("STOCKGUARD_CHANNEL", "ebay")]).unwrap();
        assert!(matches!(&sync, Function::ChannelSync(s) if s.channel.as_str() == "ebay"));
        let webhooks = build(
            "shopify-webhooks",
            &[("STOCKGUARD_SHOPIFY_WEBHOOK_SECRET", "s")],
        )
        .unwrap();
        assert_eq!(webhooks.trigger(), Trigger::Http);
        assert!(matches!(
            build("order-placed", &[]).unwrap(),
            Function::Inbound {
                detail_type: "OrderPlaced",
                ..
            }
        ));
    }

    #[test]
    fn a_function_that_cannot_run_as_configured_does_not_start() {
        let err = |binary: &str, vars: &[(&str, &str)]| match build(binary, vars) {
            Ok(_) => panic!("{binary} {vars:?} started"),
            Err(e) => e,
        };
        assert!(err("order-teleported", &[]).contains("order-teleported"));
        assert!(err("sync-channel", &[]).contains("STOCKGUARD_CHANNEL"));
        assert!(err("sync-channel", &[("STOCKGUARD_CHANNEL", "Not A Name")]).contains("channel"));
        assert!(err("shopify-webhooks", &[]).contains("STOCKGUARD_SHOPIFY_WEBHOOK_SECRET"));
        assert!(
            err(
                "poll-ebay-orders",
                &[("STOCKGUARD_POLL_OVERLAP_SECONDS", "-5")]
            )
            .contains("STOCKGUARD_POLL_OVERLAP_SECONDS")
        );
        assert!(
            err(
                "recompute-buffers",
                &[("STOCKGUARD_RECONCILE_MINUTES", "often")]
            )
            .contains("not a number")
        );
    }

    #[test]
    fn a_budget_is_the_time_to_the_deadline_less_the_margin() {
        let now = SystemTime::now();
        let left = budget(now + Duration::from_secs(60), EXPIRY_MARGIN);
        assert!(
            left <= Duration::from_secs(55) && left > Duration::from_secs(50),
            "{left:?}"
        );
        assert_eq!(
            budget(now + Duration::from_secs(3), EXPIRY_MARGIN),
            Duration::ZERO
        );
        assert_eq!(
            budget(now - Duration::from_secs(1), Duration::ZERO),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn an_invocation_of_the_wrong_kind_loses_nothing() {
        let sweep = build("expire-reservations", &[]).unwrap();
        let mut event = SqsEvent::default();
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.message_id = Some("m1".into());
        event.records.push(record);
        let response = sweep.handle_batch(event).await;
        assert_eq!(response.batch_item_failures.len(), 1, "left for the retry");
        let api = build("reservations-api", &[]).unwrap();
        assert!(api.run_scheduled(SystemTime::now()).await.is_err());
        let answer = sweep
            .answer_http("GET", "/v1/availability/A", &HeaderMap::new(), b"")
            .await;
        assert_eq!(answer.status, 404);
    }

    #[test]
    fn each_inbound_binary_applies_its_detail_type() {
        assert_eq!(inbound_detail_type("order-placed"), Some("OrderPlaced"));
        assert_eq!(inbound_detail_type("demand-signal"), Some("DemandSignal"));
        assert_eq!(
            inbound_detail_type("reservation-requested"),
            Some("ReservationRequested")
        );
        assert_eq!(inbound_detail_type("OrderPlaced"), None);
        assert_eq!(inbound_detail_type("order-teleported"), None);
        for d in INBOUND_DETAIL_TYPES {
            assert_eq!(inbound_detail_type(&kebab_case(d)), Some(d));
        }
    }
}
