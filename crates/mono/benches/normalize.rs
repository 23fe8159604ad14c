//! Normalization throughput: one 100-record Mono-style page (real sandbox output) to canonical,
//! next to its floor: the same bytes decoded by bare `serde_json` into the same wire types (no
//! mapping, no raw record kept), so the output shows what the mapping costs over decoding.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mono::{MonoConfig, MonoProvider};

fn normalize(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (body, provider, account) = rt.block_on(async {
        let config = sandbox::SandboxConfig::default();
        let sb = sandbox::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let account = sb
            .directory()
            .accounts()
            .max_by_key(|a| a.transaction_count)
            .unwrap()
            .mono_account_id
            .clone();
        let body = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/financial/account_transactions",
                sb.mono_base_url()
            ))
            .header("Authorization", &config.mono_secret)
            .header("AppId", &config.mono_app_id)
            .query(&[
                ("account_id", account.as_str()),
                ("page", "1"),
                ("length", "100"),
            ])
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let provider = MonoProvider::new(MonoConfig::new(
            "mono",
            sb.mono_base_url().parse().unwrap(),
            config.mono_secret.as_str().into(),
            config.mono_app_id.as_str().into(),
        ))
        .unwrap();
        (body, provider, account)
    });
    assert_eq!(
        provider
            .parse_transactions_body(&account, &body)
            .unwrap()
            .len(),
        100
    );
    assert_eq!(MonoProvider::decode_transactions_floor(&body).unwrap(), 100);

    let mut group = c.benchmark_group("mono");
    group.throughput(Throughput::Elements(100));
    group.bench_function("floor_serde_page_of_100", |b| {
        b.iter(|| MonoProvider::decode_transactions_floor(black_box(&body)).unwrap())
    });
    group.bench_function("normalize_page_of_100", |b| {
        b.iter(|| {
            provider
                .parse_transactions_body(black_box(&account), black_box(&body))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
