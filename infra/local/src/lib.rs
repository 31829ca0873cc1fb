//! stockguard on one machine: read `template.yaml`, provision its resources into the emulator,
//! and host every function in-process.

pub mod chaos;
pub mod cold_start;
pub mod cost;
pub mod fake_wiring;
pub mod provision;
pub mod runtime;
pub mod tap;
pub mod template;

pub use provision::{Stack, provision};
pub use runtime::{
    InvocationTally, Invocations, LocalRuntime, RuntimeOptions, ScheduledRuns, ScheduledTally,
};
pub use template::StackSpec;
