//! A small E.164 country-calling-code table.
//!
//! The classifier needs three things per destination: which country (to count
//! distinct destination countries and foreign share), a typical UTC offset (to
//! tell night from day without knowing the sender's timezone), and whether the
//! destination is one that artificially-inflated-traffic ("SMS pumping") and
//! international revenue share fraud favour. The risk flags are our choice,
//! drawn from commonly published high-risk lists (satellite and international
//! network codes, premium ranges, small-island and some African, Pacific and
//! Central Asian ranges, Caribbean NANP area codes used for one-ring scams); a
//! legitimate destination may be flagged, which is why it is one model feature
//! among many and not a rule that blocks.

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// Calling code digits (`"44"`), or `"1xxx"` style NANP area groups.
    pub code: &'static str,
    /// ISO 3166 alpha-2, or a pseudo code (`XC` Caribbean NANP, `XS` satellite).
    pub iso: &'static str,
    /// Typical UTC offset in hours.
    pub utc_offset: i8,
    /// Favoured by pumping / revenue-share fraud.
    pub high_risk: bool,
}

const fn c(code: &'static str, iso: &'static str, utc_offset: i8, high_risk: bool) -> Country {
    Country {
        code,
        iso,
        utc_offset,
        high_risk,
    }
}

/// Index 0 is NANP (US/CA), index 1 the Caribbean NANP area codes.
pub static COUNTRIES: &[Country] = &[
    c("1", "US", -6, false),
    c("1c", "XC", -4, true),
    c("7", "RU", 3, false),
    c("20", "EG", 2, false),
    c("27", "ZA", 2, false),
    c("30", "GR", 2, false),
    c("31", "NL", 1, false),
    c("32", "BE", 1, false),
    c("33", "FR", 1, false),
    c("34", "ES", 1, false),
    c("36", "HU", 1, false),
    c("39", "IT", 1, false),
    c("40", "RO", 2, false),
    c("41", "CH", 1, false),
    c("43", "AT", 1, false),
    c("44", "GB", 0, false),
    c("45", "DK", 1, false),
    c("46", "SE", 1, false),
    c("47", "NO", 1, false),
    c("48", "PL", 1, false),
    c("49", "DE", 1, false),
    c("51", "PE", -5, false),
    c("52", "MX", -6, false),
    c("53", "CU", -5, true),
    c("54", "AR", -3, false),
    c("55", "BR", -3, false),
    c("56", "CL", -4, false),
    c("57", "CO", -5, false),
    c("58", "VE", -4, false),
    c("60", "MY", 8, false),
    c("61", "AU", 10, false),
    c("62", "ID", 7, false),
    c("63", "PH", 8, false),
    c("64", "NZ", 12, false),
    c("65", "SG", 8, false),
    c("66", "TH", 7, false),
    c("81", "JP", 9, false),
    c("82", "KR", 9, false),
    c("84", "VN", 7, false),
    c("86", "CN", 8, false),
    c("90", "TR", 3, false),
    c("91", "IN", 5, false),
    c("92", "PK", 5, false),
    c("93", "AF", 4, true),
    c("94", "LK", 5, false),
    c("95", "MM", 6, false),
    c("98", "IR", 3, false),
    c("211", "SS", 2, true),
    c("212", "MA", 1, false),
    c("213", "DZ", 1, false),
    c("216", "TN", 1, false),
    c("218", "LY", 2, true),
    c("220", "GM", 0, true),
    c("221", "SN", 0, false),
    c("222", "MR", 0, true),
    c("224", "GN", 0, true),
    c("225", "CI", 0, false),
    c("228", "TG", 0, true),
    c("231", "LR", 0, true),
    c("232", "SL", 0, true),
    c("233", "GH", 0, false),
    c("234", "NG", 1, false),
    c("235", "TD", 1, true),
    c("236", "CF", 1, true),
    c("237", "CM", 1, false),
    c("239", "ST", 0, true),
    c("240", "GQ", 1, true),
    c("241", "GA", 1, true),
    c("243", "CD", 1, true),
    c("245", "GW", 0, true),
    c("252", "SO", 3, true),
    c("253", "DJ", 3, true),
    c("254", "KE", 3, false),
    c("255", "TZ", 3, false),
    c("256", "UG", 3, false),
    c("257", "BI", 2, true),
    c("261", "MG", 3, true),
    c("263", "ZW", 2, true),
    c("269", "KM", 3, true),
    c("370", "LT", 2, true),
    c("371", "LV", 2, true),
    c("373", "MD", 2, true),
    c("375", "BY", 3, true),
    c("380", "UA", 2, false),
    c("381", "RS", 1, false),
    c("420", "CZ", 1, false),
    c("509", "HT", -5, true),
    c("592", "GY", -4, true),
    c("670", "TL", 9, true),
    c("674", "NR", 12, true),
    c("675", "PG", 10, true),
    c("676", "TO", 13, true),
    c("677", "SB", 11, true),
    c("678", "VU", 11, true),
    c("682", "CK", -10, true),
    c("683", "NU", -11, true),
    c("686", "KI", 14, true),
    c("688", "TV", 12, true),
    c("690", "TK", 13, true),
    c("850", "KP", 9, true),
    c("852", "HK", 8, false),
    c("870", "XS", 0, true),
    c("880", "BD", 6, false),
    c("881", "XS", 0, true),
    c("882", "XN", 0, true),
    c("883", "XN", 0, true),
    c("886", "TW", 8, false),
    c("960", "MV", 5, true),
    c("963", "SY", 3, true),
    c("966", "SA", 3, false),
    c("967", "YE", 3, true),
    c("971", "AE", 4, false),
    c("972", "IL", 2, false),
    c("979", "XP", 0, true),
    c("992", "TJ", 5, true),
    c("993", "TM", 5, true),
    c("994", "AZ", 4, true),
    c("996", "KG", 6, true),
    c("998", "UZ", 5, true),
];

