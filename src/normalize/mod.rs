//! Raw lines to unified events (SPEC §1): format detection, levels,
//! timestamps and correlation ids.
//!
//! A [`Normalizer`] is built once per source and fills a caller-owned
//! [`Event`] so the hot path reuses its buffers. It never redacts and never
//! assigns `seq`; the pipeline does both, in that order, right after.

pub mod formats;
pub mod level;
pub mod logfmt;
pub mod time;

use formats::{combined, cri, docker, klog, syslog, ContainerLine};

use serde_json::{Map, Value};

use crate::config::{Format, SourceConfig};
use crate::event::{Event, IdField, Level, Tier};

/// What the line itself supplied, so the pipeline fills only the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supplied {
    /// The line is a unified event carrying its own `seq`.
    pub seq: bool,
}

/// Per-source normalization settings.
#[derive(Clone, Debug)]
pub struct Normalizer {
    src: String,
    tier: Tier,
    kind: String,
    default_level: Level,
    format: Format,
    instance_id: String,
    /// For each id, the JSON/logfmt fields that fill it (in
    /// [`IdField::ALL`] order).
    id_fields: [(IdField, Vec<String>); 4],
}

const MSG_KEYS: [&str; 5] = ["msg", "message", "log", "text", "@message"];
const TIME_KEYS: [&str; 4] = ["time", "ts", "timestamp", "@timestamp"];
const LEVEL_KEYS: [&str; 5] = ["level", "lvl", "severity", "levelname", "loglevel"];

impl Normalizer {
    pub fn new(cfg: &SourceConfig, instance_id: &str) -> Normalizer {
        let mut n = Normalizer::plain(cfg.name.get_ref(), cfg.tier, cfg.format, instance_id);
        n.kind = cfg.kind.clone();
        n.default_level = cfg.default_level;
        for (key, names) in &cfg.id_fields {
            if let Some(slot) = n
                .id_fields
                .iter_mut()
                .find(|(f, _)| f.name() == key.get_ref())
            {
                slot.1 = names.to_vec();
            }
        }
        n
    }

    /// A normalizer with default kind, level and id fields.
    pub fn plain(src: &str, tier: Tier, format: Format, instance_id: &str) -> Normalizer {
        Normalizer {
            src: src.to_string(),
            tier,
            kind: "line".into(),
            default_level: Level::Info,
            format,
            instance_id: instance_id.to_string(),
            id_fields: IdField::ALL.map(|id| {
                let names = id.default_fields().iter().map(|s| s.to_string());
                (id, names.collect())
            }),
        }
    }

    /// The level of a line that says none.
    pub fn default_level(&self) -> Level {
        self.default_level
    }

