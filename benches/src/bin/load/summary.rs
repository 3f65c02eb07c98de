//! The table the harness prints last: every figure of the run beside its target, in the order
//! of the targets table of `docs/benchmarks.md`, whether it was met or not.

use std::sync::Mutex;

/// A row: the figure, its target (empty when it has none) and what this run measured.
struct Row {
    figure: String,
    target: &'static str,
    measured: String,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// Records one figure for the closing table.
pub fn record(figure: impl Into<String>, target: &'static str, measured: impl Into<String>) {
    ROWS.lock().expect("summary lock").push(Row {
        figure: figure.into(),
        target,
        measured: measured.into(),
    });
}

/// Prints every recorded figure as a Markdown table (so that it can be pasted as it is).
pub fn print(store: &str) {
    println!("\nsummary, {store}:\n");
    println!("| figure | target | measured |");
    println!("| --- | --- | --- |");
    for r in ROWS.lock().expect("summary lock").iter() {
        println!("| {} | {} | {} |", r.figure, r.target, r.measured);
    }
}