/// Caribbean NANP area codes (after `+1`), grouped as `XC`.
const CARIBBEAN_NPAS: [&str; 24] = [
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "658", "664", "721", "758",
    "767", "784", "809", "829", "849", "868", "869", "876", "939", "787", "340",
];

/// Index into [`COUNTRIES`] of an E.164 number's country, by longest prefix.
/// `None` for non-E.164 ids and unknown codes.
pub fn country_index(number: &str) -> Option<usize> {
    let digits = number.strip_prefix('+')?.as_bytes();
    if digits.first() == Some(&b'1') {
        let npa = digits.get(1..4)?;
        let caribbean = CARIBBEAN_NPAS.iter().any(|c| c.as_bytes() == npa);
        return Some(if caribbean { 1 } else { 0 });
    }
    for len in [3usize, 2, 1] {
        let Some(prefix) = digits.get(..len) else {
            continue;
        };
        if let Some(i) = COUNTRIES.iter().position(|c| c.code.as_bytes() == prefix) {
            return Some(i);
        }
    }
    None
}

/// The country row of an E.164 number.
pub fn country_of(number: &str) -> Option<&'static Country> {
    country_index(number).and_then(|i| COUNTRIES.get(i))
}

/// The deployment's own destinations: how its messages spread over the
/// countries of [`COUNTRIES`], over about the last day.
///
/// The high-risk flags are a list drawn up from where pumping and revenue
/// share fraud terminate, seen from North America and Europe; for a
/// gateway that serves the Caribbean (world R: 63 % of its messages go to
/// the Caribbean NANP area codes) they flag its everyday traffic. A
/// flagged country that receives [`SERVED_SHARE`] or more of the
/// deployment's messages is one it serves, and messages there are not
/// premium. The largest share any pumping attack of the worlds reached is
/// 3.1 % (world C's satellite ranges, 100 % spam); legitimate traffic to a
/// flagged country there stays under 2 %.
#[derive(Debug, Clone)]
pub(crate) struct DestinationMix {
    counts: Vec<f32>,
    total: f32,
    at_ms: i64,
}

