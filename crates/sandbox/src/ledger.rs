//! The one seeded ledger behind both vendor APIs: customers, accounts and their transactions.
//!
//! Amounts are integer kobo (`i64`) from generation to the wire; the vendor modules only turn
//! them into text ([`okra_amount_text`], [`decimal_text`]). Dates are anchored to a fixed end
//! date ([`END_DATE`]) so the same seed gives the same data on any day. Each transaction has an
//! Okra id (24 hex, ObjectId-like: date timestamp, seed "machine" part, global counter, so the
//! text order of ids is the chronological order) and a Mono id (a number, increasing with time).

use time::{Date, Duration, Month, macros::date};

/// The last day of generated history.
pub const END_DATE: Date = date!(2026 - 10 - 31);
/// How many days of history are generated before [`END_DATE`].
const HISTORY_DAYS: i64 = 730;

/// A tiny deterministic generator (splitmix64): stable across crate versions, unlike `StdRng`.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[i.min(items.len() - 1)]
    }

    pub(crate) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + u8::try_from(self.below(10)).unwrap_or(0)))
            .collect()
    }

    pub(crate) fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n)
            .map(|_| char::from(HEX[usize::try_from(self.below(16)).unwrap_or(0)]))
            .collect()
    }
}

/// How a bank writes dates in its own statements (Okra's `unformatted_*` fields).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DateStyle {
    /// `05/03/2024`
    DayMonthYear,
    /// `05-Mar-2024`
    DayMonYear,
    /// `2024-03-05`
    Iso,
}

/// A bank the generated accounts are held at.
#[derive(Debug)]
pub(crate) struct Bank {
    pub(crate) name: &'static str,
    pub(crate) code: &'static str,
    pub(crate) slug: &'static str,
    pub(crate) date_style: DateStyle,
    pub(crate) branches: &'static [&'static str],
}

const GTB: Bank = Bank {
    name: "Guaranty Trust Bank",
    code: "058",
    slug: "gtbank",
    date_style: DateStyle::DayMonYear,
    branches: &["LEKKI PHASE 1", "ADEOLA ODEKU", "IKEJA GRA"],
};
const ACCESS: Bank = Bank {
    name: "Access Bank",
    code: "044",
    slug: "access-bank",
    date_style: DateStyle::DayMonthYear,
    branches: &["OKO AWO", "WUSE II ABUJA", "ALLEN AVENUE"],
};
const ZENITH: Bank = Bank {
    name: "Zenith Bank",
    code: "057",
    slug: "zenith-bank",
    date_style: DateStyle::DayMonthYear,
    branches: &["AJOSE ADEOGUN", "TRANS AMADI PH", "BODIJA IBADAN"],
};
const FIRST_BANK: Bank = Bank {
    name: "First Bank of Nigeria",
    code: "011",
    slug: "first-bank",
    date_style: DateStyle::DayMonYear,
    branches: &["MARINA", "YABA", "KANO MAIN"],
};
const UBA: Bank = Bank {
    name: "United Bank for Africa",
    code: "033",
    slug: "uba",
    date_style: DateStyle::DayMonthYear,
    branches: &["BROAD STREET", "AREA 3 GARKI", "OGUI ROAD ENUGU"],
};
const KUDA: Bank = Bank {
    name: "Kuda Microfinance Bank",
    code: "090",
    slug: "kuda",
    date_style: DateStyle::Iso,
    branches: &["HEAD OFFICE"],
};
const OPAY: Bank = Bank {
    name: "Opay",
    code: "100",
    slug: "opay",
    date_style: DateStyle::Iso,
    branches: &["HEAD OFFICE"],
};

/// Debit or credit, from the account holder's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Debit,
    Credit,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }
}

/// What kind of transaction a record is (drives narration, Okra's `notes` and `ner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Airtime,
    Pos,
    TransferOut,
    TransferIn,
    Salary,
    Bill,
    Ussd,
    Card,
    Fee,
    Atm,
    Interest,
    Reversal,
}

