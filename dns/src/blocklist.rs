//! Blocklists in the formats operators find them in (hosts files, plain domain lists,
//! AdBlock-style `||domain^`), held as one byte arena of names and a hash table of 4-byte
//! indices into it (not a set of `String`s: a million domains take about their own length in
//! bytes plus ~10 a name). A listed domain blocks itself and every name under it; a lookup is
//! one hash probe per label of the query name.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::borrow::Cow;
use std::hash::BuildHasher;

/// What one line of a list says.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A domain to block (with everything under it).
    Block(Cow<'a, str>),
    /// An AdBlock exception (`@@||domain^`): never blocked by this list.
    Allow(Cow<'a, str>),
    /// Comments, blank lines, a hosts file's own names (localhost …).
    Comment,
    /// Rules that are not about whole domains (paths, cosmetic rules, options a resolver
    /// cannot honour) or do not parse: counted so the operator sees what was left out.
    Skip,
}

/// Hosts-file names that are about the machine itself, never blocked.
const HOSTS_NOISE: [&str; 7] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "0.0.0.0",
];

/// Normalises a name: lowercase ASCII, no trailing dot, no leading `*.` (a wildcard is what
/// a listed domain means anyway); `None` if it is not a plausible DNS name (or is an IP).
pub fn normalise(name: &str) -> Option<Cow<'_, str>> {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let mut upper = false;
    let mut all_digits_or_dots = true;
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return None;
        }
        for b in label.bytes() {
            match b {
                b'a'..=b'z' | b'-' | b'_' => all_digits_or_dots = false,
                b'0'..=b'9' => {}
                b'A'..=b'Z' => {
                    upper = true;
                    all_digits_or_dots = false;
                }
                _ => return None,
            }
        }
    }
    if all_digits_or_dots {
        return None; // an IPv4 address, not a name
    }
    Some(if upper {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

/// Reads one line of any of the three formats.
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') || line.starts_with('[') {
        return Line::Comment;
    }
    // AdBlock: `||domain^`, `||domain^$important`; exceptions `@@||domain^`.
    let (allow, rest) = match line.strip_prefix("@@") {
        Some(r) => (true, r),
        None => (false, line),
    };
    if let Some(rule) = rest.strip_prefix("||") {
        let Some((domain, after)) = rule.split_once('^') else {
            return Line::Skip;
        };
        // Options narrow a rule to some requests (third-party, a resource type): a DNS
        // resolver cannot honour them, so such rules are left out rather than over-blocking.
        if !(after.is_empty() || after == "$important" || after == "|") {
            return Line::Skip;
        }
        return match normalise(domain) {
            Some(d) if allow => Line::Allow(d),
            Some(d) => Line::Block(d),
            None => Line::Skip,
        };
    }
    if allow {
        return Line::Skip;
    }
    // Cosmetic AdBlock rules (`example.com##.ad`, `#@#`, `#?#`) hide page elements: not ours.
    if line.contains("##") || line.contains("#@#") || line.contains("#?#") || line.contains("#$#") {
        return Line::Skip;
    }
    // Inline comments in hosts files and domain lists follow whitespace.
    let line = match line
        .find([' ', '\t'])
        .and_then(|ws| line[ws..].find('#').map(|h| ws + h))
    {
        Some(hash) => line[..hash].trim(),
        None => line,
    };
    let mut fields = line.split_whitespace();
    let first = fields.next().unwrap_or("");
    let second = fields.next();
    let name = match second {
        // Hosts: `0.0.0.0 domain` (further names on the line are rare; the first is taken).
        Some(n) if first.parse::<std::net::IpAddr>().is_ok() => n,
        Some(_) => return Line::Skip,
        None if first.contains(['/', '$', '^', '|']) => return Line::Skip,
        None => first,
    };
    if HOSTS_NOISE.contains(&name) {
        return Line::Comment;
    }
    match normalise(name) {
        Some(d) => Line::Block(d),
        None => Line::Skip,
    }
}

/// A set of domains, each covering the names under it. Immutable once built (a reload builds
/// a new one and swaps it in).
#[derive(Clone, Default)]
pub struct DomainSet {
    /// Names back to back, in the order first seen.
    arena: Vec<u8>,
    /// Where each name ends in `arena`.
    ends: Vec<u32>,
    /// Name numbers, by the hash of the name.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for DomainSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DomainSet({} names)", self.len())
    }
}

