//! How long a workspace keeps what, and which client details it stores: the
//! [`RetentionPolicy`] of its [`super::Configuration`] (admins change it through the
//! configuration). [`crate::Crm::apply_retention`] enforces it.

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldIssue};

/// The longest period any setting accepts: 100 years.
pub const MAX_DAYS: i64 = 36_500;

/// Which client details (address, user agent) are stored with sessions, their audit entries,
/// the access log and security events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientDetails {
    /// Stored as seen; a session's address is truncated (IPv4 to /24, IPv6 to /48) once the
    /// session has ended, and audit entries of sessions only ever hold the truncated form.
    #[default]
    Stored,
    /// Only the truncated address is ever stored; no user agent.
    Truncated,
    /// Neither addresses nor user agents are stored.
    None,
}

impl ClientDetails {
    /// The address to store under this policy.
    pub fn address(self, address: Option<&str>) -> Option<String> {
        match self {
            ClientDetails::Stored => address.map(str::to_owned),
            ClientDetails::Truncated => address.map(truncate_address),
            ClientDetails::None => None,
        }
    }

    /// The user agent to store under this policy.
    pub fn user_agent(self, user_agent: Option<&str>) -> Option<String> {
        match self {
            ClientDetails::Stored => user_agent.map(str::to_owned),
            ClientDetails::Truncated | ClientDetails::None => None,
        }
    }
}

/// An address cut to its network: IPv4 to /24 (`203.0.113.0`), IPv6 to /48 (`2001:db8:1::`).
/// Something that is not an address becomes `"unknown"` (it might be personal data).
pub fn truncate_address(address: &str) -> String {
    match address.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            std::net::Ipv4Addr::new(a, b, c, 0).to_string()
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
        Err(_) => "unknown".into(),
    }
}

/// How long a workspace keeps what (days), and what client details it stores. Absent fields
/// take their defaults; an update through the configuration replaces the whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Soft-deleted records are purged this long after their deletion (default 30).
    pub trash_days: i64,
    /// Audit entries are removed this long after they were made; `null`: kept forever (the
    /// default).
    pub audit_days: Option<i64>,
    /// Access-log entries are removed after this long (default 365).
    pub access_log_days: i64,
    /// Security events are removed after this long (default 365).
    pub security_event_days: i64,
    /// Ended sessions (revoked or expired) and used or expired password-reset tokens are
    /// removed this long after they ended (default 30).
    pub session_days: i64,
    /// Dead webhook deliveries are to be removed after this long (default 30). The engine
    /// has no webhooks yet: the setting is validated like the others (1..=[`MAX_DAYS`]) and
    /// kept, and applies once webhooks land; until then [`crate::Crm::apply_retention`]
    /// prunes nothing under it (its report and summary entry have no webhook count).
    pub webhook_delivery_days: i64,
    /// Which client details are stored (default: stored, truncated after the session ends).
    pub client_details: ClientDetails,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            trash_days: 30,
            audit_days: None,
            access_log_days: 365,
            security_event_days: 365,
            session_days: 30,
            webhook_delivery_days: 30,
            client_details: ClientDetails::Stored,
        }
    }
}

impl RetentionPolicy {
    /// Every setting outside 1..=[`MAX_DAYS`], as field errors under `retention.`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        let mut check = |field: &str, v: i64| {
            if !(1..=MAX_DAYS).contains(&v) {
                out.push(FieldError::with_message(
                    format!("retention.{field}"),
                    FieldIssue::OutOfRange,
                    "Must be a number of days from 1 to 36500.",
                ));
            }
        };
        check("trash_days", self.trash_days);
        if let Some(d) = self.audit_days {
            check("audit_days", d);
        }
        check("access_log_days", self.access_log_days);
        check("security_event_days", self.security_event_days);
        check("session_days", self.session_days);
        check("webhook_delivery_days", self.webhook_delivery_days);
        out
    }
}

impl super::field::Checked for RetentionPolicy {
    fn check(
        &self,
        v: &mut crate::validate::Validator,
        _name: &str,
        _rule: &super::Rule,
        _config: &super::Configuration,
    ) {
        for e in self.validate() {
            v.push(e.field, e.issue);
        }
    }
}

impl super::field::Normalize for RetentionPolicy {}
impl super::field::PatchField for RetentionPolicy {}

impl super::field::Schema for RetentionPolicy {
    fn schema() -> serde_json::Value {
        let days = serde_json::json!({ "type": "integer", "minimum": 1, "maximum": MAX_DAYS });
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "trash_days": days,
                "audit_days": { "type": "integer", "minimum": 1, "maximum": MAX_DAYS, "nullable": true },
                "access_log_days": days,
                "security_event_days": days,
                "session_days": days,
                "webhook_delivery_days": days,
                "client_details": { "type": "string", "enum": ["stored", "truncated", "none"] },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_network() {
        assert_eq!(truncate_address("203.0.113.77"), "203.0.113.0");
        assert_eq!(truncate_address("2001:db8:1:2:3::9"), "2001:db8:1::");
        assert_eq!(truncate_address("not an address"), "unknown");
        assert_eq!(
            ClientDetails::Truncated.address(Some("198.51.100.1")),
            Some("198.51.100.0".into())
        );
        assert_eq!(ClientDetails::None.address(Some("198.51.100.1")), None);
        assert_eq!(ClientDetails::Truncated.user_agent(Some("curl")), None);
    }

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert!(RetentionPolicy::default().validate().is_empty());
        let bad = RetentionPolicy {
            trash_days: -1,
            audit_days: Some(0),
            access_log_days: MAX_DAYS + 1,
            webhook_delivery_days: 0,
            ..RetentionPolicy::default()
        };
        let fields: Vec<String> = bad.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "retention.trash_days",
                "retention.audit_days",
                "retention.access_log_days",
                "retention.webhook_delivery_days"
            ]
        );
    }
}
