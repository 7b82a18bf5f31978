//! Provider detectors: credentials whose *format* gives them away.
//!
//! Each rule is a regex plus the literal keywords that any match must
//! contain. The engine runs one Aho-Corasick automaton over all keywords and
//! only then the regexes of the rules whose keywords occurred, so a benign
//! line costs one automaton pass. Keywords are case-sensitive (provider
//! prefixes are), which keeps the automaton small and its hits rare.
//!
//! Rules prefer a distinctive prefix (`ghp_`, `xoxb-`, `AKIA`). Formats with
//! no prefix (the AWS secret key, Datadog keys) need a context word before
//! them; a bare 40-character string is not redacted, because hashes and ids
//! look the same. `group` names the part that is secret, so that
//! `https://hooks.slack.com/services/` or a scheme word stays readable.
//!
//! The tests at the bottom hold one true positive and one near miss per rule.

/// One detector.
pub struct Rule {
    /// `rule` label and `[REDACTED:<name>]` marker.
    pub name: &'static str,
    /// Literals every match contains (case-sensitive).
    pub keywords: &'static [&'static str],
    pub pattern: &'static str,
    /// Capture group that is the secret (0: the whole match).
    pub group: usize,
    /// Extra check on the secret text, for formats a regex cannot pin down.
    pub check: Option<fn(&str) -> bool>,
}

const fn rule(
    name: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    group: usize,
) -> Rule {
    Rule {
        name,
        keywords,
        pattern,
        group,
        check: None,
    }
}

