//! First page fast: the first provider pages of a fill in flight, published in order as they
//! arrive, so that a listing's first page can be answered before the whole snapshot is built.
//!
//! Only for providers whose pages come newest booking date first (the listing's order,
//! `Capabilities::newest_first`), on queries the gateway does not filter itself: then the first
//! `n` records read are the snapshot's first `n` records. A fill publishes a [`Progress`] (its
//! future snapshot's id, the provider's total, the records read so far in order, at most
//! [`EARLY_ITEMS`]); a request whose page they cover is answered from it, with a cursor into the
//! snapshot still filling, and the fill goes on behind it.
//!
//! Consistency: when the snapshot is built, its first records are compared with what was
//! published. If they are the same, the snapshot takes the promised id and cursors issued from
//! an early page continue into it without a duplicate or a gap. If they differ (the provider's
//! data shifted while the fill read it, or its pages were not in order after all), the snapshot
//! gets another id and those cursors answer `410 cursor_expired`: the walk starts again on the
//! built snapshot, and the gateway logs a warning. The totals an early page states are the
//! provider's; the built snapshot's are exact (records the provider sent unreadable are left
//! out), so a later page may state fewer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use provider::{Page, RecordWarning, Transaction, TransactionId};
use tokio::sync::watch;

/// The most records a fill publishes before its snapshot is built: the API's largest page.
pub const EARLY_ITEMS: usize = 100;

/// What a fill in flight has read of its first pages.
#[derive(Debug)]
pub struct Progress {
    /// The id the snapshot will have (cursors from an early page name it).
    pub id: u64,
    /// The provider's total for the scope, as its first page said.
    pub total: Option<u64>,
    /// The first records, in the listing's order, without duplicates.
    pub items: Vec<Transaction>,
    /// The record warnings of the pages those records came from.
    pub warnings: Vec<RecordWarning>,
    served: Arc<AtomicBool>,
}

impl Progress {
    /// Whether the records read so far cover `needed` records of the listing.
    pub fn covers(&self, needed: usize) -> bool {
        self.total.is_some()
            && (self.items.len() >= needed
                || self.total.is_some_and(|t| self.items.len() as u64 >= t))
    }

    /// Notes that a page was answered from this progress (its fill then keeps the snapshot for
    /// cursors from the moment it is built).
    pub fn mark_served(&self) {
        self.served.store(true, Ordering::Relaxed);
    }
}

/// A fill's channel: `None` while nothing can be answered early (not started, finished, or
/// out of order).
pub type Channel = watch::Sender<Option<Arc<Progress>>>;

/// A fill's side of the channel: takes its pages as they arrive (in any order) and publishes
/// the records of the pages that follow one another from page 1.
pub struct Publisher {
    id: u64,
    channel: Arc<Channel>,
    served: Arc<AtomicBool>,
    state: std::sync::Mutex<Prefix>,
}

#[derive(Default)]
struct Prefix {
    /// The next page number the prefix needs.
    next: u32,
    /// Pages that arrived before their turn.
    waiting: BTreeMap<u32, Page<Transaction>>,
    items: Vec<Transaction>,
    ids: HashSet<TransactionId>,
    warnings: Vec<RecordWarning>,
    total: Option<u64>,
    /// Still publishing (neither full nor out of order).
    open: bool,
}

impl Publisher {
    /// A publisher for the fill of a snapshot that will be `id`.
    pub fn new(id: u64, channel: Arc<Channel>) -> Publisher {
        Publisher {
            id,
            channel,
            served: Arc::new(AtomicBool::new(false)),
            state: std::sync::Mutex::new(Prefix {
                next: 1,
                open: true,
                ..Default::default()
            }),
        }
    }

    /// The id promised to early pages.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Takes provider page `number` (a copy is kept while it waits for its turn).
    pub fn page(&self, number: u32, page: &Page<Transaction>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.open || number < state.next {
            return;
        }
        if number > state.next {
            // Only pages that can still reach the prefix are worth a copy.
            let room = EARLY_ITEMS.saturating_sub(state.items.len());
            let reach = room.div_ceil(page.limit.max(1) as usize) as u32;
            if number - state.next < reach {
                state.waiting.insert(number, page.clone());
            }
            return;
        }
        if number == 1 {
            state.total = page.total;
        }
        state.append(page);
        while state.open {
            let next = state.next;
            let Some(page) = state.waiting.remove(&next) else {
                break;
            };
            state.append(&page);
        }
        let progress = state.open.then(|| {
            Arc::new(Progress {
                id: self.id,
                total: state.total,
                items: state.items.clone(),
                warnings: state.warnings.clone(),
                served: self.served.clone(),
            })
        });
        if !state.open {
            state.waiting.clear();
        }
        drop(state);
        self.channel.send_replace(progress);
    }

    /// Whether an early page was answered from this fill.
    pub fn served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    /// Whether `items` (the built snapshot's) start with the records published.
    pub fn agrees_with(&self, items: &[Transaction]) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.items.len() <= items.len()
            && state
                .items
                .iter()
                .zip(items)
                .all(|(published, built)| published.id == built.id)
    }
}

impl Prefix {
    fn append(&mut self, page: &Page<Transaction>) {
        self.next += 1;
        for tx in &page.items {
            if self.items.len() >= EARLY_ITEMS {
                // Full: what is published stays (it is a prefix), nothing more is added.
                return;
            }
            if self
                .items
                .last()
                .is_some_and(|last| tx.booked_on > last.booked_on)
            {
                // Not newest first after all: the built snapshot's order is not known yet.
                self.open = false;
                return;
            }
            if self.ids.insert(tx.id.clone()) {
                self.items.push(tx.clone());
            }
        }
        self.warnings.extend(page.warnings.iter().cloned());
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // The fill is over (built, failed or dropped): nothing more to answer early.
        self.channel.send_replace(None);
    }
}
