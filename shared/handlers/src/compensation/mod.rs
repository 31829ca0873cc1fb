//! Compensation of an oversell (`OversellDetected`): the short order is recorded, the domain
//! decides (wait for inbound stock, cancel the cheapest order, or only notify; the inbound stock
//! is what restocks announced in their references, which reach this function too), the decision is
//! carried out (a cancellation through the channel's own API), and `OversellCompensated` is
//! published from `stockguard.ops`. A short order that waits is decided again at its deadline by
//! the scheduled re-check ([`Compensation::recheck_waits`]).

mod recheck;

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use stockguard_adapters::compensation_store::{ShortOrderRecord, ShortOrderStatus};
use stockguard_domain::compensation::{
    Action, CompensationPolicy, Decision, Inbound, Oversell, ShortOrder, announced_inbound, decide,
};
use stockguard_domain::outbound::SOURCE_CORE;
use stockguard_domain::types::parse_timestamp;
use stockguard_domain::{ChannelName, EntityId, Notification, Sku};
use tokio::sync::Mutex;

use crate::channel_sync::ChannelSync;
use crate::deps::{Deps, now_ms};
use crate::metrics::{Metrics, Unit};
use crate::records::{RecordFailure as Failure, handle_records};

pub use recheck::RecheckReport;

/// The action recorded when the stock came before a decision was needed.
const RESTOCKED: &str = "restocked";

fn retry(e: stockguard_adapters::AdapterError) -> Failure {
    Failure::Retry(e.to_string())
}

pub struct Compensation {
    deps: Deps,
    /// Channel clients by channel, built from the channel settings as the sync functions build
    /// theirs.
    clients: Mutex<HashMap<ChannelName, Arc<ChannelSync>>>,
}

/// What became of one `OversellDetected`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Published `OversellCompensated` with this action.
    Compensated { action: String, order_id: String },
    /// This oversell was already compensated (a redelivery).
    AlreadyDone,
    /// A restock's reference announced stock still owed to a SKU.
    InboundRecorded { sku: String, units: i64 },
    /// A restock that announced nothing more.
    NothingAnnounced,
}

