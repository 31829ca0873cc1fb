//! The scheduled re-check of short orders waiting for inbound stock: at its deadline a wait is
//! decided again ([`recheck`]), once however many runs overlap, and one whose re-checks keep
//! failing goes back to the dead-letter queue as the oversell it came from.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use stockguard_adapters::compensation_store::{Claim, DueWait, ShortOrderStatus};
use stockguard_domain::compensation::{Oversell, recheck};
use stockguard_domain::outbound::SOURCE_CORE;
use stockguard_domain::types::format_timestamp;

use super::{Compensation, Failure, retry};
use crate::deps::now_ms;
use crate::metrics::{Metrics, Unit};

/// A claimed re-check that fails is retried by the first run after this long.
const RECHECK_RETRY_MS: i64 = 5 * 60 * 1000;

/// What one re-check run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecheckReport {
    /// Waits due when the run began.
    pub due: usize,
    /// Claimed by a concurrent run, or settled meanwhile.
    pub skipped: usize,
    /// Re-checks done, by action (`restocked`, `wait`, `cancel`, `notify_only`,
    /// `dead_lettered`, `already_settled`).
    pub actions: BTreeMap<String, usize>,
    /// Re-checks that failed; a later run tries again.
    pub errors: Vec<String>,
}

impl Compensation {
    /// Decides again about every waiting short order whose deadline is at or before `now`:
    /// restocked if the SKU is no longer short, else what [`recheck`] says, carried out and
    /// published as any decision. Each wait is claimed first (a conditional write), so
    /// concurrent runs re-check it once; one that fails is re-checked by a later run, and after
    /// the retry budget it is reopened and dead-lettered as its `OversellDetected` with the
    /// reason. Stops when `budget` is spent; the rest stay due.
    pub async fn recheck_waits(&self, now: i64, budget: Duration) -> RecheckReport {
        let started = Instant::now();
        let mut report = RecheckReport::default();
        let due = match self.deps.store.due_waits(now).await {
            Ok(due) => due,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        report.due = due.len();
        for wait in due {
            if started.elapsed() >= budget {
                break;
            }
            let outcome = match self
                .deps
                .store
                .claim_wait(&wait.sku, &wait.order_id, now, now + RECHECK_RETRY_MS)
                .await
            {
                Err(e) => Err(e.to_string()),
                Ok(Claim::Taken) => {
                    report.skipped += 1;
                    continue;
                }
                Ok(Claim::Claimed { attempts }) if attempts > self.deps.settings.retry_budget => {
                    self.give_up(&wait, attempts)
                        .await
                        .map(|()| "dead_lettered".to_owned())
                }
                Ok(Claim::Claimed { .. }) => match self.recheck_one(&wait, now).await {
                    Ok(action) => Ok(action),
                    Err(Failure::Invalid(why) | Failure::Retry(why)) => Err(why),
                },
            };
            let label = match outcome {
                Ok(action) => {
                    tracing::info!(sku = %wait.sku, order_id = wait.order_id, action, "wait re-checked");
                    *report.actions.entry(action.clone()).or_default() += 1;
                    action
                }
                Err(why) => {
                    tracing::warn!(sku = %wait.sku, order_id = wait.order_id, error = %why, "wait re-check failed; retried");
                    report
                        .errors
                        .push(format!("{} {}: {why}", wait.sku, wait.order_id));
                    "failed".to_owned()
                }
            };
            let mut m = Metrics::new(&[("Outcome", label.as_str())]);
            m.add("WaitsRechecked", Unit::Count, 1.0);
            m.flush();
        }
        report
    }

    async fn recheck_one(&self, wait: &DueWait, now: i64) -> Result<String, Failure> {
        let records = self
            .deps
            .store
            .short_orders(&wait.sku)
            .await
            .map_err(retry)?;
        let Some(record) = records.iter().find(|r| {
            r.order_id == wait.order_id && matches!(r.status, ShortOrderStatus::Waiting { .. })
        }) else {
            return Ok("already_settled".to_owned());
        };
        let decision = match self.still_short(&wait.sku).await? {
            0 => None,
            short_now => {
                let oversell = Oversell {
                    order_id: record.order_id.clone(),
                    channel: record.channel.clone(),
                    shortfall: short_now,
                };
                let (policy, inbound, candidates) = self.inputs(&wait.sku, &records).await?;
                Some(recheck(
                    &oversell,
                    &policy,
                    &inbound,
                    &candidates,
                    record.detected_at,
                    now,
                ))
            }
        };
        let (action, _) = self
            .settle(
                &wait.sku,
                &record.order_id,
                &record.channel,
                record.shortfall,
                decision,
            )
            .await?;
        Ok(action)
    }

    /// A wait whose re-checks keep failing: reopened and dead-lettered as the
    /// `OversellDetected` it came from, so that redriving it compensates it afresh.
    async fn give_up(&self, wait: &DueWait, attempts: u32) -> Result<(), String> {
        let records = self
            .deps
            .store
            .short_orders(&wait.sku)
            .await
            .map_err(|e| e.to_string())?;
        let Some(r) = records.iter().find(|r| r.order_id == wait.order_id) else {
            return Ok(());
        };
        let Some(dlq) = &self.deps.dead_letters else {
            return Err("no dead-letter queue to give the wait up to".into());
        };
        let body = json!({
            "version": "0", "id": format!("recheck-{}-{}", r.sku, r.order_id),
            "detail-type": "OversellDetected", "source": SOURCE_CORE, "account": "",
            "time": format_timestamp(now_ms()), "region": "", "resources": [],
            "detail": {"sku": r.sku.as_str(), "order_id": r.order_id, "channel": r.channel,
                       "shortfall": r.shortfall, "detected_at": format_timestamp(r.detected_at)},
        });
        dlq.send(
            &body.to_string(),
            "recheck_retries_exhausted",
            &format!("the wait's re-check failed {} times", attempts - 1),
            attempts,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.deps
            .store
            .reopen_short_order(&wait.sku, &wait.order_id)
            .await
            .map_err(|e| e.to_string())
    }
}
