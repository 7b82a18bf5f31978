//! A held-out-style corpus, generated: realistic fake credentials of many
//! providers in the contexts logs carry them, plus benign look-alikes, and
//! PEM private keys line by line. It measures what the issue asks for:
//! recall of secret substrings (goal >= 99.9 %), benign lines changed (goal
//! <= 0.1 %), and no PEM body line leaked.
//!
//! The formats below are written from the providers' public descriptions
//! (prefix, alphabet, length), independently of the rule table in
//! `src/redact/rules.rs`, so that a rule which drifts from its provider's
//! format shows up here as a miss. Every value is random (seeded, so a run is
//! reproducible); no real credential appears. The summary is printed
//! (`cargo test --test core redact_heldout -- --nocapture`) and the goals are
//! asserted.

use logship::redact::{RedactionConfig, Redactor, StreamState};

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }
}

const AN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const AN_: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
const HEX: &str = "0123456789abcdef";
const UP32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPAN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWAN: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIG: &str = "0123456789";

fn uuid(r: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        r.chars(HEX, 8),
        r.chars(HEX, 4),
        r.chars(HEX, 4),
        r.chars(HEX, 4),
        r.chars(HEX, 12)
    )
}

/// A credential with a format of its own (prefix, alphabet, length).
fn provider_token(r: &mut Rng, k: usize) -> (&'static str, String) {
    let t = match k {
        0 => ("github classic PAT", format!("ghp_{}", r.chars(AN, 36))),
        1 => ("github oauth", format!("gho_{}", r.chars(AN, 36))),
        2 => ("github app", format!("ghs_{}", r.chars(AN, 36))),
        3 => ("github user-to-server", format!("ghu_{}", r.chars(AN, 36))),
        4 => ("github refresh", format!("ghr_{}", r.chars(AN, 76))),
        5 => (
            "github fine-grained",
            format!("github_pat_{}_{}", r.chars(AN, 22), r.chars(AN, 59)),
        ),
        6 => ("gitlab PAT", format!("glpat-{}", r.chars(AN_, 20))),
        7 => ("gitlab trigger", format!("glptt-{}", r.chars(HEX, 40))),
        8 => ("gitlab runner", format!("glrt-{}", r.chars(AN_, 20))),
        9 => ("gitlab deploy", format!("gldt-{}", r.chars(AN_, 20))),
        10 => ("aws access key", format!("AKIA{}", r.chars(UP32, 16))),
        11 => ("aws sts key", format!("ASIA{}", r.chars(UP32, 16))),
        12 => ("google api key", format!("AIza{}", r.chars(AN_, 35))),
        13 => ("google oauth token", format!("ya29.{}", r.chars(AN_, 120))),
        14 => (
            "google oauth secret",
            format!("GOCSPX-{}", r.chars(AN_, 28)),
        ),
        15 => (
            "slack bot",
            format!(
                "xoxb-{}-{}-{}",
                r.chars(DIG, 12),
                r.chars(DIG, 13),
                r.chars(AN, 24)
            ),
        ),
        16 => (
            "slack user",
            format!(
                "xoxp-{}-{}-{}-{}",
                r.chars(DIG, 12),
                r.chars(DIG, 12),
                r.chars(DIG, 13),
                r.chars(HEX, 32)
            ),
        ),
        17 => (
            "slack app",
            format!(
                "xapp-1-A{}-{}-{}",
                r.chars(UPAN, 10),
                r.chars(DIG, 13),
                r.chars(HEX, 64)
            ),
        ),
        18 => ("stripe secret", format!("sk_live_{}", r.chars(AN, 99))),
        19 => ("stripe restricted", format!("rk_live_{}", r.chars(AN, 24))),
        20 => ("stripe test", format!("sk_test_{}", r.chars(AN, 24))),
        21 => ("stripe webhook", format!("whsec_{}", r.chars(AN, 32))),
        22 => (
            "openai project",
            format!("sk-proj-{}T3BlbkFJ{}", r.chars(AN_, 74), r.chars(AN_, 74)),
        ),
        23 => (
            "openai legacy",
            format!("sk-{}T3BlbkFJ{}", r.chars(AN, 20), r.chars(AN, 20)),
        ),
        24 => ("anthropic", format!("sk-ant-api03-{}AA", r.chars(AN_, 93))),
        25 => ("huggingface", format!("hf_{}", r.chars(AN, 34))),
        26 => ("npm", format!("npm_{}", r.chars(AN, 36))),
        27 => ("pypi", format!("pypi-AgEIcHlwaS5vcmc{}", r.chars(AN_, 70))),
        28 => ("rubygems", format!("rubygems_{}", r.chars(HEX, 48))),
        29 => (
            "sendgrid",
            format!("SG.{}.{}", r.chars(AN_, 22), r.chars(AN_, 43)),
        ),
        30 => ("twilio api key", format!("SK{}", r.chars(HEX, 32))),
        31 => ("mailgun", format!("key-{}", r.chars(HEX, 32))),
        32 => ("shopify", format!("shpat_{}", r.chars(HEX, 32))),
        33 => ("digitalocean", format!("dop_v1_{}", r.chars(HEX, 64))),
        34 => ("databricks", format!("dapi{}", r.chars(HEX, 32))),
        35 => ("doppler", format!("dp.pt.{}", r.chars(AN, 43))),
        36 => ("vault", format!("hvs.{}", r.chars(AN_, 90))),
        37 => ("planetscale", format!("pscale_tkn_{}", r.chars(AN_, 43))),
        38 => ("linear", format!("lin_api_{}", r.chars(AN, 40))),
        39 => (
            "postman",
            format!("PMAK-{}-{}", r.chars(HEX, 24), r.chars(HEX, 34)),
        ),
        40 => ("new relic", format!("NRAK-{}", r.chars(UPAN, 27))),
        41 => ("heroku v2", format!("HRKU-AA{}", r.chars(AN_, 58))),
        42 => (
            "grafana service account",
            format!("glsa_{}_{}", r.chars(AN, 32), r.chars(HEX, 8)),
        ),
        43 => ("grafana cloud", format!("glc_{}", r.chars(B64, 80))),
        44 => (
            "jwt",
            format!(
                "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
                r.chars(AN_, 60),
                r.chars(AN_, 43)
            ),
        ),
        45 => (
            "age",
            format!(
                "AGE-SECRET-KEY-1{}",
                r.chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
            ),
        ),
        46 => ("sentry user", format!("sntryu_{}", r.chars(HEX, 64))),
        47 => (
            "notion",
            format!("ntn_{}{}", r.chars(DIG, 11), r.chars(AN, 35)),
        ),
        48 => ("atlassian", format!("ATATT3{}", r.chars(AN_, 186))),
        49 => ("docker hub", format!("dckr_pat_{}", r.chars(AN_, 27))),
        50 => ("fly.io", format!("fo1_{}", r.chars(AN_, 43))),
        51 => ("supabase", format!("sbp_{}", r.chars(HEX, 40))),
        52 => (
            "telegram bot",
            format!("{}:AA{}", r.chars(DIG, 10), r.chars(AN_, 33)),
        ),
        53 => ("square", format!("EAAA{}", r.chars(AN_, 60))),
        54 => ("square oauth", format!("sq0csp-{}", r.chars(AN_, 43))),
        55 => (
            "dynatrace",
            format!("dt0c01.{}.{}", r.chars(UPAN, 24), r.chars(AN, 64)),
        ),
        56 => ("easypost", format!("EZAK{}", r.chars(AN, 54))),
        57 => ("shippo", format!("shippo_live_{}", r.chars(HEX, 40))),
        58 => ("typeform", format!("tfp_{}", r.chars(AN, 59))),
        59 => ("groq", format!("gsk_{}", r.chars(AN, 52))),
        60 => ("replicate", format!("r8_{}", r.chars(AN, 37))),
        61 => ("perplexity", format!("pplx-{}", r.chars(AN, 48))),
        62 => ("xai", format!("xai-{}", r.chars(AN, 80))),
        63 => ("pulumi", format!("pul-{}", r.chars(HEX, 40))),
        64 => (
            "terraform cloud",
            format!("{}.atlasv1.{}", r.chars(AN, 14), r.chars(AN_, 67)),
        ),
        65 => ("bitbucket", format!("ATBB{}", r.chars(AN, 32))),
        66 => (
            "circleci",
            format!("CCIPAT_{}_{}", r.chars(AN, 22), r.chars(HEX, 40)),
        ),
        67 => ("buildkite", format!("bkua_{}", r.chars(HEX, 40))),
        68 => ("contentful", format!("CFPAT-{}", r.chars(AN_, 43))),
        69 => ("readme", format!("rdme_{}", r.chars(LOWAN, 70))),
        70 => ("prefect", format!("pnu_{}", r.chars(AN, 36))),
        71 => ("infracost", format!("ico-{}", r.chars(AN, 32))),
        72 => ("sourcegraph", format!("sgp_{}", r.chars(HEX, 40))),
        73 => ("sonarqube", format!("squ_{}", r.chars(HEX, 40))),
        74 => ("openshift", format!("sha256~{}", r.chars(AN_, 43))),
        75 => (
            "1password",
            format!(
                "A3-{}-{}-{}-{}-{}",
                r.chars(UPAN, 6),
                r.chars(UPAN, 11),
                r.chars(UPAN, 5),
                r.chars(UPAN, 5),
                r.chars(UPAN, 5)
            ),
        ),
        76 => ("artifactory", format!("AKCp{}", r.chars(AN, 69))),
        77 => ("clojars", format!("CLOJARS_{}", r.chars(LOWAN, 60))),
        78 => (
            "brevo",
            format!("xkeysib-{}-{}", r.chars(HEX, 64), r.chars(AN, 16)),
        ),
        79 => (
            "mailchimp",
            format!("{}-us{}", r.chars(HEX, 32), r.below(20) + 1),
        ),
        80 => (
            "shopify shared secret",
            format!("shpss_{}", r.chars(HEX, 32)),
        ),
        81 => ("nuget", format!("oy2{}", r.chars(LOWAN, 43))),
        82 => (
            "langsmith",
            format!("lsv2_pt_{}_{}", r.chars(HEX, 32), r.chars(HEX, 10)),
        ),
        83 => ("hubspot private app", format!("pat-na1-{}", uuid(r))),
        84 => ("razorpay", format!("rzp_live_{}", r.chars(AN, 14))),
        85 => ("tencent", format!("AKID{}", r.chars(AN, 32))),
        86 => ("alibaba", format!("LTAI{}", r.chars(AN, 20))),
        87 => ("netlify", format!("nfp_{}", r.chars(AN, 36))),
        88 => ("neon", format!("napi_{}", r.chars(AN, 64))),
        89 => ("duffel", format!("duffel_live_{}", r.chars(AN_, 43))),
        90 => ("frame.io", format!("fio-u-{}", r.chars(AN_, 64))),
        91 => ("yandex api key", format!("AQVN{}", r.chars(AN_, 36))),
        92 => (
            "defined networking",
            format!("dnkey-{}-{}", r.chars(AN, 26), r.chars(AN, 52)),
        ),
        93 => ("scalingo", format!("tk-us-{}", r.chars(AN_, 48))),
        94 => ("settlemint", format!("sm_pat_{}", r.chars(AN, 16))),
        95 => (
            "flutterwave",
            format!("FLWSECK_TEST-{}-X", r.chars(HEX, 32)),
        ),
        96 => ("facebook page", format!("EAAG{}", r.chars(AN, 160))),
        97 => ("clickhouse", format!("4b1d{}", r.chars(AN, 38))),
        98 => ("adobe secret", format!("p8e-{}", r.chars(AN, 32))),
        _ => (
            "openai service account",
            format!("sk-svcacct-{}", r.chars(AN_, 80)),
        ),
    };
    t
}
const PROVIDERS: usize = 100;

