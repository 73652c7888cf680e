//! The order Nix asks its configured substituters in: by `Priority`, lower first, the order of
//! the `substituters` setting among equals (a stable sort, as Nix's). A cache says its priority
//! in `nix-cache-info` (`Priority: 40` for cache.nixos.org); a URL's `?priority=N` overrides it;
//! a cache that says nothing is 50, Nix's default for binary caches. Caches given with
//! `--substituter` are asked in the order given instead: the user said which first.

/// Nix's priority of a binary cache whose `nix-cache-info` names none.
pub const DEFAULT_PRIORITY: u32 = 50;

/// The `Priority` a `nix-cache-info` file names.
pub fn info_priority(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "Priority")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// The `priority=` parameter of a cache URL.
pub fn url_priority(url: &str) -> Option<u32> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "priority")
        .and_then(|(_, v)| v.parse().ok())
}

/// The priority of the cache at `url` whose `nix-cache-info` is `info` (if it has one).
pub fn priority(url: &str, info: Option<&str>) -> u32 {
    url_priority(url)
        .or_else(|| info.and_then(info_priority))
        .unwrap_or(DEFAULT_PRIORITY)
}

/// The positions of caches with these priorities, in the order they are asked.
pub fn asking_order(priorities: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..priorities.len()).collect();
    order.sort_by_key(|&i| priorities[i]);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_s_priority_comes_from_its_url_its_info_or_nix_s_default() {
        let info = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n";
        assert_eq!(info_priority(info), Some(40));
        assert_eq!(info_priority("StoreDir: /nix/store\n"), None);
        assert_eq!(info_priority("Priority: high\n"), None);
        assert_eq!(priority("https://cache.nixos.org", Some(info)), 40);
        assert_eq!(priority("https://c.example?priority=10", Some(info)), 10);
        assert_eq!(priority("s3://b?region=r&priority=70", None), 70);
        assert_eq!(priority("https://c.example", None), DEFAULT_PRIORITY);
        assert_eq!(priority("https://c.example", Some("")), DEFAULT_PRIORITY);
    }

    #[test]
    fn caches_are_asked_lowest_priority_first_in_configured_order_among_equals() {
        assert_eq!(asking_order(&[50, 40, 50, 10]), [3, 1, 0, 2]);
        assert_eq!(asking_order(&[50, 50, 50]), [0, 1, 2]);
        assert_eq!(asking_order(&[]), Vec::<usize>::new());
    }
}
