//! A cursor whose snapshot no longer exists (past its lifetime, or minted by a replica that
//! restarted) is a 410 `cursor_expired`, never a wrong page.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use e2e::spawn_default;
use gateway::cursor::{Cursor, fingerprint};
use provider::{Scope, TransactionQuery};

#[tokio::test]
async fn a_cursor_into_a_snapshot_that_is_gone_is_410_cursor_expired() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(30).remove(0);
    let path = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let first = gw.get(&format!("{path}?limit=10")).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let text = first.json["pagination"]["next_cursor"].as_str().unwrap();
    // The same cursor, signed with the gateway's key, naming a snapshot it does not hold.
    let query = TransactionQuery::new(Scope::Account(account.okra_account_id.clone()));
    let fp = fingerprint("billing", "okra", &query);
    let cursor = gw.state.cursors.decode(text, fp).unwrap();
    let gone = gw.state.cursors.encode(Cursor {
        snapshot_id: cursor.snapshot_id + 1_000_000,
        ..cursor
    });
    let still = gw.get(&format!("{path}?limit=10&cursor={text}")).await;
    assert_eq!(still.status, 200, "{}", still.json);
    let expired = gw.get(&format!("{path}?limit=10&cursor={gone}")).await;
    assert_eq!(expired.status, 410, "{}", expired.json);
    assert_eq!(expired.json["code"], "cursor_expired");
}
