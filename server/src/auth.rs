//! Who may call the server and who they are: bearer tokens, HTTP Basic users and (for Athena's
//! API) AWS access keys, read from a file, each mapped to one principal with a role.
//!
//! The file has one credential per line; a line whose first non-blank character is `#` is a
//! comment (a `#` inside a token or password is part of it):
//!
//! ```text
//! bearer <token> [principal=NAME] [role=admin|user] [manage=WORKGROUP,…]
//! basic <user>:<password> [role=…] [manage=…]                 (the principal is the user)
//! aws <access-key-id> [<secret-access-key>] [principal=NAME] [role=…] [manage=…]
//! ```
//!
//! With the secret, a SigV4 request's signature is verified; with the key alone only the key is
//! checked, which is allowed on loopback only. `role=admin` sees and stops every query and
//! manages workgroups; `user` (the default) sees its own queries and manages the workgroups
//! `manage=` names. Secrets are compared in constant time and never appear in logs or errors.

use std::path::Path;

use axum::http::{HeaderMap, Method, Uri, header};
use base64::Engine as _;
use ring::digest;

use crate::error::{Error, Result};
use crate::sigv4;

/// Who a request is from, as the server decides what it may see and do.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    /// Workgroups this principal may change besides an admin's.
    pub manages: Vec<String>,
}

impl Principal {
    /// Whether this principal may see (and stop) a query `owner` ran.
    pub fn sees(&self, owner: Option<&str>) -> bool {
        self.admin || owner == Some(self.name.as_str())
    }

    /// Whether this principal may create, change or delete workgroup `name`.
    pub fn manages(&self, name: &str) -> bool {
        self.admin || self.manages.iter().any(|g| g == name)
    }
}

#[derive(Debug, Clone)]
struct Credential {
    kind: Kind,
    principal: Principal,
}

