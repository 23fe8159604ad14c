//! Normalization throughput: one 100-record Okra page (real sandbox output) to canonical, next
//! to its floor: the same bytes decoded by bare `serde_json` into the same wire types (no
//! mapping, no raw record kept), so the output shows what the mapping costs over decoding.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use okra::{OkraConfig, OkraProvider};
use provider::PageRequest;

fn normalize(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (body, provider) = rt.block_on(async {
        let config = sandbox::SandboxConfig::default();
        let sb = sandbox::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let account = sb
            .directory()
            .accounts()
            .max_by_key(|a| a.transaction_count)
            .unwrap()
            .okra_account_id
            .clone();
        let body = reqwest::Client::new()
            .post(format!("{}/transactions/getByAccount", sb.okra_base_url()))
            .bearer_auth(&config.okra_secret)
            .json(&serde_json::json!({"account": account, "page": 1, "limit": 100}))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let provider = OkraProvider::new(OkraConfig::new(
            "okra",
            sb.okra_base_url().parse().unwrap(),
            config.okra_secret.as_str().into(),
        ))
        .unwrap();
        (body, provider)
    });
    let page = provider
        .parse_transactions_body(&body, PageRequest::new(1, 100))
        .unwrap();
    assert_eq!(page.items.len(), 100);
    assert_eq!(OkraProvider::decode_transactions_floor(&body).unwrap(), 100);

    let mut group = c.benchmark_group("okra");
    group.throughput(Throughput::Elements(100));
    group.bench_function("floor_serde_page_of_100", |b| {
        b.iter(|| OkraProvider::decode_transactions_floor(black_box(&body)).unwrap())
    });
    group.bench_function("normalize_page_of_100", |b| {
        b.iter(|| {
            provider
                .parse_transactions_body(black_box(&body), PageRequest::new(1, 100))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