impl Category {
    /// Okra's `ner.TRANS_TYPE` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Category::Airtime => "AIRTIME",
            Category::Pos => "POS",
            Category::TransferOut | Category::TransferIn => "TRANSFER",
            Category::Salary => "SALARY",
            Category::Bill => "BILL_PAYMENT",
            Category::Ussd => "USSD",
            Category::Card => "CARD",
            Category::Fee => "BANK_CHARGE",
            Category::Atm => "ATM_WITHDRAWAL",
            Category::Interest => "INTEREST",
            Category::Reversal => "REVERSAL",
        }
    }

    /// Okra's `notes.actions` / `notes.subjects` words.
    pub(crate) fn notes(self) -> (&'static str, &'static str) {
        match self {
            Category::Airtime => ("purchase", "airtime"),
            Category::Pos => ("purchase", "pos"),
            Category::TransferOut => ("transfer", "beneficiary"),
            Category::TransferIn => ("receive", "transfer"),
            Category::Salary => ("pay", "salary"),
            Category::Bill => ("pay", "bill"),
            Category::Ussd => ("transfer", "ussd"),
            Category::Card => ("purchase", "card"),
            Category::Fee => ("charge", "fee"),
            Category::Atm => ("withdraw", "cash"),
            Category::Interest => ("credit", "interest"),
            Category::Reversal => ("reverse", "transaction"),
        }
    }
}

/// One transaction of the ledger.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub(crate) okra_id: String,
    pub(crate) mono_id: u64,
    pub(crate) date: Date,
    pub(crate) value_date: Date,
    pub(crate) direction: Direction,
    pub(crate) kobo: i64,
    pub(crate) balance_after_kobo: i64,
    pub(crate) narration: String,
    pub(crate) reference: String,
    pub(crate) category: Category,
    /// Okra writes this amount with binary floating-point noise (`0.30000000000000004`).
    pub(crate) noisy_okra_amount: bool,
}

/// A bank account, with its transactions in chronological order (date, then creation).
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) okra_id: String,
    pub(crate) mono_id: String,
    pub(crate) nuban: String,
    pub(crate) bank: &'static Bank,
    pub(crate) name: String,
    pub(crate) branch: &'static str,
    pub(crate) customer: usize,
    pub(crate) record_id: String,
    pub(crate) opening_balance_kobo: i64,
    pub(crate) txns: Vec<Txn>,
}

impl Account {
    pub(crate) fn closing_balance_kobo(&self) -> i64 {
        self.txns
            .last()
            .map_or(self.opening_balance_kobo, |t| t.balance_after_kobo)
    }
}

/// A customer and the indexes of their accounts in [`Ledger::accounts`].
#[derive(Debug)]
pub(crate) struct Customer {
    pub(crate) okra_id: String,
    pub(crate) name: String,
    pub(crate) accounts: Vec<usize>,
}

/// All generated data, and the counters that new transactions continue from.
#[derive(Debug)]
pub(crate) struct Ledger {
    pub(crate) customers: Vec<Customer>,
    pub(crate) accounts: Vec<Account>,
    /// The Okra client id (`fetched`).
    pub(crate) okra_client_id: String,
    machine: String,
    next_counter: u64,
    next_mono_id: u64,
    rng: Rng,
}

/// A transaction's ids: (Okra `_id`, Mono-style id).
pub(crate) type TxnIds = (String, u64);

/// A transaction before ids and balances are assigned.
struct Draft {
    date: Date,
    direction: Direction,
    kobo: i64,
    narration: String,
    reference: String,
    category: Category,
    noisy: bool,
}

