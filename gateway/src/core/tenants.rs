//! Tenants: the private-side applications one gateway serves, each with the
//! senders it may use, the internal addresses it owns (their identities and
//! their inbound messages), its own webhook and secret, and a daily quota.
//! Also the scopes an API key carries, and the one rule of which messages a
//! caller may see ([`may_see`]), so every handler and list applies the same.
//!
//! Without `[[tenants]]` there is one implicit tenant that owns everything:
//! keys carry no tenant, messages are stored with none, and nothing is
//! filtered; a deployment that predates tenants keeps working unchanged.

use serde::Deserialize;

use crate::core::address::Address;
use crate::core::secrets::SecretRef;
use phonenumber::country::Id as Region;

/// One `[[tenants]]` entry, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Name keys are created for (`--tenant NAME`): 1-32 of `a-z 0-9 _ -`.
    pub name: String,
    /// `from` values it may use: exact senders (E.164, short code,
    /// alphanumeric id) or prefixes ending in `*`. The first exact one is
    /// used when a send names no `from`.
    #[serde(default)]
    pub senders: Vec<String>,
    /// Internal recipients it owns (exact or `*` prefixes): their identities
    /// and their inbound messages are its alone.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Its private side: where inbound envelopes to its addresses go;
    /// absent means they wait in the store.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Public key (base64 X25519) for its recipients without an identity.
    #[serde(default)]
    pub service_public_key: Option<String>,
    /// Messages accepted (202) per UTC day; absent means no quota.
    #[serde(default)]
    pub max_messages_per_day: Option<u64>,
    /// SMPP server accounts (`system_id`s) that send as this tenant.
    #[serde(default)]
    pub smpp_accounts: Vec<String>,
    /// HMAC secret of its webhook (`secret_env` / `secret_file`; no default
    /// variable: each tenant names its own).
    #[serde(flatten)]
    pub secret: SecretRef,
}

/// An address pattern: exact, or a prefix (written with a trailing `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    prefix: bool,
}

impl Pattern {
    /// Parses `raw`; exact patterns are normalised like the addresses they
    /// are compared with.
    fn parse(raw: &str, region: Region) -> Result<Self, String> {
        match raw.strip_suffix('*') {
            Some("") => Err("a bare `*` would match everything".into()),
            Some(p) if p.contains('*') => Err(format!("{raw:?}: only a trailing * is allowed")),
            Some(p) => Ok(Self {
                text: p.trim().to_string(),
                prefix: true,
            }),
            None => Address::sender(raw, region, "pattern")
                .map(|a| Self {
                    text: a.to_string(),
                    prefix: false,
                })
                .map_err(|e| format!("{raw:?}: {e}")),
        }
    }

    fn matches(&self, address: &str) -> bool {
        if self.prefix {
            address.starts_with(&self.text)
        } else {
            address == self.text
        }
    }

    /// How specific a match is: an exact one beats any prefix, a longer
    /// prefix a shorter one.
    fn specificity(&self) -> usize {
        if self.prefix {
            self.text.len()
        } else {
            usize::MAX
        }
    }
}

/// A tenant, built from its configuration.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Its name.
    pub name: String,
    senders: Vec<Pattern>,
    addresses: Vec<Pattern>,
    /// The sender of a message that names none (the first exact sender).
    pub default_from: Option<String>,
    /// Its webhook, if any.
    pub webhook_url: Option<String>,
    /// Daily quota of accepted messages.
    pub max_messages_per_day: Option<u64>,
    /// Its SMPP server accounts.
    pub smpp_accounts: Vec<String>,
}

impl Tenant {
    /// Whether it may send from `from` (normalised).
    pub fn sender_allowed(&self, from: &str) -> bool {
        self.senders.iter().any(|p| p.matches(from))
    }

    /// Whether it owns the internal address `address` (normalised).
    pub fn owns(&self, address: &str) -> bool {
        self.addresses.iter().any(|p| p.matches(address))
    }

