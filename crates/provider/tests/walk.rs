//! The one page walker: follows `next_page`, and applies the provider's policy when a page
//! points backwards or at itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use async_trait::async_trait;
use provider::http::NonAdvancing;
use provider::{
    Capabilities, Page, Provider, ProviderError, RecordWarning, RefreshStyle, Scope, ScopeKind,
    Transaction, TransactionQuery, walk_pages,
};

/// Page `n` holds one record (a warning, so no transaction needs building) named `p{n}` and
/// points at `next[n - 1]`.
#[derive(Debug)]
struct Scripted {
    next: Vec<Option<u32>>,
    policy: NonAdvancing,
    capabilities: Capabilities,
}

fn scripted(next: &[Option<u32>], policy: NonAdvancing) -> Scripted {
    Scripted {
        next: next.to_vec(),
        policy,
        capabilities: Capabilities {
            scopes: vec![ScopeKind::Account],
            date_filter: Vec::new(),
            direction_filter: Vec::new(),
            get_by_id: false,
            default_page_size: 10,
            max_page_size: 10,
            bulk_read: false,
            newest_first: false,
            refresh: RefreshStyle::None,
        },
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    fn non_advancing(&self) -> NonAdvancing {
        self.policy
    }
    async fn list_page(
        &self,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ProviderError> {
        let n = query.page.page;
        Ok(Page {
            items: Vec::new(),
            page: n,
            limit: query.page.limit,
            total: None,
            total_pages: None,
            next_page: self.next[n as usize - 1],
            warnings: vec![RecordWarning::field_ignored(
                format!("p{n}"),
                "x",
                "scripted",
                None,
            )],
        })
    }
}

async fn walk(provider: &Scripted) -> Result<Vec<String>, ProviderError> {
    let query = TransactionQuery::new(Scope::Account("a".into()));
    let listing = walk_pages(provider, &query, 10, 1).await?;
    Ok(listing.warnings.into_iter().map(|w| w.record).collect())
}

#[tokio::test]
async fn pages_are_followed_to_the_last() {
    for policy in [NonAdvancing::Stop, NonAdvancing::Fail] {
        let pages = walk(&scripted(&[Some(2), Some(3), None], policy))
            .await
            .unwrap();
        assert_eq!(pages, ["p1", "p2", "p3"]);
    }
}

#[tokio::test]
async fn a_next_page_that_does_not_advance_stops_or_fails_by_policy() {
    for next in [Some(2), Some(1)] {
        let script = [Some(2), next, None];
        let stopped = walk(&scripted(&script, NonAdvancing::Stop)).await.unwrap();
        assert_eq!(stopped, ["p1", "p2"]);
        let failed = walk(&scripted(&script, NonAdvancing::Fail))
            .await
            .unwrap_err();
        assert!(
            matches!(&failed, ProviderError::BadPayload { message, .. }
                if message == &format!("next_page {} does not advance past page 2; refusing to loop", next.unwrap())),
            "{failed}"
        );
    }
}

#[tokio::test]
async fn the_default_policy_is_to_stop() {
    #[derive(Debug)]
    struct Default(Scripted);
    #[async_trait]
    impl Provider for Default {
        fn name(&self) -> &str {
            "default"
        }
        fn kind(&self) -> &'static str {
            "default"
        }
        fn capabilities(&self) -> &Capabilities {
            &self.0.capabilities
        }
        async fn list_page(
            &self,
            q: &TransactionQuery,
        ) -> Result<Page<Transaction>, ProviderError> {
            self.0.list_page(q).await
        }
    }
    let provider = Default(scripted(&[Some(1)], NonAdvancing::Fail));
    let query = TransactionQuery::new(Scope::Account("a".into()));
    assert_eq!(
        walk_pages(&provider, &query, 10, 1)
            .await
            .unwrap()
            .warnings
            .len(),
        1
    );
}
