//! Personal data, opt-in (`[redaction] pii = [...]`): e-mail addresses,
//! payment card numbers, IPv4 and IPv6 addresses, phone numbers.
//!
//! Off by default: logs are full of addresses that operators need, and a
//! shipper that blanks them unasked is a shipper nobody can debug with. When
//! enabled, each kind is found by a small hand-written scanner rather than a
//! regex, because each has a validity test a regex cannot state:
//!
//! - a card number is 12-19 digits, optionally in groups split by single
//!   spaces or dashes, whose Luhn check passes and whose leading digits are
//!   an issuer range (Visa, Mastercard, Amex, Discover, JCB, Diners,
//!   UnionPay, Maestro); timestamps and ids fail one of the three;
//! - an IPv4 address has four parts of at most 255 and is not part of a
//!   longer dotted number (`1.2.3.4.5` is a version); loopback and
//!   `0.0.0.0` are not personal and stay;
//! - an IPv6 address is what `std::net::Ipv6Addr` parses, with at least two
//!   colons and no letter or digit glued to it (`std::io` and `a::b` in code
//!   stay) and at least one digit (`a::b` stays), `::` and `::1` excepted;
//! - an e-mail address has a local part and a dotted domain whose last label
//!   is letters (`git@github.com` qualifies, `user@host` and `pkg@1.2.3` do
//!   not);
//! - a phone number is `+` and 8-15 digits (E.164, with blanks, dots,
//!   dashes or parentheses between groups), or the North American
//!   `(415) 555-0100` / `415-555-0100` / `415.555.0100` shape.

use std::net::Ipv6Addr;

use super::config::PiiKind;

/// Which kinds are on, as flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct PiiSet {
    pub email: bool,
    pub card: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    pub phone: bool,
}

impl PiiSet {
    pub fn new(kinds: impl IntoIterator<Item = PiiKind>) -> PiiSet {
        let mut s = PiiSet::default();
        for k in kinds {
            match k {
                PiiKind::Email => s.email = true,
                PiiKind::Card => s.card = true,
                PiiKind::Ipv4 => s.ipv4 = true,
                PiiKind::Ipv6 => s.ipv6 = true,
                PiiKind::Phone => s.phone = true,
            }
        }
        s
    }

    pub fn any(&self) -> bool {
        self.email || self.card || self.ipv4 || self.ipv6 || self.phone
    }
}

/// A PII finding: byte range and kind.
pub type Found = (usize, usize, PiiKind);

