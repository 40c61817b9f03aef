//! The Microsoft identity platform's token endpoint, as a confidential client calls it with the
//! OAuth 2.0 client-credentials grant ("Microsoft identity platform and the OAuth 2.0 client
//! credentials flow"): `POST /{tenant}/oauth2/v2.0/token`, form-encoded, with `client_secret`
//! or a `client_assertion` (a federated token, as workload identity sends it). Errors are the
//! platform's JSON (`error`, `error_description`, `error_codes` with the AADSTS number), with
//! the statuses it uses: an unknown tenant (90002) and an unknown application (700016) are 400,
//! an invalid (7000215) or expired (7000222) client secret 401 `invalid_client`.
//!
//! A managed identity's tokens come from App Service's identity endpoint ("How to use managed
//! identities for App Service and Azure Functions", REST protocol `2019-08-01`): `GET
//! {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` with the `X-IDENTITY-HEADER` secret;
//! the answer's `expires_on` is epoch seconds as a string.
//!
//! An access token is a JWT whose payload carries the claims clients read (`oid`, `tid`,
//! `appid`, `exp`); it is opaque to clients and the stand-in only checks that it issued it.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use crate::world::{World, now_epoch};

/// A token's lifetime, in seconds.
const LIFETIME: u64 = 3599;

fn form(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn entra_error(status: u16, error: &str, code: u32, what: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {what}"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-4000-8000-000000000000",
            "correlation_id": "00000000-0000-4000-8000-000000000000",
        })),
    )
        .into_response()
}

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Mints a token for `principal` with audience `aud`, and records it.
fn mint(
    w: &mut World,
    tenant: &str,
    principal: &str,
    client_id: &str,
    aud: String,
) -> (String, u64) {
    let now = now_epoch() as u64;
    let exp = now + LIFETIME;
    let n = w.tokens.len();
    let claims = json!({
        "aud": aud,
        "iat": now,
        "nbf": now,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "tid": tenant,
        "oid": principal,
        "appid": client_id,
        "exp": exp,
        "jti": format!("standin-{n}"),
    });
    let token = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("standin-signature-{n}"))
    );
    w.tokens
        .insert(token.clone(), (principal.to_owned(), exp, aud));
    (token, exp)
}

/// Answers a managed identity's token request.
pub(crate) fn managed(w: &mut World, headers: &axum::http::HeaderMap, query: &str) -> Response {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let given = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((secret, principal)) = w.managed_identity.clone() else {
        return (StatusCode::NOT_FOUND, "no managed identity here").into_response();
    };
    if given != secret {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}),
            ),
        )
            .into_response();
    }
    let Some(resource) = q.get("resource").cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"statusCode": 400, "message": "resource is required"})),
        )
            .into_response();
    };
    let tenant = w.tenant.clone();
    let (token, exp) = mint(w, &tenant, &principal, "managed-identity", resource.clone());
    (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": token,
            "expires_on": exp.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "managed-identity",
        })),
    )
        .into_response()
}

/// Answers a token request for `tenant`.
pub(crate) fn issue(w: &mut World, tenant: &str, body: &[u8]) -> Response {
    let f = form(body);
    if tenant != w.tenant {
        return entra_error(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            "unsupported grant type",
        );
    }
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let Some(app) = w.apps.get(&client_id).cloned() else {
        return entra_error(
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    let proved = match (f.get("client_secret"), f.get("client_assertion")) {
        (Some(secret), _) => {
            if *secret != app.secret {
                return entra_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided.",
                );
            }
            if app.secret_expired {
                return entra_error(
                    401,
                    "invalid_client",
                    7000222,
                    "The provided client secret keys are expired.",
                );
            }
            true
        }
        (None, Some(assertion)) => app.federated.as_deref() == Some(assertion.as_str()),
        (None, None) => false,
    };
    if !proved {
        return entra_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    // The audience is the resource the scope names (`https://storage.azure.com/.default` →
    // `https://storage.azure.com`), as the platform issues it.
    let aud = f
        .get("scope")
        .and_then(|s| s.split(' ').next())
        .map(|s| s.trim_end_matches("/.default").to_owned())
        .unwrap_or_default();
    let (token, _) = mint(w, tenant, &app.object_id, &client_id, aud);
    (
        StatusCode::OK,
        axum::Json(json!({
            "token_type": "Bearer",
            "expires_in": LIFETIME,
            "ext_expires_in": LIFETIME,
            "access_token": token,
        })),
    )
        .into_response()
}
