//! The configuration reference: every section and key of [`Config`], with
//! its type, default and one line of documentation, printed by `gateway
//! config reference` (Markdown or JSON) and pasted into README.md.
//!
//! Why a hand-kept table and not schemars: the config types span three
//! crates (`classifier` and `adapters` own theirs), several use
//! `#[serde(flatten)]` for secrets, and most defaults live in `Default`
//! impls that schemars could only read through `Serialize`, which the
//! config types do not implement. A table costs one line per key, and the
//! tests below tie it to the real deserializer both ways: every documented
//! key parses with its example, every documented default parses to exactly
//! the value of an empty file, and every key the deserializer knows
//! (serde's "expected one of" list, or for a section with a flattened
//! secret, where serde gives no list, the struct's fields as `Debug` prints
//! them) is documented. Adding a field without a row fails the tests.
//!
//! [`Config`]: super::config::Config

/// How a section appears in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The file's top level.
    Top,
    /// `[name]`, always there (defaults when absent).
    Table,
    /// `[name]`, absent means the feature is off.
    Optional,
    /// `[[name]]`, zero or more.
    Array,
}

/// A key's default.
#[derive(Debug, Clone, Copy)]
pub enum KeyDefault {
    /// This TOML value (the tests check it equals an empty file's).
    Value(&'static str),
    /// No value; the words say what that means.
    Unset(&'static str),
    /// The key must be given.
    Required,
}

/// One key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key as written in the file.
    pub name: &'static str,
    /// Its TOML type, in words.
    pub ty: &'static str,
    /// Its default.
    pub default: KeyDefault,
    /// A valid TOML value (the tests parse it).
    pub example: &'static str,
    /// One line.
    pub doc: &'static str,
}

/// One section.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// Dotted path (`classifier.rate_limits`); empty for the top level.
    pub path: &'static str,
    /// How it appears.
    pub kind: Kind,
    /// One line.
    pub doc: &'static str,
    /// TOML lines the section needs to parse (its required keys), used by
    /// the tests and shown nowhere.
    pub base: &'static str,
    /// Its keys.
    pub keys: &'static [Key],
}

const fn k(
    name: &'static str,
    ty: &'static str,
    default: KeyDefault,
    example: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        ty,
        default,
        example,
        doc,
    }
}

use KeyDefault::{Required, Unset, Value};

const SECRET_ENV: &str = "secret_env";
const SECRET_FILE: &str = "secret_file";

/// `secret_env` / `secret_file` of a section whose secret has `var` as its
/// default variable.
macro_rules! secret_keys {
    ($var:expr) => {
        [
            k(
                SECRET_ENV,
                "string",
                Unset(concat!("`", $var, "`")),
                "\"MY_SECRET\"",
                "Environment variable holding the secret (wins over the file).",
            ),
            k(
                SECRET_FILE,
                "path",
                Unset("none"),
                "\"/run/secrets/x\"",
                "File holding the secret (trailing newline ignored).",
            ),
        ]
    };
}

/// The batch form's two keys (the generic adapter's and the private
/// side's), `items` naming what a request carries.
macro_rules! batch_keys {
    ($items:expr) => {
        [
            k(
                "batch_max",
                "integer",
                Value("1"),
                "100",
                concat!(
                    $items,
                    " per request at most (1..=1000); above 1 the batch form (see The generic HTTP adapter)."
                ),
            ),
            k(
                "batch_linger_ms",
                "integer",
                Value("0"),
                "2",
                "How long a batch that is not full may wait for more (at most 1000).",
            ),
        ]
    };
}

const fn secret_table(doc: &'static str, var: &'static str, example: &'static str) -> Key {
    k(
        "",
        "secret: `{ secret_env = \"…\" }` or `{ secret_file = \"…\" }`",
        Unset(var),
        example,
        doc,
    )
}

/// A `{ secret_env, secret_file }` key named `name`.
const fn secret_named(name: &'static str, doc: &'static str, var: &'static str) -> Key {
    let mut s = secret_table(doc, var, "{ secret_env = \"MY_SECRET\" }");
    s.name = name;
    s
}

const QUOTA: &str = "quota: `{ per_second, burst, per_hour?, per_day? }`";

const TOP: &[Key] = &[
    k(
        "listen",
        "address",
        Value("\"127.0.0.1:8080\""),
        "\"0.0.0.0:8080\"",
        "Address the API listens on (`--listen` / `GATEWAY_LISTEN` win).",
    ),
    k(
        "data_dir",
        "path",
        Value("\"./gateway-data\""),
        "\"/var/lib/gateway\"",
        "Database and key files, created owner-only (0700, files 0600).",
    ),
    k(
        "default_region",
        "string",
        Value("\"US\""),
        "\"GB\"",
        "ISO 3166 region national numbers are read in.",
    ),
];

const LOG: &[Key] = &[
    k(
        "format",
        "`human` | `json`",
        Value("\"human\""),
        "\"json\"",
        "Log lines for people, or one JSON object per line (`--log-format`).",
    ),
    k(
        "level",
        "string",
        Value("\"info\""),
        "\"gateway=debug,info\"",
        "A tracing filter; `RUST_LOG` wins.",
    ),
];