/// Every enabled kind found in `text`.
pub fn scan(set: PiiSet, text: &str, out: &mut Vec<Found>) {
    let b = text.as_bytes();
    if set.email {
        emails(b, out);
    }
    if set.card || set.phone || set.ipv4 {
        digit_runs(set, b, out);
    }
    if set.ipv6 {
        ipv6(text, out);
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn emails(b: &[u8], out: &mut Vec<Found>) {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    let mut from = 0;
    while let Some(i) = memchr(b'@', &b[from..]).map(|i| from + i) {
        from = i + 1;
        let mut s = i;
        while s > 0 && local(b[s - 1]) {
            s -= 1;
        }
        while s < i && b[s] == b'.' {
            s += 1;
        }
        let mut e = i + 1;
        while e < b.len() && domain(b[e]) {
            e += 1;
        }
        while e > i + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        if s == i || e <= i + 1 {
            continue;
        }
        let dom = &b[i + 1..e];
        let Some(dot) = dom.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &dom[dot + 1..];
        if tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && dot > 0 {
            out.push((s, e, PiiKind::Email));
            from = e;
        }
    }
}

fn memchr(c: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

/// Runs of digits (with the separators a kind allows) that start a number:
/// cards, phones and IPv4 addresses.
fn digit_runs(set: PiiSet, b: &[u8], out: &mut Vec<Found>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = (c.is_ascii_digit() || c == b'+' || c == b'(')
            && (i == 0 || !(is_word(b[i - 1]) || b[i - 1] == b'.' || b[i - 1] == b'-'));
        if !starts {
            i += 1;
            continue;
        }
        let found = (set.ipv4.then(|| ipv4_at(b, i)).flatten())
            .or_else(|| set.card.then(|| card_at(b, i)).flatten())
            .or_else(|| set.phone.then(|| phone_at(b, i)).flatten());
        match found {
            Some(f) => {
                i = f.1;
                out.push(f);
            }
            None => {
                // Skip the rest of this number.
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit()) {
                    i += 1;
                }
            }
        }
    }
}

fn ipv4_at(b: &[u8], i: usize) -> Option<Found> {
    let mut parts = [0u32; 4];
    let mut j = i;
    for (n, part) in parts.iter_mut().enumerate() {
        let s = j;
        while j < b.len() && b[j].is_ascii_digit() && j - s < 4 {
            *part = *part * 10 + u32::from(b[j] - b'0');
            j += 1;
        }
        if j == s || j - s > 3 || *part > 255 {
            return None;
        }
        if n < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    let glued = b.get(j).is_some_and(|&c| is_word(c))
        || (b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit));
    if glued || parts == [0, 0, 0, 0] || parts[0] == 127 {
        return None;
    }
    Some((i, j, PiiKind::Ipv4))
}

/// Digits of a card number from `i`: groups split by one space or dash.
fn card_at(b: &[u8], i: usize) -> Option<Found> {
    let mut digits = Vec::with_capacity(19);
    let mut j = i;
    let mut last_digit_end = i;
    while j < b.len() && digits.len() < 20 {
        let c = b[j];
        if c.is_ascii_digit() {
            digits.push(c - b'0');
            j += 1;
            last_digit_end = j;
        } else if (c == b' ' || c == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            j += 1;
        } else {
            break;
        }
    }
    if b.get(last_digit_end).is_some_and(|&c| is_word(c)) {
        return None;
    }
    if !(12..=19).contains(&digits.len()) || !luhn(&digits) || !issuer_plausible(&digits) {
        return None;
    }
    Some((i, last_digit_end, PiiKind::Card))
}

/// The Luhn check digit test.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer ranges (IIN) and the lengths each issues.
pub fn issuer_plausible(d: &[u8]) -> bool {
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    match () {
        _ if p1 == 4 => matches!(len, 13 | 16 | 19),
        _ if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => len == 16,
        _ if p2 == 34 || p2 == 37 => len == 15,
        _ if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) => (16..=19).contains(&len),
        _ if (3528..=3589).contains(&p4) => (16..=19).contains(&len),
        _ if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 => {
            (14..=19).contains(&len)
        }
        _ if p2 == 62 || p2 == 81 => (16..=19).contains(&len),
        _ if [5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763].contains(&p4)
            || (56..=58).contains(&p2)
            || p2 == 67 =>
        {
            (12..=19).contains(&len)
        }
        _ => false,
    }
}

fn phone_at(b: &[u8], i: usize) -> Option<Found> {
    if b[i] == b'+' {
        let mut j = i + 1;
        let mut digits = 0;
        let mut end = j;
        let mut sep = true; // no separator right after '+'
        while j < b.len() {
            let c = b[j];
            if c.is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
                sep = false;
            } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')') && !sep {
                sep = c != b')';
                j += 1;
            } else if c == b'(' {
                j += 1;
            } else {
                break;
            }
        }
        let glued = b.get(end).is_some_and(|&c| is_word(c));
        return ((8..=15).contains(&digits)
            && !glued
            && b.get(i + 1).is_some_and(|c| (b'1'..=b'9').contains(c)))
        .then_some((i, end, PiiKind::Phone));
    }
    // (415) 555-0100, 415-555-0100, 415.555.0100, 415 555 0100
    let mut j = i;
    let paren = b[j] == b'(';
    if paren {
        j += 1;
    }
    let area = take_digits(b, &mut j, 3)?;
    if paren {
        if b.get(j) != Some(&b')') {
            return None;
        }
        j += 1;
        if b.get(j) == Some(&b' ') {
            j += 1;
        }
    } else {
        let s = *b.get(j)?;
        if !matches!(s, b'-' | b'.' | b' ') {
            return None;
        }
        j += 1;
    }
    let exchange = take_digits(b, &mut j, 3)?;
    let s = *b.get(j)?;
    if !matches!(s, b'-' | b'.' | b' ') {
        return None;
    }
    j += 1;
    take_digits(b, &mut j, 4)?;
    if b.get(j).is_some_and(|&c| {
        is_word(c) || c == b'-' || c == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)
    }) {
        return None;
    }
    (area[0] >= b'2' && exchange[0] >= b'2').then_some((i, j, PiiKind::Phone))
}

