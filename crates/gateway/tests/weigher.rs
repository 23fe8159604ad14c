//! The cache's weights against the allocator's own count of heap bytes (jemalloc, the binary's
//! allocator: bytes this thread allocated minus bytes it freed, in the allocator's size
//! classes): a snapshot's records, the transaction index and a rendered page must weigh what
//! they really take, so that `cache.max_bytes` bounds memory.
#![cfg(feature = "jemalloc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gateway::snapshot::{
    INDEX_ENTRY_BYTES, Rendered, Snapshot, SnapshotKey, estimate_bytes, index_key, new_index,
};
use provider::{
    Currency, DateRange, Direction, Money, RawRecord, Scope, Transaction, TransactionId,
};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What this thread holds now, net (counted by jemalloc on every allocation and free).
fn allocated() -> u64 {
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::read().unwrap().get();
    let freed = tikv_jemalloc_ctl::thread::deallocatedp::read()
        .unwrap()
        .get();
    allocated.wrapping_sub(freed)
}

/// Heap growth while `make` runs, and what it made.
fn measure<T>(make: impl FnOnce() -> T) -> (T, u64) {
    let before = allocated();
    let made = make();
    let after = allocated();
    (made, after.saturating_sub(before))
}

/// Text of `len` characters, different per `seed` (lengths vary, like a provider's records).
fn text(seed: usize, len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((seed * 7 + i) % 26) as u8))
        .collect()
}

fn record(i: usize) -> Transaction {
    let id = format!("5f3c1b2a9d{i:08}");
    let raw = format!(
        r#"{{"_id":"{id}","amount":{},"narration":"{}","notes":{{"desc":"{}"}},"bank":"5d6fe57a4099cc4b210bbeb1"}}"#,
        i * 13,
        text(i, 20 + i % 90),
        text(i + 3, i % 200)
    );
    Transaction {
        id: TransactionId::new("okra", id.as_str()),
        provider: "okra".into(),
        provider_transaction_id: id,
        account_id: format!("acct-{:06}", i % 40),
        customer_id: (!i.is_multiple_of(3)).then(|| format!("cust-{:05}", i % 17)),
        direction: if i.is_multiple_of(2) {
            Direction::Debit
        } else {
            Direction::Credit
        },
        amount: Money::from_minor(i as i64 * 13, Currency::NGN),
        balance_after: None,
        booked_on: time::macros::date!(2026 - 01 - 01),
        value_on: None,
        narration: text(i, 20 + i % 90),
        reference: (!i.is_multiple_of(4)).then(|| text(i + 1, 12 + i % 20)),
        bank: Some("Guaranty Trust Bank".to_owned()),
        raw: RawRecord::from_json(raw),
    }
}

/// The estimate may err on the safe side (over) by `over`, and under by 3 % at most.
fn within(what: &str, estimate: u64, measured: u64, over: f64) {
    let ratio = estimate as f64 / measured.max(1) as f64;
    println!("{what}: estimate {estimate} B, measured {measured} B, ratio {ratio:.3}");
    assert!(
        (0.97..=1.0 + over).contains(&ratio),
        "{what}: the weigher says {estimate} B, the allocator counted {measured} B"
    );
}

#[test]
fn weights_match_the_allocators_count() {
    let key = SnapshotKey {
        provider: Arc::from("okra"),
        scope: Scope::Account("acct-000001".into()),
        range: DateRange::default(),
        direction: None,
    };

    // A snapshot of 20,000 records: its weight against the heap it took.
    let (snapshot, measured) = measure(|| {
        let items: Vec<Transaction> = (0..20_000).map(record).collect();
        Arc::new(Snapshot::restored(
            1,
            key.clone(),
            items,
            vec![],
            tokio::time::Instant::now(),
            Duration::from_secs(60),
        ))
    });
    assert_eq!(
        u64::from(snapshot.bytes),
        u64::from(estimate_bytes(&snapshot.items))
    );
    within(
        "snapshot of 20,000 records",
        u64::from(snapshot.bytes),
        measured,
        0.08,
    );

    // The transaction index: 200,000 entries, one shared key.
    let shared_key = Arc::new(key.clone());
    let (index, measured) = measure(|| {
        let index = new_index(
            u64::MAX,
            Duration::from_secs(3600),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        for i in 0..200_000usize {
            let id = TransactionId::new("okra", format!("tx-{i}").as_str());
            index.insert(index_key(&id), shared_key.clone());
        }
        index.run_pending_tasks();
        index
    });
    assert_eq!(index.entry_count(), 200_000);
    within(
        "index of 200,000 entries",
        200_000 * u64::from(INDEX_ENTRY_BYTES),
        measured,
        0.1,
    );

    // A rendered page: no spare capacity kept.
    let (rendered, measured) = measure(|| {
        let mut body = Vec::new();
        for i in 0..50 {
            body.extend_from_slice(text(i, 470).as_bytes());
        }
        Arc::new(Rendered::new(body))
    });
    within(
        "rendered page of 23,500 bytes",
        (rendered.heap_bytes() + gateway::memory::arc(std::mem::size_of::<Rendered>())) as u64,
        measured,
        0.01,
    );
    drop((snapshot, index, rendered));
}