const HTTP: &[Key] = &[
    k(
        "max_body_bytes",
        "integer",
        Value("65536"),
        "1048576",
        "Largest request body; bigger gets 413.",
    ),
    k(
        "max_in_flight",
        "integer",
        Value("4096"),
        "100",
        "Requests handled at once, all routes together; beyond, 503 with Retry-After.",
    ),
    k(
        "request_timeout_secs",
        "integer",
        Value("15"),
        "30",
        "Handler time after the body is read; beyond, 503.",
    ),
    k(
        "max_connections",
        "integer",
        Value("8192"),
        "1000",
        "Connections open at once; more wait in the listen backlog.",
    ),
    k(
        "max_connections_per_peer",
        "integer",
        Value("1024"),
        "64",
        "Connections from one address; beyond, a new one is closed at once.",
    ),
    k(
        "header_read_timeout_secs",
        "integer",
        Value("10"),
        "5",
        "Time to send a request's whole header, and idle keep-alive time (see docs/errors.md for what the client sees).",
    ),
    k(
        "max_header_bytes",
        "integer",
        Value("16384"),
        "8192",
        "Largest request header block; bigger gets 431 and the connection closes.",
    ),
    k(
        "max_headers",
        "integer",
        Value("64"),
        "32",
        "Most header fields in one request; more gets 431.",
    ),
    k(
        "body_read_timeout_secs",
        "integer",
        Value("5"),
        "10",
        "The whole body must arrive in this time (less up to 20 % at random), else 408 and closed.",
    ),
    k(
        "max_slow_bodies_per_peer",
        "integer",
        Value("64"),
        "8",
        "Bodies from one peer still arriving after 250 ms; beyond, 503 and closed.",
    ),
];

const STORE: &[Key] = &[
    k(
        "synchronous",
        "`full` | `normal`",
        Value("\"full\""),
        "\"normal\"",
        "`full` fsyncs every group commit (survives power loss); `normal` only at checkpoints.",
    ),
    k(
        "max_batch",
        "integer",
        Value("2048"),
        "512",
        "Write operations folded into one transaction (group commit); on PostgreSQL the messages' inserts and outcomes, at most 64 a transaction (1: each its own).",
    ),
    k(
        "read_connections",
        "integer",
        Value("4"),
        "8",
        "Read connections kept open for queries.",
    ),
    k(
        "body_retention_secs",
        "integer",
        Value("2592000"),
        "86400",
        "Sealed bodies are erased this long after acceptance, whatever their state (30 days).",
    ),
    k(
        "metadata_retention_secs",
        "integer",
        Value("31536000"),
        "2592000",
        "Metadata rows are deleted this long after acceptance (a year).",
    ),
    k(
        "max_database_mb",
        "integer",
        Unset("until the disk is full"),
        "10240",
        "Database size cap in MiB; at the cap writes get 503 `storage_full` (SQLite only).",
    ),
    k(
        "backend",
        "`sqlite` | `postgres`",
        Value("\"sqlite\""),
        "\"postgres\"",
        "`postgres`: several nodes on one PostgreSQL (see PostgreSQL backend).",
    ),
    k(
        "url",
        "string",
        Unset("none (required with postgres)"),
        "\"postgres://gateway@db.example:5432/gateway\"",
        "PostgreSQL connection URL, never with a password in it.",
    ),
    secret_keys!("GATEWAY_STORE_SECRET")[0],
    secret_keys!("GATEWAY_STORE_SECRET")[1],
    k(
        "pool_size",
        "integer",
        Value("8"),
        "16",
        "PostgreSQL connections per node.",
    ),
    k(
        "lease_secs",
        "integer",
        Value("60"),
        "120",
        "PostgreSQL: how long a claimed queue entry is a node's before another may take it over; renewed every third while the node still sends it.",
    ),
];

const DELIVERY: &[Key] = &[
    k(
        "max_attempts",
        "integer",
        Value("15"),
        "5",
        "Attempts before a message is dead-lettered.",
    ),
    k(
        "max_age_secs",
        "integer",
        Value("172800"),
        "3600",
        "Age after which a message still not handed over is dead-lettered.",
    ),
    k(
        "initial_backoff_ms",
        "integer",
        Value("1000"),
        "500",
        "First retry delay; doubles per attempt, equal jitter.",
    ),
    k(
        "max_backoff_secs",
        "integer",
        Value("600"),
        "60",
        "Ceiling of the retry delay.",
    ),
    k(
        "concurrency",
        "integer",
        Value("64"),
        "16",
        "Sends in flight at once per route.",
    ),
    k(
        "request_timeout_secs",
        "integer",
        Value("10"),
        "20",
        "Timeout of one delivery HTTP request.",
    ),
    k(
        "signature_window_secs",
        "integer",
        Value("300"),
        "60",
        "Accepted clock skew of signed inbound webhooks.",
    ),
];

const CALLBACKS: &[Key] = &[
    secret_keys!("GATEWAY_CALLBACK_SECRET")[0],
    secret_keys!("GATEWAY_CALLBACK_SECRET")[1],
    k(
        "max_attempts",
        "integer",
        Value("10"),
        "3",
        "POSTs of one status callback before it is given up (backoff as `[delivery]`); callbacks are on when the secret is set.",
    ),
];

const GENERIC: &[Key] = &[
    k(
        "url",
        "string",
        Required,
        "\"https://smsc.example/send\"",
        "URL each outbound SMS is POSTed to.",
    ),
    k(
        "from",
        "string",
        Unset("none"),
        "\"+14155550199\"",
        "Sender used when a message names none.",
    ),
    batch_keys!("Messages")[0],
    batch_keys!("Messages")[1],
    secret_keys!("GATEWAY_GENERIC_SECRET")[0],
    secret_keys!("GATEWAY_GENERIC_SECRET")[1],
];

const PRIVATE_SIDE: &[Key] = &[
    k(
        "webhook_url",
        "string",
        Unset("envelopes wait in the store"),
        "\"https://private.example/inbound\"",
        "URL each inbound envelope is POSTed to.",
    ),
    k(
        "service_public_key",
        "string",
        Unset("none"),
        "\"base64…\"",
        "X25519 public key (base64) for recipients that registered no identity.",
    ),
    batch_keys!("Envelopes")[0],
    batch_keys!("Envelopes")[1],
    secret_keys!("GATEWAY_PRIVATE_SECRET")[0],
    secret_keys!("GATEWAY_PRIVATE_SECRET")[1],
];

