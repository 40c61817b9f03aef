//! Google's credential side: access tokens this stand-in issues (OAuth 2.0 token endpoint with
//! the refresh-token and JWT-bearer grants, IAM `generateAccessToken`, the metadata server) and
//! service accounts' self-signed JWTs, verified against the RSA public key the world holds for
//! the JWT's `kid`. Keys are made here ([`service_account_key`]), as IAM's `keys.create` makes
//! them, and handed out as the JSON key file Google's tools read.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::GoogleError;
use crate::world::{ServiceAccountKey, World, now_epoch};

/// How long an issued token lives.
const LIFETIME: u64 = 3600;

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// A new RSA key for service account `email`, registered in the world, as the JSON key file
/// (`type: service_account`, PKCS#8 private key, `token_uri`).
pub fn service_account_key(w: &mut World, email: &str, token_uri: &str) -> Result<Value, String> {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| e.to_string())?;
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = kp.as_der().map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let kid = format!("{:040x}", w.service_account_keys.len() + 1);
    w.service_account_keys.insert(
        kid.clone(),
        ServiceAccountKey {
            email: email.to_owned(),
            public_key: kp.public_key().as_ref().to_vec(),
            disabled: false,
        },
    );
    w.service_accounts.insert(email.to_owned());
    Ok(json!({
        "type": "service_account",
        "project_id": w.account,
        "private_key_id": kid,
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }))
}

/// Issues an access token for `principal`.
pub(crate) fn issue(w: &mut World, principal: &str) -> (String, u64) {
    let exp = now_epoch() as u64 + LIFETIME;
    let token = format!("ya29.standin-{}-{}", w.tokens.len() + 1, exp);
    w.tokens
        .insert(token.clone(), (principal.to_owned(), exp, "google".into()));
    (token, exp)
}

/// The principal a service account's signed JWT `jwt` is, if its signature, key and claims
/// hold.
fn verify_jwt(w: &World, jwt: &str) -> Result<String, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = b64url().decode(p).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("only RS256 is accepted".into());
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = w
        .service_account_keys
        .get(kid)
        .ok_or_else(|| format!("no key {kid}"))?;
    let sig = b64url().decode(s).map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    if key.disabled {
        return Err("the key is disabled".into());
    }
    if claims.get("iss").and_then(Value::as_str) != Some(key.email.as_str()) {
        return Err("the issuer is not the key's account".into());
    }
    let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
    if exp <= now_epoch() {
        return Err("the JWT has expired".into());
    }
    Ok(key.email.clone())
}

/// Who a request's bearer token is.
pub(crate) fn caller(w: &World, headers: &HeaderMap) -> Result<String, GoogleError> {
    let unauthenticated = |why: &str| {
        GoogleError::new(
            401,
            "UNAUTHENTICATED",
            format!("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. ({why})"),
        )
        .detail(json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com", "metadata": {}}))
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthenticated("no bearer token"))?;
    principal_of(w, token).map_err(|why| unauthenticated(&why))
}

/// Who a bearer token is: an access token this stand-in issued that has not expired, or a
/// service account's self-signed JWT.
pub(crate) fn principal_of(w: &World, token: &str) -> Result<String, String> {
    if let Some((principal, exp, _)) = w.tokens.get(token) {
        if w.tokens_expired || (*exp as f64) <= now_epoch() {
            return Err("the access token has expired".into());
        }
        return Ok(principal.clone());
    }
    verify_jwt(w, token)
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// `POST /token`: the refresh-token grant (gcloud's authorized user) and the JWT-bearer grant
/// (a service account's signed assertion).
pub(crate) fn token_endpoint(w: &mut World, body: &[u8]) -> Response {
    let form: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    let principal = match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            match w.refresh_tokens.get(&given) {
                Some((email, false)) => email.clone(),
                _ => return oauth_error("invalid_grant", "Token has been expired or revoked."),
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let assertion = form.get("assertion").cloned().unwrap_or_default();
            match verify_jwt(w, &assertion) {
                Ok(p) => p,
                Err(why) => return oauth_error("invalid_grant", &why),
            }
        }
        _ => return oauth_error("unsupported_grant_type", "Invalid grant_type."),
    };
    let (token, _) = issue(w, &principal);
    (
        StatusCode::OK,
        axum::Json(json!({"access_token": token, "expires_in": LIFETIME - 1,
            "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/cloud-platform"})),
    )
        .into_response()
}

/// The metadata server: the default service account's token and email
/// (`Metadata-Flavor: Google` required).
pub(crate) fn metadata(w: &mut World, headers: &HeaderMap, rest: &str) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    let Some((_, email)) = w.managed_identity.clone() else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    match rest {
        "instance/service-accounts/default/token" => {
            let (token, _) = issue(w, &email);
            (
                StatusCode::OK,
                axum::Json(json!({"access_token": token, "expires_in": LIFETIME - 1, "token_type": "Bearer"})),
            )
                .into_response()
        }
        "instance/service-accounts/default/email" => (StatusCode::OK, email).into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `generateAccessToken` for `target`, asked by `caller`.
pub(crate) fn generate_access_token(w: &mut World, target: &str) -> Result<Value, GoogleError> {
    if !w.service_accounts.contains(target) {
        return Err(GoogleError::not_found(format!(
            "Not found; Gaia id not found for email {target}"
        )));
    }
    let (token, exp) = issue(w, target);
    Ok(json!({"accessToken": token, "expireTime": crate::world::rfc3339(exp)}))
}
