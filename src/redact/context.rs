//! Provider context: keys that are plain random strings, recognised by the
//! provider's name in the key that introduces them.
//!
//! Many providers issue keys with no prefix at all (a Twilio auth token is 32
//! hex digits, a Heroku key a UUID, an Algolia key 32 letters and digits).
//! Alone they are indistinguishable from hashes and ids, so they count only
//! after a key that names the provider (`HEROKU_API_KEY=`, `"algoliaKey": `,
//! `twitter.consumer_secret: `, `--sendbird-token `), and only when the value
//! has exactly the provider's shape. Keys that end in a sensitive stem
//! (`*_secret`, `*_token`) are redacted by [`super::keys`] anyway; these
//! rules add the ones that do not (`*_key` in lower case, `*_id`, `*_sid`).
//!
//! Like the provider rules, the provider words go into the engine's keyword
//! automaton (in lower, Capitalized and UPPER case), so a line that names no
//! provider costs nothing here. At a hit the key is read to its end by hand,
//! then a separator and the value, and only the value is matched against the
//! provider's shapes (one anchored regex per provider).

use super::keys::{is_key_byte, separator};

/// Providers identified by a word in the key.
pub struct CtxRule {
    /// `rule` label and marker.
    pub name: &'static str,
    /// Lower-case words one of which the key contains.
    pub words: &'static [&'static str],
    /// Alternatives the whole value must match (anchored by the engine).
    pub shapes: &'static str,
}

