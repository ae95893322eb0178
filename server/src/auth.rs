//! Who may call the server: bearer tokens, HTTP Basic users and (for Athena's API) AWS access
//! keys, read from a file. Without one the server only listens on loopback.
//!
//! The file has one credential per line: `bearer <token>`, `basic <user>:<password>` or
//! `aws <access-key-id> [<secret-access-key>]`; `#` starts a comment. With the secret, a SigV4
//! request's signature is verified; with the key alone, only the key is checked (for clients
//! whose secrets the operator does not hold). Credentials never appear in logs or errors.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use axum::http::{HeaderMap, Method, Uri, header};
use base64::Engine as _;

use crate::error::{Error, Result};
use crate::sigv4;

#[derive(Debug, Clone, Default)]
pub struct Auth {
    bearer: HashSet<String>,
    basic: HashSet<(String, String)>,
    /// Access key id → its secret, if the operator gave it.
    access_keys: HashMap<String, Option<String>>,
}

impl Auth {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidRequest(format!("cannot read the auth file {}: {e}", path.display())))?;
        let mut auth = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = || {
                Error::InvalidRequest(format!(
                    "auth file {} line {}: expected 'bearer TOKEN', 'basic USER:PASSWORD' or 'aws ACCESS_KEY_ID [SECRET]'",
                    path.display(),
                    n + 1
                ))
            };
            let (kind, value) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let value = value.trim();
            match kind.to_ascii_lowercase().as_str() {
                "bearer" => {
                    auth.bearer.insert(value.to_string());
                }
                "basic" => {
                    let (user, password) = value.split_once(':').ok_or_else(bad)?;
                    auth.basic.insert((user.to_string(), password.to_string()));
                }
                "aws" => {
                    let mut parts = value.split_whitespace();
                    let key = parts.next().ok_or_else(bad)?;
                    let secret = parts.next().map(str::to_string);
                    if parts.next().is_some() {
                        return Err(bad());
                    }
                    auth.access_keys.insert(key.to_string(), secret);
                }
                _ => return Err(bad()),
            }
        }
        if auth.is_empty() {
            return Err(Error::InvalidRequest(format!("the auth file {} names no credentials", path.display())));
        }
        Ok(auth)
    }

    pub fn is_empty(&self) -> bool {
        self.bearer.is_empty() && self.basic.is_empty() && self.access_keys.is_empty()
    }

    /// Checks a request's Authorization header (and, for SigV4, its signature over the method,
    /// URI, headers and body); the error never repeats what was sent.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let denied = |why: &str| Err(Error::Unauthorized(why.to_string()));
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return denied("this server requires credentials (Authorization header)");
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let ok = match scheme.to_ascii_lowercase().as_str() {
            "bearer" => self.bearer.contains(rest.trim()),
            "basic" => base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
                .is_some_and(|pair| self.basic.contains(&pair)),
            // SigV4: the access key must be on the allow-list, and signed with its secret
            "aws4-hmac-sha256" => {
                let Some(signed) = sigv4::parse(rest) else {
                    return denied("the Authorization header is not a valid SigV4 header");
                };
                match self.access_keys.get(signed.access_key) {
                    None => false,
                    Some(None) => true,
                    Some(Some(secret)) => {
                        match sigv4::verify(&signed, secret, method, uri, headers, body, chrono::Utc::now()) {
                            None => true,
                            Some(why) => return Err(Error::BadSignature(why.to_string())),
                        }
                    }
                }
            }
            _ => false,
        };
        if ok { Ok(()) } else { denied("the credentials were not accepted") }
    }
}
