//! End to end against the sandbox's Mono-style simulator: whole-account reads in paginated and
//! not_paginated mode agree with each other and with the sandbox's own numbers, and a webhook
//! refresh delivers to a real local receiver whose body `parse_delivery` reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use std::time::Duration;

use mono::{MonoConfig, MonoProvider};
use provider::{
    Direction, Provider, RefreshOutcome, RefreshRequest, Scope, Transaction, TransactionQuery,
};
use sandbox::{AccountInfo, Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn start_sandbox() -> Sandbox {
    sandbox::start(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn adapter(sb: &Sandbox, bulk_read: bool, page_size: u32) -> MonoProvider {
    let defaults = SandboxConfig::default();
    MonoProvider::new(MonoConfig {
        bulk_read,
        page_size,
        ..MonoConfig::new(
            "mono-sandbox",
            sb.mono_base_url().parse().unwrap(),
            defaults.mono_secret.as_str().into(),
            defaults.mono_app_id.as_str().into(),
        )
    })
    .unwrap()
}

fn accounts(sb: &Sandbox) -> Vec<AccountInfo> {
    sb.directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .collect()
}

fn whole(account: &AccountInfo) -> TransactionQuery {
    TransactionQuery::new(Scope::Account(account.mono_account_id.clone()))
}

/// Count and kobo sum of one direction.
fn tally(txns: &[Transaction], direction: Direction) -> (u64, i64) {
    let picked: Vec<_> = txns.iter().filter(|t| t.direction == direction).collect();
    (
        picked.len() as u64,
        picked.iter().map(|t| t.amount.minor()).sum(),
    )
}

fn assert_matches_directory(txns: &[Transaction], account: &AccountInfo) {
    let id = &account.mono_account_id;
    assert_eq!(txns.len() as u64, account.transaction_count, "{id}");
    assert_eq!(
        tally(txns, Direction::Debit),
        (account.debit_count, account.debit_total_kobo),
        "{id} debits"
    );
    assert_eq!(
        tally(txns, Direction::Credit),
        (account.credit_count, account.credit_total_kobo),
        "{id} credits"
    );
    assert!(
        txns.iter()
            .all(|t| &t.account_id == id && t.amount.is_positive())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_accounts_read_the_same_paginated_and_not_paginated() {
    let sb = start_sandbox().await;
    let bulk = adapter(&sb, true, 100);
    let paged = adapter(&sb, false, 100);
    let accounts = accounts(&sb);
    assert!(!accounts.is_empty());
    assert!(
        accounts.iter().any(|a| a.transaction_count == 0),
        "an empty account is covered"
    );
    for account in &accounts {
        let one_call = bulk.list_all(&whole(account)).await.unwrap();
        let walked = paged.list_all(&whole(account)).await.unwrap();
        assert_eq!(one_call, walked, "{}", account.mono_account_id);
        assert_eq!(
            one_call.warnings,
            [],
            "the sandbox's clean data maps without warnings"
        );
        assert_matches_directory(&one_call.items, account);
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pages_walk_the_busiest_account_without_duplicate_or_gap() {
    let sb = start_sandbox().await;
    let busiest = accounts(&sb)
        .into_iter()
        .max_by_key(|a| a.transaction_count)
        .unwrap();
    assert!(busiest.transaction_count > 20, "needs several pages of 10");
    let one_call = adapter(&sb, true, 10)
        .list_all(&whole(&busiest))
        .await
        .unwrap();
    let walked = adapter(&sb, false, 10)
        .list_all(&whole(&busiest))
        .await
        .unwrap();
    assert_eq!(one_call, walked);
    assert_matches_directory(&walked.items, &busiest);
    let mut ids: Vec<_> = walked.items.iter().map(|t| t.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, busiest.transaction_count, "no duplicate");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_direction_filter_agrees_with_the_directory() {
    let sb = start_sandbox().await;
    let busiest = accounts(&sb)
        .into_iter()
        .max_by_key(|a| a.transaction_count)
        .unwrap();
    for bulk_read in [true, false] {
        let mono = adapter(&sb, bulk_read, 50);
        let debits = mono
            .list_all(&whole(&busiest).with_direction(Some(Direction::Debit)))
            .await
            .unwrap();
        assert_eq!(
            tally(&debits.items, Direction::Debit),
            (busiest.debit_count, busiest.debit_total_kobo)
        );
        assert_eq!(debits.items.len() as u64, busiest.debit_count);
    }
    sb.stop().await;
}

/// Accepts one HTTP POST on a free port and hands back its body; answers 200.
async fn one_shot_receiver() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/mono?job=1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let (head_len, content_length) = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the headers ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                assert!(head.starts_with("post "), "{head}");
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .expect("a content-length")
                    .trim()
                    .parse::<usize>()
                    .unwrap();
                break (end + 4, length);
            }
        };
        while buf.len() < head_len + content_length {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the body ended");
            buf.extend_from_slice(&chunk[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        buf[head_len..head_len + content_length].to_vec()
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_refresh_delivers_what_parse_delivery_reads() {
    let sb = start_sandbox().await;
    let account = accounts(&sb)
        .into_iter()
        .find(|a| a.transaction_count > 0)
        .unwrap();
    let mono = adapter(&sb, true, 100);
    let (callback_url, received) = one_shot_receiver().await;

    let outcome = mono
        .refresh(&RefreshRequest {
            account_id: account.mono_account_id.clone(),
            callback_url: Some(callback_url),
        })
        .await
        .unwrap();
    assert_eq!(outcome, RefreshOutcome::AwaitingDelivery);

    let body = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("a delivery within 10 s")
        .unwrap();
    let delivery = mono
        .parse_delivery(&account.mono_account_id, &body)
        .unwrap();
    assert_eq!(
        delivery.account_id.as_deref(),
        Some(account.mono_account_id.as_str())
    );

    // The sync appended transactions; the delivery is the whole account as it now stands.
    let now = accounts(&sb)
        .into_iter()
        .find(|a| a.mono_account_id == account.mono_account_id)
        .unwrap();
    let appended = SandboxConfig::default().new_transactions_per_refresh as u64;
    assert_eq!(now.transaction_count, account.transaction_count + appended);
    assert_matches_directory(&delivery.transactions, &now);
    assert_eq!(
        delivery.transactions,
        mono.list_all(&whole(&now)).await.unwrap().items
    );
    sb.stop().await;
}