const NAMES: &[&str] = &[
    "Adaeze Okafor",
    "Chinedu Eze",
    "Funmilayo Adeyemi",
    "Ibrahim Musa",
    "Ngozi Nwosu",
    "Babatunde Bakare",
    "Amina Bello",
    "Emeka Obi",
    "Yetunde Alabi",
    "Oluwaseun Ogunleye",
];
const COUNTERPARTIES: &[&str] = &[
    "OKONKWO CHIDI",
    "ABUBAKAR SANI",
    "ADEBAYO KEHINDE",
    "EZE NNEKA",
    "OLATUNJI FOLAKE",
    "DANLADI YUSUF",
    "IHEANACHO UCHE",
    "BALOGUN TOYIN",
];
const MERCHANTS: &[&str] = &[
    "SHOPRITE LEKKI",
    "SPAR IKEJA CITY MALL",
    "CHICKEN REPUBLIC YABA",
    "MEDPLUS PHARMACY",
    "TOTAL ENERGIES ADMIRALTY",
    "JUMIA FOOD",
    "ERISCO SUPERMARKET",
    "FILMHOUSE CINEMAS",
];
const EMPLOYERS: &[&str] = &[
    "ANDELA NIGERIA LTD",
    "DANGOTE CEMENT PLC",
    "FLUTTERWAVE TECHNOLOGY",
    "LAGOS STATE GOVT",
    "MTN NIGERIA COMMS",
];
const BILLS: &[&str] = &[
    "DSTV SUBSCRIPTION",
    "IKEDC PREPAID TOKEN",
    "EKEDC POSTPAID BILL",
    "SPECTRANET INTERNET",
    "LAWMA WASTE BILL",
    "GOTV MAX SUBSCRIPTION",
];
const CARD_MERCHANTS: &[&str] = &[
    "WEB PURCHASE JUMIA NG LAGOS",
    "CARD TXN BOLT.EU/O/2403",
    "NETFLIX.COM LOS GATOS",
    "APPLE.COM/BILL CORK",
    "KONGA ONLINE NG",
];
const NETWORKS: &[&str] = &["MTN", "AIRTEL", "GLO", "9MOBILE"];
const NIP_CHARGES_KOBO: &[i64] = &[1075, 2688, 5375];
const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The account plan: bank, and the range of the number of transactions. The first account of
/// the first customer is the big one, the second is always empty, and the first account of the
/// last customer carries the deliberate edge cases.
const PLAN: &[&[(&Bank, usize, usize)]] = &[
    &[(&GTB, 2500, 2500), (&KUDA, 0, 0)],
    &[(&ACCESS, 300, 1200)],
    &[(&ZENITH, 600, 2000), (&UBA, 50, 400), (&OPAY, 100, 600)],
    &[(&FIRST_BANK, 200, 900)],
    &[(&KUDA, 25, 60), (&ACCESS, 20, 200)],
];

fn usize_range(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let lo64 = i64::try_from(lo).unwrap_or(0);
    let hi64 = i64::try_from(hi).unwrap_or(0);
    usize::try_from(rng.range(lo64, hi64)).unwrap_or(lo)
}

/// NUBAN check digit (CBN): weights 3,7,3 over the 3-digit bank code and the 9-digit serial.
fn nuban(bank_code: &str, serial: &str) -> String {
    let weights = [3u32, 7, 3, 3, 7, 3, 3, 7, 3, 3, 7, 3];
    let sum: u32 = bank_code
        .chars()
        .chain(serial.chars())
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{serial}{check}")
}

impl Ledger {
    /// Generates the ledger of `seed`.
    pub(crate) fn generate(seed: u64) -> Ledger {
        let mut rng = Rng::new(seed);
        let machine = rng.hex(10);
        let okra_client_id = rng.hex(24);
        let mut names: Vec<&str> = NAMES.to_vec();
        // Fisher-Yates with the seeded generator.
        for i in (1..names.len()).rev() {
            let j = usize::try_from(rng.below(i as u64 + 1)).unwrap_or(0);
            names.swap(i, j);
        }
        let mut ledger = Ledger {
            customers: Vec::new(),
            accounts: Vec::new(),
            okra_client_id,
            machine,
            next_counter: 0x10_0000 + rng.below(0x1_0000),
            next_mono_id: 100_000 + rng.below(1000),
            rng,
        };
        let last_customer = PLAN.len() - 1;
        for (c, plan) in PLAN.iter().enumerate() {
            let name = names[c % names.len()].to_owned();
            let okra_id = ledger.rng.hex(24);
            let mut accounts = Vec::new();
            for (a, &(bank, lo, hi)) in plan.iter().enumerate() {
                let count = usize_range(&mut ledger.rng, lo, hi);
                let edge_cases = c == last_customer && a == 0;
                let index = ledger.add_account(bank, &name, c, count, edge_cases);
                accounts.push(index);
            }
            ledger.customers.push(Customer {
                okra_id,
                name,
                accounts,
            });
        }
        ledger
    }

