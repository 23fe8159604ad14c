//! End to end against the sandbox: whole scopes read through the adapter agree with the
//! sandbox's own numbers, and a refresh completes and adds transactions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use okra::{OkraConfig, OkraProvider, PollPolicy};
use provider::{
    Direction, Provider, RefreshOutcome, RefreshRequest, Scope, Secret, Transaction,
    TransactionQuery,
};
use sandbox::{AccountInfo, Sandbox, SandboxConfig};
use url::Url;

async fn start(config: SandboxConfig) -> (Sandbox, OkraProvider) {
    let secret = config.okra_secret.clone();
    let sb = sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut okra = OkraConfig::new(
        "okra",
        Url::parse(&sb.okra_base_url()).unwrap(),
        Secret::new(secret),
    );
    okra.refresh_poll = PollPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        deadline: Duration::from_secs(20),
    };
    (sb, OkraProvider::new(okra).unwrap())
}

/// (count, debit count, credit count, debit kobo, credit kobo) of transactions.
fn totals(txns: &[Transaction]) -> (u64, u64, u64, i64, i64) {
    let mut t = (txns.len() as u64, 0, 0, 0, 0);
    for tx in txns {
        assert!(tx.amount.is_positive(), "{tx:?}");
        match tx.direction {
            Direction::Debit => {
                t.1 += 1;
                t.3 += tx.amount.minor();
            }
            Direction::Credit => {
                t.2 += 1;
                t.4 += tx.amount.minor();
            }
        }
    }
    t
}

fn expected(accounts: &[&AccountInfo]) -> (u64, u64, u64, i64, i64) {
    accounts.iter().fold((0, 0, 0, 0, 0), |t, a| {
        (
            t.0 + a.transaction_count,
            t.1 + a.debit_count,
            t.2 + a.credit_count,
            t.3 + a.debit_total_kobo,
            t.4 + a.credit_total_kobo,
        )
    })
}

async fn all(okra: &OkraProvider, scope: Scope) -> Vec<Transaction> {
    let listing = okra.list_all(&TransactionQuery::new(scope)).await.unwrap();
    assert_eq!(
        listing.warnings,
        [],
        "the sandbox's clean data maps without warnings"
    );
    listing.items
}

#[tokio::test]
async fn a_whole_account_read_through_the_adapter_matches_the_sandbox() {
    let (sb, okra) = start(SandboxConfig::default()).await;
    let dir = sb.directory();
    let account = &dir.customers[0].accounts[0];
    assert!(
        account.transaction_count > 100,
        "more than one provider page"
    );

    let txns = all(&okra, Scope::Account(account.okra_account_id.clone())).await;
    assert_eq!(totals(&txns), expected(&[account]));
    assert!(txns.iter().all(|t| t.account_id == account.okra_account_id));
    assert!(
        txns.iter()
            .all(|t| &*t.provider == "okra" && t.raw.is_some())
    );
    let mut ids: Vec<&str> = txns
        .iter()
        .map(|t| t.provider_transaction_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), txns.len(), "no transaction read twice");

    // getByNuban serves the same account.
    let by_nuban = all(&okra, Scope::Nuban(account.nuban.clone())).await;
    assert_eq!(totals(&by_nuban), expected(&[account]));

    // And getById gives back what the listing did.
    let one = okra
        .get_transaction(&txns[0].provider_transaction_id)
        .await
        .unwrap();
    assert_eq!(one.amount, txns[0].amount);
    assert_eq!(one.direction, txns[0].direction);
    assert_eq!(one.booked_on, txns[0].booked_on);
    sb.stop().await;
}

#[tokio::test]
async fn a_customer_and_the_whole_client_match_the_sandbox() {
    let (sb, okra) = start(SandboxConfig::default()).await;
    let dir = sb.directory();
    let customer = &dir.customers[0];
    let accounts: Vec<&AccountInfo> = customer.accounts.iter().collect();
    let txns = all(&okra, Scope::Customer(customer.okra_customer_id.clone())).await;
    assert_eq!(totals(&txns), expected(&accounts));
    assert!(
        txns.iter()
            .all(|t| t.customer_id.as_deref() == Some(customer.okra_customer_id.as_str()))
    );

    let everything: Vec<&AccountInfo> = dir.customers.iter().flat_map(|c| &c.accounts).collect();
    let txns = all(&okra, Scope::All).await;
    assert_eq!(totals(&txns), expected(&everything));
    sb.stop().await;
}

#[tokio::test]
async fn a_refresh_completes_and_the_account_then_has_more_transactions() {
    let (sb, okra) = start(SandboxConfig {
        refresh_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await;
    let account = sb.directory().customers[0].accounts[0].clone();
    let scope = Scope::Account(account.okra_account_id.clone());
    let before = all(&okra, scope.clone()).await.len() as u64;
    assert_eq!(before, account.transaction_count);

    let outcome = okra
        .refresh(&RefreshRequest {
            account_id: account.okra_account_id.clone(),
            callback_url: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome, RefreshOutcome::Completed);

    let after = sb
        .directory()
        .accounts()
        .find(|a| a.okra_account_id == account.okra_account_id)
        .cloned()
        .unwrap();
    assert!(after.transaction_count > before);
    let txns = all(&okra, scope).await;
    assert_eq!(totals(&txns), expected(&[&after]));
    sb.stop().await;
}
