//! What the crate's tests share: the example descriptions in `config/`, read as the provider
//! table they declare. Included by `tests/hostile.rs` (`mod common;`) and by the unit tests of
//! `src/config.rs` (through `#[path]`).

use tether_provider::settings::Table;

/// The provider table of an example in `config/` (`livy.toml`, `dbt-cloud.toml`).
pub fn example(file: &str) -> Table {
    let text = std::fs::read_to_string(format!(
        "{}/../../config/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let file: toml::Table = text.parse().unwrap();
    let providers = file["providers"].as_table().unwrap();
    let (_, table) = providers.iter().next().unwrap();
    tether_provider::settings::from_toml(table.as_table().unwrap().clone())
}
