//! Running `nft`: whole-table loads and element batches, each one transaction.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run {0}: {1} (install the nftables package)")]
    Spawn(String, std::io::Error),
    #[error("nft refused the change: {0}")]
    Refused(String),
    #[error("nft did not finish within {0:?}")]
    Timeout(Duration),
}

/// The `nft` program.
#[derive(Clone, Debug)]
pub struct Nft {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: find_program("nft").unwrap_or_else(|| PathBuf::from("nft")),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Finds a program in PATH or the sbin directories (services often run with a short PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Nft {
    /// Loads a batch (`nft -f -`): all of it or none of it.
    pub async fn run(&self, batch: &str) -> Result<(), NftError> {
        self.exec(&["-f", "-"], Some(batch)).await.map(|_| ())
    }

    /// Checks a batch without applying it (`nft -c -f -`).
    pub async fn check(&self, batch: &str) -> Result<(), NftError> {
        self.exec(&["-c", "-f", "-"], Some(batch)).await.map(|_| ())
    }

    /// `nft ARGS…` and its standard output.
    pub async fn exec(&self, args: &[&str], input: Option<&str>) -> Result<String, NftError> {
        let name = self.program.display().to_string();
        let mut child = tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| NftError::Spawn(name, e))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let text = text.to_owned();
            // Written from a task: nft may answer before it has read everything.
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| NftError::Timeout(self.timeout))?
            .map_err(|e| NftError::Refused(e.to_string()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(NftError::Refused(summarise(&err)))
        }
    }
}

/// nft's errors come as three lines (message, offending line, carets); keep them readable in
/// one log line, and not thousands of lines long for a big batch.
fn summarise(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut s = lines
        .iter()
        .take(6)
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    if lines.len() > 6 {
        s.push_str(&format!(" | … ({} more lines)", lines.len() - 6));
    }
    if s.is_empty() {
        s = "no message".into();
    }
    s
}
