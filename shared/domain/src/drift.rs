//! What reconciliation does about a listing that shows another quantity than it should.
//!
//! A channel that shows more than it should may sell units that are gone: that is repaired at
//! once. A channel that shows fewer may have sold units whose order has not reached us yet
//! (Walmart's and eBay's orders are polled, Amazon's and Shopify's notified, all a little late):
//! pushing our higher number would offer those units again until the order arrives, the very
//! oversell window stockguard closes. So that push waits until the channel has shown the same
//! quantity for at least the channel's order grace, seen by two reconciliations: by then the
//! order has reached us (and what it should show has come down to match) or there was none.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// A listing seen showing fewer units than it should, whose repair is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDrift {
    /// What the listing should have shown when first seen (for operators; not decided on).
    pub expected: i64,
    /// What it showed.
    pub reported: i64,
    /// When a reconciliation first saw it show `reported` (epoch ms).
    pub seen_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftDecision {
    /// It shows what it should.
    InSync,
    /// Push what it should show now.
    Repair,
    /// Leave the listing alone for now and keep this sighting.
    Defer(PendingDrift),
}

/// What to do about a listing that shows `reported` where it should show `expected`.
///
/// - `last_pushed`: the quantity the channel last acknowledged from us. A channel's own sales
///   only lower what it shows, so a channel that shows at least that much has sold nothing since
///   our last push; then the shortfall is a push of ours that never arrived (a lost event), and
///   is repaired at once. Never pushed: nothing it shows came from us, likewise at once.
/// - `pending`: the sighting kept by an earlier reconciliation, if any.
/// - `grace_ms`: how late an order on this channel may reach us.
pub fn decide(
    expected: i64,
    reported: i64,
    last_pushed: Option<i64>,
    pending: Option<&PendingDrift>,
    now: Millis,
    grace_ms: Millis,
) -> DriftDecision {
    if reported == expected {
        return DriftDecision::InSync;
    }
    // Shows more than it should, or a shortfall no unheard sale explains.
    if reported > expected || last_pushed.is_none_or(|pushed| reported >= pushed) {
        return DriftDecision::Repair;
    }
    match pending {
        // Unchanged since an earlier reconciliation saw it (a sale since would have lowered it)
        // and older than the grace: any order behind it has had its time to reach us.
        Some(p) if p.reported == reported && now - p.seen_at >= grace_ms => DriftDecision::Repair,
        Some(p) if p.reported == reported => DriftDecision::Defer(*p),
        _ => DriftDecision::Defer(PendingDrift {
            expected,
            reported,
            seen_at: now,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Millis = 120_000;

    fn seen(expected: i64, reported: i64, at: Millis) -> PendingDrift {
        PendingDrift {
            expected,
            reported,
            seen_at: at,
        }
    }

    #[test]
    fn a_listing_that_shows_what_it_should_is_in_sync_whatever_was_seen_before() {
        assert_eq!(decide(7, 7, Some(8), None, 0, GRACE), DriftDecision::InSync);
        // The order behind an earlier shortfall arrived: what it should show came down.
        let p = seen(8, 7, 0);
        assert_eq!(
            decide(7, 7, Some(8), Some(&p), 1_000, GRACE),
            DriftDecision::InSync
        );
    }

    #[test]
    fn a_listing_that_shows_more_than_it_should_is_repaired_at_once() {
        assert_eq!(decide(5, 6, Some(5), None, 0, GRACE), DriftDecision::Repair);
        assert_eq!(decide(0, 3, None, None, 0, GRACE), DriftDecision::Repair);
        let p = seen(9, 4, 0);
        assert_eq!(
            decide(5, 6, Some(9), Some(&p), 1, GRACE),
            DriftDecision::Repair
        );
    }

    #[test]
    fn a_first_shortfall_below_our_last_push_is_deferred_and_remembered() {
        assert_eq!(
            decide(10, 9, Some(10), None, 5_000, GRACE),
            DriftDecision::Defer(seen(10, 9, 5_000))
        );
    }

    #[test]
    fn the_same_shortfall_seen_again_past_the_grace_is_repaired() {
        let p = seen(10, 9, 0);
        assert_eq!(
            decide(10, 9, Some(10), Some(&p), GRACE, GRACE),
            DriftDecision::Repair
        );
        // What it should show may have moved meanwhile (orders heard, a restock): the channel
        // showing the same number is what says it sold nothing since.
        assert_eq!(
            decide(12, 9, Some(10), Some(&p), GRACE + 1, GRACE),
            DriftDecision::Repair
        );
    }

    #[test]
    fn the_same_shortfall_seen_again_within_the_grace_stays_deferred_from_its_first_sighting() {
        let p = seen(10, 9, 0);
        assert_eq!(
            decide(10, 9, Some(10), Some(&p), GRACE - 1, GRACE),
            DriftDecision::Defer(p)
        );
    }

    #[test]
    fn a_listing_that_sold_again_since_the_first_sighting_starts_over() {
        let p = seen(10, 9, 0);
        assert_eq!(
            decide(10, 8, Some(10), Some(&p), 10 * GRACE, GRACE),
            DriftDecision::Defer(seen(10, 8, 10 * GRACE))
        );
    }

    #[test]
    fn with_no_grace_two_reconciliations_still_have_to_see_it() {
        assert_eq!(
            decide(10, 9, Some(10), None, 0, 0),
            DriftDecision::Defer(seen(10, 9, 0))
        );
        assert_eq!(
            decide(10, 9, Some(10), Some(&seen(10, 9, 0)), 0, 0),
            DriftDecision::Repair
        );
    }

    #[test]
    fn a_shortfall_no_sale_explains_is_repaired_at_once() {
        // Shows what we last pushed, or more: our newer push went missing.
        assert_eq!(
            decide(15, 10, Some(10), None, 0, GRACE),
            DriftDecision::Repair
        );
        assert_eq!(
            decide(15, 12, Some(10), None, 0, GRACE),
            DriftDecision::Repair
        );
        // Never pushed anything.
        assert_eq!(decide(10, 0, None, None, 0, GRACE), DriftDecision::Repair);
    }

    #[test]
    fn a_sale_and_a_lost_push_together_wait_like_a_sale() {
        // Pushed 10; a restock to 15 never arrived; the channel sold one we have not heard of.
        assert!(matches!(
            decide(15, 9, Some(10), None, 0, GRACE),
            DriftDecision::Defer(_)
        ));
    }
}
