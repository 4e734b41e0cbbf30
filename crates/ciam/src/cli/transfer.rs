//! `ciam user import` and `ciam user export` (docs/api.md §10): users in and
//! out in bulk, with their hashes, a batch per database write.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ciam_core::clock::to_rfc3339;
use ciam_core::import::{self, BatchReport, Incoming, MobileFrom};
use ciam_core::{Ciam, CiamError};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::CliError;

/// Users per database write.
const BATCH: usize = 1000;

/// Skipped users listed one by one at most; the rest are counted.
const SKIPPED_SHOWN: usize = 20;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Told from the file: a JSON object with `users` is a Keycloak realm
    /// export; JSON Lines with `phone_number` are Auth0's; other JSON Lines
    /// are ciam's user objects.
    Auto,
    /// JSON Lines of the admin API's user object with `password_hash` (what
    /// `ciam user export` writes).
    Jsonl,
    /// A Keycloak realm export (`realm-export.json` or `realm-users-N.json`).
    Keycloak,
    /// An Auth0 user export, JSON Lines.
    Auth0,
}

/// `ciam user import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read.
    pub file: PathBuf,
    /// What the file holds.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Keycloak only: where a user's mobile is, `attribute:NAME` or
    /// `username`.
    #[arg(long, default_value = "attribute:phoneNumber")]
    pub mobile_from: MobileFrom,
    /// Refuse hashes that take longer than MS milliseconds to verify on
    /// this machine (measured once per parameter set). A hash costlier
    /// than the server's own shows in a wrong password's timing until the
    /// user's next login replaces it; the server's own verification takes
    /// about 20–30 ms at the default parameters.
    #[arg(long, value_name = "MS")]
    pub max_cost: Option<u64>,
}

/// `ciam user export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (a new one); standard output when not given.
    #[arg(long)]
    pub to: Option<PathBuf>,
}

/// What an import did, printed as JSON at its end.
#[derive(Debug, Default)]
struct Tally {
    read: usize,
    imported: usize,
    skipped: usize,
    rejected: usize,
}

/// Imports `args.file` into `ciam`: reports each rejected line (by number,
/// with why) and the skipped ones on standard error, the totals as JSON on
/// standard output; fails when any line was rejected.
pub async fn import(ciam: &Ciam, args: &ImportArgs) -> Result<(), CliError> {
    let opened = |e: std::io::Error| CliError::Input(format!("{}: {e}", args.file.display()));
    let format = match args.format {
        Format::Auto => detect(&args.file).map_err(opened)?,
        chosen => chosen,
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    let unit = if format == Format::Keycloak { "user" } else { "line" };
    let mut importer = Importer::new(ciam, count_lines(&args.file, format).map_err(opened)?, unit);
    importer.max_cost = args.max_cost.map(|ms| (Duration::from_millis(ms), HashMap::new()));
    match format {
        Format::Keycloak => {
            let realm: serde_json::Value =
                serde_json::from_reader(BufReader::new(File::open(&args.file).map_err(opened)?))
                    .map_err(|e| CliError::Input(format!("{}: not JSON: {e}", args.file.display())))?;
            let users = import::from_keycloak(&realm, &args.mobile_from).map_err(CliError::Input)?;
            for (index, user) in users.into_iter().enumerate() {
                importer.add(index + 1, user, &mut tally).await?;
            }
        }
        Format::Jsonl | Format::Auth0 | Format::Auto => {
            let read = if format == Format::Auth0 { import::from_auth0_line } else { import::from_ciam_line };
            for (index, line) in BufReader::new(File::open(&args.file).map_err(opened)?).lines().enumerate() {
                let line = line.map_err(opened)?;
                if line.trim().is_empty() {
                    continue;
                }
                importer.add(index + 1, read(&line), &mut tally).await?;
            }
        }
    }
    importer.flush(&mut tally).await?;
    importer.wait(&mut tally).await?;
    importer.bar.finish_and_clear();
    if tally.skipped > SKIPPED_SHOWN {
        eprintln!("… and {} more skipped", tally.skipped - SKIPPED_SHOWN);
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = json!({
        "read": tally.read,
        "imported": tally.imported,
        "skipped": tally.skipped,
        "rejected": tally.rejected,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "per_second": (tally.read as f64 / seconds.max(1e-9)).round(),
    });
    println!("{summary}");
    match tally.rejected {
        0 => Ok(()),
        n => Err(CliError::Input(format!("{n} of {} users were rejected (see above); the others are in", tally.read))),
    }
}

/// A batch being written: its report, its line numbers, and the lines of
/// it refused as they were read.
type Writing = tokio::task::JoinHandle<(Result<BatchReport, CiamError>, Vec<usize>, Vec<(usize, String)>)>;

/// Users read and not yet written, with their line numbers. A batch is
/// checked while the one before it is being written.
struct Importer<'a> {
    ciam: &'a Ciam,
    /// What a position counts: lines of JSON Lines, users of a realm.
    unit: &'static str,
    lines: Vec<usize>,
    users: Vec<Incoming>,
    /// The batch being written, with its line numbers.
    writing: Option<Writing>,
    bar: ProgressBar,
    /// Lines of the batch being read that were refused as they were read.
    rejected: Vec<(usize, String)>,
    /// `--max-cost`, and the verification time measured per parameter set.
    max_cost: Option<(Duration, HashMap<String, Option<Duration>>)>,
}

impl<'a> Importer<'a> {
    fn new(ciam: &'a Ciam, total: u64, unit: &'static str) -> Self {
        // Drawn at a terminal only: a log gets the summary.
        let target =
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} users, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let users = Vec::with_capacity(BATCH);
        let lines = Vec::with_capacity(BATCH);
        Importer { ciam, unit, lines, users, writing: None, bar, rejected: Vec::new(), max_cost: None }
    }

    async fn add(&mut self, line: usize, user: Result<Incoming, String>, tally: &mut Tally) -> Result<(), CliError> {
        tally.read += 1;
        let user = user.and_then(|user| self.within_cost(user));
        match user {
            Ok(user) => {
                self.lines.push(line);
                self.users.push(user);
            }
            Err(why) => {
                // Reported with its batch's own refusals, in line order.
                tally.rejected += 1;
                self.rejected.push((line, why));
                self.bar.inc(1);
            }
        }
        if self.users.len() >= BATCH {
            self.flush(tally).await?;
        }
        Ok(())
    }

    /// The user, or why not under `--max-cost` (a hash the server does not
    /// take is left for the import's own check to name).
    fn within_cost(&mut self, user: Incoming) -> Result<Incoming, String> {
        let Some((max, measured)) = &mut self.max_cost else {
            return Ok(user);
        };
        let Ok(phc) = ciam_core::hashes::from_export(&user.password_hash) else {
            return Ok(user);
        };
        let key = ciam_core::hashes::cost_key(&phc).to_owned();
        let cost = *measured.entry(key).or_insert_with(|| self.ciam.verify_cost(&phc));
        match cost {
            Some(cost) if cost > *max => Err(format!(
                "password_hash takes {} ms to verify here, over --max-cost {} ms",
                cost.as_millis(),
                max.as_millis()
            )),
            _ => Ok(user),
        }
    }

    /// Checks the users read so far, waits for the batch being written,
    /// and starts writing these.
    async fn flush(&mut self, tally: &mut Tally) -> Result<(), CliError> {
        let users = std::mem::take(&mut self.users);
        let lines = std::mem::take(&mut self.lines);
        let rejected = std::mem::take(&mut self.rejected);
        let checked = self.ciam.check_users(users);
        self.wait(tally).await?;
        let ciam = self.ciam.clone();
        self.writing = Some(tokio::spawn(async move { (ciam.store_users(checked).await, lines, rejected) }));
        Ok(())
    }

    /// Waits for the batch being written, and reports it.
    async fn wait(&mut self, tally: &mut Tally) -> Result<(), CliError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let (report, lines, mut rejected) = writing.await.map_err(|e| CliError::Input(format!("import: {e}")))?;
        let report = report?;
        rejected.extend(report.rejected.iter().map(|(at, why)| (lines[*at], why.clone())));
        rejected.sort_unstable_by_key(|(line, _)| *line);
        self.bar.suspend(|| {
            for (line, why) in &rejected {
                eprintln!("{} {line}: rejected: {why}", self.unit);
            }
            for (shown, (at, mobile)) in report.skipped.iter().enumerate() {
                if tally.skipped + shown < SKIPPED_SHOWN {
                    eprintln!("{} {}: skipped: {mobile} (or its id) is already there", self.unit, lines[*at]);
                }
            }
        });
        tally.imported += report.imported;
        tally.skipped += report.skipped.len();
        tally.rejected += report.rejected.len();
        self.bar.inc(lines.len() as u64);
        Ok(())
    }
}