/// Prefix-less credentials: only the key that names the provider gives them
/// away (`key` is formatted in the context's own key style).
fn keyed_token(r: &mut Rng, k: usize) -> (&'static str, &'static str, String) {
    match k {
        0 => ("twilio auth token", "TWILIO_AUTH_TOKEN", r.chars(HEX, 32)),
        1 => ("heroku api key", "HEROKU_API_KEY", uuid(r)),
        2 => ("datadog api key", "DD_API_KEY", r.chars(HEX, 32)),
        3 => ("aws secret key", "AWS_SECRET_ACCESS_KEY", r.chars(B64, 40)),
        4 => ("algolia admin key", "ALGOLIA_ADMIN_KEY", r.chars(AN, 32)),
        5 => ("sentry auth", "SENTRY_KEY", r.chars(HEX, 64)),
        6 => ("mailjet", "MAILJET_API_KEY", r.chars(HEX, 32)),
        7 => ("okta", "OKTA_API_TOKEN", format!("00{}", r.chars(AN_, 40))),
        8 => ("cloudflare global", "CLOUDFLARE_API_KEY", r.chars(HEX, 37)),
        9 => (
            "twitter consumer secret",
            "twitter_consumer_key",
            r.chars(AN, 25),
        ),
        10 => (
            "azure storage",
            "AZURE_STORAGE_KEY",
            format!("{}==", r.chars(B64, 86)),
        ),
        11 => ("snyk", "SNYK_TOKEN", uuid(r)),
        12 => ("confluent", "confluent_api_secret", r.chars(AN, 64)),
        13 => ("hubspot", "hubspot_api_key", uuid(r)),
        _ => ("linode", "linode_key", r.chars(HEX, 64)),
    }
}
const KEYED: usize = 15;

