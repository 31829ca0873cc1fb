//! Creates in the emulator (or any endpoint) exactly the table, bus, queues, redrive policies and
//! rules that `template.yaml` declares, each named with a stack prefix so stacks never collide.
//! A rule on a bus the stack does not own (Shopify's partner event bus) is put on that bus, which
//! must exist already.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};

use crate::template::StackSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
}

/// The names of one provisioned stack, by template logical id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stack {
    pub prefix: String,
    pub table: String,
    pub bus: String,
    pub bus_arn: String,
    pub queues: BTreeMap<String, QueueInfo>,
    /// Rule logical id → rule name.
    pub rules: BTreeMap<String, String>,
}

impl Stack {
    pub fn queue(&self, logical_id: &str) -> Result<&QueueInfo> {
        self.queues
            .get(logical_id)
            .ok_or_else(|| anyhow!("no queue {logical_id} in the stack"))
    }
}

pub fn physical_name(prefix: &str, logical_id: &str) -> String {
    format!("{prefix}{logical_id}")
}

/// Provisions `spec` with names starting with `prefix`; `bus_name` overrides the bus parameter.
pub async fn provision(
    config: &aws_config::SdkConfig,
    spec: &StackSpec,
    prefix: &str,
    bus_name: &str,
) -> Result<Stack> {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);

    let table = physical_name(prefix, &spec.table.logical_id);
    let mut create = ddb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in &spec.table.attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for (name, kind) in &spec.table.key_schema {
        create = create.key_schema(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()?,
        );
    }
    for index in &spec.table.indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(index.projection.as_str()))
            .set_non_key_attributes(
                Some(index.non_key_attributes.clone()).filter(|a| !a.is_empty()),
            )
            .build();
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection);
        for (name, kind) in &index.key_schema {
            gsi = gsi.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()?,
            );
        }
        create = create.global_secondary_indexes(gsi.build()?);
    }
    create
        .send()
        .await
        .with_context(|| format!("creating table {table}"))?;
    if let Some(attr) = &spec.table.ttl_attribute {
        ddb.update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .context("enabling TTL")?;
    }

    let bus_arn = events
        .create_event_bus()
        .name(bus_name)
        .send()
        .await
        .with_context(|| format!("creating bus {bus_name}"))?
        .event_bus_arn
        .unwrap_or_default();

    // Dead-letter queues first: a redrive policy names its DLQ's ARN.
    let mut queues = BTreeMap::new();
    let mut ordered: Vec<_> = spec.queues.iter().collect();
    ordered.sort_by_key(|q| q.redrive.is_some());
    for q in ordered {
        let name = physical_name(prefix, &q.logical_id);
        let mut req = sqs.create_queue().queue_name(&name);
        if let Some(v) = q.visibility_timeout {
            req = req.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = q.retention_seconds {
            req = req.attributes(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some((dlq, max)) = &q.redrive {
            let dlq_arn = &queues
                .get(dlq)
                .map(|i: &QueueInfo| i.arn.clone())
                .ok_or_else(|| anyhow!("{}: DLQ {dlq} missing", q.logical_id))?;
            let policy =
                serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max});
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = req
            .send()
            .await
            .with_context(|| format!("creating queue {name}"))?
            .queue_url
            .unwrap_or_default();
        let arn = queue_arn(&sqs, &url).await?;
        queues.insert(q.logical_id.clone(), QueueInfo { name, url, arn });
    }

    let mut rules = BTreeMap::new();
    for r in &spec.rules {
        let name = physical_name(prefix, &r.logical_id);
        // A rule on another bus (a partner event bus) finds it already there, as on AWS.
        let on_bus = r.event_bus.as_deref().unwrap_or(bus_name);
        events
            .put_rule()
            .name(&name)
            .event_bus_name(on_bus)
            .event_pattern(r.pattern.to_string())
            .send()
            .await
            .with_context(|| format!("creating rule {name}"))?;
        let mut targets = Vec::new();
        for t in &r.targets {
            let queue = queues
                .get(&t.queue)
                .ok_or_else(|| anyhow!("{}: target queue {} missing", r.logical_id, t.queue))?;
            let mut b = Target::builder().id(&t.id).arn(&queue.arn);
            if let Some(dlq) = &t.dead_letter_queue {
                let dlq = queues
                    .get(dlq)
                    .ok_or_else(|| anyhow!("{}: target DLQ {dlq} missing", r.logical_id))?;
                b = b.dead_letter_config(DeadLetterConfig::builder().arn(&dlq.arn).build());
            }
            targets.push(b.build()?);
        }
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(on_bus)
            .set_targets(Some(targets))
            .send()
            .await?;
        rules.insert(r.logical_id.clone(), name);
    }
    Ok(Stack {
        prefix: prefix.to_owned(),
        table,
        bus: bus_name.to_owned(),
        bus_arn,
        queues,
        rules,
    })
}

/// A queue's ARN, which rules and redrive policies name it by.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default())
}