const ROUTING: &[Key] = &[
    k(
        "default",
        "string",
        Unset("the first configured route"),
        "\"generic\"",
        "Route of messages no rule matches.",
    ),
    k(
        "rules",
        "array of tables",
        Value("[]"),
        "[{ to_prefix = \"+44\", route = \"generic\" }]",
        "Ordered rules, first match wins (`[[routing.rules]]` below).",
    ),
];

const ROUTING_RULE: &[Key] = &[
    k(
        "to_prefix",
        "string",
        Unset("any"),
        "\"+44\"",
        "Destination number prefix in E.164.",
    ),
    k(
        "to_country",
        "string",
        Unset("any"),
        "\"GB\"",
        "Destination country (ISO 3166).",
    ),
    k(
        "from",
        "string",
        Unset("any"),
        "\"+14155550100\"",
        "Sender, exactly as normalised.",
    ),
    k(
        "route",
        "string",
        Required,
        "\"generic\"",
        "The route to use (`generic`, `twilio`, a modem's name, `android:NAME`, `smpp:NAME`).",
    ),
];

const SMS: &[Key] = &[
    k(
        "national_languages",
        "array of `turkish` | `spanish` | `portuguese`",
        Value("[]"),
        "[\"turkish\"]",
        "TS 23.038 shift tables, used only when they save segments (old handsets may not render them).",
    ),
    k(
        "smart_encoding",
        "bool",
        Value("false"),
        "true",
        "Replace look-alikes (’ “ ” – — … NBSP) with GSM characters to stay 7-bit; the 202 says `smart_encoded`.",
    ),
    k(
        "wide_concat_reference",
        "bool",
        Value("false"),
        "true",
        "16-bit concatenation references (IEI 0x08).",
    ),
];

const CLASSIFIER: &[Key] = &[
    k(
        "mode",
        "`shadow` | `enforce`",
        Unset("shadow until `shadow_messages` or `shadow_days`, then enforce"),
        "\"enforce\"",
        "Whether verdicts hold messages or are only recorded.",
    ),
    k(
        "shadow_messages",
        "integer",
        Value("10000"),
        "500",
        "Messages a new deployment scores in shadow mode (when `mode` is unset).",
    ),
    k(
        "shadow_days",
        "integer",
        Value("7"),
        "1",
        "Days a new deployment stays in shadow mode at most (when `mode` is unset).",
    ),
    k(
        "allow",
        "array of strings",
        Value("[]"),
        "[\"+1800*\"]",
        "Senders never flagged: ids, or prefixes ending in `*`; wins over `block`.",
    ),
    k(
        "block",
        "array of strings",
        Value("[]"),
        "[\"SPAMCO\"]",
        "Senders always refused, same syntax.",
    ),
    k(
        "thresholds",
        "table `{ suspect?, spam? }` (floats)",
        Unset("the model's lines"),
        "{ suspect = 0.5, spam = 0.7 }",
        "Hold for review at or above `suspect`, block at or above `spam`.",
    ),
    k(
        "rate_limits",
        "table",
        Unset("see `[classifier.rate_limits]`"),
        "{}",
        "Rate limits in segments (below).",
    ),
    k(
        "tracking",
        "table",
        Unset("see `[classifier.tracking]`"),
        "{}",
        "Memory bounds of the feature tracker (below).",
    ),
    k(
        "calibration",
        "table",
        Unset("see `[classifier.calibration]`"),
        "{}",
        "How the suspect line follows the deployment (below).",
    ),
];

const CALIBRATION: &[Key] = &[
    k(
        "hold_budget",
        "float",
        Value("0.005"),
        "0.01",
        "Largest share of active senders held as suspect.",
    ),
    k(
        "warmup_senders",
        "integer",
        Value("1000"),
        "100",
        "Counted as active until the deployment has seen that many senders.",
    ),
    k(
        "learn_from_reviews",
        "bool",
        Value("true"),
        "false",
        "Review decisions move the suspect line at once.",
    ),
    k(
        "require_evidence",
        "bool",
        Value("true"),
        "false",
        "A hold or block needs behavioural evidence besides the score; off only to measure the rule.",
    ),
];

const RATE_LIMITS: &[Key] = &[
    k(
        "long_code",
        QUOTA,
        Value("{ per_second = 1.0, burst = 10, per_day = 2000 }"),
        "{ per_second = 2.0, burst = 20 }",
        "Ordinary long codes.",
    ),
    k(
        "toll_free",
        QUOTA,
        Value("{ per_second = 3.0, burst = 30 }"),
        "{ per_second = 5.0, burst = 50 }",
        "Toll-free numbers.",
    ),
    k(
        "short_code",
        QUOTA,
        Value("{ per_second = 100.0, burst = 200 }"),
        "{ per_second = 30.0, burst = 60 }",
        "Short codes.",
    ),
    k(
        "alphanumeric",
        QUOTA,
        Value("{ per_second = 10.0, burst = 100 }"),
        "{ per_second = 1.0, burst = 10 }",
        "Alphanumeric sender ids.",
    ),
    k(
        "android_sim",
        QUOTA,
        Value("{ per_second = 0.4, burst = 5, per_hour = 120 }"),
        "{ per_second = 0.2, burst = 3 }",
        "Android SIM relays.",
    ),
    k(
        "recipient",
        QUOTA,
        Value("{ per_second = 0.5, burst = 20 }"),
        "{ per_second = 1.0, burst = 10 }",
        "Per recipient, whoever sends.",
    ),
    k(
        "pair",
        QUOTA,
        Value("{ per_second = 0.5, burst = 10, per_day = 200 }"),
        "{ per_second = 1.0, burst = 10 }",
        "Per (sender, recipient) pair.",
    ),
    k(
        "route",
        QUOTA,
        Value("{ per_second = 50.0, burst = 500 }"),
        "{ per_second = 10.0, burst = 100 }",
        "Per outbound route: the only limit on the gateway's own traffic.",
    ),
];

