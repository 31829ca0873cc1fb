//! The load generator's own account of what it did, kept apart from stockguard's state: every
//! event it sent and whether the contract says it must take effect, every answer the API gave,
//! every order a channel took, every fault it injected on purpose. The checker holds the final
//! state against it.

use std::collections::{BTreeMap, BTreeSet};

/// One on-hand change as the contract's watermark rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delta {
    occurred_at: i64,
    units: i64,
    event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Count {
    occurred_at: i64,
    on_hand: i64,
}

/// The final position a SKU must have once everything is applied and every hold is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpectedPosition {
    pub on_hand: i64,
    pub hard_reserved: i64,
}

/// An event that must leave an idempotency record with one of these outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedEvent {
    pub event_id: String,
    pub detail_type: String,
    /// Outcomes that mean "applied as the contract says" (e.g. `applied`; `producer_replay` for
    /// a stale sequence; `inside_latest_count` for a delta the count already holds).
    pub outcomes: Vec<&'static str>,
    /// The units it moves per SKU: (sku, on-hand units, hard units), to recognise a double
    /// application in a position that is off.
    pub effect: Vec<(String, i64, i64)>,
}

/// A message the generator made poison on purpose, and the reason it must be dead-lettered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDeadLetter {
    /// A string only that message's body contains (its `event_id`, or a marker in garbage).
    pub marker: String,
    pub fault: FaultKind,
    /// The `reason_code` it must carry; `None`: any reason.
    pub reason: Option<&'static str>,
}

/// Every fault the run injects, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    QueueDrop,
    QueueDuplicate,
    QueueReorder,
    RuntimeKill,
    ChannelThrottleStorm,
    ChannelServerErrors,
    ChannelTimeouts,
    ChannelSlow,
    ChannelBehindOurBack,
    ShopifyWebhookRedelivery,
    AmazonNotificationRedelivery,
    ProducerReplay,
    StaleSequence,
    ReusedId,
    GarbageEvent,
    GarbageRequest,
    ForgedWebhook,
}

impl FaultKind {
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::QueueDrop => "queue: deliveries lost in flight",
            FaultKind::QueueDuplicate => "queue: deliveries duplicated",
            FaultKind::QueueReorder => "queue: batches reordered",
            FaultKind::RuntimeKill => "runtime killed mid-batch and restarted",
            FaultKind::ChannelThrottleStorm => "channel: 429 storms",
            FaultKind::ChannelServerErrors => "channel: 5xx bursts",
            FaultKind::ChannelTimeouts => "channel: timeout spells",
            FaultKind::ChannelSlow => "channel: slow-answer spells",
            FaultKind::ChannelBehindOurBack => "channel: quantity changed behind our back",
            FaultKind::ShopifyWebhookRedelivery => "Shopify webhooks duplicated or late (rate)",
            FaultKind::AmazonNotificationRedelivery => "Amazon notifications duplicated (rate)",
            FaultKind::ProducerReplay => "producer: replays (same event_id and payload)",
            FaultKind::StaleSequence => "producer: stale sequences",
            FaultKind::ReusedId => "producer: reused event_id, other payload",
            FaultKind::GarbageEvent => "producer: garbage events",
            FaultKind::GarbageRequest => "API: garbage requests",
            FaultKind::ForgedWebhook => "webhook: forged signatures",
        }
    }
}

/// An order a marketplace took from its buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceOrder {
    pub order_id: String,
    pub channel: String,
    pub lines: Vec<(String, i64)>,
    /// Shipped or cancelled, by the event that settled it.
    pub settled: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    deltas: BTreeMap<String, Vec<Delta>>,
    counts: BTreeMap<String, Vec<Count>>,
    hard: BTreeMap<String, i64>,
    pub skus: BTreeSet<String>,
    pub accepted: Vec<AcceptedEvent>,
    pub dead_letters: Vec<ExpectedDeadLetter>,
    pub faults: BTreeMap<FaultKind, u64>,
    /// Channels that had faults injected at any time (their sync may dead-letter a push).
    pub faulted_channels: BTreeSet<String>,
    /// Reservations the API answered `held` for.
    pub held: BTreeSet<String>,
    /// Reservations the API answered `confirmed` for (and so hold hard units at the end).
    pub confirmed: BTreeSet<String>,
    pub orders: Vec<MarketplaceOrder>,
    /// Events sent, by detail-type or API call (faults included).
    pub sent: BTreeMap<String, u64>,
    /// Checkouts by how they ended.
    pub checkouts: BTreeMap<&'static str, u64>,
    /// Answers of the API or the webhook route that break the contract (a garbage request
    /// accepted, a forged webhook taken), as the generator saw them.
    pub answers_wrong: Vec<String>,
}

impl Ledger {
    pub fn fault(&mut self, kind: FaultKind, n: u64) {
        *self.faults.entry(kind).or_default() += n;
    }

    pub fn sent(&mut self, what: &str) {
        *self.sent.entry(what.to_owned()).or_default() += 1;
    }

    pub fn checkout(&mut self, how: &'static str) {
        *self.checkouts.entry(how).or_default() += 1;
    }