/// Share of the deployment's messages that makes a country one it serves.
const SERVED_SHARE: f32 = 0.1;
/// Messages the mix must have seen before it says anything. Until then no
/// destination is premium: a new deployment does not know yet which
/// countries it serves, and the list alone blocked world S's banks and
/// passcode ids (Central Asia, whose three flagged countries take 71 % of
/// its messages) in the first fifteen minutes of the day. Pumping runs for
/// hours; it is caught once the mix knows.
const SERVED_MIN_MESSAGES: f32 = 1000.0;
/// Time constant of the mix (a day).
const MIX_TAU_MS: f32 = 24.0 * 3_600_000.0;

impl DestinationMix {
    pub(crate) fn new() -> Self {
        DestinationMix {
            counts: vec![0.0; COUNTRIES.len()],
            total: 0.0,
            at_ms: i64::MIN,
        }
    }

    /// Counts a message to country `c` at `now_ms`.
    pub(crate) fn add(&mut self, c: usize, now_ms: i64) {
        if self.at_ms == i64::MIN {
            self.at_ms = now_ms;
        }
        let k = (-((now_ms - self.at_ms).max(0) as f32) / MIX_TAU_MS).exp();
        // decaying every count on every message would cost a pass over the
        // table; decay only when it moved by a percent
        if k < 0.99 {
            self.counts.iter_mut().for_each(|x| *x *= k);
            self.total *= k;
            self.at_ms = now_ms;
        }
        if let Some(x) = self.counts.get_mut(c) {
            *x += 1.0;
            self.total += 1.0;
        }
    }

    /// Whether country `c` is one the deployment serves.
    fn serves(&self, c: usize) -> bool {
        self.counts
            .get(c)
            .is_some_and(|&x| x >= SERVED_SHARE * self.total)
    }

    /// Whether a message to country `c` goes to a premium range: flagged,
    /// and, once the mix knows, not a country the deployment serves.
    pub(crate) fn premium(&self, c: usize) -> bool {
        self.total >= SERVED_MIN_MESSAGES
            && COUNTRIES.get(c).is_some_and(|x| x.high_risk)
            && !self.serves(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(country_of("+14155550100").unwrap().iso, "US");
        assert_eq!(country_of("+18765550100").unwrap().iso, "XC");
        assert_eq!(country_of("+447700900123").unwrap().iso, "GB");
        assert_eq!(country_of("+37120000000").unwrap().iso, "LV");
        assert!(country_of("+37120000000").unwrap().high_risk);
        assert_eq!(country_of("+881612345678").unwrap().iso, "XS");
        assert!(country_of("+999").is_none());
        assert!(country_of("ACME").is_none());
    }

    #[test]
    fn codes_are_unique() {
        for (i, a) in COUNTRIES.iter().enumerate() {
            for b in &COUNTRIES[i + 1..] {
                assert_ne!(a.code, b.code);
            }
        }
    }

    #[test]
    fn a_flagged_country_the_deployment_serves_is_not_premium() {
        let jm = country_index("+18765550100").unwrap();
        let us = country_index("+14155550100").unwrap();
        let sat = country_index("+870123456").unwrap();
        let mut mix = DestinationMix::new();
        // too little traffic to say
        for i in 0..500 {
            mix.add(jm, i * 1000);
        }
        assert!(!mix.premium(jm));
        // a Caribbean gateway: most of its messages go there
        for i in 500..3000 {
            mix.add(if i % 2 == 0 { jm } else { us }, i * 1000);
        }
        assert!(!mix.premium(jm));
        assert!(!mix.premium(us), "not flagged at all");
        // a pumping attack of 3 % of the traffic stays premium
        for i in 3000..6000 {
            mix.add(if i % 33 == 0 { sat } else { us }, i * 1000);
        }
        assert!(mix.premium(sat));
        // a day and more of other traffic: the Caribbean share fades
        for i in 0..20_000 {
            mix.add(us, 6_000_000 + i * 10_000);
        }
        assert!(mix.premium(jm));
    }
}
