//! Provider detectors: credentials whose *format* gives them away.
//!
//! Each rule is a regex plus the literal keywords that any match must
//! contain. The engine runs one Aho-Corasick automaton over all keywords and
//! only then the regexes of the rules whose keywords occurred, so a benign
//! line costs one automaton pass however many rules there are. Keywords are
//! case-sensitive (provider prefixes are), which keeps the automaton small
//! and its hits rare.
//!
//! Most rules are *anchored* ([`Rule::anchored`]): the token starts with its
//! keyword (`ghp_`, `xoxb-`, `AKIA`), so the engine runs the regex only at
//! the keyword's position, after checking by hand that a token starts there
//! (no letter or digit before it, or an escape such as `%3D` or `\n`). The
//! cost of a hit is then bounded by the token's length, not the line's, which
//! is what keeps secret-dense lines fast; for most of them the regex's
//! shape after the keyword is walked by hand instead of a regex call (see
//! [`super::shape`], derived from the regex). Rules whose keyword sits inside the
//! token (`...atlasv1...`, `...-us12`) or that need context before it are
//! searched over the whole line.
//!
//! Formats with no prefix (the AWS secret key, Datadog keys, the many
//! providers whose keys are plain random strings) need a context word before
//! them: see [`super::context`]. A bare 40-character string is not redacted,
//! because hashes and ids look the same. `group` names the part that is
//! secret, so that `https://hooks.slack.com/services/` or a scheme word stays
//! readable.
//!
//! A token with a distinctive prefix is redacted whatever its checksum
//! (GitHub and npm tokens carry a CRC32): a mistyped or truncated secret is
//! still a secret, and the prefix already tells it from ordinary text.
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
    /// The match starts with one of the keywords: the regex runs anchored at
    /// each keyword occurrence, never over the line.
    pub anchored: bool,
    /// An anchored match must also start a token (the engine's check for
    /// what `\b` would say, escapes allowed).
    pub boundary: bool,
    /// The secret is the match after its first blank run (`Bearer <token>`):
    /// found with a plain search, which is cheaper than a capture group.
    pub after_blank: bool,
    /// A token that must not be followed by a character of this class (see
    /// [`pre1`]); `pattern` is the token alone.
    pub guard: Option<Guard>,
}

/// The characters that continue a token, for a rule whose match must not
/// be followed by one ([`pre1`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// `[A-Za-z0-9_-]`
    Word,
    /// `[A-Za-z0-9._]` (Salesforce session ids)
    Dotted,
}

impl Guard {
    /// The class as the inside of a regex bracket expression.
    pub fn class(self) -> &'static str {
        match self {
            Guard::Word => r"A-Za-z0-9_\-",
            Guard::Dotted => r"A-Za-z0-9._",
        }
    }

    /// Does a token that ends right before `next` (the byte after it, or
    /// `None` at the end of the text) fail the guard? Only an ASCII byte of
    /// the class does: a non-ASCII character is outside every class.
    pub fn continued_by(self, next: Option<u8>) -> bool {
        match (self, next) {
            (_, None) => false,
            (Guard::Word, Some(c)) => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
            (Guard::Dotted, Some(c)) => c.is_ascii_alphanumeric() || c == b'.' || c == b'_',
        }
    }
}

/// A rule searched over the whole line (its keyword is inside the match).
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
        anchored: false,
        boundary: false,
        after_blank: false,
        guard: None,
    }
}

/// A rule whose match starts with one of its keywords, anywhere (key
/// contexts such as `AWS_SECRET_ACCESS_KEY=`, `Bearer `, `AccountKey=`).
const fn kw(
    name: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    group: usize,
) -> Rule {
    Rule {
        anchored: true,
        ..rule(name, keywords, pattern, group)
    }
}

