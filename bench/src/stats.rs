//! Summaries of timing samples, and the table printer.

use std::time::Duration;

use serde_json::{Value, json};

/// Order statistics of a set of samples, in seconds (converted when printed or put in the JSON).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) min: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Summary {
    /// Nearest-rank percentiles (no interpolation: every figure is a time that was actually observed).
    pub(crate) fn of(samples: &[Duration]) -> Self {
        assert!(!samples.is_empty(), "no samples");
        let mut s: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Summary {
            n: s.len(),
            min: s[0],
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: s[s.len() - 1],
            mean: s.iter().sum::<f64>() / s.len() as f64,
        }
    }

    /// `{"n", "p50_ms", "p90_ms", "min_ms", "max_ms"}`.
    pub(crate) fn json_ms(&self) -> Value {
        json!({
            "n": self.n,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "min_ms": ms(self.min),
            "max_ms": ms(self.max),
        })
    }

    /// `{"n", "p50_us", "p99_us", "mean_us", "min_us", "max_us"}`.
    pub(crate) fn json_us(&self) -> Value {
        json!({
            "n": self.n,
            "p50_us": us(self.p50),
            "p99_us": us(self.p99),
            "mean_us": us(self.mean),
            "min_us": us(self.min),
            "max_us": us(self.max),
        })
    }
}

/// Seconds to milliseconds, three decimals (microsecond resolution is all a loopback wall clock is good for).
pub(crate) fn ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// Seconds to microseconds, one decimal.
pub(crate) fn us(seconds: f64) -> f64 {
    (seconds * 1e7).round() / 10.0
}

/// A plain-text table: a title, column headers, rows of cells; columns sized to fit, first column left-aligned,
/// the others right-aligned (they are figures).
#[derive(Debug)]
pub(crate) struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table { title: title.into(), header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self) {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                }
            }
            out
        };
        println!();
        println!("{}", self.title);
        let header = line(&self.header);
        println!("{header}");
        println!("{}", "-".repeat(header.chars().count()));
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

/// A cell: `value` with `decimals` decimals.
pub(crate) fn cell(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}
