//! `bench-harness USERS FILTERS_PER_USER [CORPUS]`: prints `bench_match::run`'s figures.

#[path = "../../src/bench_match.rs"]
mod bench_match;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let users = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let filters = args.next().map_or(Ok(5), |a| a.parse())?;
    let corpus = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/corpus/fedmsg-meta/messages.jsonl"
        )
        .to_string()
    });
    let figures = bench_match::run(users, filters, std::path::Path::new(&corpus))?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
