//! What to do about an oversell: the order is a fact, so stock that is short must either arrive
//! in time, or an order must be cancelled where that costs least, or a person must be told.
//! Pure: the handler gathers the inbound stock and the short orders and carries the decision out.

use std::collections::BTreeMap;

use crate::types::{Millis, parse_timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Wait for inbound stock or cancel an order.
    Compensate,
    /// Only report the oversell; a person decides.
    NotifyOnly,
}

impl Policy {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "compensate" => Ok(Self::Compensate),
            "notify_only" => Ok(Self::NotifyOnly),
            other => Err(format!(
                "compensation policy {other:?} must be compensate or notify_only"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compensate => "compensate",
            Self::NotifyOnly => "notify_only",
        }
    }
}

/// A seller's compensation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CompensationPolicy {
    pub policy: Policy,
    /// How long a short order may wait for inbound stock before one is cancelled instead.
    pub max_wait_ms: Millis,
    /// The cost of a seller cancellation, per channel: marketplaces count cancellations against
    /// the seller's metrics, a storefront only loses the sale.
    pub cancel_penalty: BTreeMap<String, f64>,
    /// The cost on a channel not listed.
    pub default_penalty: f64,
}

impl Default for CompensationPolicy {
    fn default() -> Self {
        Self {
            policy: Policy::Compensate,
            max_wait_ms: 24 * 3600 * 1000,
            cancel_penalty: [
                ("storefront", 1.0),
                ("shopify", 2.0),
                ("ebay", 5.0),
                ("walmart", 8.0),
                ("amazon", 10.0),
            ]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
            default_penalty: 5.0,
        }
    }
}

impl CompensationPolicy {
    pub fn penalty(&self, channel: &str) -> f64 {
        self.cancel_penalty
            .get(channel)
            .copied()
            .unwrap_or(self.default_penalty)
    }
}

/// Stock on its way: a restock with an expected arrival, or a return not yet received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub units: i64,
    pub expected_at: Millis,
}

/// An order holding units of the oversold SKU, which could be cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOrder {
    pub order_id: String,
    pub channel: String,
    /// Units of the SKU it still holds (not shipped, not cancelled).
    pub units: i64,
    pub placed_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Inbound stock covers the shortfall by `until`; check again then.
    Wait { until: Millis },
    /// Cancel this order (on `channel`, `units` of the SKU).
    Cancel,
    /// Tell a person: the policy says so, or nothing can be cancelled.
    NotifyOnly,
}

impl Action {
    /// The `action` of `OversellCompensated`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Wait { .. } => "wait",
            Self::Cancel => "cancel",
            Self::NotifyOnly => "notify_only",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// The order acted on: the one cancelled, else the one reported short.
    pub order_id: String,
    pub channel: String,
    pub units: i64,
    /// Why, for the log and the event: `policy`, `inbound_stock`, `cheapest_cancel`,
    /// `nothing_to_cancel`.
    pub reason: &'static str,
}

/// The oversell as `OversellDetected` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversell {
    pub order_id: String,
    pub channel: String,
    pub shortfall: i64,
}

