//! Read-backs: a channel that processes pushes after acknowledging them (Amazon) has its delay
//! measured by reading back what it shows for recently pushed SKUs.

use std::collections::BTreeMap;

use stockguard_adapters::buffer_store::Probe;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::{Millis, Sku};

use super::{BufferRecompute, DELAY_WINDOW_MS, PROBES_PER_RUN};
use crate::channel_sync::{ChannelSync, to_channel_listing};
use crate::deps::now_ms;

impl BufferRecompute {
    /// Reads back the oldest open probes: a channel showing a probe's quantity measures its delay
    /// (from the change's cause to now, an upper bound by at most one run's interval). Only a SKU's
    /// newest probe, and only while no newer push of the SKU was acknowledged, can still be shown:
    /// the others are dropped unread, as are probes older than the window.
    pub(super) async fn read_back(
        &self,
        settings: &ChannelSettings,
        probes: Vec<Probe>,
        now: Millis,
    ) -> Vec<i64> {
        let store = &self.deps.store;
        let mut newest: BTreeMap<Sku, Probe> = BTreeMap::new();
        let mut dropped = Vec::new();
        for probe in probes {
            if now - probe.acknowledged_at > DELAY_WINDOW_MS {
                dropped.push(probe);
            } else if let Some(older) = newest.insert(probe.sku.clone(), probe) {
                // Probes sort by acknowledgement time, so the one replaced is the older.
                dropped.push(older);
            }
        }
        let mut open: Vec<Probe> = newest.into_values().collect();
        open.sort_by_key(|p| p.acknowledged_at);
        open.truncate(PROBES_PER_RUN);
        let skus: Vec<Sku> = open.iter().map(|p| p.sku.clone()).collect();
        let acknowledged = match store.sync_records(&settings.name, &skus).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read acknowledgements for read-backs");
                return Vec::new();
            }
        };
        let mut syncs = self.syncs.lock().await;
        let sync = syncs
            .entry(settings.name.clone())
            .or_insert_with(|| ChannelSync::new(self.deps.clone(), settings.name.clone()));
        let mut delays = Vec::new();
        for probe in open {
            if acknowledged
                .get(&probe.sku)
                .is_some_and(|a| a.version > probe.version)
            {
                dropped.push(probe);
                continue;
            }
            let measured = now_ms();
            let shown = match store
                .listings(&settings.name, std::slice::from_ref(&probe.sku))
                .await
            {
                Ok(listings) => match (listings.get(&probe.sku), sync.client_for(settings).await) {
                    (Some(listing), Ok(client)) => client
                        .read_shown(&to_channel_listing(settings.kind, listing))
                        .await
                        .ok(),
                    _ => None,
                },
                Err(_) => None,
            };
            if shown != Some(probe.quantity) {
                continue;
            }
            let delay = (measured - probe.cause_at).max(0);
            if let Err(e) = store.record_shown(&settings.name, delay, measured).await {
                tracing::warn!(error = %e, "could not record a read-back");
            }
            delays.push(delay);
            dropped.push(probe);
        }
        for probe in &dropped {
            if let Err(e) = store.delete_probe(&settings.name, probe).await {
                tracing::warn!(error = %e, "could not delete a read-back probe");
            }
        }
        delays
    }
}
