//! Our reading of phone numbers agrees with libphonenumber's (the reference implementation).
//! `tests/fixtures/phone_agreement.tsv` holds numbers written as clients write them, with what
//! Python `phonenumbers` (pinned, see scripts/gen-phone-fixture.py) makes of each: this test needs
//! no Python. "Agree" is: both reject, or both accept with the same E.164 and region.

use std::collections::BTreeMap;

use dialer_core::phone::{E164, parse_country};

const FIXTURE: &str = include_str!("../fixtures/phone_agreement.tsv");

/// Differences we know and accept: (region, input as in the fixture, why). A difference not
/// listed fails the test, and so does a listed one that is no longer a difference.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

/// Least share of agreement for every region and form.
const FLOOR: f64 = 0.995;

struct Case<'a> {
    region: &'a str,
    form: &'a str,
    input: &'a str,
    /// E.164 and region, None when libphonenumber rejects it.
    expected: Option<(&'a str, &'a str)>,
}

fn cases() -> Vec<Case<'static>> {
    FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 4, "fixture line `{line}`");
            Case {
                region: cols[0],
                form: cols[1],
                input: cols[2],
                expected: (cols[3] != "-").then(|| (cols[3], cols[4])),
            }
        })
        .collect()
}

#[test]
fn phone_agreement_with_libphonenumber_per_region_and_form() {
    let cases = cases();
    assert!(cases.len() > 20_000, "fixture too small: {}", cases.len());
    let mut tally: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    let mut differences = Vec::new();
    for case in &cases {
        let country = parse_country(case.region).expect("fixture region");
        let ours = E164::parse(case.input, country).ok();
        let ours = ours
            .as_ref()
            .map(|n| (n.as_str(), n.region().unwrap_or("001")));
        let entry = tally.entry((case.region, case.form)).or_default();
        entry.1 += 1;
        if ours == case.expected {
            entry.0 += 1;
        } else {
            let ours = ours.map(|(e, r)| format!("{e} {r}"));
            differences.push((case.region, case.input, ours, case.expected));
        }
    }

    println!("agreement with libphonenumber per region and form:");
    let mut below = Vec::new();
    for ((region, form), (agree, total)) in &tally {
        let share = *agree as f64 / *total as f64;
        println!(
            "  {region} {form:<10} {agree:>4}/{total:<4} {:.2} %",
            share * 100.0
        );
        if share < FLOOR {
            below.push(format!("{region} {form}"));
        }
    }
    let unexpected: Vec<_> = differences
        .iter()
        .filter(|(r, i, ..)| {
            !KNOWN_DIFFERENCES
                .iter()
                .any(|(kr, ki, _)| kr == r && ki == i)
        })
        .collect();
    for (region, input, ours, theirs) in &unexpected {
        println!("  difference {region} `{input}`: ours {ours:?}, libphonenumber {theirs:?}");
    }
    let stale: Vec<_> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(kr, ki, _)| !differences.iter().any(|(r, i, ..)| kr == r && ki == i))
        .collect();
    assert!(below.is_empty(), "below {FLOOR}: {below:?}");
    assert!(
        unexpected.is_empty(),
        "{} differences not known",
        unexpected.len()
    );
    assert!(
        stale.is_empty(),
        "known differences that are gone: {stale:?}"
    );
}
