//! What a caller asks a provider for, what comes back, and what a provider can do.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::{Direction, Transaction};

/// Whose transactions a query reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Scope {
    /// One account, by the provider's account id.
    Account(String),
    /// Every account of one customer, by the provider's customer id.
    Customer(String),
    /// One account, by its 10-digit NUBAN.
    Nuban(String),
    /// Every transaction the API client can see (usually bounded by a date range).
    All,
}

impl Scope {
    /// The kind of scope, without its id.
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Account(_) => ScopeKind::Account,
            Scope::Customer(_) => ScopeKind::Customer,
            Scope::Nuban(_) => ScopeKind::Nuban,
            Scope::All => ScopeKind::All,
        }
    }
}

/// The kinds of [`Scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    /// By account id.
    Account,
    /// By customer id.
    Customer,
    /// By NUBAN.
    Nuban,
    /// All of the client's.
    All,
}

impl ScopeKind {
    /// The scope's name as the API and error messages spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScopeKind::Account => "account",
            ScopeKind::Customer => "customer",
            ScopeKind::Nuban => "nuban",
            ScopeKind::All => "all",
        }
    }
}

/// An inclusive range of booking dates; an open end is unbounded.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct DateRange {
    /// First day included.
    pub from: Option<Date>,
    /// Last day included.
    pub to: Option<Date>,
}

impl DateRange {
    /// A range from `from` to `to`, both included.
    pub fn new(from: Option<Date>, to: Option<Date>) -> Self {
        DateRange { from, to }
    }

    /// Whether `date` lies inside the range.
    pub fn contains(&self, date: Date) -> bool {
        self.from.is_none_or(|from| date >= from) && self.to.is_none_or(|to| date <= to)
    }

    /// Whether neither end is set.
    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Which page of results to read: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl PageRequest {
    /// Page `page` (1-based; 0 is read as 1) of `limit` items (at least 1).
    pub fn new(page: u32, limit: u32) -> Self {
        PageRequest {
            page: page.max(1),
            limit: limit.max(1),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::new(1, 50)
    }
}

/// A query for transactions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransactionQuery {
    /// Whose transactions.
    pub scope: Scope,
    /// Booking dates to include.
    pub range: DateRange,
    /// Only debits or only credits, when set.
    pub direction: Option<Direction>,
    /// Which page.
    pub page: PageRequest,
}

impl TransactionQuery {
    /// All transactions of `scope`, first page of the default size.
    pub fn new(scope: Scope) -> Self {
        TransactionQuery {
            scope,
            range: DateRange::default(),
            direction: None,
            page: PageRequest::default(),
        }
    }

    /// The same query for another page.
    pub fn with_page(&self, page: PageRequest) -> Self {
        TransactionQuery {
            page,
            ..self.clone()
        }
    }

    /// The same query restricted to `range`.
    pub fn with_range(mut self, range: DateRange) -> Self {
        self.range = range;
        self
    }

    /// The same query restricted to one direction.
    pub fn with_direction(mut self, direction: Option<Direction>) -> Self {
        self.direction = direction;
        self
    }

    /// Whether a transaction matches the query's date range and direction.
    pub fn matches(&self, tx: &Transaction) -> bool {
        self.range.contains(tx.booked_on) && self.direction.is_none_or(|d| d == tx.direction)
    }
}

/// One page of results and what is known about the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The page number this is (1-based).
    pub page: u32,
    /// The page size the provider used.
    pub limit: u32,
    /// Total items in the scope, when the provider says.
    pub total: Option<u64>,
    /// Total pages, when the provider says.
    pub total_pages: Option<u32>,
    /// The next page's number, or `None` on the last page.
    pub next_page: Option<u32>,
    /// Records of this page that could not be read (left out of `items`) and fields of kept
    /// records that were dropped; empty when every record mapped cleanly.
    pub warnings: Vec<crate::RecordWarning>,
}

/// Everything of a scope that a provider could read, and what it could not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// The transactions, in the provider's order.
    pub items: Vec<crate::Transaction>,
    /// The records left out and the fields dropped, page after page.
    pub warnings: Vec<crate::RecordWarning>,
}

/// How a provider refreshes an account's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshStyle {
    /// No on-demand refresh.
    None,
    /// Start, then poll a status URL until done (Okra's `callback_url`).
    Polling,
    /// Start with a callback URL; the provider POSTs the result there (Mono-style `webhook`).
    Webhook,
}

/// What a provider can do natively; the gateway emulates or refuses the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The scopes the provider can read.
    pub scopes: Vec<ScopeKind>,
    /// The scopes on which the provider filters by booking date itself.
    pub date_filter: Vec<ScopeKind>,
    /// The scopes on which the provider filters by direction itself.
    pub direction_filter: Vec<ScopeKind>,
    /// Whether a transaction can be read by its id.
    pub get_by_id: bool,
    /// The provider's page size when none is asked for.
    pub default_page_size: u32,
    /// The largest page the provider serves.
    pub max_page_size: u32,
    /// Whether a whole scope can be read in one call.
    pub bulk_read: bool,
    /// Whether the provider's pages list a scope's transactions newest booking date first (the
    /// gateway's listing order), so the first provider pages hold the listing's first page.
    #[serde(default)]
    pub newest_first: bool,
    /// How refresh works.
    pub refresh: RefreshStyle,
}

impl Capabilities {
    /// Whether the provider can read `scope`.
    pub fn supports(&self, scope: ScopeKind) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the provider filters `scope` by booking date itself.
    pub fn filters_dates(&self, scope: ScopeKind) -> bool {
        self.date_filter.contains(&scope)
    }

    /// Whether the provider filters `scope` by direction itself.
    pub fn filters_direction(&self, scope: ScopeKind) -> bool {
        self.direction_filter.contains(&scope)
    }
}

/// A request to refresh an account's transactions at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The provider's account id.
    pub account_id: String,
    /// Where a webhook-style provider should deliver the result (ignored by polling ones).
    pub callback_url: Option<String>,
}

/// How a started refresh stands when [`crate::Provider::refresh`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The provider finished; fresh data can be read now.
    Completed,
    /// The provider accepted the request and will deliver the result to the callback URL.
    AwaitingDelivery,
}

/// How a refresh stands right after it was asked for ([`crate::Provider::start_refresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshStart {
    /// The provider finished at once; fresh data can be read now.
    Completed,
    /// The provider will deliver the result to the callback URL (webhook style).
    AwaitingDelivery,
    /// The provider is working; ask it how it stands with [`crate::Provider::poll_refresh`].
    Polling(RefreshPoll),
}

/// A refresh the provider is running, and the schedule on which to ask how it stands.
///
/// Each poll is one upstream request of its own: whoever wraps a provider (the gateway's lane)
/// sees every one of them through [`crate::Provider::poll_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPoll {
    /// What the adapter needs to ask again (Okra: its checked `callback_url`).
    pub handle: String,
    /// The wait before the first poll; it doubles after each poll that finds it running.
    pub initial_delay: Duration,
    /// The longest wait between two polls.
    pub max_delay: Duration,
    /// How long the refresh may take in all before it is reported unavailable.
    pub deadline: Duration,
}

/// What one poll of a running refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStatus {
    /// Still running: ask again later.
    Running,
    /// Done: fresh data can be read now.
    Completed,
}

/// A refresh result a provider delivered to our callback URL.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshDelivery {
    /// The account the payload says it is for, when it says (compare with the expected one).
    pub account_id: Option<String>,
    /// The delivered transactions, mapped onto the canonical model.
    pub transactions: Vec<Transaction>,
}
