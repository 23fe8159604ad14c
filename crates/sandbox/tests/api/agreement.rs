//! One ledger behind both vendors: the same account read through each gives the same numbers.

use std::collections::BTreeMap;

use sandbox::SandboxConfig;

use crate::helpers::{kobo, spawn, spawn_with};

#[tokio::test]
async fn both_vendors_serve_the_same_ledger_for_every_account() {
    let t = spawn().await;
    for acc in t.dir.accounts() {
        let okra = t.okra_all(&acc.okra_account_id).await;
        let mono = t.mono_all(&acc.mono_account_id).await;
        assert_eq!(
            okra.len() as u64,
            acc.transaction_count,
            "{}",
            acc.okra_account_id
        );
        assert_eq!(mono.len(), okra.len());

        let mut okra_sums = BTreeMap::<&str, (u64, i64)>::new();
        let mut okra_days = BTreeMap::<String, u32>::new();
        for tx in &okra {
            let e = okra_sums.entry(tx.direction).or_default();
            e.0 += 1;
            e.1 += tx.kobo;
            *okra_days.entry(tx.trans_date[..10].to_owned()).or_default() += 1;
        }
        let mut mono_sums = BTreeMap::<&str, (u64, i64)>::new();
        let mut mono_days = BTreeMap::<String, u32>::new();
        for tx in &mono {
            let dir = if tx["trans_type"] == "debit" {
                "debit"
            } else {
                "credit"
            };
            let e = mono_sums.entry(dir).or_default();
            e.0 += 1;
            e.1 += kobo(tx["amount"].as_str().unwrap());
            let day = tx["transaction_date"].as_str().unwrap().to_owned();
            *mono_days.entry(day).or_default() += 1;
        }
        assert_eq!(okra_sums, mono_sums);
        assert_eq!(okra_days, mono_days);
        let (dc, dt) = okra_sums.get("debit").copied().unwrap_or_default();
        let (cc, ct) = okra_sums.get("credit").copied().unwrap_or_default();
        assert_eq!((dc, dt), (acc.debit_count, acc.debit_total_kobo));
        assert_eq!((cc, ct), (acc.credit_count, acc.credit_total_kobo));
        assert_eq!(
            okra.last().map(|t| t.trans_date[..10].to_owned()),
            acc.first_date
        );
        assert_eq!(
            okra.first().map(|t| t.trans_date[..10].to_owned()),
            acc.last_date
        );
        if let Some(newest) = mono.first() {
            // The newest running balance equals the oldest one plus every movement after it.
            let oldest = mono.last().unwrap();
            let signed = |t: &serde_json::Value| {
                let k = kobo(t["amount"].as_str().unwrap());
                if t["trans_type"] == "debit" { -k } else { k }
            };
            let moved: i64 = mono[..mono.len() - 1].iter().map(signed).sum();
            assert_eq!(
                kobo(newest["available_balance"].as_str().unwrap()),
                kobo(oldest["available_balance"].as_str().unwrap()) + moved
            );
        }
    }
}

#[tokio::test]
async fn the_directory_is_deterministic_per_seed_and_realistic() {
    let a = spawn().await;
    let b = spawn().await;
    let c = spawn_with(SandboxConfig {
        seed: 7,
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(a.dir.customers, b.dir.customers);
    assert_ne!(a.dir.customers, c.dir.customers);
    assert!(a.dir.customers.len() >= 5);
    for acc in a.dir.accounts() {
        assert_eq!(acc.nuban.len(), 10);
        assert!(acc.nuban.bytes().all(|d| d.is_ascii_digit()));
        assert_ne!(acc.okra_account_id, acc.mono_account_id);
        assert_eq!(acc.transaction_count, acc.debit_count + acc.credit_count);
        assert!(acc.transaction_count <= 2_500);
    }
    assert!(a.dir.accounts().any(|x| x.transaction_count == 0));
    assert!(a.dir.accounts().any(|x| x.transaction_count >= 1_000));
    assert_eq!(a.dir.okra.secret, "okra_test_secret");
    assert_eq!(a.dir.mono.app_id.as_deref(), Some("mono_test_app"));
    assert_eq!(a.dir.okra.base_url, a.sandbox.okra_base_url());
    let over_http = a
        .control(reqwest::Method::GET, "/_sandbox/accounts", None)
        .await;
    let parsed: sandbox::Directory = serde_json::from_value(over_http.json).unwrap();
    assert_eq!(parsed, a.sandbox.directory());
}
