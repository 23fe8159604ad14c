"""One call of each kind of Okra's official Python client (okra-py-official 1.1) and of Dojah's
two Python clients (dojahcore 0.0.5, dojah-python-sdk 4.0.0) against the sandbox, with only the
base URL changed. Usage: python python_check.py http://127.0.0.1:PORT"""

import json
import sys
import urllib.request

BASE = sys.argv[1]
OKRA_SECRET = "okra_test_secret"
MONO_SECRET = "test_mono_secret"
MONO_APP = "mono_test_app"

with urllib.request.urlopen(f"{BASE}/_sandbox/accounts") as answer:
    directory = json.load(answer)
accounts = [a for c in directory["customers"] for a in c["accounts"]]
customer = next(c for c in directory["customers"] if any(a["transaction_count"] > 1 for a in c["accounts"]))
account = next(a for a in customer["accounts"] if a["transaction_count"] > 1)
busiest = max(accounts, key=lambda a: a["transaction_count"])
empty = next((a for a in accounts if a["transaction_count"] == 0), None)
small = next(a for a in accounts if 0 < a["transaction_count"] <= 200)


def okra_py():
    from okra_py.transaction import OkraTransaction

    client = OkraTransaction(token=OKRA_SECRET, base_url=f"{BASE}/sandbox/v1/")

    def check(name, response):
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (name, response.status_code, body)
        data = body["data"]
        assert isinstance(data["transaction"], list) and "pagination" in data, (name, data)
        print(f"okra-py {name}: {len(data['transaction'])} record(s), totalDocs {data['pagination']['totalDocs']}")
        return data

    by_account = check("get_by_account", client.get_by_account(account["okra_account_id"]))
    first = by_account["transaction"][0]
    check("get_transactions", client.get_transactions())
    check("get_by_id", client.get_by_id(first["_id"]))
    check("get_by_customer", client.get_by_customer(customer["okra_customer_id"]))
    check("get_by_date", client.get_by_date(account["first_date"], account["last_date"]))
    check("get_by_bank", client.get_by_bank(first["bank"]["_id"]))
    check("get_by_type", client.get_by_type("ledger_balance", "4000"))
    check("get_by_customer_date", client.get_by_customer_date(
        customer["okra_customer_id"], account["first_date"], account["last_date"]))
    first_name, _, last_name = customer["name"].partition(" ")
    check("get_by_options", client.get_by_options(first_name, last_name))
    missing = client.get_by_account("no-such-account")
    assert missing.status_code == 404 and missing.json()["status"] == "error", missing.text
    print(f"okra-py error envelope: {missing.status_code} {missing.json()['message']}")


def dojahcore_client():
    import dojahcore
    from dojahcore.financial import Financial
    from dojahcore.server_error import ServerError

    dojahcore.API_URL = BASE

    def call(**query):
        # dojahcore's classmethods build their client from module settings; keys as documented.
        dojahcore.API_KEY, dojahcore.APP_ID = MONO_SECRET, MONO_APP
        return Financial.account_transactions(**query)

    for label, query in [
        ("paginated", {"account_id": busiest["mono_account_id"]}),
        ("not_paginated", {"account_id": account["mono_account_id"], "response_mode": "not_paginated"}),
        ("filtered", {"account_id": busiest["mono_account_id"], "trans_type": "debit",
                      "start_date": busiest["first_date"], "end_date": busiest["last_date"]}),
    ]:
        entity = call(**query)
        assert isinstance(entity["transactions"], list), entity
        print(f"dojahcore {label}: {len(entity['transactions'])} record(s), total {entity['total']}")
    try:
        call(account_id="no-such-account")
        raise AssertionError("an unknown account should be an error")
    except ServerError as e:
        print(f"dojahcore error envelope: {e}")


def dojah_sdk():
    from dojah_client import Dojah

    client = Dojah(host=BASE, authorization=MONO_SECRET, app_id=MONO_APP)
    # The SDK's schema types next_page a number: the last page (here the only one) and an empty
    # account must leave it out rather than send "".
    cases = [("first page", busiest, None), ("last page", small, 200)]
    if empty is not None:
        cases.append(("empty account", empty, None))
    for label, acc, length in cases:
        response = client.financial.get_account_transactions(account_id=acc["mono_account_id"], length=length)
        entity = response.body["entity"]
        print(f"dojah-python-sdk {label}: {len(entity['transactions'])} record(s), next_page "
              f"{entity.get('next_page', '(absent)')}, previous_page {entity['previous_page']!r}")
    try:
        client.financial.get_account_transactions(account_id="no-such-account")
        raise AssertionError("an unknown account should be an error")
    except Exception as e:  # the SDK raises its ApiException with the vendor's status
        status = getattr(e, "status", None)
        assert status == 404, e
        print(f"dojah-python-sdk error: {status}")


okra_py()
dojahcore_client()
dojah_sdk()
print("python clients: ok")
