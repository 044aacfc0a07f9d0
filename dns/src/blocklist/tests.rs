use super::*;

#[test]
fn reads_the_three_formats() {
    let list = "\
# hosts file
0.0.0.0 ads.example.com
127.0.0.1 Tracker.Example.NET   # inline comment
0.0.0.0 localhost
::1 ip6-localhost
! adblock
||malware.example.org^
||opts.example.org^$third-party
@@||good.malware.example.org^
||phish.example^$important
/banner/*
example.com##.ad
[Adblock Plus 2.0]
plain.example
*.wild.example
192.168.1.1
bad_label-.example
";
    let p = DomainSet::parse(list);
    let mut blocked: Vec<&str> = p.block.iter().collect();
    blocked.sort();
    assert_eq!(
        blocked,
        [
            "ads.example.com",
            "malware.example.org",
            "phish.example",
            "plain.example",
            "tracker.example.net",
            "wild.example"
        ]
    );
    assert_eq!(
        p.allow.iter().collect::<Vec<_>>(),
        ["good.malware.example.org"]
    );
    // Rules a resolver cannot honour are counted, not silently dropped.
    assert_eq!(p.skipped, 5, "{p:?}");
}

#[test]
fn a_listed_domain_covers_its_subdomains_only() {
    let set = DomainSet::from_names(["example.com", "ads.example.net", "b.c"]);
    assert_eq!(set.covering("example.com"), Some("example.com"));
    assert_eq!(set.covering("a.b.example.com"), Some("example.com"));
    assert_eq!(set.covering("notexample.com"), None, "label boundary");
    assert_eq!(set.covering("example.net"), None, "a parent is not covered");
    assert_eq!(set.covering("x.ads.example.net"), Some("ads.example.net"));
    assert_eq!(set.covering("c"), None);
    assert_eq!(set.covering("a.b.c"), Some("b.c"));
    assert_eq!(DomainSet::default().covering("example.com"), None);
}

#[test]
fn normalises_names() {
    assert_eq!(normalise("Example.COM.").as_deref(), Some("example.com"));
    assert_eq!(normalise("*.example.com").as_deref(), Some("example.com"));
    for bad in [
        "",
        ".",
        "a..b",
        "-a.b",
        "a-.b",
        "a b",
        "10.0.0.1",
        &"a".repeat(64),
        "ü.de",
    ] {
        assert_eq!(normalise(bad), None, "{bad:?}");
    }
}

proptest::proptest! {
    /// Every listed name is found, and names under it are covered by it (or a listed parent).
    #[test]
    fn lookup_agrees_with_a_plain_scan(names in proptest::collection::vec("[a-c]{1,3}(\\.[a-c]{1,3}){0,2}", 0..40), probe in "[a-c]{1,3}(\\.[a-c]{1,3}){0,3}") {
        let set = DomainSet::from_names(names.iter().map(String::as_str));
        for n in &names {
            proptest::prop_assert!(set.contains(n));
        }
        let expected = names.iter().any(|n| probe == *n || probe.ends_with(&format!(".{n}")));
        proptest::prop_assert_eq!(set.covering(&probe).is_some(), expected);
    }
}