/// Contexts a provider token appears in; `{s}` is the token.
const TOKEN_CONTEXTS: &[&str] = &[
    "2024-05-01T10:00:00Z INFO using {s} for upload",
    "{\"level\":\"info\",\"msg\":\"auth ok\",\"value\":\"{s}\"}",
    "level=info cred={s} msg=\"started\"",
    "ts=1 level=warn msg=\"bad credential {s} rejected\"",
    "X-Custom-Auth: {s}",
    "Authorization: Bearer {s}",
    "Authorization: token {s}",
    "GET /api/v1/items?access_token={s}&page=2 HTTP/1.1",
    "https://api.example.com/v1/hook?key={s}",
    "deploy --token {s} --region eu-west-1",
    "deploy --api-key={s}",
    "export GH_TOKEN={s}",
    "CI_CRED={s}",
    "  token: {s}",
    "  api_key: \"{s}\"",
    "    client = Client(\"{s}\")",
    "Caused by: com.acme.AuthException: invalid credential '{s}'",
    "{'user': 'bob', 'cred': '{s}', 'retries': 3}",
    "{ user: 'bob', creds: '{s}', retries: 3 }",
    "{\"log\":\"{\\\"t\\\":\\\"{s}\\\"}\\n\",\"stream\":\"stdout\"}",
    "{\"log\":\"token={s}\\n\",\"stream\":\"stderr\",\"time\":\"2024-05-01T10:00:00Z\"}",
    "E1122 10:00:00.123456 1 client.go:42] auth failed for \"{s}\"",
    "<13>1 2024-05-01T10:00:00Z host app 1 - - key \"{s}\" rejected",
    "[ERROR] (main) request failed: {s}",
    "value={s};",
    "value=%22{s}%22",
    "{\"msg\":\"line\\n{s}\"}",
];