    fn ownership(&self, address: &str) -> Option<usize> {
        self.addresses
            .iter()
            .filter(|p| p.matches(address))
            .map(Pattern::specificity)
            .max()
    }
}

/// Every configured tenant; empty means the one implicit tenant.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    list: Vec<Tenant>,
}

impl Tenants {
    /// Builds them from the configuration; every problem is appended to
    /// `problems` (the configuration's check reports them all at once).
    pub fn build(cfgs: &[TenantConfig], region: Region, problems: &mut Vec<String>) -> Self {
        let mut list: Vec<Tenant> = Vec::new();
        for (i, c) in cfgs.iter().enumerate() {
            let at = format!("tenants[{i}]");
            if c.name.is_empty()
                || c.name.len() > 32
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                problems.push(format!("{at}.name must be 1 to 32 of a-z 0-9 _ -"));
            }
            if list.iter().any(|t| t.name == c.name) {
                problems.push(format!("{at}.name {:?} is used twice", c.name));
            }
            if let Some(u) = &c.webhook_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    problems.push(format!("{at}.webhook_url must be an http(s) URL"));
                }
            }
            if c.max_messages_per_day == Some(0) {
                problems.push(format!(
                    "{at}.max_messages_per_day must be at least 1 (remove it for no quota)"
                ));
            }
            let mut parse = |field: &str, raw: &[String]| -> Vec<Pattern> {
                raw.iter()
                    .filter_map(|r| {
                        Pattern::parse(r, region)
                            .map_err(|e| problems.push(format!("{at}.{field}: {e}")))
                            .ok()
                    })
                    .collect()
            };
            let senders = parse("senders", &c.senders);
            let addresses = parse("addresses", &c.addresses);
            list.push(Tenant {
                name: c.name.clone(),
                default_from: senders.iter().find(|p| !p.prefix).map(|p| p.text.clone()),
                senders,
                addresses,
                webhook_url: c.webhook_url.clone(),
                max_messages_per_day: c.max_messages_per_day,
                smpp_accounts: c.smpp_accounts.clone(),
            });
        }
        for (i, t) in list.iter().enumerate() {
            for other in &list[i + 1..] {
                for p in t.addresses.iter().filter(|p| other.addresses.contains(p)) {
                    problems.push(format!(
                        "tenants {} and {} both claim the addresses {}{}",
                        t.name,
                        other.name,
                        p.text,
                        if p.prefix { "*" } else { "" }
                    ));
                }
            }
        }
        Self { list }
    }

    /// True when `[[tenants]]` are configured (else one implicit tenant).
    pub fn configured(&self) -> bool {
        !self.list.is_empty()
    }

    /// The tenant called `name`.
    pub fn get(&self, name: &str) -> Option<&Tenant> {
        self.list.iter().find(|t| t.name == name)
    }

    /// Every tenant, in configuration order.
    pub fn all(&self) -> &[Tenant] {
        &self.list
    }

    /// The tenant that owns `address`: the most specific pattern wins
    /// (an exact address over any prefix, a longer prefix over a shorter).
    pub fn owner_of(&self, address: &str) -> Option<&Tenant> {
        self.list
            .iter()
            .filter_map(|t| t.ownership(address).map(|s| (s, t)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, t)| t)
    }

    /// The tenant an SMPP server account sends as.
    pub fn of_smpp(&self, system_id: &str) -> Option<&Tenant> {
        self.list
            .iter()
            .find(|t| t.smpp_accounts.iter().any(|a| a == system_id))
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /v1/messages`, retrying its dead letters.
    Send,
    /// Reading its messages and dead letters.
    Read,
    /// `PUT`/`GET /v1/identities/{address}` of its addresses.
    Identities,
    /// The admin plane's operator endpoints.
    Admin,
}

impl Scope {
    const ALL: [Scope; 4] = [Scope::Send, Scope::Read, Scope::Identities, Scope::Admin];

    fn bit(self) -> u8 {
        match self {
            Self::Send => 1,
            Self::Read => 2,
            Self::Identities => 4,
            Self::Admin => 8,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Read => "read",
            Self::Identities => "identities",
            Self::Admin => "admin",
        }
    }
}

/// A set of scopes; stored as `send,read,…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// What a key created without `--scope` gets: everything a tenant's
    /// application does, nothing of the operator's.
    pub const APPLICATION: Scopes = Scopes(1 | 2 | 4);

    /// Parses `send,read,identities,admin` (any order, no duplicates needed).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut bits = 0;
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let s = Scope::ALL
                .iter()
                .find(|s| s.as_str() == part)
                .ok_or_else(|| {
                    format!("unknown scope {part:?}: use send, read, identities, admin")
                })?;
            bits |= s.bit();
        }
        Ok(Self(bits))
    }

    /// Whether `scope` is in the set.
    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .iter()
            .filter(|s| self.has(**s))
            .map(|s| s.as_str())
            .collect();
        f.write_str(&names.join(","))
    }
}