    fn add_account(
        &mut self,
        bank: &'static Bank,
        holder: &str,
        customer: usize,
        count: usize,
        edge_cases: bool,
    ) -> usize {
        let rng = &mut self.rng;
        let okra_id = rng.hex(24);
        let mono_id = rng.hex(24);
        let record_id = rng.hex(24);
        let nuban = loop {
            let candidate = nuban(bank.code, &rng.digits(9));
            if !self.accounts.iter().any(|a| a.nuban == candidate) {
                break candidate;
            }
        };
        let branch = *rng.pick(bank.branches);
        let start = END_DATE - Duration::days(HISTORY_DAYS);
        let mut drafts: Vec<Draft> = Vec::with_capacity(count + 16);
        while drafts.len() < count {
            let date = start + Duration::days(rng.range(1, HISTORY_DAYS));
            let draft = random_draft(rng, date, bank);
            let charge = draft.category == Category::TransferOut && drafts.len() + 1 < count;
            drafts.push(draft);
            if charge {
                drafts.push(Draft {
                    date,
                    direction: Direction::Debit,
                    kobo: *rng.pick(NIP_CHARGES_KOBO),
                    narration: "NIP CHARGE + VAT".to_owned(),
                    reference: format!("CHG{}", rng.digits(12)),
                    category: Category::Fee,
                    noisy: false,
                });
            }
        }
        if edge_cases {
            drafts.extend(edge_case_drafts(rng, start));
        }
        // Chronological; generation order breaks ties, so it is deterministic.
        drafts.sort_by_key(|d| d.date);
        // Opening balance high enough that the running balance never goes below zero.
        let mut running = 0i64;
        let mut lowest = 0i64;
        for d in &drafts {
            running += signed(d.direction, d.kobo);
            lowest = lowest.min(running);
        }
        let opening = -lowest + rng.range(5_000, 2_000_000) * 100 + rng.range(0, 99);
        let index = self.accounts.len();
        self.accounts.push(Account {
            okra_id,
            mono_id,
            nuban,
            bank,
            name: holder.to_uppercase(),
            branch,
            customer,
            record_id,
            opening_balance_kobo: opening,
            txns: Vec::with_capacity(drafts.len()),
        });
        for d in drafts {
            self.push_txn(index, d);
        }
        index
    }

    fn push_txn(&mut self, account: usize, d: Draft) {
        let counter = self.next_counter;
        self.next_counter += 1;
        let mono_id = self.next_mono_id;
        self.next_mono_id += 1;
        let value_date = if d.category == Category::TransferIn && self.rng.chance(10) {
            d.date + Duration::days(1)
        } else {
            d.date
        };
        let okra_id = format!(
            "{:08x}{}{:06x}",
            created_at_secs(d.date),
            self.machine,
            counter & 0xFF_FFFF
        );
        let Some(acc) = self.accounts.get_mut(account) else {
            return;
        };
        let balance = acc.closing_balance_kobo() + signed(d.direction, d.kobo);
        acc.txns.push(Txn {
            okra_id,
            mono_id,
            date: d.date,
            value_date,
            direction: d.direction,
            kobo: d.kobo,
            balance_after_kobo: balance,
            narration: d.narration,
            reference: d.reference,
            category: d.category,
            noisy_okra_amount: d.noisy,
        });
    }

    /// Appends `n` new transactions dated after the account's newest one (or after
    /// [`END_DATE`] when it has none); debits never take the balance below zero.
    pub(crate) fn append_new(&mut self, account: usize, n: usize) -> usize {
        let Some(acc) = self.accounts.get(account) else {
            return 0;
        };
        let bank = acc.bank;
        let newest = acc.txns.last().map_or(END_DATE, |t| t.date.max(END_DATE));
        let date = newest.next_day().unwrap_or(newest);
        let mut balance = acc.closing_balance_kobo();
        for _ in 0..n {
            let mut d = random_draft(&mut self.rng, date, bank);
            if d.direction == Direction::Debit && d.kobo > balance {
                d.direction = Direction::Credit;
                d.category = Category::TransferIn;
                d.narration = format!("NIP TRF FROM {}/TOP UP", self.rng.pick(COUNTERPARTIES));
            }
            balance += signed(d.direction, d.kobo);
            self.push_txn(account, d);
        }
        n
    }