/// A parsed list: what it blocks, the exceptions it carries, and what was left out.
#[derive(Debug, Default)]
pub struct Parsed {
    pub block: DomainSet,
    pub allow: DomainSet,
    pub lines: usize,
    pub skipped: usize,
}

impl DomainSet {
    /// Builds from names (normalised already); duplicates are dropped.
    pub fn from_names<I, S>(names: I) -> DomainSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = names.into_iter();
        let mut set = DomainSet::default();
        let (lower, _) = names.size_hint();
        set.ends.reserve(lower);
        set.table.reserve(lower, |_| 0);
        for name in names {
            set.insert(name.as_ref());
        }
        set.finish()
    }

    /// Gives back what building reserved beyond need.
    fn finish(mut self) -> DomainSet {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.table
            .shrink_to_fit(|&i| hasher.hash_one(name_at(arena, ends, i as usize)));
        self
    }

    fn insert(&mut self, name: &str) {
        let hash = self.hasher.hash_one(name.as_bytes());
        let (arena, ends) = (&self.arena, &self.ends);
        if self
            .table
            .find(hash, |&i| {
                name_at(arena, ends, i as usize) == name.as_bytes()
            })
            .is_some()
        {
            return;
        }
        self.arena.extend_from_slice(name.as_bytes());
        let index = self.ends.len() as u32;
        self.ends
            .push(u32::try_from(self.arena.len()).expect("blocklists under 4 GiB"));
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.table.insert_unique(hash, index, |&i| {
            hasher.hash_one(name_at(arena, ends, i as usize))
        });
    }

    /// Parses a whole list (any of the three formats, mixed).
    pub fn parse(text: &str) -> Parsed {
        let mut block = DomainSet::default();
        let mut allow = DomainSet::default();
        // About one name a line: reserve once instead of growing a million-entry table.
        let estimate = text.len() / 24;
        block.ends.reserve(estimate);
        block.arena.reserve(text.len() / 2);
        block.table.reserve(estimate, |_| 0);
        let (mut lines, mut skipped) = (0, 0);
        for line in text.lines() {
            lines += 1;
            match parse_line(line) {
                Line::Block(d) => block.insert(&d),
                Line::Allow(d) => allow.insert(&d),
                Line::Comment => {}
                Line::Skip => skipped += 1,
            }
        }
        Parsed {
            block: block.finish(),
            allow: allow.finish(),
            lines,
            skipped,
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes held (the table: 4 bytes a slot plus one control byte).
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.table.capacity() * 5
    }

    fn name(&self, i: usize) -> &[u8] {
        name_at(&self.arena, &self.ends, i)
    }

    /// Is exactly this (normalised) name listed?
    pub fn contains(&self, name: &str) -> bool {
        let key = name.as_bytes();
        self.table
            .find(self.hasher.hash_one(key), |&i| self.name(i as usize) == key)
            .is_some()
    }

    /// The listed domain covering `name` (itself or a parent), if any. `name` must be
    /// normalised (lowercase, no trailing dot).
    pub fn covering<'n>(&self, name: &'n str) -> Option<&'n str> {
        if self.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if self.contains(rest) {
                return Some(rest);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Every name, in the order first listed.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| std::str::from_utf8(self.name(i)).expect("built from str"))
    }
}

fn name_at<'a>(arena: &'a [u8], ends: &[u32], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &arena[start..ends[i] as usize]
}

#[cfg(test)]
mod tests;
