//! The local mailbox folder: with no SMTP server, the email sender writes each mail as an
//! `.eml` file, and here a signed-in user reads the mail sent on their behalf: the mails
//! whose Message-ID (`<outbox uid@domain>`) is an outbox row of one of their destinations.
//! The `To:` address decides nothing: anyone can add anyone's address, and reading the
//! mail to an address is what confirming it proves. So a user sees the confirmation mail
//! for an address they added (the first-use flow needs it) but never the notifications
//! another account's filters sent to the same address. A mail is shown decoded: its
//! subject (RFC 2047), its plain-text part (quoted-printable or base64) with its web links
//! clickable, and its source, escaped, below.

use std::collections::HashSet;
use std::path::{Path as FsPath, PathBuf};

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::session::CurrentUser;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// How many mails the list shows.
const LIST_LIMIT: usize = 200;
/// The most of one mail read.
const MAIL_LIMIT: u64 = 2 * 1024 * 1024;

/// The mailbox routes (404 when no folder is configured).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::MAILBOX, get(list))
        .route(routes::MAILBOX_MAIL, get(show))
}

/// The headers of one mail that the pages show.
#[derive(Debug, Default, PartialEq, Eq)]
struct Headers {
    to: Vec<String>,
    from: String,
    subject: String,
    date: String,
    /// The outbox uid the sender put before the `@` of the Message-ID.
    uid: Option<String>,
}

/// Reads the header block: unfolds continuation lines, keeps To/From/Subject/Date.
fn headers(text: &str) -> Headers {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => lines.push(line.to_string()),
        }
    }
    let mut found = Headers::default();
    for line in &lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "to" => found.to.extend(addresses(&value)),
            "from" => found.from = value,
            "subject" => found.subject = decoded_header(&value),
            "date" => found.date = value,
            "message-id" => found.uid = outbox_uid(&value),
            _ => {}
        }
    }
    found
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?q?…?=`) decoded.
fn decoded_header(value: &str) -> String {
    let line = format!("X: {value}");
    match mailparse::parse_header(line.as_bytes()) {
        Ok((header, _)) => header.get_value(),
        Err(_) => value.to_string(),
    }
}

/// The text a reader sees: the first `text/plain` part (the whole mail when it has no
/// parts), decoded; `None` when there is none (an HTML-only mail) or it cannot be read.
fn plain_text(raw: &str) -> Option<String> {
    fn find(part: &mailparse::ParsedMail<'_>) -> Option<String> {
        if part.subparts.is_empty() {
            let mime = part.ctype.mimetype.to_ascii_lowercase();
            return (mime == "text/plain")
                .then(|| part.get_body().ok())
                .flatten();
        }
        part.subparts.iter().find_map(find)
    }
    find(&mailparse::parse_mail(raw.as_bytes()).ok()?)
}

/// A run of a mail's text: plain, or a web link.
struct Segment {
    text: String,
    /// The link's target (the text itself) when it is one.
    link: bool,
}

/// Splits `text` into plain runs and `http(s)://` links; a link ends at white space or a
/// character that cannot end one in running text (`<>"`), and sentence punctuation right
/// after it stays outside it.
fn linked(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || "<>\"".contains(c))
            .unwrap_or(candidate.len());
        let url = candidate[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?', '\'']);
        if url.len() <= "https://".len() {
            segments.push(Segment {
                text: rest[..start + end].to_string(),
                link: false,
            });
            rest = &rest[start + end..];
            continue;
        }
        if start > 0 {
            segments.push(Segment {
                text: rest[..start].to_string(),
                link: false,
            });
        }
        segments.push(Segment {
            text: url.to_string(),
            link: true,
        });
        rest = &rest[start + url.len()..];
    }
    if !rest.is_empty() {
        segments.push(Segment {
            text: rest.to_string(),
            link: false,
        });
    }
    segments
}

/// The bare addresses in an address list: `"Name" <a@b>, c@d` → `a@b`, `c@d`.
fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(|part| {
            let part = part.trim();
            match (part.rfind('<'), part.rfind('>')) {
                (Some(open), Some(close)) if open < close => &part[open + 1..close],
                _ => part,
            }
        })
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect()
}

/// The outbox uid in a Message-ID the sender made: `<uid@domain>`.
fn outbox_uid(message_id: &str) -> Option<String> {
    let inner = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
    let (uid, _) = inner.split_once('@')?;
    (!uid.is_empty() && uid.chars().all(|c| c.is_ascii_alphanumeric())).then(|| uid.to_string())
}

