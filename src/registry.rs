//! The provider registry: every provider crate tether is built with, one line each.
//!
//! A provider joins tether here and nowhere else: its crate exports a
//! [`ProviderFactory`] (its kinds, the check of its `[providers.NAME]` table, its adapter,
//! and its simulator behind the crate's `sim` feature), and one line below lists it. The
//! configuration, the engine, `tether sim` and the conformance suite read the kinds from here.
//! The book's docs/src/contributing/adding-a-provider.md gives the steps.

use tether_provider::registry::SimFactory;
use tether_provider::ProviderFactory;

/// The provider crates, one line each.
pub static FACTORIES: &[&dyn ProviderFactory] = &[
    &tether_databricks::FACTORY,
    &tether_aws::FACTORY,
    &tether_http::FACTORY,
    &tether_google::FACTORY,
    &tether_kubernetes::FACTORY,
];

/// The factory that builds `kind`, if any does.
pub fn factory(kind: &str) -> Option<&'static dyn ProviderFactory> {
    FACTORIES
        .iter()
        .copied()
        .find(|f| f.kinds().contains(&kind))
}

/// Every kind tether knows, in registry order.
pub fn kinds() -> Vec<&'static str> {
    FACTORIES
        .iter()
        .flat_map(|f| f.kinds().iter().copied())
        .collect()
}

/// The simulator of `kind`, if its crate was built with one.
pub fn simulators(kind: &str) -> Option<&'static dyn SimFactory> {
    factory(kind)?.simulators()
}
