//! Unit tests of the whole engine: one true positive and one near miss per
//! provider rule, key-aware formats, PEM blocks, structured data.

use serde_json::json;

use super::rules::{cases, RULES};
use super::*;

fn redactor() -> Redactor {
    Redactor::new(&RedactionConfig::default()).unwrap()
}

fn redact(r: &Redactor, line: &str) -> String {
    let mut s = line.to_string();
    r.redact_msg(&mut StreamState::default(), &mut s);
    s
}

#[test]
fn redact_every_rule_has_a_case() {
    let cases = cases::all();
    for rule in RULES {
        assert!(
            cases.iter().any(|c| c.rule == rule.name),
            "no test case for rule {}",
            rule.name
        );
    }
    assert!(RULES.len() >= 40, "{} rules", RULES.len());
}

#[test]
fn redact_rules_true_positive_and_near_miss() {
    let r = redactor();
    let mut failures = Vec::new();
    for c in cases::all() {
        let out = redact(&r, &c.line);
        let marker = format!("[REDACTED:{}]", c.rule);
        if out.contains(&c.secret) || !out.contains(&marker) {
            failures.push(format!("{}: TP {:?} -> {:?}", c.rule, c.line, out));
        }
        let near = redact(&r, &c.near);
        if near != c.near {
            failures.push(format!("{}: near miss {:?} -> {:?}", c.rule, c.near, near));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (input, expected output) for key-aware redaction.
const KEY_CASES: &[(&str, &str)] = &[
    (
        "password=hunter2 user=bob",
        "password=[REDACTED:password] user=bob",
    ),
    (
        "db_password=\"s3cr3t pass\" x=1",
        "db_password=\"[REDACTED:password]\" x=1",
    ),
    (
        "{\"user\":\"a\",\"password\":\"p@ss\"}",
        "{\"user\":\"a\",\"password\":\"[REDACTED:password]\"}",
    ),
    (
        "{\"dbPassword\": \"x\\\"y\"}",
        "{\"dbPassword\": \"[REDACTED:password]\"}",
    ),
    (
        "msg={\\\"api_key\\\":\\\"abc123def\\\"}",
        "msg={\\\"api_key\\\":\\\"[REDACTED:api_key]\\\"}",
    ),
    (
        "Authorization: Bearer abc.def-ghi",
        "Authorization: Bearer [REDACTED:bearer]",
    ),
    (
        "authorization=\"Token abcdef123\"",
        "authorization=\"[REDACTED:authorization]\"",
    ),
    ("Cookie: sid=abc; theme=dark", "Cookie: [REDACTED:cookie]"),
    (
        "Set-Cookie: sid=abc; Path=/; HttpOnly",
        "Set-Cookie: [REDACTED:cookie]",
    ),
    ("X-Api-Key: 0123abcd", "X-Api-Key: [REDACTED:api_key]"),
    ("client_secret: 'zzz'", "client_secret: '[REDACTED:secret]'"),
    (
        "export STRIPE_KEY=abc123",
        "export STRIPE_KEY=[REDACTED:secret_key]",
    ),
    (
        "GITHUB_TOKEN=abc123 make",
        "GITHUB_TOKEN=[REDACTED:token] make",
    ),
    ("DB_PASS=abc", "DB_PASS=[REDACTED:password]"),
    (
        "connect postgres://app:pa55w0rd@db:5432/x",
        "connect postgres://app:[REDACTED:url_password]@db:5432/x",
    ),
    (
        "GET /cb?code=1&access_token=abc123&x=1",
        "GET /cb?code=1&access_token=[REDACTED:token]&x=1",
    ),
    (
        "GET /f?X-Amz-Signature=abcdef012345&X-Amz-Date=1",
        "GET /f?X-Amz-Signature=[REDACTED:url_param]&X-Amz-Date=1",
    ),
    (
        "GET /maps?key=AbCdEf123&q=x",
        "GET /maps?key=[REDACTED:url_param]&q=x",
    ),
    (
        "level=info session=9f8e7d6c5b4a msg=ok",
        "level=info session=[REDACTED:session] msg=ok",
    ),
    ("password: 123456", "password: [REDACTED:password]"),
    (
        "<user>bob</user><password>hunter2</password>",
        "<user>bob</user><password>[REDACTED:password]</password>",
    ),
    (
        "exec mysqldump --password s3cret --user root",
        "exec mysqldump --password [REDACTED:password] --user root",
    ),
    (
        "redis://:s3cretpw@cache:6379/0",
        "redis://:[REDACTED:url_password]@cache:6379/0",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_access_key]",
    ),
    (
        "Proxy-Authorization: Basic dXNlcjpodW50ZXIy",
        "Proxy-Authorization: Basic [REDACTED:basic_auth]",
    ),
    (
        "{\"auths\":{\"r.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}",
        "{\"auths\":{\"r.io\":{\"auth\":\"[REDACTED:authorization]\"}}}",
    ),
];

/// Lines that must pass unchanged.
const BENIGN: &[&str] = &[
    "token_count=5 tokens=12 max_tokens=4096",
    "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
    "pam_unix(sshd:session): session opened for user root by (uid=0)",
    "the password must be rotated; tokens expire after 1h",
    "password=true remember_password=false token=null secret=\"\" pwd=/home/app",
    "cache key=user:42 hit=true monkey=3",
    "request id 550e8400-e29b-41d4-a716-446655440000 sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ulid=01ARZ3NDEKTSV4RRFFQ69G5FAV commit=3f786850e387550fdab836ed7e6dc881de23001b",
    "-----BEGIN CERTIFICATE-----",
    "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ",
    "-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host",
    "token: ${GITHUB_TOKEN} password: ******",
    "visit https://example.com/a?b=c&page=2 for docs",
    "bypass=1 oauth=enabled compass=north",
    "password_length=12 password_hash_algo=argon2 token_type=Bearer",
    "[REDACTED:password] password=[REDACTED:password]",
    "Session::new() called; see https://docs.rs/x and token::parse",
    "run --token-file /etc/app/token --no-color",
];

#[test]
fn redact_counts_metric_per_rule() {
    // The metrics are process-wide and other tests redact built-in rules in
    // parallel: count a rule that only this test has, so the count is exact.
    let text =
        "[[redaction.patterns]]\nname = \"metric_count_probe\"\nregex = \"PROBE-[0-9]{6}\"\n";
    let l =
        crate::config::load_str(std::path::Path::new("a.toml"), text.into(), &|_| None).unwrap();
    let r = Redactor::new(&l.config.redaction).unwrap();
    let c = crate::ops::metrics::metrics().redaction("metric_count_probe");
    assert_eq!(c.get(), 0);
    let mut s = "t PROBE-123456 and PROBE-654321 x".to_string();
    assert_eq!(r.redact_msg(&mut StreamState::default(), &mut s), 2);
    assert_eq!(c.get(), 2);
    assert_eq!(
        s,
        "t [REDACTED:metric_count_probe] and [REDACTED:metric_count_probe] x"
    );
}

#[test]
fn redact_key_aware_formats() {
    let r = redactor();
    let mut failures = Vec::new();
    for (input, want) in KEY_CASES {
        let got = redact(&r, input);
        if got != *want {
            failures.push(format!("{input:?}\n   got {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn redact_benign_lines_unchanged() {
    let r = redactor();
    let mut failures = Vec::new();
    for input in BENIGN {
        let mut state = StreamState::default();
        let mut s = input.to_string();
        r.redact_msg(&mut state, &mut s);
        if s != *input {
            failures.push(format!("{input:?} -> {s:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn redact_is_idempotent_and_counts() {
    let r = redactor();
    let mut s =
        "password=abc token=xyz123 Authorization: Bearer abcdefghijklmnopqrstuvwxyz".to_string();
    let n = r.redact_msg(&mut StreamState::default(), &mut s);
    assert_eq!(n, 3, "{s}");
    let once = s.clone();
    assert_eq!(r.redact_msg(&mut StreamState::default(), &mut s), 0);
    assert_eq!(s, once);
}

const KEY_BODY: &[&str] = &[
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MYPRIVATEBODYLINEtwoqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9",
    "aLastLineOfTheKeyBody0123456789+/==",
];

fn pem(kind: &str) -> Vec<String> {
    let mut v = vec![format!("-----BEGIN {kind}-----")];
    v.extend(KEY_BODY.iter().map(|s| s.to_string()));
    v.push(format!("-----END {kind}-----"));
    v
}

fn assert_no_body(out: &str) {
    for b in KEY_BODY {
        assert!(!out.contains(&b[..16]), "body leaked: {out}");
    }
}

#[test]
fn redact_pem_kinds_line_by_line() {
    let r = redactor();
    for kind in [
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "DSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ] {
        let mut state = StreamState::default();
        let mut out = Vec::new();
        for line in pem(kind).into_iter().chain(["after line".to_string()]) {
            let mut s = format!("2024-01-02T03:04:05Z ERROR app: {line}");
            r.redact_msg(&mut state, &mut s);
            out.push(s);
        }
        let all = out.join("\n");
        assert_no_body(&all);
        assert!(
            out[0].starts_with("2024-01-02T03:04:05Z ERROR app: [REDACTED:pem_private_key]"),
            "{all}"
        );
        assert_eq!(
            out.last().unwrap(),
            "2024-01-02T03:04:05Z ERROR app: after line",
            "{kind}"
        );
        assert!(!state.in_private_key());
    }
}

#[test]
fn redact_pem_in_one_message_and_json_escapes() {
    let r = redactor();
    let block = pem("RSA PRIVATE KEY").join("\n");
    let mut s = format!("loaded key:\n{block}\ndone");
    r.redact_msg(&mut StreamState::default(), &mut s);
    assert_eq!(s, "loaded key:\n[REDACTED:pem_private_key]\ndone");

    let escaped = pem("PRIVATE KEY").join("\\n");
    let mut s = format!("{{\"key\":\"{escaped}\\n\",\"level\":\"info\"}}");
    r.redact_msg(&mut StreamState::default(), &mut s);
    assert_no_body(&s);
    assert!(s.ends_with("\\n\",\"level\":\"info\"}"), "{s}");
}

#[test]
fn redact_pem_unterminated_is_bounded() {
    let r = redactor();
    let mut state = StreamState::default();
    let mut s = "-----BEGIN EC PRIVATE KEY-----".to_string();
    r.redact_msg(&mut state, &mut s);
    for _ in 0..pem::MAX_LINES {
        let mut s = KEY_BODY[0].to_string();
        r.redact_msg(&mut state, &mut s);
        assert_eq!(s, "[REDACTED:pem_private_key]");
    }
    let mut s = "ordinary line again".to_string();
    r.redact_msg(&mut state, &mut s);
    assert_eq!(s, "ordinary line again");
    assert!(!state.in_private_key());
}

#[test]
fn redact_pem_certificate_ends_unterminated_key() {
    let r = redactor();
    let mut state = StreamState::default();
    let lines = [
        "-----BEGIN RSA PRIVATE KEY-----",
        KEY_BODY[0],
        "-----BEGIN CERTIFICATE-----",
        "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ",
    ];
    let out: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut s = l.to_string();
            r.redact_msg(&mut state, &mut s);
            s
        })
        .collect();
    assert_eq!(out[1], "[REDACTED:pem_private_key]");
    assert_eq!(out[2], lines[2]);
    assert_eq!(out[3], lines[3]);
}

#[test]
fn redact_data_deep() {
    let r = redactor();
    let mut data = json!({
        "user": "bob",
        "password": "hunter2",
        "pin_count": 4,
        "db": {"Password": 1234, "host": "h", "conn": "postgres://u:pw@h/db"},
        "headers": [{"Authorization": "Bearer abcdefghijklmnop"}, {"X-Api-Key": "k-123456"}],
        "set-cookie": ["a=b", "c=d"],
        "token_count": 5,
        "nested": "{\"client_secret\":\"zz\"}",
        "note": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "is_secret": false,
    })
    .as_object()
    .unwrap()
    .clone();
    let n = r.redact_data(&mut data);
    let v = serde_json::Value::Object(data);
    assert_eq!(v["password"], "[REDACTED:password]");
    assert_eq!(v["pin_count"], 4);
    assert_eq!(v["db"]["Password"], "[REDACTED:password]");
    assert_eq!(v["db"]["conn"], "postgres://u:[REDACTED:url_password]@h/db");
    assert_eq!(v["headers"][0]["Authorization"], "Bearer [REDACTED:bearer]");
    assert_eq!(v["headers"][1]["X-Api-Key"], "[REDACTED:api_key]");
    assert_eq!(v["set-cookie"][1], "[REDACTED:cookie]");
    assert_eq!(v["token_count"], 5);
    assert_eq!(v["nested"], "{\"client_secret\":\"[REDACTED:secret]\"}");
    assert_eq!(v["note"], "[REDACTED:github_pat]");
    assert_eq!(v["is_secret"], false);
    assert_eq!(n, 9, "{v}");
}

#[test]
fn redact_config_allowlist_patterns_and_keys() {
    let text = "[redaction]\nallow = [\"AKIAIOSFODNN7EXAMPLE\"]\nallow_regex = [\"^test-\"]\nkeys = [\"pin\"]\n[[redaction.patterns]]\nname = \"employee_id\"\nregex = \"EMP-(?P<secret>[0-9]{6})\"\n";
    let l =
        crate::config::load_str(std::path::Path::new("a.toml"), text.into(), &|_| None).unwrap();
    let r = Redactor::new(&l.config.redaction).unwrap();
    assert_eq!(
        redact(&r, "id AKIAIOSFODNN7EXAMPLE"),
        "id AKIAIOSFODNN7EXAMPLE"
    );
    assert_eq!(redact(&r, "password=test-only"), "password=test-only");
    assert_eq!(redact(&r, "user_pin=1234"), "user_pin=[REDACTED:pin]");
    assert_eq!(
        redact(&r, "badge EMP-123456"),
        "badge EMP-[REDACTED:employee_id]"
    );
}

#[test]
fn redact_disabled_does_nothing() {
    let cfg = RedactionConfig {
        enabled: false,
        ..RedactionConfig::default()
    };
    let r = Redactor::new(&cfg).unwrap();
    assert!(!r.enabled());
    assert_eq!(redact(&r, "password=x"), "password=x");
}

/// Every rule's secret is still found when its line is wrapped the way log
/// shippers wrap lines: a JSON string, a quoted logfmt value, brackets.
#[test]
fn redact_rules_recall_in_wrappers() {
    let r = redactor();
    let mut failures = Vec::new();
    for c in cases::all() {
        let json = serde_json::to_string(&c.line).unwrap();
        let wrapped = [
            format!("{{\"log\":{json},\"stream\":\"stdout\"}}"),
            format!("ts=1 level=info msg={json}"),
            format!("[{}]", c.line),
            format!("\t{}\r", c.line),
        ];
        for w in wrapped {
            let out = redact(&r, &w);
            if out.contains(&c.secret) {
                failures.push(format!("{}: {w:?} -> {out:?}", c.rule));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A string matching a provider-context shape: the first branch of each
/// alternation, characters cycling through each class (seeded), optional
/// parts included, each repetition at its lower bound (or `n + extra`).
fn sample(shape: &str, seed: usize) -> String {
    fn class_chars(spec: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < spec.len() {
            let c = if spec[i] == b'\\' {
                i += 1;
                spec[i]
            } else {
                spec[i]
            };
            if spec.get(i + 1) == Some(&b'-') && i + 2 < spec.len() {
                v.extend(c..=spec[i + 2]);
                i += 3;
            } else {
                v.push(c);
                i += 1;
            }
        }
        v
    }
    fn atom(b: &[u8], i: &mut usize) -> Vec<Vec<u8>> {
        // Returns the alternatives' char sets for one atom: a literal or a
        // class is one set; a group is its first branch, one set per atom.
        match b[*i] {
            b'[' => {
                let end = *i + 1 + b[*i + 1..].iter().position(|&c| c == b']').unwrap();
                let set = class_chars(&b[*i + 1..end]);
                *i = end + 1;
                vec![set]
            }
            b'(' => {
                let mut depth = 0;
                let mut j = *i;
                let mut end_first = None;
                loop {
                    match b[j] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'|' if depth == 1 && end_first.is_none() => end_first = Some(j),
                        b'\\' => j += 1,
                        _ => {}
                    }
                    j += 1;
                }
                let inner_start = *i + 3; // `(?:`
                let inner = &b[inner_start..end_first.unwrap_or(j)];
                *i = j + 1;
                let mut k = 0;
                let mut out = Vec::new();
                while k < inner.len() {
                    let sets = atom(inner, &mut k);
                    let n = quant(inner, &mut k);
                    for _ in 0..n {
                        out.extend(sets.iter().cloned());
                    }
                }
                out
            }
            b'\\' => {
                *i += 2;
                vec![vec![b[*i - 1]]]
            }
            c => {
                *i += 1;
                vec![vec![c]]
            }
        }
    }
    fn quant(b: &[u8], i: &mut usize) -> usize {
        match b.get(*i) {
            Some(b'{') => {
                let end = *i + b[*i..].iter().position(|&c| c == b'}').unwrap();
                let body = std::str::from_utf8(&b[*i + 1..end]).unwrap();
                *i = end + 1;
                body.split(',').next().unwrap().parse().unwrap()
            }
            Some(b'?') | Some(b'+') => {
                *i += 1;
                1
            }
            _ => 1,
        }
    }
    let first = {
        let b = shape.as_bytes();
        let (mut depth, mut cut) = (0, b.len());
        let mut in_class = false;
        let mut k = 0;
        while k < b.len() {
            match b[k] {
                b'\\' => k += 1,
                b'[' => in_class = true,
                b']' => in_class = false,
                b'(' if !in_class => depth += 1,
                b')' if !in_class => depth -= 1,
                b'|' if depth == 0 && !in_class => {
                    cut = k;
                    break;
                }
                _ => {}
            }
            k += 1;
        }
        &shape[..cut]
    };
    let b = first.as_bytes();
    let mut i = 0;
    let mut out = String::new();
    let mut n = seed;
    while i < b.len() {
        let sets = atom(b, &mut i);
        let reps = quant(b, &mut i);
        for _ in 0..reps {
            for set in &sets {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                out.push(set[(n >> 33) % set.len()] as char);
            }
        }
    }
    out
}

#[test]
fn redact_context_rules_true_positive_and_near_miss() {
    use super::context::CTX_RULES;
    let r = redactor();
    let mut failures = Vec::new();
    for (k, rule) in CTX_RULES.iter().enumerate() {
        let value = sample(rule.shapes, k + 1);
        let word = rule.words[0];
        let env = format!("{}_KEY", word.to_uppercase().replace('-', "_"));
        let lines = [
            format!("{word}_key = {value}"),
            format!("{{\"{word}Key\": \"{value}\"}}"),
            format!("{env}={value}"),
            format!("  {word}.key: '{value}'"),
            format!("--{word}-key {value}"),
        ];
        for line in &lines {
            let out = redact(&r, line);
            if out.contains(&value) {
                failures.push(format!("{}: {line:?} -> {out:?}", rule.name));
            }
        }
        // The same value with no provider key, and a value of another
        // length under the provider key, pass.
        let mut nears = vec![format!("{word}_host = {}", &value[..value.len() / 2 - 1])];
        if rule.name != "deepseek_api_key" {
            // (an `sk-` key is an OpenAI-style token wherever it is)
            nears.push(format!("region = {value}"));
        }
        for near in nears {
            let out = redact(&r, &near);
            if out != near {
                failures.push(format!("{} near miss: {near:?} -> {out:?}", rule.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn redact_context_uuid_under_id_key_stays() {
    let r = redactor();
    let uuid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    for line in [
        format!("HEROKU_APP_ID={uuid}"),
        format!("heroku_release_id: {uuid}"),
    ] {
        assert_eq!(redact(&r, &line), line);
    }
    assert_eq!(
        redact(&r, &format!("HEROKU_API_KEY={uuid}")),
        "HEROKU_API_KEY=[REDACTED:heroku_api_key]"
    );
}

#[test]
fn redact_references_keep_their_value() {
    let r = redactor();
    for line in [
        "password=${DB_PASSWORD}",
        "password=${DB_PASSWORD:-changeme}",
        "DB_PASS=$DB_PASSWORD_FROM_VAULT",
        "password: \"{{ .Values.db.password }}\"",
        "password: {{ .Values.db.password }}",
        "password = %(db_password)s",
        "api_key=#{ENV['API_KEY']}",
        "secret: <%= ENV['SECRET'] %>",
        "{\"password\": \"${DB_PASSWORD}\"}",
        "token: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "password: vault:secret/data/db#password",
        "password: ENC[AES256_GCM,data:Tr7o=,iv:1=,tag:x=,type:str]",
        "secret: op://prod/db/password",
        "client_secret: projects/p1/secrets/oauth/versions/latest",
        "password: !vault |",
        "Authorization: Bearer ${API_TOKEN}",
        "postgres://app:${DB_PASS}@db:5432/x",
    ] {
        assert_eq!(redact(&r, line), line);
    }
    // A literal value next to a reference is still a secret.
    assert_eq!(
        redact(&r, "password=hunter2 user=${USER}"),
        "password=[REDACTED:password] user=${USER}"
    );
}

#[test]
fn redact_cli_short_forms() {
    let r = redactor();
    let cases = [
        ("mysql -h db -u root -pS3cret app", "S3cret"),
        ("mysqldump -uroot -p'S3cret' app", "S3cret"),
        ("sshpass -p S3cret ssh host", "S3cret"),
        ("redis-cli -h cache -a S3cret ping", "S3cret"),
        ("docker login -u bob -p S3cret registry.io", "S3cret"),
        ("mongosh --host h -u admin -p S3cret", "S3cret"),
        ("curl -u admin:S3cret https://x.example", "S3cret"),
        ("curl --user=admin:S3cret https://x.example", "S3cret"),
        ("keytool -list -storepass S3cret -keystore k.jks", "S3cret"),
        (
            "java -Djavax.net.ssl.trustStorePassword=S3cret -jar a.jar",
            "S3cret",
        ),
        ("app --db-password=S3cret --verbose", "S3cret"),
    ];
    for (line, secret) in cases {
        let out = redact(&r, line);
        assert!(!out.contains(secret), "{line:?} -> {out:?}");
    }
    for line in [
        "mkdir -p /var/lib/app && docker run -p 8080:80 -u 1000:1000 img",
        "mysql -h db -u root -p app",
        "ssh -p 2222 host",
    ] {
        assert_eq!(redact(&r, line), line);
    }
}

fn hashing(key: &str) -> Redactor {
    let text = format!("[redaction]\nmode = \"hash\"\nhash_key = \"{key}\"\n");
    let l = crate::config::load_str(std::path::Path::new("a.toml"), text, &|_| None).unwrap();
    Redactor::new(&l.config.redaction).unwrap()
}

#[test]
fn redact_hash_mode_tags_are_keyed_and_stable() {
    let a = hashing("0123456789abcdef0123456789abcdef");
    let b = hashing("fedcba9876543210fedcba9876543210");
    let pat = format!("ghp_{}", cases::an(36));
    let one = redact(&a, &format!("token {pat} here"));
    let again = redact(&a, &format!("Authorization: Bearer x password={pat}"));
    let tag = |s: &str, rule: &str| {
        let start = s.find(&format!("[REDACTED:{rule}:")).unwrap() + rule.len() + 11;
        s[start..start + 6].to_string()
    };
    assert!(one.starts_with("token [REDACTED:github_pat:"), "{one}");
    assert_eq!(
        tag(&one, "github_pat"),
        tag(&again, "github_pat"),
        "{again}"
    );
    let other_key = redact(&b, &format!("token {pat} here"));
    assert_ne!(tag(&one, "github_pat"), tag(&other_key, "github_pat"));
    let other = redact(
        &a,
        &format!("token ghp_{} here", cases::fill(cases::AN, 36, 99)),
    );
    assert_ne!(tag(&one, "github_pat"), tag(&other, "github_pat"));
    assert!(tag(&one, "github_pat")
        .bytes()
        .all(|c| c.is_ascii_hexdigit()));
    // Idempotent: a tag is never redacted again.
    assert_eq!(redact(&a, &one), one);
    let pw = redact(&a, "password=hunter2");
    assert_eq!(redact(&a, &pw), pw);
}

#[test]
fn redact_hash_mode_config_errors() {
    let load = |text: &str| {
        crate::config::load_str(std::path::Path::new("a.toml"), text.into(), &|_| None)
    };
    let e = load("[redaction]\nmode = \"hash\"\n").unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (2, 8), "{e}");
    assert!(e.0[0].message.contains("needs a key"), "{e}");
    let e = load("[redaction]\nmode = \"hash\"\nhash_key = \"short\"\n").unwrap_err();
    assert!(e.0[0].message.contains("at least 16"), "{e}");
    assert!(!e.to_string().contains("short\""), "{e}");
    let e = load("[redaction]\nmode = \"hash\"\nhash_key_env = \"LOGSHIP_TEST_UNSET_KEY_VAR\"\n")
        .unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (3, 16), "{e}");
    let e =
        load("[redaction]\nmode = \"hash\"\nhash_key = \"0123456789abcdef\"\nhash_length = 64\n")
            .unwrap_err();
    assert_eq!(e.0[0].line, 4, "{e}");
    let e = load("[redaction]\nmode = \"sha\"\n").unwrap_err();
    assert_eq!(e.0[0].line, 2, "{e}");
    let l = load("[redaction]\nmode = \"hash\"\nhash_key = \"0123456789abcdef\"\n").unwrap();
    let dbg = format!("{:?}", l.config.redaction);
    assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
    assert!(!l.config.redaction.summary().contains("0123456789abcdef"));
}

fn with_pii(extra: &str) -> Redactor {
    let text =
        format!("[redaction]\npii = [\"email\", \"card\", \"ipv4\", \"ipv6\", \"phone\"]\n{extra}");
    let l = crate::config::load_str(std::path::Path::new("a.toml"), text, &|_| None).unwrap();
    Redactor::new(&l.config.redaction).unwrap()
}

#[test]
fn redact_pii_is_opt_in() {
    let line =
        "user jane@example.com paid with 4111 1111 1111 1111 from 203.0.113.9 tel +1 415 555 0100";
    assert_eq!(redact(&redactor(), line), line);
    let out = redact(&with_pii(""), line);
    assert_eq!(
        out,
        "user [REDACTED:email] paid with [REDACTED:card] from [REDACTED:ipv4] tel [REDACTED:phone]"
    );
    let partial = redact(
        &with_pii("email = \"partial\"\n"),
        "to jane.doe@example.com ok",
    );
    assert_eq!(partial, "to j***@example.com ok");
    let p = with_pii("email = \"partial\"\n");
    assert_eq!(redact(&p, &partial), partial);
    let out = redact(&with_pii(""), "client 2001:db8::1 card 4111111111111112");
    assert_eq!(out, "client [REDACTED:ipv6] card 4111111111111112");
    let e = crate::config::load_str(
        std::path::Path::new("a.toml"),
        "[redaction]\npii = [\"ssn\"]\n".into(),
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(e.0[0].line, 2, "{e}");
}

#[test]
fn redact_tokens_in_url_paths_and_escapes() {
    let r = redactor();
    let tg = format!("123456789:AA{}", cases::an(33));
    let gh = format!("ghp_{}", cases::an(36));
    for (line, secret) in [
        (
            format!("POST https://api.telegram.org/bot{tg}/sendMessage"),
            tg.clone(),
        ),
        (format!("{{\"m\":\"x\\n{gh}\"}}"), gh.clone()),
        (format!("q=token%3D{gh}%26x"), gh.clone()),
    ] {
        let out = redact(&r, &line);
        assert!(!out.contains(&secret), "{line} -> {out}");
    }
}

#[test]
fn redact_key_material_under_a_key_named_key() {
    let r = redactor();
    let material = "Zk3v9QpL2xW8rT5yNb7cHd1FgJ4sMa6E";
    for line in [
        format!("{{\"key\": \"{material}\"}}"),
        format!("hmacKey={material}"),
        format!("  encryption.key: '{material}'"),
    ] {
        let out = redact(&r, &line);
        assert!(!out.contains(material), "{line} -> {out}");
    }
    for line in [
        "{\"key\": \"5d41402abc4b2a76b9719d911017c592\"}",
        "{\"key\": \"logs/2024/05/01/app.ndjson.gz\"}",
        "{\"idempotencyKey\": \"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"}",
        "{\"publicKey\": \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEabc123XYZ\"}",
        "partitionKey=user-12345 sortKey=2024-05-01",
    ] {
        assert_eq!(redact(&r, line), line);
    }
}

/// Log content may hold the text of a marker, closed or not: an unclosed
/// `[REDACTED` must not switch redaction off for the rest of the line, and
/// a PEM body after it is still redacted (a leak the `redact` fuzz target
/// found).
#[test]
fn redact_an_unclosed_marker_in_the_input_hides_nothing() {
    let r = redactor();
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    for prefix in [
        "[REDACTED ",
        " pem[REDACTED",
        "[REDACTED:x y] ",
        "[REDACTED:",
    ] {
        let out = redact(&r, &format!("{prefix}token {token}"));
        assert!(!out.contains(token), "{prefix:?}: {out}");
    }
    let mut st = StreamState::default();
    let mut body = String::new();
    for line in [
        " pem[REDACTED-----BEGIN PRIVATE KEY-----",
        " pem[REDACTEDMIIEowIBAAKCAQEAzCanaryBodyLine1xxqhkiG9w0BAQEFAASC",
        " pem[REDACTED-----END PRIVATE KEY-----",
    ] {
        let mut s = line.to_string();
        r.redact_msg(&mut st, &mut s);
        body.push_str(&s);
    }
    assert!(!body.contains("CanaryBodyLine1"), "{body}");
    // A marker the engine wrote is left as it is by a second pass.
    let once = redact(&r, &format!("token {token}"));
    assert_eq!(redact(&r, &once), once);
}

#[test]
fn redact_equal_configs_share_one_build() {
    let load = |text: &str| {
        crate::config::load_str(std::path::Path::new("a.toml"), text.into(), &|_| None)
            .unwrap()
            .config
            .redaction
    };
    // The same values written elsewhere in the file are the same config.
    let a = load("[redaction]\nkeys = [\"badge\"]\n");
    let b = load("\n[agent]\n\n[redaction]\n\nkeys = [ \"badge\" ]\n");
    // Tests build engines in parallel, and one may replace the remembered
    // build between two calls here: asked a few times, not once.
    let shared = (0..20).any(|_| {
        let x = Redactor::new(&a).unwrap();
        Redactor::new(&b).unwrap().is_same_build(&x)
    });
    assert!(shared, "equal configs were built twice");
    let c = load("[redaction]\nkeys = [\"pin\"]\n");
    let x = Redactor::new(&a).unwrap();
    let z = Redactor::new(&c).unwrap();
    assert!(!z.is_same_build(&x));
    assert_eq!(
        redact(&x, "badge=1234 pin=77"),
        "badge=[REDACTED:badge] pin=77"
    );
    assert_eq!(
        redact(&z, "badge=1234 pin=77"),
        "badge=1234 pin=[REDACTED:pin]"
    );

    // `hash_key_env` names a variable: a new value is a new engine, even
    // when the config text is the same.
    let var = "LOGSHIP_TEST_SHARED_BUILD_KEY";
    std::env::set_var(var, "0123456789abcdef0123");
    let h = load(&format!(
        "[redaction]\nmode = \"hash\"\nhash_key_env = \"{var}\"\n"
    ));
    let first = redact(&Redactor::new(&h).unwrap(), "password=hunter2");
    std::env::set_var(var, "fedcba9876543210fedc");
    let second = redact(&Redactor::new(&h).unwrap(), "password=hunter2");
    assert_ne!(first, second, "the old key's engine was reused");
}