/// Decides what to do about `shortfall` units of a SKU: notify only if the policy says so; wait
/// when inbound stock due within the allowed wait (and not overdue) covers it; otherwise cancel the most
/// recent short order on the channel whose cancellation costs least.
pub fn decide(
    oversell: &Oversell,
    policy: &CompensationPolicy,
    inbound: &[Inbound],
    orders: &[ShortOrder],
    now: Millis,
) -> Decision {
    let reported = |action, reason| Decision {
        action,
        order_id: oversell.order_id.clone(),
        channel: oversell.channel.clone(),
        units: oversell.shortfall,
        reason,
    };
    if policy.policy == Policy::NotifyOnly {
        return reported(Action::NotifyOnly, "policy");
    }
    let deadline = now.saturating_add(policy.max_wait_ms);
    let mut arriving: Vec<&Inbound> = inbound
        .iter()
        // A delivery already overdue is not counted on: nothing says when it comes.
        .filter(|i| i.units > 0 && i.expected_at >= now && i.expected_at <= deadline)
        .collect();
    arriving.sort_by_key(|i| i.expected_at);
    let mut covered = 0;
    for i in arriving {
        covered += i.units;
        if covered >= oversell.shortfall {
            return reported(
                Action::Wait {
                    until: i.expected_at.max(now),
                },
                "inbound_stock",
            );
        }
    }
    let cheapest = orders.iter().filter(|o| o.units > 0).min_by(|a, b| {
        policy
            .penalty(&a.channel)
            .total_cmp(&policy.penalty(&b.channel))
            // The most recent order: its buyer waited least and is told soonest.
            .then(b.placed_at.cmp(&a.placed_at))
            .then(a.order_id.cmp(&b.order_id))
    });
    match cheapest {
        Some(o) => Decision {
            action: Action::Cancel,
            order_id: o.order_id.clone(),
            channel: o.channel.clone(),
            units: o.units.min(oversell.shortfall),
            reason: "cheapest_cancel",
        },
        None => reported(Action::NotifyOnly, "nothing_to_cancel"),
    }
}

/// Decides again about a short order whose wait has run out (`now` is at or after its `until`)
/// while the SKU is still `shortfall` units short. Only stock due after `now` counts (a delivery
/// that was due and has not come is not counted on twice), and only within the wait the seller
/// allows from `detected_at`, so a slipping delivery cannot keep an order waiting for ever.
pub fn recheck(
    oversell: &Oversell,
    policy: &CompensationPolicy,
    inbound: &[Inbound],
    orders: &[ShortOrder],
    detected_at: Millis,
    now: Millis,
) -> Decision {
    let left = detected_at
        .saturating_add(policy.max_wait_ms)
        .saturating_sub(now)
        .max(0);
    let policy = CompensationPolicy {
        max_wait_ms: left,
        ..policy.clone()
    };
    let later: Vec<Inbound> = inbound
        .iter()
        .filter(|i| i.expected_at > now)
        .cloned()
        .collect();
    decide(oversell, &policy, &later, orders, now)
}

/// Stock a delivery still owes, announced in a `StockReceived`'s `reference` (the contract gives
/// the event no field for it, so the convention lives in that free text):
/// `<delivery> expected=<units> eta=<RFC 3339>`, for example
/// `PO-881 expected=24 eta=2026-12-01T09:00:00Z`. The event's own `quantity` is on hand at once,
/// as the contract says; `expected` more units of its SKU are due by `eta`. A later receipt of the
/// same delivery restates what it still owes, `expected=0` when complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The delivery (the reference's first word: a purchase order, an ASN).
    pub delivery: String,
    /// Units still due, 0 to 1,000,000.
    pub units: i64,
    pub eta: Millis,
}

