//! Model-based histories per second on the in-memory twin: the same generated histories and
//! checks as `tests/tests/model.rs`, timed. Prints its figures.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use stockguard_adapters::{MemoryPublisher, MemoryStore};
use stockguard_tests::model::{Names, Op, history, run_history};

fn main() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[3u8; 32]),
    );
    let histories: Vec<Vec<Op>> = (0..2_000)
        .map(|_| history(40).new_tree(&mut runner).unwrap().current())
        .collect();
    let steps: usize = histories.iter().map(Vec::len).sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for ops in &histories {
            let store = MemoryStore::new();
            let bus = MemoryPublisher::new();
            let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
            let lose_ack = |armed: bool| store.lose_acks(u32::from(armed));
            rt.block_on(run_history(
                &store,
                &bus,
                &clock,
                &Names::new("b-"),
                ops,
                Some(&lose_ack),
            ))
            .expect("a history departed from the model");
        }
        rates.push(histories.len() as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = rates[rates.len() / 2];
    println!(
        "model-based histories on the in-memory twin: {median:.0} histories/s, {:.0} steps/s \
         (median of {} runs of {} histories, {:.1} steps each, checked step by step)",
        median * steps as f64 / histories.len() as f64,
        rates.len(),
        histories.len(),
        steps as f64 / histories.len() as f64,
    );
}
