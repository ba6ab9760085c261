//! Verifying a webhook signature over a 6 MB body (Lambda's payload limit), with one accepted
//! secret and with two where the matching one is second (a delivery signed with the old secret
//! during a rotation, the slowest case; a wrong signature costs the same).
//!
//! Run: `cargo bench --bench signature`. Prints the median and p90 of 50 runs each.

use std::time::Instant;

use flavor_ci::webhook::signature::{sign, verify};

fn measure(secrets: &[&str], body: &[u8], header: &str) -> (f64, f64) {
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let matched = verify(secrets, body, Some(header));
            let elapsed = start.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(matched, Ok(secrets.len() - 1));
            elapsed
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 9 / 10])
}

fn main() {
    let body: Vec<u8> = (0..6 * 1024 * 1024).map(|i| b"{}[]ab,:"[i % 8]).collect();
    let header = sign(b"current", &body);
    for (label, secrets) in [
        ("one secret", vec!["current"]),
        ("two secrets", vec!["next", "current"]),
    ] {
        let (median, p90) = measure(&secrets, &body, &header);
        println!("verify 6 MiB, {label}: median {median:.2} ms, p90 {p90:.2} ms (target < 30 ms)");
    }
}
