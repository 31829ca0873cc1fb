//! CloudWatch metrics as Embedded Metric Format lines on stdout (Lambda ships them to CloudWatch
//! Logs, which extracts the metrics): the `_aws` header names the namespace, the dimension sets
//! and each metric's unit; values sit beside it, as arrays where one line carries many samples.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The namespace when `STOCKGUARD_METRICS_NAMESPACE` is unset or empty (the local runtime, tests).
pub const NAMESPACE: &str = "stockguard";

/// The CloudWatch namespace the metrics go to: `STOCKGUARD_METRICS_NAMESPACE`, which the template
/// sets per stack (so two stacks in one account never feed each other's alarms), else
/// [`NAMESPACE`].
pub fn namespace() -> &'static str {
    static CHOSEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(|| {
        std::env::var("STOCKGUARD_METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| NAMESPACE.to_owned())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Percent,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

/// One EMF document: metrics sharing the same dimensions.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    dimensions: BTreeMap<String, String>,
    values: BTreeMap<String, (Unit, Vec<f64>)>,
}

impl Metrics {
    /// Metrics with these dimensions; each is published per dimension value and also aggregated
    /// with no dimension, so alarms can watch one channel or all of them.
    pub fn new(dimensions: &[(&str, &str)]) -> Self {
        Self {
            dimensions: dimensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            values: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, name: &str, unit: Unit, value: f64) {
        self.values
            .entry(name.to_owned())
            .or_insert((unit, Vec::new()))
            .1
            .push(value);
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The EMF JSON document, or `None` when there is nothing to report.
    pub fn to_emf(&self, timestamp_ms: i64) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let keys: Vec<&String> = self.dimensions.keys().collect();
        let dimension_sets = if keys.is_empty() {
            json!([[]])
        } else {
            json!([keys, []])
        };
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, (unit, _))| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": namespace(), "Dimensions": dimension_sets, "Metrics": definitions}]}),
        );
        for (k, v) in &self.dimensions {
            doc.insert(k.clone(), json!(v));
        }
        for (name, (_, samples)) in &self.values {
            let value = if samples.len() == 1 {
                json!(samples[0])
            } else {
                json!(samples)
            };
            doc.insert(name.clone(), value);
        }
        Some(Value::Object(doc))
    }

    /// Writes the document as one line on stdout, where Lambda's log capture picks it up. Outside
    /// Lambda (the local runtime, the demo) it goes to the debug log instead of the terminal.
    pub fn flush(self) {
        if let Some(doc) = self.to_emf(crate::deps::now_ms()) {
            if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                println!("{doc}");
            } else {
                tracing::debug!(emf = %doc, "metrics");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_name_namespace_dimensions_units_and_values() {
        let mut m = Metrics::new(&[("channel", "amazon")]);
        m.add("PushLatency", Unit::Milliseconds, 120.0);
        m.add("PushLatency", Unit::Milliseconds, 80.0);
        m.add("PushesDelivered", Unit::Count, 2.0);
        let doc = m.to_emf(1_700_000_000_000).unwrap();
        let head = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(head["Namespace"], "stockguard");
        assert_eq!(head["Dimensions"], json!([["channel"], []]));
        assert_eq!(
            head["Metrics"],
            json!([{"Name": "PushLatency", "Unit": "Milliseconds"}, {"Name": "PushesDelivered", "Unit": "Count"}])
        );
        assert_eq!(doc["channel"], "amazon");
        assert_eq!(doc["PushLatency"], json!([120.0, 80.0]));
        assert_eq!(doc["PushesDelivered"], json!(2.0));
        // Every metric named in the header has a value, and every dimension key is present.
        for def in head["Metrics"].as_array().unwrap() {
            assert!(doc.get(def["Name"].as_str().unwrap()).is_some());
        }
        assert!(
            Metrics::new(&[]).to_emf(0).is_none(),
            "nothing measured, nothing written"
        );
        let mut none = Metrics::new(&[]);
        none.add("OversellsDetected", Unit::Count, 1.0);
        assert_eq!(
            none.to_emf(0).unwrap()["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
    }
}
