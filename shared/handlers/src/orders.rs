//! Orders without a reservation (facts, never rejected), shipments and cancellations.

use std::collections::HashMap;
use stockguard_domain::order::{OrderLine, Settlement, settle};

use stockguard_domain::{ChannelName, EntityId, Line, Millis, Notification, Position, Sku};

use crate::deps::Deps;
use crate::effect::Effect;
use crate::error::ApplyError;

pub use stockguard_domain::order::Settlement as Kind;

/// `OrderPlaced`: hard-allocate every line even when stock is short; publish `OversellDetected`
/// with the shortfall for each line that was.
pub(crate) async fn plan_order_placed(
    deps: &Deps,
    order_id: &EntityId,
    channel: &ChannelName,
    lines: &[Line],
    now: Millis,
) -> Result<Effect, ApplyError> {
    if deps.store.order(order_id).await?.is_some() {
        tracing::info!(order_id = %order_id, "order already recorded under another event id");
        return Ok(Effect::new(deps, "order_already_recorded"));
    }
    let skus: Vec<_> = lines.iter().map(|l| l.sku.clone()).collect();
    let positions = deps.store.positions(&skus).await?;
    let mut effect = Effect::new(deps, "applied");
    allocate_hard_even_if_short(
        &mut effect,
        &positions,
        lines,
        order_id.as_str(),
        channel,
        now,
    );
    for line in lines {
        effect
            .tx
            .record_sale(&line.sku, channel, line.quantity, now);
    }
    let order_lines: Vec<OrderLine> = lines.iter().map(OrderLine::new).collect();
    effect.tx.write_order(order_id, channel, &order_lines, None);
    Ok(effect)
}

/// Hard-allocates every line from the positions read, however short each is (an order is a fact),
/// and publishes `OversellDetected` with the shortfall of each line that was.
pub(crate) fn allocate_hard_even_if_short(
    effect: &mut Effect,
    positions: &HashMap<Sku, Position>,
    lines: &[Line],
    order_id: &str,
    channel: &ChannelName,
    now: Millis,
) {
    for line in lines {
        let read = positions.get(&line.sku).copied().unwrap_or_default();
        let mut new = read;
        let shortfall = new.allocate_hard(line.quantity);
        if shortfall > 0 {
            tracing::warn!(order_id, sku = %line.sku, shortfall, "oversell detected");
            effect.notifications.push(Notification::oversell_detected(
                &line.sku,
                order_id,
                channel.as_str(),
                shortfall,
                now,
            ));
        }
        effect.tx.replace_position(&line.sku, &read, &new);
        effect.touch(&line.sku);
    }
}

/// `OrderShipped` / `OrderCancelled`: settle the order's remaining hard allocation. A shipment
/// also takes the units off hand (unless the latest count already did).
pub(crate) async fn plan_settlement(
    deps: &Deps,
    order_id: &EntityId,
    requested: Option<&[Line]>,
    kind: Settlement,
    occurred_at: Millis,
    event_id: &str,
    now: Millis,
) -> Result<Effect, ApplyError> {
    let Some(mut order) = deps.store.order(order_id).await? else {
        return Err(ApplyError::NotYetKnown(format!(
            "order {order_id} is not known yet"
        )));
    };
    let settled = settle(&mut order.lines, requested, kind)?;
    if settled.is_empty() {
        return Ok(Effect::new(deps, "nothing_remaining"));
    }
    let skus: Vec<_> = settled.iter().map(|l| l.sku.clone()).collect();
    let positions = deps.store.positions(&skus).await?;
    let mut effect = Effect::new(deps, "applied");
    for line in &settled {
        let read = positions.get(&line.sku).copied().unwrap_or_default();
        let mut new = read;
        new.release_hard(line.quantity);
        if kind == Settlement::Ship && new.apply_on_hand_delta(-line.quantity, occurred_at) {
            effect
                .tx
                .log_on_hand_delta(&line.sku, occurred_at, event_id, -line.quantity, now);
        }
        effect.tx.replace_position(&line.sku, &read, &new);
        effect.touch(&line.sku);
    }
    effect
        .tx
        .write_order(order_id, &order.channel, &order.lines, Some(order.revision));
    Ok(effect)
}