impl Compensation {
    pub fn new(deps: Deps) -> Self {
        Self {
            deps,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        handle_records(
            &self.deps,
            event,
            "invalid",
            "oversell",
            |record| async move {
                let outcome = self.handle_record(&record).await?;
                tracing::info!(message_id = record.message_id, ?outcome, "oversell handled");
                Ok(())
            },
        )
        .await
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<Outcome, Failure> {
        let envelope: EventBridgeEvent<Value> = record
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .ok_or_else(|| Failure::Invalid("the body is not an EventBridge event".into()))?;
        if envelope.detail_type == "StockReceived" && !envelope.source.starts_with("stockguard.") {
            return self.announcement(&envelope.detail).await;
        }
        if envelope.source != SOURCE_CORE || envelope.detail_type != "OversellDetected" {
            return Err(Failure::Invalid(format!(
                "expected OversellDetected from {SOURCE_CORE}, got {:?} from {:?}",
                envelope.detail_type, envelope.source
            )));
        }
        let d = &envelope.detail;
        let text = |f: &str| {
            d[f].as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failure::Invalid(format!("`{f}` is missing")))
        };
        let sku = Sku::parse(&text("sku")?).map_err(Failure::Invalid)?;
        let order_id = text("order_id")?;
        let channel = text("channel")?;
        let shortfall = d["shortfall"]
            .as_i64()
            .filter(|s| *s > 0)
            .ok_or_else(|| Failure::Invalid("`shortfall` must be a positive integer".into()))?;
        let detected_at = parse_timestamp(&text("detected_at")?)
            .ok_or_else(|| Failure::Invalid("`detected_at` is not a timestamp".into()))?;
        self.compensate(&sku, &order_id, &channel, shortfall, detected_at)
            .await
    }

    async fn compensate(
        &self,
        sku: &Sku,
        order_id: &str,
        channel: &str,
        shortfall: i64,
        detected_at: i64,
    ) -> Result<Outcome, Failure> {
        let store = &self.deps.store;
        store
            .record_short_order(&ShortOrderRecord {
                sku: sku.clone(),
                order_id: order_id.to_owned(),
                channel: channel.to_owned(),
                shortfall,
                detected_at,
                status: ShortOrderStatus::Open,
            })
            .await
            .map_err(retry)?;
        let records = store.short_orders(sku).await.map_err(retry)?;
        if !records
            .iter()
            .any(|o| o.order_id == order_id && o.status == ShortOrderStatus::Open)
        {
            return Ok(Outcome::AlreadyDone);
        }
        let now = now_ms();
        let decision = match self.still_short(sku).await? {
            // Stock arrived (or another order was cancelled) before this ran.
            0 => None,
            short_now => {
                let oversell = Oversell {
                    order_id: order_id.to_owned(),
                    channel: channel.to_owned(),
                    shortfall: short_now,
                };
                let (policy, inbound, candidates) = self.inputs(sku, &records).await?;
                Some(decide(&oversell, &policy, &inbound, &candidates, now))
            }
        };
        let (action, acted_on) = self
            .settle(sku, order_id, channel, shortfall, decision)
            .await?;
        Ok(Outcome::Compensated {
            action,
            order_id: acted_on,
        })
    }

    /// Units the SKU is short now (0 when it is not).
    async fn still_short(&self, sku: &Sku) -> Result<i64, Failure> {
        let position = self.deps.store.position(sku).await.map_err(retry)?;
        Ok((-position.available()).max(0))
    }

    /// What a decision about `sku` reads: the policy, the stock on its way, and the short orders
    /// not settled yet (open, or waiting) with the units each still holds.
    async fn inputs(
        &self,
        sku: &Sku,
        records: &[ShortOrderRecord],
    ) -> Result<(CompensationPolicy, Vec<Inbound>, Vec<ShortOrder>), Failure> {
        let store = &self.deps.store;
        let policy = store.compensation_policy().await.map_err(retry)?;
        let inbound = store.inbound(sku).await.map_err(retry)?;
        let mut candidates = Vec::new();
        for o in records
            .iter()
            .filter(|o| o.status != ShortOrderStatus::Closed)
        {
            let Ok(id) = EntityId::parse(&o.order_id) else {
                continue;
            };
            let held = store
                .order(&id)
                .await
                .map_err(retry)?
                .map(|r| {
                    r.lines
                        .iter()
                        .filter(|l| &l.sku == sku)
                        .map(|l| l.remaining())
                        .sum::<i64>()
                })
                .unwrap_or(0);
            candidates.push(ShortOrder {
                order_id: o.order_id.clone(),
                channel: o.channel.clone(),
                units: held,
                placed_at: o.detected_at,
            });
        }
        Ok((policy, inbound, candidates))
    }

    /// Carries a decision about the short order `order_id` out (`None`: the stock came) and
    /// records it: a wait keeps the order waiting until its deadline; anything else closes it,
    /// and the order cancelled in its place. Publishes `OversellCompensated`. Answers the action
    /// and the order acted on.
    async fn settle(
        &self,
        sku: &Sku,
        order_id: &str,
        channel: &str,
        shortfall: i64,
        decision: Option<Decision>,
    ) -> Result<(String, String), Failure> {
        let store = &self.deps.store;
        let (action, acted_on, acted_channel, units) = match &decision {
            None => (
                RESTOCKED.to_owned(),
                order_id.to_owned(),
                channel.to_owned(),
                shortfall,
            ),
            Some(d) => self.carry_out(d).await?,
        };
        if let Some(Action::Wait { until }) = decision.as_ref().map(|d| &d.action) {
            store
                .wait_short_order(sku, order_id, *until)
                .await
                .map_err(retry)?;
        } else {
            let mut closed = vec![order_id.to_owned()];
            if acted_on != order_id && action == "cancel" {
                closed.push(acted_on.clone());
            }
            for id in &closed {
                store
                    .close_short_order(sku, id, &action)
                    .await
                    .map_err(retry)?;
            }
        }
        let event =
            Notification::oversell_compensated(sku, &acted_on, &acted_channel, &action, units);
        self.deps
            .publisher
            .publish(stockguard_domain::outbound::SOURCE_OPS, &[event])
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let mut m = Metrics::new(&[("Action", action.as_str())]);
        m.add("OversellsCompensated", Unit::Count, 1.0);
        m.flush();
        Ok((action, acted_on))
    }

    /// A `StockReceived` whose `reference` announces stock its delivery still owes
    /// ([`announced_inbound`]): recorded for the wait decision. The receipt itself is the
    /// StockReceived function's; one that is invalid or announces nothing is left to it.
    async fn announcement(&self, detail: &Value) -> Result<Outcome, Failure> {
        let announced = (|| {
            let sku = Sku::parse(detail["sku"].as_str()?).ok()?;
            let a = announced_inbound(detail["reference"].as_str()?)?;
            let at = parse_timestamp(detail["occurred_at"].as_str()?)?;
            Some((sku, a, at))
        })();
        let Some((sku, a, at)) = announced else {
            return Ok(Outcome::NothingAnnounced);
        };
        self.deps
            .store
            .record_inbound(&sku, &a, at)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        Ok(Outcome::InboundRecorded {
            sku: sku.to_string(),
            units: a.units,
        })
    }

    /// Carries a decision out. A cancellation goes through the channel's API; when no channel
    /// can be asked (no such channel configured, an order id the channel did not give), a
    /// person is told instead.
    async fn carry_out(&self, d: &Decision) -> Result<(String, String, String, i64), Failure> {
        let done = |action: &str| {
            Ok((
                action.to_owned(),
                d.order_id.clone(),
                d.channel.clone(),
                d.units,
            ))
        };
        match d.action {
            Action::Wait { .. } | Action::NotifyOnly => done(d.action.as_str()),
            Action::Cancel => match self.cancel(&d.channel, &d.order_id).await? {
                true => done("cancel"),
                false => done("notify_only"),
            },
        }
    }

    /// Cancels an order through its channel's API
    /// ([`stockguard_channels::ChannelClient::cancel_order`]). `false` when nothing could be
    /// asked of a channel: the channel is not configured, or the order id is not one the channel
    /// gave.
    async fn cancel(&self, channel: &str, order_id: &str) -> Result<bool, Failure> {
        let Ok(name) = ChannelName::parse(channel) else {
            return Ok(false);
        };
        let Some(settings) = self
            .deps
            .store
            .channel(&name)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?
        else {
            return Ok(false);
        };
        let sync = {
            let mut clients = self.clients.lock().await;
            clients
                .entry(name.clone())
                .or_insert_with(|| Arc::new(ChannelSync::new(self.deps.clone(), name.clone())))
                .clone()
        };
        let client = sync.client_for(&settings).await.map_err(Failure::Retry)?;
        client
            .cancel_order(order_id)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))
    }
}
