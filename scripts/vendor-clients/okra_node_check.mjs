// One call of each kind of Okra's official Node client (okra-node 0.2.0) against the sandbox,
// with only the base URL changed. Usage: node okra_node_check.mjs http://127.0.0.1:PORT
import { Transactions } from "okra-node";

const base = process.argv[2];
const secret = process.env.OKRA_SECRET || "okra_test_secret";
const directory = await (await fetch(`${base}/_sandbox/accounts`)).json();
const customer = directory.customers.find((c) => c.accounts.some((a) => a.transaction_count > 1));
const account = customer.accounts.find((a) => a.transaction_count > 1);

const client = new Transactions(secret, "sandbox");
client.apiBaseUrl = `${base}/v2/sandbox/`; // the only change: where the client sends requests

function check(name, data) {
  if (!data || !Array.isArray(data.transaction) || data.pagination == null) {
    throw new Error(`${name}: unexpected answer ${JSON.stringify(data).slice(0, 300)}`);
  }
  console.log(`okra-node ${name}: ${data.transaction.length} record(s), totalDocs ${data.pagination.totalDocs}`);
  return data;
}

const byAccount = check("getByAccount", await client.get({ account: account.okra_account_id }));
const first = byAccount.transaction[0];
check("getByAccount nextPage()", await byAccount.nextPage());
check("getById", await client.get({ id: first._id }));
check("getByBank", await client.get({ bank: first.bank._id }));
const amount = first.debit ?? first.credit;
const type = first.debit != null ? "debit" : "credit";
check("getByType", await client.get({ type, value: amount }));
check("getByNuban", await client.get({ nuban: account.nuban }));
check("getByCustomerDate", await client.get({
  customer: customer.okra_customer_id, from: account.first_date, to: account.last_date,
}));
check("getByCustomer", await client.get({ customer: customer.okra_customer_id }));
check("getByDate", await client.get({ from: account.first_date, to: account.last_date }));
try {
  await client.get({ account: "no-such-account" });
  throw new Error("an unknown account should be an error");
} catch (e) {
  if (e.http_error_code !== 404 || e.error_payload.status !== "error") {
    throw new Error(`unknown account: ${JSON.stringify(e).slice(0, 300)}`);
  }
  console.log(`okra-node error envelope: ${e.http_error_code} ${e.error_payload.message}`);
}
// The refresh call (last: a completed refresh appends transactions to the sandbox's ledger).
const refresh = await client.refresh({ account_id: account.okra_account_id });
if (typeof refresh.callback_url !== "string" || !refresh.callback_url.includes("/callback?record=")) {
  throw new Error(`refresh: unexpected answer ${JSON.stringify(refresh).slice(0, 300)}`);
}
console.log(`okra-node refresh: callback_url ${refresh.callback_url}`);
console.log("okra-node: ok");
