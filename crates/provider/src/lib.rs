//! The canonical model every bank-data provider is mapped onto, and the `Provider` trait.
//!
//! This crate owns the vocabulary the rest of the workspace speaks: [`Money`], [`Transaction`],
//! [`TransactionQuery`], [`Page`], [`Capabilities`], the refresh types, [`ProviderError`] and the
//! async [`Provider`] trait that each adapter (`okra`, `mono`) implements. It must never know an
//! HTTP server, an HTTP client or a vendor's wire format: those live in the adapters and the
//! gateway, and this crate's `Cargo.toml` depends on none of them.

mod error;
mod float_rule;
pub mod http;
pub mod json_walk;
pub mod kind;
mod money;
mod query;
mod secret;
mod transaction;
mod warning;

pub use error::{Fault, MappingError, ProviderError, ThrottleReason};
pub use float_rule::FLOAT_NOISE_ULPS;
pub use money::{Currency, Money, MoneyError};
pub use query::{
    Capabilities, DateRange, Listing, Page, PageRequest, PollStatus, RefreshDelivery,
    RefreshOutcome, RefreshPoll, RefreshRequest, RefreshStart, RefreshStyle, Scope, ScopeKind,
    TransactionQuery,
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

    /// Asks the provider for fresh data on an account, and follows it to its end.
    ///
    /// Polling-style providers (Okra) return [`RefreshOutcome::Completed`] once the provider
    /// reports the extraction done; webhook-style providers return
    /// [`RefreshOutcome::AwaitingDelivery`] and later POST to `request.callback_url`. The
    /// default, [`follow_refresh`], starts it with [`Provider::start_refresh`] and polls with
    /// [`Provider::poll_refresh`]; adapters implement those two, not this.
    async fn refresh(&self, request: &RefreshRequest) -> Result<RefreshOutcome, ProviderError> {
        follow_refresh(self, request).await
    }

    /// Sends the one request that starts a refresh (no polling).
    async fn start_refresh(&self, request: &RefreshRequest) -> Result<RefreshStart, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(self.name(), "refresh"))
    }

    /// Asks once how a running refresh stands (one upstream request). A refresh the provider
    /// reports failed is an error.
    async fn poll_refresh(&self, poll: &RefreshPoll) -> Result<PollStatus, ProviderError> {
        let _ = poll;
        Err(ProviderError::unsupported(self.name(), "refresh"))
    }

    /// What [`walk_pages`] does when a page's `next_page` does not move forward: stop and keep
    /// what was read (the default), or fail rather than truncate silently.
    fn non_advancing(&self) -> http::NonAdvancing {
        http::NonAdvancing::Stop
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

/// Starts a refresh and, when the provider works on it, polls it on the provider's schedule
/// until it completes, fails, or runs past its deadline.
///
/// Every poll is a [`Provider::poll_refresh`] call on `provider`, so a wrapper that paces calls
/// (the gateway's lane) paces the polls too. A poll that fails retryably (a 5xx, a timeout, a
/// 429, or held back by the wrapper) is not the end: the next one waits at least as long as it
/// was asked to. Anything else ends the refresh with that error.
pub async fn follow_refresh<P: Provider + ?Sized>(
    provider: &P,
    request: &RefreshRequest,
) -> Result<RefreshOutcome, ProviderError> {
    let poll = match provider.start_refresh(request).await? {
        RefreshStart::Completed => return Ok(RefreshOutcome::Completed),
        RefreshStart::AwaitingDelivery => return Ok(RefreshOutcome::AwaitingDelivery),
        RefreshStart::Polling(poll) => poll,
    };
    let deadline = tokio::time::Instant::now() + poll.deadline;
    let mut delay = poll.initial_delay;
    let mut polls = 0u32;
    let mut last_problem = String::from("still running");
    loop {
        if tokio::time::Instant::now() + delay >= deadline {
            return Err(ProviderError::Unavailable {
                provider: provider.name().to_owned(),
                status: None,
                message: format!(
                    "refresh not completed within {:?} ({polls} polls; last: {last_problem})",
                    poll.deadline
                ),
            });
        }
        tokio::time::sleep(delay).await;
        polls += 1;
        let mut wait = None;
        match tokio::time::timeout_at(deadline, provider.poll_refresh(&poll)).await {
            Ok(Ok(PollStatus::Completed)) => return Ok(RefreshOutcome::Completed),
            Ok(Ok(PollStatus::Running)) => last_problem = "still running".into(),
            Ok(Err(error)) if error.is_retryable() => {
                wait = error.retry_after();
                last_problem = error.to_string();
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => last_problem = "the last poll ran into the deadline".into(),
        }
        delay = (delay * 2)
            .min(poll.max_delay)
            .max(wait.unwrap_or_default());
    }
}

/// Reads `provider`'s pages of `page_size` from page `from` on, following `next_page` until the
/// last page (or an empty page), in order, with every page's warnings. A `next_page` that does
/// not move forward, or a walk past [`http::MAX_PAGES`], is handled by the provider's
/// [`Provider::non_advancing`] policy: stop with what was read, or fail with a bad payload.
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
        let next = match page.next_page {
            // The last page; or an empty page that still points further would loop on nothing.
            None => break,
            Some(_) if got == 0 => break,
            Some(next) => next,
        };
        if next <= page_no || page_no >= http::MAX_PAGES {
            match provider.non_advancing() {
                http::NonAdvancing::Stop => break,
                http::NonAdvancing::Fail => {
                    return Err(ProviderError::BadPayload {
                        provider: provider.name().to_owned(),
                        status: None,
                        message: format!(
                            "next_page {next} does not advance past page {page_no}; refusing to loop"
                        ),
                    });
                }
            }
        }
        page_no = next;
    }
    Ok(all)
}
