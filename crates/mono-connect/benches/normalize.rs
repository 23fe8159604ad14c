//! Normalization throughput: one 100-record Mono v2 page (real sandbox output) to canonical,
//! next to its floor: the same bytes decoded by bare `serde_json` into the same wire types (no
//! mapping, no raw record kept), so the output shows what the mapping costs over decoding.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mono_connect::{MonoConnectConfig, MonoConnectProvider};
use provider::PageRequest;

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
                "{}/v2/accounts/{account}/transactions",
                sb.mono_connect_base_url()
            ))
            .header("mono-sec-key", &config.mono_connect_secret)
            .query(&[("paginate", "true"), ("page", "1"), ("limit", "100")])
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let provider = MonoConnectProvider::new(MonoConnectConfig::new(
            "mono-connect",
            sb.mono_connect_base_url().parse().unwrap(),
            config.mono_connect_secret.as_str().into(),
        ))
        .unwrap();
        (body, provider, account)
    });
    let page = provider
        .parse_transactions_body(&account, &body, PageRequest::new(1, 100))
        .unwrap();
    assert_eq!(page.items.len(), 100);
    assert!(page.warnings.is_empty(), "{:?}", page.warnings);
    assert_eq!(
        MonoConnectProvider::decode_transactions_floor(&body).unwrap(),
        100
    );

    let mut group = c.benchmark_group("mono-connect");
    group.throughput(Throughput::Elements(100));
    group.bench_function("floor_serde_page_of_100", |b| {
        b.iter(|| MonoConnectProvider::decode_transactions_floor(black_box(&body)).unwrap())
    });
    group.bench_function("normalize_page_of_100", |b| {
        b.iter(|| {
            provider
                .parse_transactions_body(
                    black_box(&account),
                    black_box(&body),
                    PageRequest::new(1, 100),
                )
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