const TRACKING: &[Key] = &[
    k(
        "max_senders",
        "integer",
        Value("1000000"),
        "10000",
        "Senders tracked at once (about 0.4 GB at most); least recently active evicted.",
    ),
    k(
        "idle_hours",
        "integer",
        Value("168"),
        "24",
        "A sender idle this long is forgotten.",
    ),
    k(
        "contact_graph_log2_words",
        "integer",
        Value("21"),
        "16",
        "log2 of the contact graph's 64-bit words per generation (16 MiB).",
    ),
    k(
        "pending_status_log2_slots",
        "integer",
        Value("18"),
        "12",
        "log2 of the slots remembering ids awaiting a delivery status, with when each left the gateway (6 MiB).",
    ),
    k(
        "block_contacts_log2_slots",
        "integer",
        Value("20"),
        "12",
        "log2 of the slots remembering which number of a block last wrote to a recipient (12 MiB).",
    ),
];

const MODEL: &[Key] = &[k(
    "path",
    "path",
    Unset("`gateway model promote`'s file in the data dir, else the bundled model"),
    "\"model.json\"",
    "A model file written by `gateway model train`.",
)];

const MODEMS: &[Key] = &[
    k(
        "name",
        "string",
        Required,
        "\"sim1\"",
        "Route and metrics name: lowercase letters, digits, `-`, `_`.",
    ),
    k(
        "number",
        "string",
        Required,
        "\"+14155550123\"",
        "The SIM's own number (E.164): the `to` of every inbound message.",
    ),
    k(
        "device",
        "path",
        Unset("none (give this or `tcp`)"),
        "\"/dev/ttyUSB2\"",
        "Serial device.",
    ),
    k("baud", "integer", Value("115200"), "9600", "Serial speed."),
    k(
        "tcp",
        "string",
        Unset("none (give this or `device`)"),
        "\"10.0.0.5:7000\"",
        "`host:port` of a TCP modem server (ser2net).",
    ),
    secret_keys!("GATEWAY_MODEM_<NAME>_PIN")[0],
    secret_keys!("GATEWAY_MODEM_<NAME>_PIN")[1],
    k(
        "smsc",
        "string",
        Unset("the SIM's"),
        "\"+447785016005\"",
        "SMSC number set with `AT+CSCA` and written into each PDU.",
    ),
    k(
        "storage",
        "string",
        Value("\"SM\""),
        "\"ME\"",
        "`AT+CPMS` storage: `SM` (SIM), `ME` (phone), `MT` (both).",
    ),
    k(
        "pace_per_minute",
        "integer",
        Value("10"),
        "20",
        "Most SMS parts sent per minute; 0 = no limit.",
    ),
    k(
        "status_reports",
        "bool",
        Value("true"),
        "false",
        "Ask for status reports (TP-SRR).",
    ),
    k(
        "cnmi",
        "string",
        Unset("try 2,1,0,2,0 then 2,1,0,1,0 then 1,1,0,0,0"),
        "\"2,1,0,2,0\"",
        "`AT+CNMI` parameters.",
    ),
    k(
        "command_timeout_ms",
        "integer",
        Value("5000"),
        "2000",
        "How long an ordinary command may take before the modem counts as hung.",
    ),
    k(
        "send_timeout_secs",
        "integer",
        Value("60"),
        "30",
        "How long one `AT+CMGS` may take.",
    ),
    k(
        "health_check_secs",
        "integer",
        Value("30"),
        "10",
        "Idle time after which the modem is probed with `AT`.",
    ),
    k(
        "reconnect_max_secs",
        "integer",
        Value("60"),
        "30",
        "Ceiling of the reconnect backoff.",
    ),
    k(
        "reassembly_timeout_secs",
        "integer",
        Value("600"),
        "60",
        "How long a multipart message waits for missing parts.",
    ),
    k(
        "incomplete",
        "`deliver` | `drop`",
        Value("\"deliver\""),
        "\"drop\"",
        "What happens to a multipart message whose parts stop coming.",
    ),
];

const TWILIO: &[Key] = &[
    k(
        "account_sid",
        "string",
        Required,
        "\"AC0123\"",
        "Account SID: the REST API user and path.",
    ),
    k(
        "api_base",
        "string",
        Value("\"https://api.twilio.com\""),
        "\"http://127.0.0.1:9\"",
        "REST API base URL (tests point it at a mock).",
    ),
    k(
        "public_url",
        "string",
        Required,
        "\"https://sms.example.com\"",
        "Base URL Twilio calls the gateway at, as Twilio sees it (signatures are over it).",
    ),
    k(
        "from",
        "string",
        Unset("none"),
        "\"+14155550100\"",
        "Sender used when a message names none.",
    ),
    k(
        "messaging_service_sid",
        "string",
        Unset("none"),
        "\"MG0123\"",
        "Messaging Service SID, sent instead of `From` when no sender is known.",
    ),
    k(
        "status_callback",
        "bool",
        Value("true"),
        "false",
        "Ask for status callbacks.",
    ),
    secret_keys!("GATEWAY_TWILIO_AUTH_TOKEN")[0],
    secret_keys!("GATEWAY_TWILIO_AUTH_TOKEN")[1],
];

