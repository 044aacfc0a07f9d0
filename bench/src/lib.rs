//! Shared parts of the benchmark programs (and of the namespace end-to-end tests).

pub mod fake_kisi;
pub mod fake_omada;
pub mod fake_salto;
pub mod fake_unifi;
pub mod fake_unifi_network;
pub mod faults;
pub mod netns;

/// The value after `--name` on the command line as a number, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