/// Contexts of a key's value (`{k}` key, `{s}` value).
const KEY_CONTEXTS: &[&str] = &[
    "{k}={s}",
    "export {k}={s}",
    "{\"{k}\":\"{s}\"}",
    "{\"config\":{\"{k}\": \"{s}\"}}",
    "  {k}: {s}",
    "  {k}: '{s}'",
    "--{k} {s}",
    "--{k}={s}",
    "{'{k}': '{s}'}",
    "{ {k}: '{s}' }",
    "level=info {k}={s} msg=boot",
    "{k} = \"{s}\"",
    "declare -x {k}=\"{s}\"",
    "{\"log\":\"{k}={s}\\n\",\"stream\":\"stdout\"}",
];

/// Secret key names for random passwords and the like.
const SECRET_KEYS: &[&str] = &[
    "password",
    "db_password",
    "DB_PASSWORD",
    "passwd",
    "client_secret",
    "api_key",
    "apiKey",
    "access_token",
    "auth_token",
    "secret_key",
    "MYSQL_ROOT_PASSWORD",
    "redisPassword",
    "smtp_pass",
    "x-api-key",
    "private_token",
    "session_secret",
];

/// Contexts of a password that are not `key<sep>value`.
const PASSWORD_CONTEXTS: &[&str] = &[
    "connecting to postgres://app:{s}@db.internal:5432/app",
    "redis://:{s}@cache:6379/0",
    "mongodb+srv://admin:{s}@cluster0.example.net/db",
    "mysql -h db -u root -p{s} app",
    "sshpass -p {s} ssh deploy@host",
    "curl -sS -u admin:{s} https://ci.example.com/api",
    "docker login -u bob -p {s} registry.example.com",
    "redis-cli -h cache -a {s} ping",
    "<password>{s}</password>",
    "Authorization: Basic {b}",
    "jdbc:postgresql://db:5432/app?user=app&password={s}&ssl=true",
    "keytool -importkeystore -srcstorepass {s} -destkeystore k.jks",
    "GET /login?user=bob&password={s} HTTP/1.1",
    "{\"headers\":{\"Cookie\":\"sid={s}\"}}",
    "Set-Cookie: session={s}; Path=/; HttpOnly",
];

