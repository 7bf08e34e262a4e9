//! `weft conformance`: build and run every case in every mode, print a
//! table and the line `N passed, N failed`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use crate::{Mode, Suite, cases};

#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// Only cases whose name contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Modes to run (a column each); default: all.
    #[arg(long = "mode")]
    pub modes: Vec<Mode>,
    /// Where guest and native builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
    /// Cases run at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

pub fn main(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let weft = std::env::current_exe()?;
    let suite = Suite::new(args.out_dir, weft);
    let modes = if args.modes.is_empty() {
        Mode::ALL.to_vec()
    } else {
        args.modes
    };
    let cases: Vec<_> = cases()?
        .into_iter()
        .filter(|c| {
            args.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
        })
        .collect();

    // (case index, mode index) -> cell text and pass/fail
    let results = Mutex::new(vec![vec![(String::new(), false); modes.len()]; cases.len()]);
    let failures = Mutex::new(Vec::new());
    let work: Vec<(usize, usize)> = (0..cases.len())
        .flat_map(|c| (0..modes.len()).map(move |m| (c, m)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&(c, m)) = work.get(i) else { break };
                    let (cell, ok) = match suite.check(&cases[c], modes[m]) {
                        Ok(report) if report.passes() => {
                            let cell = if report.agrees() { "ok" } else { "refused" };
                            (cell.to_string(), true)
                        }
                        Ok(report) => {
                            failures.lock().unwrap().push(report.explain());
                            ("FAIL".to_string(), false)
                        }
                        Err(e) => {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("case `{}`: {e:#}", cases[c].name));
                            ("ERROR".to_string(), false)
                        }
                    };
                    results.lock().unwrap()[c][m] = (cell, ok);
                }
            });
        }
    });

    let results = results.into_inner().unwrap();
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(4).max(4);
    let mut header = format!("{:width$}", "case");
    for mode in &modes {
        header.push_str(&format!("  {:8}", mode.as_str()));
    }
    println!("{header}  about");
    let (mut passed, mut failed) = (0, 0);
    for (case, row) in cases.iter().zip(&results) {
        let mut line = format!("{:width$}", case.name);
        for (cell, ok) in row {
            line.push_str(&format!("  {cell:8}"));
            if *ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        println!("{line}  {}", case.about);
    }
    for failure in failures.into_inner().unwrap() {
        eprintln!("\n{failure}");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
