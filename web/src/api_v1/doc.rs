//! The OpenAPI 3.1 document of `/api/v1` (served at `/api/v1/openapi.json`): every call
//! of the people's API, of publishing (`POST /api/v1/messages`, a service token of scope
//! `publish`) and of ownership imports (`PUT /api/v1/ownership`, scope `ownership`). Each
//! operation names the personal-token scope it needs in `x-scope`; a test checks that
//! every `/api/v1` route is here and that every operation here answers.

use serde_json::{json, Map, Value};
use tidings_store::ChannelKind;

use crate::routes;

/// One operation: what it does, the scope it needs, its success status and what it
/// returns, and its body's schema (a `$ref` name or an inline schema), if it takes one.
fn op(summary: &str, scope: &str, status: &str, returns: &str, body: Option<Value>) -> Value {
    let mut responses = Map::new();
    responses.insert(status.into(), json!({"description": returns}));
    if body.is_some() || scope != "read" {
        responses.insert(
            "400".into(),
            json!({"description": "a body field or parameter is wrong; the error names it"}),
        );
    }
    responses.insert("401".into(), json!({"description": "no valid token"}));
    responses.insert(
        "403".into(),
        json!({"description": "the token's scope is too small (or, for admin calls, its owner is not an admin)"}),
    );
    let mut op = json!({
        "summary": summary,
        "x-scope": scope,
        "responses": responses,
    });
    if let Some(schema) = body {
        let schema = match schema {
            Value::String(name) => json!({"$ref": format!("#/components/schemas/{name}")}),
            inline => inline,
        };
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    op
}

fn read(summary: &str, returns: &str) -> Value {
    op(summary, "read", "200", returns, None)
}

fn write(summary: &str, status: &str, returns: &str, body: Option<Value>) -> Value {
    op(summary, "write", status, returns, body)
}

fn admin(summary: &str, status: &str, returns: &str, body: Option<Value>) -> Value {
    op(summary, "admin", status, returns, body)
}

fn path_param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
}

fn query(name: &str, schema: Value, about: &str) -> Value {
    json!({"name": name, "in": "query", "schema": schema, "description": about})
}

