//! DynamoDB answers a batch call it throttles with `UnprocessedKeys` / `UnprocessedItems`. The
//! store retries those, but not without end: against a stand-in for DynamoDB's JSON protocol that
//! never processes anything, a batch read and a listings import give up with a retryable error.
//! (The emulator never throttles, so this is the one test with a stand-in for DynamoDB.)

use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use stockguard_adapters::StateStore;
use stockguard_domain::channel::ListingMapping;
use stockguard_domain::{ChannelName, Sku};

/// Answers every batch call with everything unprocessed.
async fn never_processes(
    headers: HeaderMap,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], String) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = if target.ends_with("BatchGetItem") {
        json!({"Responses": {}, "UnprocessedKeys": request["RequestItems"]})
    } else {
        json!({"UnprocessedItems": request["RequestItems"]})
    };
    (
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
}

async fn store() -> StateStore {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/", post(never_processes)))
            .await
            .unwrap();
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url(format!("http://{addr}"))
        .build();
    StateStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t")
}

#[tokio::test]
async fn a_batch_read_that_is_never_processed_gives_up_with_a_retryable_error() {
    let store = store().await;
    let read = tokio::time::timeout(
        Duration::from_secs(30),
        store.positions(&[Sku::parse("THROTTLED-1").unwrap()]),
    )
    .await
    .expect("the read gives up rather than retrying without end");
    let err = read.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("unprocessed"), "{err}");
}

#[tokio::test]
async fn a_listings_import_that_is_never_processed_gives_up_with_a_retryable_error() {
    let store = store().await;
    let row = ListingMapping {
        channel: ChannelName::parse("walmart").unwrap(),
        sku: Sku::parse("THROTTLED-1").unwrap(),
        listing_id: "W-1".into(),
        location_id: None,
        offer_id: None,
        product_type: None,
    };
    let import = tokio::time::timeout(Duration::from_secs(30), store.put_listings(&[row]))
        .await
        .expect("the import gives up rather than retrying without end");
    let err = import.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
