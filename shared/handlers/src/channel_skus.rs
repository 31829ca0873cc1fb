//! A channel's line to our SKU, for the channels whose lines name a seller SKU (Amazon, Walmart,
//! eBay): the SKU itself when it is one of ours (listed on that channel, or a SKU with a
//! position), else the SKU whose listing on that channel has it as its listing id.

use std::collections::{HashMap, HashSet};

use stockguard_domain::{ChannelName, Sku};

use crate::deps::Deps;

/// Our SKU for each of `channel_skus` that maps to one; those that map to nothing are absent.
pub async fn resolve(
    deps: &Deps,
    channel: &ChannelName,
    channel_skus: &[String],
) -> Result<HashMap<String, Sku>, String> {
    let distinct: Vec<String> = channel_skus
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if distinct.is_empty() {
        return Ok(HashMap::new());
    }
    let candidates: Vec<Sku> = distinct.iter().filter_map(|s| Sku::parse(s).ok()).collect();
    let mut found = HashMap::new();
    if !candidates.is_empty() {
        let listed = deps
            .store
            .listings(channel, &candidates)
            .await
            .map_err(|e| e.to_string())?;
        let positions = deps
            .store
            .positions(&candidates)
            .await
            .map_err(|e| e.to_string())?;
        for sku in candidates {
            if listed.contains_key(&sku) || positions.get(&sku).is_some_and(|p| p.version > 0) {
                found.insert(sku.to_string(), sku);
            }
        }
    }
    let rest: Vec<String> = distinct
        .into_iter()
        .filter(|s| !found.contains_key(s))
        .collect();
    if !rest.is_empty() {
        let by_listing = deps
            .store
            .skus_by_listing_id(channel, &rest)
            .await
            .map_err(|e| e.to_string())?;
        found.extend(by_listing);
    }
    Ok(found)
}