    /// Changes some of an account's existing transactions, as banks do when they correct or
    /// reverse a posting: the `remove` oldest disappear, and the `modify` after them get a new
    /// narration. Returns the (Okra id, Mono id) of the ones (modified, removed).
    pub(crate) fn mutate(
        &mut self,
        account: usize,
        modify: usize,
        remove: usize,
    ) -> (Vec<TxnIds>, Vec<TxnIds>) {
        let Some(acc) = self.accounts.get_mut(account) else {
            return (Vec::new(), Vec::new());
        };
        let remove = remove.min(acc.txns.len());
        let removed: Vec<TxnIds> = acc
            .txns
            .drain(..remove)
            .map(|t| (t.okra_id, t.mono_id))
            .collect();
        let modify = modify.min(acc.txns.len());
        let modified = acc.txns[..modify]
            .iter_mut()
            .map(|t| {
                t.narration = format!("{} (CORRECTED)", t.narration);
                (t.okra_id.clone(), t.mono_id)
            })
            .collect();
        (modified, removed)
    }

    /// The account with this Okra id.
    pub(crate) fn account_by_okra_id(&self, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.okra_id == id)
    }

    /// The account with this Mono id.
    pub(crate) fn account_by_mono_id(&self, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.mono_id == id)
    }
}

fn signed(direction: Direction, kobo: i64) -> i64 {
    match direction {
        Direction::Debit => -kobo,
        Direction::Credit => kobo,
    }
}

/// Unix seconds of the moment Okra "created" the records of a day: the next day, 02:00 UTC.
pub(crate) fn created_at_secs(date: Date) -> i64 {
    (date.midnight().assume_utc().unix_timestamp() + 26 * 3600).max(0)
}

/// A naira amount in kobo, with varying kobo.
fn naira_with_kobo(rng: &mut Rng, lo_naira: i64, hi_naira: i64) -> i64 {
    rng.range(lo_naira, hi_naira) * 100 + rng.range(0, 99)
}

