//! The address throttle: failed password attempts one address may make in
//! a window, and the networks never throttled.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::Reason;
use crate::model::{AddressKey, ThrottleState};

use super::lockout::check_seconds;

/// How many failed password attempts one address may make in a window
/// before its password attempts are refused (docs/api.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThrottlePolicy {
    /// Failed password attempts from one address that close its window.
    pub ip_max_failures: u32,
    /// The window, in seconds from the address's first failure in it.
    pub ip_window_seconds: i64,
    /// Addresses and networks (CIDR) that are never throttled.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub ip_allowlist: Vec<IpNet>,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self { ip_max_failures: 100, ip_window_seconds: 3600, ip_allowlist: Vec::new() }
    }
}

/// The most networks an allowlist holds.
pub const MAX_ALLOWLIST: usize = 100;

impl ThrottlePolicy {
    /// Checks the fields an operator sets.
    pub fn validate(&self) -> Result<(), (&'static str, Reason)> {
        if self.ip_max_failures == 0 || self.ip_max_failures > 1_000_000 {
            return Err(("ip_max_failures", Reason::between(1, 1_000_000)));
        }
        check_seconds("ip_window_seconds", self.ip_window_seconds)?;
        if self.ip_allowlist.len() > MAX_ALLOWLIST {
            return Err((
                "ip_allowlist",
                Reason::new(
                    format!("must hold at most {MAX_ALLOWLIST} networks"),
                    format!("最多 {MAX_ALLOWLIST} 个网络"),
                ),
            ));
        }
        Ok(())
    }

    /// Seconds until `window` ends, while it is open and the attempts in it
    /// with `pending` more would be over [`ThrottlePolicy::ip_max_failures`]; `None`
    /// when an attempt may go on.
    pub fn closed(&self, window: ThrottleState, now: UnixTime, pending: u32) -> Option<i64> {
        let ends = window.window_start + self.ip_window_seconds;
        (ends > now && window.failures.saturating_add(pending) > self.ip_max_failures).then_some(ends - now)
    }

    /// The key attempts from `ip` are counted under: none for an address
    /// never throttled, or one not known.
    pub fn counted(&self, ip: Option<IpAddr>) -> Option<AddressKey> {
        ip.filter(|ip| !self.allows(*ip)).map(AddressKey::of)
    }

    /// Whether `ip` is never throttled.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.ip_allowlist.iter().any(|net| net.contains(&ip))
    }
}

/// The fields of a [`ThrottlePolicy`] an operator changes; `None` keeps the
/// current value.
#[derive(Debug, Clone, Default)]
pub struct ThrottlePolicyPatch {
    /// See [`ThrottlePolicy::ip_max_failures`].
    pub ip_max_failures: Option<u32>,
    /// See [`ThrottlePolicy::ip_window_seconds`].
    pub ip_window_seconds: Option<i64>,
    /// See [`ThrottlePolicy::ip_allowlist`]: addresses or CIDR networks.
    pub ip_allowlist: Option<Vec<String>>,
}

impl ThrottlePolicyPatch {
    /// `current` with the fields this patch sets replaced; an allowlist
    /// entry that is no address or network is named.
    pub fn apply(self, current: ThrottlePolicy) -> Result<ThrottlePolicy, (&'static str, Reason)> {
        let ip_allowlist = match self.ip_allowlist {
            Some(entries) => entries.iter().map(|e| parse_net(e)).collect::<Result<_, _>>()?,
            None => current.ip_allowlist,
        };
        Ok(ThrottlePolicy {
            ip_max_failures: self.ip_max_failures.unwrap_or(current.ip_max_failures),
            ip_window_seconds: self.ip_window_seconds.unwrap_or(current.ip_window_seconds),
            ip_allowlist,
        })
    }
}

/// An address (a network of one) or a CIDR network.
pub fn parse_net(text: &str) -> Result<IpNet, (&'static str, Reason)> {
    let text = text.trim();
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map(|net| net.trunc()).map_err(|_| {
        let en = format!("{text:?} is not an IP address or CIDR network");
        ("ip_allowlist", Reason::new(en, format!("{text:?} 不是 IP 地址或 CIDR 网络")))
    })
}
