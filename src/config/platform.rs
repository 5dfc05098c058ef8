//! [`Platform`]: the chat platforms the bot speaks on. One enum for configuration, approval
//! identities, metrics and incident messages; adding a platform adds a variant here and the
//! compiler points at every place that must decide something for it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A chat platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Slack,
    Discord,
}

impl Platform {
    /// Every platform, in the order messages go out.
    pub const ALL: [Platform; 2] = [Platform::Slack, Platform::Discord];

    /// The lowercase name used in config keys, identities (`slack:U…`) and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown chat platform {s:?} (slack or discord)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        assert!("cli".parse::<Platform>().is_err());
    }
}