/// The announcement a `reference` carries; `None` when it carries none or a malformed one (the
/// receipt itself still applies: this is only a hint for compensation).
pub fn announced_inbound(reference: &str) -> Option<Announcement> {
    let mut words = reference.split_whitespace();
    let delivery = words.next().filter(|w| !w.contains('='))?.to_owned();
    let mut units = None;
    let mut eta = None;
    for w in words {
        if let Some(v) = w.strip_prefix("expected=") {
            units = v
                .parse::<i64>()
                .ok()
                .filter(|u| (0..=1_000_000).contains(u));
        } else if let Some(v) = w.strip_prefix("eta=") {
            eta = parse_timestamp(v);
        }
    }
    Some(Announcement {
        delivery,
        units: units?,
        eta: eta?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;
    const NOW: Millis = 1_800_000_000_000;

    fn oversell(shortfall: i64) -> Oversell {
        Oversell {
            order_id: "amz-9".into(),
            channel: "amazon".into(),
            shortfall,
        }
    }

    fn order(id: &str, channel: &str, units: i64, placed_at: Millis) -> ShortOrder {
        ShortOrder {
            order_id: id.into(),
            channel: channel.into(),
            units,
            placed_at,
        }
    }

    fn orders() -> Vec<ShortOrder> {
        vec![
            order("amz-9", "amazon", 2, NOW - HOUR),
            order("wm-1", "walmart", 1, NOW - 3 * HOUR),
            order("shop-1", "shopify", 1, NOW - 5 * HOUR),
            order("shop-2", "shopify", 3, NOW - 2 * HOUR),
            order("shop-3", "shopify", 0, NOW),
        ]
    }

    #[test]
    fn notify_only_policy_only_reports() {
        let policy = CompensationPolicy {
            policy: Policy::NotifyOnly,
            ..Default::default()
        };
        let inbound = [Inbound {
            units: 5,
            expected_at: NOW + HOUR,
        }];
        let d = decide(&oversell(2), &policy, &inbound, &orders(), NOW);
        assert_eq!(d.action, Action::NotifyOnly);
        assert_eq!(
            (d.order_id.as_str(), d.units, d.reason),
            ("amz-9", 2, "policy")
        );
    }

    #[test]
    fn waits_when_inbound_stock_covers_the_shortfall_in_time() {
        let inbound = [
            Inbound {
                units: 1,
                expected_at: NOW + 3 * HOUR,
            },
            Inbound {
                units: 1,
                expected_at: NOW + HOUR,
            },
            // Too late to count.
            Inbound {
                units: 10,
                expected_at: NOW + 48 * HOUR,
            },
        ];
        let d = decide(
            &oversell(2),
            &CompensationPolicy::default(),
            &inbound,
            &orders(),
            NOW,
        );
        assert_eq!(
            d.action,
            Action::Wait {
                until: NOW + 3 * HOUR
            }
        );
        assert_eq!((d.order_id.as_str(), d.reason), ("amz-9", "inbound_stock"));
    }

    #[test]
    fn inbound_that_is_too_little_or_too_late_does_not_wait() {
        let policy = CompensationPolicy {
            max_wait_ms: 2 * HOUR,
            ..Default::default()
        };
        let inbound = [
            Inbound {
                units: 1,
                expected_at: NOW + HOUR,
            },
            Inbound {
                units: 5,
                expected_at: NOW + 3 * HOUR,
            },
        ];
        let d = decide(&oversell(2), &policy, &inbound, &orders(), NOW);
        assert_eq!(d.action, Action::Cancel);
        // Overdue: not counted on.
        let overdue = [Inbound {
            units: 5,
            expected_at: NOW - 1,
        }];
        let d = decide(&oversell(2), &policy, &overdue, &orders(), NOW);
        assert_eq!(d.action, Action::Cancel);
    }

    #[test]
    fn cancels_the_most_recent_order_on_the_cheapest_channel() {
        let d = decide(
            &oversell(2),
            &CompensationPolicy::default(),
            &[],
            &orders(),
            NOW,
        );
        // Shopify costs least; shop-3 holds nothing any more, shop-2 is the most recent.
        assert_eq!(d.action, Action::Cancel);
        assert_eq!(
            (d.order_id.as_str(), d.channel.as_str(), d.units, d.reason),
            ("shop-2", "shopify", 2, "cheapest_cancel")
        );
        // With Shopify made dear, Walmart's order goes, for the one unit it holds.
        let mut policy = CompensationPolicy::default();
        policy.cancel_penalty.insert("shopify".into(), 50.0);
        let d = decide(&oversell(2), &policy, &[], &orders(), NOW);
        assert_eq!((d.order_id.as_str(), d.units), ("wm-1", 1));
    }

    #[test]
    fn an_unlisted_channel_costs_the_default() {
        let policy = CompensationPolicy {
            default_penalty: 0.5,
            ..Default::default()
        };
        let mut all = orders();
        all.push(order("pos-1", "pos", 1, NOW - 9 * HOUR));
        let d = decide(&oversell(1), &policy, &[], &all, NOW);
        assert_eq!(d.order_id, "pos-1");
    }

    #[test]
    fn with_nothing_to_cancel_it_notifies() {
        let d = decide(
            &oversell(1),
            &CompensationPolicy::default(),
            &[],
            &[order("x", "ebay", 0, NOW)],
            NOW,
        );
        assert_eq!(d.action, Action::NotifyOnly);
        assert_eq!(d.reason, "nothing_to_cancel");
    }

    #[test]
    fn a_wait_still_short_at_its_deadline_cancels_the_cheapest() {
        // The delivery it waited on was due at NOW and has not come: not counted on again.
        let inbound = [Inbound {
            units: 5,
            expected_at: NOW,
        }];
        let policy = CompensationPolicy::default();
        let d = recheck(&oversell(2), &policy, &inbound, &orders(), NOW - HOUR, NOW);
        assert_eq!(d.action, Action::Cancel);
        assert_eq!((d.order_id.as_str(), d.units), ("shop-2", 2));
    }

    #[test]
    fn a_delivery_announced_later_within_the_allowed_wait_waits_again() {
        let inbound = [Inbound {
            units: 5,
            expected_at: NOW + 2 * HOUR,
        }];
        let policy = CompensationPolicy {
            max_wait_ms: 4 * HOUR,
            ..Default::default()
        };
        let d = recheck(&oversell(2), &policy, &inbound, &orders(), NOW - HOUR, NOW);
        assert_eq!(
            d.action,
            Action::Wait {
                until: NOW + 2 * HOUR
            }
        );
        // Detected five hours ago, the four hours allowed are spent: no more waiting.
        let d = recheck(
            &oversell(2),
            &policy,
            &inbound,
            &orders(),
            NOW - 5 * HOUR,
            NOW,
        );
        assert_eq!(d.action, Action::Cancel);
    }

    #[test]
    fn a_recheck_under_the_notify_only_policy_or_with_nothing_to_cancel_notifies() {
        let policy = CompensationPolicy {
            policy: Policy::NotifyOnly,
            ..Default::default()
        };
        let d = recheck(&oversell(2), &policy, &[], &orders(), NOW - HOUR, NOW);
        assert_eq!((d.action, d.reason), (Action::NotifyOnly, "policy"));
        let d = recheck(
            &oversell(2),
            &CompensationPolicy::default(),
            &[],
            &[],
            NOW - HOUR,
            NOW,
        );
        assert_eq!(
            (d.action, d.reason),
            (Action::NotifyOnly, "nothing_to_cancel")
        );
    }

    #[test]
    fn a_reference_announces_what_its_delivery_still_owes() {
        assert_eq!(
            announced_inbound("PO-881 expected=24 eta=2026-12-01T09:00:00Z"),
            Some(Announcement {
                delivery: "PO-881".into(),
                units: 24,
                eta: parse_timestamp("2026-12-01T09:00:00Z").unwrap()
            })
        );
        assert_eq!(
            announced_inbound("PO-881 eta=2026-12-01T09:00:00Z expected=0").map(|a| a.units),
            Some(0),
            "complete"
        );
        for none in [
            "PO-881",
            "PO-881 eta=2026-12-01T09:00:00Z",
            "PO-881 expected=24",
            "PO-881 expected=-1 eta=2026-12-01T09:00:00Z",
            "PO-881 expected=many eta=2026-12-01T09:00:00Z",
            "expected=24 eta=2026-12-01T09:00:00Z",
            "",
        ] {
            assert_eq!(announced_inbound(none), None, "{none:?}");
        }
    }

    #[test]
    fn policies_parse() {
        for p in [Policy::Compensate, Policy::NotifyOnly] {
            assert_eq!(Policy::parse(p.as_str()), Ok(p));
        }
        assert!(Policy::parse("cancel").is_err());
    }
}
