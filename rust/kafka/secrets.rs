//! Secrets in client settings (SASL passwords, key passwords, OAuth secrets, inline private
//! keys) never leave this process in text: not in `Debug` output, error messages, health
//! records or log records (decision 50).
//!
//! Two layers. Settings are masked by key wherever this crate prints them. And every secret
//! value a client was configured with is remembered here, so that text this crate does not
//! write itself (librdkafka's log lines and error strings, handler exceptions written to the
//! DLQ) can be scrubbed at the few places where text leaves: the log forwarder, the client
//! health records and `_core.redact`.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a masked value is shown as.
pub const MASK: &str = "***";

/// Whether a librdkafka property holds a secret. Matches librdkafka's own sensitive
/// properties (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`,
/// `sasl.oauthbearer.client.secret`, `ssl.key.pem`, `ssl_key`), every `sasl.oauthbearer.*`
/// setting (its `config` carries tokens and extensions), and any other key naming a password,
/// secret, token, credential or JAAS configuration.
pub fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "jaas"]
        .iter()
        .any(|word| key.contains(word))
        || key.starts_with("sasl.oauthbearer.")
        || key.ends_with("key.pem")
        || key == "ssl_key"
}

/// `value`, or the mask when `key` is sensitive.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_sensitive(key) {
        MASK
    } else {
        value
    }
}

/// `(key, value)` pairs for `Debug` output, sensitive values masked.
pub struct MaskedPairs<'a>(pub &'a [(String, String)]);

impl std::fmt::Debug for MaskedPairs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, shown(k, v))))
            .finish()
    }
}

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Values shorter than this are not scrubbed from free text: every "p" of every log line
/// would go, and a secret that short hides nothing anyway. They are still masked by key.
pub const MIN_SCRUBBED_LEN: usize = 6;

/// Remembers the secret values among `pairs` (called for every client's settings), so that
/// [`redact`] hides them wherever they might turn up.
pub fn remember<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (key, value) in pairs {
        if value.chars().count() < MIN_SCRUBBED_LEN || !is_sensitive(key) {
            continue;
        }
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        if known.iter().any(|v| v == value) {
            continue;
        }
        drop(known);
        let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|v| v == value) {
            // Longest first: a secret that contains another is hidden whole.
            known.push(value.to_owned());
            known.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }
}

/// `text` with every remembered secret replaced by the mask. Borrows when there is nothing to
/// hide (the common case: one read lock and a substring search per secret).
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|secret| text.contains(secret.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_properties_are_recognised_by_key() {
        for key in [
            "sasl.password",
            "SASL.PASSWORD",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.token.endpoint.url",
            "ssl.key.pem",
            "ssl_key",
            "sasl.jaas.config",
        ] {
            assert!(is_sensitive(key), "{key}");
        }
        for key in [
            "sasl.username",
            "sasl.mechanism",
            "security.protocol",
            "ssl.ca.location",
            "ssl.key.location",
            "ssl.certificate.pem",
            "bootstrap.servers",
        ] {
            assert!(!is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn debug_output_masks_secret_values_only() {
        let pairs = vec![
            ("sasl.username".to_string(), "eventbus".to_string()),
            ("sasl.password".to_string(), "hunter2-debug".to_string()),
        ];
        let text = format!("{:?}", MaskedPairs(&pairs));
        assert!(text.contains("eventbus"), "{text}");
        assert!(!text.contains("hunter2-debug"), "{text}");
        assert!(text.contains(MASK), "{text}");
    }

    #[test]
    fn remembered_secrets_are_scrubbed_from_any_text() {
        remember([
            ("sasl.password", "pw-0c7e1d"),
            ("sasl.username", "not-a-secret-user"),
            ("ssl.key.password", ""),
            ("ssl.keystore.password", "p"),
        ]);
        let text = "SASL authentication error for pw-0c7e1d (user not-a-secret-user)";
        let clean = redact(text);
        assert_eq!(
            clean,
            "SASL authentication error for *** (user not-a-secret-user)"
        );
        assert!(matches!(redact("nothing to hide"), Cow::Borrowed(_)));
        assert_eq!(redact("a p is not scrubbed"), "a p is not scrubbed");
    }
}