/// Exactly `n` digits at `*j`, not followed by another digit.
fn take_digits<'a>(b: &'a [u8], j: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = *j;
    let d = b.get(s..s + n)?;
    if !d.iter().all(u8::is_ascii_digit) || b.get(s + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    *j = s + n;
    Some(d)
}

fn ipv6(text: &str, out: &mut Vec<Found>) {
    let b = text.as_bytes();
    let cand = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !cand(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && cand(b[i]) {
            i += 1;
        }
        let mut e = i;
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        let glued_before = s > 0 && is_word(b[s - 1]);
        let glued_after = b.get(i).is_some_and(|&c| is_word(c) && c != b'%');
        if glued_before || glued_after {
            continue;
        }
        let run = &text[s..e];
        let colons = run.bytes().filter(|&c| c == b':').count();
        if colons < 2 || !run.bytes().any(|c| c.is_ascii_digit()) || run == "::1" {
            continue;
        }
        if run.parse::<Ipv6Addr>().is_ok() {
            out.push((s, e, PiiKind::Ipv6));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(set: PiiSet, text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan(set, text, &mut v);
        v.iter().map(|&(s, e, _)| &text[s..e]).collect()
    }

    fn all() -> PiiSet {
        PiiSet::new([
            PiiKind::Email,
            PiiKind::Card,
            PiiKind::Ipv4,
            PiiKind::Ipv6,
            PiiKind::Phone,
        ])
    }

    #[test]
    fn pii_true_positives() {
        let cases = [
            (
                "mail jane.doe+x@mail.example.com ok",
                "jane.doe+x@mail.example.com",
            ),
            ("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
            ("card=5555-5555-5555-4444;", "5555-5555-5555-4444"),
            ("amex 378282246310005", "378282246310005"),
            ("from 203.0.113.9:443", "203.0.113.9"),
            (
                "client=2001:db8::8a2e:370:7334 x",
                "2001:db8::8a2e:370:7334",
            ),
            ("[fe80::1%eth0]", "fe80::1"),
            ("call +44 20 7946 0958 now", "+44 20 7946 0958"),
            ("call (415) 555-0100.", "(415) 555-0100"),
            ("tel 415.555.0100", "415.555.0100"),
        ];
        for (text, want) in cases {
            assert_eq!(found(all(), text), vec![want], "{text}");
        }
    }

    #[test]
    fn pii_near_misses() {
        for text in [
            "ts=1700000000000 id=4111111111111112",
            "version 1.2.3.4.5 and 10.0.0.300",
            "127.0.0.1 and 0.0.0.0 are local",
            "std::io::Result and a::b and 12:30:45 and aa:bb:cc:dd:ee:ff",
            "root@server and pkg@1.2.3 and @types/node",
            "date 2024-05-01 port 8080 pid 415-555",
            "order 1234567890123 sha 3f786850e387550fdab836ed7e6dc881de23001b",
        ] {
            assert_eq!(found(all(), text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn pii_luhn_and_issuers() {
        let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(luhn(&d("4111111111111111")));
        assert!(!luhn(&d("4111111111111112")));
        assert!(issuer_plausible(&d("4111111111111111")));
        assert!(!issuer_plausible(&d("1111111111111117")));
    }
}