/// A token that starts with one of `keywords`; `pattern` matches from the
/// keyword on (the engine checks the boundary before it).
const fn pre(name: &'static str, keywords: &'static [&'static str], pattern: &'static str) -> Rule {
    Rule {
        name,
        keywords,
        pattern,
        group: 0,
        check: None,
        anchored: true,
        boundary: true,
        after_blank: false,
        guard: None,
    }
}

/// As [`pre`], for a token that must not be followed by a character of
/// `guard`'s class: the rule's regex is `(pattern)(?:[^class]|$)`, the
/// secret its group 1. The engine runs it as a plain search for `pattern`
/// and checks the byte after the match by hand, which gives the same match
/// whenever that byte passes (a capture search costs several times more);
/// only when it does not is the regex with the guard run.
const fn pre1(
    name: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    guard: Guard,
) -> Rule {
    Rule {
        group: 1,
        guard: Some(guard),
        ..pre(name, keywords, pattern)
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

/// Standard or URL-safe base64, padding optional; `None` on other bytes.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
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

/// A JWT that was base64-encoded once more (Kubernetes secrets, env dumps).
fn is_base64_jwt(s: &str) -> bool {
    let n = s.len().min(400) / 4 * 4;
    decode_base64(&s[..n]).is_some_and(|d| d.starts_with(b"eyJ") && d.contains(&b'.'))
}

/// A base64-encoded PEM private key (`tls.key: LS0tLS1CRUdJTi...`).
fn is_base64_private_key(s: &str) -> bool {
    let n = s.len().min(120) / 4 * 4;
    decode_base64(&s[..n]).is_some_and(|d| {
        d.starts_with(b"-----BEGIN ") && d.windows(11).any(|w| w == b"PRIVATE KEY")
    })
}

/// Mixed letters and digits: real keys are random, words and ids are not.
pub fn looks_random(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic)
}

/// The built-in detectors. Order matters only for the tests.
pub static RULES: &[Rule] = &[
    // --- cloud providers
    pre(
        "aws_access_key_id",
        &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",
    ),
    Rule {
        check: Some(looks_random),
        ..kw(
            "aws_secret_access_key",
            &["aws", "AWS", "Aws"],
            r#"(?i)aws[a-z0-9_.\-]{0,24}(?:secret|sk)[a-z0-9_.\-]{0,24}["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            1,
        )
    },
    pre(
        "aws_session_token",
        &["FwoGZXIvYXdz", "IQoJb3JpZ2lu"],
        r"(?:FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+]{60,}={0,2}",
    ),
    pre(
        "aws_bedrock_api_key",
        &["ABSK", "bedrock-api-key-"],
        r"(?:ABSK[A-Za-z0-9+/]{100,}={0,2}|bedrock-api-key-[A-Za-z0-9+/=%&._\-]{20,})",
    ),
    pre1(
        "google_api_key",
        &["AIza"],
        r"AIza[0-9A-Za-z_\-]{35}",
        Guard::Word,
    ),
    pre(
        "google_oauth_secret",
        &["GOCSPX-"],
        r"GOCSPX-[A-Za-z0-9_\-]{28}",
    ),
    pre(
        "google_oauth_token",
        &["ya29."],
        r"ya29\.[0-9A-Za-z_\-]{30,}",
    ),
    pre(
        "google_refresh_token",
        &["1//0"],
        r"1//0[0-9A-Za-z_\-]{40,}",
    ),
    kw(
        "gcp_private_key_id",
        &["private_key_id"],
        r#"private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})\\?""#,
        1,
    ),
    kw(
        "azure_storage_key",
        &["AccountKey="],
        r"AccountKey=([A-Za-z0-9+/]{86}==)",
        1,
    ),
    kw(
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
    pre(
        "digitalocean_token",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        r"do[opr]_v1_[a-f0-9]{64}\b",
    ),
    pre(
        "cloudflare_origin_ca_key",
        &["v1.0-"],
        r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}\b",
    ),
    Rule {
        check: Some(looks_random),
        ..kw(
            "cloudflare_api_token",
            &["cloudflare", "CLOUDFLARE", "Cloudflare", "CF_API", "cf_api"],
            r#"(?i)(?:cloudflare|cf_api)[a-z0-9_.\-]{0,24}["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9_\-]{37,40})\b"#,
            1,
        )
    },
    pre1(
        "heroku_api_key",
        &["HRKU-"],
        r"HRKU-[A-Za-z0-9_\-]{60}",
        Guard::Word,
    ),
    pre("alibaba_access_key_id", &["LTAI"], r"LTAI[A-Za-z0-9]{20}\b"),
    pre("tencent_secret_id", &["AKID"], r"AKID[A-Za-z0-9]{32}\b"),
    pre("scaleway_access_key", &["SCW"], r"SCW[A-Z0-9]{17}\b"),
    pre(
        "yandex_token",
        &["t1.", "AQVN"],
        r"(?:t1\.[A-Za-z0-9_\-]{20,}={0,2}\.[A-Za-z0-9_\-]{86}={0,2}|AQVN[A-Za-z0-9_\-]{35,38})",
    ),
    // --- source hosting and CI
    pre("github_pat", &["ghp_"], r"ghp_[A-Za-z0-9]{36}\b"),
    pre("github_oauth", &["gho_"], r"gho_[A-Za-z0-9]{36}\b"),
    pre(
        "github_app_token",
        &["ghu_", "ghs_"],
        r"gh[us]_[A-Za-z0-9]{36}\b",
    ),
    pre(
        "github_refresh_token",
        &["ghr_"],
        r"ghr_[A-Za-z0-9]{36,76}\b",
    ),
    pre(
        "github_fine_grained_pat",
        &["github_pat_"],
        r"github_pat_[A-Za-z0-9_]{70,}\b",
    ),
    pre(
        "gitlab_pat",
        &["glpat-"],
        r"glpat-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2,9})?",
    ),
    pre(
        "gitlab_pipeline_trigger",
        &["glptt-"],
        r"glptt-[A-Za-z0-9_\-]{40}",
    ),
    pre(
        "gitlab_runner_token",
        &["glrt-", "GR1348941"],
        r"(?:glrt-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2,9})?|GR1348941[A-Za-z0-9_\-]{20,})",
    ),
    pre(
        "gitlab_deploy_token",
        &["gldt-"],
        r"gldt-[A-Za-z0-9_\-]{20,}",
    ),
    pre(
        "gitlab_token",
        &[
            "glcbt-", "glffct-", "glft-", "glimt-", "glagent-", "gloas-", "glsoat-", "glwt-",
        ],
        r"gl(?:cbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_\-]{20,}|ffct-[0-9A-Za-z_\-]{20,}|ft-[0-9A-Za-z_\-]{20,}|imt-[0-9A-Za-z_\-]{25,}|agent-[0-9A-Za-z_\-]{50,}|oas-[0-9A-Za-z_\-]{64,}|soat-[0-9A-Za-z_\-]{20,}|wt-[0-9A-Za-z_\-]{20,})",
    ),
    pre(
        "gitlab_session_cookie",
        &["_gitlab_session="],
        r"_gitlab_session=([0-9a-z]{32})",
    ),
    pre(
        "bitbucket_app_password",
        &["ATBB"],
        r"ATBB[A-Za-z0-9_=.\-]{28,}",
    ),
    pre(
        "atlassian_api_token",
        &["ATATT3", "ATCTT3"],
        r"AT[AC]TT3[A-Za-z0-9_\-=]{100,}",
    ),
    pre(
        "circleci_token",
        &["CCIPAT_", "CCIPRJ_"],
        r"CCIP(?:AT|RJ)_[A-Za-z0-9]{22}_[a-f0-9]{40}\b",
    ),
    pre("buildkite_token", &["bkua_"], r"bkua_[a-f0-9]{40}\b"),
    rule(
        "terraform_cloud_token",
        &[".atlasv1."],
        r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70})",
        1,
    ),
    pre(
        "vault_token",
        &["hvs.", "hvb.", "hvr."],
        r"hv[sbr]\.[A-Za-z0-9_\-]{24,}",
    ),
    Rule {
        check: Some(looks_random),
        ..pre("vault_token", &["s."], r"s\.[A-Za-z0-9]{24}\b")
    },
    pre(
        "doppler_token",
        &[
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit.",
        ],
        r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b",
    ),
    pre("pulumi_token", &["pul-"], r"pul-[a-f0-9]{40}\b"),
    pre(
        "postman_api_key",
        &["PMAK-"],
        r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}\b",
    ),
    pre(
        "grafana_token",
        &["glsa_", "glc_", "eyJrIjoi"],
        r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}|eyJrIjoi[A-Za-z0-9]{60,}={0,2})",
    ),
    pre(
        "sonarqube_token",
        &["squ_", "sqp_", "sqa_"],
        r"sq[upa]_[a-f0-9]{40}\b",
    ),
    pre(
        "sourcegraph_token",
        &["sgp_"],
        r"sgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40}\b",
    ),
    pre("octopus_deploy_api_key", &["API-"], r"API-[A-Z0-9]{26}\b"),
    pre(
        "harness_token",
        &["pat.", "sat."],
        r"[ps]at\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}\b",
    ),
    pre(
        "artifactory_token",
        &["AKCp", "cmVmd"],
        r"(?:AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})\b",
    ),
    pre("infracost_api_key", &["ico-"], r"ico-[A-Za-z0-9]{32}\b"),
    pre("prefect_api_key", &["pnu_"], r"pnu_[A-Za-z0-9]{36}\b"),
    pre("readme_api_key", &["rdme_"], r"rdme_[a-z0-9]{70}\b"),
    pre("scalingo_token", &["tk-us-"], r"tk-us-[A-Za-z0-9_\-]{48}"),
    pre(
        "settlemint_token",
        &["sm_aat_", "sm_pat_", "sm_sat_"],
        r"sm_[aps]at_[A-Za-z0-9]{16}\b",
    ),
    pre(
        "openshift_token",
        &["sha256~"],
        r"sha256~[A-Za-z0-9_\-]{43}",
    ),
    pre(
        "defined_networking_token",
        &["dnkey-"],
        r"dnkey-[A-Za-z0-9=_\-]{26}-[A-Za-z0-9=_\-]{52}",
    ),
    pre(
        "intra42_secret",
        &["s-s4t2"],
        r"s-s4t2(?:ud|af)-[a-f0-9]{64}\b",
    ),
    pre(
        "authress_key",
        &["sc_", "ext_", "scauth_", "authress_"],
        r"(?:sc|ext|scauth|authress)_[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_\-][A-Za-z0-9\-]{10,32}\.[A-Za-z0-9+/_=\-]{30,120}",
    ),
    // --- package registries
    pre("npm_token", &["npm_"], r"npm_[A-Za-z0-9]{36}\b"),
    pre("pypi_token", &["pypi-AgE"], r"pypi-AgE[A-Za-z0-9_\-]{50,}"),
    pre("rubygems_token", &["rubygems_"], r"rubygems_[a-f0-9]{48}\b"),
    pre("nuget_api_key", &["oy2"], r"oy2[a-z0-9]{43}\b"),
    pre(
        "docker_hub_pat",
        &["dckr_pat_", "dckr_oat_"],
        r"dckr_[op]at_[A-Za-z0-9_\-]{27,}",
    ),
    Rule {
        check: Some(looks_random),
        ..pre("crates_io_token", &["cio"], r"cio[A-Za-z0-9]{32}\b")
    },
    pre("clojars_token", &["CLOJARS_"], r"CLOJARS_[A-Za-z0-9]{60}\b"),
    kw(
        "nuget_config_password",
        &["<add key="],
        r#"(?i)<add\s+key=\\?"(?:ClearText)?Password\\?"\s+value=\\?"([^"\\]+)"#,
        1,
    ),
    // --- chat and messaging
    pre(
        "slack_token",
        &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxo-", "xoxe"],
        r"xox(?:[abeoprs]|e\.xox[bp])-[0-9A-Za-z\-]{10,}",
    ),
    pre(
        "slack_app_token",
        &["xapp-"],
        r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[A-Za-z0-9]+",
    ),
    kw(
        "slack_webhook",
        &["hooks.slack.com"],
        r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_+\-]{20,})",
        1,
    ),
    kw(
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
    kw(
        "teams_webhook",
        &["webhook.office.com", "logic.azure.com"],
        r"(?:webhook\.office\.com/webhookb2|logic\.azure\.com(?::443)?/workflows)/([A-Za-z0-9@/?=&%._\-]{30,})",
        1,
    ),
    kw(
        "zapier_webhook",
        &["hooks.zapier.com"],
        r"hooks\.zapier\.com/hooks/catch/([0-9]+/[A-Za-z0-9]+)",
        1,
    ),
    rule(
        "telegram_bot_token",
        &[":AA"],
        r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr]|/bot)([0-9]{8,10}:AA[0-9A-Za-z_\-]{33})(?:[^0-9A-Za-z_\-]|$)",
        1,
    ),
    pre("twilio_api_key", &["SK"], r"SK[0-9a-fA-F]{32}\b"),
    pre1(
        "sendgrid_api_key",
        &["SG."],
        r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
        Guard::Word,
    ),
    pre(
        "mailgun_api_key",
        &["key-", "pubkey-"],
        r"(?:pub)?key-[0-9a-f]{32}\b",
    ),
    rule(
        "mailchimp_api_key",
        &["-us"],
        r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])([0-9a-f]{32}-us[0-9]{1,2})\b",
        1,
    ),
    pre(
        "brevo_api_key",
        &["xkeysib-", "xsmtpsib-"],
        r"x(?:key|smtp)sib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b",
    ),
    // --- payments and commerce
    pre(
        "stripe_secret_key",
        &[
            "sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_",
        ],
        r"[sr]k_(?:live|test|prod)_[0-9A-Za-z]{10,}\b",
    ),
    pre(
        "stripe_webhook_secret",
        &["whsec_"],
        r"whsec_[A-Za-z0-9+/]{32,}",
    ),
    pre(
        "shopify_token",
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
    ),
    pre1(
        "square_token",
        &["EAAA", "sq0atp-", "sq0csp-"],
        r"EAAA[A-Za-z0-9_\-]{22,60}|sq0atp-[0-9A-Za-z_\-]{22}|sq0csp-[0-9A-Za-z_\-]{43}",
        Guard::Word,
    ),
    pre(
        "facebook_access_token",
        &[
            "EAAB", "EAAC", "EAAD", "EAAG", "EAAI", "EAAM", "EAAU", "EAAZ",
        ],
        r"EAA[BCDGIMUZ][A-Za-z0-9]{80,}\b",
    ),
    pre(
        "shippo_token",
        &["shippo_live_", "shippo_test_"],
        r"shippo_(?:live|test)_[a-fA-F0-9]{40}\b",
    ),
    pre(
        "duffel_token",
        &["duffel_live_", "duffel_test_"],
        r"duffel_(?:live|test)_[A-Za-z0-9_=\-]{43}",
    ),
    pre(
        "easypost_token",
        &["EZAK", "EZTK"],
        r"EZ[AT]K[A-Za-z0-9]{54}\b",
    ),
    pre(
        "flutterwave_key",
        &["FLWSECK", "FLWPUBK"],
        r"FLW(?:SECK|PUBK)(?:_TEST)?-[A-Za-z0-9]{12,32}(?:-X)?",
    ),
    pre(
        "razorpay_key",
        &["rzp_live_", "rzp_test_"],
        r"rzp_(?:live|test)_[A-Za-z0-9]{14}\b",
    ),
    pre(
        "braintree_token",
        &["access_token$"],
        r"access_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[a-f0-9]{32}",
    ),
    pre(
        "plaid_access_token",
        &[
            "access-sandbox-",
            "access-development-",
            "access-production-",
        ],
        r"access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    ),
    pre(
        "amazon_mws_token",
        &["amzn.mws."],
        r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    ),
    // --- observability
    pre(
        "new_relic_key",
        &["NRAK-", "NRII-", "NRJS-"],
        r"(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_\-]{32}|NRJS-[a-f0-9]{19})\b",
    ),
    rule(
        "new_relic_key",
        &["NRAL"],
        r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])([a-f0-9]{36}NRAL)\b",
        1,
    ),
    Rule {
        check: Some(looks_random),
        ..kw(
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
    pre(
        "sentry_token",
        &["sntrys_", "sntryu_"],
        r"sntry(?:s_eyJ[A-Za-z0-9+/=_]{40,}|u_[a-f0-9]{64}\b)",
    ),
    pre(
        "dynatrace_token",
        &["dt0c01."],
        r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",
    ),
    pre(
        "langsmith_api_key",
        &["lsv2_pt_", "lsv2_sk_"],
        r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b",
    ),
    // --- AI providers
    pre(
        "anthropic_api_key",
        &["sk-ant-"],
        r"sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
    ),
    pre1(
        "openai_api_key",
        &["sk-"],
        r"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48}|or-v1-[a-f0-9]{64}|[a-f0-9]{32})",
        Guard::Word,
    ),
    pre(
        "huggingface_token",
        &["hf_", "api_org_"],
        r"(?:hf|api_org)_[A-Za-z0-9]{34,}\b",
    ),
    pre("groq_api_key", &["gsk_"], r"gsk_[A-Za-z0-9]{52}\b"),
    pre("replicate_token", &["r8_"], r"r8_[A-Za-z0-9]{37}\b"),
    pre("perplexity_api_key", &["pplx-"], r"pplx-[A-Za-z0-9]{48}\b"),
    pre("xai_api_key", &["xai-"], r"xai-[A-Za-z0-9]{80}\b"),
    pre("clickhouse_cloud_key", &["4b1d"], r"4b1d[A-Za-z0-9]{38}\b"),
    // --- databases and platforms
    pre(
        "supabase_token",
        &["sbp_", "sb_secret_"],
        r"(?:sbp_[a-f0-9]{40}\b|sb_secret_[A-Za-z0-9_\-]{20,})",
    ),
    pre(
        "planetscale_token",
        &["pscale_"],
        r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.=]{32,64}",
    ),
    pre1(
        "databricks_token",
        &["dapi"],
        r"dapi[a-f0-9]{32}(?:-[0-9])?",
        Guard::Word,
    ),
    pre(
        "flyio_token",
        &["fo1_", "fm1a_", "fm1r_", "fm2_"],
        r"(?:fo1_[A-Za-z0-9_\-]{43}|fm1[ar]_[A-Za-z0-9+/]{80,}={0,3}|fm2_[A-Za-z0-9+/]{80,}={0,3})",
    ),
    pre(
        "linear_api_key",
        &["lin_api_"],
        r"lin_api_[A-Za-z0-9]{40}\b",
    ),
    pre(
        "mapbox_secret_token",
        &["sk.eyJ", "pk.eyJ", "tk.eyJ"],
        r"[spt]k\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,}",
    ),
    pre(
        "age_secret_key",
        &["AGE-SECRET-KEY-1"],
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
    ),
    pre(
        "onepassword_secret_key",
        &["A3-"],
        r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\b",
    ),
    pre(
        "onepassword_service_token",
        &["ops_eyJ"],
        r"ops_eyJ[A-Za-z0-9+/]{100,}={0,3}",
    ),
    pre("adobe_client_secret", &["p8e-"], r"p8e-[A-Za-z0-9]{32}\b"),
    pre(
        "airtable_token",
        &["pat"],
        r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b",
    ),
    pre("notion_token", &["ntn_"], r"ntn_[0-9]{11}[A-Za-z0-9]{35}\b"),
    Rule {
        check: Some(looks_random),
        ..pre("notion_token", &["secret_"], r"secret_[A-Za-z0-9]{43}\b")
    },
    pre("frameio_token", &["fio-u-"], r"fio-u-[A-Za-z0-9_=\-]{64}"),
    pre("typeform_token", &["tfp_"], r"tfp_[A-Za-z0-9_.=\-]{59}"),
    pre(
        "hubspot_token",
        &["pat-na", "pat-eu", "pat-ap"],
        r"pat-(?:na|eu|ap)[0-9]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    ),
    pre("contentful_token", &["CFPAT-"], r"CFPAT-[A-Za-z0-9_\-]{43}"),
    pre("clickup_token", &["pk_"], r"pk_[0-9]{3,12}_[A-Z0-9]{32}\b"),
    pre("neon_api_key", &["napi_"], r"napi_[A-Za-z0-9]{64}\b"),
    pre("netlify_token", &["nfp_"], r"nfp_[A-Za-z0-9]{36}\b"),
    pre("figma_token", &["figd_"], r"figd_[A-Za-z0-9_\-]{30,}"),
    pre("render_api_key", &["rnd_"], r"rnd_[A-Za-z0-9]{32}\b"),
    pre("aiven_password", &["AVNS_"], r"AVNS_[A-Za-z0-9_\-]{20,}"),
    rule(
        "maxmind_license_key",
        &["_mmk"],
        r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])([A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)\b",
        1,
    ),
    pre1(
        "salesforce_session",
        &["00D"],
        r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,}",
        Guard::Dotted,
    ),
    // --- generic formats
    Rule {
        check: Some(is_jwt),
        ..pre(
            "jwt",
            &["eyJ"],
            r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        )
    },
    Rule {
        check: Some(is_base64_jwt),
        ..pre("jwt", &["ZXlK"], r"ZXlK[A-Za-z0-9+/]{60,}={0,2}")
    },
    Rule {
        check: Some(is_base64_private_key),
        ..pre(
            "pem_private_key",
            &["LS0tLS1CRUdJTi"],
            r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}",
        )
    },
    Rule {
        boundary: true,
        after_blank: true,
        ..kw(
            "bearer",
            &["Bearer", "bearer", "BEARER"],
            r"(?:Bearer|bearer|BEARER)[ \t]+[A-Za-z0-9\-._~+/]{16,}=*",
            0,
        )
    },
    Rule {
        check: Some(is_basic_credential),
        boundary: true,
        after_blank: true,
        ..kw(
            "basic_auth",
            &["Basic", "basic", "BASIC"],
            r"(?:Basic|basic|BASIC)[ \t]+[A-Za-z0-9+/]{4,}={0,2}",
            0,
        )
    },
    // --- passwords on command lines, in the forms the tools take them
    kw(
        "password",
        &["mysql", "mariadb", "MYSQL", "MARIADB"],
        r#"(?:mysql|mariadb)[a-z_\-]*\b[^|;&\n]*?\s-p['"]?([^\s'"]+)"#,
        1,
    ),
    kw(
        "password",
        &["sshpass"],
        r#"sshpass\b[^|;&\n]*?\s-p\s*['"]?([^\s'"]+)"#,
        1,
    ),
    kw(
        "password",
        &["redis-cli"],
        r#"redis-cli\b[^|;&\n]*?\s-a\s*['"]?([^\s'"]+)"#,
        1,
    ),
    rule(
        "password",
        &[" login "],
        r#"\b(?:docker|podman|nerdctl|buildah|skopeo|helm(?:\s+registry)?|oras|crane)\s+login\b[^|;&\n]*?\s-p\s+['"]?([^\s'"]+)"#,
        1,
    ),
    kw(
        "password",
        &["mongo"],
        r#"\bmongo(?:sh|dump|restore|import|export|stat|top)?\b[^|;&\n]*?\s-p\s+['"]?([^\s'"]+)"#,
        1,
    ),
    kw(
        "url_password",
        &["curl"],
        r#"\bcurl\b.*?\s(?:-u|--user)(?:=|\s+)["']?[^\s:"'@]{1,64}:([^\s"']{3,})"#,
        1,
    ),
];