const fn ctx(name: &'static str, words: &'static [&'static str], shapes: &'static str) -> CtxRule {
    CtxRule {
        name,
        words,
        shapes,
    }
}

const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// Shapes are written out per provider (facts from the providers' documentation
/// and the public gitleaks and TruffleHog rule sets); `{UUID}` is spelled out
/// because `concat!` cannot take a `const`.
pub static CTX_RULES: &[CtxRule] = &[
    ctx("adafruit_api_key", &["adafruit"], r"[A-Za-z0-9_\-]{32}"),
    ctx(
        "adobe_client_id",
        &["adobe"],
        r"[a-fA-F0-9]{32}|p8e-[A-Za-z0-9]{32}",
    ),
    ctx(
        "airtable_api_key",
        &["airtable"],
        r"key[A-Za-z0-9]{14}|[A-Za-z0-9]{17}",
    ),
    ctx("algolia_api_key", &["algolia"], r"[A-Za-z0-9]{32}"),
    ctx(
        "alibaba_secret_key",
        &["alibaba", "aliyun"],
        r"[A-Za-z0-9]{30}",
    ),
    ctx(
        "asana_secret",
        &["asana"],
        r"[0-9]{16}|[A-Za-z0-9]{32}|[0-9]/[0-9]{10,16}(?:/[0-9]{10,16})?:[a-f0-9]{32}",
    ),
    ctx(
        "atlassian_api_token",
        &["atlassian", "confluence", "jira"],
        r"[A-Za-z0-9]{24}",
    ),
    ctx("beamer_api_token", &["beamer"], r"b_[A-Za-z0-9=_\-]{44}"),
    ctx(
        "bitbucket_secret",
        &["bitbucket"],
        r"[A-Za-z0-9]{32}|[A-Za-z0-9=_\-]{64}",
    ),
    ctx("bittrex_key", &["bittrex"], r"[A-Za-z0-9]{32}"),
    ctx("cisco_meraki_api_key", &["meraki"], r"[0-9a-f]{40}"),
    ctx(
        "cloudflare_api_token",
        &["cloudflare"],
        r"[A-Za-z0-9_\-]{40}|[a-f0-9]{37}",
    ),
    ctx(
        "codecov_token",
        &["codecov"],
        r"[A-Za-z0-9]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
    ctx(
        "cohere_api_key",
        &["cohere", "co_api_key"],
        r"[A-Za-z0-9]{40}",
    ),
    ctx(
        "coinbase_key",
        &["coinbase"],
        r"[A-Za-z0-9_\-]{64}|[A-Za-z0-9]{16}|[A-Za-z0-9]{32}",
    ),
    ctx(
        "confluent_key",
        &["confluent"],
        r"[A-Za-z0-9]{16}|[A-Za-z0-9+/]{64}",
    ),
    ctx("contentful_token", &["contentful"], r"[A-Za-z0-9=_\-]{43}"),
    ctx("datadog_key", &["datadog"], r"[A-Za-z0-9]{40}|[a-f0-9]{32}"),
    ctx(
        "discord_secret",
        &["discord"],
        r"[a-fA-F0-9]{64}|[0-9]{17,19}|[A-Za-z0-9=_\-]{32}",
    ),
    ctx(
        "droneci_token",
        &["droneci", "drone_token", "drone_server"],
        r"[A-Za-z0-9]{32}",
    ),
    ctx(
        "dropbox_token",
        &["dropbox"],
        r"[A-Za-z0-9]{15}|[A-Za-z0-9]{11}AAAAAAAAAA[A-Za-z0-9_=\-]{43}|sl\.[A-Za-z0-9_=.\-]{100,}",
    ),
    ctx("etsy_token", &["etsy"], r"[A-Za-z0-9]{24}"),
    ctx(
        "facebook_secret",
        &["facebook", "fb_app", "fbapp", "fb_secret", "fb_token"],
        r"[a-fA-F0-9]{32}|[0-9]{15,16}(?:\||%7C)[A-Za-z0-9_\-]{27,40}",
    ),
    ctx("fastly_api_token", &["fastly"], r"[A-Za-z0-9=_\-]{32}"),
    ctx(
        "finicity_secret",
        &["finicity"],
        r"[a-f0-9]{32}|[A-Za-z0-9]{20}",
    ),
    ctx("finnhub_token", &["finnhub"], r"[A-Za-z0-9]{20}"),
    ctx("flickr_token", &["flickr"], r"[A-Za-z0-9]{32}"),
    ctx("freshbooks_token", &["freshbooks"], r"[A-Za-z0-9]{64}"),
    ctx("gitter_token", &["gitter"], r"[A-Za-z0-9_\-]{40}"),
    ctx(
        "gocardless_token",
        &["gocardless"],
        r"live_[A-Za-z0-9_=\-]{40}|sandbox_[A-Za-z0-9_=\-]{40}",
    ),
    ctx("heroku_api_key", &["heroku"], UUID),
    ctx("hubspot_api_key", &["hubspot"], UUID),
    ctx("intercom_token", &["intercom"], r"[A-Za-z0-9=_\-]{60}"),
    ctx(
        "jfrog_token",
        &["jfrog", "artifactory", "bintray", "xray"],
        r"[A-Za-z0-9]{73}|[A-Za-z0-9]{64}",
    ),
    ctx("kraken_token", &["kraken"], r"[A-Za-z0-9/=_+\-]{80,90}"),
    ctx(
        "kucoin_key",
        &["kucoin"],
        r"[a-f0-9]{24}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
    ctx(
        "launchdarkly_token",
        &["launchdarkly", "launch_darkly"],
        r"[A-Za-z0-9=_\-]{40}|(?:api|sdk|mob)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
    ctx("linear_secret", &["linear"], r"[a-f0-9]{32}"),
    ctx(
        "linkedin_secret",
        &["linkedin", "linked_in", "linked-in"],
        r"[A-Za-z0-9]{14}|[A-Za-z0-9]{16}",
    ),
    ctx(
        "lob_api_key",
        &["lob_", "lobkey", "lob-"],
        r"(?:live|test)_[a-f0-9]{35}|(?:live|test)_pub_[a-f0-9]{31}",
    ),
    ctx(
        "looker_secret",
        &["looker"],
        r"[A-Za-z0-9]{20}|[A-Za-z0-9]{24}",
    ),
    ctx(
        "mailgun_api_key",
        &["mailgun"],
        r"[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8}|[a-f0-9]{32}",
    ),
    ctx(
        "mapbox_token",
        &["mapbox"],
        r"pk\.[A-Za-z0-9]{60}\.[A-Za-z0-9]{22}",
    ),
    ctx("mattermost_token", &["mattermost"], r"[A-Za-z0-9]{26}"),
    ctx(
        "messagebird_token",
        &["messagebird", "message_bird", "message-bird"],
        r"[A-Za-z0-9]{25}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
    ctx("netlify_token", &["netlify"], r"[A-Za-z0-9=_\-]{40,46}"),
    ctx(
        "new_relic_key",
        &["newrelic", "new_relic", "new-relic"],
        r"[A-Za-z0-9]{64}|[a-f0-9]{40}",
    ),
    ctx(
        "nytimes_token",
        &["nytimes", "newyorktimes"],
        r"[A-Za-z0-9=_\-]{32}",
    ),
    ctx("okta_token", &["okta"], r"00[A-Za-z0-9=_\-]{40}"),
    ctx(
        "plaid_secret",
        &["plaid"],
        r"[A-Za-z0-9]{24}|[A-Za-z0-9]{30}",
    ),
    ctx(
        "privateai_api_key",
        &["privateai", "private_ai", "private-ai"],
        r"[A-Za-z0-9]{32}",
    ),
    ctx("rapidapi_key", &["rapidapi"], r"[A-Za-z0-9_\-]{50}"),
    ctx(
        "sendbird_token",
        &["sendbird"],
        r"[a-f0-9]{40}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    ),
    ctx("sentry_token", &["sentry"], r"[a-f0-9]{64}"),
    ctx("snyk_token", &["snyk"], UUID),
    ctx("sonarqube_token", &["sonar"], r"[A-Za-z0-9=_\-]{40}"),
    ctx("squarespace_token", &["squarespace"], UUID),
    ctx(
        "sumologic_key",
        &["sumo"],
        r"su[A-Za-z0-9]{12}|[A-Za-z0-9]{64}",
    ),
    ctx(
        "telegram_bot_token",
        &["telegram", "telegr"],
        r"[0-9]{5,16}:A[A-Za-z0-9_\-]{34}",
    ),
    ctx("travisci_token", &["travis"], r"[A-Za-z0-9]{22}"),
    ctx("twilio_auth_token", &["twilio"], r"[a-f0-9]{32}"),
    ctx("twitch_token", &["twitch"], r"[A-Za-z0-9]{30}"),
    ctx(
        "twitter_secret",
        &["twitter"],
        r"[A-Za-z0-9]{25}|[A-Za-z0-9]{45}|[A-Za-z0-9]{50}|[0-9]{15,25}-[A-Za-z0-9]{20,40}|A{22}[A-Za-z0-9%]{80,100}",
    ),
    ctx(
        "yandex_token",
        &["yandex"],
        r"YC[A-Za-z0-9_\-]{38}|AQVN[A-Za-z0-9_\-]{35,38}",
    ),
    ctx("zendesk_secret", &["zendesk"], r"[A-Za-z0-9]{40}"),
    ctx(
        "sidekiq_secret",
        &["contribsys"],
        r"[a-f0-9]{8}:[a-f0-9]{8}",
    ),
    // TruffleHog detectors for services whose keys have no prefix.
    ctx("mailjet_key", &["mailjet"], r"[a-f0-9]{32}"),
    ctx(
        "pagerduty_token",
        &["pagerduty"],
        r"[A-Za-z0-9_+\-]{20}|u\+[A-Za-z0-9_+\-]{18}",
    ),
    ctx(
        "trello_key",
        &["trello"],
        r"[a-f0-9]{32}|[a-f0-9]{64}|ATTA[A-Za-z0-9]{60,}",
    ),
    ctx(
        "circleci_token",
        &["circleci", "circle_token"],
        r"[a-f0-9]{40}",
    ),
    ctx("vercel_token", &["vercel"], r"[A-Za-z0-9]{24}"),
    ctx("linode_token", &["linode"], r"[a-f0-9]{64}"),
    ctx("vultr_api_key", &["vultr"], r"[A-Z0-9]{36}"),
    ctx("hetzner_token", &["hetzner", "hcloud"], r"[A-Za-z0-9]{64}"),
    ctx("pusher_secret", &["pusher"], r"[a-f0-9]{20}"),
    ctx(
        "segment_write_key",
        &["segment_write", "segmentwrite"],
        r"[A-Za-z0-9]{32}",
    ),
    ctx("mixpanel_secret", &["mixpanel"], r"[a-f0-9]{32}"),
    ctx("rollbar_token", &["rollbar"], r"[a-f0-9]{32}"),
    ctx("bugsnag_api_key", &["bugsnag"], r"[a-f0-9]{32}"),
    ctx(
        "honeycomb_api_key",
        &["honeycomb"],
        r"[A-Za-z0-9]{22}|[A-Za-z0-9]{32}|hca[a-z]{2}_[A-Za-z0-9]{20,}",
    ),
    ctx("opsgenie_api_key", &["opsgenie"], UUID),
    ctx("postmark_token", &["postmark"], UUID),
    ctx("openweather_api_key", &["openweather"], r"[a-f0-9]{32}"),
    ctx("pushbullet_token", &["pushbullet"], r"o\.[A-Za-z0-9]{32}"),
    ctx(
        "azure_key",
        &["azure"],
        r"[a-f0-9]{32}|[A-Za-z0-9]{84}|[A-Za-z0-9+/]{86}==",
    ),
    ctx(
        "ibm_cloud_api_key",
        &["ibm_cloud", "ibmcloud", "ibm-cloud"],
        r"[A-Za-z0-9_\-]{44}",
    ),
    ctx("auth0_secret", &["auth0"], r"[A-Za-z0-9_\-]{64}"),
    ctx("mistral_api_key", &["mistral"], r"[A-Za-z0-9]{32}"),
    ctx("deepseek_api_key", &["deepseek"], r"sk-[a-f0-9]{32}"),
];

/// Keys that name an id, not a credential, even with a provider word in
/// them (`HEROKU_APP_ID`, `heroku_release_id`): a UUID under such a key stays.
const ID_KEYS: &[&str] = &[
    "requestid",
    "releaseid",
    "dynoid",
    "traceid",
    "eventid",
    "spanid",
    "runid",
    "buildid",
    "jobid",
    "deployid",
    "deploymentid",
    "commitid",
    "appid",
    "projectid",
    "orgid",
    "userid",
    "accountid",
    "tenantid",
    "subscriptionid",
    "workspaceid",
];

/// A UUID under a key that names an id (see [`ID_KEYS`]).
pub fn id_under_id_key(key: &str, value: &str) -> bool {
    if value.len() != 36 || value.bytes().filter(|&c| c == b'-').count() != 4 {
        return false;
    }
    let norm = super::keys::normalize(key);
    ID_KEYS.iter().any(|k| norm.ends_with(k))
}

/// Where a key that contains a provider word introduces a value.
pub struct KeyValue {
    pub key: (usize, usize),
    pub value: (usize, usize),
}

/// The value introduced by a key that contains a provider word at
/// `text[kw_start..kw_end]`: the key is read to its end (at most 40 more key
/// characters), then a separator (`=`, `:`, `=>`, `:=`, or a blank after a
/// `--flag`) and an optional quote.
pub fn value_after(text: &str, kw_start: usize, kw_end: usize) -> Option<KeyValue> {
    let b = text.as_bytes();
    let mut end = kw_end;
    while end < b.len() && is_key_byte(b[end]) && end - kw_end < 40 {
        end += 1;
    }
    let mut start = kw_start;
    while start > 0 && is_key_byte(b[start - 1]) && kw_start - start < 60 {
        start -= 1;
    }
    let mut at = match separator(b, end) {
        Some((at, _)) => at,
        None if b[start] == b'-' && b.get(end) == Some(&b' ') => end + 1,
        None => return None,
    };
    if b.get(at) == Some(&b'=') {
        at += 1; // `:=`
    }
    if b[at..].starts_with(b"\\\"") {
        at += 2;
    } else if matches!(b.get(at), Some(b'"' | b'\'' | b'`')) {
        at += 1;
    }
    let len = b[at..]
        .iter()
        .position(|&c| {
            c.is_ascii_whitespace()
                || matches!(
                    c,
                    b'"' | b'\''
                        | b'`'
                        | b','
                        | b';'
                        | b'&'
                        | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b'{'
                        | b'}'
                        | b'['
                        | b']'
                        | b'\\'
                )
        })
        .unwrap_or(b.len() - at);
    (len > 0).then_some(KeyValue {
        key: (start, end),
        value: (at, at + len),
    })
}
