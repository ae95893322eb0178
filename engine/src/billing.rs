//! Bytes scanned → billed bytes → cost, by Athena's rules unless configured otherwise.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;
const TIB: f64 = (1u64 << 40) as f64;

/// How scanned bytes become a bill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pricing {
    /// Dollars per TiB billed.
    pub usd_per_tib: f64,
    /// Smallest bill for a query that scanned anything.
    pub minimum_bytes: u64,
    /// Scanned bytes are rounded up to a multiple of this.
    pub rounding_bytes: u64,
}

impl Default for Pricing {
    fn default() -> Self {
        Self { usd_per_tib: 5.0, minimum_bytes: 10 * MIB, rounding_bytes: MIB }
    }
}

impl Pricing {
    /// Billed bytes for a query that scanned `scanned` bytes; a query that read nothing costs nothing.
    pub fn billed_bytes(&self, scanned: u64) -> u64 {
        if scanned == 0 {
            return 0;
        }
        let unit = self.rounding_bytes.max(1);
        scanned.div_ceil(unit).saturating_mul(unit).max(self.minimum_bytes)
    }

    /// Dollars for `billed` bytes.
    pub fn cost_usd(&self, billed: u64) -> f64 {
        billed as f64 / TIB * self.usd_per_tib
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_rules() {
        let p = Pricing::default();
        assert_eq!(p.billed_bytes(0), 0);
        assert_eq!(p.billed_bytes(1), 10 * MIB);
        assert_eq!(p.billed_bytes(10 * MIB), 10 * MIB);
        assert_eq!(p.billed_bytes(10 * MIB + 1), 11 * MIB);
        assert_eq!(p.billed_bytes(1 << 40), 1 << 40);
        assert!((p.cost_usd(1 << 40) - 5.0).abs() < 1e-12);
        assert!((p.cost_usd(10 * MIB) - 5.0 * 10.0 / 1024.0 / 1024.0).abs() < 1e-15);
    }

    #[test]
    fn configurable() {
        let p = Pricing { usd_per_tib: 7.0, minimum_bytes: 0, rounding_bytes: 1 };
        assert_eq!(p.billed_bytes(3), 3);
        assert!((p.cost_usd(1 << 39) - 3.5).abs() < 1e-12);
    }
}