const TELNYX: &[Key] = &[
    k(
        "api_base",
        "string",
        Value("\"https://api.telnyx.com\""),
        "\"http://127.0.0.1:9\"",
        "REST API base URL (tests point it at a mock).",
    ),
    k(
        "public_key",
        "string",
        Required,
        "\"base64…\"",
        "The account's webhook public key (base64 Ed25519; public, so it may sit in the file).",
    ),
    k(
        "from",
        "string",
        Unset("none"),
        "\"+14155550100\"",
        "Sender used when a message names none.",
    ),
    k(
        "messaging_profile_id",
        "string",
        Unset("none"),
        "\"4001\"",
        "Messaging profile id sent with each message.",
    ),
    k(
        "webhook_url",
        "string",
        Unset("the messaging profile's"),
        "\"https://sms.example.com/webhooks/telnyx\"",
        "Where Telnyx sends delivery-status webhooks.",
    ),
    secret_keys!("GATEWAY_TELNYX_API_KEY")[0],
    secret_keys!("GATEWAY_TELNYX_API_KEY")[1],
];

const ANDROID: &[Key] = &[
    k(
        "name",
        "string",
        Required,
        "\"pixel\"",
        "Route `android:<name>`, webhooks at `/webhooks/android/<name>`.",
    ),
    k(
        "url",
        "string",
        Required,
        "\"http://192.168.1.20:8080\"",
        "The phone's local API.",
    ),
    k(
        "username",
        "string",
        Required,
        "\"sms\"",
        "Basic-auth user shown in the app.",
    ),
    secret_named(
        "password",
        "Basic-auth password.",
        "`GATEWAY_ANDROID_<NAME>_PASSWORD`",
    ),
    secret_named(
        "signing_key",
        "Webhook signing key from the app's settings.",
        "`GATEWAY_ANDROID_<NAME>_SIGNING_KEY`",
    ),
    secret_named(
        "passphrase",
        "End-to-end encryption passphrase; none means no encryption.",
        "`GATEWAY_ANDROID_<NAME>_PASSPHRASE`",
    ),
    k(
        "webhook_url",
        "string",
        Unset("no registration"),
        "\"http://192.168.1.5:8080/webhooks/android/pixel\"",
        "This gateway's webhook URL as the phone reaches it; registered with the phone at start.",
    ),
    k(
        "from",
        "string",
        Unset("none"),
        "\"+14155550123\"",
        "The phone's own number.",
    ),
    k(
        "sim_number",
        "integer",
        Unset("the app's default"),
        "2",
        "SIM slot to send from (1-based).",
    ),
    k(
        "ttl_secs",
        "integer",
        Unset("the app's"),
        "3600",
        "Seconds the phone keeps trying a message.",
    ),
    k(
        "with_delivery_report",
        "bool",
        Value("true"),
        "false",
        "Ask for delivery reports.",
    ),
    k(
        "kdf_iterations",
        "integer",
        Value("75000"),
        "100000",
        "PBKDF2 iterations for encryption (the app's default).",
    ),
    k(
        "segments_per_minute",
        "integer",
        Value("24"),
        "12",
        "Sustained sending rate.",
    ),
    k(
        "burst",
        "integer",
        Value("5"),
        "2",
        "Segments that may go out back to back.",
    ),
    k(
        "per_hour",
        "integer",
        Value("120"),
        "60",
        "Segments per rolling hour.",
    ),
    k(
        "max_pacing_wait_ms",
        "integer",
        Value("15000"),
        "5000",
        "Longest a send waits for its pacing slot before it is rescheduled.",
    ),
];

const RBM: &[Key] = &[
    k(
        "agent_id",
        "string",
        Required,
        "\"my-agent@rbm.goog\"",
        "The RBM agent id.",
    ),
    k(
        "from",
        "string",
        Required,
        "\"+14155550100\"",
        "The business's number or sender id: sender of outbound RCS, `to` of inbound.",
    ),
    k(
        "api_base",
        "string",
        Value("\"https://rcsbusinessmessaging.googleapis.com\""),
        "\"http://127.0.0.1:9\"",
        "REST API base URL (tests point it at a mock).",
    ),
    k(
        "token_uri",
        "string",
        Unset("the key file's `token_uri`, else Google's"),
        "\"https://oauth2.googleapis.com/token\"",
        "OAuth2 token endpoint.",
    ),
    secret_named(
        "service_account",
        "The service-account key (JSON; the variable holds the JSON itself).",
        "`GATEWAY_RBM_SERVICE_ACCOUNT`",
    ),
    secret_named(
        "client_token",
        "The webhook client token given to Google at setup.",
        "`GATEWAY_RBM_CLIENT_TOKEN`",
    ),
    k(
        "capability_ttl_secs",
        "integer",
        Value("3600"),
        "600",
        "How long a capability answer is trusted.",
    ),
    k(
        "capability_timeout_ms",
        "integer",
        Value("3000"),
        "1000",
        "How long a capability check may take before the message goes SMS.",
    ),
    k(
        "fallback_secs",
        "integer",
        Value("60"),
        "30",
        "`auto` messages not delivered within this are revoked and sent as SMS.",
    ),
    k(
        "sms_segment_budget",
        "integer",
        Value("4"),
        "2",
        "Most SMS segments a rendering of rich content may take.",
    ),
    k(
        "sms_route",
        "string",
        Unset("the routing rules"),
        "\"twilio\"",
        "SMS route of fallbacks.",
    ),
    k(
        "ttl_secs",
        "integer",
        Unset("none"),
        "86400",
        "RBM `ttl` of every agent message (a message's `ttl_seconds` wins if shorter).",
    ),
    k(
        "suggestion_ttl_secs",
        "integer",
        Value("86400"),
        "3600",
        "How long an SMS rendering's numbered suggestions stay open.",
    ),
];

const SMPP: &[Key] = &[
    k(
        "client",
        "array of tables",
        Value("[]"),
        "[]",
        "SMSCs to bind to (`[[smpp.client]]` below).",
    ),
    k(
        "server",
        "table",
        Unset("off"),
        "{ listen = \"127.0.0.1:2775\" }",
        "The SMPP server for SMS applications (`[smpp.server]` below).",
    ),
];

