//! `[[modems]]`: one GSM modem's section.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// What to do with a multipart message whose parts stop coming.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IncompletePolicy {
    /// Deliver the parts that arrived, in order (the default: a partial
    /// message is better than a silently lost one).
    #[default]
    Deliver,
    /// Drop it (logged with its metadata).
    Drop,
}

/// One GSM modem (`[[modems]]`): a serial device or a TCP modem server
/// (ser2net style). It becomes a route called `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// Route and metrics name: lowercase letters, digits, `-`, `_`.
    pub name: String,
    /// The SIM's own number (E.164): the `to` of every inbound message.
    pub number: String,
    /// Serial device, e.g. `/dev/ttyUSB2` (give this or `tcp`).
    #[serde(default)]
    pub device: Option<PathBuf>,
    /// Serial speed.
    #[serde(default = "default_modem_baud")]
    pub baud: u32,
    /// `host:port` of a TCP modem server (give this or `device`).
    #[serde(default)]
    pub tcp: Option<String>,
    /// SIM PIN, entered only when the SIM asks (default env
    /// `GATEWAY_MODEM_<NAME>_PIN`, name upper-cased, `-` as `_`).
    #[serde(flatten)]
    pub pin: SecretRef,
    /// SMSC number set with `AT+CSCA` and written into each PDU; absent
    /// keeps the SIM's.
    #[serde(default)]
    pub smsc: Option<String>,
    /// Message storage for `AT+CPMS` (`SM` = SIM, `ME` = phone, `MT` = both).
    #[serde(default = "default_modem_storage")]
    pub storage: String,
    /// Most SMS parts sent per minute (carriers throttle SIMs); 0 = no limit.
    #[serde(default = "default_modem_pace")]
    pub pace_per_minute: u32,
    /// Ask for status reports (TP-SRR) and turn them into `delivered`/`failed`.
    #[serde(default = "default_true")]
    pub status_reports: bool,
    /// `AT+CNMI` parameters, e.g. `"2,1,0,2,0"`; absent tries `2,1,0,2,0`,
    /// then `2,1,0,1,0`, then `1,1,0,0,0` until the modem accepts one.
    #[serde(default)]
    pub cnmi: Option<String>,
    /// How long an ordinary command may take before the modem counts as hung.
    #[serde(default = "default_modem_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// How long one `AT+CMGS` may take (it waits for the network).
    #[serde(default = "default_modem_send_timeout_secs")]
    pub send_timeout_secs: u64,
    /// Idle time after which the modem is probed with `AT`; no answer resets it.
    #[serde(default = "default_modem_health_check_secs")]
    pub health_check_secs: u64,
    /// Ceiling of the reconnect backoff (it starts at 0.5 s and doubles).
    #[serde(default = "default_modem_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
    /// How long a multipart message waits for missing parts.
    #[serde(default = "default_modem_reassembly_timeout_secs")]
    pub reassembly_timeout_secs: u64,
    /// What to do when that time is up.
    #[serde(default)]
    pub incomplete: IncompletePolicy,
}

const fn default_modem_baud() -> u32 {
    115_200
}
fn default_modem_storage() -> String {
    "SM".into()
}
const fn default_modem_pace() -> u32 {
    10
}
const fn default_true() -> bool {
    true
}
const fn default_modem_command_timeout_ms() -> u64 {
    5_000
}
const fn default_modem_send_timeout_secs() -> u64 {
    60
}
const fn default_modem_health_check_secs() -> u64 {
    30
}
const fn default_modem_reconnect_max_secs() -> u64 {
    60
}
const fn default_modem_reassembly_timeout_secs() -> u64 {
    600
}

impl ModemConfig {
    /// The parsed `cnmi` setting, or the fallbacks.
    pub fn indications(&self) -> Option<Vec<adapters::at::Cnmi>> {
        let Some(raw) = &self.cnmi else {
            return Some(adapters::at::Cnmi::FALLBACKS.to_vec());
        };
        let n: Vec<u8> = raw
            .split(',')
            .map(|f| f.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [mode, mt, bm, ds, bfr] = n[..] else {
            return None;
        };
        Some(vec![adapters::at::Cnmi {
            mode,
            mt,
            bm,
            ds,
            bfr,
        }])
    }

    /// The default PIN environment variable of this modem.
    pub fn pin_env(&self) -> String {
        format!(
            "GATEWAY_MODEM_{}_PIN",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// Semantic checks of every `[[modems]]` entry, appended to `problems`.
    pub fn validate_all(all: &[ModemConfig], problems: &mut Vec<String>) {
        for (i, m) in all.iter().enumerate() {
            m.check(i, all, problems);
        }
    }

    fn check(&self, i: usize, all: &[ModemConfig], problems: &mut Vec<String>) {
        let at = format!("modems[{i}]");
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            problems.push(format!(
                "{at}.name must be lowercase letters, digits, - or _"
            ));
        }
        if all.iter().filter(|m| m.name == self.name).count() > 1 {
            problems.push(format!("{at}.name {:?} is used twice", self.name));
        }
        if self.device.is_some() == self.tcp.is_some() {
            problems.push(format!("{at} needs exactly one of device or tcp"));
        }
        if adapters::sms::Address::parse_number(&self.number).is_err()
            || !self.number.starts_with('+')
        {
            problems.push(format!("{at}.number must be an E.164 number"));
        }
        if let Some(s) = &self.smsc {
            if adapters::sms::Address::parse_number(s).is_err() {
                problems.push(format!("{at}.smsc is not a phone number"));
            }
        }
        if !matches!(self.storage.as_str(), "SM" | "ME" | "MT" | "SR" | "BM") {
            problems.push(format!("{at}.storage must be SM, ME or MT"));
        }
        if self.indications().is_none() {
            problems.push(format!("{at}.cnmi must be five numbers like \"2,1,0,2,0\""));
        }
        if self.command_timeout_ms == 0 || self.send_timeout_secs == 0 {
            problems.push(format!("{at} timeouts must be at least 1"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::app::config::Config;

    #[test]
    fn modem_defaults_and_checks() {
        let c = Config::from_toml(
            "[[modems]]\nname = \"sim-1\"\nnumber = \"+14155550100\"\ntcp = \"127.0.0.1:7000\"",
        )
        .unwrap();
        c.validate().unwrap();
        let m = &c.modems[0];
        assert_eq!((m.pace_per_minute, m.storage.as_str()), (10, "SM"));
        assert_eq!(m.indications().unwrap().len(), 3);
        assert_eq!(m.pin_env(), "GATEWAY_MODEM_SIM_1_PIN");
        let bad =
            Config::from_toml("[[modems]]\nname = \"A\"\nnumber = \"x\"\ncnmi = \"1,2\"").unwrap();
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("name")
                && e.contains("device or tcp")
                && e.contains("cnmi")
                && e.contains("number"),
            "{e}"
        );
    }
}
