//! The viewer's assets (SPEC §10, `GET /`): a placeholder page until the
//! viewer (issue #12) replaces this module. The router serves whatever
//! [`asset`] returns, with [`CSP`], and no authentication: the page asks
//! for the token itself and sends it on every `/api/*` request.

/// One static file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Content-Security-Policy of every asset: nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &[u8] = b"<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>logship</title></head>
<body><h1>logship</h1><p>The viewer is not built yet. The API is at
<code>/api/query</code>, <code>/api/tail</code> and <code>/api/errors</code>.</p></body></html>
";

/// The asset at `path` (`/` or `/assets/...`), if any.
pub fn asset(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(Asset {
            content_type: "text/html; charset=utf-8",
            body: INDEX,
        }),
        _ => None,
    }
}
