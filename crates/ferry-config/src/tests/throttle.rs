//! `[throttle]` and the apps' own `throttle = { … }` limits: off by default with Dynamics 365's
//! numbers, every setting, an app's keys falling back to the section's, environment overrides,
//! and errors that name the key and the layer.

use std::time::Duration;

use super::{env, load_text};
use crate::{Overrides, load};
use ferry_domain::{ThrottleLimits, ThrottleSettings};

fn err_text(text: &str) -> String {
    load_text(text, &[]).expect_err("config should be rejected").to_string()
}

fn env_err(pairs: &[(&str, &str)]) -> String {
    load(None, &env(pairs), &Overrides::default()).expect_err("env should be rejected").to_string()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
}

fn limits(requests: u32, window_secs: u64, concurrent: u32) -> ThrottleLimits {
    ThrottleLimits { requests, window: Duration::from_secs(window_secs), concurrent }
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

/// An `[[apps]]` entry with `extra` lines.
fn app(client_id: &str, extra: &str) -> String {
    format!("[[apps]]\nclient_id = \"{client_id}\"\nsecret = \"{HASH}\"\n{extra}\n")
}

#[test]
fn off_by_default_with_the_dynamics_limits() {
    let config = load(None, &[], &Overrides::default()).unwrap();
    assert_eq!(config.throttle, ThrottleSettings::default());
    assert!(!config.throttle.enabled);
    assert_eq!(config.throttle.limits, limits(6000, 300, 52));
    assert!(config.throttle.app_limits.is_empty());
    assert_contains(&config.redacted_summary(), "throttle: off");
}

#[test]
fn every_setting_and_apps_with_limits_of_their_own() {
    let text = format!(
        "[throttle]\nenabled = true\nrequests = 100\nwindow_secs = 60\nconcurrent = 4\n{}{}{}",
        app("bulk", "throttle = { requests = 5000, concurrent = 16 }"),
        app("plain", ""),
        app("slow", "throttle = { window_secs = 600 }"),
    );
    let config = load_text(&text, &[]).unwrap();
    let throttle = &config.throttle;
    assert!(throttle.enabled);
    assert_eq!(throttle.limits, limits(100, 60, 4));
    let expected = vec![("bulk".to_owned(), limits(5000, 60, 16)), ("slow".to_owned(), limits(100, 600, 4))];
    assert_eq!(throttle.app_limits, expected, "keys an app leaves out are the section's");
    assert_eq!(throttle.limits_for("plain"), limits(100, 60, 4));
    assert_contains(&config.redacted_summary(), "throttle: 100 requests per 60 s, 4 at once (2 apps with their own");
}

#[test]
fn an_app_may_have_limits_while_throttling_is_off() {
    let config = load_text(&app("bulk", "throttle = { requests = 7 }"), &[]).unwrap();
    assert!(!config.throttle.enabled);
    assert_eq!(config.throttle.limits_for("bulk"), limits(7, 300, 52));
}

#[test]
fn environment_overrides_the_file() {
    let pairs = [("FERRY_THROTTLE__ENABLED", "true"), ("FERRY_THROTTLE__REQUESTS", "10")];
    let config = load_text("[throttle]\nrequests = 20\nconcurrent = 3\n", &pairs).unwrap();
    assert!(config.throttle.enabled);
    assert_eq!(config.throttle.limits, limits(10, 300, 3), "untouched keys keep file values");
    let config = load(None, &env(&[("FERRY_THROTTLE__WINDOW_SECS", "1")]), &Overrides::default()).unwrap();
    assert_eq!(config.throttle.limits, limits(6000, 1, 52));
}

#[test]
fn bad_values_name_key_and_layer() {
    let err = err_text("[throttle]\nenabled = true\nrequests = 0\n");
    assert_contains(&err, "throttle.requests: 0 is outside 1..=1000000");
    assert_contains(&err, "at line 3");
    let cases = [
        ("requests = 1000001", "throttle.requests: 1000001 is outside 1..=1000000"),
        ("window_secs = 0", "throttle.window_secs: 0 is outside 1..=86400"),
        ("window_secs = 86401", "throttle.window_secs: 86401 is outside 1..=86400"),
        ("concurrent = 0", "throttle.concurrent: 0 is outside 1..=100000"),
        ("concurrent = -1", "throttle.concurrent: -1 is negative"),
        ("enabled = \"yes\"", "throttle.enabled: expected a boolean"),
        ("window = 300", "unknown key `throttle.window` (expected one of: enabled, requests, window_secs, concurrent)"),
    ];
    for (line, expected) in cases {
        assert_contains(&err_text(&format!("[throttle]\n{line}\n")), expected);
    }

    let err = err_text(&format!("{}{}", app("a", ""), app("b", "throttle = { concurrent = 0 }")));
    assert_contains(&err, "apps[1].throttle.concurrent: 0 is outside 1..=100000");
    assert_contains(&err, "at line 8");
    let err = err_text(&app("a", "throttle = { enabled = false }"));
    assert_contains(
        &err,
        "unknown key `apps[0].throttle.enabled` (expected one of: requests, window_secs, concurrent)",
    );

    assert_eq!(env_err(&[("FERRY_THROTTLE__WINDOW_SECS", "0")]), "FERRY_THROTTLE__WINDOW_SECS: 0 is outside 1..=86400");
    assert_eq!(
        env_err(&[("FERRY_THROTTLE__REQUESTS", "lots")]),
        "FERRY_THROTTLE__REQUESTS: 'lots' is not a whole number"
    );
    assert_contains(&env_err(&[("FERRY_THROTTLE_ENABLED", "true")]), "e.g. FERRY_THROTTLE__ENABLED");
}
