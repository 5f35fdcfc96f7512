//! `gatehouse captcha solve`: solves a registration CAPTCHA for scripts and tests, as the ALTCHA widget does in
//! a browser. Reads the challenge (the `captcha` attribute of a registration answer, or the whole answer) from
//! the argument or standard input and prints the payload to send as `captcha`.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse_core::registration::captcha::{self, Challenge};

#[derive(clap::Subcommand)]
pub enum CaptchaCommand {
    /// Print the solution payload of a challenge (JSON, or `-`/nothing for standard input).
    Solve { challenge: Option<String> },
}

/// The challenge in `text`: itself, or found at `captcha` or `data.attributes.captcha`.
fn find_challenge(text: &str) -> anyhow::Result<Challenge> {
    let value: serde_json::Value = serde_json::from_str(text).context("the challenge is not JSON")?;
    let candidates = [Some(&value), value.get("captcha"), value.pointer("/data/attributes/captcha")];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| serde_json::from_value::<Challenge>(v.clone()).ok())
        .context("no challenge (algorithm, challenge, maxnumber, salt, signature) in the input")
}

pub fn run(command: CaptchaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaptchaCommand::Solve { challenge } => {
            let text = match challenge.filter(|c| c != "-") {
                Some(text) => text,
                None => {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
                    text
                }
            };
            let challenge = find_challenge(&text)?;
            let payload = captcha::solve(&challenge).context("no number up to maxnumber solves this challenge")?;
            println!("{payload}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
