//! Low-stock and sold-out alerts: how far a book's pool has fallen, and which alerts a change of
//! level announces. Each level is announced once on the way down and only again after the pool
//! has risen above it, so a sale that hovers at its threshold, or a sold-out book that keeps
//! refusing claims, does not repeat itself.

/// How far a book's pool (its codes nobody holds) has fallen, as last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StockLevel {
    /// Above the low-stock threshold, or no threshold and something left.
    Plenty,
    /// At or below the threshold, with something left.
    Low,
    /// Nothing left to deal.
    SoldOut,
}

/// An announcement that a book's pool fell to a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockAlert {
    LowStock,
    SoldOut,
}

impl StockLevel {
    /// The level of a pool of `available` codes under the book's threshold, if any.
    pub fn of(available: i64, threshold: Option<i64>) -> Self {
        if available <= 0 {
            StockLevel::SoldOut
        } else if threshold.is_some_and(|t| available <= t) {
            StockLevel::Low
        } else {
            StockLevel::Plenty
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StockLevel::Plenty => "plenty",
            StockLevel::Low => "low",
            StockLevel::SoldOut => "sold_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "plenty" => Some(StockLevel::Plenty),
            "low" => Some(StockLevel::Low),
            "sold_out" => Some(StockLevel::SoldOut),
            _ => None,
        }
    }

    /// The alerts of a move from `self` to `to`: every level passed on the way down, in order.
    /// Low stock is only announced where there is a threshold to fall under. Rising announces
    /// nothing; it re-arms the levels above.
    pub fn alerts(self, to: StockLevel, threshold: Option<i64>) -> Vec<StockAlert> {
        let mut alerts = Vec::new();
        if self < StockLevel::Low && to >= StockLevel::Low && threshold.is_some() {
            alerts.push(StockAlert::LowStock);
        }
        if self < StockLevel::SoldOut && to == StockLevel::SoldOut {
            alerts.push(StockAlert::SoldOut);
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::StockAlert as A;
    use super::StockLevel as L;

    #[test]
    fn levels_follow_the_threshold() {
        assert_eq!(L::of(11, Some(10)), L::Plenty);
        assert_eq!(L::of(10, Some(10)), L::Low);
        assert_eq!(L::of(1, Some(10)), L::Low);
        assert_eq!(L::of(0, Some(10)), L::SoldOut);
        assert_eq!(L::of(1, None), L::Plenty);
        assert_eq!(L::of(0, None), L::SoldOut);
        assert_eq!(L::of(5, Some(0)), L::Plenty);
    }

    #[test]
    fn each_level_is_announced_once_on_the_way_down() {
        let t = Some(10);
        assert_eq!(L::Plenty.alerts(L::Low, t), vec![A::LowStock]);
        assert_eq!(L::Low.alerts(L::Low, t), vec![]);
        assert_eq!(L::Low.alerts(L::SoldOut, t), vec![A::SoldOut]);
        assert_eq!(L::Plenty.alerts(L::SoldOut, t), vec![A::LowStock, A::SoldOut]);
        assert_eq!(L::SoldOut.alerts(L::SoldOut, t), vec![]);
        assert_eq!(L::Plenty.alerts(L::SoldOut, None), vec![A::SoldOut]);
    }

    #[test]
    fn rising_announces_nothing_and_re_arms() {
        let t = Some(10);
        assert_eq!(L::SoldOut.alerts(L::Low, t), vec![]);
        assert_eq!(L::Low.alerts(L::Plenty, t), vec![]);
        // Restocked, but not above the threshold: falling again announces only the sell-out.
        assert_eq!(L::Low.alerts(L::SoldOut, t), vec![A::SoldOut]);
        assert_eq!(L::Plenty.alerts(L::Low, t), vec![A::LowStock]);
    }

    #[test]
    fn levels_round_trip_their_names() {
        for level in [L::Plenty, L::Low, L::SoldOut] {
            assert_eq!(L::parse(level.as_str()), Some(level));
        }
        assert_eq!(L::parse("none"), None);
    }
}
