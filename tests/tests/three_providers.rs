//! One bank account, three providers: Okra, the Mono-style provider and Mono's own API
//! (`mono-connect`), each configured as one `[providers.NAME]` section over the same sandbox
//! ledger, read through the gateway to the same transactions, to the kobo.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use e2e::{base_config, spawn, sums};
use serde_json::Value;

const MONO_CONNECT: &str = r#"
[providers.mono-connect]
kind = "mono-connect"
base_url = "sandbox"
"#;

/// What every provider says alike about a transaction (Mono's own API has no reference).
fn facts(items: &[Value]) -> Vec<(String, String, i64, String)> {
    let mut facts: Vec<_> = items
        .iter()
        .map(|t| {
            (
                t["booked_on"].as_str().unwrap().to_owned(),
                t["direction"].as_str().unwrap().to_owned(),
                t["amount"]["minor"].as_i64().unwrap(),
                t["narration"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    facts.sort();
    facts
}

#[tokio::test]
async fn an_account_reads_the_same_through_okra_mono_and_mono_connect_to_the_kobo() {
    let gw = spawn(&base_config("okra", MONO_CONNECT)).await;
    let account = gw
        .accounts_with(1)
        .into_iter()
        .find(|a| (200..=1500).contains(&a.transaction_count))
        .expect("an account of a few hundred transactions");
    let path =
        |id: &str, provider: &str| format!("/v1/accounts/{id}/transactions?provider={provider}");
    let okra = gw.walk(&path(&account.okra_account_id, "okra"), 100).await;
    let mono = gw.walk(&path(&account.mono_account_id, "mono"), 100).await;
    let connect = gw
        .walk(&path(&account.mono_account_id, "mono-connect"), 100)
        .await;

    let expected = (account.debit_total_kobo, account.credit_total_kobo);
    for (name, items) in [("okra", &okra), ("mono", &mono), ("mono-connect", &connect)] {
        assert_eq!(items.len() as u64, account.transaction_count, "{name}");
        assert_eq!(sums(items), expected, "{name}");
        assert!(items.iter().all(|t| t["provider"] == name), "{name}");
    }
    assert_eq!(facts(&connect), facts(&okra));
    assert_eq!(facts(&connect), facts(&mono));
}
