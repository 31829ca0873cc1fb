//! Reservation decisions per second on one core (target >= 1,000,000). Prints its figures.

use std::hint::black_box;
use std::time::Instant;

use stockguard_domain::reservation::decide_reservation;
use stockguard_domain::{Line, Sku};

fn main() {
    let carts: Vec<Vec<Line>> = (0..1024)
        .map(|i| {
            (0..(1 + i % 3))
                .map(|j| Line {
                    sku: Sku::parse(&format!("SKU-{}", (i + j) % 97)).unwrap(),
                    quantity: 1 + (j as i64),
                })
                .collect()
        })
        .collect();
    let stock: Vec<Vec<i64>> = carts
        .iter()
        .enumerate()
        .map(|(i, c)| c.iter().map(|_| (i % 5) as i64).collect())
        .collect();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let n = 2_000_000usize;
        let start = Instant::now();
        let mut accepted = 0u64;
        for k in 0..n {
            let idx = k & 1023;
            if decide_reservation(black_box(&carts[idx]), black_box(&stock[idx])).is_ok() {
                accepted += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        black_box(accepted);
        runs.push(n as f64 / secs);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "domain reservation decisions/s (one core, carts of 1-3 lines): median {:.0}, min {:.0}, max {:.0} (target >= 1,000,000)",
        runs[runs.len() / 2],
        runs[0],
        runs[runs.len() - 1]
    );
}
