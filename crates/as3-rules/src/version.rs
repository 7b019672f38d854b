//! The BIG-IP software version (`/mgmt/tm/sys/version`) and what each feature needs of it.

use std::fmt;

/// A TMOS version such as `17.1.0` or `13.1.3.4`, ordered by its numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BigIpVersion {
    numbers: Vec<u32>,
}

impl BigIpVersion {
    /// `17.1.0` → [17, 1, 0]; `None` unless it is dot-separated numbers starting with a major.
    pub fn parse(text: &str) -> Option<Self> {
        let numbers: Option<Vec<u32>> = text.trim().split('.').map(|part| part.parse().ok()).collect();
        numbers.filter(|n| !n.is_empty()).map(|numbers| Self { numbers })
    }

    /// At least `minimum`?
    pub fn at_least(&self, minimum: MinimumVersion) -> bool {
        let major = self.numbers.first().copied().unwrap_or(0);
        let minor = self.numbers.get(1).copied().unwrap_or(0);
        (major, minor) >= (minimum.major, minimum.minor)
    }
}

impl fmt::Display for BigIpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.numbers.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A `major.minor` lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumVersion {
    pub major: u32,
    pub minor: u32,
}

impl MinimumVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for MinimumVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest BIG-IP the operator supports at all: AS3's own minimum.
pub const MINIMUM_SUPPORTED: MinimumVersion = MinimumVersion::new(13, 1);
/// Dynamic routing is configurable through iControl REST (`/mgmt/tm/net/routing`, tmsh
/// `net routing`) from BIG-IP 14.1 on; older releases only have imish.
pub const MINIMUM_FOR_BGP: MinimumVersion = MinimumVersion::new(14, 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare_by_number() {
        let v = |text: &str| BigIpVersion::parse(text).expect(text);
        assert!(v("13.1.3.4") < v("14.0.0"));
        assert!(v("9.4") < v("14.1"), "numbers, not text");
        assert_eq!(v(" 17.1.0 ").to_string(), "17.1.0");
        for bad in ["", "v17", "17..1", "17.1.0-beta"] {
            assert_eq!(BigIpVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn minimums_compare_major_and_minor() {
        let v = |text: &str| BigIpVersion::parse(text).expect(text);
        assert!(v("14.1.0").at_least(MINIMUM_FOR_BGP));
        assert!(v("15").at_least(MINIMUM_FOR_BGP));
        assert!(!v("14.0.9").at_least(MINIMUM_FOR_BGP));
        assert!(!v("13.1.5").at_least(MINIMUM_FOR_BGP));
        assert!(v("13.1.0").at_least(MINIMUM_SUPPORTED));
        assert!(!v("12.1.6").at_least(MINIMUM_SUPPORTED));
        assert_eq!(MINIMUM_FOR_BGP.to_string(), "14.1");
    }
}