/// `{"ids": [...]}`.
fn ids(about: &str) -> Value {
    json!({"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "description": about}}})
}

/// The document.
pub fn openapi() -> Value {
    let id = json!([path_param("id", "integer")]);
    let policy = json!({
        "type": "object",
        "required": ["mode"],
        "description": "immediate (at most flood_max in flood_window_minutes; the rest of a flood becomes one summary) or digest (every_minutes, daily_at \"HH:MM\" in the owner's time zone, or max_items waiting, whichever first)",
        "properties": {
            "mode": {"type": "string", "enum": ["immediate", "digest"]},
            "flood_max": {"type": "integer", "minimum": 0},
            "flood_window_minutes": {"type": "integer", "minimum": 1},
            "every_minutes": {"type": "integer", "minimum": 1},
            "daily_at": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "max_items": {"type": "integer", "minimum": 1}
        }
    });
    let mut paths = Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(path.to_string(), item);
    };

    add(
        routes::API_OPENAPI,
        json!({"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}}),
    );
    add(
        routes::API_ME,
        json!({"get": read("The token's owner: variables ($my_groups, $my_packages, follows) with where each group and package comes from, and pause", "the owner")}),
    );
    add(
        routes::API_FILTERS,
        json!({
            "get": read("My filters, each with the notifications it sent in the last 7 days", "filters, and those that could not be read"),
            "post": write("A new filter; the answer lists warnings (unknown apps, empty variables, ...)", "201", "the filter", Some("FilterBody".into())),
        }),
    );
    add(
        routes::API_FILTER,
        json!({
            "parameters": id,
            "get": read("One of my filters", "the filter"),
            "put": write("Replace one of my filters (its delivery stays unless given)", "200", "the filter", Some("FilterBody".into())),
            "delete": write("Delete one of my filters", "204", "deleted", None),
        }),
    );
    add(
        routes::API_FILTER_PREVIEW,
        json!({"parameters": id, "get": read("What one of my filters would have sent in the last 7 days", "count, scanned, the newest 20")}),
    );
    add(
        routes::API_FILTER_FEED,
        json!({
            "parameters": id,
            "get": read("One of my filters' feed URL (Atom)", "url"),
            "post": write("A new feed URL; the old one stops working", "200", "url", None),
        }),
    );
    add(
        routes::API_PREVIEW,
        json!({"post": read_with_body("What a condition would have sent me in the last 7 days, and its warnings", "count, scanned, the newest 20, warnings", json!({"type": "object", "required": ["condition"], "properties": {"condition": {"type": "string"}}}))}),
    );
    add(
        routes::API_WHY,
        json!({"get": with_params(read("Why a message did or did not match each of my filters: the deciding predicates, and what would stop a notification anyway (switched off, no confirmed destination, a mute)", "verdicts"), json!([query("message", json!({"type": "string"}), "an archived message's bus id")]))}),
    );
    add(
        routes::API_GALLERY,
        json!({"get": read("The starting filters (FMN's defaults, mirrors, ...)", "starters")}),
    );
    add(
        routes::API_GALLERY_ADD,
        json!({"parameters": [path_param("key", "string")], "post": write("Add a starting filter, sending to every confirmed destination", "201", "the filter", None)}),
    );
    add(
        routes::API_BUILDER,
        json!({
            "get": with_params(read("A condition read back into the builder's fields (422 when it has another shape)", "builder"), json!([query("condition", json!({"type": "string"}), "condition text")])),
            "post": read_with_body("The builder's fields written as condition text", "condition and warnings", json!({"$ref": "#/components/schemas/Builder"})),
        }),
    );
    add(
        routes::API_CATALOG,
        json!({"get": read("The apps the catalog knows, their topics and other names", "apps and aliases")}),
    );
    add(
        routes::API_DESTINATIONS,
        json!({
            "get": read("My destinations", "destinations"),
            "post": write("Add a destination; a link or code is sent to confirm it before anything else", "201", "the destination, unconfirmed", Some("DestinationBody".into())),
        }),
    );
    add(
        routes::API_DESTINATION,
        json!({
            "parameters": id,
            "get": read("One of my destinations", "the destination"),
            "delete": write("Delete one of my destinations", "204", "deleted", None),
        }),
    );
    add(
        routes::API_DESTINATION_DELIVERY,
        json!({"parameters": id, "put": write("How one of my destinations gets its notifications", "200", "the destination", Some(policy.clone()))}),
    );
    add(
        routes::API_DESTINATION_CONFIRM,
        json!({"parameters": id, "post": write("Confirm a Matrix or IRC destination by the code sent to it", "200", "the destination, confirmed", Some(json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}})))}),
    );
    add(
        routes::API_DESTINATION_RESEND,
        json!({"parameters": id, "post": write("Send an unconfirmed destination a fresh link or code (earlier ones stop working)", "200", "the destination", None)}),
    );
    add(
        routes::API_NOTIFICATIONS,
        json!({"get": with_params(read("My latest notifications, newest first", "notifications"), json!([query("limit", json!({"type": "integer", "minimum": 1, "maximum": super::NOTIFICATIONS_MAX, "default": 100}), "how many")]))}),
    );
    add(
        routes::API_PAUSE,
        json!({
            "get": read("When my pause ends (null: not paused)", "paused_until"),
            "put": write("Pause everything for `days` days", "200", "paused_until", Some(json!({"type": "object", "required": ["days"], "properties": {"days": {"type": "integer", "minimum": 1, "maximum": crate::settings::PAUSE_DAYS_MAX}}}))),
            "delete": write("Resume", "204", "resumed", None),
        }),
    );
    add(
        routes::API_SETTINGS,
        json!({"get": read("My time zone, quiet hours, default delivery (null: the site's) and pause", "settings")}),
    );
    add(
        routes::API_SCHEDULE,
        json!({"put": write("My time zone and quiet hours (null: none)", "200", "settings", Some(json!({"type": "object", "required": ["time_zone"], "properties": {"time_zone": {"type": "string", "examples": ["Europe/Paris"]}, "quiet_hours": {"type": ["object", "null"], "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}})))}),
    );
    add(
        routes::API_DEFAULT_DELIVERY,
        json!({"put": write("The delivery my new destinations start with (null: the site's); apply_to_all sets it on every destination that can take it", "200", "the default and how many destinations took it", Some(json!({"type": "object", "properties": {"delivery": {"oneOf": [policy, {"type": "null"}]}, "apply_to_all": {"type": "boolean", "default": false}}})))}),
    );
    add(
        routes::API_FOLLOWS,
        json!({
            "get": read("The people and packages I follow ($followed_users, $followed_packages)", "follows"),
            "post": write("Follow a person or a package", "201", "follows", Some(json!({"type": "object", "required": ["kind", "name"], "properties": {"kind": {"type": "string", "enum": ["user", "package"]}, "name": {"type": "string"}}}))),
        }),
    );
    add(
        routes::API_FOLLOW,
        json!({"parameters": [path_param("kind", "string"), path_param("name", "string")], "delete": write("Stop following", "204", "ended", None)}),
    );
    add(
        routes::API_MUTES,
        json!({
            "get": read("My running mutes", "mutes"),
            "post": write("Mute a package by name, or a message's thread or package, for `days` days (30 unless given)", "201", "the mute", Some(json!({"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string", "enum": ["thread", "package"]}, "value": {"type": "string", "description": "the package"}, "message": {"type": "string", "description": "an archived message's bus id"}, "days": {"type": "integer", "minimum": 1, "maximum": 90}}}))),
        }),
    );
    add(
        routes::API_MUTE,
        json!({"parameters": id, "delete": write("End a mute", "204", "ended", None)}),
    );
    add(
        routes::API_TOKENS,
        json!({
            "get": read("My personal access tokens (never their secrets)", "tokens"),
            "post": write("A new token, of a scope no larger than this one's; its secret is shown this once", "201", "the token and its secret", Some(json!({"type": "object", "required": ["name", "scope"], "properties": {"name": {"type": "string", "maxLength": tidings_store::TOKEN_NAME_MAX}, "scope": {"type": "string", "enum": ["read", "write", "admin"]}}}))),
        }),
    );
    add(
        routes::API_TOKEN,
        json!({"parameters": id, "delete": write("Revoke one of my tokens", "204", "revoked", None)}),
    );
    add(
        routes::API_EXPORT,
        json!({"get": read("Everything stored about me", "the export")}),
    );
    add(
        routes::API_SESSIONS,
        json!({"delete": write("Sign out of every browser", "200", "how many sessions ended", None)}),
    );
    add(
        routes::API_OFFERED,
        json!({"get": read("The default filters offered to me", "offered")}),
    );
    add(
        routes::API_OFFERED_ADD,
        json!({"post": write("Add offered default filters (none named: all)", "200", "how many were added", Some(ids("default filter ids")))}),
    );
    add(
        routes::API_OFFERED_DISMISS,
        json!({"post": write("No longer offer these default filters (none named: all)", "200", "how many", Some(ids("default filter ids")))}),
    );

    add(
        routes::API_ADMIN_DEFAULTS,
        json!({
            "get": admin("Default filters for new users", "200", "defaults", None),
            "post": admin("A new default filter (a template: $me, $my_packages, ...)", "201", "the default filter and its warnings", Some("DefaultBody".into())),
        }),
    );
    add(
        routes::API_ADMIN_DEFAULT,
        json!({
            "parameters": id,
            "get": admin("One default filter", "200", "the default filter", None),
            "put": admin("Replace a default filter", "200", "the default filter", Some("DefaultBody".into())),
            "delete": admin("Delete a default filter", "204", "deleted", None),
        }),
    );
    add(
        routes::API_ADMIN_DEFAULTS_PREVIEW,
        json!({"post": admin("What a template would have matched in the last 7 days for some users (none named: the first few)", "200", "matches per user", Some(json!({"type": "object", "required": ["condition"], "properties": {"condition": {"type": "string"}, "users": {"type": "array", "items": {"type": "string"}}}})))}),
    );
    add(
        routes::API_ADMIN_USERS,
        json!({"get": with_params(admin("Users, searched by name", "200", "users and the total", None), json!([query("q", json!({"type": "string"}), "part of a username"), query("page", json!({"type": "integer", "minimum": 1}), "50 a page")]))}),
    );
    add(
        routes::API_ADMIN_USER,
        json!({"parameters": id, "get": admin("One user with their destinations and filters (read-only)", "200", "the user", None)}),
    );
    add(
        routes::API_ADMIN_USER_DISABLE,
        json!({"parameters": id, "post": admin("Disable a user: no sign-in, tokens dead, queued notifications dead (not yourself)", "200", "the user", None)}),
    );
    add(
        routes::API_ADMIN_USER_ENABLE,
        json!({"parameters": id, "post": admin("Enable a user", "200", "the user", None)}),
    );
    add(
        routes::API_ADMIN_DEAD,
        json!({"get": with_params(admin("Dead notifications, newest first, and how many there are", "200", "dead and total", None), json!([query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}), "how many")]))}),
    );
    add(
        routes::API_ADMIN_DEAD_RETRY,
        json!({"post": admin("Queue dead notifications again", "200", "how many", Some(ids("outbox ids")))}),
    );
    add(
        routes::API_ADMIN_DEAD_DISCARD,
        json!({"post": admin("Delete dead notifications", "200", "how many", Some(ids("outbox ids")))}),
    );
    add(
        routes::API_ADMIN_CHARTS,
        json!({"get": with_params(admin("Per hour: messages by app, notifications by channel, delivery latency p50/p99", "200", "the series", None), json!([query("hours", json!({"type": "integer", "minimum": 1, "maximum": 336, "default": 48}), "how far back")]))}),
    );
    add(
        routes::API_ADMIN_CATALOG,
        json!({"get": admin("The schema catalog: files, entries loaded, entries skipped and why", "200", "the report", None)}),
    );
    add(
        routes::API_ADMIN_LIVE,
        json!({"get": with_params(admin("The live bus: server-sent events of each message archived from now on", "200", "text/event-stream", None), json!([query("topic", json!({"type": "string"}), "a topic glob (`*` one segment, `**` any); empty: all")]))}),
    );

    let publish = json!({"type": "object"});
    add(
        routes::API_MESSAGES,
        json!({"post": {"summary": "Publish a fedmsg envelope (service token of scope publish)", "requestBody": {"required": true, "content": {"application/json": {"schema": publish}}}, "responses": {"202": {"description": "accepted: archived, or a duplicate"}, "400": {"description": "not a message; the error names the field"}, "401": {"description": "no valid token"}, "403": {"description": "the token's scope does not allow it"}}}}),
    );
    add(
        routes::API_OWNERSHIP,
        json!({"put": {"summary": "Import package ownership and groups (service token of scope ownership; ?mode=merge|replace)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}, "responses": {"200": {"description": "imported"}, "400": {"description": "the error names the line and column"}, "401": {"description": "no valid token"}, "403": {"description": "the token's scope does not allow it"}}}}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tidings",
            "version": "1",
            "description": "Everything the pages do, with a personal access token (account page, or POST /api/v1/tokens) of scope read (look), write (also change) or admin (also /api/v1/admin, an admin's token only); each operation's x-scope names the scope it needs. Another person's filter or destination is 404. For services: publishing and ownership imports with service tokens (`tidings token add`). Password changes and deleting the account are on the account page only: they need the password."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "FilterBody": {
                    "type": "object",
                    "required": ["name", "condition"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "condition": {"type": "string", "description": "the filter language (docs/filters.md)"},
                        "destination_ids": {"type": "array", "items": {"type": "integer"}, "description": "default: every destination"},
                        "enabled": {"type": "boolean", "default": true},
                        "delivery": {"description": "a digest of its own ({\"mode\": \"digest\", ...}); {\"mode\": \"immediate\"}: as each destination says; absent: at once for a new filter, unchanged for a replaced one", "type": "object"}
                    }
                },
                "DefaultBody": {
                    "type": "object",
                    "required": ["name", "condition"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "condition": {"type": "string", "description": "a template: $me, $my_packages, $my_groups, ..."},
                        "delivery": {"type": "object", "description": "as a filter's"},
                        "enabled": {"type": "boolean", "default": true}
                    }
                },
                "DestinationBody": {
                    "type": "object",
                    "required": ["channel", "address"],
                    "properties": {
                        "channel": {"type": "string", "enum": ChannelKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()},
                        "address": {"type": "string"}
                    }
                },
                "Builder": {
                    "type": "object",
                    "properties": {
                        "apps": {"type": "array", "items": {"type": "string"}},
                        "topics": {"type": "array", "items": {"type": "string"}, "description": "as the catalog writes them (bodhi.update.comment)"},
                        "whose": {"type": "object", "properties": {"my_packages": {"type": "boolean"}, "my_groups": {"type": "boolean"}, "followed_packages": {"type": "boolean"}, "me": {"type": "boolean"}, "followed_users": {"type": "boolean"}}},
                        "severity": {"type": ["string", "null"], "enum": ["debug", "info", "warning", "error", null]},
                        "not_mine": {"type": "boolean"},
                        "body": {"type": ["object", "null"], "properties": {"path": {"type": "string"}, "op": {"type": "string", "enum": ["eq", "ne", "lt", "le", "gt", "ge"]}, "value": {"type": "string"}}}
                    }
                }
            }
        },
        "paths": paths,
    })
}

/// A read call that takes a body (preview, builder).
fn read_with_body(summary: &str, returns: &str, body: Value) -> Value {
    op(summary, "read", "200", returns, Some(body))
}

/// An operation with query or path parameters of its own.
fn with_params(mut op: Value, parameters: Value) -> Value {
    op["parameters"] = parameters;
    op
}