#[cfg(test)]
mod guard_tests {
    use super::Guard;

    /// `continued_by` is the complement of the class `class()` spells, for
    /// every ASCII byte; a non-ASCII character and the end never continue.
    #[test]
    fn guard_by_hand_is_its_class() {
        for g in [Guard::Word, Guard::Dotted] {
            let outside = regex::Regex::new(&format!("^[^{}]$", g.class())).unwrap();
            let mut continuing = 0;
            for b in 0u8..128 {
                let c = char::from(b).to_string();
                assert_eq!(g.continued_by(Some(b)), !outside.is_match(&c), "{g:?} {b}");
                continuing += usize::from(g.continued_by(Some(b)));
            }
            assert_eq!(continuing, 64, "{g:?}");
            for c in ["\u{e9}", "\u{a0}", "\u{1f600}"] {
                assert!(outside.is_match(c));
                assert!(!g.continued_by(c.as_bytes().first().copied()), "{g:?} {c}");
            }
            assert!(!g.continued_by(None));
        }
        assert!(Guard::Word.continued_by(Some(b'-')) && !Guard::Word.continued_by(Some(b'.')));
        assert!(Guard::Dotted.continued_by(Some(b'.')) && !Guard::Dotted.continued_by(Some(b'-')));
    }
}

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
            at("aws_session_token", format!("FwoGZXIvYXdzE{}", fill(B64, 120, 2)), "session ", "FwoGZXIvYXdz short".into()),
            at("aws_bedrock_api_key", format!("ABSK{}", fill(B64, 120, 3)), "bedrock ", "ABSK short".into()),
            at("google_refresh_token", format!("1//0{}", an(60)), "refresh ", "1//0 short".into()),
            at("tencent_secret_id", format!("AKID{}", an(32)), "tencent ", format!("AKID{} short", an(20))),
            at("scaleway_access_key", format!("SCW{}", fill(UPN, 17, 3)), "scw ", "SCWABC".into()),
            at("yandex_token", format!("AQVN{}", an(36)), "ya ", "AQVN short".into()),
            at("gitlab_token", format!("glft-{}", an(20)), "feed ", "glft-abc".into()),
            c("gitlab_session_cookie", fill("abcdefghijklmnopqrstuvwxyz0123456789", 32, 4), format!("Cookie-ish _gitlab_session={}", fill("abcdefghijklmnopqrstuvwxyz0123456789", 32, 4)), "_gitlab_session=short".into()),
            at("sonarqube_token", format!("squ_{}", hex(40)), "sonar ", "squ_short".into()),
            at("sourcegraph_token", format!("sgp_{}_{}", hex(16), hex(40)), "sg ", "sgp_short".into()),
            at("octopus_deploy_api_key", format!("API-{}", fill(UPN, 26, 2)), "octo ", "API-GATEWAY-ERROR".into()),
            at("harness_token", format!("pat.{}.{}.{}", an(22), an(24), an(20)), "harness ", "pat.short.x".into()),
            at("artifactory_token", format!("AKCp{}", an(69)), "jfrog ", "AKCp short".into()),
            at("infracost_api_key", format!("ico-{}", an(32)), "ic ", "ico-short".into()),
            at("prefect_api_key", format!("pnu_{}", an(36)), "prefect ", "pnu_short".into()),
            at("readme_api_key", format!("rdme_{}", fill("abcdefghijklmnopqrstuvwxyz0123456789", 70, 5)), "readme ", "rdme_short".into()),
            at("scalingo_token", format!("tk-us-{}", an(48)), "scalingo ", "tk-us-short".into()),
            at("settlemint_token", format!("sm_pat_{}", an(16)), "sm ", "sm_pat_x".into()),
            at("openshift_token", format!("sha256~{}", an(43)), "oc ", "sha256~short".into()),
            at("defined_networking_token", format!("dnkey-{}-{}", an(26), an(52)), "dn ", "dnkey-short".into()),
            at("intra42_secret", format!("s-s4t2ud-{}", hex(64)), "42 ", "s-s4t2ud-short".into()),
            at("authress_key", format!("sc_{}.{}.acc_{}.{}", an(10), an(5), an(16), an(40)), "authress ", "sc_abc.def".into()),
            at("crates_io_token", format!("cio{}", an(32)), "cargo ", "cio is a word".into()),
            at("clojars_token", format!("CLOJARS_{}", an(60)), "clj ", "CLOJARS_short".into()),
            c("nuget_config_password", "s3cr3t-Nuget".into(), r#"<add key="ClearTextPassword" value="s3cr3t-Nuget" />"#.into(), r#"<add key="Username" value="bob" />"#.into()),
            c("teams_webhook", format!("{}@{}/IncomingWebhook/{}/{}", hex(36), hex(36), hex(32), hex(36)), format!("post https://acme.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}", hex(36), hex(36), hex(32), hex(36)), "see https://acme.webhook.office.com/ docs".into()),
            c("zapier_webhook", format!("1234567/{}", an(7)), format!("POST https://hooks.zapier.com/hooks/catch/1234567/{}", an(7)), "https://hooks.zapier.com/ docs".into()),
            at("facebook_access_token", format!("EAAG{}", an(120)), "fb ", "EAAG short".into()),
            at("shippo_token", format!("shippo_live_{}", hex(40)), "shippo ", "shippo_live_short".into()),
            at("duffel_token", format!("duffel_test_{}", an(43)), "duffel ", "duffel_test_x".into()),
            at("easypost_token", format!("EZAK{}", an(54)), "ep ", "EZAK short".into()),
            at("flutterwave_key", format!("FLWSECK_TEST-{}-X", hex(32)), "flw ", "FLWSECK short".into()),
            at("razorpay_key", format!("rzp_live_{}", an(14)), "rzp ", "rzp_live_x".into()),
            at("braintree_token", format!("access_token$production${}${}", fill("abcdefghijklmnopqrstuvwxyz0123456789", 16, 6), hex(32)), "bt ", "access_token$ alone".into()),
            at("plaid_access_token", format!("access-sandbox-{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)), "plaid ", "access-sandbox-denied".into()),
            at("amazon_mws_token", format!("amzn.mws.{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)), "mws ", "amzn.mws.short".into()),
            at("sentry_token", format!("sntryu_{}", hex(64)), "sentry ", "sntryu_short".into()),
            at("dynatrace_token", format!("dt0c01.{}.{}", fill(UPN, 24, 2), an(64)), "dt ", "dt0c01.short".into()),
            at("langsmith_api_key", format!("lsv2_pt_{}_{}", hex(32), hex(10)), "ls ", "lsv2_pt_short".into()),
            at("clickhouse_cloud_key", format!("4b1d{}", an(38)), "ch ", "4b1d short".into()),
            at("onepassword_secret_key", format!("A3-{}-{}-{}-{}-{}", fill(UPN, 6, 1), fill(UPN, 11, 2), fill(UPN, 5, 3), fill(UPN, 5, 4), fill(UPN, 5, 5)), "1p ", "A3-SHORT".into()),
            at("onepassword_service_token", format!("ops_eyJ{}", fill(B64, 260, 6)), "1p ", "ops_eyJ short".into()),
            at("adobe_client_secret", format!("p8e-{}", an(32)), "adobe ", "p8e-short".into()),
            at("airtable_token", format!("pat{}.{}", an(14), hex(64)), "airtable ", "path=/var/lib/app patterns=3".into()),
            at("notion_token", format!("ntn_{}{}", "12345678901", an(35)), "notion ", "ntn_short".into()),
            at("frameio_token", format!("fio-u-{}", an(64)), "frameio ", "fio-u-short".into()),
            at("typeform_token", format!("tfp_{}", an(59)), "typeform ", "tfp_short".into()),
            at("hubspot_token", format!("pat-na1-{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)), "hubspot ", "pat-na1-short".into()),
            at("contentful_token", format!("CFPAT-{}", an(43)), "cf ", "CFPAT-short".into()),
            at("clickup_token", format!("pk_12345678_{}", fill(UPN, 32, 3)), "clickup ", "pk_live_1234".into()),
            at("neon_api_key", format!("napi_{}", an(64)), "neon ", "napi_short".into()),
            at("netlify_token", format!("nfp_{}", an(36)), "netlify ", "nfp_short".into()),
            at("figma_token", format!("figd_{}", an(40)), "figma ", "figd_x".into()),
            at("render_api_key", format!("rnd_{}", an(32)), "render ", "rnd_short".into()),
            at("aiven_password", format!("AVNS_{}", an(24)), "aiven ", "AVNS_x".into()),
            at("maxmind_license_key", format!("{}_{}_mmk", an(6), an(29)), "maxmind ", "abc_mmk".into()),
            at("salesforce_session", format!("00D{}!{}", an(15), an(96)), "sf ", "00D12345 not a session".into()),
            c("password", "S3cretPw".into(), "run mysql -h db -u root -pS3cretPw app".into(), "run mysql -h db -u root -p app".into()),
            c("url_password", "hunter22".into(), "curl -s -u admin:hunter22 https://x.example".into(), "docker run -u 1000:1000 image".into()),
            c("jwt", format!("ZXlK{}", "aGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaUl4TWpNME5UWTNPRGt3SW4wLmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6"), format!("k8s token: ZXlK{}", "aGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaUl4TWpNME5UWTNPRGt3SW4wLmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6"), "ZXlK short".into()),
            c("pem_private_key", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB".into(), "  tls.key: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB".into(), "  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURkekNDQWwrZ0F3SUJBZ0lF".into()),
            c("basic_auth", basic.into(), format!("Basic {basic} sent"), "basic configuration loaded".into()),
        ]
    }
}
