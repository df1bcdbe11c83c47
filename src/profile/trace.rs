//! Chrome trace export: the profiler's events in the Trace Event Format that `chrome://tracing` and
//! Perfetto (<https://ui.perfetto.dev>) open.
//!
//! Each event is a complete event (`"ph": "X"`) with `ts` (start) and `dur` in microseconds since the
//! profiler started, `pid` 1 and `tid` the profiler's thread number, so nested ops stack into a flame
//! chart per thread. `cat` is `forward`, `backward`, `engine`, or `nested` (ops run inside a backward
//! formula or by the engine, which the tables do not count). `args` carry the call site, shapes, dtype and
//! the FLOPs, bytes and saved-bytes estimates. A metadata event names each thread.

use super::profiler::{EventKind, ProfileEvent, ProfileReport};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

impl ProfileReport {
    /// The events as a Chrome trace JSON document (`{"traceEvents": [...], "displayTimeUnit": "ms"}`).
    pub fn chrome_trace_json(&self) -> String {
        let mut out = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        let mut threads: Vec<u32> = self.events.iter().map(|e| e.thread).collect();
        threads.sort_unstable();
        threads.dedup();
        let mut first = true;
        for t in threads {
            sep(&mut out, &mut first);
            let _ = write!(
                out,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{t},\"args\":{{\"name\":\"tensorgrad thread {t}\"}}}}"
            );
        }
        for e in &self.events {
            sep(&mut out, &mut first);
            write_event(&mut out, e);
        }
        out.push_str("\n]}\n");
        out
    }

    /// Writes [`chrome_trace_json`](Self::chrome_trace_json) to `path` (open it in Perfetto or
    /// `chrome://tracing`).
    ///
    /// # Errors
    /// If the file cannot be created or written.
    pub fn write_chrome_trace(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.chrome_trace_json())
    }
}

fn sep(out: &mut String, first: &mut bool) {
    if !*first {
        out.push_str(",\n");
    }
    *first = false;
}

fn write_event(out: &mut String, e: &ProfileEvent) {
    let (cat, name) = match (e.kind, e.counted) {
        (EventKind::Forward, true) => ("forward", e.name.to_string()),
        (EventKind::Forward, false) => ("nested", e.name.to_string()),
        (EventKind::Backward, _) => ("backward", format!("{} (backward)", e.name)),
        (EventKind::Engine, _) => ("engine", e.name.to_string()),
    };
    let _ = write!(
        out,
        "{{\"name\":{},\"cat\":\"{cat}\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":1,\"tid\":{},\"args\":{{\"call_site\":{}",
        json_string(&name),
        micros(e.start),
        micros(e.duration),
        e.thread,
        json_string(&e.location.to_string()),
    );
    if !e.input_shapes.is_empty() {
        let shapes: Vec<String> = e.input_shapes.iter().map(|s| shape_json(s)).collect();
        let _ = write!(out, ",\"input_shapes\":[{}]", shapes.join(","));
    }
    if let Some(s) = &e.output_shape {
        let _ = write!(out, ",\"output_shape\":{}", shape_json(s));
    }
    if let Some(d) = e.dtype {
        let _ = write!(out, ",\"dtype\":\"{d}\"");
    }
    let _ = write!(
        out,
        ",\"flops\":{},\"bytes\":{},\"saved_bytes\":{},\"self_us\":{}}}}}",
        e.flops.round(),
        e.bytes.round(),
        e.saved_bytes,
        micros(e.self_time)
    );
}

/// Microseconds with nanosecond precision (`12.345`).
fn micros(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn shape_json(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
