//! Reads of the state table. Every read that feeds a decision is strongly consistent.

use std::collections::HashMap;

pub use aws_sdk_dynamodb::Client as DynamoClient;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use stockguard_domain::buffer::StoredSignal;
use stockguard_domain::decayed::Horizons;
use stockguard_domain::idempotency::IdempotencyStatus;
use stockguard_domain::reservation::{ReservationStatus, SoftHold};
use stockguard_domain::{ChannelName, EntityId, Millis, Position, Sku};

use crate::error::{AdapterError, classify};
use crate::items::*;
use crate::tx::StateTx;

/// The records the inventory decisions read are the domain's.
pub use stockguard_domain::plan::{IdempotencyRecord, OrderRecord, ReservationRecord};

#[derive(Clone)]
pub struct StateStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// The sales-rate horizons sales are recorded and read with.
    pub(crate) horizons: Horizons,
}

/// Attempts at a batch call whose unprocessed part keeps coming back (DynamoDB throttling) before
/// the caller gets a retryable error rather than waiting without end.
pub(crate) const UNPROCESSED_ATTEMPTS: u32 = 8;

impl StateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            horizons: Horizons::default(),
        }
    }

    /// The same store with other sales-rate horizons (a demo or test that compresses time).
    pub fn with_horizons(mut self, horizons: Horizons) -> Self {
        self.horizons = horizons;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn tx(&self) -> StateTx {
        StateTx::new(self.table.clone(), self.horizons)
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, AdapterError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(out.item)
    }

    /// Current positions of `skus`; a SKU never seen has the zero position (version 0).
    pub async fn positions(&self, skus: &[Sku]) -> Result<HashMap<Sku, Position>, AdapterError> {
        Ok(self
            .stamped_positions(skus)
            .await?
            .into_iter()
            .map(|(sku, (p, _))| (sku, p))
            .collect())
    }

    /// Current positions with the `write_id` of the change that wrote each last (`None` if never
    /// written, or written before changes were stamped).
    pub async fn stamped_positions(
        &self,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, (Position, Option<String>)>, AdapterError> {
        let mut found: HashMap<Sku, (Position, Option<String>)> = skus
            .iter()
            .map(|s| (s.clone(), (Position::default(), None)))
            .collect();
        for item in self
            .batch_get_keys(skus.iter().map(|s| key(sku_pk(s), POSITION)).collect())
            .await?
        {
            let sku = Sku::parse(get_s(&item, "sku")?).map_err(AdapterError::permanent)?;
            let stamp = item.get(WRITE_ID).and_then(|v| v.as_s().ok()).cloned();
            found.insert(sku, (position_from(&item)?, stamp));
        }
        Ok(found)
    }

    /// Current position of one SKU (the zero position if never seen).
    pub async fn position(&self, sku: &Sku) -> Result<Position, AdapterError> {
        let mut found = self.positions(std::slice::from_ref(sku)).await?;
        Ok(found.remove(sku).unwrap_or_default())
    }

    /// Strongly consistent BatchGetItem of any keys, 100 a call, retrying unprocessed keys.
    pub(crate) async fn batch_get_keys(&self, keys: Vec<Item>) -> Result<Vec<Item>, AdapterError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| AdapterError::permanent(e.to_string()))?,
            );
            let mut attempt = 0u32;
            while let Some(req) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetItem", e))?;
                items.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if request.is_some() {
                    attempt += 1;
                    if attempt >= UNPROCESSED_ATTEMPTS {
                        return Err(AdapterError::transient(format!(
                            "BatchGetItem: keys still unprocessed after {attempt} attempts (throttled)"
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(items)
    }

    pub async fn idempotency(
        &self,
        event_id: &str,
    ) -> Result<Option<IdempotencyRecord>, AdapterError> {
        let Some(item) = self.get(event_pk(event_id), IDEMPOTENCY).await? else {
            return Ok(None);
        };
        let status = IdempotencyStatus::parse(get_s(&item, "status")?)
            .ok_or_else(|| AdapterError::permanent("unknown idempotency status"))?;
        Ok(Some(IdempotencyRecord {
            payload_hash: get_s(&item, "payload_hash")?.to_owned(),
            status,
            notifications: get_json(&item, "notifications")?,
            skus: get_json(&item, "skus")?,
            outcome: get_s(&item, "outcome")?.to_owned(),
            later: match item.get("later_lines") {
                None => Vec::new(),
                Some(_) => get_json(&item, "later_lines")?,
            },
        }))
    }

    /// Marks a delivery's notifications as published. Best effort: if it fails, a redelivery
    /// publishes again, which consumers gated by `version` absorb.
    pub async fn mark_published(&self, event_id: &str) -> Result<(), AdapterError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(event_id), IDEMPOTENCY)))
            .update_expression("SET #s = :done")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":done", s(IdempotencyStatus::Completed.as_str()))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    pub async fn reservation(
        &self,
        id: &EntityId,
    ) -> Result<Option<ReservationRecord>, AdapterError> {
        let Some(item) = self.get(reservation_pk(id), RESERVATION).await? else {
            return Ok(None);
        };
        Ok(Some(ReservationRecord {
            id: id.clone(),
            channel: ChannelName::parse(get_s(&item, "channel")?)
                .map_err(AdapterError::permanent)?,
            lines: get_json(&item, "lines")?,
            status: ReservationStatus::parse(get_s(&item, "status")?)
                .ok_or_else(|| AdapterError::permanent("unknown reservation status"))?,
            expires_at: get_i64(&item, "expires_at")?,
            request_hash: get_s(&item, "request_hash")?.to_owned(),
            order_id: get_opt_s(&item, "order_id").map(str::to_owned),
            write_id: get_opt_s(&item, WRITE_ID).map(str::to_owned),
        }))
    }

    pub async fn order(&self, id: &EntityId) -> Result<Option<OrderRecord>, AdapterError> {
        let Some(item) = self.get(order_pk(id), ORDER).await? else {
            return Ok(None);
        };
        Ok(Some(OrderRecord {
            id: id.clone(),
            channel: ChannelName::parse(get_s(&item, "channel")?)
                .map_err(AdapterError::permanent)?,
            lines: get_json(&item, "lines")?,
            revision: get_i64(&item, "revision")?,
            recording: matches!(item.get("recording"), Some(AttributeValue::Bool(true))),
        }))
    }

    pub async fn signal(
        &self,
        sku: &Sku,
        signal: &str,
    ) -> Result<Option<StoredSignal>, AdapterError> {
        // One reading of a signal item, the buffers' own: a strength that is not a number is an
        // error, not 0.
        self.get(sku_pk(sku), &signal_sk(signal))
            .await?
            .map(|item| crate::buffer_store::signal_from(&item))
            .transpose()
    }

    /// Last applied producer sequence for (`source`, `sku`).
    pub async fn sequence(&self, source: &str, sku: &Sku) -> Result<Option<u64>, AdapterError> {
        let item = self.get(sku_pk(sku), &sequence_sk(source)).await?;
        Ok(match item {
            Some(item) => get_opt_i64(&item, "applied_sequence")?.map(|v| v as u64),
            None => None,
        })
    }

    /// Sum of the on-hand deltas of `sku` applied with an `occurred_at` after `after`.
    pub async fn on_hand_deltas_after(
        &self,
        sku: &Sku,
        after: Millis,
    ) -> Result<i64, AdapterError> {
        let items = self
            .query_all(|q| {
                q.consistent_read(true)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":pk", s(sku_pk(sku)))
                    .expression_attribute_values(":lo", s(delta_sk_floor(after)))
                    .expression_attribute_values(":hi", s(DELTA_SK_CEILING))
                    .projection_expression("delta")
            })
            .await?;
        items.iter().map(|item| get_i64(item, "delta")).sum()
    }

    /// Every item a query returns, following `LastEvaluatedKey` across pages.
    pub(crate) async fn query_all(
        &self,
        query: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<Vec<Item>, AdapterError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = query(self.client.query().table_name(&self.table))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// A plain PutItem (configuration written by operators, no condition).
    pub(crate) async fn put_plain(&self, item: Item) -> Result<(), AdapterError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    /// Up to `limit` soft holds of `sku` that expired at or before `now`, oldest first. Holds sort
    /// by expiry, so live holds are never read.
    pub async fn expired_holds(
        &self,
        sku: &Sku,
        now: Millis,
        limit: i32,
    ) -> Result<Vec<SoftHold>, AdapterError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(sku_pk(sku)))
            .expression_attribute_values(":lo", s("HOLD#"))
            .expression_attribute_values(":hi", s(hold_sk_expired_ceiling(now)))
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        out.items()
            .iter()
            .map(|item| {
                Ok(SoftHold {
                    reservation_id: EntityId::parse(get_s(item, "reservation_id")?)
                        .map_err(AdapterError::permanent)?,
                    sku: sku.clone(),
                    quantity: get_i64(item, "quantity")?,
                    expires_at: get_i64(item, "expires_at")?,
                })
            })
            .collect()
    }

    /// Up to `limit` reservations still held whose expiry passed by `now`, oldest first. The index
    /// is eventually consistent: callers re-read each reservation before acting on it.
    pub async fn lapsed_reservations(
        &self,
        now: Millis,
        limit: i32,
    ) -> Result<Vec<EntityId>, AdapterError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EXPIRY_INDEX)
            .key_condition_expression("expiry_pk = :held AND expiry_sk <= :now")
            .expression_attribute_values(":held", s(HELD))
            .expression_attribute_values(":now", s(format!("{now:020}#~")))
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        out.items()
            .iter()
            .map(|item| {
                let pk = get_s(item, "pk")?;
                EntityId::parse(pk.trim_start_matches("RES#")).map_err(AdapterError::permanent)
            })
            .collect()
    }

    pub async fn commit(&self, tx: StateTx) -> Result<(), AdapterError> {
        tx.commit(&self.client).await
    }
}

pub(crate) fn position_from(item: &Item) -> Result<Position, AdapterError> {
    Ok(Position {
        on_hand: get_i64(item, "on_hand")?,
        hard_reserved: get_i64(item, "hard_reserved")?,
        soft_reserved: get_i64(item, "soft_reserved")?,
        version: get_i64(item, "version")? as u64,
        counted_at: get_opt_i64(item, "counted_at")?,
    })
}
