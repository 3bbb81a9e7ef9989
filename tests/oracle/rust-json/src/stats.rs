//! Statistics over numbers: generic helpers and a serializable summary.
use serde::Serialize;

const EPSILON: f64 = 1e-9;
static PERCENTILES: [f64; 3] = [0.25, 0.5, 0.75];

#[derive(Serialize, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub var: f64,
    pub min: f64,
    pub max: f64,
    pub quartiles: Vec<f64>,
    pub label: String,
}

pub fn sum_by<T, F: Fn(&T) -> f64>(items: &[T], f: F) -> f64 {
    items.iter().map(|x| f(x)).sum()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

fn label(mean: f64, var: f64) -> String {
    if var < EPSILON {
        "constant".to_string()
    } else if mean > 100.0 {
        format!("large (sd {:.2})", var.sqrt())
    } else {
        format!("small (sd {:.2})", var.sqrt())
    }
}

pub fn describe(values: &[f64]) -> Summary {
    let n = values.len();
    let mean = sum_by(values, |x| *x) / n as f64;
    let var = sum_by(values, |x| (x - mean) * (x - mean)) / n as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Summary {
        n,
        mean: crate::shapes::round3(mean),
        var: crate::shapes::round3(var),
        min: sorted.first().copied().unwrap_or(0.0),
        max: sorted.last().copied().unwrap_or(0.0),
        quartiles: PERCENTILES.iter().map(|p| percentile(&sorted, *p)).collect(),
        label: label(mean, var),
    }
}

pub fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