    /// Fill `ev` from one line. `path_ids` are ids captured from the file's
    /// path template; the line's own ids win over them.
    pub fn normalize(
        &self,
        line: &str,
        now_ms: i64,
        path_ids: &[(IdField, String)],
        ev: &mut Event,
    ) -> Supplied {
        ev.ts = now_ms;
        ev.instance_id.clear();
        ev.instance_id.push_str(&self.instance_id);
        ev.tier = self.tier;
        ev.kind.clear();
        ev.kind.push_str(&self.kind);
        ev.lvl = self.default_level;
        ev.project_id = None;
        ev.build_id = None;
        ev.user_id = None;
        ev.req_id = None;
        for (id, v) in path_ids {
            *ev.id_mut(*id) = Some(v.clone());
        }
        ev.seq = 0;
        ev.src.clear();
        ev.src.push_str(&self.src);
        ev.msg.clear();
        ev.data = None;

        // Container formats are unwrapped before this (`container`): what
        // arrives here is the application's text, normalized as `auto`.
        let format = match self.format {
            Format::Cri | Format::Docker => Format::Auto,
            f => f,
        };
        let trimmed = line.trim_start();
        let try_json = match format {
            Format::Json => true,
            Format::Auto => trimmed.starts_with('{'),
            _ => false,
        };
        if try_json {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
                return self.json_line(map, line, ev);
            }
        }
        let try_logfmt = match format {
            Format::Logfmt => true,
            Format::Auto => logfmt::looks_like(trimmed),
            _ => false,
        };
        if try_logfmt {
            if let Some(pairs) = logfmt::parse(trimmed) {
                self.logfmt_line(pairs, line, ev);
                return Supplied::default();
            }
        }
        let auto = format == Format::Auto;
        if (format == Format::Klog || auto && klog::looks_like(line))
            && self.klog_line(line, now_ms, ev)
        {
            return Supplied::default();
        }
        if (format == Format::Syslog || auto && syslog::looks_like(line))
            && self.syslog_line(line, now_ms, ev)
        {
            return Supplied::default();
        }
        if (format == Format::Combined || auto && combined::looks_like(line))
            && self.access_line(line, ev)
        {
            return Supplied::default();
        }
        self.text_line(line, now_ms, ev);
        Supplied::default()
    }

    /// The container-runtime wrapper of `line`, if this source's format has
    /// one: `cri` and `docker` always, `auto` when the line looks like one.
    pub fn container<'a>(&self, line: &'a str) -> Option<ContainerLine<'a>> {
        match self.format {
            Format::Cri => cri::parse(line),
            Format::Docker => docker::parse(line),
            Format::Auto if docker::looks_like(line) => docker::parse(line),
            Format::Auto => cri::parse(line),
            _ => None,
        }
    }

    /// Whether lines of this source may be container lines.
    pub fn may_be_container(&self) -> bool {
        matches!(self.format, Format::Cri | Format::Docker | Format::Auto)
    }

    fn text_line(&self, line: &str, now_ms: i64, ev: &mut Event) {
        let mut rest = line;
        if let Some((ts, end)) = time::leading_timestamp(line, now_ms) {
            ev.ts = ts;
            rest = &line[end..];
        }
        if let Some(l) = level::from_text(rest) {
            ev.lvl = l;
        }
        ev.msg.push_str(line);
    }

    fn klog_line(&self, line: &str, now_ms: i64, ev: &mut Event) -> bool {
        let Some(k) = klog::parse(line, now_ms) else {
            return false;
        };
        ev.ts = k.ts;
        ev.lvl = k.level;
        ev.msg.push_str(k.msg);
        let mut data = Map::new();
        data.insert("thread".into(), number_or_string(k.thread));
        data.insert("source".into(), Value::String(k.source.into()));
        ev.data = Some(data);
        true
    }

    fn syslog_line(&self, line: &str, now_ms: i64, ev: &mut Event) -> bool {
        let Some(s) = syslog::parse(line, now_ms) else {
            return false;
        };
        if let Some(ts) = s.ts {
            ev.ts = ts;
        }
        // Most programs log everything at info/notice; a level written in
        // the message then says more than the severity does.
        let from_msg = match s.severity {
            None | Some(5) | Some(6) => level::from_text(s.msg),
            Some(_) => None,
        };
        if let Some(l) = from_msg.or_else(|| s.level()) {
            ev.lvl = l;
        }
        ev.msg.push_str(s.msg);
        let mut data = Map::new();
        for (k, v) in [
            ("host", s.host),
            ("app", s.app),
            ("msgid", s.msgid),
            ("sd", s.sd),
        ] {
            if let Some(v) = v {
                data.insert(k.into(), Value::String(v.into()));
            }
        }
        if let Some(pid) = s.pid {
            data.insert("pid".into(), number_or_string(pid));
        }
        ev.data = (!data.is_empty()).then_some(data);
        true
    }

    fn access_line(&self, line: &str, ev: &mut Event) -> bool {
        let Some(a) = combined::parse(line) else {
            return false;
        };
        ev.ts = a.ts;
        ev.lvl = a.level();
        ev.msg.push_str(line);
        let mut data = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                data.insert(k.into(), Value::String(v.into()));
            }
        };
        put("remote", Some(a.remote));
        put("user", a.user);
        put("method", a.method);
        put("path", a.path);
        put("protocol", a.protocol);
        put("referer", a.referer);
        put("agent", a.agent);
        data.insert("status".into(), Value::from(a.status));
        data.insert("bytes".into(), Value::from(a.bytes));
        ev.data = Some(data);
        true
    }

    fn logfmt_line(&self, pairs: Vec<(&str, String)>, line: &str, ev: &mut Event) {
        let mut data = Map::new();
        let mut msg = None;
        for (k, v) in pairs {
            if msg.is_none() && (k == "msg" || k == "message") {
                msg = Some(v);
            } else if TIME_KEYS.contains(&k) && time::json_time(&Value::String(v.clone())).is_some()
            {
                ev.ts = time::json_time(&Value::String(v)).unwrap_or(ev.ts);
            } else if LEVEL_KEYS.contains(&k) && level::from_name(&v).is_some() {
                ev.lvl = level::from_name(&v).unwrap_or(ev.lvl);
            } else if k == "kind" && !v.is_empty() {
                ev.kind = v;
            } else if let Some(id) = self.id_for_field(k) {
                *ev.id_mut(id) = Some(v);
            } else {
                data.insert(k.to_string(), Value::String(v));
            }
        }
        match msg {
            Some(m) => ev.msg = m,
            None => ev.msg.push_str(line),
        }
        ev.data = (!data.is_empty()).then_some(data);
    }

    /// The id a JSON/logfmt field fills, if any.
    fn id_for_field(&self, key: &str) -> Option<IdField> {
        self.id_fields
            .iter()
            .find(|(_, names)| names.iter().any(|n| n == key))
            .map(|(id, _)| *id)
    }

    fn json_line(&self, mut map: Map<String, Value>, line: &str, ev: &mut Event) -> Supplied {
        let unified = map.contains_key("tier") && map.get("msg").is_some_and(Value::is_string);
        if unified {
            return self.unified_line(map, ev);
        }
        if let Some(ts) = take_first(&mut map, &TIME_KEYS, time::json_time) {
            ev.ts = ts;
        }
        if let Some(l) = take_first(&mut map, &LEVEL_KEYS, level::from_json) {
            ev.lvl = l;
        }
        if let Some(k) = take_first(&mut map, &["kind"], |v| v.as_str().map(str::to_string)) {
            ev.kind = k;
        }
        for (id, names) in &self.id_fields {
            for name in names {
                if let Some(v) = map.get(name).and_then(id_value) {
                    map.remove(name);
                    *ev.id_mut(*id) = Some(v);
                    break;
                }
            }
        }
        // Docker json-file lines under `format = "json"` (the `docker` and
        // `auto` formats unwrap them before this, joining partial lines):
        // the stream is `src`, the app's newline is not part of `msg`.
        let mut docker = false;
        if map.contains_key("log") {
            if let Some(Value::String(s)) = map.get("stream") {
                if s == "stdout" || s == "stderr" {
                    ev.src.clear();
                    ev.src.push_str(s);
                    map.remove("stream");
                    docker = true;
                }
            }
        }
        match take_first(&mut map, &MSG_KEYS, |v| v.as_str().map(str::to_string)) {
            Some(m) => {
                if ev.lvl == self.default_level {
                    if let Some(l) = level::from_text(&m) {
                        ev.lvl = l;
                    }
                }
                ev.msg = m;
                if docker && ev.msg.ends_with('\n') {
                    ev.msg.pop();
                }
            }
            None => ev.msg.push_str(line.trim()),
        }
        ev.data = (!map.is_empty()).then_some(map);
        Supplied::default()
    }

    /// A line that already is a unified event keeps its own fields.
    fn unified_line(&self, mut map: Map<String, Value>, ev: &mut Event) -> Supplied {
        let mut supplied = Supplied::default();
        if let Some(t) = map
            .remove("tier")
            .and_then(|v| v.as_str().and_then(Tier::parse))
        {
            ev.tier = t;
        }
        // The contract's `ts` is epoch milliseconds: no unit guessing.
        let ts = map.remove("ts");
        if let Some(ts) = ts
            .as_ref()
            .and_then(|v| v.as_i64().or_else(|| time::json_time(v)))
        {
            ev.ts = ts;
        }
        if let Some(Value::String(s)) = map.remove("instanceId") {
            if !s.is_empty() {
                ev.instance_id = s;
            }
        }
        if let Some(Value::String(k)) = map.remove("kind") {
            ev.kind = k;
        }
        if let Some(l) = map.remove("lvl").as_ref().and_then(level::from_json) {
            ev.lvl = l;
        }
        for id in IdField::ALL {
            if let Some(v) = map.remove(id.name()).as_ref().and_then(id_value) {
                *ev.id_mut(id) = Some(v);
            }
        }
        if let Some(seq) = map.remove("seq").and_then(|v| v.as_u64()) {
            ev.seq = seq;
            supplied.seq = true;
        }
        if let Some(Value::String(s)) = map.remove("src") {
            ev.src = s;
        }
        if let Some(Value::String(m)) = map.remove("msg") {
            ev.msg = m;
        }
        let mut data = match map.remove("data") {
            Some(Value::Object(d)) => d,
            _ => Map::new(),
        };
        data.extend(map);
        ev.data = (!data.is_empty()).then_some(data);
        supplied
    }
}