#[derive(Debug, Clone)]
enum Kind {
    /// SHA-256 of the token, compared in constant time.
    Bearer([u8; 32]),
    /// The user and the SHA-256 of the password.
    Basic(String, [u8; 32]),
    Aws {
        key: String,
        secret: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    credentials: Vec<Credential>,
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    out
}

/// Equal without an early exit, so timing does not tell how much matched.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidRequest(format!("cannot read the auth file {}: {e}", path.display())))?;
        Self::parse(&text)
            .map_err(|(line, why)| Error::InvalidRequest(format!("auth file {} line {line}: {why}", path.display())))
    }

    /// Parses the file's text; errors carry the line number and what is wrong (never a secret).
    pub fn parse(text: &str) -> std::result::Result<Self, (usize, String)> {
        const FORMS: &str = "expected 'bearer TOKEN', 'basic USER:PASSWORD' or 'aws ACCESS_KEY_ID [SECRET]', each \
                             optionally followed by principal=NAME, role=admin|user, manage=WORKGROUP,…";
        let mut auth = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| (n + 1, format!("{why}; {FORMS}"));
            let mut words = line.split_whitespace();
            let kind = words.next().unwrap_or_default().to_ascii_lowercase();
            let credential = words.next().ok_or_else(|| bad("the credential is missing"))?;
            let mut positional = vec![];
            let (mut name, mut admin, mut manages) = (None, false, vec![]);
            for word in words {
                match word.split_once('=') {
                    Some(("principal", v)) if !v.is_empty() => name = Some(v.to_string()),
                    Some(("role", "admin")) => admin = true,
                    Some(("role", "user")) => admin = false,
                    Some(("role", _)) => return Err(bad("role must be admin or user")),
                    Some(("manage", v)) => manages.extend(v.split(',').filter(|g| !g.is_empty()).map(str::to_string)),
                    _ => positional.push(word),
                }
            }
            let kind = match kind.as_str() {
                "bearer" if positional.is_empty() => Kind::Bearer(sha256(credential)),
                "basic" if positional.is_empty() => {
                    let (user, password) =
                        credential.split_once(':').ok_or_else(|| bad("basic needs USER:PASSWORD"))?;
                    if name.as_deref().is_some_and(|p| p != user) {
                        return Err(bad("a basic user is its own principal"));
                    }
                    name = Some(user.to_string());
                    Kind::Basic(user.to_string(), sha256(password))
                }
                "aws" if positional.len() <= 1 => {
                    Kind::Aws { key: credential.to_string(), secret: positional.first().map(|s| s.to_string()) }
                }
                "bearer" | "basic" | "aws" => return Err(bad("unexpected words after the credential")),
                _ => return Err(bad("unknown credential kind")),
            };
            let name = name.unwrap_or_else(|| match &kind {
                Kind::Aws { key, .. } => key.clone(),
                _ => format!("bearer-line-{}", n + 1),
            });
            auth.credentials.push(Credential { kind, principal: Principal { name, admin, manages } });
        }
        if auth.is_empty() {
            return Err((0, "the file names no credentials".into()));
        }
        Ok(auth)
    }

    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// Whether an `aws` line has no secret (its key alone lets a caller in).
    pub fn has_key_only_entries(&self) -> bool {
        self.credentials.iter().any(|c| matches!(&c.kind, Kind::Aws { secret: None, .. }))
    }

    /// Checks a request's Authorization header (and, for SigV4, its signature over the method,
    /// URI, headers and body) and says whose it is; `None` when the server has no credentials.
    /// The error never repeats what was sent.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Option<Principal>> {
        if self.is_empty() {
            return Ok(None);
        }
        let denied = |why: &str| Err(Error::Unauthorized(why.to_string()));
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return denied("this server requires credentials (Authorization header)");
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let found = match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                let sent = sha256(rest.trim());
                // every entry is compared, so timing says nothing of which one matched
                let mut found = None;
                for c in &self.credentials {
                    if let Kind::Bearer(token) = &c.kind
                        && same(token, &sent)
                    {
                        found = Some(&c.principal);
                    }
                }
                found
            }
            "basic" => {
                let pair = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok());
                let mut found = None;
                if let Some((user, password)) = pair.as_deref().and_then(|p| p.split_once(':')) {
                    let sent = sha256(password);
                    for c in &self.credentials {
                        if let Kind::Basic(u, hash) = &c.kind
                            && same(hash, &sent)
                            && u == user
                        {
                            found = Some(&c.principal);
                        }
                    }
                }
                found
            }
            // SigV4: the access key must be on the allow-list, and signed with its secret
            "aws4-hmac-sha256" => {
                let Some(signed) = sigv4::parse(rest) else {
                    return denied("the Authorization header is not a valid SigV4 header");
                };
                let entry = self.credentials.iter().find_map(|c| match &c.kind {
                    Kind::Aws { key, secret } if key == signed.access_key => Some((secret, &c.principal)),
                    _ => None,
                });
                match entry {
                    None => None,
                    Some((None, principal)) => Some(principal),
                    Some((Some(secret), principal)) => {
                        match sigv4::verify(&signed, secret, method, uri, headers, body, chrono::Utc::now()) {
                            None => Some(principal),
                            Some(why) => return Err(Error::BadSignature(why.to_string())),
                        }
                    }
                }
            }
            _ => None,
        };
        match found {
            Some(p) => Ok(Some(p.clone())),
            None => denied("the credentials were not accepted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    fn who(auth: &Auth, header: &str) -> Result<Option<Principal>> {
        auth.check(&Method::POST, &"/".parse().unwrap(), &headers(header), b"")
    }

    #[test]
    fn hashes_belong_to_secrets_and_lines_map_to_principals() {
        let auth = Auth::parse(
            "# operators\n  bearer tok#en-1 principal=carol role=admin\nbearer plain\nbasic bob:pa#ss manage=etl,adhoc\n",
        )
        .unwrap();
        let carol = who(&auth, "Bearer tok#en-1").unwrap().unwrap();
        assert_eq!((carol.name.as_str(), carol.admin), ("carol", true));
        // the part before '#' is not the token
        assert!(who(&auth, "Bearer tok").is_err());
        assert_eq!(who(&auth, "Bearer plain").unwrap().unwrap().name, "bearer-line-3");
        let basic = base64::engine::general_purpose::STANDARD.encode("bob:pa#ss");
        let bob = who(&auth, &format!("Basic {basic}")).unwrap().unwrap();
        assert!(!bob.admin && bob.manages("etl") && !bob.manages("primary") && bob.sees(Some("bob")));
        assert!(!bob.sees(Some("carol")) && carol.sees(Some("bob")));
        let cut = base64::engine::general_purpose::STANDARD.encode("bob:pa");
        assert!(who(&auth, &format!("Basic {cut}")).is_err());
    }

    #[test]
    fn mistakes_name_the_line_and_keys_alone_are_flagged() {
        assert_eq!(Auth::parse("bearer a\nrole=admin x\n").unwrap_err().0, 2);
        assert!(Auth::parse("bearer a role=root").unwrap_err().1.contains("admin or user"));
        assert!(Auth::parse("# nothing\n").is_err());
        assert!(Auth::parse("aws AKIA1").unwrap().has_key_only_entries());
        assert!(!Auth::parse("aws AKIA1 SECRET principal=etl").unwrap().has_key_only_entries());
    }
}
