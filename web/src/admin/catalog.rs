//! The schema catalog in effect: how many entries loaded from which files, and each entry
//! or file that was skipped, where and why.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::Admin;
use crate::view::{self, Nav};
use crate::{AppState, Error};

/// What loading the catalog did, as the binary reports it ([`crate::AppState::with_catalog`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogReport {
    /// The files read, in load order (the shipped ones first).
    pub files: Vec<String>,
    /// Entries loaded.
    pub entries: usize,
    /// What was skipped.
    pub skipped: Vec<CatalogSkip>,
}

/// An entry or file that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSkip {
    /// The file (or folder, when it could not be read).
    pub file: String,
    /// Where in the file, when known: 1-based line and column.
    pub line: Option<usize>,
    /// The column.
    pub column: Option<usize>,
    /// Why.
    pub reason: String,
}

impl CatalogReport {
    /// The report of loading these sources (file name, TOML text).
    pub fn of(sources: &[(String, String)]) -> (tidings_rules::Catalog, CatalogReport) {
        let (catalog, errors) = tidings_rules::Catalog::load(sources);
        let report = CatalogReport {
            files: sources.iter().map(|(file, _)| file.clone()).collect(),
            entries: catalog.len(),
            skipped: errors
                .into_iter()
                .map(|e| CatalogSkip {
                    file: e.file,
                    line: Some(e.line),
                    column: Some(e.column),
                    reason: e.reason,
                })
                .collect(),
        };
        (catalog, report)
    }
}

#[derive(Template)]
#[template(path = "web/admin_catalog.html")]
struct CatalogView<'a> {
    nav: Nav,
    report: &'a CatalogReport,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Response, Error> {
    view::ok(&CatalogView {
        nav: Nav::user(&state, &me),
        report: &state.catalog,
    })
}