fn base64(s: &str) -> String {
    const T: &[u8] = B64.as_bytes();
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Benign lines that look like secrets and are not.
fn benign(r: &mut Rng, k: usize) -> String {
    match k % 30 {
        0 => format!(
            "commit {} Merge pull request #{}",
            r.chars(HEX, 40),
            r.below(9000)
        ),
        1 => format!("pulled image sha256:{}", r.chars(HEX, 64)),
        2 => format!("request_id={} status=200 dur_ms={}", uuid(r), r.below(900)),
        3 => format!("x-request-id: {}", uuid(r)),
        4 => format!("trace_id={} span_id={}", r.chars(HEX, 32), r.chars(HEX, 16)),
        5 => format!("ETag: \"{}\"", r.chars(HEX, 32)),
        6 => format!("data={} len=48", r.chars(B64, 64)),
        7 => format!(
            "version {}.{}.{} build {}",
            r.below(9),
            r.below(30),
            r.below(99),
            r.chars(HEX, 7)
        ),
        8 => format!(
            "GET https://example.com/a/b?page={}&sort=asc HTTP/1.1 200",
            r.below(99)
        ),
        9 => format!(
            "token_count={} max_tokens=4096 tokens_used={}",
            r.below(900),
            r.below(4000)
        ),
        10 => format!(
            "password_length={} password_hash_algo=argon2id token_type=Bearer",
            r.below(30)
        ),
        11 => "GitHub tokens start with ghp_ and Slack bot tokens with xoxb-".to_string(),
        12 => format!(
            "at com.acme.auth.TokenService.refresh(TokenService.java:{})",
            r.below(900)
        ),
        13 => format!(
            "pod api-{}-{} restarted",
            r.chars(LOWAN, 9),
            r.chars(LOWAN, 5)
        ),
        14 => format!(
            "ulid={} job done",
            r.chars("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 26)
        ),
        15 => format!(
            "Failed password for invalid user {} from 10.0.{}.{} port 22 ssh2",
            r.chars("abcdefghij", 6),
            r.below(255),
            r.below(255)
        ),
        16 => "pam_unix(sshd:session): session opened for user root by (uid=0)".to_string(),
        17 => format!("cache key=user:{} hit=true ttl=300", r.below(99999)),
        18 => format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} deploy@ci",
            r.chars(B64, 43)
        ),
        19 => format!("loaded pk_live_{} (publishable)", r.chars(AN, 24)),
        20 => format!(
            "md5={} file=/var/lib/app/{}.tar.gz",
            r.chars(HEX, 32),
            r.chars(LOWAN, 8)
        ),
        21 => format!(
            "AKIA is the prefix of an access key id; got {} chars",
            r.below(30)
        ),
        22 => format!(
            "Session::new() at src/session.rs:{} token::parse ok",
            r.below(900)
        ),
        23 => format!("heroku release v{} app_id={}", r.below(900), uuid(r)),
        24 => format!("GITHUB_SHA={} GITHUB_REF=refs/heads/main", r.chars(HEX, 40)),
        25 => "password: ******** token: ${GITHUB_TOKEN} secret: {{ .Values.secret }}".to_string(),
        26 => format!("sk-{} is too short to be a key", r.chars(AN, 8)),
        27 => format!(
            "Bearer tokens are described in RFC 6750; expires_in={}",
            r.below(7200)
        ),
        28 => format!(
            "node_modules/@types/node@{}.{}.{}/index.d.ts",
            r.below(22),
            r.below(10),
            r.below(10)
        ),
        _ => format!(
            "0x{} segfault at {} ip {}",
            r.chars(HEX, 12),
            r.chars(HEX, 8),
            r.chars(HEX, 16)
        ),
    }
}

struct Tally {
    secrets: usize,
    leaked: Vec<String>,
}

impl Tally {
    fn check(&mut self, r: &Redactor, line: &str, secret: &str, what: &str) {
        let mut s = line.to_string();
        r.redact_msg(&mut StreamState::default(), &mut s);
        self.secrets += 1;
        if s.contains(secret) {
            self.leaked.push(format!("{what}: {line} -> {s}"));
        }
    }
}

