//! Collects one outcome per update while a push goes through its calls.

use crate::error::ChannelError;
use crate::model::{ChannelKind, PushOutcome, QuantityUpdate};

pub(crate) struct Outcomes {
    slots: Vec<Option<PushOutcome>>,
    halted_by: Option<ChannelError>,
}

impl Outcomes {
    pub fn new(len: usize) -> Self {
        Self {
            slots: vec![None; len],
            halted_by: None,
        }
    }

    /// The indices of the updates whose listing belongs to `client`; the others are refused.
    pub fn for_channel(updates: &[QuantityUpdate], client: ChannelKind) -> (Self, Vec<usize>) {
        let mut outcomes = Self::new(updates.len());
        let mut eligible = Vec::with_capacity(updates.len());
        for (index, update) in updates.iter().enumerate() {
            let listing = update.listing.kind();
            if listing == client {
                eligible.push(index);
            } else {
                outcomes.set(
                    index,
                    PushOutcome::from_error(&ChannelError::wrong_channel(client, listing)),
                );
            }
        }
        (outcomes, eligible)
    }

    pub fn set(&mut self, index: usize, outcome: PushOutcome) {
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    pub fn acknowledge(&mut self, index: usize) {
        self.set(index, PushOutcome::acknowledged_now());
    }

    pub fn fail(&mut self, index: usize, err: &ChannelError) {
        self.set(index, PushOutcome::from_error(err));
        if err.affects_whole_channel() && self.halted_by.is_none() {
            self.halted_by = Some(err.clone());
        }
    }

    /// True once a failure makes further calls of this push pointless.
    pub fn is_halted(&self) -> bool {
        self.halted_by.is_some()
    }

    /// One outcome per update; updates never sent share the failure that stopped the push.
    pub fn finish(self) -> Vec<PushOutcome> {
        let halted_by = self.halted_by;
        self.slots
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| match &halted_by {
                    Some(err) => match PushOutcome::from_error(err) {
                        PushOutcome::Throttled {
                            reason,
                            retry_after,
                        } => PushOutcome::Throttled {
                            reason: format!("not sent: {reason}"),
                            retry_after,
                        },
                        PushOutcome::Retryable { reason } => PushOutcome::Retryable {
                            reason: format!("not sent: {reason}"),
                        },
                        PushOutcome::Permanent { reason } => PushOutcome::Permanent {
                            reason: format!("not sent: {reason}"),
                        },
                        acknowledged => acknowledged,
                    },
                    None => PushOutcome::Retryable {
                        reason: "not sent".to_owned(),
                    },
                })
            })
            .collect()
    }
}
