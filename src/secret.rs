//! A secret value (proxy password, bearer token) that never reaches a log, a report or JSON.

use std::fmt;

/// A secret string: never printed, never serialised.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret value; use it only where it must be sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether a request carrying a credential (a bearer token, a signed request with a session
/// token) may go to `url`: https anywhere, plain http only to a loopback address (`127.0.0.0/8`,
/// `::1`, `localhost`); never a URL with credentials in it. `Err` says why not.
pub fn may_carry_credentials(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "it is not an http(s) URL".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("it carries credentials in the URL".into());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if is_loopback_authority(authority) => Ok(()),
        "http" => Err(
            "credentials are only sent over https (plain http only to 127.0.0.1, ::1 or localhost)"
                .into(),
        ),
        _ => Err("it is not an http(s) URL".into()),
    }
}

fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    is_loopback_host(host)
}

/// Whether a host name (no port, no brackets) is a loopback address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
