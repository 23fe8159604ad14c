//! The finishing of the OpenAPI document: what the handlers' annotations cannot say, written
//! once over the whole document so the committed spec and the served one are the same.
//!
//! - every operation gets a plain one-line `summary` (Swagger UI shows it as text, so no
//!   Markdown) and a `description` (the full text);
//! - the scopes move from the security requirement to `x-required-scopes` (OpenAPI allows
//!   scopes only for OAuth2 and OpenID Connect schemes; the API key is a bearer token), and the
//!   description keeps its `**Scope:**` line;
//! - path ids get the pattern their parser accepts, so a generated client (or a fuzzer) knows
//!   which ids are well formed;
//! - `include` is `raw` or empty (as a form sends "none");
//! - `/v1/transactions` requires `from` and `to` (an unbounded "everything" listing would read
//!   every account of the provider);
//! - every error response gets an example of its own status, rendered by [`ApiError`] itself.

use std::time::Duration;

use provider::ProviderError;
use serde_json::{Value, json};

use crate::error::{ApiError, KeyProblem};

/// The pattern of an account, customer or job id (what `params::parse_id` accepts).
const ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,128}$";
/// The pattern of a gateway transaction id: `txn_` and canonical unpadded base64url (a last
/// group of 2 or 3 characters ends in a character whose unused low bits are zero).
const TRANSACTION_ID_PATTERN: &str =
    "^txn_(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$";
/// The pattern of an `Idempotency-Key`: 1-255 visible ASCII characters.
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";
/// The pattern of a NUBAN.
const NUBAN_PATTERN: &str = "^[0-9]{10}$";
/// The request id of every example.
const EXAMPLE_REQUEST_ID: &str = "3f0c2a9e8b7d4c1a";

/// Applies every finishing step to `doc` (the generated document as JSON).
pub fn finish(doc: &mut Value) {
    doc["servers"] = json!([{
        "url": "http://127.0.0.1:8080",
        "description": "A gateway started locally with its defaults (`gateway`, no --config); the served document names no server, so clients call the gateway that served it."
    }]);
    doc["info"]["contact"] = json!({
        "name": "The gateway's operators (see README.md, Running it in production)"
    });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            texts(operation);
            scopes(operation);
            parameters(path, method, operation);
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                for (status, response) in responses.iter_mut() {
                    add_example(path, status, response);
                }
            }
        }
    }
    if let Some(responses) = doc
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        for (name, response) in responses.iter_mut() {
            let status = match name.as_str() {
                "TooManyRequests" => "429",
                "ProviderUnavailable" => "503",
                _ => continue,
            };
            add_example("", status, response);
        }
    }
}

/// A plain one-sentence summary; the whole text (Markdown) as the description.
fn texts(operation: &mut Value) {
    let text = operation["summary"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let first = text
        .split_once(". ")
        .map_or(text.as_str(), |(first, _)| first)
        .trim_end_matches('.');
    let summary = first.replace('`', "");
    let description = operation["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    operation["description"] = Value::String(match (summary == text, description.is_empty()) {
        (_, true) => text.clone(),
        (true, false) => description,
        (false, false) => format!("{text}\n\n{description}"),
    });
    operation["summary"] = Value::String(summary);
}

/// `security: [{api_key: [scopes]}]` -> `security: [{api_key: []}]` + `x-required-scopes`.
fn scopes(operation: &mut Value) {
    let Some(requirements) = operation.get_mut("security").and_then(Value::as_array_mut) else {
        return;
    };
    let mut required = Vec::new();
    for requirement in requirements.iter_mut() {
        if let Some(scopes) = requirement.get_mut("api_key").and_then(Value::as_array_mut) {
            required.append(scopes);
        }
    }
    if !required.is_empty() {
        operation["x-required-scopes"] = Value::Array(required);
    }
}

fn parameters(path: &str, method: &str, operation: &mut Value) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let place = parameter["in"].as_str().unwrap_or_default().to_owned();
        let pattern = match (place.as_str(), name.as_str()) {
            ("path", "account_id" | "customer_id") => Some(ID_PATTERN),
            ("path", "id") if path.starts_with("/v1/jobs/") => Some(ID_PATTERN),
            ("path", "id") => Some(TRANSACTION_ID_PATTERN),
            ("path", "nuban") => Some(NUBAN_PATTERN),
            _ => None,
        };
        if let Some(pattern) = pattern {
            parameter["schema"]["pattern"] = Value::String(pattern.to_owned());
        }
        if path == "/v1/transactions" && method == "get" && matches!(name.as_str(), "from" | "to") {
            parameter["required"] = Value::Bool(true);
            parameter["schema"]["type"] = Value::String("string".to_owned());
            let text = parameter["description"].as_str().unwrap_or_default();
            parameter["description"] = Value::String(format!(
                "{text} Required here: this listing spans every account of the provider, so it is bounded by dates."
            ));
        }
        // An empty `include` is no `include` (what a form sends for "none").
        if place == "query" && name == "include" {
            parameter["schema"] = json!({"type": "string", "enum": ["raw", ""]});
        }
        // A fixed key would make every Execute replay the first job: each request brings its own.
        if name == "Idempotency-Key" {
            parameter["schema"]["pattern"] = Value::String(IDEMPOTENCY_KEY_PATTERN.to_owned());
            if let Some(parameter) = parameter.as_object_mut() {
                parameter.remove("example");
            }
        }
    }
}

/// Sets the example of a problem+json response that has none.
fn add_example(path: &str, status: &str, response: &mut Value) {
    let Some(content) = response.pointer_mut("/content/application~1problem+json") else {
        return;
    };
    if content.get("example").is_some() {
        return;
    }
    if let Some(error) = example_error(path, status) {
        let problem = error.problem(Some(EXAMPLE_REQUEST_ID));
        content["example"] = serde_json::to_value(problem).unwrap_or_default();
    }
}