/// Base64 text that decodes to `user:password` (printable, with a colon).
fn is_basic_credential(s: &str) -> bool {
    match decode_base64(s) {
        Some(d) => {
            d.contains(&b':') && d.iter().all(|&c| (0x20..0x7f).contains(&c)) && d.len() >= 3
        }
        None => false,
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A JWT: its first part must decode to a JSON header.
fn is_jwt(s: &str) -> bool {
    let head = s.split('.').next().unwrap_or("");
    decode_base64(head).is_some_and(|d| d.starts_with(b"{"))
}

/// Mixed letters and digits: real keys are random, words and ids are not.
fn looks_random(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic)
}

/// The built-in detectors. Order matters only for the tests.
pub static RULES: &[Rule] = &[
    // --- cloud providers
    rule(
        "aws_access_key_id",
        &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b",
        1,
    ),
    Rule {
        check: Some(looks_random),
        ..rule(
            "aws_secret_access_key",
            &["aws", "AWS", "Aws"],
            r#"(?i)aws[a-z0-9_.\-]{0,24}(?:secret|sk)[a-z0-9_.\-]{0,24}["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            1,
        )
    },
    rule(
        "google_api_key",
        &["AIza"],
        r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        1,
    ),
    rule(
        "google_oauth_secret",
        &["GOCSPX-"],
        r"\bGOCSPX-[A-Za-z0-9_\-]{28}",
        0,
    ),
    rule(
        "google_oauth_token",
        &["ya29."],
        r"\bya29\.[0-9A-Za-z_\-]{30,}",
        0,
    ),
    rule(
        "gcp_private_key_id",
        &["private_key_id"],
        r#"private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})\\?""#,
        1,
    ),
    rule(
        "azure_storage_key",
        &["AccountKey="],
        r"AccountKey=([A-Za-z0-9+/]{86}==)",
        1,
    ),
    rule(
        "azure_shared_access_key",
        &["SharedAccessKey=", "SharedAccessSignature="],
        r"Shared(?:AccessKey|AccessSignature)=([A-Za-z0-9+/%=&:.\-]{20,}?)(?:;|\s|$|\x22)",
        1,
    ),
    rule(
        "azure_ad_client_secret",
        &["Q~"],
        r"(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)",
        1,
    ),
    rule(
        "digitalocean_token",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        r"\bdo[opr]_v1_[a-f0-9]{64}\b",
        0,
    ),
    rule(
        "cloudflare_origin_ca_key",
        &["v1.0-"],
        r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{146}\b",
        0,
    ),
    Rule {
        check: Some(looks_random),
        ..rule(
            "cloudflare_api_token",
            &["cloudflare", "CLOUDFLARE", "Cloudflare", "CF_API", "cf_api"],
            r#"(?i)(?:cloudflare|cf_api)[a-z0-9_.\-]{0,24}["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9_\-]{40})\b"#,
            1,
        )
    },
    rule(
        "heroku_api_key",
        &["HRKU-"],
        r"\bHRKU-[A-Za-z0-9_\-]{60}\b",
        0,
    ),
    rule(
        "alibaba_access_key_id",
        &["LTAI"],
        r"\b(LTAI[A-Za-z0-9]{20})\b",
        1,
    ),
    // --- source hosting and CI
    rule("github_pat", &["ghp_"], r"\bghp_[A-Za-z0-9]{36}\b", 0),
    rule("github_oauth", &["gho_"], r"\bgho_[A-Za-z0-9]{36}\b", 0),
    rule(
        "github_app_token",
        &["ghu_", "ghs_"],
        r"\bgh[us]_[A-Za-z0-9]{36}\b",
        0,
    ),
    rule(
        "github_refresh_token",
        &["ghr_"],
        r"\bghr_[A-Za-z0-9]{36,76}\b",
        0,
    ),
    rule(
        "github_fine_grained_pat",
        &["github_pat_"],
        r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b",
        0,
    ),
    rule("gitlab_pat", &["glpat-"], r"\bglpat-[A-Za-z0-9_\-]{20,}", 0),
    rule(
        "gitlab_pipeline_trigger",
        &["glptt-"],
        r"\bglptt-[A-Za-z0-9_\-]{40}",
        0,
    ),
    rule(
        "gitlab_runner_token",
        &["glrt-", "GR1348941"],
        r"\b(?:glrt-[A-Za-z0-9_\-]{20,}|GR1348941[A-Za-z0-9_\-]{20,})",
        0,
    ),
    rule(
        "gitlab_deploy_token",
        &["gldt-"],
        r"\bgldt-[A-Za-z0-9_\-]{20,}",
        0,
    ),
    rule(
        "bitbucket_app_password",
        &["ATBB"],
        r"\bATBB[A-Za-z0-9_=.\-]{28,}",
        0,
    ),
    rule(
        "atlassian_api_token",
        &["ATATT3"],
        r"\bATATT3[A-Za-z0-9_\-=]{100,}",
        0,
    ),
    rule(
        "circleci_token",
        &["CCIPAT_"],
        r"\bCCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}\b",
        0,
    ),
    rule("buildkite_token", &["bkua_"], r"\bbkua_[a-f0-9]{40}\b", 0),
    rule(
        "terraform_cloud_token",
        &[".atlasv1."],
        r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70}",
        0,
    ),
    rule(
        "vault_token",
        &["hvs.", "hvb."],
        r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}",
        0,
    ),
    rule(
        "doppler_token",
        &[
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit.",
        ],
        r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b",
        0,
    ),
    rule("pulumi_token", &["pul-"], r"\bpul-[a-f0-9]{40}\b", 0),
    rule(
        "postman_api_key",
        &["PMAK-"],
        r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b",
        0,
    ),
    rule(
        "grafana_token",
        &["glsa_", "glc_"],
        r"\b(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})",
        0,
    ),
    // --- package registries
    rule("npm_token", &["npm_"], r"\bnpm_[A-Za-z0-9]{36}\b", 0),
    rule(
        "pypi_token",
        &["pypi-AgE"],
        r"\bpypi-AgE[A-Za-z0-9_\-]{50,}",
        0,
    ),
    rule(
        "rubygems_token",
        &["rubygems_"],
        r"\brubygems_[a-f0-9]{48}\b",
        0,
    ),
    rule("nuget_api_key", &["oy2"], r"\boy2[a-z0-9]{43}\b", 0),
    rule(
        "docker_hub_pat",
        &["dckr_pat_"],
        r"\bdckr_pat_[A-Za-z0-9_\-]{27,}",
        0,
    ),
    // --- chat and messaging
    rule(
        "slack_token",
        &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxe"],
        r"\bxox(?:[abprs]|e(?:\.xox[bp])?)-[0-9A-Za-z\-]{10,}",
        0,
    ),
    rule(
        "slack_app_token",
        &["xapp-"],
        r"\bxapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+",
        0,
    ),
    rule(
        "slack_webhook",
        &["hooks.slack.com"],
        r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_\-]{20,})",
        1,
    ),
    rule(
        "discord_webhook",
        &["discord.com/api/webhooks", "discordapp.com/api/webhooks"],
        r"discord(?:app)?\.com/api/webhooks/[0-9]+/([A-Za-z0-9_\-]{20,})",
        1,
    ),
    rule(
        "discord_bot_token",
        &["discord", "Discord", "DISCORD", "Bot "],
        r"(?:^|[^A-Za-z0-9_\-.])([MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?:[^A-Za-z0-9_\-.]|$)",
        1,
    ),
    rule(
        "telegram_bot_token",
        &[":AA"],
        r"\b([0-9]{8,10}:AA[0-9A-Za-z_\-]{33})(?:[^0-9A-Za-z_\-]|$)",
        1,
    ),
    rule("twilio_api_key", &["SK"], r"\bSK[0-9a-f]{32}\b", 0),
    rule(
        "sendgrid_api_key",
        &["SG."],
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?:[^A-Za-z0-9_\-]|$)",
        0,
    ),
    rule("mailgun_api_key", &["key-"], r"\bkey-[0-9a-f]{32}\b", 0),
    rule(
        "mailchimp_api_key",
        &["-us"],
        r"\b[0-9a-f]{32}-us[0-9]{1,2}\b",
        0,
    ),
    rule(
        "brevo_api_key",
        &["xkeysib-"],
        r"\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b",
        0,
    ),
    // --- payments and commerce
    rule(
        "stripe_secret_key",
        &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{24,}\b",
        0,
    ),
    rule(
        "stripe_webhook_secret",
        &["whsec_"],
        r"\bwhsec_[A-Za-z0-9+/]{32,}",
        0,
    ),
    rule(
        "shopify_token",
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
        0,
    ),
    rule(
        "square_token",
        &["EAAA", "sq0atp-", "sq0csp-"],
        r"\b(?:EAAA[A-Za-z0-9_\-]{60}|sq0atp-[0-9A-Za-z_\-]{22}|sq0csp-[0-9A-Za-z_\-]{43})(?:[^0-9A-Za-z_\-]|$)",
        0,
    ),
    // --- observability
    rule(
        "new_relic_key",
        &["NRAK-", "NRII-", "NRJS-", "NRAL"],
        r"\b(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_\-]{32}|NRJS-[a-f0-9]{19}|[a-f0-9]{36}NRAL)\b",
        0,
    ),
    Rule {
        check: Some(looks_random),
        ..rule(
            "datadog_key",
            &["datadog", "Datadog", "DATADOG", "DD_", "dd_", "dd-"],
            r#"(?i)(?:datadog|dd)[_\-.]?(?:api|app(?:lication)?)[_\-.]?key["']?\s*(?:[:=]|=>)\s*["']?([a-f0-9]{32}|[a-f0-9]{40})\b"#,
            1,
        )
    },
    rule(
        "sentry_dsn",
        &["sentry.io", "ingest."],
        r"https?://([a-f0-9]{32})@[A-Za-z0-9.\-]*(?:sentry\.io|ingest\.[A-Za-z0-9.\-]+)",
        1,
    ),
    // --- AI providers
    rule(
        "anthropic_api_key",
        &["sk-ant-"],
        r"\bsk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
        0,
    ),
    rule(
        "openai_api_key",
        &["sk-"],
        r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})(?:[^A-Za-z0-9_\-]|$)",
        0,
    ),
    rule("huggingface_token", &["hf_"], r"\bhf_[A-Za-z0-9]{34,}\b", 0),
    rule("groq_api_key", &["gsk_"], r"\bgsk_[A-Za-z0-9]{52}\b", 0),
    rule("replicate_token", &["r8_"], r"\br8_[A-Za-z0-9]{37}\b", 0),
    rule(
        "perplexity_api_key",
        &["pplx-"],
        r"\bpplx-[A-Za-z0-9]{48}\b",
        0,
    ),
    rule("xai_api_key", &["xai-"], r"\bxai-[A-Za-z0-9]{80}\b", 0),
    // --- databases and platforms
    rule("supabase_token", &["sbp_"], r"\bsbp_[a-f0-9]{40}\b", 0),
    rule(
        "planetscale_token",
        &["pscale_"],
        r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.]{32,64}",
        0,
    ),
    rule(
        "databricks_token",
        &["dapi"],
        r"\bdapi[a-f0-9]{32}(?:-[0-9])?\b",
        0,
    ),
    rule("flyio_token", &["fo1_"], r"\bfo1_[A-Za-z0-9_\-]{43}", 0),
    rule(
        "linear_api_key",
        &["lin_api_"],
        r"\blin_api_[A-Za-z0-9]{40}\b",
        0,
    ),
    rule(
        "mapbox_secret_token",
        &["sk.eyJ"],
        r"\bsk\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,}",
        0,
    ),
    rule(
        "age_secret_key",
        &["AGE-SECRET-KEY-1"],
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        0,
    ),
    // --- generic formats
    Rule {
        check: Some(is_jwt),
        ..rule(
            "jwt",
            &["eyJ"],
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
            0,
        )
    },
    rule(
        "bearer",
        &["Bearer", "bearer", "BEARER"],
        r"\b(?:Bearer|bearer|BEARER)\s+([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
    ),
    Rule {
        check: Some(is_basic_credential),
        ..rule(
            "basic_auth",
            &["Basic", "basic", "BASIC"],
            r"\b(?:Basic|basic|BASIC)\s+([A-Za-z0-9+/]{4,}={0,2})(?:[^A-Za-z0-9+/=]|$)",
            1,
        )
    },
];

