//! Authenticating as a GitHub App: signing the App's JWT (RS256, 2048-bit key, aws-lc-rs), and
//! an installation token used from the cache against one fetched from GitHub (a local stand-in
//! answering `POST /app/installations/{id}/access_tokens` on 127.0.0.1).
//!
//! Run: `cargo bench -p flavor-ci-aws --features github,memory --bench app_auth`. Prints the
//! median and p90 of each, and the ratio of a fetch to a reuse measured in the same run.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine;
use flavor_ci_aws::github::Auth;
use flavor_ci_aws::github::app::{AppJwt, AppKey, Installation};
use flavor_ci_aws::github::local;

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 9 / 10])
}

fn key() -> Result<Arc<AppKey>, Box<dyn Error>> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let der = pair.as_der()?;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
    Ok(Arc::new(AppKey::from_pem(&pem)?))
}

fn main() -> Result<(), Box<dyn Error>> {
    let key = key()?;
    let mut signing = Vec::new();
    for i in 0..500 {
        let start = Instant::now();
        let jwt = key.jwt("12345", 1_800_000_000 + i)?;
        signing.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(jwt);
    }
    let (median, p90) = stats(signing);
    println!("signing the App's JWT: median {median:.3} ms, p90 {p90:.3} ms (500 runs)");

    let url = local::serve(|request| {
        let body = if request.call.ends_with("/access_tokens") {
            r#"{"token":"ghs_bench","expires_at":"2099-01-01T00:00:00Z"}"#
        } else {
            r#"{"id":42}"#
        };
        ("201 Created", body.to_owned())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut fetched = Vec::new();
        let mut reused = Vec::new();
        for _ in 0..50 {
            let app = Installation::new(
                local::client(&url),
                AppJwt::new("12345", key.clone()),
                "acme/slc",
                &[("checks", "write")],
            );
            app.use_installation(42).await;
            // The first request of a process signs a JWT and fetches the token.
            let start = Instant::now();
            app.token().await?;
            fetched.push(start.elapsed().as_secs_f64() * 1000.0);
            for _ in 0..20 {
                let start = Instant::now();
                std::hint::black_box(app.token().await?);
                reused.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let (f_median, f_p90) = stats(fetched);
        let (r_median, r_p90) = stats(reused);
        println!(
            "an installation token fetched (JWT signed, POST access_tokens to a local stand-in): median {f_median:.3} ms, p90 {f_p90:.3} ms (50 fetches)"
        );
        println!(
            "the token reused from the cache: median {:.4} ms, p90 {:.4} ms (1000 uses); a fetch costs {:.0}x a reuse",
            r_median,
            r_p90,
            f_median / r_median.max(1e-6)
        );
        Ok::<(), Box<dyn Error>>(())
    })?;
    Ok(())
}
