//! `tidings inspect` and `tidings bench metadata`: bus messages (fedmsg envelopes or
//! fedora-messaging messages in their JSON form, one JSON object a line) in, one JSON line of metadata per message out, through the schema catalog
//! (shipped files plus an admin's `--catalog-dir` folders).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use tidings_rules::{Catalog, Envelope};

/// Derives metadata for every line of `input`; a bad line gets an error line on `err`
/// naming its line number, and the rest go on. Returns (messages, bad lines).
pub fn run(
    input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
    catalog: &Catalog,
) -> std::io::Result<(usize, usize)> {
    let (mut ok, mut bad) = (0, 0);
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Envelope::from_json(&line) {
            Ok(envelope) => {
                let meta = catalog.derive(&envelope.message);
                let record = json!({
                    "topic": meta.topic,
                    "app": meta.app,
                    "agent": meta.agent,
                    "usernames": meta.usernames,
                    "packages": meta.packages,
                    "groups": meta.groups,
                    "severity": meta.severity,
                    "summary": meta.summary,
                    "url": meta.url,
                    "objects": meta.objects,
                    "details": meta.details,
                });
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
                ok += 1;
            }
            Err(e) => {
                writeln!(err, "line {}: {e}", n + 1)?;
                bad += 1;
            }
        }
    }
    out.flush()?;
    Ok((ok, bad))
}

/// The shipped catalog merged with every `*.toml` in `extra_dirs` (in name order; a later
/// file's entry replaces a shipped one for the same topic pattern). Unreadable files and
/// broken entries become warnings; everything else loads.
pub fn load_catalog(extra_dirs: &[PathBuf]) -> (Catalog, Vec<String>) {
    let (catalog, report) = load_catalog_report(extra_dirs);
    (catalog, load_catalog_warnings(&report))
}

/// What a report says was skipped, one line each (`file:line:column: reason`).
pub fn load_catalog_warnings(report: &tidings_web::CatalogReport) -> Vec<String> {
    report
        .skipped
        .iter()
        .map(|s| match (s.line, s.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}: {}", s.file, s.reason),
            _ => format!("{}: {}", s.file, s.reason),
        })
        .collect()
}

/// As [`load_catalog`], with what was skipped kept apart (file, position, reason) and the
/// files read, for the admin's catalog page.
pub fn load_catalog_report(extra_dirs: &[PathBuf]) -> (Catalog, tidings_web::CatalogReport) {
    let mut sources = Catalog::shipped_sources();
    let mut unread = Vec::new();
    let skip = |file: String, reason: String| tidings_web::CatalogSkip {
        file,
        line: None,
        column: None,
        reason,
    };
    for dir in extra_dirs {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                unread.push(skip(
                    format!("catalog folder {}", dir.display()),
                    e.to_string(),
                ));
                continue;
            }
        };
        files.sort();
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => sources.push((file.display().to_string(), text)),
                Err(e) => unread.push(skip(file.display().to_string(), e.to_string())),
            }
        }
    }
    let (catalog, mut report) = tidings_web::CatalogReport::of(&sources);
    unread.append(&mut report.skipped);
    report.skipped = unread;
    (catalog, report)
}