fn random_draft(rng: &mut Rng, date: Date, bank: &Bank) -> Draft {
    let roll = rng.below(100);
    let (category, direction, kobo, narration) = match roll {
        0..=14 => {
            let kobo = *rng.pick(&[100i64, 200, 500, 1000, 1500, 2000]) * 100;
            let narration = if rng.chance(50) {
                format!(
                    "Airtime Purchase USSD-101CT{}-234{}",
                    rng.digits(22),
                    rng.digits(10)
                )
            } else {
                format!("AIRTIME/{}/080{}", rng.pick(NETWORKS), rng.digits(8))
            };
            (Category::Airtime, Direction::Debit, kobo, narration)
        }
        15..=32 => {
            let narration = format!(
                "POS PURCHASE @ {} LA NG REF:{}",
                rng.pick(MERCHANTS),
                rng.digits(12)
            );
            let kobo = naira_with_kobo(rng, 300, 120_000);
            (Category::Pos, Direction::Debit, kobo, narration)
        }
        33..=44 => {
            let kobo = if rng.chance(60) {
                rng.range(10, 2_000) * 500
            } else {
                naira_with_kobo(rng, 1_000, 400_000)
            };
            let narration = format!(
                "NIP TRANSFER TO {}/{}/{}",
                rng.pick(COUNTERPARTIES),
                bank.slug.to_uppercase(),
                rng.digits(10)
            );
            (Category::TransferOut, Direction::Debit, kobo, narration)
        }
        45..=59 => {
            let kobo = if rng.chance(50) {
                rng.range(10, 4_000) * 500
            } else {
                naira_with_kobo(rng, 500, 600_000)
            };
            let narration = format!(
                "NIP TRF FROM {}/{}",
                rng.pick(COUNTERPARTIES),
                rng.pick(&["UPKEEP", "REFUND", "CONTRIBUTION", "RENT SHARE", "GIFT"])
            );
            (Category::TransferIn, Direction::Credit, kobo, narration)
        }
        60..=64 => {
            let month = MONTHS[usize::from(u8::from(date.month())) - 1];
            let narration = format!("SALARY {} {} - {}", month, date.year(), rng.pick(EMPLOYERS));
            let kobo = rng.range(1_500, 15_000) * 10_000;
            (Category::Salary, Direction::Credit, kobo, narration)
        }
        65..=74 => {
            let narration = format!("{} {}", rng.pick(BILLS), rng.digits(11));
            let kobo = naira_with_kobo(rng, 1_000, 60_000);
            (Category::Bill, Direction::Debit, kobo, narration)
        }
        75..=81 => {
            let narration = format!(
                "USSD TRANSFER *{}# TO {}",
                rng.pick(&["737", "901", "894", "919"]),
                rng.pick(COUNTERPARTIES)
            );
            let kobo = rng.range(1, 200) * 1_000;
            (Category::Ussd, Direction::Debit, kobo, narration)
        }
        82..=88 => {
            let narration = rng.pick(CARD_MERCHANTS).to_string();
            let kobo = naira_with_kobo(rng, 500, 80_000);
            (Category::Card, Direction::Debit, kobo, narration)
        }
        89..=93 => {
            let (narration, kobo) = *rng.pick(&[
                ("SMS ALERT CHARGES", 400i64),
                ("CARD MAINTENANCE FEE", 5_000),
                ("ELECTRONIC MONEY TRANSFER LEVY", 5_000),
                ("ACCOUNT MAINTENANCE FEE", 1_075),
            ]);
            (Category::Fee, Direction::Debit, kobo, narration.to_owned())
        }
        94..=97 => {
            let narration = format!(
                "ATM WDL @ {} {}",
                bank.slug.to_uppercase(),
                rng.pick(bank.branches)
            );
            let kobo = rng.range(1, 40) * 100_000;
            (Category::Atm, Direction::Debit, kobo, narration)
        }
        _ => {
            let narration = format!("REVERSAL: POS PURCHASE REF:{}", rng.digits(12));
            let kobo = naira_with_kobo(rng, 300, 50_000);
            (Category::Reversal, Direction::Credit, kobo, narration)
        }
    };
    Draft {
        date,
        direction,
        kobo,
        narration,
        reference: reference(rng, bank, date),
        category,
        noisy: false,
    }
}

/// A bank reference: NIP-like session ids for most, `FT` references for some banks.
fn reference(rng: &mut Rng, bank: &Bank, date: Date) -> String {
    if bank.code == "058" || bank.code == "011" {
        format!(
            "FT{:02}{:03}{}",
            date.year() % 100,
            date.ordinal(),
            rng.hex(6)
        )
        .to_uppercase()
    } else {
        format!(
            "{}{:02}{:02}{:02}{}",
            bank.code,
            date.year() % 100,
            u8::from(date.month()),
            date.day(),
            rng.digits(21)
        )
    }
}

/// The deliberate edge cases: sub-naira amounts, large amounts, identical amounts on one day,
/// and the one amount Okra writes with floating-point noise.
fn edge_case_drafts(rng: &mut Rng, start: Date) -> Vec<Draft> {
    let d1 = start + Duration::days(rng.range(30, 200));
    let d2 = start + Duration::days(rng.range(250, 400));
    let d3 = start + Duration::days(rng.range(450, 600));
    let d4 = start + Duration::days(rng.range(620, 700));
    let mut out = Vec::new();
    let mut add = |rng: &mut Rng, date, direction, kobo, narration: &str, category, noisy| {
        out.push(Draft {
            date,
            direction,
            kobo,
            narration: narration.to_owned(),
            reference: format!("090{}", rng.digits(24)),
            category,
            noisy,
        });
    };
    add(
        rng,
        d1,
        Direction::Credit,
        1,
        "INTEREST CREDIT",
        Category::Interest,
        false,
    );
    add(
        rng,
        d1,
        Direction::Debit,
        7,
        "STAMP DUTY ADJUSTMENT",
        Category::Fee,
        false,
    );
    add(
        rng,
        d2,
        Direction::Credit,
        2_500_000_000,
        "NIP TRF FROM ADEOLA PROPERTIES LTD/PROPERTY SALE",
        Category::TransferIn,
        false,
    );
    add(
        rng,
        d2 + Duration::days(2),
        Direction::Debit,
        1_850_000_000,
        "NIP TRANSFER TO LAGOS HOMES LTD/KUDA/HOUSE PURCHASE",
        Category::TransferOut,
        false,
    );
    for _ in 0..3 {
        add(
            rng,
            d3,
            Direction::Debit,
            20_000,
            "AIRTIME/MTN/08031234567",
            Category::Airtime,
            false,
        );
    }
    for _ in 0..2 {
        add(
            rng,
            d3,
            Direction::Debit,
            500_000,
            "NIP TRANSFER TO OKONKWO CHIDI/KUDA/SCHOOL FEES",
            Category::TransferOut,
            false,
        );
    }
    add(
        rng,
        d4,
        Direction::Debit,
        30,
        "VAT ON SMS ALERT",
        Category::Fee,
        true,
    );
    out
}