/// A numeric field (`pid`, `thread`) as a JSON number when it is one.
fn number_or_string(s: &str) -> Value {
    s.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(s.into()))
}

fn id_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Remove and convert the first of `keys` whose value `f` accepts.
fn take_first<T>(
    map: &mut Map<String, Value>,
    keys: &[&str],
    f: impl Fn(&Value) -> Option<T>,
) -> Option<T> {
    for k in keys {
        if let Some(t) = map.get(*k).and_then(&f) {
            map.remove(*k);
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_319_384_000;

    fn norm(format: Format, line: &str) -> Event {
        let n = Normalizer::plain("app", Tier::System, format, "host-1");
        let mut ev = Event::empty(Tier::System);
        n.normalize(line, NOW, &[], &mut ev);
        ev
    }

    #[test]
    fn text_line_with_timestamp_and_level() {
        let ev = norm(Format::Auto, "2026-11-22T03:49:40Z ERROR db down");
        assert_eq!(ev.ts, NOW - 4000);
        assert_eq!(ev.lvl, Level::Error);
        assert_eq!(ev.msg, "2026-11-22T03:49:40Z ERROR db down");
        assert_eq!(ev.kind, "line");
        assert_eq!(ev.src, "app");
        assert_eq!(ev.instance_id, "host-1");
        assert!(ev.data.is_none());
    }

    #[test]
    fn plain_text_uses_read_time() {
        let ev = norm(Format::Auto, "hello");
        assert_eq!((ev.ts, ev.lvl), (NOW, Level::Info));
    }

    #[test]
    fn json_fields_map_to_keys() {
        let ev = norm(
            Format::Auto,
            r#"{"time":"2026-11-22T03:49:44Z","level":50,"msg":"build failed","build_id":"b-7","projectId":"p1","exit":2,"kind":"build"}"#,
        );
        assert_eq!(ev.ts, NOW);
        assert_eq!(ev.lvl, Level::Error);
        assert_eq!(ev.msg, "build failed");
        assert_eq!(ev.build_id.as_deref(), Some("b-7"));
        assert_eq!(ev.project_id.as_deref(), Some("p1"));
        assert_eq!(ev.kind, "build");
        assert_eq!(ev.data.unwrap()["exit"], 2);
    }

    #[test]
    fn unified_event_keeps_its_fields() {
        let line = r#"{"ts":1,"instanceId":"other","tier":"deploy","kind":"deploy","lvl":"warn","projectId":null,"buildId":"b1","userId":null,"reqId":null,"seq":42,"src":"x","msg":"m","data":{"a":1}}"#;
        let n = Normalizer::plain("app", Tier::System, Format::Auto, "host-1");
        let mut ev = Event::empty(Tier::System);
        let s = n.normalize(line, NOW, &[], &mut ev);
        assert!(s.seq);
        assert_eq!((ev.ts, ev.tier, ev.seq), (1, Tier::Deploy, 42));
        assert_eq!(ev.instance_id, "other");
        assert_eq!(ev.lvl, Level::Warn);
        assert_eq!(ev.data.unwrap()["a"], 1);
    }

    #[test]
    fn logfmt_line() {
        let ev = norm(
            Format::Auto,
            r#"ts=2026-11-22T03:49:44Z level=warn msg="slow query" duration=3s reqId=r-1"#,
        );
        assert_eq!((ev.ts, ev.lvl), (NOW, Level::Warn));
        assert_eq!(ev.msg, "slow query");
        assert_eq!(ev.req_id.as_deref(), Some("r-1"));
        assert_eq!(ev.data.unwrap()["duration"], "3s");
    }

    #[test]
    fn invalid_json_falls_back_to_text() {
        let deep = "[".repeat(10_000);
        let ev = norm(Format::Auto, &format!("{{\"a\":{deep}"));
        assert!(ev.msg.starts_with("{\"a\":[[["));
        let ev = norm(Format::Json, "not json at all");
        assert_eq!(ev.msg, "not json at all");
    }

    #[test]
    fn container_lines_are_unwrapped_by_auto() {
        let n = Normalizer::plain("app", Tier::System, Format::Auto, "host-1");
        let c = n
            .container(r#"{"log":"ERROR boom\n","stream":"stderr","time":"2026-11-22T03:49:44.000000001Z"}"#)
            .unwrap();
        assert_eq!(
            (c.stream.as_str(), &*c.text, c.partial, c.ts),
            ("stderr", "ERROR boom", false, Some(NOW))
        );
        let c = n
            .container("2026-11-22T03:49:44.669794202Z stdout P hello")
            .unwrap();
        assert_eq!(
            (c.stream.as_str(), &*c.text, c.partial),
            ("stdout", "hello", true)
        );
        assert!(n.container("2026-11-22T03:49:44Z INFO up").is_none());
        let text = Normalizer::plain("app", Tier::System, Format::Text, "h");
        assert!(text.container("2026-11-22T03:49:44Z stdout F x").is_none());
    }

    #[test]
    fn docker_lines_under_json_keep_their_stream() {
        let ev = norm(
            Format::Json,
            r#"{"log":"ERROR boom\n","stream":"stderr","time":"2026-11-22T03:49:44Z"}"#,
        );
        assert_eq!(
            (ev.src.as_str(), ev.msg.as_str(), ev.lvl, ev.ts),
            ("stderr", "ERROR boom", Level::Error, NOW)
        );
    }

    #[test]
    fn text_formats() {
        let ev = norm(
            Format::Auto,
            "<11>1 2026-11-22T03:49:44Z web-1 api 77 - - disk failed",
        );
        assert_eq!(
            (ev.ts, ev.lvl, ev.msg.as_str()),
            (NOW, Level::Error, "disk failed")
        );
        let d = ev.data.unwrap();
        assert_eq!(
            (d["host"].as_str(), d["app"].as_str(), d["pid"].as_u64()),
            (Some("web-1"), Some("api"), Some(77))
        );
        let ev = norm(
            Format::Auto,
            "Nov 22 03:49:44 web-1 cron[9]: WARNING: job late",
        );
        assert_eq!(
            (ev.ts, ev.lvl, ev.msg.as_str()),
            (NOW, Level::Warn, "WARNING: job late")
        );
        let line =
            r#"10.0.0.1 - - [22/Nov/2026:03:49:44 +0000] "GET /x HTTP/1.1" 503 12 "-" "curl/8""#;
        let ev = norm(Format::Auto, line);
        assert_eq!((ev.ts, ev.lvl, ev.msg.as_str()), (NOW, Level::Error, line));
        let d = ev.data.unwrap();
        assert_eq!(
            (
                d["status"].as_u64(),
                d["method"].as_str(),
                d["agent"].as_str()
            ),
            (Some(503), Some("GET"), Some("curl/8"))
        );
        let ev = norm(
            Format::Auto,
            "W1122 03:49:44.250000       1 leader.go:88] lost lease",
        );
        assert_eq!(
            (ev.ts, ev.lvl, ev.msg.as_str()),
            (NOW + 250, Level::Warn, "lost lease")
        );
        assert_eq!(ev.data.unwrap()["source"], "leader.go:88");
        // A named format falls back to text for a line that is not one.
        let ev = norm(Format::Syslog, "just words");
        assert_eq!((ev.msg.as_str(), ev.data), ("just words", None));
        // Text never tries the named formats.
        let ev = norm(Format::Text, "W1122 03:49:44.250000 1 a.go:1] x");
        assert_eq!(ev.msg, "W1122 03:49:44.250000 1 a.go:1] x");
    }

    #[test]
    fn path_ids_fill_and_line_ids_win() {
        let n = Normalizer::plain("b", Tier::Build, Format::Auto, "h");
        let mut ev = Event::empty(Tier::Build);
        n.normalize(
            "plain",
            NOW,
            &[(IdField::BuildId, "from-path".into())],
            &mut ev,
        );
        assert_eq!(ev.build_id.as_deref(), Some("from-path"));
        n.normalize(
            r#"{"msg":"x","buildId":"from-line"}"#,
            NOW,
            &[(IdField::BuildId, "from-path".into())],
            &mut ev,
        );
        assert_eq!(ev.build_id.as_deref(), Some("from-line"));
    }
}
