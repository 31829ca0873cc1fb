//! The channel clients of `stockguard-channels` against the fake channels, and the fakes' own
//! admin API. One test binary, so that it is linked once.

mod admin_api;
mod amazon;
mod common;
mod ebay;
mod faults;
mod shopify;
mod walmart;