/// THE rule of which messages a caller sees: `filter` is the caller's
/// tenant (`None`: every message, the implicit tenant or an operator), and
/// `owner` the tenant recorded on the message. A message another tenant
/// owns is answered as absent (404), never as forbidden, so its existence
/// does not leak. Lists filter with the same rule in SQL
/// (`tenant = ?` when a filter is set).
pub fn may_see(filter: Option<&str>, owner: Option<&str>) -> bool {
    filter.is_none_or(|t| owner == Some(t))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(name: &str, senders: &[&str], addresses: &[&str]) -> TenantConfig {
        TenantConfig {
            name: name.into(),
            senders: senders.iter().map(|s| s.to_string()).collect(),
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            webhook_url: None,
            service_public_key: None,
            max_messages_per_day: None,
            smpp_accounts: vec![],
            secret: SecretRef::default(),
        }
    }

    #[test]
    fn patterns_senders_and_owners() {
        let mut problems = vec![];
        let t = Tenants::build(
            &[
                cfg(
                    "acme",
                    &["+1202555011*", "ACME", "+12025550100"],
                    &["+1202555*"],
                ),
                cfg("beta", &["BETA"], &["+12025550199"]),
            ],
            Region::US,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let acme = t.get("acme").unwrap();
        assert_eq!(acme.default_from.as_deref(), Some("ACME"));
        assert!(acme.sender_allowed("+12025550117"));
        assert!(acme.sender_allowed("ACME"));
        assert!(!acme.sender_allowed("+12025550120"));
        assert!(!acme.sender_allowed("BETA"));
        // The exact address beats acme's prefix.
        assert_eq!(t.owner_of("+12025550199").unwrap().name, "beta");
        assert_eq!(t.owner_of("+12025550150").unwrap().name, "acme");
        assert!(t.owner_of("+14155550100").is_none());
    }

    #[test]
    fn bad_tenants_are_all_reported() {
        let mut problems = vec![];
        Tenants::build(
            &[
                cfg("Acme!", &["*"], &["+1202555*"]),
                cfg("b", &["+1 202 x"], &["+1202555*"]),
            ],
            Region::US,
            &mut problems,
        );
        let all = problems.join("; ");
        assert!(all.contains("tenants[0].name"), "{all}");
        assert!(all.contains("bare `*`"), "{all}");
        assert!(all.contains("tenants[1].senders"), "{all}");
        assert!(all.contains("both claim"), "{all}");
    }

    #[test]
    fn scopes_round_trip_and_visibility() {
        let s = Scopes::parse("read, send").unwrap();
        assert!(s.has(Scope::Send) && s.has(Scope::Read) && !s.has(Scope::Admin));
        assert_eq!(s.to_string(), "send,read");
        assert!(Scopes::parse("root").is_err());
        assert!(may_see(None, Some("acme")));
        assert!(may_see(Some("acme"), Some("acme")));
        assert!(!may_see(Some("acme"), Some("beta")));
        assert!(!may_see(Some("acme"), None));
    }
}
