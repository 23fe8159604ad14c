//! The adapter against the sandbox's Mono API (written from the docs on its own): whole
//! accounts to the kobo in every API shape, bulk or paged, and Data Sync.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use mono_connect::{ApiVersion, MonoConnectConfig, MonoConnectProvider};
use provider::{Direction, Provider, RefreshOutcome, RefreshRequest, Scope, TransactionQuery};
use sandbox::{Sandbox, SandboxConfig};

async fn start() -> Sandbox {
    sandbox::start(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn adapter(sb: &Sandbox, api: ApiVersion, bulk_read: bool) -> MonoConnectProvider {
    let mut config = MonoConnectConfig::new(
        "mono-connect",
        sb.mono_connect_base_url().parse().unwrap(),
        sb.config().mono_connect_secret.clone().into(),
    );
    config.api = api;
    config.bulk_read = bulk_read;
    config.page_size = 37;
    MonoConnectProvider::new(config).unwrap()
}

#[tokio::test]
async fn every_shape_reads_the_account_to_the_kobo() {
    let sb = start().await;
    let dir = sb.directory();
    let account = dir.accounts().max_by_key(|a| a.transaction_count).unwrap();
    let query = TransactionQuery::new(Scope::Account(account.mono_account_id.clone()));
    for api in [ApiVersion::V2, ApiVersion::V1, ApiVersion::Legacy] {
        for bulk_read in [true, false] {
            let listing = adapter(&sb, api, bulk_read).list_all(&query).await.unwrap();
            assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
            assert_eq!(
                listing.items.len() as u64,
                account.transaction_count,
                "{api:?}"
            );
            let total = |d: Direction| -> i64 {
                listing
                    .items
                    .iter()
                    .filter(|t| t.direction == d)
                    .map(|t| t.amount.minor())
                    .sum()
            };
            assert_eq!(
                (total(Direction::Debit), total(Direction::Credit)),
                (account.debit_total_kobo, account.credit_total_kobo),
                "{api:?} bulk {bulk_read}"
            );
        }
    }
}

#[tokio::test]
async fn a_data_sync_brings_the_new_transactions() {
    let sb = start().await;
    let dir = sb.directory();
    let account = dir.accounts().next().unwrap();
    let mc = adapter(&sb, ApiVersion::V2, true);
    let query = TransactionQuery::new(Scope::Account(account.mono_account_id.clone()));
    let before = mc.list_all(&query).await.unwrap().items.len();
    let outcome = mc
        .refresh(&RefreshRequest {
            account_id: account.mono_account_id.clone(),
            callback_url: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome, RefreshOutcome::Completed);
    let after = mc.list_all(&query).await.unwrap().items.len();
    assert_eq!(after, before + sb.config().new_transactions_per_refresh);
}
