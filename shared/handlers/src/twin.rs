//! The inventory handlers on the in-memory twin of the state table and the bus, with a clock the
//! test moves: handler logic in fast tests, without the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use stockguard_adapters::{MemoryPublisher, MemoryStore};
use stockguard_domain::Millis;

use crate::effect::Inventory;

pub struct Twin {
    pub store: MemoryStore,
    pub bus: MemoryPublisher,
    clock: Arc<AtomicI64>,
    read_clock: Box<dyn Fn() -> Millis + Send + Sync>,
}

impl Twin {
    /// An empty state at time `now`.
    pub fn new(now: Millis) -> Self {
        let clock = Arc::new(AtomicI64::new(now));
        let read = Arc::clone(&clock);
        Self {
            store: MemoryStore::new(),
            bus: MemoryPublisher::new(),
            clock,
            read_clock: Box::new(move || read.load(Ordering::SeqCst)),
        }
    }

    pub fn inventory(&self) -> Inventory<'_, MemoryStore, MemoryPublisher> {
        Inventory::new(&self.store, &self.bus, &*self.read_clock)
    }

    pub fn now(&self) -> Millis {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: Millis) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}