    /// An on-hand delta the contract applies unless a later count holds it.
    pub fn on_hand_delta(&mut self, sku: &str, occurred_at: i64, units: i64, event_id: &str) {
        self.skus.insert(sku.to_owned());
        self.deltas.entry(sku.to_owned()).or_default().push(Delta {
            occurred_at,
            units,
            event_id: event_id.to_owned(),
        });
    }

    pub fn count(&mut self, sku: &str, occurred_at: i64, on_hand: i64) {
        self.skus.insert(sku.to_owned());
        self.counts.entry(sku.to_owned()).or_default().push(Count {
            occurred_at,
            on_hand,
        });
    }

    pub fn hard(&mut self, sku: &str, units: i64) {
        self.skus.insert(sku.to_owned());
        *self.hard.entry(sku.to_owned()).or_default() += units;
    }

    pub fn accept(
        &mut self,
        event_id: &str,
        detail_type: &str,
        outcomes: Vec<&'static str>,
        effect: Vec<(String, i64, i64)>,
    ) {
        self.accepted.push(AcceptedEvent {
            event_id: event_id.to_owned(),
            detail_type: detail_type.to_owned(),
            outcomes,
            effect,
        });
    }

    pub fn expect_dead_letter(
        &mut self,
        marker: &str,
        fault: FaultKind,
        reason: Option<&'static str>,
    ) {
        self.dead_letters.push(ExpectedDeadLetter {
            marker: marker.to_owned(),
            fault,
            reason,
        });
    }

    /// What the SKU holds on hand by the generator's account right now (for a count to report).
    pub fn on_hand_now(&self, sku: &str) -> i64 {
        self.expected(sku).on_hand
    }

    /// The contract's final position: the latest count plus every delta that occurred after it
    /// (all deltas without a count), and every hard unit not yet settled.
    pub fn expected(&self, sku: &str) -> ExpectedPosition {
        let latest = self
            .counts
            .get(sku)
            .and_then(|c| c.iter().max_by_key(|c| c.occurred_at));
        let deltas = self.deltas.get(sku).map(Vec::as_slice).unwrap_or_default();
        let on_hand = match latest {
            Some(c) => {
                c.on_hand
                    + deltas
                        .iter()
                        .filter(|d| d.occurred_at > c.occurred_at)
                        .map(|d| d.units)
                        .sum::<i64>()
            }
            None => deltas.iter().map(|d| d.units).sum(),
        };
        ExpectedPosition {
            on_hand,
            hard_reserved: self.hard.get(sku).copied().unwrap_or(0),
        }
    }

    /// Whether the delta `event_id` counts in the final on-hand (not held by a later count).
    pub fn delta_counts(&self, sku: &str, event_id: &str) -> bool {
        let latest = self
            .counts
            .get(sku)
            .and_then(|c| c.iter().map(|c| c.occurred_at).max());
        self.deltas
            .get(sku)
            .into_iter()
            .flatten()
            .any(|d| d.event_id == event_id && latest.is_none_or(|t| d.occurred_at > t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_holds_the_deltas_before_it_whatever_order_they_were_recorded_in() {
        let mut l = Ledger::default();
        l.on_hand_delta("A", 10, 100, "r1");
        l.on_hand_delta("A", 30, 5, "r2");
        l.count("A", 20, 90);
        l.on_hand_delta("A", 15, -3, "adj");
        l.count("A", 5, 1_000); // older than the latest count: ignored
        assert_eq!(l.expected("A").on_hand, 95);
        assert!(l.delta_counts("A", "r2"));
        assert!(!l.delta_counts("A", "r1"));
        l.hard("A", 4);
        l.hard("A", -1);
        assert_eq!(l.expected("A").hard_reserved, 3);
    }
}

/// What the checker holds the final state against, drawn from a [`Ledger`].
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub positions: BTreeMap<String, ExpectedPosition>,
    /// Accepted events with the effect each has on the final position (on-hand units held by a
    /// later count count as 0).
    pub accepted: Vec<AcceptedEvent>,
    pub held: BTreeSet<String>,
    pub confirmed: BTreeSet<String>,
    /// Orders the channels took, with their lines: a position off by exactly one order's line
    /// is that order applied twice.
    pub orders: Vec<MarketplaceOrder>,
    pub dead_letters: Vec<ExpectedDeadLetter>,
    pub faulted_channels: BTreeSet<String>,
    pub answers_wrong: Vec<String>,
}

impl Ledger {
    pub fn expectations(&self) -> Expected {
        let accepted = self
            .accepted
            .iter()
            .map(|a| {
                let mut a = a.clone();
                for (sku, on_hand, _) in &mut a.effect {
                    if *on_hand != 0 && !self.delta_counts(sku, &a.event_id) {
                        *on_hand = 0;
                    }
                }
                a
            })
            .collect();
        Expected {
            positions: self
                .skus
                .iter()
                .map(|s| (s.clone(), self.expected(s)))
                .collect(),
            accepted,
            held: self.held.clone(),
            confirmed: self.confirmed.clone(),
            orders: self.orders.clone(),
            dead_letters: self.dead_letters.clone(),
            faulted_channels: self.faulted_channels.clone(),
            answers_wrong: self.answers_wrong.clone(),
        }
    }
}