/// Messages per second through decode + metadata on one thread over a corpus file (JSON
/// lines; either bare envelopes or `{"message": envelope, …}` records as in the fedmsg-meta
/// corpus). Repeats the corpus until about two seconds have passed.
pub fn bench(corpus: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(corpus)
        .with_context(|| format!("reading the corpus {}", corpus.display()))?;
    let lines: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l)?;
            // A corpus record: the message alone, as it comes off the bus, without the
            // reference values beside it.
            let message = match value.get("message") {
                Some(envelope) => envelope.clone(),
                None => {
                    let keep = ["topic", "headers", "id", "body"];
                    let mut m = serde_json::Map::new();
                    for key in keep {
                        if let Some(v) = value.get(key) {
                            m.insert(key.to_string(), v.clone());
                        }
                    }
                    serde_json::Value::Object(m)
                }
            };
            serde_json::to_vec(&message)
        })
        .collect::<Result<_, _>>()?;
    for (n, line) in lines.iter().enumerate() {
        Envelope::from_json(line)
            .with_context(|| format!("{} message {}", corpus.display(), n + 1))?;
    }
    anyhow::ensure!(!lines.is_empty(), "{} has no messages", corpus.display());
    let catalog = Catalog::shipped();
    // Decoding alone, for where the time goes.
    let started = Instant::now();
    let mut decoded = 0usize;
    while started.elapsed().as_secs_f64() < 1.0 {
        for line in &lines {
            if Envelope::from_json(line).is_ok() {
                decoded += 1;
            }
        }
    }
    let decode_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut messages, mut checksum) = (0usize, 0usize);
    while started.elapsed().as_secs_f64() < 2.0 {
        for line in &lines {
            if let Ok(envelope) = Envelope::from_json(line) {
                checksum += catalog.derive(&envelope.message).usernames.len();
            }
            messages += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "benchmark": "metadata",
        "corpus": corpus.display().to_string(),
        "corpus_messages": lines.len(),
        "catalog_entries": catalog.len(),
        "messages": messages,
        "seconds": secs,
        "messages_per_second": (messages as f64 / secs).round(),
        "decoded_per_second": (decoded as f64 / decode_secs).round(),
        "usernames_seen": checksum,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_message_and_errors_name_the_line() {
        let input = concat!(
            r#"{"topic":"org.fedoraproject.prod.buildsys.tag","msg":{"name":"stage","version":"4.1.1","release":"3.fc18","owner":"ralph","user":"bodhi","tag":"f18-updates","tag_id":216}}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"msg":{}}"#,
            "\n",
            r#"{"topic":"org.example.prod.newapp.thing","msg":{"user":"Ann"}}"#,
            "\n",
            r#"{"topic":"org.fedoraproject.prod.mdapi.repo.update","id":"4f1c","headers":{"fedora_messaging_schema":"mdapi.repo.update","fedora_messaging_user_bob":true},"body":{"name":"koji"}}"#,
            "\n",
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let counts = run(input.as_bytes(), &mut out, &mut err, &Catalog::shipped()).expect("io");
        assert_eq!(counts, (3, 2));
        let out = String::from_utf8(out).expect("utf8");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines[0]["app"], "buildsys");
        assert_eq!(lines[0]["packages"], json!(["stage"]));
        assert_eq!(lines[0]["usernames"], json!(["bodhi", "ralph"]));
        assert_eq!(lines[0]["severity"], "info");
        assert_eq!(lines[1]["app"], "newapp");
        assert_eq!(lines[1]["usernames"], json!(["ann"]));
        let keys: Vec<&String> = lines[1].as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 11);
        // fedora-messaging's JSON form is read too; its header flags name people.
        assert_eq!(lines[2]["app"], "mdapi");
        assert_eq!(lines[2]["usernames"], json!(["bob"]));
        assert!(lines[2].get("agent").is_some());
        let err = String::from_utf8(err).expect("utf8");
        let err: Vec<&str> = err.lines().collect();
        assert!(
            err[0].starts_with("line 2: envelope is not valid JSON"),
            "{err:?}"
        );
        assert_eq!(err[1], "line 4: envelope field `topic` is missing");
    }

    #[test]
    fn extra_catalog_folders_override_and_warn() {
        let dir = std::env::temp_dir().join(format!("tidings-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("local.toml"),
            "[[entry]]\ntopic = \"newapp.thing\"\nsummary = \"{user} did it\"\n\n[[entry]]\ntopic = \"x\"\nbogus = 1\n",
        )
        .expect("write");
        let (catalog, warnings) = load_catalog(&[dir.clone(), dir.join("missing")]);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("missing"), "{warnings:?}");
        assert!(
            warnings[1].contains("local.toml:7:9: entry skipped: unknown key `bogus`"),
            "{warnings:?}"
        );
        let m = tidings_rules::Message::new(
            "1",
            "org.example.prod.newapp.thing",
            json!({"user": "ann"}),
        );
        assert_eq!(catalog.derive(&m).summary, "ann did it");
    }
}
