//! Entry points for the cargo-fuzz targets in `fuzz/` (outside the
//! workspace). They panic only when an invariant breaks.

use crate::config::Config;

/// Parses `data` as a config file and validates it: any input gets a value
/// or an error, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::from_toml(text) {
        let _ = cfg.validate();
        // Building the routing rules from a parsed config must not panic either.
        let mut routes = crate::routes::Routes::default();
        let _ = routes.set_rules(&cfg.routing);
    }
}
