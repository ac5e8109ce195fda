//! `[routing]`: which route sends which outbound message.

use serde::Deserialize;

/// Routing rules, tried in order; the first that matches picks the route.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Route for messages no rule matches; absent means the first configured route.
    pub default: Option<String>,
    /// Ordered rules.
    pub rules: Vec<RouteRule>,
}

/// One routing rule. Every condition given must hold; a rule with no
/// condition matches everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Destination number prefix in E.164, e.g. `+44` or `+1415`.
    #[serde(default)]
    pub to_prefix: Option<String>,
    /// Destination country (ISO 3166 alpha-2), e.g. `GB`.
    #[serde(default)]
    pub to_country: Option<String>,
    /// Sender, exactly as normalised (E.164, short code or alphanumeric id).
    #[serde(default)]
    pub from: Option<String>,
    /// The route to use.
    pub route: String,
}

impl RoutingConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(p) = &r.to_prefix {
                if !p.starts_with('+') || !p[1..].bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("routing.rules[{i}].to_prefix must be + and digits"));
                }
            }
            if let Some(c) = &r.to_country {
                if c.parse::<phonenumber::country::Id>().is_err() {
                    problems.push(format!(
                        "routing.rules[{i}].to_country {c:?} is not an ISO 3166 region"
                    ));
                }
            }
        }
    }
}