const SMPP_CLIENT: &[Key] = &[
    k(
        "name",
        "string",
        Required,
        "\"acme\"",
        "The route is `smpp:<name>`.",
    ),
    k(
        "host",
        "string",
        Required,
        "\"smsc.example:2775\"",
        "`host:port` of the SMSC.",
    ),
    k(
        "system_id",
        "string",
        Required,
        "\"gw\"",
        "`system_id` to bind with (at most 15 characters).",
    ),
    secret_keys!("GATEWAY_SMPP_<NAME>_PASSWORD")[0],
    secret_keys!("GATEWAY_SMPP_<NAME>_PASSWORD")[1],
    k(
        "system_type",
        "string",
        Value("\"\""),
        "\"VMA\"",
        "`system_type` of the bind.",
    ),
    k(
        "bind",
        "`transmitter` | `receiver` | `transceiver`",
        Value("\"transceiver\""),
        "\"transmitter\"",
        "Bind type.",
    ),
    k(
        "version",
        "`\"3.4\"` | `\"5.0\"`",
        Value("\"3.4\""),
        "\"5.0\"",
        "SMPP version.",
    ),
    k(
        "binds",
        "integer",
        Value("1"),
        "4",
        "Parallel binds; sends are spread over the binds that are up.",
    ),
    k(
        "window",
        "integer",
        Value("10"),
        "50",
        "Outstanding `submit_sm` per bind.",
    ),
    k(
        "enquire_link_secs",
        "integer",
        Value("30"),
        "60",
        "Idle time before an `enquire_link`.",
    ),
    k(
        "response_timeout_secs",
        "integer",
        Value("10"),
        "20",
        "How long a response may take before the request counts as failed.",
    ),
    k(
        "throughput",
        "float",
        Value("0.0"),
        "25.0",
        "Most `submit_sm` per second per bind; 0 = no limit of our own.",
    ),
    k(
        "concatenation",
        "`udh` | `sar` | `payload`",
        Value("\"udh\""),
        "\"sar\"",
        "How long messages are split.",
    ),
    k("tls", "bool", Value("false"), "true", "Connect with TLS."),
    k(
        "tls_ca",
        "path",
        Unset("the web PKI roots"),
        "\"/etc/gateway/smsc-ca.pem\"",
        "PEM CA certificates to trust instead (private CA, self-signed).",
    ),
    k(
        "tls_server_name",
        "string",
        Unset("the host part"),
        "\"smsc.example\"",
        "The name the SMSC's certificate must carry.",
    ),
    k(
        "from",
        "string",
        Unset("none"),
        "\"+14155550100\"",
        "Sender used when a message names none.",
    ),
    k(
        "registered_delivery",
        "bool",
        Value("true"),
        "false",
        "Ask for delivery receipts.",
    ),
    k(
        "number",
        "string",
        Unset("none"),
        "\"+14155550100\"",
        "`to` of inbound messages without a usable `destination_addr`.",
    ),
    k(
        "reconnect_max_secs",
        "integer",
        Value("60"),
        "30",
        "Ceiling of the reconnect backoff.",
    ),
    k(
        "reassembly_timeout_secs",
        "integer",
        Value("600"),
        "60",
        "How long an inbound multipart message waits for missing parts.",
    ),
];

const SMPP_SERVER: &[Key] = &[
    k(
        "listen",
        "address",
        Required,
        "\"127.0.0.1:2775\"",
        "Address to listen on.",
    ),
    k(
        "window",
        "integer",
        Value("10"),
        "50",
        "Outstanding `submit_sm` handled at once per connection (more wait in the socket).",
    ),
    k(
        "throughput",
        "float",
        Value("50.0"),
        "10.0",
        "Messages per second per client unless it has its own; over it `ESME_RTHROTTLED`.",
    ),
    k(
        "max_connections",
        "integer",
        Value("256"),
        "16",
        "Connections at once; more are closed right after accept.",
    ),
    k(
        "system_id",
        "string",
        Value("\"gateway\""),
        "\"gw\"",
        "`system_id` the gateway answers binds with.",
    ),
    k(
        "enquire_link_secs",
        "integer",
        Value("30"),
        "60",
        "Idle time after which the server sends `enquire_link`.",
    ),
    k(
        "response_timeout_secs",
        "integer",
        Value("10"),
        "20",
        "How long a client may take to answer (also per `deliver_sm`).",
    ),
    k(
        "reassembly_timeout_secs",
        "integer",
        Value("600"),
        "60",
        "How long a multipart `submit_sm` waits for its missing parts.",
    ),
    k(
        "tls_cert",
        "path",
        Unset("plain TCP"),
        "\"/etc/gateway/smpp.pem\"",
        "PEM chain, leaf first; with `tls_key` the listener speaks TLS only.",
    ),
    k(
        "tls_key",
        "path",
        Unset("plain TCP"),
        "\"/etc/gateway/smpp.key\"",
        "PEM private key of `tls_cert`.",
    ),
];

const PRIVACY: &[Key] = &[
    k(
        "keep_after_delivery_secs",
        "integer",
        Value("0"),
        "3600",
        "Sealed body kept this long after the next hop accepted; 0 erases it in that commit.",
    ),
    k(
        "no_content_at_rest",
        "array of strings",
        Value("[]"),
        "[\"DE\"]",
        "ISO regions of numbers whose messages never have a body on disk.",
    ),
    k(
        "transit_deadline_secs",
        "integer",
        Value("30"),
        "10",
        "Such a message fails `content_not_retained` if not handed over by then.",
    ),
    k(
        "transit_only",
        "bool",
        Value("false"),
        "true",
        "No message body is ever written to disk on this node.",
    ),
    k(
        "pseudonymise_after_secs",
        "integer",
        Value("604800"),
        "86400",
        "Counterparty numbers in stored metadata become keyed hashes after this.",
    ),
];

