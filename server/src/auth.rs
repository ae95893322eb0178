//! Who may call the server: bearer tokens, HTTP Basic users and (for Athena's API) AWS access
//! keys, read from a file. Without one the server only listens on loopback.
//!
//! The file has one credential per line: `bearer <token>`, `basic <user>:<password>` or
//! `aws <access-key-id>`; `#` starts a comment. Credentials never appear in logs or errors.

use std::collections::HashSet;
use std::path::Path;

use axum::http::{HeaderMap, header};
use base64::Engine as _;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Auth {
    bearer: HashSet<String>,
    basic: HashSet<(String, String)>,
    access_keys: HashSet<String>,
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
                    "auth file {} line {}: expected 'bearer TOKEN', 'basic USER:PASSWORD' or 'aws ACCESS_KEY_ID'",
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
                    auth.access_keys.insert(value.to_string());
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

    /// Checks a request's Authorization header; the error never repeats what was sent.
    pub fn check(&self, headers: &HeaderMap) -> Result<()> {
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
            // SigV4: the access key must be on the allow-list
            "aws4-hmac-sha256" => rest
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .is_some_and(|key| self.access_keys.contains(key)),
            _ => false,
        };
        if ok { Ok(()) } else { denied("the credentials were not accepted") }
    }
}