/// What `file` holds, from its first non-blank line.
fn detect(file: &Path) -> std::io::Result<Format> {
    for line in BufReader::new(File::open(file)?).lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        return Ok(match serde_json::from_str::<serde_json::Value>(line) {
            Ok(object) if object.get("phone_number").is_some() || object.get("passwordHash").is_some() => Format::Auth0,
            Ok(object) if object.get("custom_password_hash").is_some() => Format::Auth0,
            Ok(object) if object.get("users").is_some() => Format::Keycloak,
            Ok(_) => Format::Jsonl,
            // A pretty-printed document does not parse line by line.
            Err(_) => Format::Keycloak,
        });
    }
    Ok(Format::Jsonl)
}

/// How many users the file holds, for the progress bar (its non-blank
/// lines; a Keycloak file is counted once parsed, so 0 here).
fn count_lines(file: &Path, format: Format) -> std::io::Result<u64> {
    if format == Format::Keycloak {
        return Ok(0);
    }
    let mut count = 0;
    for line in BufReader::new(File::open(file)?).lines() {
        count += u64::from(!line?.trim().is_empty());
    }
    Ok(count)
}

/// Writes every user as JSON Lines with its hash, a page at a time, to
/// `args.to` (a new file, readable by its owner only: it holds hashes) or
/// standard output.
pub async fn export(ciam: &Ciam, args: &ExportArgs) -> Result<(), CliError> {
    let out: Box<dyn Write> = match &args.to {
        Some(path) => Box::new(owner_only_new_file(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut after: Option<String> = None;
    let mut written = 0usize;
    loop {
        let page = ciam.users_after(after.as_deref(), 5000).await?;
        for user in &page {
            let line = json!({
                "id": user.id,
                "mobile": user.mobile.as_str(),
                "password_hash": user.password_hash,
                "user_name": user.user_name,
                "name": user.name,
                "email": user.email,
                "disabled": user.disabled,
                "password_changed_at": to_rfc3339(user.password_changed_at),
                "created_at": to_rfc3339(user.created_at),
                "updated_at": to_rfc3339(user.updated_at),
            });
            serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        written += page.len();
        match page.last() {
            Some(last) => after = Some(last.id.to_string()),
            None => break,
        }
    }
    out.flush()?;
    eprintln!("exported {written} users");
    Ok(())
}

fn owner_only_new_file(path: &Path) -> Result<File, CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}