/// Okra's amount text: a JSON number in naira without trailing zeros (`52.5`, `0.01`, `1200`).
pub(crate) fn okra_amount_text(kobo: i64) -> String {
    let sign = if kobo < 0 { "-" } else { "" };
    let abs = kobo.unsigned_abs();
    let (naira, rest) = (abs / 100, abs % 100);
    if rest == 0 {
        format!("{sign}{naira}")
    } else if rest % 10 == 0 {
        format!("{sign}{naira}.{}", rest / 10)
    } else {
        format!("{sign}{naira}.{rest:02}")
    }
}

/// The noisy text a binary floating-point sum gives for 30 kobo.
pub(crate) const NOISY_30_KOBO: &str = "0.30000000000000004";

/// `kobo` in naira as a vendor's float would print it with noise: seventeen significant digits,
/// the last one a stray `1` (`52.500000000000001`), which is less than one ULP of the double
/// nearest to the amount. Written from the integer, never through floating point.
pub(crate) fn noisy_naira_text(kobo: i64) -> String {
    let exact = decimal_text(kobo);
    let significant = exact
        .trim_start_matches('-')
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&d| d == b'0')
        .count();
    let zeros = 16usize.saturating_sub(significant.max(1));
    format!("{exact}{}1", "0".repeat(zeros))
}

/// `kobo` as a statement prints it: thousands separators and a currency prefix (`₦1,200.50`,
/// `NGN 1,200.50`).
pub(crate) fn statement_text(kobo: i64, prefix: &str) -> String {
    let exact = decimal_text(kobo);
    let (sign, digits) = match exact.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", exact.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{prefix}{grouped}.{frac}")
}

/// An amount in naira as a client writes it (`4000`, `"52.5"`, `"52.50"`) in kobo, exactly;
/// `None` for anything else (more than two decimals, a sign, garbage).
pub(crate) fn parse_naira(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let naira: i64 = whole.parse().ok()?;
    let kobo: i64 = format!("{frac:0<2}").parse().ok()?;
    naira.checked_mul(100)?.checked_add(kobo)
}