#[test]
fn redact_heldout_recall_and_benign_rate() {
    let r = Redactor::new(&RedactionConfig::default()).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut t = Tally {
        secrets: 0,
        leaked: Vec::new(),
    };
    for k in 0..PROVIDERS {
        for ctx in TOKEN_CONTEXTS {
            for _ in 0..3 {
                let (name, tok) = provider_token(&mut rng, k);
                t.check(&r, &ctx.replace("{s}", &tok), &tok, name);
            }
        }
    }
    for k in 0..KEYED {
        for ctx in KEY_CONTEXTS {
            let (name, key, tok) = keyed_token(&mut rng, k);
            let key = if ctx.starts_with("--") {
                key.to_lowercase().replace('_', "-")
            } else {
                key.to_string()
            };
            t.check(
                &r,
                &ctx.replace("{k}", &key).replace("{s}", &tok),
                &tok,
                name,
            );
        }
    }
    for _ in 0..600 {
        // A value that starts with `-` after a flag is another flag.
        let len = 9 + rng.below(14);
        let pw = rng.chars(AN, 1)
            + &rng.chars(
                "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!%^*_+-",
                len,
            );
        if rng.below(2) == 0 {
            let key = *rng.pick(SECRET_KEYS);
            let ctx = *rng.pick(KEY_CONTEXTS);
            let key = if ctx.starts_with("--") {
                key.to_lowercase().replace('_', "-")
            } else {
                key.to_string()
            };
            t.check(
                &r,
                &ctx.replace("{k}", &key).replace("{s}", &pw),
                &pw,
                "key value",
            );
        } else {
            let ctx = *rng.pick(PASSWORD_CONTEXTS);
            let line = ctx
                .replace("{s}", &pw)
                .replace("{b}", &base64(&format!("bob:{pw}")));
            let secret = if ctx.contains("{b}") {
                base64(&format!("bob:{pw}"))
            } else {
                pw.clone()
            };
            t.check(&r, &line, &secret, "password");
        }
    }
    // Benign look-alikes.
    let mut benign_lines = 0;
    let mut changed = Vec::new();
    for k in 0..6000 {
        let line = benign(&mut rng, k);
        let mut s = line.clone();
        r.redact_msg(&mut StreamState::default(), &mut s);
        benign_lines += 1;
        if s != line {
            changed.push(format!("{line} -> {s}"));
        }
    }
    // PEM private keys, one line at a time, with logger prefixes.
    let mut pem_body_lines = 0;
    let mut pem_leaks = Vec::new();
    for k in 0..200 {
        let kind = *rng.pick(&[
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ]);
        let prefix = match k % 3 {
            0 => String::new(),
            1 => format!("2024-05-01T10:00:{:02}Z ERROR app: ", k % 60),
            _ => format!("[pod-{}] ", rng.chars(LOWAN, 5)),
        };
        let body: Vec<String> = (0..8 + rng.below(20)).map(|_| rng.chars(B64, 64)).collect();
        let mut state = StreamState::default();
        let mut lines = vec![format!("{prefix}-----BEGIN {kind}-----")];
        lines.extend(body.iter().map(|b| format!("{prefix}{b}")));
        lines.push(format!("{prefix}-----END {kind}-----"));
        let mut out = Vec::new();
        for l in lines {
            let mut s = l;
            r.redact_msg(&mut state, &mut s);
            out.push(s);
        }
        let all = out.join("\n");
        for b in &body {
            pem_body_lines += 1;
            if all.contains(b.as_str()) || all.contains(&b[..24]) {
                pem_leaks.push(b.clone());
            }
        }
    }
    let recall = 1.0 - t.leaked.len() as f64 / t.secrets as f64;
    let benign_rate = changed.len() as f64 / benign_lines as f64;
    println!(
        "held-out: {} secrets, {} leaked, recall {:.4} %; {} benign lines, {} changed ({:.3} %); {} PEM body lines, {} leaked",
        t.secrets,
        t.leaked.len(),
        recall * 100.0,
        benign_lines,
        changed.len(),
        benign_rate * 100.0,
        pem_body_lines,
        pem_leaks.len()
    );
    assert!(
        recall >= 0.999,
        "recall {recall:.4}; leaked:\n{}",
        t.leaked[..t.leaked.len().min(40)].join("\n")
    );
    assert!(
        benign_rate <= 0.001,
        "benign changed {benign_rate:.4}:\n{}",
        changed[..changed.len().min(40)].join("\n")
    );
    assert!(pem_leaks.is_empty(), "PEM body leaked: {pem_leaks:?}");
}
