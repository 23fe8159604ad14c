//! What `GET /_sandbox/accounts` tells a person or a test: customers, accounts, their ids at
//! each vendor, counts and kobo totals, and each vendor's base URL and credentials.

use serde::{Deserialize, Serialize};

use crate::ledger::{Direction, ymd};
use crate::state::Shared;

/// The sandbox's customers and how to reach each vendor API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Every generated customer with their accounts.
    pub customers: Vec<CustomerInfo>,
    /// How to call the Okra API.
    pub okra: VendorInfo,
    /// How to call the Mono-style API.
    pub mono: VendorInfo,
    /// How to call Mono's own API (the same account ids as the Mono-style one).
    pub mono_connect: VendorInfo,
}

/// One vendor's base URL and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorInfo {
    /// Base URL the vendor's paths are appended to.
    pub base_url: String,
    /// The secret key.
    pub secret: String,
    /// The app id (Mono only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// A customer and their accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// The customer's Okra id (`customer_id` of getByCustomerDate).
    pub okra_customer_id: String,
    /// Full name.
    pub name: String,
    /// The customer's accounts.
    pub accounts: Vec<AccountInfo>,
}

/// One account, with the numbers a test can check a full read against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The account's Okra id.
    pub okra_account_id: String,
    /// The account's Mono-style id (differs from the Okra id).
    pub mono_account_id: String,
    /// The 10-digit NUBAN.
    pub nuban: String,
    /// The bank's name.
    pub bank_name: String,
    /// The account name as the bank returns it.
    pub account_name: String,
    /// Number of transactions.
    pub transaction_count: u64,
    /// Number of debits.
    pub debit_count: u64,
    /// Number of credits.
    pub credit_count: u64,
    /// Sum of debits in kobo.
    pub debit_total_kobo: i64,
    /// Sum of credits in kobo.
    pub credit_total_kobo: i64,
    /// Date of the oldest transaction (`YYYY-MM-DD`), `None` when there are none.
    pub first_date: Option<String>,
    /// Date of the newest transaction (`YYYY-MM-DD`), `None` when there are none.
    pub last_date: Option<String>,
    /// The Okra id of the newest transaction, `None` when there are none.
    #[serde(default)]
    pub newest_okra_transaction_id: Option<String>,
}

impl AccountInfo {
    /// The closing balance change over the history (credits minus debits), in kobo.
    pub fn net_kobo(&self) -> i64 {
        self.credit_total_kobo - self.debit_total_kobo
    }
}

/// Builds the directory from the ledger as it is now.
pub(crate) fn build(shared: &Shared) -> Directory {
    let ledger = shared.read();
    let customers = ledger
        .customers
        .iter()
        .map(|c| CustomerInfo {
            okra_customer_id: c.okra_id.clone(),
            name: c.name.clone(),
            accounts: c
                .accounts
                .iter()
                .filter_map(|&i| ledger.accounts.get(i))
                .map(|a| {
                    let mut info = AccountInfo {
                        okra_account_id: a.okra_id.clone(),
                        mono_account_id: a.mono_id.clone(),
                        nuban: a.nuban.clone(),
                        bank_name: a.bank.name.to_owned(),
                        account_name: a.name.clone(),
                        transaction_count: a.txns.len() as u64,
                        debit_count: 0,
                        credit_count: 0,
                        debit_total_kobo: 0,
                        credit_total_kobo: 0,
                        first_date: a.txns.first().map(|t| ymd(t.date)),
                        last_date: a.txns.last().map(|t| ymd(t.date)),
                        newest_okra_transaction_id: a.txns.last().map(|t| t.okra_id.clone()),
                    };
                    for t in &a.txns {
                        match t.direction {
                            Direction::Debit => {
                                info.debit_count += 1;
                                info.debit_total_kobo += t.kobo;
                            }
                            Direction::Credit => {
                                info.credit_count += 1;
                                info.credit_total_kobo += t.kobo;
                            }
                        }
                    }
                    info
                })
                .collect(),
        })
        .collect();
    Directory {
        customers,
        okra: VendorInfo {
            base_url: shared.okra_base_url(),
            secret: shared.config.okra_secret.clone(),
            app_id: None,
        },
        mono: VendorInfo {
            base_url: shared.mono_base_url(),
            secret: shared.config.mono_secret.clone(),
            app_id: Some(shared.config.mono_app_id.clone()),
        },
        mono_connect: VendorInfo {
            base_url: shared.mono_connect_base_url(),
            secret: shared.config.mono_connect_secret.clone(),
            app_id: None,
        },
    }
}

impl Directory {
    /// Every account of every customer.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountInfo> {
        self.customers.iter().flat_map(|c| c.accounts.iter())
    }
}
