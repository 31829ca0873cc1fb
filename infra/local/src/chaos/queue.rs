//! Faults of the queue layer, as SQS and Lambda's event source mapping can show them: a delivery
//! lost in flight (the message stays invisible until its visibility timeout and is delivered
//! again: SQS never loses a message that was received but not deleted), a second delivery of the
//! same message (at-least-once), and a batch in another order than the messages were sent.
//! Every decision comes from a seeded random stream per poller.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What the local runtime's pollers do to the deliveries they receive.
#[derive(Debug, Clone)]
pub struct QueueFaults {
    /// Share of deliveries lost in flight: handed to no handler and not deleted, so the queue
    /// delivers them again once their visibility timeout passes.
    pub drop: f64,
    /// Share of deliveries that the queue delivers a second time, as a separate message.
    pub duplicate: f64,
    /// Shuffle every batch: a standard queue keeps no order.
    pub reorder: bool,
    pub seed: u64,
    /// The queues' `maxReceiveCount`: a delivery lost at this count was the message's last, and
    /// SQS moves it to its dead-letter queue without the reason its function would have given.
    pub last_delivery: u32,
    /// What was done, counted across every poller.
    pub counts: QueueFaultCounts,
}

#[derive(Debug, Clone, Default)]
pub struct QueueFaultCounts(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    /// Bodies of the messages whose last delivery was lost.
    lost_last: Mutex<BTreeSet<String>>,
}

/// A snapshot of [`QueueFaultCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueFaultTally {
    pub received: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Batches handed over in another order than received.
    pub reordered_batches: u64,
}

impl QueueFaultCounts {
    pub fn tally(&self) -> QueueFaultTally {
        QueueFaultTally {
            received: self.0.received.load(Ordering::Relaxed),
            dropped: self.0.dropped.load(Ordering::Relaxed),
            duplicated: self.0.duplicated.load(Ordering::Relaxed),
            reordered_batches: self.0.reordered.load(Ordering::Relaxed),
        }
    }

    /// Bodies of the messages whose last delivery before redrive was lost in flight.
    pub fn lost_on_last_delivery(&self) -> BTreeSet<String> {
        self.0.lost_last.lock().expect("lost deliveries").clone()
    }
}

/// One poller's share of [`QueueFaults`], with its own random stream.
pub(crate) struct QueueFaultInjector {
    faults: QueueFaults,
    rng: Mutex<StdRng>,
}

impl QueueFaultInjector {
    /// The injector of poller number `stream`.
    pub(crate) fn new(faults: &QueueFaults, stream: u64) -> Self {
        let seed = faults.seed ^ (stream + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            faults: faults.clone(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// The deliveries of `received` that reach the handler, in the order they reach it. Lost
    /// ones are left in flight; duplicated ones are sent again to the queue.
    pub(crate) async fn disturb(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        received: Vec<Message>,
    ) -> Result<Vec<Message>> {
        let counts = &self.faults.counts.0;
        counts
            .received
            .fetch_add(received.len() as u64, Ordering::Relaxed);
        let (kept, copies) = {
            let mut rng = self.rng.lock().expect("queue fault stream");
            let mut kept = Vec::with_capacity(received.len());
            let mut copies = Vec::new();
            for m in received {
                if rng.random::<f64>() < self.faults.drop {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    if receive_count(&m) >= self.faults.last_delivery {
                        let body = m.body().unwrap_or_default().to_owned();
                        counts
                            .lost_last
                            .lock()
                            .expect("lost deliveries")
                            .insert(body);
                    }
                    continue;
                }
                if rng.random::<f64>() < self.faults.duplicate {
                    copies.push(m.body().unwrap_or_default().to_owned());
                }
                kept.push(m);
            }
            if self.faults.reorder && kept.len() > 1 {
                let before: Vec<_> = kept.iter().map(|m| m.message_id.clone()).collect();
                kept.shuffle(&mut *rng);
                if kept.iter().map(|m| &m.message_id).ne(before.iter()) {
                    counts.reordered.fetch_add(1, Ordering::Relaxed);
                }
            }
            (kept, copies)
        };
        for body in copies {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await?;
            counts.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(kept)
    }
}

fn receive_count(m: &Message) -> u32 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}
