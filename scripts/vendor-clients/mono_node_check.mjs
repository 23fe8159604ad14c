// Mono's official Node client (mono-node 1.0.3) against the sandbox, with only the base URL
// changed: getAccountTransactions (paged, filtered, paginate=false) and syncDataManually.
// Usage: node mono_node_check.mjs http://127.0.0.1:PORT
import { createRequire } from "module";

const require = createRequire(import.meta.url);
const { Mono } = require("mono-node");

const base = process.argv[2];
const directory = await (await fetch(`${base}/_sandbox/accounts`)).json();
const account = directory.customers
  .flatMap((c) => c.accounts)
  .find((a) => a.transaction_count > 20);
const client = new Mono({ secretKey: directory.mono_connect.secret });
// The only change: the client's one axios instance sends to the sandbox instead of api.withmono.com.
client.account.axios.defaults.baseURL = base;

// mono-node reports through its callback and resolves with the axios response.
function call(name, method, options) {
  return new Promise((resolve, reject) => {
    client.account[method](options, (err, results) => {
      if (err) reject(new Error(`${name}: ${JSON.stringify(err).slice(0, 300)}`));
      else resolve(results);
    });
  });
}

function records(name, answer) {
  if (!answer || !Array.isArray(answer.data) || answer.paging == null) {
    throw new Error(`${name}: unexpected answer ${JSON.stringify(answer).slice(0, 300)}`);
  }
  console.log(`mono-node ${name}: ${answer.data.length} record(s), total ${answer.paging.total}`);
  return answer;
}

const id = account.mono_account_id;
const paged = records("getAccountTransactions", await call("paged", "getAccountTransactions", { accountId: id, limit: 5 }));
if (paged.paging.total !== account.transaction_count || paged.data.length !== 5 || typeof paged.paging.next !== "string") {
  throw new Error(`paged: total ${paged.paging.total}, ${paged.data.length} records, next ${paged.paging.next}`);
}
const all = records("getAccountTransactions paginate=false", await call("all", "getAccountTransactions", { accountId: id, paginate: false }));
const kobo = (type) => all.data.filter((t) => t.type === type).reduce((sum, t) => sum + t.amount, 0);
if (all.data.length !== account.transaction_count || kobo("debit") !== account.debit_total_kobo || kobo("credit") !== account.credit_total_kobo) {
  throw new Error(`paginate=false: ${all.data.length} records, debits ${kobo("debit")}, credits ${kobo("credit")}`);
}
const credits = records("getAccountTransactions type=credit", await call("credits", "getAccountTransactions", { accountId: id, type: "credit", paginate: false }));
if (!credits.data.every((t) => t.type === "credit") || credits.data.length !== account.credit_count) {
  throw new Error("type=credit: not only the account's credits");
}
const sync = await call("sync", "syncDataManually", { accountId: id });
if (sync.status !== "successful" || sync.code !== "SYNC_SUCCESSFUL") {
  throw new Error(`syncDataManually: ${JSON.stringify(sync)}`);
}
console.log(`mono-node syncDataManually: ${sync.code}, hasNewData ${sync.hasNewData}`);