#[cfg(test)]
pub(crate) mod cases {
    //! One true positive and one near miss per rule, built from synthetic
    //! values (no real credential appears in this file).

    /// `n` characters cycling through `alphabet`, seeded so that different
    /// calls give different strings.
    pub fn fill(alphabet: &str, n: usize, seed: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|i| a[(i * 7 + seed * 13 + i / 3) % a.len()] as char)
            .collect()
    }
    pub const AN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    pub const HEX: &str = "0123456789abcdef";
    pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub const UPN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    pub fn an(n: usize) -> String {
        fill(AN, n, n)
    }
    pub fn hex(n: usize) -> String {
        fill(HEX, n, n)
    }

    pub struct Case {
        pub rule: &'static str,
        /// A line containing the secret.
        pub line: String,
        /// The secret itself (must not survive).
        pub secret: String,
        /// A line that looks close but must pass unchanged.
        pub near: String,
    }

    fn c(rule: &'static str, secret: String, line: String, near: String) -> Case {
        Case {
            rule,
            line,
            secret,
            near,
        }
    }

    /// Line `prefix` + secret + `suffix`.
    fn at(rule: &'static str, secret: String, prefix: &str, near: String) -> Case {
        let line = format!("{prefix}{secret} done");
        c(rule, secret, line, near)
    }

    pub fn all() -> Vec<Case> {
        let jwt_head = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let jwt = format!("{jwt_head}.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}", an(43));
        let basic = "dXNlcjpodW50ZXIy"; // "user:hunter2"
        vec![
            at("aws_access_key_id", format!("AKIA{}", fill(UPN, 16, 1)), "key id ", format!("AKIA{} short", fill(UPN, 15, 1))),
            c("aws_secret_access_key", fill(B64, 40, 3), format!("aws_secret_access_key = {}", fill(B64, 40, 3)), format!("aws region = {}", "us-east-1")),
            at("google_api_key", format!("AIza{}", fill(AN, 35, 4)), "maps key ", format!("AIza{} truncated", an(20))),
            at("google_oauth_secret", format!("GOCSPX-{}", an(28)), "client ", "GOCSPX- is the prefix".into()),
            at("google_oauth_token", format!("ya29.{}", an(60)), "using ", "ya29.short token".into()),
            c("gcp_private_key_id", hex(40), format!("{{\"type\":\"service_account\",\"private_key_id\": \"{}\"}}", hex(40)), "{\"private_key_id_present\": true}".into()),
            c("azure_storage_key", format!("{}==", fill(B64, 86, 5)), format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={}==;EndpointSuffix=core.windows.net", fill(B64, 86, 5)), "AccountName=acct;EndpointSuffix=core.windows.net".into()),
            c("azure_shared_access_key", fill(B64, 44, 6), format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={};EntityPath=q", fill(B64, 44, 6)), "SharedAccessKeyName=RootManageSharedAccessKey".into()),
            at("azure_ad_client_secret", format!("abc8Q~{}", fill(AN, 34, 7)), "secret is ", "Q~ appears in prose Q~".into()),
            at("digitalocean_token", format!("dop_v1_{}", hex(64)), "do token ", format!("dop_v1_{} short", hex(40))),
            at("cloudflare_origin_ca_key", format!("v1.0-{}-{}", hex(24), hex(146)), "origin ", "version v1.0-beta released".into()),
            c("cloudflare_api_token", format!("{}9", an(39)), format!("cloudflare_api_token: {}9", an(39)), "cloudflare zone: example.com".into()),
            at("heroku_api_key", format!("HRKU-{}", an(60)), "heroku ", "HRKU-short".into()),
            at("alibaba_access_key_id", format!("LTAI{}", an(20)), "ali ", "LTAIL is a word".into()),
            at("github_pat", format!("ghp_{}", an(36)), "token ", format!("ghp_{}", an(20))),
            at("github_oauth", format!("gho_{}", an(36)), "oauth ", format!("gho_{}", an(30))),
            at("github_app_token", format!("ghs_{}", an(36)), "app ", "ghs_ prefix only".into()),
            at("github_refresh_token", format!("ghr_{}", an(76)), "refresh ", format!("ghr_{}", an(10))),
            at("github_fine_grained_pat", format!("github_pat_{}_{}", an(22), fill(AN, 59, 2)), "pat ", "github_pat_ is a prefix".into()),
            at("gitlab_pat", format!("glpat-{}", an(20)), "gl ", "glpat-short".into()),
            at("gitlab_pipeline_trigger", format!("glptt-{}", hex(40)), "trigger ", "glptt-abc".into()),
            at("gitlab_runner_token", format!("glrt-{}", an(20)), "runner ", "glrt-x".into()),
            at("gitlab_deploy_token", format!("gldt-{}", an(20)), "deploy ", "gldt-y".into()),
            at("bitbucket_app_password", format!("ATBB{}", an(32)), "bb ", "ATBB short".into()),
            at("atlassian_api_token", format!("ATATT3{}", an(186)), "jira ", format!("ATATT3{}", an(20))),
            at("circleci_token", format!("CCIPAT_{}_{}", an(22), hex(40)), "circle ", "CCIPAT_ prefix".into()),
            at("buildkite_token", format!("bkua_{}", hex(40)), "bk ", format!("bkua_{}", hex(12))),
            at("terraform_cloud_token", format!("{}.atlasv1.{}", an(14), an(67)), "tfc ", "see docs.atlasv1.example".into()),
            at("vault_token", format!("hvs.{}", an(90)), "vault ", "hvs.short".into()),
            at("doppler_token", format!("dp.pt.{}", an(43)), "doppler ", "dp.pt.abc".into()),
            at("pulumi_token", format!("pul-{}", hex(40)), "pulumi ", "pul-abc".into()),
            at("postman_api_key", format!("PMAK-{}-{}", hex(24), hex(34)), "postman ", "PMAK-123".into()),
            at("grafana_token", format!("glsa_{}_{}", an(32), hex(8)), "grafana ", "glsa_abc".into()),
            at("npm_token", format!("npm_{}", an(36)), "npm ", "npm_config_cache=/tmp".into()),
            at("pypi_token", format!("pypi-AgEIcHlwaS5vcmc{}", an(60)), "pypi ", "pypi-AgE short".into()),
            at("rubygems_token", format!("rubygems_{}", hex(48)), "gem ", "rubygems_version 3.4".into()),
            at("nuget_api_key", format!("oy2{}", fill("abcdefghijklmnopqrstuvwxyz0123456789", 43, 1)), "nuget ", "oy2 is short".into()),
            at("docker_hub_pat", format!("dckr_pat_{}", an(27)), "docker ", "dckr_pat_x".into()),
            at("slack_token", format!("xoxb-{}-{}-{}", "123456789012", "1234567890123", an(24)), "slack ", "xoxb-short".into()),
            at("slack_app_token", format!("xapp-1-A{}-{}-{}", fill(UPN, 10, 1), "1234567890123", hex(64)), "socket ", "xapp-1-short".into()),
            c("slack_webhook", format!("T{}/B{}/{}", fill(UPN, 8, 1), fill(UPN, 8, 2), an(24)), format!("post https://hooks.slack.com/services/T{}/B{}/{}", fill(UPN, 8, 1), fill(UPN, 8, 2), an(24)), "docs at https://hooks.slack.com/".into()),
            c("discord_webhook", fill(AN, 68, 3), format!("https://discord.com/api/webhooks/123456789012345678/{}", fill(AN, 68, 3)), "https://discord.com/api/webhooks/ docs".into()),
            c("discord_bot_token", format!("MT{}.{}.{}", an(24), an(6), an(27)), format!("discord token=MT{}.{}.{} ok", an(24), an(6), an(27)), "discord bot started in guild 12345".into()),
            at("telegram_bot_token", format!("1234567890:AA{}", an(33)), "tg ", "12:AA short".into()),
            at("twilio_api_key", format!("SK{}", hex(32)), "twilio ", format!("SK{} short", hex(20))),
            at("sendgrid_api_key", format!("SG.{}.{}", an(22), an(43)), "sg ", "SG.abc.def".into()),
            at("mailgun_api_key", format!("key-{}", hex(32)), "mg ", "key-value store".into()),
            at("mailchimp_api_key", format!("{}-us14", hex(32)), "mc ", "en-us14 locale".into()),
            at("brevo_api_key", format!("xkeysib-{}-{}", hex(64), an(16)), "brevo ", "xkeysib-short".into()),
            at("stripe_secret_key", format!("sk_live_{}", an(24)), "stripe ", format!("pk_live_{}", an(24))),
            at("stripe_webhook_secret", format!("whsec_{}", an(32)), "whsec ", "whsec_ short".into()),
            at("shopify_token", format!("shpat_{}", hex(32)), "shop ", "shpat_1234".into()),
            at("square_token", format!("EAAA{}", an(60)), "square ", "EAAA short".into()),
            at("new_relic_key", format!("NRAK-{}", fill(UPN, 27, 1)), "nr ", "NRAK-123".into()),
            c("datadog_key", hex(32), format!("DD_API_KEY={}", hex(32)), "dd_trace_enabled=true".into()),
            c("sentry_dsn", hex(32), format!("dsn https://{}@o123.ingest.sentry.io/456", hex(32)), "see https://sentry.io/welcome".into()),
            at("anthropic_api_key", format!("sk-ant-api03-{}", an(95)), "claude ", "sk-ant-api03-short".into()),
            at("openai_api_key", format!("sk-proj-{}", an(100)), "openai ", "sk-proj-short is not a key".into()),
            at("huggingface_token", format!("hf_{}", an(34)), "hf ", "hf_hub_download called".into()),
            at("groq_api_key", format!("gsk_{}", an(52)), "groq ", "gsk_short".into()),
            at("replicate_token", format!("r8_{}", an(37)), "replicate ", "r8_short".into()),
            at("perplexity_api_key", format!("pplx-{}", an(48)), "pplx ", "pplx-short".into()),
            at("xai_api_key", format!("xai-{}", an(80)), "grok ", "xai-short".into()),
            at("supabase_token", format!("sbp_{}", hex(40)), "supa ", "sbp_short".into()),
            at("planetscale_token", format!("pscale_tkn_{}", an(43)), "ps ", "pscale_tkn_short".into()),
            at("databricks_token", format!("dapi{}", hex(32)), "dbx ", "dapi version 2".into()),
            at("flyio_token", format!("fo1_{}", an(43)), "fly ", "fo1_short".into()),
            at("linear_api_key", format!("lin_api_{}", an(40)), "linear ", "lin_api_short".into()),
            at("mapbox_secret_token", format!("sk.eyJ{}.{}", an(60), an(22)), "mapbox ", "sk.eyJ short".into()),
            at("age_secret_key", format!("AGE-SECRET-KEY-1{}", fill("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 1)), "age ", "AGE-SECRET-KEY-1 prefix".into()),
            at("jwt", jwt.clone(), "jwt ", "eyJ is how base64 JSON starts".into()),
            c("bearer", an(40), format!("calling api with Bearer {}", an(40)), "Bearer tokens are described in RFC 6750".into()),
            c("basic_auth", basic.into(), format!("Basic {basic} sent"), "basic configuration loaded".into()),
        ]
    }
}
