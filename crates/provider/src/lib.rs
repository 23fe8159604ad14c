//! The canonical model every bank-data provider is mapped onto, and the `Provider` trait.
//!
//! This crate owns the vocabulary the rest of the workspace speaks: [`Money`], [`Transaction`],
//! [`TransactionQuery`], [`Page`], [`Capabilities`], the refresh types, [`ProviderError`] and the
//! async [`Provider`] trait that each adapter (`okra`, `mono`) implements. It must never know an
//! HTTP server, an HTTP client or a vendor's wire format: those live in the adapters and the
//! gateway, and this crate's `Cargo.toml` depends on none of them.

mod error;
mod float_rule;
mod money;
mod query;
mod secret;
mod transaction;
mod warning;

pub use error::{Fault, MappingError, ProviderError, ThrottleReason};
pub use float_rule::FLOAT_NOISE_ULPS;
pub use money::{Currency, Money, MoneyError};
pub use query::{
    Capabilities, DateRange, Listing, Page, PageRequest, RefreshDelivery, RefreshOutcome,
    RefreshRequest, RefreshStyle, Scope, ScopeKind, TransactionQuery,
};
pub use secret::Secret;
pub use transaction::{Direction, RawRecord, Transaction, TransactionId, TransactionIdError};
pub use warning::{RAW_VALUE_MAX_CHARS, RecordWarning, WarningCode};

pub use time::Date;

use async_trait::async_trait;

/// A bank-data provider, as seen by the gateway.
///
/// An adapter implements the three required methods; everything providers do alike (walking all
/// pages of a scope, refusing what they cannot do) is a default method here, written once.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The configured instance name (`"okra"`), used in gateway ids and error reports.
    fn name(&self) -> &str;

    /// The kind of provider (`"okra"`, `"mono"`).
    fn kind(&self) -> &'static str;

    /// What this provider can do natively.
    fn capabilities(&self) -> &Capabilities;

    /// Reads one provider page of the query's scope.
    ///
    /// `query.page.limit` is clamped by the adapter to what the provider allows; the returned
    /// page says which limit was used. Filters the provider lacks natively for the scope (see
    /// [`Capabilities::filters_dates`], [`Capabilities::filters_direction`]) are *not* applied:
    /// the caller applies them. A scope the provider cannot read is
    /// [`ProviderError::Unsupported`].
    async fn list_page(&self, query: &TransactionQuery)
    -> Result<Page<Transaction>, ProviderError>;

    /// Reads one transaction by the provider's own id.
    async fn get_transaction(&self, provider_id: &str) -> Result<Transaction, ProviderError> {
        let _ = provider_id;
        Err(ProviderError::unsupported(self.name(), "get_by_id"))
    }

    /// Reads every transaction of the query's scope, in the provider's order, with the warnings
    /// of every page read.
    ///
    /// The default walks the pages one after another with the provider's largest page size,
    /// stopping at the last page; adapters with a cheaper bulk read override it.
    async fn list_all(&self, query: &TransactionQuery) -> Result<Listing, ProviderError> {
        walk_pages(self, query, self.capabilities().max_page_size, 1).await
    }

    /// Asks the provider for fresh data on an account.
    ///
    /// Polling-style providers (Okra) return [`RefreshOutcome::Completed`] once the provider
    /// reports the extraction done (bounded polling inside); webhook-style providers return
    /// [`RefreshOutcome::AwaitingDelivery`] and later POST to `request.callback_url`.
    async fn refresh(&self, request: &RefreshRequest) -> Result<RefreshOutcome, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(self.name(), "refresh"))
    }

    /// Reads a refresh result the provider delivered to our callback URL for the refresh of
    /// `expected_account_id`; the transactions are mapped as belonging to that account, and the
    /// delivery reports the account the payload itself names so the caller can refuse a mismatch.
    fn parse_delivery(
        &self,
        expected_account_id: &str,
        body: &[u8],
    ) -> Result<RefreshDelivery, ProviderError> {
        let _ = (expected_account_id, body);
        Err(ProviderError::unsupported(self.name(), "refresh_delivery"))
    }
}

/// Reads `provider`'s pages of `page_size` from page `from` on, following `next_page` until the
/// last page (or an empty page, or a `next_page` that does not move forward), in order, with
/// every page's warnings.
pub async fn walk_pages<P: Provider + ?Sized>(
    provider: &P,
    query: &TransactionQuery,
    page_size: u32,
    from: u32,
) -> Result<Listing, ProviderError> {
    let mut page_no = from.max(1);
    let mut all = Listing::default();
    loop {
        let page = provider
            .list_page(&query.with_page(PageRequest::new(page_no, page_size)))
            .await?;
        // A page of only unreadable records is not empty: its warnings say what it held.
        let got = page.items.len() + page.warnings.len();
        all.items.extend(page.items);
        all.warnings.extend(page.warnings);
        match page.next_page {
            Some(next) if next > page_no && got > 0 => page_no = next,
            _ => break,
        }
    }
    Ok(all)
}
