//! The exposition: [`Families`] in the OpenMetrics text format, through `prometheus-client`'s registry and
//! encoder.
//!
//! The values live in nest's snapshots, not in the client's own counters, so they reach the registry through a
//! [`Collector`] that encodes the current families at each scrape. The client writes label values as given, so
//! they are escaped here (`\`, `"` and line feeds): a request name may hold any of them.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::buckets::BOUNDS;
use crate::series::{Families, Family, Kind, Value};

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The families as OpenMetrics text, ending in `# EOF`.
pub fn encode(families: &Arc<Families>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Current(families.clone())));
    let mut text = String::new();
    // Writing into a String cannot fail, and every family's shape is checked by the encoder's types.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        unreachable!("encoding into a String failed: {e}");
    }
    text
}

/// The families of the newest snapshot, encoded at each scrape.
#[derive(Debug)]
struct Current(Arc<Families>);

impl Collector for Current {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.iter() {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            encode_family(family, &mut metric)?;
        }
        Ok(())
    }
}

fn encode_family(family: &Family, metric: &mut MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
    for (labels, value) in &family.series {
        let labels: Vec<(&str, Escaped<'_>)> = labels.iter().map(|(k, v)| (*k, Escaped(v))).collect();
        let one = metric.encode_family(&labels)?;
        match value {
            Value::Number(v) => One(family.kind, *v).encode(one)?,
            Value::Histogram(b) => {
                let mut per_bucket = Vec::with_capacity(BOUNDS.len() + 1);
                let mut before = 0;
                for (i, bound) in BOUNDS.iter().enumerate() {
                    per_bucket.push((*bound, b.at(i) - before));
                    before = b.at(i);
                }
                per_bucket.push((f64::MAX, b.count - before));
                let mut one = one;
                one.encode_histogram::<NoLabelSet>(b.sum_us as f64 / 1e6, b.count, &per_bucket, None)?;
            }
        }
    }
    Ok(())
}

/// A counter's or gauge's value.
#[derive(Debug)]
struct One(Kind, f64);

impl EncodeMetric for One {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self.0 {
            Kind::Counter => encoder.encode_counter::<NoLabelSet, f64, f64>(&self.1, None),
            _ => encoder.encode_gauge(&self.1),
        }
    }
    fn metric_type(&self) -> MetricType {
        if self.0 == Kind::Counter { MetricType::Counter } else { MetricType::Gauge }
    }
}

/// A label value, escaped as the text format requires.
#[derive(Debug)]
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}
