//! Least privilege: what each client may do (its scopes) and reach (its provider instances),
//! and which operation every `/v1` route is.
//!
//! [`ROUTES`] is the one table of the `/v1` routes a client calls: method and pattern, the
//! [`Operation`] each performs, where its provider comes from and what it is about (for the
//! audit trail). `api::v1_routes` registers every route from this table, with the
//! `middleware::authorize` layer that asks the client's [`Policy`] before the handler runs:
//! handlers never check scopes, and a refused call never reaches a provider. Tests check that
//! the table and the OpenAPI document's security requirements agree, and (end to end) that
//! every documented operation refuses a client without its scope.
//!
//! This module owns no I/O: it decides, the middleware acts.

use std::collections::BTreeSet;

use actix_web::http::Method;

use crate::error::ApiError;

/// What a call does; each operation is one scope a client may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read transactions (listings and lookups by id).
    TransactionsRead,
    /// Start refresh jobs at a provider.
    TransactionsRefresh,
    /// Delta sync of an account's transactions.
    TransactionsSync,
    /// List the configured providers.
    ProvidersRead,
    /// Read refresh jobs.
    JobsRead,
}

impl Operation {
    /// Every operation, in the order the docs list them.
    pub const ALL: [Operation; 5] = [
        Operation::TransactionsRead,
        Operation::TransactionsRefresh,
        Operation::TransactionsSync,
        Operation::ProvidersRead,
        Operation::JobsRead,
    ];

    /// The scope's name, as configured and documented: `transactions:read`, ...
    pub fn scope(self) -> &'static str {
        match self {
            Operation::TransactionsRead => "transactions:read",
            Operation::TransactionsRefresh => "transactions:refresh",
            Operation::TransactionsSync => "transactions:sync",
            Operation::ProvidersRead => "providers:read",
            Operation::JobsRead => "jobs:read",
        }
    }

    /// The operation a scope name stands for.
    pub fn from_scope(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.scope() == name)
    }

    /// Whether the call reads or acts on a customer's bank data (each such call is audited).
    pub fn touches_bank_data(self) -> bool {
        matches!(
            self,
            Operation::TransactionsRead
                | Operation::TransactionsRefresh
                | Operation::TransactionsSync
        )
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope.
    pub fn all() -> Scopes {
        Scopes::from_iter(Operation::ALL)
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: Operation) -> bool {
        self.0 & op.bit() != 0
    }

    /// The scopes' names.
    pub fn names(self) -> Vec<&'static str> {
        Operation::ALL
            .into_iter()
            .filter(|op| self.contains(*op))
            .map(Operation::scope)
            .collect()
    }
}

impl FromIterator<Operation> for Scopes {
    fn from_iter<I: IntoIterator<Item = Operation>>(ops: I) -> Scopes {
        Scopes(ops.into_iter().fold(0, |bits, op| bits | op.bit()))
    }
}

/// What one client may do and reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    scopes: Scopes,
    /// `None`: every configured provider.
    providers: Option<BTreeSet<String>>,
}

impl Policy {
    /// Every scope, every provider: a client whose configuration says nothing else.
    pub fn unrestricted() -> Policy {
        Policy {
            scopes: Scopes::all(),
            providers: None,
        }
    }

    /// `scopes` (or all of them), on `providers` (or all of them).
    pub fn new(scopes: Option<Scopes>, providers: Option<BTreeSet<String>>) -> Policy {
        Policy {
            scopes: scopes.unwrap_or_else(Scopes::all),
            providers,
        }
    }

    /// The client's scopes.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// The providers the client may use, when restricted.
    pub fn providers(&self) -> Option<&BTreeSet<String>> {
        self.providers.as_ref()
    }

    /// Whether the client may use provider `name`.
    pub fn may_use(&self, name: &str) -> bool {
        self.providers.as_ref().is_none_or(|p| p.contains(name))
    }

    /// Allows `op` on `provider` (when the call has one), or says which scope is missing.
    ///
    /// `parameter` is where the provider came from (`provider`, `id`), for the problem body.
    pub fn authorize(
        &self,
        op: Operation,
        provider: Option<(&str, &'static str)>,
    ) -> Result<(), ApiError> {
        if !self.scopes.contains(op) {
            return Err(ApiError::InsufficientScope {
                scope: op.scope().to_owned(),
                provider: None,
                parameter: None,
                detail: format!(
                    "this client lacks the scope {}, which this operation needs",
                    op.scope()
                ),
            });
        }
        if let Some((name, parameter)) = provider
            && !self.may_use(name)
        {
            let allowed = self
                .providers
                .iter()
                .flatten()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::InsufficientScope {
                scope: format!("provider:{name}"),
                provider: Some(name.to_owned()),
                parameter: Some(parameter),
                detail: format!("this client may not use provider {name:?}; it may use: {allowed}"),
            });
        }
        Ok(())
    }

