//! The figures of a run: one JSON object, filled phase by phase, and the
//! rounding its numbers get.

use serde_json::{Map, Value};

/// The figures, by name.
#[derive(Debug, Default)]
pub(crate) struct Report(Map<String, Value>);

impl Report {
    /// Sets figure `name`.
    pub(crate) fn put(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(name.into(), value.into());
    }

    /// Figure `name`, when it is a number.
    pub(crate) fn number(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(Value::as_f64)
    }

    /// The figures as one JSON object.
    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

pub(crate) fn ratio(rate: f64, limit: f64) -> f64 {
    if limit > 0.0 { (rate / limit * 1000.0).round() / 1000.0 } else { 0.0 }
}

pub(crate) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round1(sorted[idx.min(sorted.len() - 1)])
}