const TENANTS: &[Key] = &[
    k(
        "name",
        "string",
        Required,
        "\"acme\"",
        "1-32 of `a-z 0-9 _ -`; keys are created for it (`--tenant NAME`).",
    ),
    k(
        "senders",
        "array of strings",
        Value("[]"),
        "[\"+12025550100\", \"ACME\"]",
        "`from` values it may use (exact or `*` prefixes); the first exact one is its default.",
    ),
    k(
        "addresses",
        "array of strings",
        Value("[]"),
        "[\"+1202555*\"]",
        "Internal recipients it owns; the most specific pattern wins.",
    ),
    k(
        "webhook_url",
        "string",
        Unset("its inbound waits in the store"),
        "\"http://127.0.0.1:9000/inbound\"",
        "Its private side.",
    ),
    k(
        "service_public_key",
        "string",
        Unset("none"),
        "\"base64…\"",
        "X25519 public key (base64) for its recipients without an identity.",
    ),
    k(
        "max_messages_per_day",
        "integer",
        Unset("no quota"),
        "100000",
        "Accepted (202) per UTC day; beyond, 429 `quota_exceeded`.",
    ),
    k(
        "smpp_accounts",
        "array of strings",
        Value("[]"),
        "[\"acme-smpp\"]",
        "SMPP server `system_id`s that send as this tenant.",
    ),
    k(
        SECRET_ENV,
        "string",
        Unset("none: each tenant names its own"),
        "\"ACME_WEBHOOK_SECRET\"",
        "Environment variable holding its webhook's HMAC secret.",
    ),
    secret_keys!("")[1],
];

const REVIEW: &[Key] = &[
    k(
        "undo_window_secs",
        "integer",
        Value("30"),
        "120",
        "A drop (drop, mark spam, block) can be undone this long (at most 86400); the body is erased only after it.",
    ),
    k(
        "notify_url",
        "string",
        Unset("no hold webhook"),
        "\"https://ops.example/holds\"",
        "Every new hold and block (enforce mode) is POSTed here, signed: sender, verdict, score, reason codes, message id; never text.",
    ),
    k(
        "notify_secret_env",
        "string",
        Unset("`GATEWAY_REVIEW_NOTIFY_SECRET`"),
        "\"HOLDS_SECRET\"",
        "Environment variable holding the hold webhook's signing secret (required with `notify_url`).",
    ),
    k(
        "notify_secret_file",
        "path",
        Unset("none"),
        "\"/etc/gateway/holds.secret\"",
        "File holding the hold webhook's signing secret.",
    ),
];

const ADMIN: &[Key] = &[
    k(
        "enabled",
        "bool",
        Value("true"),
        "false",
        "Whether the admin listener runs.",
    ),
    k(
        "listen",
        "address",
        Value("\"127.0.0.1:8081\""),
        "\"127.0.0.1:9091\"",
        "`/metrics`, detailed `/healthz`, operator endpoints, the console; keep it private.",
    ),
];

