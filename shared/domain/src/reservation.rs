//! The all-or-nothing reservation decision and soft-hold expiry.

use serde::{Deserialize, Serialize};

use crate::types::{EntityId, Line, Millis, Sku};

/// A line that could not be reserved, with what was there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shortfall {
    pub sku: Sku,
    /// Units the line asked for.
    pub requested: i64,
    /// Units it could have taken, counting expired holds that could have been released; never
    /// below 0.
    pub available: i64,
}

/// Decides a cart against the units each line could take: the SKU's `available` plus any expired
/// soft holds that can be released first (`releasable[i]` for `lines[i]`). Every line or none.
pub fn decide_reservation(lines: &[Line], available: &[i64]) -> Result<(), Vec<Shortfall>> {
    debug_assert_eq!(lines.len(), available.len());
    let mut shortfalls = Vec::new();
    for (line, &avail) in lines.iter().zip(available) {
        if avail < line.quantity {
            shortfalls.push(Shortfall {
                sku: line.sku.clone(),
                requested: line.quantity,
                available: avail.max(0),
            });
        }
    }
    if shortfalls.is_empty() {
        Ok(())
    } else {
        Err(shortfalls)
    }
}

/// One line of a soft reservation as it blocks stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftHold {
    pub reservation_id: EntityId,
    pub sku: Sku,
    pub quantity: i64,
    pub expires_at: Millis,
}

impl SoftHold {
    /// A hold stops blocking the instant it expires, whatever the sweeper or TTL have done.
    pub fn is_expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }
}

/// Picks expired reservations, oldest first, until `needed` units of the SKU are covered.
/// Returns the reservation ids to release.
pub fn pick_expired_to_release(holds: &[SoftHold], now: Millis, needed: i64) -> Vec<EntityId> {
    let mut expired: Vec<&SoftHold> = holds.iter().filter(|h| h.is_expired(now)).collect();
    expired.sort_by_key(|h| (h.expires_at, h.reservation_id.clone()));
    let mut covered = 0;
    let mut picked = Vec::new();
    for hold in expired {
        if covered >= needed {
            break;
        }
        covered += hold.quantity;
        picked.push(hold.reservation_id.clone());
    }
    picked
}

/// Lifecycle of a reservation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "held" => ReservationStatus::Held,
            "confirmed" => ReservationStatus::Confirmed,
            "released" => ReservationStatus::Released,
            "expired" => ReservationStatus::Expired,
            _ => return None,
        })
    }
}

/// Which way confirming a reservation goes, given its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmPath {
    /// Its soft units are still held: turn them hard.
    HardenHeld,
    /// It lapsed and its hold is gone: take the units again from `available`, or fail.
    Retake,
    AlreadyConfirmed,
    /// It was released by the checkout: confirming it is a conflict.
    WasReleased,
}

pub fn confirm_path(status: ReservationStatus) -> ConfirmPath {
    match status {
        // A held reservation still owns its soft units even after its expiry instant, until some
        // release takes them back; hardening them is then exact.
        ReservationStatus::Held => ConfirmPath::HardenHeld,
        ReservationStatus::Expired => ConfirmPath::Retake,
        ReservationStatus::Confirmed => ConfirmPath::AlreadyConfirmed,
        ReservationStatus::Released => ConfirmPath::WasReleased,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, q: i64) -> Line {
        Line {
            sku: Sku::parse(sku).unwrap(),
            quantity: q,
        }
    }

    #[test]
    fn one_short_line_rejects_the_whole_cart() {
        let lines = [line("A", 1), line("B", 3), line("C", 1)];
        let err = decide_reservation(&lines, &[5, 2, 1]).unwrap_err();
        assert_eq!(
            err,
            vec![Shortfall {
                sku: Sku::parse("B").unwrap(),
                requested: 3,
                available: 2
            }]
        );
        assert!(decide_reservation(&lines, &[1, 3, 1]).is_ok());
    }

    #[test]
    fn expired_holds_are_picked_oldest_first_until_covered() {
        let h = |id: &str, q, exp| SoftHold {
            reservation_id: EntityId::parse(id).unwrap(),
            sku: Sku::parse("A").unwrap(),
            quantity: q,
            expires_at: exp,
        };
        let holds = [
            h("late", 5, 90),
            h("early", 2, 50),
            h("live", 9, 200),
            h("mid", 2, 70),
        ];
        let ids: Vec<String> = pick_expired_to_release(&holds, 100, 3)
            .into_iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, ["early", "mid"]);
        assert!(h("x", 1, 100).is_expired(100));
        assert!(!h("x", 1, 101).is_expired(100));
    }
}
