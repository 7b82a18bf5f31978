//! The viewer: one page (HTML, CSS and ES modules) compiled into the binary
//! and served by the API router at `GET /` and `GET /assets/*` (SPEC §10).
//!
//! This module owns the files and their policy, not the HTTP: the router asks
//! [`asset`] for a path and sends the body with its content type and the
//! [`CSP`] header. Invariants, checked by the tests below:
//! - every file the page loads is in [`ASSETS`], so the page makes no
//!   request that is not to its own origin (and no CDN, font or analytics
//!   request of any kind); the CSP says the same to the browser;
//! - no inline script or style and no `eval`: the CSP forbids them, and
//!   Trusted Types forbid HTML sinks, so event text can only ever be text.
//!
//! Plain ES modules, no build step: the page is small, the browser runs the
//! committed files as they are, and `cargo build` needs no Node.

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The Content-Security-Policy sent with the page and its assets: only the
/// page's own origin, for everything; no inline code, no plugins, no
/// framing, no form posts, and Trusted Types so that no string ever becomes
/// HTML or script.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
require-trusted-types-for 'script'; trusted-types 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the page, by its name under `/assets/` (the page itself
/// is `index.html`, served at `/`).
pub const ASSETS: &[(&str, Asset)] = &[
    ("index.html", embed(HTML, include_bytes!("index.html"))),
    ("style.css", embed(CSS, include_bytes!("style.css"))),
    ("favicon.svg", embed(SVG, include_bytes!("favicon.svg"))),
    ("app.js", embed(JS, include_bytes!("app.js"))),
    ("api.js", embed(JS, include_bytes!("api.js"))),
    ("detail.js", embed(JS, include_bytes!("detail.js"))),
    ("errors.js", embed(JS, include_bytes!("errors.js"))),
    ("format.js", embed(JS, include_bytes!("format.js"))),
    ("query.js", embed(JS, include_bytes!("query.js"))),
    ("sse.js", embed(JS, include_bytes!("sse.js"))),
    ("tail.js", embed(JS, include_bytes!("tail.js"))),
    ("vlist.js", embed(JS, include_bytes!("vlist.js"))),
];

const fn embed(content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset { content_type, body }
}

/// The file for a request path: `/` (or `/index.html`) is the page,
/// `/assets/<name>` one of [`ASSETS`]. The leading `/` and `assets/` are
/// optional, so the router may pass the path whole or with its prefix
/// stripped. Anything else — including any path with a `/` or `..` left in
/// the name — is `None` (a 404).
pub fn asset(path: &str) -> Option<Asset> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/').unwrap_or(path);
    let name = match path {
        "" => "index.html",
        p => p.strip_prefix("assets/").unwrap_or(p),
    };
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> &'static str {
        let a = asset(name).unwrap_or_else(|| panic!("{name} is embedded"));
        std::str::from_utf8(a.body).expect("assets are UTF-8")
    }

    #[test]
    fn paths_resolve_with_or_without_prefixes() {
        for p in ["/", "", "/index.html", "index.html", "/?x=1"] {
            assert_eq!(asset(p).map(|a| a.content_type), Some(HTML), "{p:?}");
        }
        for p in [
            "/assets/app.js",
            "assets/app.js",
            "app.js",
            "/assets/app.js?v=2",
        ] {
            assert_eq!(asset(p).map(|a| a.content_type), Some(JS), "{p:?}");
        }
        for p in [
            "/assets/",
            "/assets/../mod.rs",
            "/mod.rs",
            "/assets/x/app.js",
            "/api/tail",
        ] {
            assert_eq!(asset(p), None, "{p:?}");
        }
    }

    /// Every `src`/`href` of the page and every module import is an
    /// embedded file on the same origin.
    #[test]
    fn every_reference_is_embedded_and_same_origin() {
        let html = text("index.html");
        let mut refs: Vec<&str> = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for part in html.split(attr).skip(1) {
                refs.push(part.split('"').next().unwrap_or(""));
            }
        }
        assert!(refs.len() >= 3, "page references: {refs:?}");
        for r in refs {
            assert!(r.starts_with("/assets/"), "non-asset reference {r:?}");
            assert!(asset(r).is_some(), "{r} is not embedded");
        }
        for (name, a) in ASSETS.iter().filter(|(_, a)| a.content_type == JS) {
            let js = std::str::from_utf8(a.body).unwrap();
            for line in js.lines().filter(|l| l.starts_with("import ")) {
                let spec = line
                    .rsplit(['\'', '"'])
                    .nth(1)
                    .unwrap_or_else(|| panic!("{name}: unparsed import {line:?}"));
                let file = spec
                    .strip_prefix("./")
                    .unwrap_or_else(|| panic!("{name}: import {spec:?} is not a sibling module"));
                assert!(asset(file).is_some(), "{name} imports {spec}, not embedded");
            }
        }
    }

    #[test]
    fn nothing_external_or_inline() {
        for (name, a) in ASSETS {
            let t = std::str::from_utf8(a.body).unwrap();
            for bad in [
                "http://",
                "https://",
                "//cdn",
                "eval(",
                "new Function",
                "innerHTML",
                "outerHTML",
                "document.write",
            ] {
                // The SVG namespace is an identifier, not a request.
                let hits = t.matches(bad).count()
                    - t.matches("http://www.w3.org/2000/svg").count()
                        * usize::from(bad == "http://");
                assert_eq!(hits, 0, "{name} contains {bad:?}");
            }
        }
        let html = text("index.html");
        assert!(!html.contains(" style="), "inline style attribute");
        assert!(!html.contains("<style"), "inline style element");
        for part in html.split("<script").skip(1) {
            assert!(
                part.starts_with(" type=\"module\" src=\""),
                "inline script: <script{}",
                &part[..40.min(part.len())]
            );
        }
        assert!(!CSP.contains("unsafe"), "CSP allows unsafe-*: {CSP}");
        assert!(CSP.contains("connect-src 'self'") && CSP.contains("default-src 'self'"));
    }
}