/// Every section, in the order the reference prints them.
pub const SECTIONS: &[Section] = &[
    Section {
        path: "",
        kind: Kind::Top,
        doc: "Top-level keys.",
        base: "",
        keys: TOP,
    },
    Section {
        path: "log",
        kind: Kind::Table,
        doc: "Logging.",
        base: "",
        keys: LOG,
    },
    Section {
        path: "http",
        kind: Kind::Table,
        doc: "The API listener's limits (the admin listener shares them).",
        base: "",
        keys: HTTP,
    },
    Section {
        path: "store",
        kind: Kind::Table,
        doc: "The database: durability, group commit, retention (see Durability and privacy).",
        base: "",
        keys: STORE,
    },
    Section {
        path: "delivery",
        kind: Kind::Table,
        doc: "The delivery queue and its retries.",
        base: "",
        keys: DELIVERY,
    },
    Section {
        path: "callbacks",
        kind: Kind::Table,
        doc: "Status callbacks to API clients; on when the secret is set.",
        base: "",
        keys: CALLBACKS,
    },
    Section {
        path: "generic",
        kind: Kind::Optional,
        doc: "The generic HTTP SMSC route; absent means no such route.",
        base: "url = \"https://smsc.example/send\"",
        keys: GENERIC,
    },
    Section {
        path: "private_side",
        kind: Kind::Table,
        doc: "Where inbound envelopes go (with `[[tenants]]`, each tenant's own webhook instead).",
        base: "",
        keys: PRIVATE_SIDE,
    },
    Section {
        path: "routing",
        kind: Kind::Table,
        doc: "Which route sends which outbound message (see Routing rules).",
        base: "",
        keys: ROUTING,
    },
    Section {
        path: "routing.rules",
        kind: Kind::Array,
        doc: "One routing rule; every condition given must match.",
        base: "route = \"generic\"",
        keys: ROUTING_RULE,
    },
    Section {
        path: "sms",
        kind: Kind::Table,
        doc: "How text becomes SMS, for every route and the 202's figures.",
        base: "",
        keys: SMS,
    },
    Section {
        path: "classifier",
        kind: Kind::Table,
        doc: "The spam gate (see Spam defense and review).",
        base: "",
        keys: CLASSIFIER,
    },
    Section {
        path: "classifier.calibration",
        kind: Kind::Table,
        doc: "How the suspect line follows the deployment.",
        base: "",
        keys: CALIBRATION,
    },
    Section {
        path: "classifier.rate_limits",
        kind: Kind::Table,
        doc: "Token buckets in segments: `per_second` and `burst`, optional `per_hour` / `per_day` caps.",
        base: "",
        keys: RATE_LIMITS,
    },
    Section {
        path: "classifier.tracking",
        kind: Kind::Table,
        doc: "Memory bounds of the feature tracker.",
        base: "",
        keys: TRACKING,
    },
    Section {
        path: "model",
        kind: Kind::Table,
        doc: "Which spam model is loaded.",
        base: "",
        keys: MODEL,
    },
    Section {
        path: "review",
        kind: Kind::Table,
        doc: "The review queue's operator actions (console and CLI).",
        base: "",
        keys: REVIEW,
    },
    Section {
        path: "modems",
        kind: Kind::Array,
        doc: "GSM modems, each a route named after it (see GSM modems).",
        base: "name = \"sim1\"\nnumber = \"+14155550123\"\ndevice = \"/dev/ttyUSB2\"",
        keys: MODEMS,
    },
    Section {
        path: "twilio",
        kind: Kind::Optional,
        doc: "Twilio Programmable Messaging; absent means no Twilio route or webhook.",
        base: "account_sid = \"AC0123\"\npublic_url = \"https://sms.example.com\"",
        keys: TWILIO,
    },
    Section {
        path: "telnyx",
        kind: Kind::Optional,
        doc: "Telnyx Messaging; absent means no Telnyx route or webhook.",
        base: "public_key = \"base64…\"",
        keys: TELNYX,
    },
    Section {
        path: "android",
        kind: Kind::Array,
        doc: "Phones running SMS Gateway for Android, each a route `android:<name>`.",
        base: "name = \"pixel\"\nurl = \"http://192.168.1.20:8080\"\nusername = \"sms\"",
        keys: ANDROID,
    },
    Section {
        path: "rbm",
        kind: Kind::Optional,
        doc: "Google RCS Business Messaging; absent means no RCS (see RCS and interworking).",
        base: "agent_id = \"my-agent@rbm.goog\"\nfrom = \"+14155550100\"",
        keys: RBM,
    },
    Section {
        path: "smpp",
        kind: Kind::Table,
        doc: "SMPP client binds and server (see SMPP).",
        base: "",
        keys: SMPP,
    },
    Section {
        path: "smpp.client",
        kind: Kind::Array,
        doc: "One SMSC bind, a route `smpp:<name>`.",
        base: "name = \"acme\"\nhost = \"smsc.example:2775\"\nsystem_id = \"gw\"",
        keys: SMPP_CLIENT,
    },
    Section {
        path: "smpp.server",
        kind: Kind::Optional,
        doc: "The SMPP server for SMS applications; absent means off.",
        base: "listen = \"127.0.0.1:2775\"",
        keys: SMPP_SERVER,
    },
    Section {
        path: "privacy",
        kind: Kind::Table,
        doc: "What is kept, and for how long (see What is stored, where, for how long).",
        base: "",
        keys: PRIVACY,
    },
    Section {
        path: "tenants",
        kind: Kind::Array,
        doc: "Private-side applications; absent means one implicit tenant owns everything.",
        base: "name = \"acme\"",
        keys: TENANTS,
    },
    Section {
        path: "admin",
        kind: Kind::Table,
        doc: "The admin plane's listener (see Tenants, keys and the admin plane).",
        base: "",
        keys: ADMIN,
    },
];

impl Section {
    /// The header line as written in the file (empty at the top level).
    pub fn header(&self) -> String {
        match self.kind {
            Kind::Top => String::new(),
            Kind::Table | Kind::Optional => format!("[{}]", self.path),
            Kind::Array => format!("[[{}]]", self.path),
        }
    }
}

fn default_words(d: KeyDefault) -> String {
    match d {
        Value(v) => format!("`{v}`"),
        Unset(w) => format!("unset: {w}"),
        Required => "required".into(),
    }
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The reference as Markdown (what README.md carries between its markers).
pub fn markdown() -> String {
    let mut out = String::from(
        "Generated by `gateway config reference` from the configuration types; \
         a test fails when this copy is stale.\n",
    );
    for s in SECTIONS {
        let title = match s.kind {
            Kind::Top => "Top level".to_string(),
            _ => format!("`{}`", s.header()),
        };
        out.push_str(&format!("\n#### {title}\n\n{}\n\n", s.doc));
        out.push_str("| key | type | default | what |\n|---|---|---|---|\n");
        for key in s.keys {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                key.name,
                cell(key.ty),
                cell(&default_words(key.default)),
                cell(key.doc)
            ));
        }
    }
    out
}

/// The reference as JSON: sections with their keys.
pub fn json() -> serde_json::Value {
    let sections: Vec<serde_json::Value> = SECTIONS
        .iter()
        .map(|s| {
            let keys: Vec<serde_json::Value> = s
                .keys
                .iter()
                .map(|key| {
                    let (default, required, unset) = match key.default {
                        Value(v) => (Some(v), false, None),
                        Unset(w) => (None, false, Some(w)),
                        Required => (None, true, None),
                    };
                    serde_json::json!({
                        "key": key.name,
                        "type": key.ty,
                        "default": default,
                        "required": required,
                        "when_unset": unset,
                        "example": key.example,
                        "doc": key.doc,
                    })
                })
                .collect();
            serde_json::json!({
                "section": s.path,
                "header": s.header(),
                "kind": format!("{:?}", s.kind).to_lowercase(),
                "doc": s.doc,
                "keys": keys,
            })
        })
        .collect();
    serde_json::json!({ "sections": sections })
}

/// README.md's markers around the generated reference.
pub const README_START: &str =
    "<!-- config-reference:start (generated by `gateway config reference`) -->";
/// The end marker.
pub const README_END: &str = "<!-- config-reference:end -->";

#[cfg(test)]
mod tests;