/// A decimal string with two decimals, as the Mono-style provider writes (`"200.00"`).
pub(crate) fn decimal_text(kobo: i64) -> String {
    let sign = if kobo < 0 { "-" } else { "" };
    let abs = kobo.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `YYYY-MM-DD`.
pub(crate) fn ymd(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses `YYYY-MM-DD` (also accepts a full ISO timestamp, using its date part).
pub(crate) fn parse_ymd(text: &str) -> Option<Date> {
    let text = text.trim();
    let day = match text.as_bytes().get(10) {
        None => text,
        Some(b'T') => text.get(..10)?,
        Some(_) => return None,
    };
    let mut parts = day.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// The bank's own date text for Okra's `unformatted_*` fields.
pub(crate) fn bank_date_text(style: DateStyle, date: Date) -> String {
    let month = u8::from(date.month());
    match style {
        DateStyle::DayMonthYear => format!("{:02}/{:02}/{:04}", date.day(), month, date.year()),
        DateStyle::DayMonYear => {
            let mon = MONTHS[usize::from(month) - 1];
            let mon = format!("{}{}", &mon[..1], mon[1..].to_lowercase());
            format!("{:02}-{}-{:04}", date.day(), mon, date.year())
        }
        DateStyle::Iso => ymd(date),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messy_amount_texts() {
        assert_eq!(noisy_naira_text(5250), "52.500000000000001");
        assert_eq!(noisy_naira_text(30), "0.30000000000000001");
        assert_eq!(noisy_naira_text(123_456_789), "1234567.8900000001");
        assert_eq!(statement_text(120_050, "₦"), "₦1,200.50");
        assert_eq!(statement_text(123_456_789, "NGN "), "NGN 1,234,567.89");
        assert_eq!(statement_text(7, "₦"), "₦0.07");
        assert_eq!(parse_naira("4000"), Some(400_000));
        assert_eq!(parse_naira("52.5"), Some(5250));
        assert_eq!(parse_naira(" 0.07 "), Some(7));
        for bad in ["", "1.005", "-1", "abc", ".5", "1e3"] {
            assert_eq!(parse_naira(bad), None, "{bad}");
        }
    }

    #[test]
    fn okra_amount_text_is_exact() {
        assert_eq!(okra_amount_text(5250), "52.5");
        assert_eq!(okra_amount_text(1), "0.01");
        assert_eq!(okra_amount_text(7), "0.07");
        assert_eq!(okra_amount_text(120_000), "1200");
        assert_eq!(okra_amount_text(2_500_000_000), "25000000");
        assert_eq!(okra_amount_text(1075), "10.75");
    }

    #[test]
    fn decimal_text_has_two_decimals() {
        assert_eq!(decimal_text(20_000), "200.00");
        assert_eq!(decimal_text(1), "0.01");
        assert_eq!(decimal_text(2_500_000_000), "25000000.00");
    }

    #[test]
    fn same_seed_same_ledger_and_edge_cases_present() {
        let a = Ledger::generate(7);
        let b = Ledger::generate(7);
        assert_eq!(a.accounts.len(), b.accounts.len());
        for (x, y) in a.accounts.iter().zip(&b.accounts) {
            assert_eq!(x.okra_id, y.okra_id);
            assert_eq!(x.txns.len(), y.txns.len());
            assert_eq!(x.closing_balance_kobo(), y.closing_balance_kobo());
        }
        assert!(a.accounts.iter().any(|acc| acc.txns.is_empty()));
        let all: Vec<&Txn> = a.accounts.iter().flat_map(|acc| &acc.txns).collect();
        assert_eq!(all.iter().filter(|t| t.noisy_okra_amount).count(), 1);
        assert!(all.iter().any(|t| t.kobo == 1));
        assert!(all.iter().any(|t| t.kobo == 2_500_000_000));
        assert!(
            a.accounts
                .iter()
                .all(|acc| acc.txns.iter().all(|t| t.balance_after_kobo >= 0))
        );
        assert!(a.accounts.iter().all(|acc| acc.nuban.len() == 10));
        let c = Ledger::generate(8);
        assert_ne!(a.accounts[0].okra_id, c.accounts[0].okra_id);
    }

    #[test]
    fn okra_ids_sort_chronologically() {
        let l = Ledger::generate(42);
        for acc in &l.accounts {
            for w in acc.txns.windows(2) {
                assert!(w[0].okra_id < w[1].okra_id);
                assert!(w[0].mono_id < w[1].mono_id);
                assert!(w[0].date <= w[1].date);
            }
        }
    }

    #[test]
    fn dates_parse_and_print() {
        let d = date!(2024 - 03 - 05);
        assert_eq!(ymd(d), "2024-03-05");
        assert_eq!(parse_ymd("2024-03-05"), Some(d));
        assert_eq!(parse_ymd("2024-03-05T00:00:00.000Z"), Some(d));
        assert_eq!(parse_ymd("2024-3-5"), None);
        assert_eq!(parse_ymd("2024-02-30"), None);
        assert_eq!(bank_date_text(DateStyle::DayMonthYear, d), "05/03/2024");
        assert_eq!(bank_date_text(DateStyle::DayMonYear, d), "05-Mar-2024");
    }
}