/// A plain file name in the folder, never a path out of it.
fn safe_name(name: &str) -> bool {
    name.ends_with(".eml")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn folder(state: &AppState) -> Result<&PathBuf, Error> {
    state.config.mailbox_dir.as_ref().ok_or(Error::NotFound)
}

/// Which of these mails were sent on `me`'s behalf.
async fn mine(
    state: &AppState,
    me: &CurrentUser,
    mails: &[&Headers],
) -> Result<HashSet<String>, Error> {
    let uids: Vec<String> = mails.iter().filter_map(|h| h.uid.clone()).collect();
    Ok(state.store.sent_for_user(me.id(), &uids).await?)
}

fn is_mine(found: &Headers, mine: &HashSet<String>) -> bool {
    found.uid.as_ref().is_some_and(|uid| mine.contains(uid))
}

async fn read_mail(path: &FsPath) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut bytes = Vec::new();
    file.take(MAIL_LIMIT).read_to_end(&mut bytes).await.ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

struct MailRow {
    link: String,
    subject: String,
    to: String,
    date: String,
}

#[derive(Template)]
#[template(path = "web/mailbox.html")]
struct MailboxView {
    nav: Nav,
    mails: Vec<MailRow>,
}

async fn list(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let dir = folder(&state)?;
    let mut files = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !safe_name(&name) {
                continue;
            }
            let modified = entry.metadata().await.ok().and_then(|m| m.modified().ok());
            files.push((modified, name, entry.path()));
        }
    }
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut mails = Vec::new();
    // Newest first, a batch at a time, until the page is full.
    for batch in files.chunks(LIST_LIMIT) {
        let mut read = Vec::new();
        for (_, name, path) in batch {
            if let Some(text) = read_mail(path).await {
                read.push((name, headers(&text)));
            }
        }
        let owned = mine(
            &state,
            &me,
            &read.iter().map(|(_, h)| h).collect::<Vec<_>>(),
        )
        .await?;
        for (name, found) in read {
            if mails.len() < LIST_LIMIT && is_mine(&found, &owned) {
                mails.push(MailRow {
                    link: routes::mailbox_mail(name),
                    to: found.to.join(", "),
                    subject: found.subject,
                    date: found.date,
                });
            }
        }
        if mails.len() >= LIST_LIMIT {
            break;
        }
    }
    view::ok(&MailboxView {
        nav: Nav::user(&state, &me),
        mails,
    })
}

#[derive(Template)]
#[template(path = "web/mail.html")]
struct MailView {
    nav: Nav,
    from: String,
    to: String,
    subject: String,
    date: String,
    /// The plain-text part, in runs of text and links (`None`: the mail has none).
    body: Option<Vec<Segment>>,
    source: String,
}

async fn show(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let dir = folder(&state)?;
    if !safe_name(&name) {
        return Err(Error::NotFound);
    }
    let text = read_mail(&dir.join(&name)).await.ok_or(Error::NotFound)?;
    let found = headers(&text);
    // Someone else's mail is as absent as a missing one.
    if !is_mine(&found, &mine(&state, &me, &[&found]).await?) {
        return Err(Error::NotFound);
    }
    view::ok(&MailView {
        nav: Nav::user(&state, &me),
        from: found.from,
        to: found.to.join(", "),
        subject: found.subject,
        date: found.date,
        body: plain_text(&text).map(|body| linked(&body)),
        source: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_folded_headers_and_addresses() {
        let mail = "From: Tidings <tidings@localhost>\r\nTo: \"Alice\" <Alice@Example.org>,\r\n bob@example.org\r\nSubject: [koji] build\r\n done\r\n\r\nTo: not-a-header@example.org\r\n";
        let found = headers(mail);
        assert_eq!(found.to, vec!["alice@example.org", "bob@example.org"]);
        assert_eq!(found.subject, "[koji] build done");
        assert_eq!(found.from, "Tidings <tidings@localhost>");
        assert_eq!(found.uid, None);
        let found = headers("Message-ID:\r\n <AbC123@hub.example.org>\r\n\r\n");
        assert_eq!(found.uid.as_deref(), Some("AbC123"));
        for bad in ["AbC123@x", "<@x>", "<a b@x>", "<abc>", "<../x@y>"] {
            assert_eq!(outbox_uid(bad), None, "{bad}");
        }
    }

    #[test]
    fn links_in_text_become_links_without_trailing_punctuation() {
        let runs = linked("See https://a.example/x?y=1. Or (http://b.example/p), done");
        let shown: Vec<(&str, bool)> = runs.iter().map(|s| (s.text.as_str(), s.link)).collect();
        assert_eq!(
            shown,
            [
                ("See ", false),
                ("https://a.example/x?y=1", true),
                (". Or (", false),
                ("http://b.example/p", true),
                ("), done", false),
            ]
        );
        let bare = linked("scheme only: https:// and <https://c.example/q>");
        assert!(bare
            .iter()
            .any(|s| s.link && s.text == "https://c.example/q"));
        assert!(!bare.iter().any(|s| s.link && s.text == "https://"));
        let joined: String = bare.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, "scheme only: https:// and <https://c.example/q>");
    }

    #[test]
    fn decodes_encoded_subjects_and_the_plain_text_part() {
        assert_eq!(decoded_header("=?utf-8?q?caf=C3=A9_build?="), "café build");
        let mail = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 https://x.example/a=\r\nb\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>no</p>\r\n--b--\r\n";
        assert_eq!(
            plain_text(mail).as_deref().map(str::trim_end),
            Some("café https://x.example/ab")
        );
        let html_only = "Content-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        assert_eq!(plain_text(html_only), None);
    }

    #[test]
    fn only_plain_eml_names() {
        assert!(safe_name("0b4e-9f.eml"));
        for bad in ["../x.eml", "x.txt", ".eml", "a/b.eml", "%2e%2e.eml"] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
