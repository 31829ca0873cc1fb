//! The inventory state machine against its reference model (`stockguard_tests::model`): many
//! generated histories on the in-memory twin (no emulator), and a seeded sample through the real
//! DynamoDB store on the emulator. A failure is shrunk to a shortest history that still fails.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use stockguard_adapters::{MemoryPublisher, MemoryStore};
use stockguard_tests::TestStack;
use stockguard_tests::model::{Names, history, run_history};

const T0: i64 = 1_800_000_000_000;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn histories_on_the_twin_match_the_model() {
    let rt = paused_runtime();
    let config = Config {
        cases: cases(2_000),
        failure_persistence: None,
        max_shrink_iters: 4_096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&history(40), |ops| {
        let store = MemoryStore::new();
        let bus = MemoryPublisher::new();
        let clock = Arc::new(AtomicI64::new(T0));
        let lose_ack = |armed: bool| store.lose_acks(u32::from(armed));
        rt.block_on(run_history(
            &store,
            &bus,
            &clock,
            &Names::new("m-"),
            &ops,
            Some(&lose_ack),
        ))
        .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "{} histories on the twin in {:.2?}",
        runner.config().cases,
        started.elapsed()
    );
}

/// The same model through DynamoDB (the emulator): a smaller sample, seeded so a failure
/// reproduces. Each history names its own SKUs, reservations and orders in one shared stack.
#[test]
fn a_seeded_sample_through_dynamodb_matches_the_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stack = rt.block_on(TestStack::new());
    let config = Config {
        cases: cases(12).min(12),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let seed = [7u8; 32];
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    // The clock runs on across histories, so lapsed holds of one never lapse back in another.
    let clock = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp_millis()));
    let result = runner.run(&history(25), |ops| {
        let names = Names::new(&format!("d{:08x}-", rand::random::<u32>()));
        clock.fetch_add(3_600_000, std::sync::atomic::Ordering::SeqCst);
        rt.block_on(run_history(
            &stack.deps.store,
            &stack.deps.publisher,
            &clock,
            &names,
            &ops,
            None,
        ))
        .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