/// The error a `status` answer of `path` typically is.
fn example_error(path: &str, status: &str) -> Option<ApiError> {
    let okra = || "okra".to_owned();
    let webhook = path.starts_with("/v1/webhooks/");
    Some(match status {
        "400" if webhook => ApiError::InvalidDelivery(
            "the delivery is not a Mono-style webhook event: missing field `event`".into(),
        ),
        "400" if path == "/v1/transactions/{id}" => {
            crate::api::params::parse_transaction_id("txn_!!!").err()?
        }
        "400" if path.ends_with("/refresh") => ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key must be 1-255 visible ASCII characters (e.g. a UUID)",
        ),
        "400" if path.starts_with("/v1/jobs/") => crate::api::params::parse_id("id", "a b").err()?,
        "400" => ApiError::invalid("limit", "limit must be an integer from 1 to 100, not \"0\""),
        "401" if webhook => ApiError::WebhookUnauthorized,
        "401" => ApiError::Unauthorized(KeyProblem::Unknown),
        "404" if path.starts_with("/v1/jobs/") || webhook => ApiError::NotFound {
            detail: "no job job_5f2b8c0e9a7d41c3b6e2f0a1d4c7e9b2".into(),
            provider: None,
        },
        "404" if path == "/v1/transactions/{id}" => ApiError::NotFound {
            detail: "no transaction txn_b2tyYR82NWYzYzFiMmE5ZDAwMDAwMDAwMDAwMDAx".into(),
            provider: Some(okra()),
        },
        "404" => ApiError::Upstream(ProviderError::NotFound {
            provider: okra(),
            message: String::new(),
        }),
        "408" => ApiError::Http {
            status: actix_web::http::StatusCode::REQUEST_TIMEOUT,
            detail: "the delivery's body did not arrive within 10000 ms".into(),
        },
        "409" => ApiError::JobNotAwaiting(
            "refresh job job_5f2b8c0e9a7d41c3b6e2f0a1d4c7e9b2 has already finished".into(),
        ),
        "410" if path.ends_with("/sync") => ApiError::SyncCursorExpired(
            "the versions this cursor names are past the retention (30 days)".into(),
        ),
        "410" => ApiError::CursorExpired,
        "413" => ApiError::Http {
            status: actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            detail: "a delivery may be at most 1048576 bytes".into(),
        },
        "422" if webhook => ApiError::DeliveryMismatch(
            "the delivery is for account 65f3c1b2a9d0000000000a02, the job refreshes another account"
                .into(),
        ),
        "422" => ApiError::ScopeTooLarge {
            provider: okra(),
            detail: "this listing is too large to filter by fields the provider cannot filter; narrow the date range or drop the direction filter".into(),
        },
        "429" => ApiError::RateLimited {
            retry_after: Duration::from_secs(2),
        },
        "501" => ApiError::Unsupported {
            provider: "mono".into(),
            capability: "listing by customer".into(),
        },
        "502" => ApiError::Upstream(ProviderError::Unavailable {
            provider: okra(),
            status: Some(500),
            message: String::new(),
        }),
        "503" => ApiError::Upstream(ProviderError::Unavailable {
            provider: okra(),
            status: None,
            message: String::new(),
        }),
        "504" => ApiError::Timeout(Duration::from_secs(30)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        let mut doc = serde_json::to_value(<crate::api::ApiDoc as utoipa::OpenApi>::openapi())
            .unwrap_or_default();
        finish(&mut doc);
        doc
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                all.push((path.clone(), method.clone(), op.clone()));
            }
        }
        all
    }

    #[test]
    fn every_error_example_has_its_own_status_and_code() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(content) = response.pointer("/content/application~1problem+json") else {
                    continue;
                };
                let example = &content["example"];
                assert_eq!(
                    example["status"].as_u64().map(|s| s.to_string()).as_deref(),
                    Some(status.as_str()),
                    "{method} {path} {status}: {example}"
                );
            }
        }
        let pagination = &doc["components"]["schemas"]["Pagination"]["example"];
        assert_eq!(pagination["page"], 1, "{pagination}");
        assert!(
            pagination["next_cursor"]
                .as_str()
                .is_some_and(|c| c != "string")
        );
        let too_many = &doc["components"]["responses"]["TooManyRequests"]["content"]["application/problem+json"]
            ["example"];
        assert_eq!(too_many["code"], "rate_limited");
        assert_eq!(too_many["retry_after"], 2);
    }

    #[test]
    fn summaries_are_plain_and_every_operation_is_described() {
        for (path, method, op) in operations(&document()) {
            let summary = op["summary"].as_str().unwrap();
            assert!(!summary.contains('`'), "{method} {path}: {summary}");
            assert!(!summary.contains('\n'), "{method} {path}: {summary}");
            assert!(
                !op["description"].as_str().unwrap().is_empty(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn scopes_move_out_of_the_bearer_requirement_and_ranges_are_required_on_the_whole_listing() {
        let doc = document();
        let list_all = &doc["paths"]["/v1/transactions"]["get"];
        assert_eq!(list_all["security"], json!([{"api_key": []}]));
        assert_eq!(list_all["x-required-scopes"], json!(["transactions:read"]));
        for name in ["from", "to"] {
            let param = list_all["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap();
            assert_eq!(param["required"], true, "{name}");
        }
        let refresh = &doc["paths"]["/v1/accounts/{account_id}/transactions/refresh"]["post"];
        let key = refresh["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert!(key.get("example").is_none(), "{key}");
    }
}