    /// One line for the startup log.
    pub fn describe(&self) -> String {
        let scopes = if self.scopes == Scopes::all() {
            "every scope".to_owned()
        } else {
            format!("scopes {}", self.scopes.names().join(", "))
        };
        let providers = match &self.providers {
            None => "every provider".to_owned(),
            Some(p) => format!(
                "providers {}",
                p.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
            ),
        };
        format!("{scopes}; {providers}")
    }
}

/// Where a route's provider instance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderSource {
    /// The route involves no provider.
    None,
    /// `?provider=`, or the configured default.
    Query,
    /// The gateway transaction id in the path parameter `id` (it encodes its provider).
    TransactionId,
}

/// What a call is about, for the audit trail: a kind, and the path parameter naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Nothing in particular (`/v1/providers`).
    None,
    /// All of the client's transactions.
    All,
    /// `kind` named by the path parameter `param`.
    Param {
        /// `account`, `customer`, `nuban`, `transaction`, `job`.
        kind: &'static str,
        /// The path parameter holding its id.
        param: &'static str,
    },
}

/// One `/v1` route: its method and pattern, what it does, which provider it reaches, what it
/// is about. `api::v1_routes` registers each with its handler and `authorize` around it, so
/// the pattern is written here only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The full pattern (`/v1/...`), as registered and as documented.
    pub pattern: &'static str,
    /// The operation, i.e. the scope it needs.
    pub operation: Operation,
    /// Where its provider comes from.
    pub provider: ProviderSource,
    /// What it is about.
    pub subject: Subject,
}

impl Route {
    /// The path parameter that names the call's subject, when it has one.
    pub fn subject_param(&self) -> Option<&'static str> {
        match self.subject {
            Subject::Param { param, .. } => Some(param),
            _ => None,
        }
    }
}

const fn param(kind: &'static str, param: &'static str) -> Subject {
    Subject::Param { kind, param }
}

/// Whether `route` is one of the four transaction listings (the cache-hit path).
pub fn is_listing(route: &Route) -> bool {
    [&LIST_ACCOUNT, &LIST_CUSTOMER, &LIST_NUBAN, &LIST_ALL]
        .into_iter()
        .any(|listing| std::ptr::eq(listing, route))
}

/// `GET /v1/accounts/{account_id}/transactions`
pub static LIST_ACCOUNT: Route = Route {
    method: Method::GET,
    pattern: "/v1/accounts/{account_id}/transactions",
    operation: Operation::TransactionsRead,
    provider: ProviderSource::Query,
    subject: param("account", "account_id"),
};
/// `GET /v1/customers/{customer_id}/transactions`
pub static LIST_CUSTOMER: Route = Route {
    method: Method::GET,
    pattern: "/v1/customers/{customer_id}/transactions",
    operation: Operation::TransactionsRead,
    provider: ProviderSource::Query,
    subject: param("customer", "customer_id"),
};
/// `GET /v1/nubans/{nuban}/transactions`
pub static LIST_NUBAN: Route = Route {
    method: Method::GET,
    pattern: "/v1/nubans/{nuban}/transactions",
    operation: Operation::TransactionsRead,
    provider: ProviderSource::Query,
    subject: param("nuban", "nuban"),
};
/// `GET /v1/transactions`
pub static LIST_ALL: Route = Route {
    method: Method::GET,
    pattern: "/v1/transactions",
    operation: Operation::TransactionsRead,
    provider: ProviderSource::Query,
    subject: Subject::All,
};
/// `GET /v1/transactions/{id}`
pub static GET_TRANSACTION: Route = Route {
    method: Method::GET,
    pattern: "/v1/transactions/{id}",
    operation: Operation::TransactionsRead,
    provider: ProviderSource::TransactionId,
    subject: param("transaction", "id"),
};
/// `POST /v1/accounts/{account_id}/transactions/refresh`
pub static START_REFRESH: Route = Route {
    method: Method::POST,
    pattern: "/v1/accounts/{account_id}/transactions/refresh",
    operation: Operation::TransactionsRefresh,
    provider: ProviderSource::Query,
    subject: param("account", "account_id"),
};
/// `GET /v1/accounts/{account_id}/transactions/sync`: delta sync.
pub static SYNC_ACCOUNT: Route = Route {
    method: Method::GET,
    pattern: "/v1/accounts/{account_id}/transactions/sync",
    operation: Operation::TransactionsSync,
    provider: ProviderSource::Query,
    subject: param("account", "account_id"),
};
/// `GET /v1/providers`
pub static LIST_PROVIDERS: Route = Route {
    method: Method::GET,
    pattern: "/v1/providers",
    operation: Operation::ProvidersRead,
    provider: ProviderSource::None,
    subject: Subject::None,
};
/// `GET /v1/jobs/{id}`
pub static GET_JOB: Route = Route {
    method: Method::GET,
    pattern: "/v1/jobs/{id}",
    operation: Operation::JobsRead,
    provider: ProviderSource::None,
    subject: param("job", "id"),
};

