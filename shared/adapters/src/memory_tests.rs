use super::*;
use stockguard_domain::position::PositionDelta;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn shift(s: &str, soft: i64, min_available: Option<i64>) -> Write {
    Write::ShiftPosition {
        sku: sku(s),
        delta: PositionDelta {
            soft_reserved: soft,
            ..Default::default()
        },
        min_available,
    }
}

fn stock(s: &str, on_hand: i64) -> Write {
    Write::ReplacePosition {
        sku: sku(s),
        read: Position::default(),
        new: Position {
            on_hand,
            ..Default::default()
        },
    }
}

async fn commit(store: &MemoryStore, writes: &[Write]) -> Res<()> {
    store.commit(writes, &Stamp::new(0)).await
}

#[tokio::test]
async fn a_failed_condition_cancels_every_item_with_a_reason_each() {
    let store = MemoryStore::new();
    commit(&store, &[stock("A", 2), stock("B", 1)])
        .await
        .unwrap();
    // A can give 2, B cannot give 2: nothing is written.
    let err = commit(&store, &[shift("A", 2, Some(2)), shift("B", 2, Some(2))])
        .await
        .unwrap_err();
    assert!(err.is_condition_failed());
    assert_eq!(
        err.cancellation_reasons(),
        ["None", "ConditionalCheckFailed"]
    );
    let t = store.snapshot();
    assert_eq!(t.positions[&sku("A")].0.soft_reserved, 0);
    assert_eq!(t.positions[&sku("A")].0.version, 1);
}

#[tokio::test]
async fn a_version_condition_fails_once_the_position_moved() {
    let store = MemoryStore::new();
    commit(&store, &[stock("A", 2)]).await.unwrap();
    // Creating it again (read at version 0) fails: it exists.
    assert!(
        commit(&store, &[stock("A", 5)])
            .await
            .unwrap_err()
            .is_condition_failed()
    );
    let read = store.position_of(&sku("A"));
    commit(&store, &[shift("A", 1, None)]).await.unwrap();
    let stale = Write::ReplacePosition {
        sku: sku("A"),
        read,
        new: read,
    };
    assert!(
        commit(&store, &[stale])
            .await
            .unwrap_err()
            .is_condition_failed()
    );
    // An absent position fails `available >= n`, as an absent attribute does in DynamoDB.
    assert!(
        commit(&store, &[shift("Z", 0, Some(0))])
            .await
            .unwrap_err()
            .is_condition_failed()
    );
}

#[tokio::test]
async fn more_than_100_items_or_an_item_twice_is_refused_outright() {
    let store = MemoryStore::new();
    let many: Vec<Write> = (0..101).map(|i| stock(&format!("S{i}"), 1)).collect();
    let err = commit(&store, &many).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(commit(&store, &many[..100]).await.is_ok());
    let err = commit(&store, &[shift("S0", 1, None), shift("S0", 1, None)])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn the_idempotency_record_joins_the_transaction() {
    let store = MemoryStore::new();
    let record = |id: &str| Write::PutIdempotency {
        event_id: id.into(),
        payload_hash: "h".into(),
        outcome: "applied".into(),
        notifications: vec![],
        skus: vec![],
        later: vec![],
    };
    commit(&store, &[record("e1"), stock("A", 1)])
        .await
        .unwrap();
    // The same event again: its record exists, so its change is not applied twice.
    let again = commit(&store, &[record("e1"), shift("A", 1, None)]).await;
    assert!(again.unwrap_err().is_condition_failed());
    assert_eq!(store.position_of(&sku("A")).soft_reserved, 0);
    store.mark_published("e1").await.unwrap();
    assert_eq!(
        store.idempotency("e1").await.unwrap().unwrap().status,
        IdempotencyStatus::Completed
    );
}

#[tokio::test]
async fn a_lost_acknowledgement_still_wrote() {
    let store = MemoryStore::new();
    store.lose_acks(1);
    let err = commit(&store, &[stock("A", 1)]).await.unwrap_err();
    assert!(err.is_retryable() && !err.is_condition_failed());
    assert_eq!(store.position_of(&sku("A")).on_hand, 1);
}
