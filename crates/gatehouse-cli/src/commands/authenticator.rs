//! `gatehouse authenticator`: a command-line Gatehouse authenticator. It keeps its keys in a local file
//! (`--store FILE`, mode 0600) and is the reference client of the device API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use gatehouse_core::authenticator::{
    DeviceKey, approval_message, decode, encode, offline_code, parse_activation, request_message,
};
use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::random::{Random as _, SystemRandom};
use serde::{Deserialize, Serialize};

#[derive(Subcommand)]
pub enum AuthenticatorCommand {
    /// Register this authenticator with an activation URI (or a typed 16-digit code and --server).
    Enroll {
        activation: String,
        #[arg(long)]
        server: Option<String>,
        /// The name the user sees for this device.
        #[arg(long, default_value = "gatehouse CLI")]
        name: String,
    },
    /// The accounts this authenticator holds.
    List,
    /// Requests waiting for a decision.
    Pending {
        /// Wait up to this many seconds for a request to arrive.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request, picking the number the browser shows (a request without numbers, from an application
    /// server to server, needs none).
    Approve {
        id: String,
        #[arg(long, default_value_t = 0)]
        number: u32,
    },
    /// Deny a request.
    Deny { id: String },
    /// Print the code for an offline (QR) challenge.
    Offline { challenge: String },
    /// Print the current time-based code (for an application's `method: OTP`, or a `token` after a denial).
    Code {
        /// The account (default: the first enrolled).
        #[arg(long)]
        username: Option<String>,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct Keystore {
    accounts: Vec<Account>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Account {
    server: String,
    device_id: String,
    username: String,
    display_name: String,
    /// Ed25519 private key seed, base64url.
    seed: String,
    /// The offline key, base64url.
    offline_key: String,
}

fn load(path: &Path) -> anyhow::Result<Keystore> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not an authenticator store: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keystore::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn save(path: &Path, store: &Keystore) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(store)?.as_bytes())?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

fn client() -> anyhow::Result<reqwest::Client> {
    gatehouse_server::install_crypto_provider();
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(70)).build()?)
}

/// Reads an answer: the JSON body of a success, or the server's error code and title.
async fn answer(response: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    let e = &body["errors"][0];
    anyhow::bail!("{status}: {} {}", e["code"].as_str().unwrap_or("?"), e["title"].as_str().unwrap_or(""))
}

/// A signed GET of the device API.
async fn signed_get(
    http: &reqwest::Client,
    account: &Account,
    path_and_query: &str,
) -> anyhow::Result<serde_json::Value> {
    let key = DeviceKey::from_seed(&account.seed).ok_or_else(|| anyhow::anyhow!("corrupt key in the store"))?;
    let ts = SystemClock.now_ms();
    let signature = key.sign(&request_message("GET", path_and_query, ts, b""));
    let response = http
        .get(format!("{}{path_and_query}", account.server.trim_end_matches('/')))
        .header("x-device-id", &account.device_id)
        .header("x-device-timestamp", ts.to_string())
        .header("x-device-signature", signature)
        .send()
        .await?;
    answer(response).await
}

pub async fn run(store_path: PathBuf, command: AuthenticatorCommand) -> anyhow::Result<ExitCode> {
    let mut store = load(&store_path)?;
    let http = client()?;
    match command {
        AuthenticatorCommand::Enroll { activation, server, name } => {
            let (from_uri, code) = parse_activation(&activation)
                .ok_or_else(|| anyhow::anyhow!("not an activation URI or 16-digit code"))?;
            let server = from_uri.or(server).ok_or_else(|| anyhow::anyhow!("a typed code needs --server URL"))?;
            let key = DeviceKey::generate(&SystemRandom);
            let mut offline = [0u8; 32];
            SystemRandom.fill(&mut offline);
            let response = http
                .post(format!("{}/rest/device/activate", server.trim_end_matches('/')))
                .header("x-same-domain", "1")
                .json(&serde_json::json!({
                    "code": code, "publicKey": key.public_key(), "offlineKey": encode(&offline), "displayName": name,
                }))
                .send()
                .await?;
            let body = answer(response).await?;
            let attrs = &body["data"]["attributes"];
            let account = Account {
                server,
                device_id: attrs["deviceId"].as_str().unwrap_or_default().to_owned(),
                username: attrs["username"].as_str().unwrap_or_default().to_owned(),
                display_name: name,
                seed: key.seed(),
                offline_key: encode(&offline),
            };
            println!("enrolled as {} (device {})", account.username, account.device_id);
            store.accounts.push(account);
            save(&store_path, &store)?;
        }
        AuthenticatorCommand::List => {
            for a in &store.accounts {
                println!("{:<20} {:<34} {} ({})", a.username, a.device_id, a.server, a.display_name);
            }
        }
        AuthenticatorCommand::Pending { wait, json } => {
            let mut all = Vec::new();
            for account in &store.accounts {
                let body = signed_get(&http, account, &format!("/rest/device/approvals?wait={wait}")).await?;
                all.extend(body["data"].as_array().cloned().unwrap_or_default());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no pending requests");
            }
            if !json {
                for a in &all {
                    let at = &a["attributes"];
                    let choices: Vec<String> =
                        at["choices"].as_array().into_iter().flatten().map(ToString::to_string).collect();
                    let asks =
                        at["context"]["application"].as_str().map(|n| format!("  asked by {n}")).unwrap_or_default();
                    let numbers =
                        if choices.is_empty() { "none (approve or deny)".to_owned() } else { choices.join(" ") };
                    println!(
                        "{}  {} for {}{asks}  from {}  at {}  numbers: {numbers}",
                        a["id"].as_str().unwrap_or(""),
                        at["kind"].as_str().unwrap_or(""),
                        at["username"].as_str().unwrap_or(""),
                        at["context"]["ip"].as_str().unwrap_or("-"),
                        at["context"]["time"].as_str().unwrap_or("-"),
                    );
                }
            }
        }
        AuthenticatorCommand::Approve { id, number } => decide(&http, &store, &id, "approve", number).await?,
        AuthenticatorCommand::Deny { id } => decide(&http, &store, &id, "deny", 0).await?,
        AuthenticatorCommand::Offline { challenge } => {
            // gatehouse-offline:1:<nonce>:<username>:<kind>:<time>
            let username = challenge.split(':').nth(3).unwrap_or_default();
            let account = store
                .accounts
                .iter()
                .find(|a| a.username == username)
                .or(store.accounts.first())
                .ok_or_else(|| anyhow::anyhow!("no account enrolled"))?;
            let key =
                decode(&account.offline_key).ok_or_else(|| anyhow::anyhow!("corrupt offline key in the store"))?;
            println!("{}", offline_code(&key, challenge.trim()));
        }
        AuthenticatorCommand::Code { username } => {
            let account = store
                .accounts
                .iter()
                .find(|a| username.as_ref().is_none_or(|u| &a.username == u))
                .ok_or_else(|| anyhow::anyhow!("no such account enrolled"))?;
            let key =
                decode(&account.offline_key).ok_or_else(|| anyhow::anyhow!("corrupt offline key in the store"))?;
            let now = gatehouse_core::clock::Clock::now_ms(&gatehouse_core::clock::SystemClock);
            let step = now.div_euclid(1000 * gatehouse_core::authenticator::TIME_STEP_SECONDS);
            println!("{}", gatehouse_core::authenticator::time_code(&key, step));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Finds the request among the accounts' pending ones and signs the decision with that account's key.
async fn decide(http: &reqwest::Client, store: &Keystore, id: &str, decision: &str, number: u32) -> anyhow::Result<()> {
    for account in &store.accounts {
        let pending = signed_get(http, account, "/rest/device/approvals").await?;
        let Some(request) = pending["data"].as_array().into_iter().flatten().find(|a| a["id"] == id) else { continue };
        let nonce = request["attributes"]["nonce"].as_str().unwrap_or_default();
        let key = DeviceKey::from_seed(&account.seed).ok_or_else(|| anyhow::anyhow!("corrupt key in the store"))?;
        let signature = key.sign(&approval_message(id, nonce, decision, number));
        let response = http
            .post(format!("{}/rest/device/approvals/{id}/decision", account.server.trim_end_matches('/')))
            .header("x-same-domain", "1")
            .json(&serde_json::json!({ "deviceId": account.device_id, "decision": decision, "number": number, "signature": signature }))
            .send()
            .await?;
        let body = answer(response).await?;
        println!("{}", body["data"]["attributes"]["status"].as_str().unwrap_or(decision));
        return Ok(());
    }
    anyhow::bail!("no pending request {id} for the accounts in this store")
}