/// Every `/v1` route a client calls with its API key.
pub static ROUTES: [&Route; 9] = [
    &LIST_ACCOUNT,
    &LIST_CUSTOMER,
    &LIST_NUBAN,
    &LIST_ALL,
    &GET_TRANSACTION,
    &START_REFRESH,
    &SYNC_ACCOUNT,
    &LIST_PROVIDERS,
    &GET_JOB,
];

/// The route with this method and pattern (as `HttpRequest::match_pattern` gives it).
pub fn lookup(method: &Method, pattern: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .copied()
        .find(|r| r.method == method && r.pattern == pattern)
}

/// Percent-decodes a path segment completely (`%41` -> `A`); `None` when that gives no UTF-8.
///
/// Used to read a transaction id before routing: a valid id has only `A-Z a-z 0-9 _ -`, so any
/// partial decoding a router does either gives the same id or no valid id at all.
pub fn decode_segment(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted(scopes: &[Operation], providers: &[&str]) -> Policy {
        Policy::new(
            Some(scopes.iter().copied().collect()),
            Some(providers.iter().map(|p| (*p).to_owned()).collect()),
        )
    }

    #[test]
    fn scope_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_scope(op.scope()), Some(op));
        }
        assert_eq!(Operation::from_scope("transactions:write"), None);
        assert_eq!(Scopes::all().names().len(), 5);
    }

    #[test]
    fn a_missing_scope_is_named() {
        let policy = restricted(&[Operation::TransactionsRead], &["okra"]);
        assert!(
            policy
                .authorize(Operation::TransactionsRead, Some(("okra", "provider")))
                .is_ok()
        );
        match policy.authorize(Operation::TransactionsRefresh, Some(("okra", "provider"))) {
            Err(ApiError::InsufficientScope { scope, .. }) => {
                assert_eq!(scope, "transactions:refresh")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_provider_outside_the_list_is_refused_naming_it() {
        let policy = restricted(&[Operation::TransactionsRead], &["okra"]);
        match policy.authorize(Operation::TransactionsRead, Some(("mono", "provider"))) {
            Err(ApiError::InsufficientScope {
                scope,
                provider,
                parameter,
                ..
            }) => {
                assert_eq!(scope, "provider:mono");
                assert_eq!(provider.as_deref(), Some("mono"));
                assert_eq!(parameter, Some("provider"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Policy::unrestricted().may_use("anything"));
    }

    #[test]
    fn the_table_answers_by_method_and_pattern() {
        let get = lookup(&Method::GET, "/v1/transactions/{id}").unwrap();
        assert_eq!(get.provider, ProviderSource::TransactionId);
        assert_eq!(get.subject_param(), Some("id"));
        assert_eq!(lookup(&Method::DELETE, "/v1/transactions/{id}"), None);
        assert_eq!(
            lookup(&Method::GET, "/v1/accounts/{account_id}/balance"),
            None
        );
    }

    /// The scopes written on the handlers (the OpenAPI security requirements) and the table the
    /// middleware enforces are the same, route by route.
    #[test]
    fn the_table_and_the_documented_security_requirements_agree() {
        use utoipa::OpenApi;
        let doc = crate::api::ApiDoc::openapi();
        let mut documented = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ] {
                let Some(op) = op else { continue };
                let scopes = crate::api::required_scopes(op);
                if !path.starts_with("/v1/") || op.security.as_ref().is_none_or(|s| s.is_empty()) {
                    continue;
                }
                let Some(route) = lookup(&method, path) else {
                    panic!("{method} {path} is documented but not in ROUTES");
                };
                assert_eq!(scopes, [route.operation.scope()], "{method} {path}");
                documented.push((route.method.clone(), route.pattern));
            }
        }
        for route in ROUTES {
            assert!(
                documented.contains(&(route.method.clone(), route.pattern)),
                "{} {} is in ROUTES but not documented",
                route.method,
                route.pattern
            );
        }
        assert_eq!(documented.len(), ROUTES.len());
    }

    #[test]
    fn segments_are_fully_decoded() {
        assert_eq!(decode_segment("txn_abc").as_deref(), Some("txn_abc"));
        assert_eq!(decode_segment("txn%5Fab%63").as_deref(), Some("txn_abc"));
        assert_eq!(decode_segment("a%2").as_deref(), Some("a%2"));
        assert_eq!(decode_segment("%ff"), None);
    }
}
