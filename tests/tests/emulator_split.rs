//! The default emulator (infra/with-emulator.sh) runs DynamoDB in a process of its own: the
//! project's clients reach it through `AWS_ENDPOINT_URL_DYNAMODB`, and none of it is on the other
//! endpoint, where SQS and EventBridge live.

use stockguard_tests::TestStack;

#[tokio::test]
async fn dynamodb_lives_apart_from_the_other_services() {
    let Ok(dynamodb_url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") else {
        eprintln!("one emulator process (STOCKGUARD_EMULATOR=plain): nothing to check");
        return;
    };
    let other_url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    assert_ne!(dynamodb_url, other_url);
    let stack = TestStack::new().await;

    let tables_at = |url: &str| {
        let config = aws_sdk_dynamodb::config::Builder::from(&stack.config)
            .endpoint_url(url)
            .build();
        async move {
            aws_sdk_dynamodb::Client::from_conf(config)
                .list_tables()
                .send()
                .await
                .expect("ListTables")
                .table_names()
                .to_vec()
        }
    };
    assert!(tables_at(&dynamodb_url).await.contains(&stack.stack.table));
    assert!(!tables_at(&other_url).await.contains(&stack.stack.table));

    let queues_at = |url: &str| {
        let config = aws_sdk_sqs::config::Builder::from(&stack.config)
            .endpoint_url(url)
            .build();
        let prefix = stack.stack.prefix.clone();
        async move {
            aws_sdk_sqs::Client::from_conf(config)
                .list_queues()
                .queue_name_prefix(prefix)
                .send()
                .await
                .expect("ListQueues")
                .queue_urls()
                .len()
        }
    };
    assert!(queues_at(&other_url).await > 0);
    assert_eq!(queues_at(&dynamodb_url).await, 0);
}
